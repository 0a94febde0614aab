// Package follow keeps a job's tables in sync with their sources after the
// full load, until cutover.
package follow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"github.com/cutover/cutover/services/kit/metrics"
	"github.com/cutover/cutover/services/kit/telemetry"
	"github.com/cutover/cutover/services/orchestrator/jobspec"
	"github.com/cutover/cutover/services/orchestrator/jobstore"
	"github.com/cutover/cutover/services/orchestrator/stages"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// A job whose tables have a SyncSpec does not end when
// its full load does: it goes to state following, and each followed table
// gets a follower row in cutover_control.partitions (id "sync:<table>",
// state following). Any replica claims a follower row under a lease, as it
// claims partitions, so a follower whose orchestrator died is taken over.
//
// A follower loops: the position and the next seq come from the loader's
// ledger (the ledger is the truth: a batch and its position commit in one
// target transaction), ReadChanges gives the changes after the position as
// a change batch, which goes through transformer, validator and loader like
// any batch; when there is nothing new it sleeps poll_ms. Every
// delete_check_seconds it compares the source's keys (ReadKeys) with the
// target's and deletes, in a change batch, the target rows whose key the
// source no longer has: a watermark cannot see deletes. StopFollowing asks
// the followers to drain to lag 0 (and check keys once more), then the job
// succeeds.

const (
	defaultPoll        = time.Second
	defaultDeleteCheck = 60 * time.Second
	keyPage            = 10000
)

// Store is what a follower keeps in the control schema.
type Store interface {
	GetJob(ctx context.Context, id string) (*jobstore.Job, error)
	ClaimFollower(ctx context.Context, jobID, id, owner string, lease time.Duration) (*jobstore.Follower, error)
	FollowBeat(ctx context.Context, f *jobstore.Follower, owner string, lease time.Duration, b *jobstore.Beat) error
	ReleaseFollower(ctx context.Context, f *jobstore.Follower, owner string, cause error)
	FollowerDone(ctx context.Context, f *jobstore.Follower, owner string) error
	FinishFollowing(ctx context.Context, id string, report []byte) (bool, error)
	AddColumns(ctx context.Context, jobID string, index int, maps []*commonv1.ColumnMapping, cols []*commonv1.SourceColumn) error
}

// Config is what followers need from their orchestrator.
type Config struct {
	// Owner names this replica in leases; Lease is how long a follower row
	// stays ours without a beat.
	Owner string
	Lease time.Duration
	// BatchTimeout bounds one change batch's round through the stages.
	BatchTimeout time.Duration
	Clients      stages.Clients
	// Target is a spec's target with the orchestrator's default filled in.
	Target func(*commonv1.JobSpec) *commonv1.TargetSpec
	// Report is the final report of a job whose followers all stopped
	// (nil keeps the full load's); Ended is told the job ended.
	Report func(context.Context, *jobstore.Job) []byte
	Ended  func(jobID string)
}

// Runner runs the followers this replica holds.
type Runner struct {
	cfg   Config
	store Store
}

// New returns a Runner; Run starts it.
func New(cfg Config, store Store) *Runner {
	return &Runner{cfg: cfg, store: store}
}

var tracer = otel.Tracer("cutover/orchestrator")

// DropSlots drops the replication slots of a spec's logical tables (best
// effort: a slot left behind is named in the log).
func DropSlots(ctx context.Context, c stages.Clients, spec *commonv1.JobSpec, jobID string) {
	for _, t := range spec.GetTables() {
		if t.GetSync().GetLogical() == nil {
			continue
		}
		if err := DropSlot(ctx, c, t, jobID); err != nil {
			slog.Warn("drop replication slot", "job", jobID, "table", t.GetName(), "err", err)
		}
	}
}

// DropSlot asks the extractor, the sources' one owner, to drop a following
// table's slot.
func DropSlot(ctx context.Context, c stages.Clients, t *commonv1.TableSpec, jobID string) error {
	ctx, cancel := context.WithTimeout(ctx, stages.Wait)
	defer cancel()
	_, err := c.Extractor.DropSlot(ctx, &extractorv1.DropSlotRequest{Source: t.GetSource(), Sync: t.GetSync(), JobId: jobID, Table: t.GetName()})
	return stages.Classify("extractor", err)
}

