package stack_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/cutover/internal/testenv"
	"github.com/cutover/cutover/services/kit/mysqltest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// keylessSpec is a spec over a MariaDB database with one keyed and two
// keyless tables (created_tables: the target is made from the source).
func keylessSpec(t *testing.T) *commonv1.JobSpec {
	t.Helper()
	mdsn := mysqltest.NewDatabase(t)
	my, err := sql.Open("mysql", mdsn)
	if err != nil {
		t.Fatal(err)
	}
	defer my.Close()
	for _, q := range []string{
		"CREATE TABLE keyed (id int PRIMARY KEY, v varchar(10))",
		"CREATE TABLE audit_log (at datetime, what varchar(40))",
		"CREATE TABLE film_text (film_id int, title varchar(40))",
		"INSERT INTO keyed VALUES (1, 'a')",
		"INSERT INTO audit_log VALUES ('2024-01-01 00:00:00', 'x')",
	} {
		if _, err := my.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	src := func(table string) *commonv1.SourceSpec {
		return &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Mysql{Mysql: &commonv1.MysqlSource{Dsn: mdsn, Table: table}}}
	}
	return &commonv1.JobSpec{Name: "keyless", Target: &commonv1.TargetSpec{Schema: "kl", CreateTables: true},
		Tables: []*commonv1.TableSpec{
			{Name: "keyed", TargetTable: "keyed", Source: src("keyed")},
			{Name: "audit_log", TargetTable: "audit_log", Source: src("audit_log")},
			{Name: "film_text", TargetTable: "film_text", Source: src("film_text")},
		}}
}

// TestKeylessSourceTablesAreAllNamed: ValidateSpec, DryRun and CreateJob
// (FailedPrecondition) name every source table without a primary key, on the source side, and
// nothing is created in the target.
func TestKeylessSourceTablesAreAllNamed(t *testing.T) {
	db := testenv.NewDB(t)
	st, jobs := startStack(t, db)
	conn, err := st.Conn()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	v := orchestratorv1.NewValidationServiceClient(conn)
	spec := keylessSpec(t)
	ctx := context.Background()

	res, err := v.ValidateSpec(ctx, &orchestratorv1.ValidateSpecRequest{Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	if res.GetOk() || len(res.GetTables()) != 3 || !res.GetTables()[0].GetOk() {
		t.Fatalf("validate: %v", res)
	}
	for i, name := range []string{"audit_log", "film_text"} {
		tc := res.GetTables()[i+1]
		if tc.GetOk() || len(tc.GetProblems()) != 1 {
			t.Fatalf("table %s: %v", name, tc)
		}
		p := tc.GetProblems()[0]
		if p.GetField() != "tables["+string(rune('1'+i))+"].source" || !strings.HasPrefix(p.GetMessage(), "source table ") ||
			!strings.Contains(p.GetMessage(), name+" has no primary key") {
			t.Errorf("problem of %s: field %q message %q", name, p.GetField(), p.GetMessage())
		}
	}

	dry, err := v.DryRun(ctx, &orchestratorv1.DryRunRequest{Spec: spec})
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if dry.GetOk() || len(dry.GetTables()) != 3 || dry.GetTables()[1].GetOk() || dry.GetTables()[2].GetOk() {
		t.Fatalf("dry run: %v", dry)
	}

	_, err = jobs.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: spec})
	// A source that cannot be read is FailedPrecondition, as a target that
	// cannot take the data is: the spec may be right, the database is not.
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("CreateJob: %v, want FailedPrecondition", err)
	}
	msg := status.Convert(err).Message()
	for _, w := range []string{`tables[1].source (table "audit_log"): source table`, "audit_log has no primary key", `tables[2].source (table "film_text"): source table`, "film_text has no primary key"} {
		if !strings.Contains(msg, w) {
			t.Errorf("CreateJob message lacks %q: %s", w, msg)
		}
	}
	if strings.Contains(msg, "target cannot take") {
		t.Errorf("a source problem is blamed on the target: %s", msg)
	}
	if n := db.Int(`SELECT count(*) FROM information_schema.tables WHERE table_schema = 'kl'`); n != 0 {
		t.Fatalf("a refused job created %d tables", n)
	}
}

// TestDryRunWithCreateTables: with create_tables and no target table yet,
// a dry run uses the table create_tables would make, returns sample rows,
// and creates nothing.
func TestDryRunWithCreateTables(t *testing.T) {
	src, db := testenv.NewDB(t), testenv.NewDB(t)
	src.Exec(`CREATE SCHEMA crm`,
		`CREATE TABLE crm.customers (id int PRIMARY KEY, name varchar(40) NOT NULL, credit numeric(12,3), born date)`,
		`INSERT INTO crm.customers SELECT g, 'name ' || g, g * 1.125, date '1990-01-01' + g FROM generate_series(1, 30) g`)
	v := validationClient(t, db)
	spec := &commonv1.JobSpec{Name: "copy crm",
		Target: &commonv1.TargetSpec{Schema: "crm_new", CreateTables: true},
		Tables: []*commonv1.TableSpec{{Name: "customers", TargetTable: "customers", Source: pgTable(src.URL, "crm", "customers")}}}
	ctx := context.Background()
	res, err := v.DryRun(ctx, &orchestratorv1.DryRunRequest{Spec: spec, Sample: 10, Rows: 3})
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if !res.GetOk() || len(res.GetTables()) != 1 {
		t.Fatalf("dry run: %v", res)
	}
	dt := res.GetTables()[0]
	if dt.GetCounts().GetExtracted() != 10 || dt.GetCounts().GetLoaded() != 10 || len(dt.GetRows()) != 3 ||
		strings.Join(dt.GetColumns(), ",") != "id,name,credit,born" || dt.GetRows()[0].GetValues()[1].GetText() != "name 1" {
		t.Fatalf("dry run table: %v", dt)
	}
	if n := db.Int(`SELECT count(*) FROM information_schema.tables WHERE table_schema = 'crm_new'`); n != 0 {
		t.Fatalf("dry run created %d tables", n)
	}
	if n := db.Int(`SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'crm_new'`); n != 0 {
		t.Fatalf("dry run created the schema")
	}
	val, err := v.ValidateSpec(ctx, &orchestratorv1.ValidateSpecRequest{Spec: spec})
	if err != nil || !val.GetOk() {
		t.Fatalf("validate: %v, %v", val, err)
	}
}
