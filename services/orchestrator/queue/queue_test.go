package queue

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"github.com/cutover/cutover/services/kit/pgtest"
	"github.com/cutover/cutover/services/kit/sealbox"
	"github.com/cutover/cutover/services/orchestrator/jobstore"
	"github.com/riverqueue/river/rivertype"
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

// replica is one orchestrator's share: a River client whose partition
// work claims through the control store, as the orchestrator's does, and
// records what it ran.
type replica struct {
	name  string
	store *jobstore.Store
	queue *Queue

	mu   sync.Mutex
	runs map[string][]int64 // partition → epochs this replica ran it at
	// hold makes the replica hang once it claimed: it keeps its River
	// jobs running and renews nothing, as a paused or half-dead process.
	hold bool
}

// openStore opens the control store on url with River's tables migrated,
// as an orchestrator replica does at start.
func openStore(t *testing.T, url string) *jobstore.Store {
	t.Helper()
	st, err := jobstore.Open(context.Background(), url, sealbox.New(sealbox.NewKey()))
	if err != nil {
		t.Fatal(err)
	}
	if err := Migrate(context.Background(), st.Pool()); err != nil {
		st.Close()
		t.Fatal(err)
	}
	return st
}

func startReplica(t *testing.T, url, name string, hold bool) *replica {
	t.Helper()
	ctx := context.Background()
	st := openStore(t, url)
	r := &replica{name: name, store: st, runs: map[string][]int64{}, hold: hold}
	var err error
	r.queue, err = Start(ctx, st.Pool(), Config{Workers: 2, ID: name}, Handlers{
		Partition: func(ctx context.Context, job, part string) (time.Duration, error) {
			if r.hold && len(r.epochs(part)) > 0 {
				<-ctx.Done() // hung: takes River jobs, claims nothing
				return 0, nil
			}
			p, wait, err := st.ClaimPartition(ctx, job, part, name, 300*time.Millisecond)
			if err != nil || p == nil {
				return wait, err
			}
			r.mu.Lock()
			r.runs[part] = append(r.runs[part], p.Epoch)
			r.mu.Unlock()
			if r.hold {
				<-ctx.Done() // killed: the lease runs out, nothing is written
				return 0, nil
			}
			return 0, st.FinishPartition(context.WithoutCancel(ctx), p, name, &commonv1.Counts{})
		},
		Finish:     func(context.Context, string) error { return nil },
		Finishable: func(context.Context) ([]string, error) { return nil, nil },
	})
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *replica) stop(t *testing.T) {
	if r.queue == nil {
		return
	}
	if err := r.queue.Stop(context.Background()); err != nil {
		t.Error(err)
	}
	r.queue = nil
	r.store.Close()
}

func (r *replica) epochs(part string) []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int64(nil), r.runs[part]...)
}

func partitionStates(t *testing.T, st *jobstore.Store, job string) map[string]string {
	t.Helper()
	parts, err := st.Partitions(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, p := range parts {
		m[p.ID] = p.State
	}
	return m
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func insertJob(t *testing.T, st *jobstore.Store, id string, parallelism, n int) []string {
	t.Helper()
	var parts []jobstore.Partition
	var ids []string
	for i := range n {
		ids = append(ids, fmt.Sprintf("p%02d", i))
		parts = append(parts, jobstore.Partition{ID: ids[i], Table: "t", Range: &commonv1.KeyRange{}})
	}
	if err := st.InsertJob(context.Background(), &jobstore.Job{ID: id, Name: id, Parallelism: parallelism, Spec: &commonv1.JobSpec{Name: id}}, parts); err != nil {
		t.Fatal(err)
	}
	return ids
}

// Two replicas share a job's partitions through River: each partition
// runs once (one claim, epoch 1), both replicas take some, and the job's
// parallelism holds while they do.
func TestReplicasSharePartitions(t *testing.T) {
	url := pgtest.NewDatabase(t)
	a := startReplica(t, url, "a", false)
	b := startReplica(t, url, "b", false)
	ids := insertJob(t, a.store, "job-share", 2, 24)
	if err := a.queue.Enqueue(context.Background(), "job-share", ids); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every partition done", func() bool {
		for _, st := range partitionStates(t, a.store, "job-share") {
			if st != jobstore.StateDone {
				return false
			}
		}
		return true
	})
	byA, byB := 0, 0
	for _, id := range ids {
		ea, eb := a.epochs(id), b.epochs(id)
		if len(ea)+len(eb) != 1 {
			t.Errorf("partition %s ran %d times (a %v, b %v), want once", id, len(ea)+len(eb), ea, eb)
		}
		byA += len(ea)
		byB += len(eb)
	}
	if byA == 0 || byB == 0 {
		t.Errorf("work not shared: a ran %d partitions, b ran %d", byA, byB)
	}
}

