package load

import (
	"context"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	"github.com/cutover/cutover/services/kit/reserved"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestReservedSchemaIsRefused: a load, a DDL or a backup aimed at one of
// cutover's own schemas or PostgreSQL's is refused with InvalidArgument
// naming the field, and nothing is written: the ledger, lineage and
// quarantine keep what they had, and no table appears.
func TestReservedSchemaIsRefused(t *testing.T) {
	e := newEnv(t, itemsDDL)
	ctx := context.Background()
	// A legitimate load first, so the bookkeeping exists and holds rows.
	b := withRefs(itemsBatch(1, []any{1, 2}, []any{"a", "b"}, []any{1, 2}), "r1", "r2")
	b.Rejects = []*commonv1.Reject{rejectRow(1)}
	if _, err := e.load(t, e.config("items", "job-ok", "p0"), b); err != nil {
		t.Fatal(err)
	}
	snapshot := func() string {
		var out []string
		for _, q := range []string{
			`SELECT count(*) FROM cutover.ledger`, `SELECT count(*) FROM cutover.lineage`, `SELECT count(*) FROM cutover.quarantine`,
			`SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')`,
		} {
			out = append(out, itoa(e.count(t, q)))
		}
		return strings.Join(out, "/")
	}
	before := snapshot()
	for _, schema := range []string{"cutover", "Cutover", `"Cutover"`, " CUTOVER ", "cutover_stage", "cutover_backup", "cutover_control",
		"pg_catalog", "PG_CATALOG", "pg_toast", "pg_temp_3", "information_schema"} {
		target := &commonv1.TargetSpec{Dsn: e.dsn, Schema: schema}
		want := "target.schema: schema " + `"` + strings.ReplaceAll(schema, `"`, `\"`) + `" is reserved`
		check := func(what string, err error) {
			t.Helper()
			if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), want) {
				t.Errorf("%s into schema %q: %v, want InvalidArgument containing %q", what, schema, err, want)
			}
		}
		for _, table := range []string{"lineage", "ledger", "quarantine", "jobs"} {
			cfg := &loaderv1.LoadConfig{Target: target, Table: table, JobId: "job-forged", PartitionId: "p0"}
			forged := withRefs(mkBatch(1, col{"job_id", tText, []any{"job-victim"}}), "r")
			_, err := e.load(t, cfg, forged)
			check("load into "+table, err)
		}
		_, err := e.client.CreateTables(ctx, &loaderv1.CreateTablesRequest{Target: target,
			Tables: []*loaderv1.TableDefinition{{Name: "x", Columns: []*loaderv1.ColumnDefinition{{Name: "a", PgType: "int"}}}}})
		check("create tables", err)
		_, err = e.client.BackupTables(ctx, &loaderv1.BackupTablesRequest{Target: target, JobId: "job-forged", Tables: []string{"ledger"}})
		check("backup", err)
		_, err = e.client.DescribeTarget(ctx, &loaderv1.DescribeTargetRequest{Target: target, Table: "ledger"})
		check("describe", err)
		_, err = e.client.Rollback(ctx, &loaderv1.RollbackRequest{Target: target, JobId: "job-ok", Tables: []string{"items"}})
		check("rollback", err)
	}
	if after := snapshot(); after != before {
		t.Fatalf("bookkeeping rows / tables went from %s to %s", before, after)
	}
	if n := e.count(t, `SELECT count(*) FROM cutover.ledger WHERE job_id <> 'job-ok'`); n != 0 {
		t.Fatalf("%d ledger rows of other jobs", n)
	}
}

// TestReservedSearchPathIsRefused: a target DSN whose search_path names a
// reserved schema, however it is written, is refused before anything is
// written.
func TestReservedSearchPathIsRefused(t *testing.T) {
	e := newEnv(t, itemsDDL)
	sep := "?"
	if strings.Contains(e.dsn, "?") {
		sep = "&"
	}
	for _, q := range []string{"options=-csearch_path%3Dcutover", "options=-c%20search_path%3Dpublic,Cutover", "search_path=cutover_control",
		"options=--search-path%3D%22pg_catalog%22"} {
		target := &commonv1.TargetSpec{Dsn: e.dsn + sep + q}
		cfg := &loaderv1.LoadConfig{Target: target, Table: "items", JobId: "job-sp", PartitionId: "p0"}
		_, err := e.load(t, cfg, itemsBatch(1, []any{1}, []any{"a"}, []any{1}))
		if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "target.dsn: its search_path names schema") {
			t.Errorf("%s: %v, want InvalidArgument naming target.dsn", q, err)
		}
	}
	if n := e.count(t, `SELECT count(*) FROM items`); n != 0 {
		t.Fatalf("%d rows loaded through a refused DSN", n)
	}
	// A search_path of the job's own schemas is fine.
	target := &commonv1.TargetSpec{Dsn: e.dsn + sep + "options=-csearch_path%3Dpublic"}
	if _, err := e.load(t, &loaderv1.LoadConfig{Target: target, Table: "items", JobId: "job-sp", PartitionId: "p0"},
		itemsBatch(1, []any{1}, []any{"a"}, []any{1})); err != nil {
		t.Fatalf("search_path=public: %v", err)
	}
}

// TestReservedSchemasAreTheLoaders: the schemas the loader writes its own
// tables into are the ones the kit reserves (the parsing is tested there).
func TestReservedSchemasAreTheLoaders(t *testing.T) {
	for _, tc := range []struct{ loader, kit string }{
		{bookkeepingSchema, reserved.Bookkeeping}, {stageSchema, reserved.Stage}, {backupSchema, reserved.Backup},
	} {
		if tc.loader != tc.kit || reservedSchema(tc.loader) == "" {
			t.Errorf("the loader's schema %q is not the kit's reserved %q", tc.loader, tc.kit)
		}
	}
}
