package load

import (
	"context"
	"strings"
	"testing"

	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestTruncateOncePerJob (target.if_exists truncate): the tables are copied
// and emptied once per job, a parent and its child together; a later call
// (a resumed partition) leaves the rows the job loaded since; the rollback
// brings back the earlier rows from the copies. DescribeTarget counts rows
// when asked.
func TestTruncateOncePerJob(t *testing.T) {
	e := newEnv(t,
		`CREATE TABLE tp (id bigint PRIMARY KEY, name text)`,
		`CREATE TABLE tc (id bigint PRIMARY KEY, tp_id bigint REFERENCES tp(id))`,
		`INSERT INTO tp SELECT g, 'p' || g FROM generate_series(1, 5) g`,
		`INSERT INTO tc SELECT g, g FROM generate_series(1, 3) g`)
	ctx := context.Background()
	before := map[string]string{"tp": e.checksum(t, "tp"), "tc": e.checksum(t, "tc")}

	d, err := e.client.DescribeTarget(ctx, &loaderv1.DescribeTargetRequest{Target: e.target(), Table: "tp", CountRows: true})
	if err != nil || d.GetRows() != 5 {
		t.Fatalf("DescribeTarget count_rows: %v %v", d.GetRows(), err)
	}
	if d, _ := e.client.DescribeTarget(ctx, &loaderv1.DescribeTargetRequest{Target: e.target(), Table: "tp"}); d.GetRows() != 0 {
		t.Errorf("rows counted without count_rows: %d", d.GetRows())
	}

	// The copies first (CreateJob), then the truncation (first partition).
	if _, err := e.client.BackupTables(ctx, &loaderv1.BackupTablesRequest{Target: e.target(), JobId: "job-t", Tables: []string{"tp", "tc"}}); err != nil {
		t.Fatal(err)
	}
	if n := e.count(t, "SELECT count(*) FROM tp"); n != 5 {
		t.Fatalf("backup alone emptied tp: %d rows", n)
	}
	r, err := e.client.BackupTables(ctx, &loaderv1.BackupTablesRequest{Target: e.target(), JobId: "job-t", Tables: []string{"tp", "tc"}, Truncate: true})
	if err != nil || !r.GetTruncated() {
		t.Fatalf("truncate: %v %v", r, err)
	}
	if e.count(t, "SELECT count(*) FROM tp") != 0 || e.count(t, "SELECT count(*) FROM tc") != 0 {
		t.Fatalf("tables not emptied")
	}
	if _, err := e.load(t, e.config("tp", "job-t", "p"), withRefs(mkBatch(0,
		col{"id", tInt, []any{1, 9}}, col{"name", tText, []any{"new1", "new9"}}), "r1", "r2")); err != nil {
		t.Fatal(err)
	}
	// A resumed partition asks again: nothing is emptied.
	r, err = e.client.BackupTables(ctx, &loaderv1.BackupTablesRequest{Target: e.target(), JobId: "job-t", Tables: []string{"tp", "tc"}, Truncate: true})
	if err != nil || r.GetTruncated() {
		t.Fatalf("second truncate: %v %v", r, err)
	}
	if n := e.count(t, "SELECT count(*) FROM tp"); n != 2 {
		t.Fatalf("second call touched the loaded rows: %d rows, want 2", n)
	}

	// A table referenced from outside the job is not emptied.
	if _, err := e.client.BackupTables(ctx, &loaderv1.BackupTablesRequest{Target: e.target(), JobId: "job-u", Tables: []string{"tp"}, Truncate: true}); status.Code(err) != codes.FailedPrecondition ||
		!strings.Contains(err.Error(), "if_exists") {
		t.Errorf("truncate of a referenced table: %v", err)
	}

	if got := rolled(e.rollback(t, "job-t", "tp", "tc")); got != "tp -2 ~5 backup; tc -0 ~3 backup" {
		t.Errorf("rollback = %s", got)
	}
	for table, sum := range before {
		if got := e.checksum(t, table); got != sum {
			t.Errorf("%s after rollback: %s, want %s", table, got, sum)
		}
	}
}
