package stack_test

import (
	"context"
	"crypto/md5"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/cutover/internal/testenv"
	"github.com/cutover/cutover/services/cutover/stack"
	"github.com/cutover/cutover/services/kit/mysqltest"
	"github.com/cutover/cutover/services/orchestrator/orchestrate"
	_ "github.com/go-sql-driver/mysql"
	"google.golang.org/grpc"
)

// syncStack is an embedded stack whose orchestrator holds follower leases
// for a short time, so that a second stack takes a follower over quickly.
func syncStack(t *testing.T, db *testenv.DB) (*stack.Stack, *grpc.ClientConn) {
	t.Helper()
	st, err := stack.Start(context.Background(), stack.Config{
		Addrs: stack.EphemeralAddrs(),
		Orchestrator: orchestrate.Config{ControlURL: db.URL, DefaultTarget: db.URL, Workers: 2, Poll: 20 * time.Millisecond,
			Lease: 2 * time.Second, TraceSink: traceSink},
		Grace:     5 * time.Second,
		FileRoots: testenv.FileRoots(t),
	})
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	conn, err := st.Conn()
	if err != nil {
		t.Fatal(err)
	}
	return st, conn
}

// TestWatermarkSyncMariaDB: a MariaDB table is loaded, then followed by
// its updated_at while rows are inserted, updated and deleted on the
// source; half-way the orchestrator running the follower goes away and a
// second one takes the follower over. Once the source stops changing the
// lag reaches zero, the target equals the source (checksum), Reconcile
// passes row by row, readiness says ready, the ledger holds every change
// batch once (contiguous seqs, positions moving forward), StopFollowing
// ends the job SUCCEEDED and RollbackJob gives back the target as it was.
func TestWatermarkSyncMariaDB(t *testing.T) {
	mdsn := mysqltest.NewDatabase(t)
	my, err := sql.Open("mysql", mdsn)
	if err != nil {
		t.Fatal(err)
	}
	defer my.Close()
	ctx := context.Background()
	myExec := func(q string, args ...any) {
		t.Helper()
		if _, err := my.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%.80s: %v", q, err)
		}
	}
	myExec(`CREATE TABLE items (id int PRIMARY KEY, name varchar(40) NOT NULL, qty int, updated_at datetime(6) NOT NULL, KEY (updated_at))`)
	var vals []string
	for i := 1; i <= 300; i++ {
		vals = append(vals, fmt.Sprintf("(%d, 'item %d', %d, '2024-01-01 00:00:00' + INTERVAL %d SECOND)", i, i, i%7, i%50))
	}
	myExec(`INSERT INTO items VALUES ` + strings.Join(vals, ", "))

	db := testenv.NewDB(t)
	// The target already holds a row the source does not have: following
	// mirrors the source, so it goes, and the rollback brings it back.
	db.Exec(`CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, qty int, updated_at timestamp(6) NOT NULL)`,
		`INSERT INTO items VALUES (5000, 'only in the target', 1, '2020-01-01')`)
	before := rollbackSums(db, "items")

	stA, connA := syncStack(t, db)
	stopped := false
	defer func() {
		if !stopped {
			_ = connA.Close()
			_ = stA.Close()
		}
	}()
	jobsA := orchestratorv1.NewJobServiceClient(connA)
	// The target row the source lacks is there on purpose: append.
	spec := &commonv1.JobSpec{Name: "follow items", BatchSize: 40, Target: &commonv1.TargetSpec{IfExists: commonv1.IfExists_IF_EXISTS_APPEND}, Tables: []*commonv1.TableSpec{{
		Name: "items", TargetTable: "items", Partitions: 2,
		Source:  &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Mysql{Mysql: &commonv1.MysqlSource{Dsn: mdsn, Table: "items"}}},
		Columns: cols("id", "name", "qty", "updated_at"),
		Sync: &commonv1.SyncSpec{PollMs: 50, Kind: &commonv1.SyncSpec_Watermark{Watermark: &commonv1.WatermarkSync{
			Column: "updated_at", DeleteCheckSeconds: 1}}},
	}}}
	// Refusals name the field.
	bad := &commonv1.JobSpec{Name: "bad", Target: spec.Target, Tables: []*commonv1.TableSpec{{Name: "items", TargetTable: "items",
		Source: spec.Tables[0].Source, Columns: spec.Tables[0].Columns,
		Sync: &commonv1.SyncSpec{Kind: &commonv1.SyncSpec_Watermark{Watermark: &commonv1.WatermarkSync{Column: "name"}}}}}}
	if _, err := jobsA.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: bad}); err == nil || !strings.Contains(err.Error(), "tables[0].sync") {
		t.Fatalf("text watermark: %v", err)
	}
	created, err := jobsA.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: spec})
	if err != nil {
		t.Fatalf("CreateJob: %v", err)
	}
	id := created.Job.Id
	waitState(t, jobsA, id, orchestratorv1.JobState_JOB_STATE_FOLLOWING)

	// The source changes while the job follows: each round inserts a row,
	// updates two and deletes one. Half-way the first orchestrator stops
	// (its follower is cut off wherever it is) and a second one takes over.
	var jobs orchestratorv1.JobServiceClient = jobsA
	var conn *grpc.ClientConn = connA
	for round := 0; round < 60; round++ {
		myExec(`INSERT INTO items VALUES (?, ?, ?, NOW(6))`, 1000+round, "new "+strconv.Itoa(round), round)
		myExec(`UPDATE items SET name = CONCAT(name, ' +'), qty = qty + 1, updated_at = NOW(6) WHERE id IN (?, ?)`, 1+round*4, 1000+round/2)
		myExec(`DELETE FROM items WHERE id = ?`, 2+round*4)
		if round == 30 {
			_ = connA.Close()
			if err := stA.Close(); err != nil {
				t.Fatalf("close the first stack: %v", err)
			}
			stopped = true
			stB, connB := syncStack(t, db)
			t.Cleanup(func() { _ = connB.Close(); _ = stB.Close() })
			conn, jobs = connB, orchestratorv1.NewJobServiceClient(connB)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Caught up: lag 0 and the target equals the source.
	srcSum := func() string {
		rows, err := my.QueryContext(ctx, `SELECT CONCAT_WS('|', id, name, qty, DATE_FORMAT(updated_at, '%Y-%m-%d %H:%i:%s.%f')) FROM items ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		h := md5.New()
		n := 0
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			h.Write([]byte(s + "\n"))
			n++
		}
		return strconv.Itoa(n) + ":" + hex.EncodeToString(h.Sum(nil))
	}
	tgtSum := func() string {
		h := md5.New()
		rows := db.Strings(`SELECT concat_ws('|', id, name, qty, to_char(updated_at, 'YYYY-MM-DD HH24:MI:SS.US')) FROM items ORDER BY id`)
		for _, s := range rows {
			h.Write([]byte(s + "\n"))
		}
		return strconv.Itoa(len(rows)) + ":" + hex.EncodeToString(h.Sum(nil))
	}
	want := srcSum()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := jobs.GetReadiness(ctx, &orchestratorv1.GetReadinessRequest{Id: id})
		if err != nil {
			t.Fatal(err)
		}
		got := tgtSum()
		if got == want && len(r.Tables) == 1 && r.Tables[0].LagRows == 0 && r.Tables[0].LastCheckedAt != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not caught up: target %s, source %s, readiness %v", got, want, r)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := db.Int(`SELECT count(*) FROM items WHERE id = 5000`); n != 0 {
		t.Errorf("the row the source never had is still in the target")
	}

	// Not ready before a reconciliation; ready after one that passed.
	r, err := jobs.GetReadiness(ctx, &orchestratorv1.GetReadinessRequest{Id: id})
	if err != nil || r.Ready || !strings.Contains(strings.Join(r.Reasons, ";"), "no reconciliation") {
		t.Fatalf("readiness before reconciling: %v %v", r, err)
	}
	rec, err := orchestratorv1.NewValidationServiceClient(conn).Reconcile(ctx, &orchestratorv1.ReconcileRequest{Id: id})
	if err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	// Independent level: the source's own rows now against the target's.
	if ind := rec.Reconciliation.Tables[0].GetIndependent(); !rec.Reconciliation.Ok || ind.GetSourceRows() == 0 || ind.GetRowsSkipped() != "" || len(ind.GetDifferences()) > 0 {
		t.Fatalf("reconciliation: %v", rec.Reconciliation)
	}
	r, err = jobs.GetReadiness(ctx, &orchestratorv1.GetReadinessRequest{Id: id})
	if err != nil || !r.Ready || !r.Reconciled || r.Tables[0].Upserts == 0 || r.Tables[0].Deletes == 0 || r.Tables[0].Position == "" {
		t.Fatalf("readiness: %v %v", r, err)
	}

	// The ledger: contiguous seqs, each change batch once, positions that
	// only move forward (a key check's delete batch keeps its position).
	led := db.Strings(`SELECT seq || E'\t' || position || E'\t' || (deletes = extracted)::text FROM cutover.ledger WHERE job_id = $1 AND partition_id = 'sync:items' ORDER BY seq`, id)
	if len(led) < 3 {
		t.Fatalf("ledger of the follower: %q", led)
	}
	var prev []string
	for i, e := range led {
		f := strings.Split(e, "\t")
		if f[0] != strconv.Itoa(i) {
			t.Fatalf("ledger seq %s at %d: %q", f[0], i, led)
		}
		var pos []string
		if err := json.Unmarshal([]byte(f[1]), &pos); err != nil {
			t.Fatalf("ledger position %q: %v", f[1], err)
		}
		if prev != nil {
			c := comparePos(pos, prev)
			if c < 0 || (c == 0 && f[2] != "true") {
				t.Fatalf("position %v after %v (seq %s)", pos, prev, f[0])
			}
		}
		prev = pos
	}

	// Cutover: StopFollowing drains and ends the job; rollback undoes it all.
	stop, err := jobs.StopFollowing(ctx, &orchestratorv1.StopFollowingRequest{Id: id})
	if err != nil || stop.Job.State != orchestratorv1.JobState_JOB_STATE_SUCCEEDED {
		t.Fatalf("StopFollowing: %v %v", stop, err)
	}
	rb, err := jobs.RollbackJob(ctx, &orchestratorv1.RollbackJobRequest{Id: id})
	if err != nil || rb.Job.State != orchestratorv1.JobState_JOB_STATE_ROLLED_BACK {
		t.Fatalf("RollbackJob: %v %v", rb, err)
	}
	sameSums(t, "after rollback", rollbackSums(db, "items"), before)
}

// comparePos orders watermark positions [w, id]: the watermark text
// (fixed-width date-time), then the key as a number.
func comparePos(a, b []string) int {
	if c := strings.Compare(a[0], b[0]); c != 0 || len(a) < 2 || len(b) < 2 {
		if c == 0 {
			return len(a) - len(b)
		}
		return c
	}
	x, _ := strconv.Atoi(a[1])
	y, _ := strconv.Atoi(b[1])
	return x - y
}

func waitState(t *testing.T, jobs orchestratorv1.JobServiceClient, id string, want orchestratorv1.JobState) *orchestratorv1.Job {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		r, err := jobs.GetJob(context.Background(), &orchestratorv1.GetJobRequest{Id: id})
		if err != nil {
			t.Fatal(err)
		}
		if r.Job.State == want {
			return r.Job
		}
		if r.Job.State == orchestratorv1.JobState_JOB_STATE_FAILED || time.Now().After(deadline) {
			t.Fatalf("job %s is %s (%s), want %s", id, r.Job.State, r.Job.Error, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
