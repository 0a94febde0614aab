package chaos

import (
	"context"
	"crypto/md5"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/jackc/pgx/v5"
)

// follower is one kind of sync under faults: its source, the writer that
// changes it and the source's own checksum of the rows.
type follower struct {
	name   string
	source *commonv1.SourceSpec
	sync   *commonv1.SyncSpec
	// write makes round's changes on the source.
	write  func(round int) error
	srcSum func() string
	faults []string
}

// followUnderFaults: a MariaDB table is loaded and then followed by its
// updated_at (watermark sync) while a writer inserts, updates and deletes
// rows and services are killed and links reset. Once the writer stops the
// target must catch up to the source, checked by each database's own
// checksum, and StopFollowing must end the job SUCCEEDED.
func followUnderFaults(t *testing.T, st *stack, jobs orchestratorv1.JobServiceClient, pg *cluster, mariaDSN, src string, inj *injector) {
	t.Helper()
	ctx := context.Background()
	my, err := sql.Open("mysql", mariaDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer my.Close()
	myExec := func(q string, args ...any) error {
		_, err := my.ExecContext(ctx, q, args...)
		return err
	}
	if err := myExec(`CREATE TABLE fol (id int PRIMARY KEY, v varchar(60) NOT NULL, updated_at datetime(6) NOT NULL, KEY (updated_at))`); err != nil {
		t.Fatal(err)
	}
	var vals []string
	for i := 1; i <= 2000; i++ {
		vals = append(vals, fmt.Sprintf("(%d, 'row %d', '2024-01-01' + INTERVAL %d SECOND)", i, i, i))
	}
	if err := myExec(`INSERT INTO fol VALUES ` + strings.Join(vals, ",")); err != nil {
		t.Fatal(err)
	}
	follow(t, st, jobs, pg, inj, follower{
		name:   "watermark",
		source: &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Mysql{Mysql: &commonv1.MysqlSource{Dsn: src, Table: "fol"}}},
		sync:   &commonv1.SyncSpec{PollMs: 50, Kind: &commonv1.SyncSpec_Watermark{Watermark: &commonv1.WatermarkSync{Column: "updated_at", DeleteCheckSeconds: 1}}},
		// Each round inserts a row, updates two and deletes one.
		write: func(round int) error {
			for _, w := range []struct {
				q    string
				args []any
			}{
				{`INSERT INTO fol VALUES (?, ?, NOW(6))`, []any{5000 + round, "new " + strconv.Itoa(round)}},
				{`UPDATE fol SET v = CONCAT(v, ' +'), updated_at = NOW(6) WHERE id IN (?, ?)`, []any{1 + round*7, 5000 + round/2}},
				{`DELETE FROM fol WHERE id = ?`, []any{3 + round*7}},
			} {
				if err := myExec(w.q, w.args...); err != nil {
					return err
				}
			}
			return nil
		},
		srcSum: func() string {
			rows, err := my.QueryContext(ctx, `SELECT CONCAT_WS('|', id, v, DATE_FORMAT(updated_at, '%Y-%m-%d %H:%i:%s.%f')) FROM fol ORDER BY id`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			h, n := md5.New(), 0
			for rows.Next() {
				var s string
				if err := rows.Scan(&s); err != nil {
					t.Fatal(err)
				}
				h.Write([]byte(s + "\n"))
				n++
			}
			return strconv.Itoa(n) + ":" + hex.EncodeToString(h.Sum(nil))
		},
		faults: []string{"kill extractor", "net reset source", "kill loader", "net reset target", "kill orchestrator", "pause follower owner", "net reset stage"},
	})
}

// followLogicalUnderFaults: the same for a PostgreSQL table followed
// through a logical replication slot (on the suite's own cluster, reached
// through its own link), with key moves and multi-row transactions, and a
// PostgreSQL restart that takes the source, the target and the control
// database down at once.
func followLogicalUnderFaults(t *testing.T, st *stack, jobs orchestratorv1.JobServiceClient, pg *cluster, inj *injector) {
	t.Helper()
	ctx := context.Background()
	srcURL := pg.database(t, "chaos_logical_src")
	exec1(t, srcURL, `CREATE TABLE fol (id bigint PRIMARY KEY, v text NOT NULL, updated_at timestamp(6) NOT NULL)`)
	exec1(t, srcURL, `INSERT INTO fol SELECT g, 'row ' || g, '2024-01-01'::timestamp + g * interval '1 second' FROM generate_series(1, 2000) g`)
	src, err := pgx.Connect(ctx, srcURL)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close(ctx)
	follow(t, st, jobs, pg, inj, follower{
		name:   "logical",
		source: &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Postgres{Postgres: &commonv1.PostgresSource{Dsn: st.viaLink("pgsource", srcURL), Table: "fol"}}},
		sync:   &commonv1.SyncSpec{PollMs: 50, Kind: &commonv1.SyncSpec_Logical{Logical: &commonv1.LogicalSync{}}},
		// Each round inserts a row, updates two, deletes one and, every
		// fifth, moves a key; the round is one transaction.
		write: func(round int) error {
			b := &pgx.Batch{}
			b.Queue(`INSERT INTO fol VALUES ($1, $2, now()) ON CONFLICT DO NOTHING`, 5000+round, "new "+strconv.Itoa(round))
			b.Queue(`UPDATE fol SET v = v || ' +', updated_at = now() WHERE id IN ($1, $2)`, 1+round*7, 5000+round/2)
			b.Queue(`DELETE FROM fol WHERE id = $1`, 3+round*7)
			if round%5 == 4 {
				b.Queue(`UPDATE fol SET id = id + 100000 WHERE id = $1`, 5+round*7)
			}
			// A restart drops the connection: reconnect and redo the round.
			// Redone it may change a row twice, which the comparison with
			// the source's own final state does not mind.
			for try := 0; ; try++ {
				tx, err := src.Begin(ctx)
				if err == nil {
					if err = tx.SendBatch(ctx, b).Close(); err == nil {
						err = tx.Commit(ctx)
					} else {
						_ = tx.Rollback(ctx)
					}
				}
				if err == nil || try == 20 {
					return err
				}
				time.Sleep(500 * time.Millisecond)
				if c, cerr := pgx.Connect(ctx, srcURL); cerr == nil {
					src.Close(ctx)
					src = c
				}
			}
		},
		srcSum: func() string { return pgSum(ctx, srcURL) },
		faults: []string{"kill extractor", "net reset pgsource", "kill loader", "postgres restart", "kill orchestrator", "pause follower owner", "net reset stage"},
	})
}

