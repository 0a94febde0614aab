package ctl

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/cutover/internal/testenv"
	"github.com/cutover/cutover/services/kit/mysqltest"
	"github.com/cutover/cutover/services/kit/server"
	_ "github.com/go-sql-driver/mysql"
	"google.golang.org/protobuf/encoding/protojson"
)

const unknownJob = "00000000-0000-0000-0000-000000000000"

// tableSum checksums a target table: its row count and the md5 of its rows.
func tableSum(db *testenv.DB, table string) string {
	return db.Strings(`SELECT count(*)::text || ':' || coalesce(md5(string_agg(t::text, E'\n' ORDER BY t::text)), '') FROM ` + table + ` t`)[0]
}

func jobClient(t *testing.T, addr string) orchestratorv1.JobServiceClient {
	t.Helper()
	opts, err := server.ClientOptions(tlsDir)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := server.Dial(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return orchestratorv1.NewJobServiceClient(cc)
}

func createJob(t *testing.T, jobs orchestratorv1.JobServiceClient, spec *commonv1.JobSpec) string {
	t.Helper()
	created, err := jobs.CreateJob(context.Background(), &orchestratorv1.CreateJobRequest{Spec: spec})
	if err != nil {
		t.Fatalf("CreateJob: %v", err)
	}
	return created.GetJob().GetId()
}

// TestReadinessNotFollowing: a finished job that follows nothing is not
// ready, says why, and a watch stops at once; usage mistakes and an
// unknown job are exit 2.
func TestReadinessNotFollowing(t *testing.T) {
	db := testenv.NewDB(t)
	db.Exec(ordersDDL)
	st := startStack(t, db)
	addr := st.Addrs.Orchestrator
	jobs := jobClient(t, addr)
	good := "id,customer,amount,status,day,note\n1,10,12.50,new,2023-01-05,a\n2,11,7.00,paid,2023-01-06,b\n"
	id := createJob(t, jobs, ordersSpec(tempFile(t, "orders.csv", good)))
	if j := testenv.WaitJob(t, jobs, id, time.Minute); j.GetState() != orchestratorv1.JobState_JOB_STATE_SUCCEEDED {
		t.Fatalf("job: %v", j)
	}

	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr string
	}{
		{name: "plain", args: []string{"readiness", id}, code: ExitFailed, stdout: []string{
			"readiness of job " + id + " (SUCCEEDED)\n", "  no followed tables\n", "  reconciled: no\n", "\nNOT READY\n",
			"  - the job follows no table (no table has a sync spec)\n", "  - the job is succeeded, not following\n"}},
		{name: "watch stops on an ended job", args: []string{"readiness", "--watch", id}, code: ExitFailed, stdout: []string{
			" NOT READY (SUCCEEDED); the job follows no table", "the job is SUCCEEDED and will not become ready\n", "\nNOT READY\n"}},
		{name: "limits", args: []string{"readiness", id, "--max-lag-rows", "10", "--max-lag-seconds", "60"}, code: ExitFailed,
			stdout: []string{"NOT READY\n"}},
		{name: "unknown job", args: []string{"readiness", unknownJob}, code: ExitUsage, stderr: "cutoverctl: GetReadiness: "},
		{name: "no job", args: []string{"readiness"}, code: ExitUsage, stderr: "cutoverctl: readiness: want exactly one job id"},
		{name: "two jobs", args: []string{"readiness", id, id}, code: ExitUsage, stderr: "cutoverctl: readiness: want exactly one job id"},
		{name: "negative rows", args: []string{"readiness", id, "--max-lag-rows", "-1"}, code: ExitUsage,
			stderr: "cutoverctl: --max-lag-rows must not be negative, got -1"},
		{name: "negative seconds", args: []string{"readiness", id, "--max-lag-seconds", "-0.5"}, code: ExitUsage,
			stderr: "cutoverctl: --max-lag-seconds must be a non-negative number"},
		{name: "no junit", args: []string{"readiness", id, "--junit", "x.xml"}, code: ExitUsage,
			stderr: "cutoverctl: flag provided but not defined: -junit"},
		{name: "stop-following refused", args: []string{"stop-following", id}, code: ExitFailed,
			stderr: "cutoverctl: StopFollowing refused: "},
		{name: "stop-following unknown", args: []string{"stop-following", unknownJob}, code: ExitUsage, stderr: "cutoverctl: StopFollowing: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCtl(t, append(tc.args, "--addr", addr)...)
			r.want(t, tc.code)
			for _, w := range tc.stdout {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, r.stdout)
				}
			}
			if tc.stderr != "" && (!strings.HasPrefix(r.stderr, tc.stderr) || strings.Count(r.stderr, "\n") != 1) {
				t.Errorf("stderr %q, want one line starting %q", r.stderr, tc.stderr)
			}
		})
	}

	r := runCtl(t, "readiness", id, "--json", "--addr", addr)
	r.want(t, ExitFailed)
	var res orchestratorv1.GetReadinessResponse
	if err := protojson.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("--json: %v\n%s", err, r.stdout)
	}
	if res.Ready || res.JobId != id || res.State != orchestratorv1.JobState_JOB_STATE_SUCCEEDED || len(res.Reasons) != 3 {
		t.Errorf("--json: %v", &res)
	}
}

