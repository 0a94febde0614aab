package migrate

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/services/kit/pgtest"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const ddl = `CREATE TABLE IF NOT EXISTS app.t (id int PRIMARY KEY);
ALTER TABLE app.t ADD COLUMN IF NOT EXISTS v text;`

// Replicas starting together both succeed; a replica starting while
// another holds row locks on the tables (a claim in flight) does not wait
// for it, because the same DDL is not run twice.
func TestApplyOncePerVersion(t *testing.T) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = Apply(ctx, pool, 42, "app", "test", ddl) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("replicas starting together: %v", err)
	}
	// A transaction holding a row lock, as a running replica's claim does.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	if _, err := tx.Exec(ctx, `INSERT INTO app.t VALUES (1, 'x')`); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := Apply(short, pool, 42, "app", "test", ddl); err != nil {
		t.Fatalf("the same version again, beside a busy replica: %v", err)
	}
	// A new version does run (and so waits for the lock holder).
	newer := ddl + "\nALTER TABLE app.t ADD COLUMN IF NOT EXISTS w int;"
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := Apply(ctx, pool, 42, "app", "test", newer); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.columns WHERE table_schema = 'app' AND table_name = 't' AND column_name = 'w'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("the newer version's column: %d %v", n, err)
	}
	var have string
	if err := pool.QueryRow(ctx, `SELECT ddl_sha256 FROM app.schema_versions WHERE component = 'test'`).Scan(&have); err != nil || len(have) != 64 {
		t.Fatalf("version row: %q %v", have, err)
	}
}