// A replica that dies holding a partition leaves River's job running for
// an hour (River has no heartbeat); the dispatcher sees the lease run out
// and hands the partition to another replica, whose claim raises the
// epoch past the dead holder's.
func TestDeadHolderIsDispatchedAgain(t *testing.T) {
	url := pgtest.NewDatabase(t)
	dead := startReplica(t, url, "dead", true)
	ids := insertJob(t, dead.store, "job-dead", 1, 1)
	if err := dead.queue.Enqueue(context.Background(), "job-dead", ids); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first claim", func() bool { return len(dead.epochs(ids[0])) == 1 })
	// The holder stops renewing (paused, or killed with its River job left
	// running); a live replica joins.
	live := startReplica(t, url, "live", false)
	waitFor(t, "the partition done by the live replica", func() bool {
		return partitionStates(t, live.store, "job-dead")[ids[0]] == jobstore.StateDone
	})
	if got := dead.epochs(ids[0]); len(got) != 1 || got[0] != 1 {
		t.Fatalf("dead holder's claims: %v, want [1]", got)
	}
	if got := live.epochs(ids[0]); len(got) != 1 || got[0] != 2 {
		t.Fatalf("live replica's claims: %v, want one at epoch 2", got)
	}
}

// A partition's River job that fails (the control database away, say)
// runs again within seconds, not after River's default attempt⁴ wait.
func TestRetryPolicy(t *testing.T) {
	for _, tc := range []struct {
		errors int
		want   time.Duration
	}{{0, time.Second}, {1, 2 * time.Second}, {3, 8 * time.Second}, {4, retryCap}, {40, retryCap}} {
		job := &rivertype.JobRow{Errors: make([]rivertype.AttemptError, tc.errors)}
		got := time.Until(retryPolicy{}.NextRetry(job))
		if got > tc.want || got < tc.want-time.Second {
			t.Errorf("after %d errors: again in %s, want %s", tc.errors, got, tc.want)
		}
	}
}

// A replica that hangs (or dies) while ending a job leaves that River job
// running for an hour; the end must still happen on another replica.
func TestFinishAfterHungFinisher(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	start := func(name string, finish func(context.Context, string) error, finishable func(context.Context) ([]string, error)) *Queue {
		st := openStore(t, url)
		q, err := Start(ctx, st.Pool(), Config{Workers: 1, ID: name}, Handlers{
			Partition: func(context.Context, string, string) (time.Duration, error) { return 0, nil },
			Follow:    func(context.Context, string, string) (time.Duration, error) { return 0, nil },
			Finish:    finish, Finishable: finishable,
		})
		if err != nil {
			st.Close()
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = q.Stop(context.Background()); st.Close() })
		return q
	}
	var mu sync.Mutex
	ended := false
	finishable := func(context.Context) ([]string, error) {
		mu.Lock()
		defer mu.Unlock()
		if ended {
			return nil, nil
		}
		return []string{"job-x"}, nil
	}
	hung := make(chan struct{}, 8)
	start("hung", func(ctx context.Context, _ string) error { hung <- struct{}{}; <-ctx.Done(); return nil }, finishable)
	select {
	case <-hung: // the hung replica holds an end of job-x as a running River job
	case <-time.After(30 * time.Second):
		t.Fatal("the hung replica never started an end")
	}
	start("live", func(_ context.Context, id string) error {
		mu.Lock()
		defer mu.Unlock()
		ended = ended || id == "job-x"
		return nil
	}, finishable)
	waitFor(t, "the live replica to end job-x", func() bool { mu.Lock(); defer mu.Unlock(); return ended })
}
