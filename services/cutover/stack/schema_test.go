package stack_test

import (
	"context"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/cutover/internal/testenv"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func pgTable(dsn, schema, table string) *commonv1.SourceSpec {
	return &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Postgres{Postgres: &commonv1.PostgresSource{Dsn: dsn, Schema: schema, Table: table}}}
}

// TestCreateTablesFromSource: with create_tables and no column mappings the
// target tables are created from the source (types, NOT NULL), loaded, and
// given their primary and foreign keys afterwards; the report lists the DDL.
func TestCreateTablesFromSource(t *testing.T) {
	src, db := testenv.NewDB(t), testenv.NewDB(t)
	src.Exec(`CREATE SCHEMA crm`,
		`CREATE TABLE crm.customers (id int PRIMARY KEY, name varchar(40) NOT NULL, credit numeric(12,3), born date, seen timestamptz, vip boolean, photo bytea)`,
		`CREATE TABLE crm.orders (no bigint PRIMARY KEY, customer_id int REFERENCES crm.customers(id), total numeric(10,2), tags text[])`,
		`CREATE INDEX customers_born_idx ON crm.customers (born, name)`,
		`CREATE UNIQUE INDEX customers_name_key ON crm.customers (name)`,
		`CREATE INDEX customers_lower_name ON crm.customers (lower(name))`,
		`INSERT INTO crm.customers SELECT g, 'name ' || g, g * 1.125, date '1990-01-01' + g, timestamptz '2024-01-01 00:00:00.123456+00' + g * interval '1 minute', g % 2 = 0, '\xdeadbeef' FROM generate_series(1, 300) g`,
		`INSERT INTO crm.orders SELECT g, 1 + g % 300, g / 4.0, ARRAY['a', 'b' || g] FROM generate_series(1, 1000) g`)
	_, jobs := startStack(t, db)
	spec := &commonv1.JobSpec{Name: "copy crm", BatchSize: 128,
		Target: &commonv1.TargetSpec{Schema: "crm_new", CreateTables: true},
		Tables: []*commonv1.TableSpec{
			{Name: "customers", TargetTable: "customers", Source: pgTable(src.URL, "crm", "customers"), Partitions: 3},
			{Name: "orders", TargetTable: "orders", Source: pgTable(src.URL, "crm", "orders"), Partitions: 4},
		}}
	created, err := jobs.CreateJob(context.Background(), &orchestratorv1.CreateJobRequest{Spec: spec})
	if err != nil {
		t.Fatalf("CreateJob: %v", err)
	}
	job := testenv.WaitJob(t, jobs, created.Job.Id, time.Minute)
	if job.State != orchestratorv1.JobState_JOB_STATE_SUCCEEDED || job.Counts.Loaded != 1300 {
		t.Fatalf("job %s %s %+v", job.State, job.Error, job.Counts)
	}
	types := db.Strings(`SELECT attname || ' ' || format_type(atttypid, atttypmod) || CASE WHEN attnotnull THEN ' NOT NULL' ELSE '' END
		FROM pg_attribute WHERE attrelid = 'crm_new.customers'::regclass AND attnum > 0 ORDER BY attnum`)
	want := "id integer NOT NULL|name character varying(40) NOT NULL|credit numeric(12,3)|born date|seen timestamp with time zone|vip boolean|photo bytea"
	if strings.Join(types, "|") != want {
		t.Fatalf("customers columns:\n%s\nwant\n%s", strings.Join(types, "|"), want)
	}
	cons := db.Strings(`SELECT conname || ' ' || contype::text || ' ' || convalidated::text FROM pg_constraint WHERE connamespace = 'crm_new'::regnamespace ORDER BY conname`)
	if strings.Join(cons, "|") != "customers_pkey p true|orders_customer_id_fkey f true|orders_pkey p true" {
		t.Fatalf("constraints: %v", cons)
	}
	if n := db.Int(`SELECT count(*) FROM crm_new.customers c JOIN crm_new.orders o ON o.customer_id = c.id WHERE o.tags[2] = 'b' || o.no AND c.photo = '\xdeadbeef' AND c.credit = c.id * 1.125`); n != 1000 {
		t.Fatalf("%d joined rows with exact values, want 1000", n)
	}
	rep, err := jobs.GetJobReport(context.Background(), &orchestratorv1.GetJobReportRequest{Id: job.Id})
	if err != nil {
		t.Fatal(err)
	}
	ddl := strings.Join(rep.Report.Ddl, "\n")
	idx := db.Strings(`SELECT indexname FROM pg_indexes WHERE schemaname = 'crm_new' ORDER BY indexname`)
	if strings.Join(idx, "|") != "customers_born_idx|customers_name_key|customers_pkey|orders_pkey" {
		t.Errorf("indexes: %v (expression indexes are left out)", idx)
	}
	for _, w := range []string{`CREATE SCHEMA IF NOT EXISTS "crm_new"`, `CREATE UNIQUE INDEX "customers_name_key" ON "crm_new"."customers" ("name")`, `CREATE TABLE "crm_new"."orders"`, `"tags" text[]`,
		`ADD CONSTRAINT "orders_pkey" PRIMARY KEY ("no")`, `FOREIGN KEY ("customer_id") REFERENCES "crm_new"."customers" ("id") NOT VALID`, `VALIDATE CONSTRAINT`} {
		if !strings.Contains(ddl, w) {
			t.Errorf("report DDL lacks %q:\n%s", w, ddl)
		}
	}
}

// TestIncompatibleTargetIsRefusedUpFront: without create_tables, a target
// column that can never hold the source's values is FailedPrecondition
// naming the column, before any data moves.
func TestIncompatibleTargetIsRefusedUpFront(t *testing.T) {
	src, db := testenv.NewDB(t), testenv.NewDB(t)
	src.Exec(`CREATE TABLE people (id int PRIMARY KEY, born date, photo bytea)`)
	db.Exec(`CREATE TABLE people (id int PRIMARY KEY, born integer, photo bytea)`)
	_, jobs := startStack(t, db)
	spec := &commonv1.JobSpec{Tables: []*commonv1.TableSpec{{Name: "people", TargetTable: "people", Source: pgTable(src.URL, "public", "people"),
		Columns: []*commonv1.ColumnMapping{{Target: "id", Source: "id"}, {Target: "born", Source: "born"}, {Target: "photo", Source: "photo"}}}}}
	_, err := jobs.CreateJob(context.Background(), &orchestratorv1.CreateJobRequest{Spec: spec})
	st := status.Convert(err)
	if st.Code() != codes.FailedPrecondition || !strings.Contains(st.Message(), "tables[0].columns[1]") || !strings.Contains(st.Message(), `"born"`) {
		t.Fatalf("got %s %q, want FailedPrecondition naming column born", st.Code(), st.Message())
	}
}
