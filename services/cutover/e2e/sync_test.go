package e2e

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
	"github.com/cutover/cutover/services/kit/mysqltest"
	"github.com/cutover/cutover/services/kit/pgtest"
	_ "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// syncSource is one kind of followed source with a writer that changes it.
type syncSource struct {
	spec *commonv1.SourceSpec
	sync *commonv1.SyncSpec
	// rows is the source table as one text line per row, by key; target
	// is the query giving the same lines from the target.
	rows   func(ctx context.Context) ([]string, error)
	target string
	// round makes one round of changes. ops is the row changes the
	// source's log carries for it (an update that moves a key is a delete
	// and an upsert); deletes the rows it deleted.
	round func(ctx context.Context, r int) (ops, deletes int64, err error)
	// logical: every row change is one ledger row, so the ledger's
	// extracted total must equal the writer's ops exactly; order reads a
	// log position as a number that only grows.
	logical bool
	order   func(pos string) (uint64, bool)
}

const (
	syncSeedRows = 1000
	// maxRounds keeps the writer's ids inside the seeded range.
	maxRounds = 240
	// The target table both kinds load into.
	syncTargetDDL = `CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, qty int, version int NOT NULL, updated_at timestamp(6) NOT NULL)`
)

// mariaSource: a MariaDB table followed by its updated_at watermark, with
// a key check every second for deletes.
func mariaSource(t *testing.T) *syncSource { return mariaSourceWith(t, false) }

// mariaBinlogSource: the same table on a server with a row-based binary
// log, followed by it; its writer also commits rows out of id and
// timestamp order (ids going down, updated_at in the past), which a
// watermark would pass over.
func mariaBinlogSource(t *testing.T) *syncSource { return mariaSourceWith(t, true) }

