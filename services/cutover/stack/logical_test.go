package stack_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/cutover/internal/testenv"
	"github.com/cutover/cutover/services/kit/pgtest"
	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"
)

// TestLogicalSyncPostgres: a PostgreSQL table is loaded, then followed
// through a logical replication slot while rows are inserted, updated
// (keys moved too) and deleted on the source; half-way the orchestrator
// running the follower goes away and a second one takes it over. Once the
// source stops changing the lag reaches zero, the target equals the source
// (checksum), Reconcile passes row by row, readiness says ready, the ledger
// holds every change batch once (contiguous seqs, LSN positions moving
// forward), StopFollowing ends the job SUCCEEDED, and dropping the slot
// leaves nothing behind on the source.
func TestLogicalSyncPostgres(t *testing.T) {
	srcURL := pgtest.NewLogicalDatabase(t)
	ctx := context.Background()
	src, err := pgx.Connect(ctx, srcURL)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close(ctx)
	srcExec := func(q string, args ...any) {
		t.Helper()
		if _, err := src.Exec(ctx, q, args...); err != nil {
			t.Fatalf("%.80s: %v", q, err)
		}
	}
	srcExec(`CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, qty int, price numeric(10,2), seen timestamptz)`)
	srcExec(`INSERT INTO items SELECT g, 'item ' || g, g % 7, g * 1.25, '2024-01-01'::timestamptz + g * interval '1 minute' FROM generate_series(1, 300) g`)

	db := testenv.NewDB(t)
	db.Exec(`CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, qty int, price numeric(10,2), seen timestamptz)`)

	stA, connA := syncStack(t, db)
	stopped := false
	defer func() {
		if !stopped {
			_ = connA.Close()
			_ = stA.Close()
		}
	}()
	jobsA := orchestratorv1.NewJobServiceClient(connA)
	sync := &commonv1.SyncSpec{PollMs: 50, Kind: &commonv1.SyncSpec_Logical{Logical: &commonv1.LogicalSync{}}}
	spec := &commonv1.JobSpec{Name: "follow items by slot", BatchSize: 40, Tables: []*commonv1.TableSpec{{
		Name: "items", TargetTable: "items", Partitions: 2,
		Source:  &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Postgres{Postgres: &commonv1.PostgresSource{Dsn: srcURL, Table: "items"}}},
		Columns: cols("id", "name", "qty", "price", "seen"),
		Sync:    sync,
	}}}
	created, err := jobsA.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: spec})
	if err != nil {
		t.Fatalf("CreateJob: %v", err)
	}
	id := created.Job.Id
	waitState(t, jobsA, id, orchestratorv1.JobState_JOB_STATE_FOLLOWING)

	var jobs orchestratorv1.JobServiceClient = jobsA
	var conn *grpc.ClientConn = connA
	for round := 0; round < 60; round++ {
		srcExec(`INSERT INTO items VALUES ($1, $2, $3, $4, now())`, 1000+round, "new "+strconv.Itoa(round), round, fmt.Sprintf("%d.5", round))
		srcExec(`UPDATE items SET name = name || ' +', qty = qty + 1, seen = now() WHERE id IN ($1, $2)`, 1+round*4, 1000+round/2)
		srcExec(`DELETE FROM items WHERE id = $1`, 2+round*4)
		if round%10 == 3 {
			// A key move and a multi-row transaction.
			srcExec(`UPDATE items SET id = id + 5000 WHERE id = $1`, 3+round*4)
			srcExec(`UPDATE items SET qty = NULL WHERE id BETWEEN $1 AND $2`, 250, 260+round)
		}
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

	const rowText = `SELECT concat_ws('|', id, name, qty, price, extract(epoch FROM seen)) FROM items ORDER BY id`
	srcSum := func() string {
		rows, err := src.Query(ctx, rowText)
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
		rows := db.Strings(rowText)
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
		if got == want && len(r.Tables) == 1 && r.Tables[0].LagRows == 0 && r.Tables[0].LagSeconds == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not caught up: target %s, source %s, readiness %v", got, want, r)
		}
		time.Sleep(100 * time.Millisecond)
	}

	rec, err := orchestratorv1.NewValidationServiceClient(conn).Reconcile(ctx, &orchestratorv1.ReconcileRequest{Id: id})
	if err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	// Independent level: the source's own rows now against the target's.
	if ind := rec.Reconciliation.Tables[0].GetIndependent(); !rec.Reconciliation.Ok || ind.GetSourceRows() == 0 || ind.GetRowsSkipped() != "" || len(ind.GetDifferences()) > 0 {
		t.Fatalf("reconciliation: %v", rec.Reconciliation)
	}
	r, err := jobs.GetReadiness(ctx, &orchestratorv1.GetReadinessRequest{Id: id})
	if err != nil || !r.Ready || !r.Reconciled || r.Tables[0].Upserts == 0 || r.Tables[0].Deletes == 0 || r.Tables[0].Position == "" {
		t.Fatalf("readiness: %v %v", r, err)
	}

	// The ledger: contiguous seqs and LSNs that only move forward, each
	// transaction in exactly one batch.
	led := db.Strings(`SELECT seq || E'\t' || position FROM cutover.ledger WHERE job_id = $1 AND partition_id = 'sync:items' ORDER BY seq`, id)
	if len(led) < 3 {
		t.Fatalf("ledger of the follower: %q", led)
	}
	var prev uint64
	for i, e := range led {
		f := strings.Split(e, "\t")
		if f[0] != strconv.Itoa(i) {
			t.Fatalf("ledger seq %s at %d: %q", f[0], i, led)
		}
		pos, ok := lsnOf(f[1])
		if !ok || pos <= prev {
			t.Fatalf("position %q after %x (seq %s): %q", f[1], prev, f[0], led)
		}
		prev = pos
	}

	stop, err := jobs.StopFollowing(ctx, &orchestratorv1.StopFollowingRequest{Id: id})
	if err != nil || stop.Job.State != orchestratorv1.JobState_JOB_STATE_SUCCEEDED {
		t.Fatalf("StopFollowing: %v %v", stop, err)
	}
	// StopFollowing had the extractor drop the slot and its publication.
	var left int
	if err := src.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_replication_slots) + (SELECT count(*) FROM pg_publication)`).Scan(&left); err != nil || left != 0 {
		t.Errorf("slots and publications left on the source: %d (%v)", left, err)
	}
}

// lsnOf reads a pg_lsn's text, "16/B374D848".
func lsnOf(s string) (uint64, bool) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, false
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	return h<<32 | l, err1 == nil && err2 == nil
}
