package stack_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/cutover/internal/testenv"
	"github.com/cutover/cutover/services/kit/mysqltest"
	_ "github.com/go-sql-driver/mysql"
)

// TestZeroDatesIntoNotNullColumns (issue 12): with create_tables and
// zero_dates NULL, a NOT NULL datetime column holding zero dates is created
// NULLable, every row loads, the zero date is NULL and the report's DDL says
// NOT NULL was dropped; other NOT NULL columns keep it. Under the default
// policy the zero-date row is quarantined as before and NOT NULL stays.
func TestZeroDatesIntoNotNullColumns(t *testing.T) {
	mdsn := mysqltest.NewDatabase(t)
	my, err := sql.Open("mysql", mdsn)
	if err != nil {
		t.Fatal(err)
	}
	defer my.Close()
	ctx := context.Background()
	conn, err := my.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"SET SESSION sql_mode = ''",
		"CREATE TABLE orders (id int PRIMARY KEY, name varchar(20) NOT NULL, placed datetime NOT NULL, shipped date NOT NULL, note varchar(20))",
		"INSERT INTO orders VALUES (1, 'a', '2024-05-06 07:08:09', '2024-05-07', NULL), (2, 'b', '0000-00-00 00:00:00', '2024-05-08', 'zero'), (3, 'c', '2024-06-01 00:00:00', '2024-06-02', NULL)",
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	conn.Close()
	db := testenv.NewDB(t)
	_, jobs := startStack(t, db)
	run := func(schema string, policy commonv1.ZeroDatePolicy) *orchestratorv1.Job {
		spec := &commonv1.JobSpec{Name: "zero dates " + schema,
			Target: &commonv1.TargetSpec{Schema: schema, CreateTables: true},
			Tables: []*commonv1.TableSpec{{Name: "orders", TargetTable: "orders",
				Source: &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Mysql{Mysql: &commonv1.MysqlSource{
					Dsn: mdsn, Table: "orders", ZeroDates: policy}}}}}}
		created, err := jobs.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: spec})
		if err != nil {
			t.Fatalf("CreateJob: %v", err)
		}
		return testenv.WaitJob(t, jobs, created.Job.Id, time.Minute)
	}
	columns := func(schema string) string {
		return strings.Join(db.Strings(`SELECT attname || CASE WHEN attnotnull THEN ' NOT NULL' ELSE '' END
			FROM pg_attribute WHERE attrelid = ($1 || '.orders')::regclass AND attnum > 0 ORDER BY attnum`, schema), "|")
	}
	ddlOf := func(job *orchestratorv1.Job) string {
		rep, err := jobs.GetJobReport(ctx, &orchestratorv1.GetJobReportRequest{Id: job.Id})
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(rep.Report.Ddl, "\n")
	}

	job := run("zd_null", commonv1.ZeroDatePolicy_ZERO_DATE_POLICY_NULL)
	if job.State != orchestratorv1.JobState_JOB_STATE_SUCCEEDED || job.Counts.Loaded != 3 || job.Counts.Quarantined != 0 {
		t.Fatalf("zero_dates NULL: %s %s %+v; quarantine: %v", job.State, job.Error, job.Counts,
			db.Strings(`SELECT rule || ' ' || coalesce(column_name, '') || ': ' || reason FROM cutover.quarantine WHERE job_id = $1`, job.Id))
	}
	if got := columns("zd_null"); got != "id NOT NULL|name NOT NULL|placed|shipped|note" {
		t.Errorf("zero_dates NULL columns: %s", got)
	}
	if got := strings.Join(db.Strings(`SELECT id || ' ' || coalesce(placed::text, 'NULL') FROM zd_null.orders ORDER BY id`), "|"); got !=
		"1 2024-05-06 07:08:09|2 NULL|3 2024-06-01 00:00:00" {
		t.Errorf("loaded rows: %s", got)
	}
	ddl := ddlOf(job)
	for _, w := range []string{
		`-- not carried over: NOT NULL of "zd_null"."orders"."placed" (zero dates load as NULL (zero_dates: NULL))`,
		`-- not carried over: NOT NULL of "zd_null"."orders"."shipped" (zero dates load as NULL (zero_dates: NULL))`,
		`"name" varchar(20) NOT NULL`,
	} {
		if !strings.Contains(ddl, w) {
			t.Errorf("report DDL lacks %q:\n%s", w, ddl)
		}
	}
	if strings.Contains(ddl, `NOT NULL of "zd_null"."orders"."name"`) || strings.Contains(ddl, `NOT NULL of "zd_null"."orders"."id"`) {
		t.Errorf("report DDL drops NOT NULL of a column that cannot hold a zero date:\n%s", ddl)
	}

	// The default policy: as before, the zero-date row is quarantined and
	// the columns stay NOT NULL.
	job = run("zd_q", commonv1.ZeroDatePolicy_ZERO_DATE_POLICY_UNSPECIFIED)
	if job.State != orchestratorv1.JobState_JOB_STATE_SUCCEEDED || job.Counts.Loaded != 2 || job.Counts.Quarantined != 1 {
		t.Fatalf("default policy: %s %s %+v", job.State, job.Error, job.Counts)
	}
	if got := columns("zd_q"); got != "id NOT NULL|name NOT NULL|placed NOT NULL|shipped NOT NULL|note" {
		t.Errorf("default policy columns: %s", got)
	}
	if rules := db.Strings(`SELECT source_ref || ' ' || rule FROM cutover.quarantine WHERE job_id = $1`, job.Id); strings.Join(rules, "|") != "id=2 zero_date" {
		t.Errorf("default policy quarantine: %q", rules)
	}
	if ddl := ddlOf(job); strings.Contains(ddl, "NOT NULL of") {
		t.Errorf("default policy drops NOT NULL:\n%s", ddl)
	}
}
