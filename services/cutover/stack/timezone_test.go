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

// zoneRows are MySQL DATETIME wall times meant in Europe/Berlin: winter,
// summer, the hour that does not exist and the one that happens twice.
var zoneRows = []struct {
	id   int
	wall string
}{
	{1, "2024-01-15 12:00:00.250000"},
	{2, "2024-07-15 12:00:00.000000"},
	{3, "2024-03-31 02:30:00.000000"},
	{4, "2024-10-27 02:30:00.000000"},
	{5, "1999-12-31 23:59:59.999999"},
}

// TestTimeZoneAndFormatsThroughTheStack: a MySQL DATETIME source with
// time_zone Europe/Berlin lands in timestamptz as the right instant (by
// package time and by PostgreSQL's own AT TIME ZONE), keeps its wall time
// in a timestamp column; formats read a time and an interval column; a bad
// zone and a bad format are refused up front naming field and value, and a
// dry run names a format that reads none of the sample.
func TestTimeZoneAndFormatsThroughTheStack(t *testing.T) {
	mdsn := mysqltest.NewDatabase(t)
	my, err := sql.Open("mysql", mdsn)
	if err != nil {
		t.Fatal(err)
	}
	defer my.Close()
	ctx := context.Background()
	if _, err := my.ExecContext(ctx, "CREATE TABLE events (id int PRIMARY KEY, at datetime(6) NOT NULL, tod varchar(20), dur varchar(20))"); err != nil {
		t.Fatal(err)
	}
	for _, r := range zoneRows {
		if _, err := my.ExecContext(ctx, "INSERT INTO events VALUES (?, ?, '00:05.02', '12:30.50')", r.id, r.wall); err != nil {
			t.Fatal(err)
		}
	}
	db := testenv.NewDB(t)
	db.Exec(`CREATE TABLE events (id int PRIMARY KEY, at timestamptz, wall timestamp(6), tod time, dur interval)`)
	st, jobs := startStack(t, db)
	conn, err := st.Conn()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	v := orchestratorv1.NewValidationServiceClient(conn)
	spec := func() *commonv1.JobSpec {
		return &commonv1.JobSpec{Name: "zones", TimeZone: "Europe/Berlin",
			Tables: []*commonv1.TableSpec{{Name: "events", TargetTable: "events",
				Source: &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Mysql{Mysql: &commonv1.MysqlSource{Dsn: mdsn, Table: "events"}}},
				Columns: []*commonv1.ColumnMapping{
					{Target: "id", Source: "id"}, {Target: "at", Source: "at"}, {Target: "wall", Source: "at"},
					{Target: "tod", Source: "tod", Formats: []string{"15:04.05"}},
					{Target: "dur", Source: "dur", Formats: []string{"04:05.00"}},
				}}}}
	}

	// Refused up front: the zone and a format that reads no clock field.
	bad := spec()
	bad.Tables[0].TimeZone = "Europe/Berlln"
	bad.Tables[0].Columns[3].Formats = []string{"2006-01-02"}
	res, err := v.ValidateSpec(ctx, &orchestratorv1.ValidateSpecRequest{Spec: bad})
	if err != nil {
		t.Fatal(err)
	}
	if res.GetOk() || len(res.GetTables()) != 1 || len(res.GetTables()[0].GetProblems()) != 1 {
		t.Fatalf("bad zone: %v", res)
	}
	if p := res.GetTables()[0].GetProblems()[0]; p.GetField() != "tables[0].time_zone" || !strings.Contains(p.GetMessage(), `"Europe/Berlln"`) {
		t.Errorf("bad zone: %v", p)
	}
	bad.Tables[0].TimeZone = ""
	res, err = v.ValidateSpec(ctx, &orchestratorv1.ValidateSpecRequest{Spec: bad})
	if err != nil {
		t.Fatal(err)
	}
	if res.GetOk() || len(res.GetTables()[0].GetProblems()) != 1 {
		t.Fatalf("bad format: %v", res)
	}
	if p := res.GetTables()[0].GetProblems()[0]; !strings.HasPrefix(p.GetField(), "tables[0].columns[3].formats[0]") || p.GetColumn() != "tod" ||
		!strings.Contains(p.GetMessage(), `"2006-01-02"`) || !strings.Contains(p.GetMessage(), "no hour, minute or second") {
		t.Errorf("bad format: %v", p)
	}
	bad.Tables[0].Columns[3].Formats = []string{"15:04.05"}
	bad.TimeZone = "Mars/Olympus_Mons"
	if _, err := jobs.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: bad}); err == nil ||
		!strings.Contains(err.Error(), "time_zone") || !strings.Contains(err.Error(), "Mars/Olympus_Mons") {
		t.Errorf("CreateJob with a bad zone: %v", err)
	}

	// The dry run names a format that reads none of the sample.
	dry := spec()
	dry.Tables[0].Columns[4].Formats = []string{"04:05.00", "15h04m"}
	dres, err := v.DryRun(ctx, &orchestratorv1.DryRunRequest{Spec: dry, Sample: 3})
	if err != nil {
		t.Fatal(err)
	}
	if dres.GetOk() || len(dres.GetTables()) != 1 || len(dres.GetTables()[0].GetProblems()) != 1 {
		t.Fatalf("dry run: %v", dres)
	}
	if p := dres.GetTables()[0].GetProblems()[0]; p.GetTable() != "events" || p.GetColumn() != "dur" || p.GetField() != "tables[0].columns[4].formats[1]" ||
		!strings.Contains(p.GetMessage(), `"15h04m" matched none of the 3 sampled`) {
		t.Errorf("dry run problem: %v", p)
	}
	dres, err = v.DryRun(ctx, &orchestratorv1.DryRunRequest{Spec: spec(), Sample: 3})
	if err != nil || !dres.GetOk() {
		t.Fatalf("dry run of the good spec: %v %v", dres, err)
	}

	created, err := jobs.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: spec()})
	if err != nil {
		t.Fatalf("CreateJob: %v", err)
	}
	job := testenv.WaitJob(t, jobs, created.Job.Id, time.Minute)
	if job.State != orchestratorv1.JobState_JOB_STATE_SUCCEEDED || job.Counts.Loaded != int64(len(zoneRows)) {
		t.Fatalf("job %s %s %+v; quarantine: %v", job.State, job.Error, job.Counts,
			db.Strings(`SELECT coalesce(column_name, '') || ': ' || reason FROM cutover.quarantine`))
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range zoneRows {
		// PostgreSQL's own reading of the wall time in the zone.
		if n := db.Int(`SELECT count(*) FROM events WHERE id = $1 AND at = ($2::timestamp AT TIME ZONE 'Europe/Berlin')
			AND wall = $2::timestamp AND tod = '00:05:02'::time AND dur = '00:12:30.5'::interval`, r.id, r.wall); n != 1 {
			t.Errorf("row %d (%s): %v", r.id, r.wall, db.Strings(`SELECT at::text || ' | ' || wall::text || ' | ' || tod::text || ' | ' || dur::text FROM events WHERE id = $1`, r.id))
		}
	}
	// Package time's reading of the two plain ones (no DST change near).
	for _, tc := range []struct {
		id   int
		want time.Time
	}{
		{1, time.Date(2024, 1, 15, 12, 0, 0, 250_000_000, berlin)},
		{2, time.Date(2024, 7, 15, 12, 0, 0, 0, berlin)},
	} {
		got := db.Int(`SELECT (extract(epoch FROM at) * 1000000)::bigint FROM events WHERE id = $1`, tc.id)
		if got != tc.want.UnixMicro() {
			t.Errorf("row %d: %s, want %s", tc.id, time.UnixMicro(got).UTC(), tc.want.UTC())
		}
	}
}
