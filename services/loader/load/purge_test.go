package load

import (
	"context"
	"slices"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestPurgeJob: purging a job removes its ledger, lineage and quarantine
// rows, its staging table and its backup copy, and nothing of another
// job's; the rows it loaded stay; afterwards it can be neither rolled back
// nor loaded into, and a second purge is a no-op.
func TestPurgeJob(t *testing.T) {
	e := newEnv(t, itemsDDL, `CREATE TABLE staged_items (id int8 PRIMARY KEY, name text)`, `INSERT INTO items VALUES (100, 'old', 1)`)
	ctx := context.Background()
	if _, err := e.client.BackupTables(ctx, &loaderv1.BackupTablesRequest{Target: e.target(), JobId: "job-a", Tables: []string{"items"}}); err != nil {
		t.Fatal(err)
	}
	a := withRefs(itemsBatch(1, []any{1, 2, 3}, []any{"a", "b", "c"}, []any{1, 2, 3}), "r1", "r2", "r3")
	a.Rejects = []*commonv1.Reject{rejectRow(2)}
	if _, err := e.load(t, e.config("items", "job-a", "p0"), a); err != nil {
		t.Fatal(err)
	}
	staged := e.config("staged_items", "job-a", "p1")
	staged.Staged, staged.TableName = true, "staged_items"
	if _, err := e.load(t, staged, withRefs(mkBatch(1, col{"id", tInt, []any{7}}, col{"name", tText, []any{"s"}}), "s7")); err != nil {
		t.Fatal(err)
	}
	b := withRefs(itemsBatch(1, []any{11, 12}, []any{"k", "l"}, []any{1, 2}), "q1", "q2")
	b.Rejects = []*commonv1.Reject{rejectRow(1)}
	if _, err := e.load(t, e.config("items", "job-b", "p0"), b); err != nil {
		t.Fatal(err)
	}
	count := func(table, job string) int64 {
		return e.count(t, `SELECT count(*) FROM cutover.`+table+` WHERE job_id = $1`, job)
	}
	for _, tbl := range []string{"ledger", "lineage", "quarantine", "backups"} {
		if count(tbl, "job-a") == 0 {
			t.Fatalf("job-a has no %s rows before the purge", tbl)
		}
	}
	bBefore := map[string]int64{}
	for _, tbl := range []string{"ledger", "lineage", "quarantine"} {
		if bBefore[tbl] = count(tbl, "job-b"); bBefore[tbl] == 0 {
			t.Fatalf("job-b has no %s rows", tbl)
		}
	}
	tables := func(schema string) int64 {
		return e.count(t, `SELECT count(*) FROM pg_tables WHERE schemaname = $1`, schema)
	}
	if tables(stageSchema) != 1 || tables(backupSchema) != 1 {
		t.Fatalf("before the purge: %d staging, %d backup tables; want 1 each", tables(stageSchema), tables(backupSchema))
	}

	res, err := e.client.PurgeJob(ctx, &loaderv1.PurgeJobRequest{Target: e.target(), JobId: "job-a", Tables: []string{"items"}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, c := range res.GetCounts() {
		got[c.GetTable()] = c.GetRows()
	}
	if got["cutover.ledger"] != 2 || got["cutover.lineage"] < 1 || got["cutover.quarantine"] != 1 || got["cutover.backups"] != 1 {
		t.Errorf("purge counts %v", got)
	}
	if !slices.Contains(res.GetDroppedTables(), stageSchema+"."+stageName("job-a", "staged_items")) ||
		!slices.Contains(res.GetDroppedTables(), backupSchema+"."+stageName("job-a", "items")) {
		t.Errorf("dropped %v, want the staging table and the backup copy", res.GetDroppedTables())
	}
	for _, tbl := range []string{"ledger", "lineage", "quarantine", "backups", "before_images", "finalized", "warnings", "filtered"} {
		if n := count(tbl, "job-a"); n != 0 {
			t.Errorf("%d %s rows of job-a left", n, tbl)
		}
	}
	for tbl, n := range bBefore {
		if got := count(tbl, "job-b"); got != n {
			t.Errorf("job-b's %s rows went from %d to %d", tbl, n, got)
		}
	}
	if tables(stageSchema) != 0 || tables(backupSchema) != 0 {
		t.Errorf("after the purge: %d staging, %d backup tables left", tables(stageSchema), tables(backupSchema))
	}
	if n := e.count(t, `SELECT count(*) FROM items WHERE id IN (1, 2)`); n != 2 {
		t.Errorf("%d of job-a's loaded rows left in the target, want 2 (a purge removes bookkeeping, not data)", n)
	}

	// Rollback is no longer possible, and the job writes nothing more.
	_, err = e.client.Rollback(ctx, &loaderv1.RollbackRequest{Target: e.target(), JobId: "job-a", Tables: []string{"items"}})
	if st := status.Convert(err); st.Code() != codes.FailedPrecondition || !strings.Contains(st.Message(), "can no longer be rolled back") {
		t.Errorf("rollback of a purged job: %v, want FailedPrecondition", err)
	}
	_, err = e.load(t, e.config("items", "job-a", "p0"), itemsBatch(2, []any{5}, []any{"e"}, []any{5}))
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("load for a purged job: %v, want FailedPrecondition", err)
	}
	if n := e.count(t, `SELECT count(*) FROM items WHERE id = 5`); n != 0 {
		t.Error("a purged job loaded a row")
	}
	res, err = e.client.PurgeJob(ctx, &loaderv1.PurgeJobRequest{Target: e.target(), JobId: "job-a"})
	if err != nil {
		t.Fatalf("second purge: %v", err)
	}
	for _, c := range res.GetCounts() {
		if c.GetRows() != 0 {
			t.Errorf("second purge removed %d rows of %s", c.GetRows(), c.GetTable())
		}
	}

	// The other job is whole: it still rolls back.
	r := e.rollback(t, "job-b", "items")
	if rolled(r) != "items -1 ~0" {
		t.Errorf("rollback of job-b: %s", rolled(r))
	}
	if n := e.count(t, `SELECT count(*) FROM items WHERE id IN (11, 12)`); n != 0 {
		t.Errorf("%d rows of job-b left after its rollback", n)
	}
	if _, err := e.client.PurgeJob(ctx, &loaderv1.PurgeJobRequest{Target: e.target()}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("purge without a job id: %v", err)
	}
}