func mariaSourceWith(t *testing.T, binlog bool) *syncSource {
	dsn := mysqltest.NewDatabase(t)
	if binlog {
		dsn = mysqltest.NewBinlogDatabase(t)
	}
	my, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { my.Close() })
	ctx := context.Background()
	if _, err := my.ExecContext(ctx, `CREATE TABLE items (id int PRIMARY KEY, name varchar(200) NOT NULL, qty int, version int NOT NULL,
		updated_at datetime(6) NOT NULL, KEY (updated_at))`); err != nil {
		t.Fatal(err)
	}
	var vals []string
	for i := 1; i <= syncSeedRows; i++ {
		vals = append(vals, fmt.Sprintf("(%d, 'item %d', %d, 0, '2024-01-01 00:00:00' + INTERVAL %d SECOND)", i, i, i%7, i%50))
	}
	if _, err := my.ExecContext(ctx, `INSERT INTO items VALUES `+strings.Join(vals, ", ")); err != nil {
		t.Fatal(err)
	}
	exec := func(ctx context.Context, q execer, query string, args ...any) (int64, error) {
		res, err := q.ExecContext(ctx, query, args...)
		if err != nil {
			return 0, fmt.Errorf("%.60s: %w", query, err)
		}
		return res.RowsAffected()
	}
	sync := &commonv1.SyncSpec{PollMs: 50, Kind: &commonv1.SyncSpec_Watermark{Watermark: &commonv1.WatermarkSync{
		Column: "updated_at", DeleteCheckSeconds: 1}}}
	if binlog {
		sync = &commonv1.SyncSpec{PollMs: 50, Kind: &commonv1.SyncSpec_Binlog{Binlog: &commonv1.BinlogSync{}}}
	}
	return &syncSource{
		logical: binlog,
		order:   gtidSeq,
		spec:    &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Mysql{Mysql: &commonv1.MysqlSource{Dsn: dsn, Table: "items"}}},
		sync:    sync,
		rows: func(ctx context.Context) ([]string, error) {
			rs, err := my.QueryContext(ctx, `SELECT CONCAT_WS('|', id, name, qty, version, DATE_FORMAT(updated_at, '%Y-%m-%d %H:%i:%s.%f')) FROM items ORDER BY id`)
			if err != nil {
				return nil, err
			}
			defer rs.Close()
			var out []string
			for rs.Next() {
				var s string
				if err := rs.Scan(&s); err != nil {
					return nil, err
				}
				out = append(out, s)
			}
			return out, rs.Err()
		},
		target: `SELECT concat_ws('|', id, name, qty, version, to_char(updated_at, 'YYYY-MM-DD HH24:MI:SS.US')) FROM items ORDER BY id`,
		round: func(ctx context.Context, r int) (ops, deletes int64, err error) {
			var n int64
			steps := []struct {
				q    string
				args []any
				del  bool
			}{
				{`INSERT INTO items VALUES (?, ?, ?, 0, NOW(6))`, []any{10000 + r, "new " + strconv.Itoa(r), r % 5}, false},
				{`UPDATE items SET name = CONCAT(name, ' +'), version = version + 1, updated_at = NOW(6) WHERE id IN (?, ?)`, []any{1 + r*4, 10000 + r/2}, false},
				{`DELETE FROM items WHERE id = ?`, []any{2 + r*4}, true},
			}
			if binlog {
				steps = append(steps, struct {
					q    string
					args []any
					del  bool
				}{`INSERT INTO items VALUES (?, ?, 0, 0, '2020-01-01' - INTERVAL ? SECOND)`, []any{30000 - r, "late " + strconv.Itoa(r), r}, false})
			}
			for _, s := range steps {
				if n, err = exec(ctx, my, s.q, s.args...); err != nil {
					return 0, 0, err
				}
				ops += n
				if s.del {
					deletes += n
				}
			}
			if r%5 != 3 {
				return ops, deletes, nil
			}
			// A key move (the old key must go: only the key check sees
			// that) and a multi-row transaction.
			if n, err = exec(ctx, my, `UPDATE items SET id = id + 50000, version = version + 1, updated_at = NOW(6) WHERE id = ?`, 3+r*4); err != nil {
				return 0, 0, err
			}
			ops, deletes = ops+2*n, deletes+n
			tx, err := my.BeginTx(ctx, nil)
			if err != nil {
				return 0, 0, err
			}
			defer tx.Rollback() //nolint:errcheck // a no-op after Commit
			if n, err = exec(ctx, tx, `UPDATE items SET qty = COALESCE(qty, 0) + 1, version = version + 1, updated_at = NOW(6) WHERE id BETWEEN 500 AND 520`); err != nil {
				return 0, 0, err
			}
			ops += n
			if n, err = exec(ctx, tx, `DELETE FROM items WHERE id = ?`, 600+r); err != nil {
				return 0, 0, err
			}
			ops, deletes = ops+n, deletes+n
			return ops, deletes, tx.Commit()
		},
	}
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// pgSource: a PostgreSQL table followed through a logical replication slot.
func pgSource(t *testing.T) *syncSource {
	url := pgtest.NewLogicalDatabase(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pool.Exec(ctx, syncTargetDDL); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO items SELECT g, 'item ' || g, g % 7, 0, '2024-01-01'::timestamp + (g % 50) * interval '1 second'
		FROM generate_series(1, $1) g`, syncSeedRows); err != nil {
		t.Fatal(err)
	}
	const rowText = `SELECT concat_ws('|', id, name, qty, version, to_char(updated_at, 'YYYY-MM-DD HH24:MI:SS.US')) FROM items ORDER BY id`
	return &syncSource{
		spec: &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Postgres{Postgres: &commonv1.PostgresSource{Dsn: url, Table: "items"}}},
		sync: &commonv1.SyncSpec{PollMs: 50, Kind: &commonv1.SyncSpec_Logical{Logical: &commonv1.LogicalSync{}}},
		rows: func(ctx context.Context) ([]string, error) {
			rs, err := pool.Query(ctx, rowText)
			if err != nil {
				return nil, err
			}
			return pgx.CollectRows(rs, pgx.RowTo[string])
		},
		target:  rowText,
		logical: true,
		order:   lsnOf,
		round: func(ctx context.Context, r int) (ops, deletes int64, err error) {
			// Each round is one multi-row transaction; every fifth also
			// moves a key (a delete and an upsert in the log) and changes
			// a range of rows in a second transaction.
			err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				steps := []struct {
					q    string
					args []any
					move bool
					del  bool
				}{
					{`INSERT INTO items VALUES ($1, $2, $3, 0, localtimestamp)`, []any{10000 + r, "new " + strconv.Itoa(r), r % 5}, false, false},
					{`UPDATE items SET name = name || ' +', version = version + 1, updated_at = localtimestamp WHERE id IN ($1, $2)`, []any{1 + r*4, 10000 + r/2}, false, false},
					{`DELETE FROM items WHERE id = $1`, []any{2 + r*4}, false, true},
				}
				if r%5 == 3 {
					steps = append(steps, struct {
						q    string
						args []any
						move bool
						del  bool
					}{`UPDATE items SET id = id + 50000, version = version + 1, updated_at = localtimestamp WHERE id = $1`, []any{3 + r*4}, true, false})
				}
				for _, s := range steps {
					tag, err := tx.Exec(ctx, s.q, s.args...)
					if err != nil {
						return fmt.Errorf("%.60s: %w", s.q, err)
					}
					n := tag.RowsAffected()
					switch {
					case s.move:
						ops, deletes = ops+2*n, deletes+n
					case s.del:
						ops, deletes = ops+n, deletes+n
					default:
						ops += n
					}
				}
				return nil
			})
			if err != nil || r%5 != 3 {
				return ops, deletes, err
			}
			err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				tag, err := tx.Exec(ctx, `UPDATE items SET qty = coalesce(qty, 0) + 1, version = version + 1, updated_at = localtimestamp WHERE id BETWEEN 500 AND 520`)
				if err != nil {
					return err
				}
				ops += tag.RowsAffected()
				if tag, err = tx.Exec(ctx, `DELETE FROM items WHERE id = $1`, 600+r); err != nil {
					return err
				}
				ops, deletes = ops+tag.RowsAffected(), deletes+tag.RowsAffected()
				return nil
			})
			return ops, deletes, err
		},
	}
}

// TestFollowerKilledMidSync: every service a separate process; a table is
// loaded and then followed while a writer inserts, updates (keys moved
// too) and deletes on the source. While following, the orchestrator that
// holds the follower's lease is SIGKILLed: the lease is not handed back,
// it must run out, and a new orchestrator process takes the follower over
// from the ledger; then the loader is SIGKILLed and restarted. Once the
// writer stops: lag 0, the target equals the source (checksum, including
// a version column every update increments), Reconcile passes, readiness
// says ready, the follower's ledger has contiguous seqs and positions that
// only move forward (and for logical replication exactly one ledger row
// per row change the source logged), and StopFollowing ends the job
// SUCCEEDED.
func TestFollowerKilledMidSync(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(*testing.T) *syncSource
	}{
		{"mariadb watermark", mariaSource},
		{"postgres logical", pgSource},
		{"mariadb binlog", mariaBinlogSource},
	} {
		t.Run(tc.name, func(t *testing.T) { followKilled(t, tc.open(t)) })
	}
}

func followKilled(t *testing.T, src *syncSource) {
	ctx := context.Background()
	db := testenv.NewDB(t)
	db.Exec(syncTargetDDL)
	// A short lease, so the dead orchestrator's follower is free soon.
	p := startProcs(t, "CUTOVER_CONTROL_URL="+db.URL, "CUTOVER_TARGET_URL="+db.URL, "CUTOVER_LEASE=2s")
	jobs, valid := orchestratorClients(p)
	spec := &commonv1.JobSpec{Name: "follow items", BatchSize: 40, Tables: []*commonv1.TableSpec{{
		Name: "items", TargetTable: "items", Partitions: 2, Source: src.spec, Sync: src.sync,
		Columns: []*commonv1.ColumnMapping{{Target: "id", Source: "id"}, {Target: "name", Source: "name"}, {Target: "qty", Source: "qty"},
			{Target: "version", Source: "version"}, {Target: "updated_at", Source: "updated_at"}},
	}}}
	created, err := jobs.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: spec})
	if err != nil {
		t.Fatalf("CreateJob: %v", err)
	}
	id := created.Job.Id
	// A binlog follower starts from the position read before the full
	// load: the writer runs while the full load reads, and the changes it
	// made then are applied again after it (as upserts and deletes by key).
	duringLoad := src.sync.GetBinlog() != nil
	if !duringLoad {
		waitFollowing(t, jobs, id, p)
		if n := db.Int(`SELECT count(*) FROM items`); n != syncSeedRows {
			t.Fatalf("full load: %d rows in the target, want %d", n, syncSeedRows)
		}
	}

	// The writer changes the source until told to stop.
	type written struct {
		rounds        int
		ops, deletes  int64
		err           error
		stoppedByTest bool
	}
	stop := make(chan struct{})
	done := make(chan written, 1)
	go func() {
		var w written
		defer func() { done <- w }()
		for ; w.rounds < maxRounds; w.rounds++ {
			select {
			case <-stop:
				w.stoppedByTest = true
				return
			default:
			}
			ops, dels, err := src.round(ctx, w.rounds)
			if err != nil {
				w.err = fmt.Errorf("round %d: %w", w.rounds, err)
				return
			}
			w.ops, w.deletes = w.ops+ops, w.deletes+dels
			time.Sleep(30 * time.Millisecond)
		}
	}()
	if duringLoad {
		waitFollowing(t, jobs, id, p)
	}
	writerStopped := false
	stopWriter := func() written {
		if writerStopped {
			t.Fatal("writer stopped twice")
		}
		writerStopped = true
		close(stop)
		w := <-done
		if w.err != nil {
			t.Fatalf("writer: %v", w.err)
		}
		return w
	}
	defer func() {
		if !writerStopped {
			close(stop)
			<-done
		}
	}()

	batches := func() int64 {
		return db.Int(`SELECT count(*) FROM cutover.ledger WHERE job_id = $1 AND partition_id = 'sync:items'`, id)
	}
	owner := func() string {
		return db.Strings(`SELECT lease_owner FROM cutover_control.partitions WHERE job_id = $1 AND id = 'sync:items'`, id)[0]
	}
	waitFor(t, p, 20*time.Second, "the follower applies change batches", func() bool { return batches() >= 3 })

	// SIGKILL the orchestrator: its lease stays in the control schema
	// until it runs out; only then may the new process claim the follower.
	dead := owner()
	p.kill9("orchestrator")
	atKill := batches()
	p.script("start.sh", "orchestrator")
	jobs, valid = orchestratorClients(p)
	waitFor(t, p, 20*time.Second, "a new orchestrator takes the follower over", func() bool {
		o := owner()
		return o != "" && o != dead && batches() >= atKill+2
	})

	// SIGKILL the loader too; the follower retries and carries on.
	p.kill9("loader")
	atLoaderKill := batches()
	p.script("start.sh", "loader")
	waitFor(t, p, 20*time.Second, "the follower goes on after the loader's restart", func() bool { return batches() >= atLoaderKill+2 })

	w := stopWriter()
	if !w.stoppedByTest {
		t.Logf("the writer ran all %d rounds before the kills were done", maxRounds)
	}
	t.Logf("writer: %d rounds, %d row changes, %d deletes; ledger: %d batches at the orchestrator kill, %d at the loader kill",
		w.rounds, w.ops, w.deletes, atKill, atLoaderKill)

	// Caught up: lag 0 and the target equals the source.
	srcRows, err := src.rows(ctx)
	if err != nil {
		t.Fatalf("read the source: %v", err)
	}
	want := digest(srcRows)
	var got string
	var r *orchestratorv1.GetReadinessResponse
	waitFor(t, p, 30*time.Second, "lag 0 and the target equal to the source", func() bool {
		var err error
		r, err = jobs.GetReadiness(ctx, &orchestratorv1.GetReadinessRequest{Id: id})
		if err != nil {
			t.Fatalf("GetReadiness: %v", err)
		}
		got = digest(db.Strings(src.target))
		caught := len(r.Tables) == 1 && r.Tables[0].LagRows == 0 && r.Tables[0].LagSeconds == 0
		if !src.logical {
			caught = caught && r.Tables[0].LastCheckedAt != nil // deletes are seen by key checks
		}
		return got == want && caught
	})

	if duringLoad {
		// Rows committed out of id and timestamp order: each round's late
		// row is there.
		if n := db.Int(`SELECT count(*) FROM items WHERE id BETWEEN 29000 AND 30000`); n != int64(w.rounds) {
			t.Fatalf("%d rows committed out of order reached the target, the writer made %d", n, w.rounds)
		}
	}
	rec, err := valid.Reconcile(ctx, &orchestratorv1.ReconcileRequest{Id: id})
	if err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	// Independent level: the source's own rows now against the target's.
	if ind := rec.Reconciliation.Tables[0].GetIndependent(); !rec.Reconciliation.Ok || ind.GetSourceRows() == 0 || ind.GetRowsSkipped() != "" || len(ind.GetDifferences()) > 0 {
		t.Fatalf("reconciliation: %v", rec.Reconciliation)
	}
	r, err = jobs.GetReadiness(ctx, &orchestratorv1.GetReadinessRequest{Id: id})
	if err != nil || !r.Ready || !r.Reconciled || r.Tables[0].Upserts == 0 || r.Tables[0].Deletes == 0 {
		t.Fatalf("readiness: %v %v", r, err)
	}
	// End to end, source commit to target commit: known where the log
	// says when a change committed, and a wall-clock delay, not the
	// seconds since 1970 or 2000 (which a wrong epoch would give).
	if d := r.Tables[0].CommitDelaySeconds; src.logical && (d <= 0 || d > 600) || !src.logical && d != 0 {
		t.Fatalf("commit delay %.3f s (logical %v)", d, src.logical)
	}

	checkSyncLedger(t, db, id, src, w.ops, w.deletes)

	stopped, err := jobs.StopFollowing(ctx, &orchestratorv1.StopFollowingRequest{Id: id})
	if err != nil || stopped.Job.State != orchestratorv1.JobState_JOB_STATE_SUCCEEDED {
		t.Fatalf("StopFollowing: %v %v", stopped, err)
	}
	if c := stopped.Job.Counts; c.Extracted != c.Loaded+c.Quarantined+c.MergedAway+c.Filtered {
		t.Fatalf("job counts do not balance: %+v", c)
	}
	// Nothing changed after the stop: the target still equals the source.
	if got := digest(db.Strings(src.target)); got != want {
		t.Fatalf("after StopFollowing the target is %s, the source %s", got, want)
	}
}

// checkSyncLedger: the follower's ledger holds each change batch once.
// Seqs are contiguous from 0; positions only move forward (a watermark
// key check's delete-only batch keeps the position it was found at, so
// there an equal position is allowed). With logical replication each row
// change the source logged is in exactly one batch, so the batches'
// extracted rows add up to the writer's changes: a batch applied twice
// under two seqs, or one lost, breaks the sum.
func checkSyncLedger(t *testing.T, db *testenv.DB, id string, src *syncSource, ops, deletes int64) {
	t.Helper()
	logical := src.logical
	led := db.Strings(`SELECT seq || E'\t' || position || E'\t' || (deletes = extracted)::text || E'\t' || extracted || E'\t' || deletes
		FROM cutover.ledger WHERE job_id = $1 AND partition_id = 'sync:items' ORDER BY seq`, id)
	if len(led) < 3 {
		t.Fatalf("ledger of the follower: %q", led)
	}
	var extracted, dels int64
	var prevLSN uint64
	var prevWM []string
	for i, e := range led {
		f := strings.Split(e, "\t")
		if f[0] != strconv.Itoa(i) {
			t.Fatalf("ledger seq %s at %d: %q", f[0], i, led)
		}
		n, _ := strconv.ParseInt(f[3], 10, 64)
		d, _ := strconv.ParseInt(f[4], 10, 64)
		extracted, dels = extracted+n, dels+d
		if logical {
			pos, ok := src.order(f[1])
			if !ok || pos <= prevLSN {
				t.Fatalf("position %q after %x (seq %s): %q", f[1], prevLSN, f[0], led)
			}
			prevLSN = pos
			continue
		}
		var pos []string
		if err := json.Unmarshal([]byte(f[1]), &pos); err != nil || len(pos) == 0 {
			t.Fatalf("ledger position %q: %v", f[1], err)
		}
		if prevWM != nil {
			c := compareWatermark(pos, prevWM)
			if c < 0 || (c == 0 && f[2] != "true") {
				t.Fatalf("position %v after %v (seq %s)", pos, prevWM, f[0])
			}
		}
		prevWM = pos
	}
	if logical {
		if extracted != ops || dels != deletes {
			t.Fatalf("the ledger applied %d row changes (%d deletes); the source logged %d (%d deletes)", extracted, dels, ops, deletes)
		}
		return
	}
	// A watermark sees only a row's latest state and a key check only the
	// rows the target still has, so fewer is fine, more is not.
	if dels == 0 || dels > deletes {
		t.Fatalf("the ledger applied %d deletes; the writer made %d", dels, deletes)
	}
}

// compareWatermark orders watermark positions [w, id]: the watermark text
// (fixed-width date-time), then the key as a number.
func compareWatermark(a, b []string) int {
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

// gtidSeq reads a MariaDB binlog position of one GTID domain,
// "mariadb:0-1-42", as its sequence number.
func gtidSeq(s string) (uint64, bool) {
	set, ok := strings.CutPrefix(s, "mariadb:")
	if !ok || strings.Contains(set, ",") {
		return 0, false
	}
	n, err := strconv.ParseUint(set[strings.LastIndexByte(set, '-')+1:], 10, 64)
	return n, err == nil
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

func digest(rows []string) string {
	h := md5.New()
	for _, s := range rows {
		h.Write([]byte(s + "\n"))
	}
	return strconv.Itoa(len(rows)) + ":" + hex.EncodeToString(h.Sum(nil))
}

// orchestratorClients dials the orchestrator (a fresh connection: the
// previous one may be backing off after a kill).
func orchestratorClients(p *procs) (orchestratorv1.JobServiceClient, orchestratorv1.ValidationServiceClient) {
	cc := p.dial()
	return orchestratorv1.NewJobServiceClient(cc), orchestratorv1.NewValidationServiceClient(cc)
}

func waitFollowing(t *testing.T, jobs orchestratorv1.JobServiceClient, id string, p *procs) {
	t.Helper()
	waitFor(t, p, time.Minute, "the job follows", func() bool {
		r, err := jobs.GetJob(context.Background(), &orchestratorv1.GetJobRequest{Id: id})
		if err != nil {
			t.Fatalf("GetJob: %v", err)
		}
		switch r.Job.State {
		case orchestratorv1.JobState_JOB_STATE_FOLLOWING:
			return true
		case orchestratorv1.JobState_JOB_STATE_PENDING, orchestratorv1.JobState_JOB_STATE_RUNNING:
			return false
		}
		t.Fatalf("job %s is %s (%s), want following\n%s", id, r.Job.State, r.Job.Error, p.logs())
		return false
	})
}

// waitFor polls cond until it holds or the timeout passes (then it fails
// with the services' logs).
func waitFor(t *testing.T, p *procs, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s\n%s", what, p.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