// TestRollbackCommand: an upsert job inserts into and updates a non-empty
// table; `cutoverctl rollback` lists what it undid and the table's
// checksum is back to what it was. Again is a no-op; an unknown job is
// exit 2.
func TestRollbackCommand(t *testing.T) {
	db := testenv.NewDB(t)
	db.Exec(ordersDDL, `INSERT INTO orders VALUES (2, 99, 1.00, 'new', '2022-12-31', 'before', 'old'), (500, 98, 2.00, 'paid', NULL, NULL, 'old')`)
	before := tableSum(db, "orders")
	st := startStack(t, db)
	addr := st.Addrs.Orchestrator
	jobs := jobClient(t, addr)
	good := "id,customer,amount,status,day,note\n1,10,12.50,new,2023-01-05,a\n2,11,7.00,paid,2023-01-06,b\n3,12,8.00,paid,2023-01-07,c\n"
	spec := ordersSpec(tempFile(t, "orders.csv", good))
	spec.Tables[0].WriteMode = commonv1.WriteMode_WRITE_MODE_UPSERT
	id := createJob(t, jobs, spec)
	if j := testenv.WaitJob(t, jobs, id, time.Minute); j.GetState() != orchestratorv1.JobState_JOB_STATE_SUCCEEDED {
		t.Fatalf("job: %v", j)
	}
	if tableSum(db, "orders") == before {
		t.Fatal("the job did not change orders")
	}

	row := regexp.MustCompile(`(?m)^  orders +2 +1 +no$`)
	r := runCtl(t, "rollback", id, "--addr", addr)
	r.want(t, ExitOK)
	if !strings.HasPrefix(r.stdout, "rollback "+id+": ROLLED_BACK\n") || !row.MatchString(r.stdout) {
		t.Errorf("stdout:\n%s", r.stdout)
	}
	if got := tableSum(db, "orders"); got != before {
		t.Errorf("after rollback orders = %s, want %s", got, before)
	}

	// Again: the stored outcome, the table untouched.
	r = runCtl(t, "rollback", "--json", "--addr", addr, id)
	r.want(t, ExitOK)
	var res orchestratorv1.RollbackJobResponse
	if err := protojson.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("--json: %v\n%s", err, r.stdout)
	}
	if res.Job.GetState() != orchestratorv1.JobState_JOB_STATE_ROLLED_BACK {
		t.Errorf("--json: %v", &res)
	}
	if got := tableSum(db, "orders"); got != before {
		t.Errorf("after the second rollback orders = %s, want %s", got, before)
	}

	for _, tc := range []struct {
		name, stderr string
		args         []string
	}{
		{"unknown job", "cutoverctl: RollbackJob: ", []string{"rollback", unknownJob}},
		{"no job", "cutoverctl: rollback: want exactly one job id", []string{"rollback"}},
		{"bad flag", "cutoverctl: flag provided but not defined: -watch", []string{"rollback", id, "--watch"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCtl(t, append(tc.args, "--addr", addr)...)
			r.want(t, ExitUsage)
			if !strings.HasPrefix(r.stderr, tc.stderr) || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("stderr %q, want one line starting %q", r.stderr, tc.stderr)
			}
		})
	}
}