// Work is a follower's River job (see package queue): it claims follower
// id of job jobID and follows until the job stops following, this replica
// shuts down (the row is handed back) or the follower fails; then a
// positive again asks River to run it again after that long, from the
// ledger: transient faults heal that way.
func (r *Runner) Work(ctx context.Context, jobID, id string) (again time.Duration, err error) {
	f, err := r.store.ClaimFollower(ctx, jobID, id, r.cfg.Owner, r.cfg.Lease)
	if err != nil || f == nil {
		return 0, err
	}
	bg := context.WithoutCancel(ctx)
	err = r.follow(ctx, f)
	switch {
	case err == nil:
		return 0, nil
	case ctx.Err() != nil:
		r.store.ReleaseFollower(bg, f, r.cfg.Owner, nil)
		return 0, nil
	default:
		slog.Warn("follower stopped, will be taken up again", "job", f.JobID, "follower", f.ID, "err", err)
		r.store.ReleaseFollower(bg, f, r.cfg.Owner, err)
		return stages.Backoff(1, 0.5), nil
	}
}

// follower is one follower session's state.
type follower struct {
	r      *Runner
	f      *jobstore.Follower
	job    *jobstore.Job
	tbl    *commonv1.TableSpec
	target *commonv1.TargetSpec
	pos    string
	seq    int64
	src    *extractorv1.DescribeSourceResponse // for key checks, read once
}

