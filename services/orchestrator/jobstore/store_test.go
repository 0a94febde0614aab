package jobstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"github.com/cutover/cutover/services/kit/pgtest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	code := pgtest.Run(m)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// open gives a store on a fresh database, and a pool on the same database
// to check what the store wrote with SQL of the test's own.
func open(t *testing.T) (*Store, *pgxpool.Pool) {
	t.Helper()
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	s, err := Open(ctx, url, testBox)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return s, pool
}

func newJob(t *testing.T, s *Store, id string, parallelism, parts int) {
	t.Helper()
	j := &Job{ID: id, Name: id, Parallelism: parallelism, Spec: &commonv1.JobSpec{Name: id}}
	var ps []Partition
	for i := range parts {
		ps = append(ps, Partition{ID: fmt.Sprintf("p%d", i), Table: "t", Range: &commonv1.KeyRange{Lower: fmt.Sprint(i * 10), Upper: fmt.Sprint(i*10 + 10)}})
	}
	if err := s.InsertJob(context.Background(), j, ps); err != nil {
		t.Fatal(err)
	}
}

// claimNext claims the first partition (by id) of any job that a claim
// takes, as the dispatcher's River jobs would try them.
func claimNext(t *testing.T, s *Store, owner string, lease time.Duration) (*Partition, error) {
	t.Helper()
	ctx := context.Background()
	rows, err := s.pool.Query(ctx, `SELECT job_id, id FROM cutover_control.partitions ORDER BY job_id, id`)
	if err != nil {
		return nil, err
	}
	refs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct{ Job, ID string }])
	if err != nil {
		return nil, err
	}
	for _, r := range refs {
		p, _, err := s.ClaimPartition(ctx, r.Job, r.ID, owner, lease)
		if err != nil || p != nil {
			return p, err
		}
	}
	return nil, nil
}

func partState(t *testing.T, pool *pgxpool.Pool, job, id string) (state, owner string, loaded int64) {
	t.Helper()
	err := pool.QueryRow(context.Background(), `SELECT state, lease_owner, loaded FROM cutover_control.partitions WHERE job_id = $1 AND id = $2`, job, id).Scan(&state, &owner, &loaded)
	if err != nil {
		t.Fatal(err)
	}
	return state, owner, loaded
}

