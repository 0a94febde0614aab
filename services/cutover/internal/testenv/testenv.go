// Package testenv holds what the end-to-end tests share: databases, SQL
// helpers and job waiting. Everything here talks to real servers.
package testenv

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/kit/pgtest"
	"github.com/jackc/pgx/v5"
)

// DB is a fresh PostgreSQL database for one test.
type DB struct {
	t   testing.TB
	URL string
}

// NewDB creates a database dropped when the test ends.
func NewDB(t testing.TB) *DB { return &DB{t: t, URL: pgtest.NewDatabase(t)} }

func (d *DB) conn() *pgx.Conn {
	d.t.Helper()
	c, err := pgx.Connect(context.Background(), d.URL)
	if err != nil {
		d.t.Fatalf("connect: %v", err)
	}
	return c
}

// Exec runs statements, failing the test on error.
func (d *DB) Exec(sql ...string) {
	d.t.Helper()
	c := d.conn()
	defer c.Close(context.Background())
	for _, s := range sql {
		if _, err := c.Exec(context.Background(), s); err != nil {
			d.t.Fatalf("exec %q: %v", s, err)
		}
	}
}

// Int returns the single integer a query yields.
func (d *DB) Int(sql string, args ...any) int64 {
	d.t.Helper()
	c := d.conn()
	defer c.Close(context.Background())
	var n int64
	if err := c.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		d.t.Fatalf("query %q: %v", sql, err)
	}
	return n
}

// Strings returns the rows of a one-column text query.
func (d *DB) Strings(sql string, args ...any) []string {
	d.t.Helper()
	c := d.conn()
	defer c.Close(context.Background())
	rows, err := c.Query(context.Background(), sql, args...)
	if err != nil {
		d.t.Fatalf("query %q: %v", sql, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		d.t.Fatalf("query %q: %v", sql, err)
	}
	return out
}

// WriteFile writes a file in the test's temp dir and returns its path.
func WriteFile(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// WaitJob polls until the job ends and returns it.
func WaitJob(t testing.TB, jobs orchestratorv1.JobServiceClient, id string, timeout time.Duration) *orchestratorv1.Job {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r, err := jobs.GetJob(context.Background(), &orchestratorv1.GetJobRequest{Id: id})
		if err != nil {
			t.Fatalf("GetJob %s: %v", id, err)
		}
		switch r.Job.State {
		case orchestratorv1.JobState_JOB_STATE_SUCCEEDED, orchestratorv1.JobState_JOB_STATE_FAILED, orchestratorv1.JobState_JOB_STATE_CANCELLED:
			return r.Job
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still %s after %s: %+v", id, r.Job.State, timeout, r.Job)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// FileRoots are where the tests' file sources lie: temporary files and the
// repository's examples (from a package directory services/cutover/<pkg>).
func FileRoots(t testing.TB) []string {
	ex, err := filepath.Abs(filepath.Join("..", "..", "..", "examples"))
	if err != nil {
		t.Fatal(err)
	}
	return []string{os.TempDir(), ex}
}
