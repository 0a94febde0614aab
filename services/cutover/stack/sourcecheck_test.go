package stack_test

import (
	"context"
	"database/sql"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/cutover/internal/testenv"
	"github.com/cutover/cutover/services/kit/mysqltest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	gproto "google.golang.org/protobuf/proto"
)

// keylessSpec is a spec over a MariaDB database with one keyed and two
// keyless tables (created_tables: the target is made from the source).
// audit_log holds identical rows and rows its collation calls equal.
func keylessSpec(t *testing.T) (*commonv1.JobSpec, *sql.DB) {
	t.Helper()
	mdsn := mysqltest.NewDatabase(t)
	my, err := sql.Open("mysql", mdsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { my.Close() })
	for _, q := range []string{
		"CREATE TABLE keyed (id int PRIMARY KEY, v varchar(10))",
		"CREATE TABLE audit_log (at datetime, what varchar(40)) COLLATE utf8mb4_general_ci",
		"CREATE TABLE film_text (film_id int, title varchar(40))",
		"INSERT INTO keyed VALUES (1, 'a')",
		"INSERT INTO audit_log VALUES ('2024-01-01 00:00:00', 'x'), ('2024-01-01 00:00:00', 'x'), ('2024-01-01 00:00:00', 'X'), ('2024-01-01 00:00:00', 'x '), (NULL, NULL), (NULL, NULL)",
		"INSERT INTO audit_log SELECT at, what FROM audit_log",
		"INSERT INTO audit_log SELECT at + INTERVAL 1 DAY, what FROM audit_log",
	} {
		if _, err := my.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	src := func(table string) *commonv1.SourceSpec {
		return &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Mysql{Mysql: &commonv1.MysqlSource{Dsn: mdsn, Table: table}}}
	}
	return &commonv1.JobSpec{Name: "keyless", Target: &commonv1.TargetSpec{Schema: "kl", CreateTables: true}, BatchSize: 5,
		Tables: []*commonv1.TableSpec{
			{Name: "keyed", TargetTable: "keyed", Source: src("keyed")},
			{Name: "audit_log", TargetTable: "audit_log", Source: src("audit_log"), Partitions: 4},
			{Name: "film_text", TargetTable: "film_text", Source: src("film_text")},
		}}, my
}

// TestKeylessSourceTables (issue 12, item 2): MariaDB tables without a
// primary key pass ValidateSpec and load in full, in one ordered pass
// each, cut into batches of 5: the target holds the source's rows exactly
// (the multiset by the source's own SQL against the target's), identical
// rows included. Following them (sync) is refused, every one named on the
// source side, and a refused job creates nothing.
func TestKeylessSourceTables(t *testing.T) {
	db := testenv.NewDB(t)
	st, jobs := startStack(t, db)
	conn, err := st.Conn()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	v := orchestratorv1.NewValidationServiceClient(conn)
	spec, my := keylessSpec(t)
	ctx := context.Background()

	sync := gproto.CloneOf(spec)
	for i, col := range []string{"id", "at", "film_id"} {
		sync.Tables[i].Sync = &commonv1.SyncSpec{Kind: &commonv1.SyncSpec_Watermark{Watermark: &commonv1.WatermarkSync{Column: col}}}
	}
	res, err := v.ValidateSpec(ctx, &orchestratorv1.ValidateSpecRequest{Spec: sync})
	if err != nil {
		t.Fatal(err)
	}
	if res.GetOk() || len(res.GetTables()) != 3 || !res.GetTables()[0].GetOk() {
		t.Fatalf("validate sync: %v", res)
	}
	for i, name := range []string{"audit_log", "film_text"} {
		tc := res.GetTables()[i+1]
		if tc.GetOk() || len(tc.GetProblems()) != 1 {
			t.Fatalf("table %s: %v", name, tc)
		}
		p := tc.GetProblems()[0]
		if p.GetField() != "tables["+string(rune('1'+i))+"].sync" || !strings.HasPrefix(p.GetMessage(), "source table ") ||
			!strings.Contains(p.GetMessage(), name+" has no primary key") {
			t.Errorf("problem of %s: field %q message %q", name, p.GetField(), p.GetMessage())
		}
	}
	_, err = jobs.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: sync})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("CreateJob with sync: %v, want FailedPrecondition", err)
	}
	msg := status.Convert(err).Message()
	for _, w := range []string{`tables[1].sync (table "audit_log"): source table`, "audit_log has no primary key", `tables[2].sync (table "film_text"): source table`, "film_text has no primary key"} {
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

	res, err = v.ValidateSpec(ctx, &orchestratorv1.ValidateSpecRequest{Spec: spec})
	if err != nil || !res.GetOk() {
		t.Fatalf("validate a full load of keyless tables: %v, %v", res, err)
	}
	created, err := jobs.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: spec})
	if err != nil {
		t.Fatalf("CreateJob: %v", err)
	}
	job := testenv.WaitJob(t, jobs, created.Job.Id, time.Minute)
	if job.State != orchestratorv1.JobState_JOB_STATE_SUCCEEDED || job.Counts.Loaded != 25 {
		t.Fatalf("job %s %s %+v", job.State, job.Error, job.Counts)
	}
	want := map[string]int{}
	rows, err := my.Query(`SELECT CAST(CONCAT_WS('|', IFNULL(DATE_FORMAT(at, '%Y-%m-%d %H:%i:%s'), 'NULL'), IFNULL(what, 'NULL')) AS BINARY) k, COUNT(*) FROM audit_log GROUP BY k`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			t.Fatal(err)
		}
		want[k] = n
	}
	rows.Close()
	got := map[string]int{}
	for _, r := range db.Strings(`SELECT k || '#' || count(*) FROM (SELECT concat_ws('|', coalesce(to_char(at, 'YYYY-MM-DD HH24:MI:SS'), 'NULL'), coalesce(what, 'NULL')) AS k FROM kl.audit_log) r GROUP BY k`) {
		k, n, _ := strings.Cut(r, "#")
		got[k], _ = strconv.Atoi(n)
	}
	if len(want) != 7 || !reflect.DeepEqual(got, want) {
		t.Fatalf("target rows %v, source rows %v", got, want)
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
