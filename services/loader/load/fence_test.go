package load

import (
	"context"
	"github.com/jackc/pgx/v5"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	"github.com/cutover/cutover/services/kit/stage"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// owner is one orchestrator's Load stream for a partition, driven a batch
// at a time so that two owners' streams can be interleaved.
type owner struct {
	t      *testing.T
	st     loaderv1.LoaderService_LoadClient
	cancel context.CancelFunc
}

func (e *env) owner(t *testing.T, job, part string, epoch int64) *owner {
	t.Helper()
	return e.ownerWith(t, job, part, epoch, nil)
}

// ownerWith is owner with the stream's config changed by edit first.
func (e *env) ownerWith(t *testing.T, job, part string, epoch int64, edit func(*loaderv1.LoadConfig)) *owner {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	st, err := e.client.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := e.config("items", job, part)
	cfg.Epoch = epoch
	if edit != nil {
		edit(cfg)
	}
	if err := st.Send(&loaderv1.LoadRequest{Msg: &loaderv1.LoadRequest_Config{Config: cfg}}); err != nil {
		t.Fatal(err)
	}
	return &owner{t: t, st: st, cancel: cancel}
}

// commit sends one batch and waits for its acknowledgement or the
// stream's error.
func (o *owner) commit(b *commonv1.Batch) (*loaderv1.LoadResponse, error) {
	if err := o.st.Send(&loaderv1.LoadRequest{Msg: &loaderv1.LoadRequest_Batch{Batch: b}}); err != nil {
		_, err = o.st.Recv() // the stream ended: its status says why
		return nil, err
	}
	return o.st.Recv()
}

func fencedRefusal(t *testing.T, err error, wants ...string) {
	t.Helper()
	if status.Code(err) != codes.FailedPrecondition || !stage.IsFenced(err) {
		t.Fatalf("got %v, want a fenced refusal (FailedPrecondition with ErrorInfo %s)", err, stage.FencedReason)
	}
	for _, w := range wants {
		if !strings.Contains(status.Convert(err).Message(), w) {
			t.Errorf("refusal %q does not say %q", status.Convert(err).Message(), w)
		}
	}
}

// A paused owner's late batch, after a new owner of the partition opened
// its stream with a higher epoch, is refused in its own transaction:
// nothing of it is written (rows, quarantine, ledger); the refusal is
// counted in cutover.fences. A stream opened with an older epoch is
// refused before its first batch.
func TestFenceRefusesOlderEpoch(t *testing.T) {
	e := newEnv(t, itemsDDL)
	old := e.owner(t, "job-f", "p0", 1)
	if r, err := old.commit(itemsBatch(0, []any{1, 2, 3}, []any{"a", "b", "c"}, []any{1, 2, 3})); err != nil || r.Skipped {
		t.Fatalf("first owner's batch 0: %v %v", r, err)
	}
	// The partition is taken over: the new owner opens its stream (and
	// commits batch 1) while the old stream is still open.
	taken := e.owner(t, "job-f", "p0", 2)
	if r, err := taken.commit(itemsBatch(1, []any{4, 5, 6}, []any{"d", "e", "f"}, []any{4, 5, 6})); err != nil || r.Skipped {
		t.Fatalf("new owner's batch 1: %v %v", r, err)
	}
	// The old owner wakes up with batch 2 in flight (one row of it
	// rejected upstream, so that a write to the quarantine would show).
	late := itemsBatch(2, []any{7, 8, 9}, []any{"g", "h", "i"}, []any{7, 8, 9})
	late.Rejects = []*commonv1.Reject{rejectRow(1)}
	_, err := old.commit(late)
	fencedRefusal(t, err, "job job-f", "partition p0", "epoch 1", "current epoch 2", "batch seq 2")
	if n := e.count(t, `SELECT count(*) FROM items WHERE id >= 7`); n != 0 {
		t.Errorf("the refused batch wrote %d rows", n)
	}
	if n := e.count(t, `SELECT count(*) FROM cutover.quarantine WHERE job_id = 'job-f'`); n != 0 {
		t.Errorf("the refused batch quarantined %d rows", n)
	}
	if n := e.count(t, `SELECT count(*) FROM cutover.ledger WHERE job_id = 'job-f' AND seq = 2`); n != 0 {
		t.Errorf("the refused batch is in the ledger")
	}
	if n := e.count(t, `SELECT count(*) FROM cutover.lineage WHERE job_id = 'job-f' AND seq = 2`); n != 0 {
		t.Errorf("the refused batch has lineage")
	}
	if n := e.count(t, `SELECT count(*) FROM cutover.fences WHERE job_id = 'job-f' AND partition_id = 'p0' AND epoch = 2 AND refused = 1 AND refused_epoch = 1`); n != 1 {
		t.Errorf("the fence does not show the refusal")
	}
	// The new owner carries on; its batch 2 loads.
	if r, err := taken.commit(itemsBatch(2, []any{7, 8, 9}, []any{"g", "h", "i"}, []any{7, 8, 9})); err != nil || r.Skipped || r.Counts.Loaded != 3 {
		t.Fatalf("new owner's batch 2: %v %v", r, err)
	}
	// A stream of the old epoch is refused as it opens.
	again := e.owner(t, "job-f", "p0", 1)
	_, err = again.commit(itemsBatch(3, []any{10}, []any{"j"}, []any{10}))
	fencedRefusal(t, err, "epoch 1", "current epoch 2", "stream is refused")
	if n := e.count(t, `SELECT refused FROM cutover.fences WHERE job_id = 'job-f' AND partition_id = 'p0'`); n != 2 {
		t.Errorf("refusals counted %d, want 2", n)
	}
	// Another partition, or the same partition of another job, has a fence
	// of its own; epoch 0 is not fenced.
	if r, err := e.owner(t, "job-f", "p1", 1).commit(itemsBatch(0, []any{20}, []any{"x"}, []any{1})); err != nil || r.Skipped {
		t.Fatalf("other partition: %v %v", r, err)
	}
	if r, err := e.owner(t, "job-g", "p0", 1).commit(itemsBatch(0, []any{30}, []any{"y"}, []any{1})); err != nil || r.Skipped {
		t.Fatalf("other job: %v %v", r, err)
	}
	if r, err := e.owner(t, "job-f", "p0", 0).commit(itemsBatch(2, []any{7, 8, 9}, []any{"g", "h", "i"}, []any{7, 8, 9})); err != nil || !r.Skipped {
		t.Fatalf("unfenced stream: %v %v", r, err)
	}
	if n := e.count(t, `SELECT count(*) FROM items`); n != 11 {
		t.Errorf("target holds %d rows, want 11", n)
	}
	if n := e.count(t, `SELECT count(*) FROM cutover.ledger WHERE job_id = 'job-f' AND partition_id = 'p0'`); n != 3 {
		t.Errorf("ledger holds %d batches of job-f p0, want 3", n)
	}
}

// The fence and the batch are one transaction under the fence row's lock:
// a new owner's epoch cannot be recorded while a batch of the old epoch
// that passed the fence is in flight, so that batch commits first (it came
// before the take-over), and the old owner's next batch is refused.
func TestFenceWaitsForBatchInFlight(t *testing.T) {
	const gate = 730601
	e := newEnv(t, itemsDDL,
		// Each COPY into items waits at the gate the test holds.
		`CREATE FUNCTION gate() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN PERFORM pg_advisory_xact_lock_shared(730601); RETURN NULL; END $$`,
		`CREATE TRIGGER gate AFTER INSERT ON items FOR EACH STATEMENT EXECUTE FUNCTION gate()`)
	ctx := context.Background()
	if _, err := e.db.Exec(ctx, `SELECT pg_advisory_lock($1)`, gate); err != nil {
		t.Fatal(err)
	}
	waiting := func(what, q string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for e.count(t, q) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%s never waited", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	old := e.owner(t, "job-w", "p0", 1)
	oldDone := make(chan error, 1)
	go func() {
		r, err := old.commit(itemsBatch(0, []any{1, 2}, []any{"a", "b"}, []any{1, 2}))
		if err == nil && (r.Skipped || r.Counts.Loaded != 2) {
			err = status.Errorf(codes.Internal, "ack %v", r)
		}
		oldDone <- err
	}()
	waiting("the old owner's batch", `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`)

	taken := e.owner(t, "job-w", "p0", 2)
	takenDone := make(chan error, 1)
	go func() {
		r, err := taken.commit(itemsBatch(1, []any{3}, []any{"c"}, []any{3}))
		if err == nil && (r.Skipped || r.Counts.Loaded != 1) {
			err = status.Errorf(codes.Internal, "ack %v", r)
		}
		takenDone <- err
	}()
	// The new owner's stream waits on the fence row, held by the batch.
	waiting("the new owner's registration", `SELECT count(*) FROM pg_locks WHERE locktype = 'transactionid' AND NOT granted`)
	select {
	case err := <-oldDone:
		t.Fatalf("the old owner's batch ended at the gate: %v", err)
	case err := <-takenDone:
		t.Fatalf("the new owner went past a batch in flight: %v", err)
	default:
	}
	if _, err := e.db.Exec(ctx, `SELECT pg_advisory_unlock($1)`, gate); err != nil {
		t.Fatal(err)
	}
	if err := <-oldDone; err != nil {
		t.Fatalf("the batch in flight at the take-over: %v", err)
	}
	if err := <-takenDone; err != nil {
		t.Fatalf("the new owner's batch: %v", err)
	}
	_, err := old.commit(itemsBatch(2, []any{4}, []any{"d"}, []any{4}))
	fencedRefusal(t, err, "epoch 1", "current epoch 2", "batch seq 2")
	if n := e.count(t, `SELECT count(*) FROM items`); n != 3 {
		t.Errorf("target holds %d rows, want 3", n)
	}
	if n := e.count(t, `SELECT epoch FROM cutover.fences WHERE job_id = 'job-w' AND partition_id = 'p0'`); n != 2 {
		t.Errorf("fence at epoch %d, want 2", n)
	}
}

// An old owner's stream is refused before it makes anything: a holder
// that wakes up after its job's end dropped the staging table must not
// create it again (found by the chaos suite: a staging table left behind).
func TestFencedOpenMakesNoStagingTable(t *testing.T) {
	e := newEnv(t, itemsDDL)
	staged := func(c *loaderv1.LoadConfig) { c.Staged = true }
	stage := stageName("job-s", "items")
	if _, err := e.ownerWith(t, "job-s", "p0", 2, staged).commit(itemsBatch(0, []any{1}, []any{"a"}, []any{1})); err != nil {
		t.Fatalf("the current owner's batch: %v", err)
	}
	exists := `SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'cutover_stage' AND c.relname = '` + stage + `'`
	if n := e.count(t, exists); n != 1 {
		t.Fatalf("staging table %s: %d, want 1", stage, n)
	}
	// The job ends: its staging table goes.
	if _, err := e.db.Exec(context.Background(), `DROP TABLE cutover_stage.`+pgx.Identifier{stage}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	_, err := e.ownerWith(t, "job-s", "p0", 1, staged).commit(itemsBatch(1, []any{2}, []any{"b"}, []any{2}))
	fencedRefusal(t, err, "epoch 1", "current epoch 2", "stream is refused")
	if n := e.count(t, exists); n != 0 {
		t.Fatalf("the refused stream made the staging table again")
	}
}
