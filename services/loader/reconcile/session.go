package reconcile

import (
	"context"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// reconcileSession pins every setting that changes a value's text form
// (canon.go renders the source side to match).
var reconcileSession = map[string]string{
	"TimeZone":           "UTC",
	"DateStyle":          "ISO, YMD",
	"IntervalStyle":      "postgres",
	"extra_float_digits": "1",
	"bytea_output":       "hex",
	// The digest query groups by 4096 buckets the planner cannot foresee;
	// with the default work_mem it sorts on disk instead of hashing.
	"work_mem": "64MB",
	// A digest is one pass over the table: compiling it costs more than
	// it saves.
	"jit": "off",
}

// sessionSQL applies reconcileSession to one transaction only, so the
// loader's pooled connections keep their own settings.
var sessionSQL = func() string {
	keys := make([]string, 0, len(reconcileSession))
	for k := range reconcileSession {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	sets := make([]string, len(keys))
	for i, k := range keys {
		sets[i] = "set_config('" + k + "', '" + reconcileSession[k] + "', true)"
	}
	return "SELECT " + strings.Join(sets, ", ")
}()

// Pool is the loader's connection pool on the target.
type Pool interface {
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
}

// Target is the loader's target database as a reconciliation reads it.
type Target struct {
	Pool Pool
	// Schema is the schema the job loaded into.
	Schema string
	// Err classifies a database error as the loader does (one of its
	// kinds, the DSN redacted); op says what failed.
	Err func(op string, err error) error
}

// query runs one statement in a read-only transaction under
// reconcileSession and hands each row to scan.
func (t Target) query(ctx context.Context, op, sql string, args []any, scan func(pgx.Rows) error) error {
	tx, err := t.Pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return t.Err(op, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only: nothing to keep
	if _, err := tx.Exec(ctx, sessionSQL); err != nil {
		return t.Err(op, err)
	}
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return t.Err(op, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return t.Err(op, err)
		}
	}
	if err := rows.Err(); err != nil {
		return t.Err(op, err)
	}
	return nil
}