// pgSum is a PostgreSQL database's own checksum of fol: its row count and
// the md5 of its rows in key order.
func pgSum(ctx context.Context, url string) string {
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return err.Error()
	}
	defer c.Close(ctx)
	var n int
	var sum string
	if err := c.QueryRow(ctx, `SELECT count(*), coalesce(md5(string_agg(concat_ws('|', id, v, to_char(updated_at, 'YYYY-MM-DD HH24:MI:SS.US')) || E'\n', '' ORDER BY id)), '') FROM fol`).Scan(&n, &sum); err != nil {
		return err.Error()
	}
	return strconv.Itoa(n) + ":" + sum
}

// follow runs f: the table is loaded, followed while the writer makes 150
// rounds of changes and f's faults land, then must catch up and stop.
func follow(t *testing.T, st *stack, jobs orchestratorv1.JobServiceClient, pg *cluster, inj *injector, f follower) {
	t.Helper()
	ctx := context.Background()
	db := pg.database(t, "chaos_follow_"+f.name)
	exec1(t, db, `CREATE TABLE fol (id bigint PRIMARY KEY, v text NOT NULL, updated_at timestamp(6) NOT NULL)`)
	sp := &commonv1.JobSpec{Name: "chaos follow " + f.name, BatchSize: 100, Target: &commonv1.TargetSpec{Dsn: st.viaLink("target", db)},
		Tables: []*commonv1.TableSpec{{Name: "fol", TargetTable: "fol", Partitions: 2, Source: f.source, Sync: f.sync,
			Columns: []*commonv1.ColumnMapping{{Target: "id", Source: "id"}, {Target: "v", Source: "v"}, {Target: "updated_at", Source: "updated_at"}},
		}}}
	var id string
	retry(t, "CreateJob", func(ctx context.Context) error {
		r, err := jobs.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: sp})
		if err == nil {
			id = r.GetJob().GetId()
		}
		return err
	})
	waitFor(t, jobs, id, orchestratorv1.JobState_JOB_STATE_FOLLOWING, 2*time.Minute)

	writes := make(chan error, 1)
	go func() {
		for round := 0; round < 150; round++ {
			if err := f.write(round); err != nil {
				writes <- err
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		writes <- nil
	}()
	faults := 0
	var takeovers []string
	for _, kind := range f.faults {
		time.Sleep(inj.between(200*time.Millisecond, 600*time.Millisecond))
		if kind == "pause follower owner" {
			takeovers = append(takeovers, pauseFollowerOwner(t, st, inj, id))
			faults++
			continue
		}
		if err := inj.inject(kind); err != nil {
			t.Fatalf("%s follower: %s: %v", f.name, kind, err)
		}
		faults++
	}
	if err := <-writes; err != nil {
		t.Fatalf("%s writer: %v", f.name, err)
	}
	// Caught up: each database's own checksum of the rows.
	want := f.srcSum()
	deadline := time.Now().Add(2 * time.Minute)
	got := ""
	for got = pgSum(ctx, db); got != want; got = pgSum(ctx, db) {
		if time.Now().After(deadline) {
			t.Fatalf("%s follower did not catch up after %d faults: target %s, source %s\n%s", f.name, faults, got, want, st.logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
	retry(t, "StopFollowing", func(ctx context.Context) error {
		_, err := jobs.StopFollowing(ctx, &orchestratorv1.StopFollowingRequest{Id: id})
		return err
	})
	waitFor(t, jobs, id, orchestratorv1.JobState_JOB_STATE_SUCCEEDED, 2*time.Minute)
	if got := pgSum(ctx, db); got != want {
		t.Errorf("%s: after StopFollowing the target is %s, the source %s", f.name, got, want)
	}
	fmt.Printf("  %-20s %d faults while following 150 rounds of writes (%s), caught up (%s rows), stopped SUCCEEDED\n", f.name+" follower", faults, strings.Join(takeovers, "; "), strings.Split(want, ":")[0])
}

// pauseFollowerOwner stops the orchestrator replica that holds one of the
// job's followers for longer than its lease (CUTOVER_LEASE 4s), then lets
// it run again: the follower must have been claimed again at a higher
// epoch meanwhile (the fence then refuses what the woken owner still
// sends, and the final checksum shows nothing was applied twice).
func pauseFollowerOwner(t *testing.T, st *stack, inj *injector, job string) string {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, inj.control)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	// A replica killed a moment ago may still hold a lease: wait for one
	// held by a running replica.
	var part, owner string
	var epoch int64
	var victim *service
	pids := map[string]*service{}
	for _, name := range []string{"orchestrator", "orchestrator2"} {
		if s := st.services[name]; s.cmd != nil {
			pids[strconv.Itoa(s.cmd.Process.Pid)] = s
		}
	}
	for deadline := time.Now().Add(30 * time.Second); victim == nil; time.Sleep(200 * time.Millisecond) {
		rows, err := c.Query(ctx, `SELECT id, lease_owner, epoch FROM cutover_control.partitions
			WHERE job_id = $1 AND state = 'following' AND lease_owner IS NOT NULL AND lease_until > now() ORDER BY id`, job)
		if err == nil {
			for rows.Next() && victim == nil {
				if err = rows.Scan(&part, &owner, &epoch); err == nil {
					if f := strings.Split(owner, ":"); len(f) >= 3 {
						victim = pids[f[len(f)-2]] // host:pid:random
					}
				}
			}
			rows.Close()
		}
		if victim == nil && time.Now().After(deadline) {
			t.Fatalf("no follower of job %s is held by a running orchestrator replica (last: %q, %v)", job, owner, err)
		}
	}
	victim.pause(6*time.Second + inj.between(0, 2*time.Second))
	var now int64
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if err := c.QueryRow(ctx, `SELECT epoch FROM cutover_control.partitions WHERE job_id = $1 AND id = $2`, job, part).Scan(&now); err == nil && now > epoch {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("follower %s of job %s: still at epoch %d 30 s after its owner %s woke from a pause past its lease", part, job, epoch, victim.name)
		}
	}
	return fmt.Sprintf("%s paused holding follower %s at epoch %d, claimed again at epoch %d", victim.name, part, epoch, now)
}

// retry repeats a call until it answers, as a client does across restarts.
func retry(t *testing.T, what string, call func(context.Context) error) {
	t.Helper()
	var err error
	for try := 0; try < 30; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = call(ctx)
		cancel()
		if err == nil {
			return
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("%s: %v", what, err)
}

// waitFor waits for the job to reach state.
func waitFor(t *testing.T, jobs orchestratorv1.JobServiceClient, id string, state orchestratorv1.JobState, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r, err := jobs.GetJob(ctx, &orchestratorv1.GetJobRequest{Id: id})
		cancel()
		if err == nil {
			switch r.GetJob().GetState() {
			case state:
				return
			case orchestratorv1.JobState_JOB_STATE_FAILED, orchestratorv1.JobState_JOB_STATE_CANCELLED:
				t.Fatalf("job %s is %s (%s), want %s", id, r.GetJob().GetState(), r.GetJob().GetError(), state)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("job %s did not reach %s within %s", id, state, limit)
}