func (r *Runner) follow(ctx context.Context, f *jobstore.Follower) error {
	job, err := r.store.GetJob(ctx, f.JobID)
	if err != nil {
		return err
	}
	if f.TableIndex < 0 || f.TableIndex >= len(job.Spec.GetTables()) {
		return fmt.Errorf("%w: follower %s names table %d of %d", jobspec.ErrInvalidSpec, f.ID, f.TableIndex, len(job.Spec.GetTables()))
	}
	fl := &follower{r: r, f: f, job: job, tbl: job.Spec.Tables[f.TableIndex], target: r.cfg.Target(job.Spec)}
	if err := fl.fromLedger(ctx); err != nil {
		return err
	}
	sy := fl.tbl.GetSync()
	poll := time.Duration(sy.GetPollMs()) * time.Millisecond
	if poll <= 0 {
		poll = defaultPoll
	}
	check := time.Duration(sy.GetWatermark().GetDeleteCheckSeconds()) * time.Second
	switch {
	case sy.GetWatermark() == nil || check < 0:
		check = 0 // the log carries deletes, or never asked for
	case check == 0:
		check = defaultDeleteCheck
	}
	lastCheck := time.Now()
	if f.Checked != nil {
		lastCheck = *f.Checked
	}
	slog.Info("following", "job", f.JobID, "table", fl.tbl.GetName(), "position", fl.pos, "seq", fl.seq)
	b := &jobstore.Beat{Position: fl.pos}
	stopChecked := false
	for {
		resp, err := fl.readChanges(ctx)
		if err != nil {
			return err
		}
		n := resp.GetBatch().GetNumRows()
		if resp.GetSourceTruncated() {
			// on_truncate APPLY: past the TRUNCATE, the target loses the
			// rows whose key the source no longer has (deletes at that
			// position), and the changes after it follow as usual.
			fl.pos = resp.GetBatch().GetPosition()
			slog.Info("source table truncated: deleting the target rows the source no longer has", "job", f.JobID, "table", fl.tbl.GetName(), "position", fl.pos)
			if err := fl.deleteCheck(ctx, b); err != nil {
				return err
			}
			b.Checked = true
			// The rows after it in its transaction (logical sync) load
			// now; a logical slot is confirmed up to what the ledger holds,
			// so the position past the TRUNCATE goes there even with none.
			if n > 0 || sy.GetLogical() != nil {
				if err := fl.apply(ctx, resp.GetBatch(), b); err != nil {
					return err
				}
			}
			continue
		}
		if n > 0 {
			if err := fl.addedColumns(ctx, resp.GetBatch()); err != nil {
				return err
			}
			if err := fl.apply(ctx, resp.GetBatch(), b); err != nil {
				return err
			}
			b.KeptValues += resp.GetUnchangedValues()
			if at := resp.GetLastCommitTime(); at != nil {
				// The loader has committed the batch: source commit to
				// target commit, end to end.
				b.CommitDelaySeconds = max(time.Since(at.AsTime()).Seconds(), 0)
			}
		} else if p := resp.GetBatch().GetPosition(); sy.GetLogical() != nil && p != "" && p != fl.pos {
			// Past other tables' WAL: recorded in the ledger (an empty
			// change batch), as the slot is confirmed only up to it; the
			// extractor moves it only every 16 MiB of WAL.
			if err := fl.apply(ctx, resp.GetBatch(), b); err != nil {
				return err
			}
		} else if sy.GetBinlog() != nil && resp.GetBatch().GetPosition() != "" {
			// Past other tables' transactions: the next read starts there.
			// Kept in memory only; a restart reads them again from the
			// ledger's position and finds nothing of this table in them.
			fl.pos = resp.GetBatch().GetPosition()
		}
		b.Position, b.LagRows, b.LagSeconds = fl.pos, resp.GetLagRows(), resp.GetLagSeconds()
		if err := r.store.FollowBeat(ctx, f, r.cfg.Owner, r.cfg.Lease, b); err != nil {
			return err
		}
		if !b.Live {
			slog.Info("follower ends: job no longer following or lease lost", "job", f.JobID, "table", fl.tbl.GetName())
			return nil
		}
		if n > 0 {
			continue
		}
		caughtUp := resp.GetLagRows() == 0
		// On a stop the keys are checked once more after the last drain.
		finalCheck := b.StopRequested && caughtUp && !stopChecked
		if check > 0 && (time.Since(lastCheck) >= check || finalCheck) {
			if err := fl.deleteCheck(ctx, b); err != nil {
				return err
			}
			lastCheck = time.Now()
			stopChecked = b.StopRequested
			b.Checked = true
			if err := r.store.FollowBeat(ctx, f, r.cfg.Owner, r.cfg.Lease, b); err != nil {
				return err
			}
			if !b.Live {
				return nil
			}
			continue // read once more: deletes may have raced with changes
		}
		if b.StopRequested && caughtUp {
			return r.end(ctx, f)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}

// endFollower marks the follower done and, with the last, the job.
func (r *Runner) end(ctx context.Context, f *jobstore.Follower) error {
	if err := r.store.FollowerDone(ctx, f, r.cfg.Owner); err != nil {
		return err
	}
	j, err := r.store.GetJob(ctx, f.JobID)
	if err != nil {
		return err
	}
	if t := j.Spec.GetTables()[f.TableIndex]; t.GetSync().GetLogical() != nil {
		if err := DropSlot(ctx, r.cfg.Clients, t, j.ID); err != nil {
			slog.Warn("drop the replication slot of a table that stopped following", "job", j.ID, "table", t.GetName(), "err", err)
		}
	}
	ended, err := r.store.FinishFollowing(ctx, f.JobID, r.cfg.Report(ctx, j))
	if err != nil {
		return err
	}
	if ended {
		slog.Info("job ended: followers stopped", "job", f.JobID, "state", jobstore.StateSucceeded)
		r.cfg.Ended(f.JobID)
	}
	return nil
}

// fromLedger sets the position and next seq from the ledger's contiguous
// prefix of the follower's batches; with none, the start read at CreateJob.
func (fl *follower) fromLedger(ctx context.Context) error {
	lctx, cancel := context.WithTimeout(ctx, stages.Wait)
	defer cancel()
	led, err := fl.r.cfg.Clients.Loader.GetLedger(lctx, &loaderv1.GetLedgerRequest{Target: fl.target, JobId: fl.job.ID, PartitionId: fl.f.ID})
	if err != nil {
		return stages.Classify("loader", err)
	}
	fl.pos, fl.seq = fl.job.SyncStart[fl.tbl.GetName()], 0
	for _, e := range led.GetEntries() {
		if e.GetSeq() != fl.seq {
			break
		}
		fl.pos = e.GetLastKey()
		fl.seq++
	}
	return nil
}

func (fl *follower) readChanges(ctx context.Context) (*extractorv1.ReadChangesResponse, error) {
	rctx, cancel := context.WithTimeout(ctx, min(2*stages.Wait, fl.r.cfg.BatchTimeout))
	defer cancel()
	resp, err := fl.r.cfg.Clients.Extractor.ReadChanges(rctx, &extractorv1.ReadChangesRequest{Source: fl.tbl.GetSource(), Sync: fl.tbl.GetSync(),
		Position: fl.pos, BatchSize: fl.job.Spec.GetBatchSize(), JobId: fl.job.ID, Table: fl.tbl.GetName(), Seq: fl.seq,
		Columns: fl.tbl.GetSourceColumns()})
	if err != nil {
		return nil, stages.Classify("extractor", err)
	}
	return resp, nil
}

// apply sends one change batch through the stages and checks its
// acknowledgement; the position moves on with the batch.
func (fl *follower) apply(ctx context.Context, b *commonv1.Batch, bt *jobstore.Beat) error {
	b.JobId, b.PartitionId, b.Seq, b.Table = fl.job.ID, fl.f.ID, fl.seq, fl.tbl.GetName()
	if b.GetPosition() == "" {
		return fmt.Errorf("%w: extractor: change batch %d of %s has no position", stages.ErrStageFatal, fl.seq, fl.f.ID)
	}
	ack, err := fl.r.applyChange(ctx, fl.job, fl.tbl, b, fl.f.Epoch)
	if err != nil {
		return err
	}
	c := ack.GetCounts()
	if ack.GetSeq() != b.GetSeq() || c.GetExtracted() != int64(b.GetNumRows()) || !stages.Balanced(c) {
		return fmt.Errorf("%w: change batch %d of %s: %d rows, loader acknowledged seq %d with extracted %d = loaded %d + quarantined %d + filtered %d",
			stages.ErrUnbalanced, b.GetSeq(), fl.f.ID, b.GetNumRows(), ack.GetSeq(), c.GetExtracted(), c.GetLoaded(), c.GetQuarantined(), c.GetFiltered())
	}
	if ack.GetSkipped() {
		// Another follower committed this seq (a lease taken over while
		// this one stalled): the ledger says where the source is.
		return fl.fromLedger(ctx)
	}
	dels := int64(bytes.Count(b.GetOps(), []byte{'d'}))
	bt.Deletes += min(dels, c.GetLoaded())
	bt.Upserts += max(c.GetLoaded()-dels, 0)
	metrics.FollowerChanges(ctx, max(c.GetLoaded()-dels, 0), min(dels, c.GetLoaded()))
	bt.Applied = true
	fl.pos = b.GetPosition()
	fl.seq++
	return nil
}

// applyChange runs one change batch through transformer, validator and
// loader (the data plane's chain, package stages, with the batch inline at its
// head: the follower has read it already to know the lag) and returns the
// loader's acknowledgement. epoch is the follower's claim: a replica that
// lost the follower (paused past its lease) is refused by the loader's
// fence instead of applying old changes over newer ones.
func (r *Runner) applyChange(ctx context.Context, job *jobstore.Job, tbl *commonv1.TableSpec, b *commonv1.Batch, epoch int64) (*loaderv1.LoadResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.BatchTimeout)
	defer cancel()
	parent := telemetry.Propagator().Extract(context.Background(), propagation.MapCarrier{"traceparent": job.TraceParent})
	ctx, span := tracer.Start(trace.ContextWithSpanContext(ctx, trace.SpanContextFromContext(parent)), "change batch",
		trace.WithAttributes(attribute.String("cutover.job_id", job.ID), attribute.String("cutover.partition", b.GetPartitionId()),
			attribute.Int64("cutover.seq", b.GetSeq()), attribute.Int("cutover.rows_in", int(b.GetNumRows()))))
	defer span.End()
	if b.TraceContext == nil {
		b.TraceContext = map[string]string{}
	}
	telemetry.Propagator().Inject(ctx, propagation.MapCarrier(b.TraceContext))
	cl := r.cfg.Clients
	acks, err := cl.Loader.LoadPartition(ctx, &loaderv1.LoadPartitionRequest{
		Config: &loaderv1.LoadConfig{Target: r.cfg.Target(job.Spec), Table: tbl.GetTargetTable(),
			JobId: job.ID, PartitionId: b.GetPartitionId(), TableName: tbl.GetName(), System: tbl.GetSystem(),
			WriteMode: commonv1.WriteMode_WRITE_MODE_UPSERT, Epoch: epoch},
		Upstream: cl.Addrs.Validator,
		Validate: r.cfg.Clients.PullBatch(tbl, b),
	})
	if err != nil {
		return nil, stages.Classify("loader", err)
	}
	pa, err := acks.Recv()
	if err == io.EOF {
		err = errors.New("stream ended before the batch was acknowledged")
	}
	if err != nil {
		return nil, stages.Classify("loader", err)
	}
	if _, err := acks.Recv(); err != io.EOF {
		return nil, stages.Classify("loader", fmt.Errorf("expected end of stream, got %v", err))
	}
	ack := pa.GetAck()
	if int(pa.GetOps()) != len(b.GetOps()) || pa.GetPosition() != b.GetPosition() {
		return nil, fmt.Errorf("%w: a stage dropped the ops or the position of change batch %d of %s", stages.ErrStageFatal, b.GetSeq(), b.GetPartitionId())
	}
	span.SetAttributes(attribute.Int64("cutover.rows_out", ack.GetCounts().GetLoaded()), attribute.Int64("cutover.rows_rejected", ack.GetCounts().GetQuarantined()),
		attribute.Bool("cutover.skipped", ack.GetSkipped()))
	return ack, nil
}

// deleteCheck finds the target rows whose key the source no longer has:
// the source's keys go by COPY into a temporary table on the target, and
// the target's keys without a match there are deleted by change batches
// at the current position.
func (fl *follower) deleteCheck(ctx context.Context, bt *jobstore.Beat) error {
	r := fl.r
	if fl.src == nil {
		dctx, cancel := context.WithTimeout(ctx, stages.Wait)
		d, err := r.cfg.Clients.Extractor.DescribeSource(dctx, &extractorv1.DescribeSourceRequest{Source: fl.tbl.GetSource()})
		cancel()
		if err != nil {
			return stages.Classify("extractor", err)
		}
		fl.src = d
	}
	keyCols, err := jobspec.KeyTargets(fl.tbl, fl.src.GetPrimaryKey())
	if err != nil {
		return fmt.Errorf("%w: %v", jobspec.ErrInvalidSpec, err)
	}
	kctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	res, err := r.cfg.Clients.Loader.MissingKeys(kctx, &loaderv1.MissingKeysRequest{Target: fl.target, Table: fl.tbl.GetTargetTable(),
		KeyColumns: keyCols, Upstream: r.cfg.Clients.Addrs.Extractor, Source: fl.tbl.GetSource(), PageSize: keyPage})
	cancel()
	if err != nil {
		return stages.Classify("loader", err)
	}
	gone := make([][]string, len(res.GetKeys()))
	for i, k := range res.GetKeys() {
		gone[i] = k.GetValues()
	}
	sourceKeys := res.GetSourceKeys()
	if len(gone) > 0 {
		slog.Info("rows deleted in the source", "job", fl.job.ID, "table", fl.tbl.GetName(), "rows", len(gone), "source_keys", sourceKeys)
	}
	size := int(fl.job.Spec.GetBatchSize())
	for len(gone) > 0 {
		n := min(size, len(gone))
		b := deleteBatch(fl.src, gone[:n], fl.pos)
		gone = gone[n:]
		if err := fl.apply(ctx, b, bt); err != nil {
			return err
		}
	}
	return nil
}

// deleteBatch is a change batch of delete rows: the source's key columns
// as text (the transformer casts them like any value), its other columns
// NULL, all at position pos (a key check does not move the source).
func deleteBatch(src *extractorv1.DescribeSourceResponse, keys [][]string, pos string) *commonv1.Batch {
	n := len(keys)
	keyAt := map[string]int{}
	for k, c := range src.GetPrimaryKey() {
		keyAt[c] = k
	}
	b := &commonv1.Batch{NumRows: int32(n), Ops: bytes.Repeat([]byte{'d'}, n), Position: pos, Source: "key check"}
	for _, c := range src.GetColumns() {
		k, isKey := keyAt[c.GetName()]
		typ := c.GetType()
		if isKey || typ == commonv1.ColumnType_COLUMN_TYPE_UNSPECIFIED {
			typ = commonv1.ColumnType_COLUMN_TYPE_TEXT
		}
		bld := batch.NewBuilder(c.GetName(), typ, n)
		for _, key := range keys {
			if isKey {
				bld.AppendString(key[k])
			} else {
				bld.AppendNull()
			}
		}
		b.Columns = append(b.Columns, bld.Column())
	}
	refs := batch.NewBuilder("source_ref", commonv1.ColumnType_COLUMN_TYPE_TEXT, n)
	for _, key := range keys {
		parts := make([]string, len(key))
		for k, v := range key {
			parts[k] = src.GetPrimaryKey()[k] + "=" + v
		}
		refs.AppendString(strings.Join(parts, ","))
	}
	b.SourceRefs = refs.Column()
	return b
}
