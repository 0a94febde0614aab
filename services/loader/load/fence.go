package load

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/cutover/cutover/services/kit/stage"
	"github.com/jackc/pgx/v5/pgconn"
)

// Fencing. An orchestrator holds a partition under a lease and passes the
// lease's epoch (raised on every claim) in LoadConfig.epoch. An owner paused
// past its lease may wake up while its stream still loads, after another
// replica took the partition over: the fence keeps it from committing then.
//
// cutover.fences holds the highest epoch seen per (job, partition). A stream
// records its epoch when it opens, before its first batch, so a new owner
// fences the old one even before it has a batch to commit. Every batch raises
// the fence or is refused, in its own transaction, under the fence row's
// lock: a batch that passed the fence commits before a higher epoch is
// recorded, and one that checks after it is refused and writes nothing.
// The refusal is counted in the same row (refused, refused_epoch) and
// logged, so it can be seen from the target.
//
// Epoch 0 is not fenced (callers without a lease); a batch already in the
// ledger is skipped before the fence is checked: it writes nothing.

// ErrFenced: a stream or batch of an owner whose lease was taken over.
var ErrFenced = fmt.Errorf("%w: fenced", ErrFailedPrecondition)

// FencedError is a refusal by the fence, naming what was refused.
type FencedError struct {
	Job, Partition string
	Epoch, Current int64
	// Seq is the refused batch; -1 when the stream was refused as it opened.
	Seq int64
}

func (e *FencedError) Error() string {
	what := "the stream is refused"
	if e.Seq >= 0 {
		what = fmt.Sprintf("batch seq %d is not committed", e.Seq)
	}
	return fmt.Sprintf("%v: job %s, partition %s: epoch %d is older than the partition's current epoch %d (another owner took its lease over); %s",
		ErrFenced, e.Job, e.Partition, e.Epoch, e.Current, what)
}

func (e *FencedError) Unwrap() error { return ErrFenced }

// status is the refusal as gRPC gives it: FailedPrecondition with an
// ErrorInfo the orchestrator tells apart from other refusals.
func (e *FencedError) status() error {
	return stage.FencedStatus(e.Error(), map[string]string{
		"job_id": e.Job, "partition_id": e.Partition,
		"epoch": strconv.FormatInt(e.Epoch, 10), "current_epoch": strconv.FormatInt(e.Current, 10),
	})
}

// fenceSQL records an epoch for (job, partition), keeping the highest, and
// returns the highest. It locks the row until the transaction ends.
// updated_at is when the epoch was raised: clock time, taken once the row
// lock is held, so every batch transaction of an older epoch that began
// after it is refused (the ledger's committed_at is its start).
const fenceSQL = `
INSERT INTO cutover.fences AS f (job_id, partition_id, epoch, updated_at) VALUES ($1, $2, $3, clock_timestamp())
ON CONFLICT (job_id, partition_id) DO UPDATE SET epoch = greatest(f.epoch, EXCLUDED.epoch),
	updated_at = CASE WHEN EXCLUDED.epoch > f.epoch THEN clock_timestamp() ELSE f.updated_at END
RETURNING f.epoch`

const fenceRefusedSQL = `
UPDATE cutover.fences SET refused = refused + 1, refused_epoch = $3, refused_at = now()
WHERE job_id = $1 AND partition_id = $2`

// execer is a pool or one of its connections.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// fence raises the fence of the loader's (job, partition) to its epoch, or
// refuses with a FencedError when the fence is higher. q is the batch's
// transaction (seq >= 0) or the pool (seq -1, when the stream opens).
func (l *loader) fence(ctx context.Context, q querier, seq int64) error {
	epoch := l.cfg.GetEpoch()
	if epoch <= 0 {
		return nil
	}
	var current int64
	if err := q.QueryRow(ctx, fenceSQL, l.cfg.GetJobId(), l.cfg.GetPartitionId(), epoch).Scan(&current); err != nil {
		op := "record the lease epoch of partition " + l.cfg.GetPartitionId()
		if seq >= 0 {
			op = fmt.Sprintf("batch seq %d: %s", seq, op)
		}
		return l.t.dbErr(op, err)
	}
	if current > epoch {
		return &FencedError{Job: l.cfg.GetJobId(), Partition: l.cfg.GetPartitionId(), Epoch: epoch, Current: current, Seq: seq}
	}
	return nil
}

// refused counts a refusal by the fence in the target and logs it. x runs
// outside the refused transaction (after its rollback), on the connection
// the batch had, so that the count stays.
func (l *loader) refused(ctx context.Context, x execer, err error) {
	var fe *FencedError
	if !errors.As(err, &fe) {
		return
	}
	slog.Warn("fenced commit refused", "job", fe.Job, "partition", fe.Partition, "seq", fe.Seq, "epoch", fe.Epoch, "current_epoch", fe.Current)
	if _, err := x.Exec(context.WithoutCancel(ctx), fenceRefusedSQL, fe.Job, fe.Partition, fe.Epoch); err != nil {
		slog.Warn("count a fenced refusal", "job", fe.Job, "partition", fe.Partition, "err", l.t.dbErr("count a fenced refusal", err))
	}
}

// registerEpoch records the stream's epoch as it opens, before its first
// batch is pulled, or refuses the stream.
func (l *loader) registerEpoch(ctx context.Context) error {
	if l.cfg.GetEpoch() <= 0 {
		return nil
	}
	err := l.fence(ctx, l.t.pool, -1)
	if errors.Is(err, ErrFenced) {
		l.refused(ctx, l.t.pool, err)
	}
	return err
}
