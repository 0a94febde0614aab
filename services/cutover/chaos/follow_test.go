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
	db := pg.database(t, "chaos_follow")
	exec1(t, db, `CREATE TABLE fol (id bigint PRIMARY KEY, v text NOT NULL, updated_at timestamp(6) NOT NULL)`)
	sp := &commonv1.JobSpec{Name: "chaos follow", BatchSize: 100, Target: &commonv1.TargetSpec{Dsn: st.viaLink("target", db)},
		Tables: []*commonv1.TableSpec{{Name: "fol", TargetTable: "fol", Partitions: 2,
			Source:  &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Mysql{Mysql: &commonv1.MysqlSource{Dsn: src, Table: "fol"}}},
			Columns: []*commonv1.ColumnMapping{{Target: "id", Source: "id"}, {Target: "v", Source: "v"}, {Target: "updated_at", Source: "updated_at"}},
			Sync:    &commonv1.SyncSpec{PollMs: 50, Kind: &commonv1.SyncSpec_Watermark{Watermark: &commonv1.WatermarkSync{Column: "updated_at", DeleteCheckSeconds: 1}}},
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

	// The writer: each round inserts a row, updates two and deletes one.
	writes := make(chan error, 1)
	go func() {
		for round := 0; round < 150; round++ {
			for _, w := range []struct {
				q    string
				args []any
			}{
				{`INSERT INTO fol VALUES (?, ?, NOW(6))`, []any{5000 + round, "new " + strconv.Itoa(round)}},
				{`UPDATE fol SET v = CONCAT(v, ' +'), updated_at = NOW(6) WHERE id IN (?, ?)`, []any{1 + round*7, 5000 + round/2}},
				{`DELETE FROM fol WHERE id = ?`, []any{3 + round*7}},
			} {
				if err := myExec(w.q, w.args...); err != nil {
					writes <- err
					return
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		writes <- nil
	}()
	faults := 0
	for _, kind := range []string{"kill extractor", "net reset source", "kill loader", "net reset target", "kill orchestrator", "net reset stage"} {
		time.Sleep(inj.between(200*time.Millisecond, 600*time.Millisecond))
		if err := inj.inject(kind); err != nil {
			t.Fatalf("follower: %s: %v", kind, err)
		}
		faults++
	}
	if err := <-writes; err != nil {
		t.Fatalf("writer: %v", err)
	}
	// Caught up: each database's own checksum of the rows.
	srcSum := func() string {
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
	}
	tgtSum := func() string {
		c, err := pgx.Connect(ctx, db)
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
	want := srcSum()
	deadline := time.Now().Add(2 * time.Minute)
	got := ""
	for got = tgtSum(); got != want; got = tgtSum() {
		if time.Now().After(deadline) {
			t.Fatalf("follower did not catch up after %d faults: target %s, source %s\n%s", faults, got, want, st.logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
	retry(t, "StopFollowing", func(ctx context.Context) error {
		_, err := jobs.StopFollowing(ctx, &orchestratorv1.StopFollowingRequest{Id: id})
		return err
	})
	waitFor(t, jobs, id, orchestratorv1.JobState_JOB_STATE_SUCCEEDED, 2*time.Minute)
	if got := tgtSum(); got != want {
		t.Errorf("after StopFollowing the target is %s, the source %s", got, want)
	}
	fmt.Printf("  %-20s %d faults while following 150 rounds of writes, caught up (%s rows), stopped SUCCEEDED\n", "follower", faults, strings.Split(want, ":")[0])
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
