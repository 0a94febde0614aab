// Package migrate applies a service's schema DDL once per version of it.
//
// Every replica runs its DDL at start, and DDL such as ALTER TABLE … ADD
// COLUMN IF NOT EXISTS takes an exclusive lock on the table even when there
// is nothing to add: a replica starting while another is busy on those
// tables would queue behind its row locks or deadlock with it. So the DDL
// runs under an advisory lock (replicas starting together wait for one
// another) and only when its text differs from the last applied (a
// replica of the same version changes nothing and locks nothing).
package migrate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Beginner opens a transaction (a pgxpool.Pool or a pgx.Conn).
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Apply runs ddl in schema (created if missing) unless this exact ddl was
// the last applied there for component; lock is the advisory lock key.
func Apply(ctx context.Context, db Beginner, lock int64, schema, component, ddl string) error {
	sum := sha256.Sum256([]byte(ddl))
	version := hex.EncodeToString(sum[:])
	tx, err := db.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit: a no-op
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lock); err != nil {
		return fmt.Errorf("schema lock: %w", err)
	}
	s := pgx.Identifier{schema}.Sanitize()
	if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+s+`;
CREATE TABLE IF NOT EXISTS `+s+`.schema_versions (
	component text PRIMARY KEY,
	ddl_sha256 text NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`); err != nil {
		return fmt.Errorf("schema versions: %w", err)
	}
	var have string
	err = tx.QueryRow(ctx, `SELECT ddl_sha256 FROM `+s+`.schema_versions WHERE component = $1`, component).Scan(&have)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("schema versions: %w", err)
	}
	if have == version {
		return tx.Commit(ctx)
	}
	if _, err := tx.Exec(ctx, ddl); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO `+s+`.schema_versions (component, ddl_sha256) VALUES ($1, $2)
		ON CONFLICT (component) DO UPDATE SET ddl_sha256 = EXCLUDED.ddl_sha256, applied_at = now()`, component, version); err != nil {
		return fmt.Errorf("schema versions: %w", err)
	}
	return tx.Commit(ctx)
}