// A job's parallelism bounds how many of its partitions are held at once,
// however many replicas ask.
func TestClaimKeepsParallelism(t *testing.T) {
	for _, tc := range []struct{ parallelism, parts, want int }{{1, 3, 1}, {2, 4, 2}, {4, 3, 3}} {
		t.Run(fmt.Sprintf("parallelism=%d,parts=%d", tc.parallelism, tc.parts), func(t *testing.T) {
			s, pool := open(t)
			ctx := context.Background()
			newJob(t, s, "job-a", tc.parallelism, tc.parts)
			got := 0
			for i := range tc.parts + 2 {
				p, err := claimNext(t, s, fmt.Sprintf("replica-%d", i), time.Minute)
				if err != nil {
					t.Fatal(err)
				}
				if p != nil {
					got++
				}
			}
			var running int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM cutover_control.partitions WHERE state = 'running'`).Scan(&running); err != nil {
				t.Fatal(err)
			}
			if got != tc.want || running != tc.want {
				t.Fatalf("claimed %d, %d running; want %d", got, running, tc.want)
			}
		})
	}
}

// An owner whose lease ran out and was taken over writes nothing more:
// neither progress nor the partition's end nor its failure. Every claim
// raises the partition's epoch, so the writes are fenced even when the new
// holder has the same owner name (another worker of the same replica).
func TestLostLeaseIsFenced(t *testing.T) {
	s, pool := open(t)
	ctx := context.Background()
	newJob(t, s, "job-f", 1, 1)
	old, err := claimNext(t, s, "old", 50*time.Millisecond)
	if err != nil || old == nil || old.Epoch != 1 {
		t.Fatalf("claim: %+v %v", old, err)
	}
	time.Sleep(200 * time.Millisecond) // the lease runs out: a paused owner
	taken, err := claimNext(t, s, "new", time.Minute)
	if err != nil || taken == nil || taken.ID != old.ID || taken.Attempts != 2 || taken.Epoch != 2 {
		t.Fatalf("take over: %+v %v", taken, err)
	}
	live, err := s.Progress(ctx, old, "old", time.Minute, &commonv1.Counts{Loaded: 99})
	if !errors.Is(err, ErrLeaseLost) || live {
		t.Fatalf("progress of the old owner: live=%v err=%v, want ErrLeaseLost", live, err)
	}
	if err := s.FinishPartition(ctx, old, "old", &commonv1.Counts{Loaded: 99}); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("finish by the old owner: %v, want ErrLeaseLost", err)
	}
	if err := s.RetryPartition(ctx, old, "old", 0, errors.New("late")); err != nil {
		t.Fatal(err)
	}
	if err := s.FailPartition(ctx, old, "old", errors.New("late")); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("fail by the old owner: %v, want ErrLeaseLost", err)
	}
	if st, owner, loaded := partState(t, pool, "job-f", old.ID); st != StateRunning || owner != "new" || loaded != 0 {
		t.Fatalf("after the old owner's writes: %s owned by %s, loaded %d", st, owner, loaded)
	}
	if j, err := s.GetJob(ctx, "job-f"); err != nil || j.State != StateRunning {
		t.Fatalf("job after the old owner's failure: %+v %v", j, err)
	}

	// The same owner name claims again after its own lease ran out: the
	// earlier claim is fenced by its epoch.
	if _, err := pool.Exec(ctx, `UPDATE cutover_control.partitions SET lease_until = now() - interval '1s' WHERE job_id = 'job-f'`); err != nil {
		t.Fatal(err)
	}
	again, err := claimNext(t, s, "new", time.Minute)
	if err != nil || again == nil || again.ID != old.ID || again.Epoch != 3 {
		t.Fatalf("claim again: %+v %v", again, err)
	}
	if live, err := s.Progress(ctx, taken, "new", time.Minute, &commonv1.Counts{Loaded: 98}); !errors.Is(err, ErrLeaseLost) || live {
		t.Fatalf("progress of the earlier claim of the same owner: live=%v err=%v, want ErrLeaseLost", live, err)
	}
	if err := s.FinishPartition(ctx, taken, "new", &commonv1.Counts{Loaded: 98}); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("finish by the earlier claim of the same owner: %v, want ErrLeaseLost", err)
	}
	if err := s.FinishPartition(ctx, again, "new", &commonv1.Counts{Extracted: 10, Loaded: 10}); err != nil {
		t.Fatal(err)
	}
	if st, _, loaded := partState(t, pool, "job-f", old.ID); st != StateDone || loaded != 10 {
		t.Fatalf("after the new owner's end: %s, loaded %d", st, loaded)
	}
	ids, err := s.FinishableJobs(ctx)
	if err != nil || len(ids) != 1 || ids[0] != "job-f" {
		t.Fatalf("finishable: %v %v", ids, err)
	}
}

// A failed job resumes: unfinished partitions start over, done ones stay.
func TestResumeRestartsUnfinished(t *testing.T) {
	s, pool := open(t)
	ctx := context.Background()
	newJob(t, s, "job-r", 2, 2)
	a, _ := claimNext(t, s, "w", time.Minute)
	b, _ := claimNext(t, s, "w", time.Minute)
	if a == nil || b == nil {
		t.Fatal("claims failed")
	}
	if err := s.FinishPartition(ctx, a, "w", &commonv1.Counts{Extracted: 5, Loaded: 5}); err != nil {
		t.Fatal(err)
	}
	if err := s.FailPartition(ctx, b, "w", errors.New("stage refused")); err != nil {
		t.Fatal(err)
	}
	j, err := s.GetJob(ctx, "job-r")
	if err != nil || j.State != StateFailed || j.Counts.Loaded != 5 || j.Total != 2 || j.Done != 1 {
		t.Fatalf("failed job: %+v %v", j, err)
	}
	if ok, err := s.ResumeJob(ctx, "job-r"); err != nil || !ok {
		t.Fatalf("resume: %v %v", ok, err)
	}
	if ok, _ := s.ResumeJob(ctx, "job-r"); ok {
		t.Fatal("a running job resumed again")
	}
	for id, want := range map[string]string{a.ID: StateDone, b.ID: StatePending} {
		if st, _, _ := partState(t, pool, "job-r", id); st != want {
			t.Fatalf("partition %s: %s, want %s", id, st, want)
		}
	}
	if _, err := s.GetJob(ctx, "job-none"); !errors.Is(err, ErrJobNotFound) {
		t.Fatalf("unknown job: %v", err)
	}
}

// Followers: one row per followed table, a stop request reaches the
// follower's beat, and the job ends when every follower is done.
func TestFollowers(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	newJob(t, s, "job-s", 1, 1)
	p, _ := claimNext(t, s, "w", time.Minute)
	if err := s.FinishPartition(ctx, p, "w", &commonv1.Counts{}); err != nil {
		t.Fatal(err)
	}
	ok, err := s.StartFollowing(ctx, "job-s", []byte(`{}`), []Followed{{Index: 0, Name: "orders"}})
	if err != nil || !ok {
		t.Fatalf("start following: %v %v", ok, err)
	}
	f, err := s.ClaimFollower(ctx, "job-s", SyncPrefix+"orders", "w", time.Minute)
	if err != nil || f == nil || f.ID != SyncPrefix+"orders" {
		t.Fatalf("claim follower: %+v %v", f, err)
	}
	if other, _ := s.ClaimFollower(ctx, "job-s", SyncPrefix+"orders", "x", time.Minute); other != nil {
		t.Fatalf("a held follower was claimed again: %+v", other)
	}
	b := &Beat{Position: "42", LagRows: 3, Upserts: 7}
	if err := s.FollowBeat(ctx, f, "w", time.Minute, b); err != nil || !b.Live || b.StopRequested {
		t.Fatalf("beat: %+v %v", b, err)
	}
	if ok, err := s.RequestStop(ctx, "job-s"); err != nil || !ok {
		t.Fatalf("request stop: %v %v", ok, err)
	}
	if err := s.FollowBeat(ctx, f, "w", time.Minute, b); err != nil || !b.StopRequested {
		t.Fatalf("beat after the stop request: %+v %v", b, err)
	}
	lags, err := s.Followers(ctx, "job-s")
	if err != nil || len(lags) != 1 || lags[0].Position != "42" || lags[0].Upserts != 7 {
		t.Fatalf("followers: %+v %v", lags, err)
	}
	if ok, _ := s.FinishFollowing(ctx, "job-s", nil); ok {
		t.Fatal("the job ended with a follower still following")
	}
	if err := s.FollowerDone(ctx, f, "w"); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.FinishFollowing(ctx, "job-s", nil); err != nil || !ok {
		t.Fatalf("finish following: %v %v", ok, err)
	}
	if j, _ := s.GetJob(ctx, "job-s"); j.State != StateSucceeded {
		t.Fatalf("job state %s", j.State)
	}
}

// A follower whose lease ran out and was claimed again (by another
// replica, or by the same replica name after a restart) is fenced: the new
// claim has a higher epoch, and the old claim's beats and release no
// longer touch the row.
func TestFollowerClaimFences(t *testing.T) {
	s, pool := open(t)
	ctx := context.Background()
	newJob(t, s, "job-f", 1, 1)
	p, _ := claimNext(t, s, "w", time.Minute)
	if err := s.FinishPartition(ctx, p, "w", &commonv1.Counts{}); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.StartFollowing(ctx, "job-f", []byte(`{}`), []Followed{{Index: 0, Name: "orders"}}); err != nil || !ok {
		t.Fatalf("start following: %v %v", ok, err)
	}
	old, err := s.ClaimFollower(ctx, "job-f", SyncPrefix+"orders", "w", time.Minute)
	if err != nil || old == nil {
		t.Fatalf("claim: %+v %v", old, err)
	}
	// The lease runs out while the holder is paused.
	if _, err := pool.Exec(ctx, `UPDATE cutover_control.partitions SET lease_until = now() - interval '1 second' WHERE job_id = 'job-f' AND id = $1`, old.ID); err != nil {
		t.Fatal(err)
	}
	for _, owner := range []string{"x", "w"} {
		taken, err := s.ClaimFollower(ctx, "job-f", SyncPrefix+"orders", owner, time.Minute)
		if err != nil || taken == nil || taken.Epoch <= old.Epoch {
			t.Fatalf("take over as %s: %+v %v (old epoch %d)", owner, taken, err, old.Epoch)
		}
		b := &Beat{Position: "1"}
		if err := s.FollowBeat(ctx, old, "w", time.Minute, b); err != nil || b.Live {
			t.Fatalf("the old claim's beat after a takeover by %s: live %v, %v", owner, b.Live, err)
		}
		s.ReleaseFollower(ctx, old, "w", errors.New("late failure of the old claim"))
		if lags, err := s.Followers(ctx, "job-f"); err != nil || lags[0].ErrText != "" {
			t.Fatalf("the old claim's release wrote its error: %+v %v", lags, err)
		}
		if err := s.FollowBeat(ctx, taken, owner, time.Minute, b); err != nil || !b.Live {
			t.Fatalf("the new claim (%s) lost its row to the old one's release: live %v, %v", owner, b.Live, err)
		}
		if _, err := pool.Exec(ctx, `UPDATE cutover_control.partitions SET lease_until = now() - interval '1 second' WHERE job_id = 'job-f' AND id = $1`, old.ID); err != nil {
			t.Fatal(err)
		}
		old = &Follower{JobID: taken.JobID, ID: taken.ID, Epoch: taken.Epoch - 1}
	}
}

// A partition not claimed says how long to wait: until its retry's
// backoff ends, a moment while its job has no room, nothing once it is
// held by a live lease or done.
func TestClaimPartitionWaits(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	newJob(t, s, "job-w", 1, 3)
	held, _, err := s.ClaimPartition(ctx, "job-w", "p0", "w", time.Minute)
	if err != nil || held == nil {
		t.Fatalf("claim p0: %+v %v", held, err)
	}
	for _, tc := range []struct {
		name, part string
		before     func()
		min, max   time.Duration
	}{
		{"held by a live lease", "p0", func() {}, 0, 0},
		{"no room under parallelism 1", "p1", func() {}, parallelismWait, parallelismWait},
		{"retry backoff", "p0", func() {
			if err := s.RetryPartition(ctx, held, "w", 5*time.Second, errors.New("stage down")); err != nil {
				t.Fatal(err)
			}
		}, 4 * time.Second, 5 * time.Second},
		{"done", "p1", func() {
			p, _, err := s.ClaimPartition(ctx, "job-w", "p1", "w", time.Minute)
			if err != nil || p == nil {
				t.Fatalf("claim p1: %+v %v", p, err)
			}
			if err := s.FinishPartition(ctx, p, "w", &commonv1.Counts{}); err != nil {
				t.Fatal(err)
			}
		}, 0, 0},
		{"unknown", "p9", func() {}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.before()
			p, wait, err := s.ClaimPartition(ctx, "job-w", tc.part, "x", time.Minute)
			if err != nil || p != nil || wait < tc.min || wait > tc.max {
				t.Fatalf("claim %s: %+v, wait %s, %v; want no claim and a wait in [%s, %s]", tc.part, p, wait, err, tc.min, tc.max)
			}
		})
	}
}

// A job's partitions are claimed in spec order even with room for more:
// a later one waits while an earlier one is due.
func TestClaimPartitionInOrder(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	newJob(t, s, "job-o", 2, 2)
	if p, wait, err := s.ClaimPartition(ctx, "job-o", "p1", "w", time.Minute); err != nil || p != nil || wait != parallelismWait {
		t.Fatalf("claim p1 before p0: %+v, wait %s, %v; want a wait", p, wait, err)
	}
	for _, id := range []string{"p0", "p1"} {
		if p, _, err := s.ClaimPartition(ctx, "job-o", id, "w", time.Minute); err != nil || p == nil {
			t.Fatalf("claim %s: %+v %v", id, p, err)
		}
	}
}

// A follower that stops on an error keeps it on its row, for readiness,
// until its next beat (it read the source again).
func TestFollowerErrorUntilNextBeat(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	newJob(t, s, "job-e", 1, 1)
	p, _ := claimNext(t, s, "w", time.Minute)
	if err := s.FinishPartition(ctx, p, "w", &commonv1.Counts{}); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.StartFollowing(ctx, "job-e", []byte(`{}`), []Followed{{Index: 0, Name: "orders"}}); err != nil || !ok {
		t.Fatalf("start following: %v %v", ok, err)
	}
	for _, tc := range []struct {
		name  string
		cause error
		want  string
	}{
		{"stopped on a schema change", errors.New("the schema of src.orders changed while following"), "the schema of src.orders changed while following"},
		{"released at shutdown keeps it", nil, "the schema of src.orders changed while following"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := s.ClaimFollower(ctx, "job-e", SyncPrefix+"orders", "w", time.Minute)
			if err != nil || f == nil {
				t.Fatalf("claim: %+v %v", f, err)
			}
			s.ReleaseFollower(ctx, f, "w", tc.cause)
			if lags, err := s.Followers(ctx, "job-e"); err != nil || lags[0].ErrText != tc.want {
				t.Fatalf("followers: %+v %v; want error %q", lags, err, tc.want)
			}
		})
	}
	f, err := s.ClaimFollower(ctx, "job-e", SyncPrefix+"orders", "w", time.Minute)
	if err != nil || f == nil {
		t.Fatalf("claim: %+v %v", f, err)
	}
	if err := s.FollowBeat(ctx, f, "w", time.Minute, &Beat{Position: "1"}); err != nil {
		t.Fatal(err)
	}
	if lags, err := s.Followers(ctx, "job-e"); err != nil || lags[0].ErrText != "" {
		t.Fatalf("after a beat: %+v %v; want no error", lags, err)
	}
}
