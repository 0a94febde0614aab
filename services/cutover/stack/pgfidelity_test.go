package stack_test

import (
	"context"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/cutover/internal/testenv"
)

// TestPostgresTypeFidelity migrates a table with every PostgreSQL type
// family and edge values into a target created from the source, and
// compares each row's canonical text form on both sides. Infinite dates
// and timestamps cannot travel on the wire: those rows must be quarantined
// with a reason, and every other value must arrive unchanged.
func TestPostgresTypeFidelity(t *testing.T) {
	src, db := testenv.NewDB(t), testenv.NewDB(t)
	src.Exec(
		`CREATE DOMAIN posint AS integer CHECK (VALUE > 0)`,
		`CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')`,
		`CREATE TABLE everything (
			id int PRIMARY KEY, i2 smallint, i4 integer, i8 bigint, n numeric(30,10), nn numeric, f4 real, f8 double precision,
			b boolean, t text, vc varchar(10), c char(5), by bytea, u uuid, j json, jb jsonb, d date, ts timestamp(6),
			tz timestamptz, tm time, iv interval, ai int[], at text[], dom posint, m mood)`,
		`INSERT INTO everything VALUES
			(1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
			(2, 32767, 2147483647, 9223372036854775807, 99999999999999999999.9999999999, 'NaN', 3.4028235e38, 1.7976931348623157e308,
			 true, E'tab\there\nnewline \\ backslash "quote" 😀', 'ten chars!', 'ab', '\x00ff7f', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
			 '{"k": [1, 2.50, null]}', '{"z": 1, "a": {"b": [true]}}', '2024-02-29', '2024-02-29 23:59:59.999999',
			 '2024-02-29 23:59:59.999999+05:30', '23:59:59.999999', '1 year 2 mons 3 days 04:05:06.789', '{1,NULL,3}', '{"a,b","c\"d",NULL}', 7, 'happy'),
			(3, -32768, -2147483648, -9223372036854775808, -0.0000000001, '-123456789012345678901234567890.123456789', '-0', '-0',
			 false, '', '', '', '', '00000000-0000-0000-0000-000000000000', '[]', '[]', '0001-01-01', '0001-01-01 00:00:00',
			 '1970-01-01 00:00:00+00', '00:00:00', '-178000000 years', '{}', '{}', 1, 'sad'),
			(4, 0, 0, 0, 0, '0.000', 'Infinity', '-Infinity', true, 'x', 'x', 'x', '\x', NULL, 'null', 'null', '1969-12-31',
			 '1969-12-31 23:59:59.000001', '1900-01-01 00:00:00+00', '12:00', '-1 days +00:00:01', NULL, NULL, 2147483647, 'ok'),
			(5, 1, 1, 1, 1, 1, 1, 1, true, 'inf', 'inf', 'inf', NULL, NULL, NULL, NULL, 'infinity', '-infinity', 'infinity', NULL, NULL, NULL, NULL, 1, NULL)`)
	_, jobs := startStack(t, db)
	spec := &commonv1.JobSpec{Name: "pg fidelity", BatchSize: 2, Target: &commonv1.TargetSpec{Schema: "copy", CreateTables: true},
		Tables: []*commonv1.TableSpec{{Name: "everything", TargetTable: "everything", Source: pgTable(src.URL, "public", "everything"), Partitions: 2}}}
	created, err := jobs.CreateJob(context.Background(), &orchestratorv1.CreateJobRequest{Spec: spec})
	if err != nil {
		t.Fatalf("CreateJob: %v", err)
	}
	job := testenv.WaitJob(t, jobs, created.Job.Id, time.Minute)
	if job.State != orchestratorv1.JobState_JOB_STATE_SUCCEEDED || job.Counts.Loaded != 4 || job.Counts.Quarantined != 1 {
		t.Fatalf("job %s %s %+v; quarantine: %v", job.State, job.Error, job.Counts,
			db.Strings(`SELECT coalesce(column_name, '') || ': ' || reason FROM cutover.quarantine`))
	}
	reasons := db.Strings(`SELECT source_ref || ' ' || rule || ' ' || column_name || ': ' || reason FROM cutover.quarantine ORDER BY id`)
	if len(reasons) == 0 || reasons[0][:4] != "id=5" {
		t.Fatalf("quarantined: %q, want row id=5 (infinite dates) with a reason", reasons)
	}
	cols := "id, i2, i4, i8, n, nn, f4, f8, b, t, vc, c, by, u, j::text, jb, d, ts, tz, tm, iv, ai, at, dom::int, m::text"
	want := src.Strings(`SELECT (` + cols + `)::text FROM everything WHERE id <> 5 ORDER BY id`)
	got := db.Strings(`SELECT (` + cols + `)::text FROM copy.everything ORDER BY id`)
	if len(got) != len(want) {
		t.Fatalf("target has %d rows, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d differs:\nsource %s\ntarget %s", i+1, want[i], got[i])
		}
	}
}
