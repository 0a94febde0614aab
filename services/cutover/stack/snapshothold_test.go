package stack_test

import (
	"context"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/cutover/internal/testenv"
	"github.com/cutover/cutover/services/cutover/stack"
	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestSnapshotHold: a cancelled job keeps its PostgreSQL source snapshot
// for a resume only as long as --snapshot-hold; then the session holding it
// (and VACUUM back) on the source is gone, and a resume is refused with the
// reason instead of reading other data than the finished partitions did.
func TestSnapshotHold(t *testing.T) {
	src := testenv.NewDB(t)
	src.Exec(`CREATE TABLE big (id bigint PRIMARY KEY, v text)`, `INSERT INTO big SELECT g, 'v' || g FROM generate_series(1, 20000) g`)
	db := testenv.NewDB(t)
	db.Exec(`CREATE TABLE big (id bigint PRIMARY KEY, v text)`)
	_, jobs := startStackWith(t, db, func(c *stack.Config) { c.Orchestrator.SnapshotHold = 3 * time.Second })
	ctx := context.Background()

	// The target table is locked: the job runs and cannot finish.
	tc, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close(ctx)
	tx, err := tc.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE big IN SHARE MODE`); err != nil {
		t.Fatal(err)
	}
	created, err := jobs.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: &commonv1.JobSpec{Name: "held", BatchSize: 1000,
		Tables: []*commonv1.TableSpec{{Name: "big", TargetTable: "big", Partitions: 2,
			Source:  &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Postgres{Postgres: &commonv1.PostgresSource{Dsn: src.URL, Table: "big"}}},
			Columns: cols("id", "v")}}}})
	if err != nil {
		t.Fatal(err)
	}
	id := created.Job.Id
	holders := func() int64 {
		return src.Int(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND query ILIKE '%pg_export_snapshot%'`)
	}
	if n := holders(); n != 1 {
		t.Fatalf("%d sessions export the job's snapshot on the source, want 1", n)
	}
	if _, err := jobs.CancelJob(ctx, &orchestratorv1.CancelJobRequest{Id: id}); err != nil {
		t.Fatal(err)
	}
	_ = tx.Rollback(ctx)
	if j := testenv.WaitJob(t, jobs, id, time.Minute); j.State != orchestratorv1.JobState_JOB_STATE_CANCELLED {
		t.Fatalf("job %s after cancel", j.State)
	}
	deadline := time.Now().Add(time.Minute)
	for holders() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the cancelled job's snapshot is still held on the source a minute after its hold ran out")
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, err = jobs.ResumeJob(ctx, &orchestratorv1.ResumeJobRequest{Id: id})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "CUTOVER_SNAPSHOT_HOLD") {
		t.Fatalf("resume after the hold: %v, want FailedPrecondition naming CUTOVER_SNAPSHOT_HOLD", err)
	}
}
