package reconcile

import (
	"context"
	"fmt"
	"testing"

	"github.com/cutover/cutover/services/kit/pgtest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// testTarget is a pool on a fresh database, as the loader holds one, and
// the Target reading through it. The database's own settings print values
// otherwise than reconcileSession in every way they can, as a target's
// may: the session pinned per transaction must win.
func testTarget(t *testing.T) (*pgxpool.Pool, Target) {
	t.Helper()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	var db string
	if err := pool.QueryRow(ctx, `SELECT current_database()`).Scan(&db); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"TimeZone": "Asia/Shanghai", "DateStyle": "SQL, DMY", "IntervalStyle": "sql_standard",
		"extra_float_digits": "-3", "bytea_output": "escape"} {
		if _, err := pool.Exec(ctx, fmt.Sprintf(`ALTER DATABASE %s SET %s = '%s'`, pgx.Identifier{db}.Sanitize(), k, v)); err != nil {
			t.Fatal(err)
		}
	}
	pool.Close() // the settings apply to new connections
	if pool, err = pgxpool.New(ctx, url); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool, Target{Pool: pool, Schema: "public", Err: func(op string, err error) error { return fmt.Errorf("%s: %w", op, err) }}
}