// TestReadinessFollowing: a MariaDB table followed by its updated_at is
// not ready before a reconciliation and ready after one that passed, in
// the view, as JSON and under --watch. A following job cannot be rolled
// back (exit 1); stop-following ends it SUCCEEDED, after which readiness
// says not following and rollback gives the target back as it was.
func TestReadinessFollowing(t *testing.T) {
	mdsn := mysqltest.NewDatabase(t)
	my, err := sql.Open("mysql", mdsn)
	if err != nil {
		t.Fatal(err)
	}
	defer my.Close()
	myExec := func(q string, args ...any) {
		t.Helper()
		if _, err := my.Exec(q, args...); err != nil {
			t.Fatalf("%.80s: %v", q, err)
		}
	}
	myExec(`CREATE TABLE items (id int PRIMARY KEY, name varchar(40) NOT NULL, qty int, updated_at datetime(6) NOT NULL, KEY (updated_at))`)
	var vals []string
	for i := 1; i <= 50; i++ {
		vals = append(vals, fmt.Sprintf("(%d, 'item %d', %d, '2024-01-01 00:00:00' + INTERVAL %d SECOND)", i, i, i%7, i))
	}
	myExec(`INSERT INTO items VALUES ` + strings.Join(vals, ", "))

	db := testenv.NewDB(t)
	// A row the source lacks: following mirrors the source, so it goes,
	// and the rollback brings it back.
	db.Exec(`CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, qty int, updated_at timestamp(6) NOT NULL)`,
		`INSERT INTO items VALUES (5000, 'only in the target', 1, '2020-01-01')`)
	before := tableSum(db, "items")
	st := startStack(t, db)
	addr := st.Addrs.Orchestrator
	jobs := jobClient(t, addr)
	var columns []*commonv1.ColumnMapping
	for _, c := range []string{"id", "name", "qty", "updated_at"} {
		columns = append(columns, &commonv1.ColumnMapping{Target: c, Source: c})
	}
	// The target row the source lacks is there on purpose: append.
	id := createJob(t, jobs, &commonv1.JobSpec{Name: "follow items", BatchSize: 20, Target: &commonv1.TargetSpec{IfExists: commonv1.IfExists_IF_EXISTS_APPEND}, Tables: []*commonv1.TableSpec{{
		Name: "items", TargetTable: "items",
		Source:  &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Mysql{Mysql: &commonv1.MysqlSource{Dsn: mdsn, Table: "items"}}},
		Columns: columns,
		Sync: &commonv1.SyncSpec{PollMs: 50, Kind: &commonv1.SyncSpec_Watermark{Watermark: &commonv1.WatermarkSync{
			Column: "updated_at", DeleteCheckSeconds: 1}}},
	}}})
	ctx := context.Background()
	waitState(t, jobs, id, orchestratorv1.JobState_JOB_STATE_FOLLOWING)

	// Changes while it follows; then wait until it has caught up with them
	// (lag 0, the deletes seen by a key check).
	myExec(`INSERT INTO items VALUES (100, 'new', 1, NOW(6))`)
	myExec(`UPDATE items SET name = 'renamed', updated_at = NOW(6) WHERE id = 7`)
	myExec(`DELETE FROM items WHERE id = 9`)
	for deadline := time.Now().Add(time.Minute); ; {
		r, err := jobs.GetReadiness(ctx, &orchestratorv1.GetReadinessRequest{Id: id})
		if err != nil {
			t.Fatal(err)
		}
		caught := len(r.Tables) == 1 && r.Tables[0].LagRows == 0 && r.Tables[0].Deletes > 0 && r.Tables[0].LastCheckedAt != nil &&
			db.Int(`SELECT count(*) FROM items WHERE id = 100 OR name = 'renamed'`) == 2
		if caught {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not caught up: %v", r)
		}
		time.Sleep(100 * time.Millisecond)
	}

	tableRow := regexp.MustCompile(`(?m)^  items +\S.* +0 +\d+\.\d +[1-9]\d* +[1-9]\d* +\d{4}-\d\d-\d\dT\S+Z +\d{4}-\d\d-\d\dT\S+Z$`)
	r := runCtl(t, "readiness", id, "--addr", addr)
	r.want(t, ExitFailed)
	for _, w := range []string{"(FOLLOWING)\n", "  reconciled: no\n", "\nNOT READY\n", "  - no reconciliation has run"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("before reconciling, stdout lacks %q:\n%s", w, r.stdout)
		}
	}
	if !tableRow.MatchString(r.stdout) {
		t.Errorf("before reconciling, no table row:\n%s", r.stdout)
	}

	// A watch that never sees it ready stops at --timeout, not ready.
	r = runCtl(t, "readiness", id, "--watch", "--timeout", "1500ms", "--addr", addr)
	r.want(t, ExitFailed)
	if !regexp.MustCompile(`^\d\d:\d\d:\d\d NOT READY \(FOLLOWING\): items lag 0 rows \d+s; no reconciliation has run`).MatchString(r.stdout) ||
		!strings.Contains(r.stdout, "\nstill not ready at the deadline (--timeout 1.5s)\nreadiness of job ") {
		t.Errorf("--watch --timeout:\n%s", r.stdout)
	}

	runCtl(t, "reconcile", id, "--addr", addr).want(t, ExitOK)
	r = runCtl(t, "readiness", id, "--addr", addr)
	r.want(t, ExitOK)
	if !strings.Contains(r.stdout, "  reconciled: yes\n") || !strings.HasSuffix(r.stdout, "\nREADY\n") || !tableRow.MatchString(r.stdout) {
		t.Errorf("after reconciling:\n%s", r.stdout)
	}
	r = runCtl(t, "readiness", id, "--json", "--addr", addr)
	r.want(t, ExitOK)
	var res orchestratorv1.GetReadinessResponse
	if err := protojson.Unmarshal([]byte(r.stdout), &res); err != nil || !res.Ready || !res.Reconciled || len(res.Tables) != 1 {
		t.Errorf("--json: %v %v\n%s", &res, err, r.stdout)
	}
	r = runCtl(t, "readiness", id, "--watch", "--addr", addr)
	r.want(t, ExitOK)
	if !regexp.MustCompile(`^\d\d:\d\d:\d\d READY \(FOLLOWING\): items lag 0 rows \d+s; reconciled\n`).MatchString(r.stdout) ||
		!strings.HasSuffix(r.stdout, "\nREADY\n") {
		t.Errorf("--watch:\n%s", r.stdout)
	}
	r = runCtl(t, "readiness", id, "--watch", "--json", "--addr", addr)
	r.want(t, ExitOK)
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(lines) != 1 || protojson.Unmarshal([]byte(lines[0]), &res) != nil || !res.Ready {
		t.Errorf("--watch --json:\n%s", r.stdout)
	}

	// Running jobs are not rolled back: refused, exit 1.
	r = runCtl(t, "rollback", id, "--addr", addr)
	r.want(t, ExitFailed)
	if !strings.HasPrefix(r.stderr, "cutoverctl: RollbackJob refused: ") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("rollback of a following job: stderr %q", r.stderr)
	}

	r = runCtl(t, "stop-following", id, "--addr", addr)
	r.want(t, ExitOK)
	if !strings.HasPrefix(r.stdout, "stop-following "+id+": SUCCEEDED\n") {
		t.Errorf("stop-following:\n%s", r.stdout)
	}
	r = runCtl(t, "stop-following", id, "--addr", addr)
	r.want(t, ExitFailed)
	if !strings.HasPrefix(r.stderr, "cutoverctl: StopFollowing refused: ") {
		t.Errorf("second stop-following: stderr %q", r.stderr)
	}
	r = runCtl(t, "readiness", id, "--addr", addr)
	r.want(t, ExitFailed)
	if !strings.Contains(r.stdout, "  - the job is succeeded, not following\n") {
		t.Errorf("readiness after stop-following:\n%s", r.stdout)
	}

	r = runCtl(t, "rollback", id, "--addr", addr)
	r.want(t, ExitOK)
	if !regexp.MustCompile(`(?m)^  items +\d+ +[1-9]\d* +no$`).MatchString(r.stdout) {
		t.Errorf("rollback:\n%s", r.stdout)
	}
	if got := tableSum(db, "items"); got != before {
		t.Errorf("after rollback items = %s, want %s", got, before)
	}
}
