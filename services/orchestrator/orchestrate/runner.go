package orchestrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	"github.com/cutover/cutover/services/kit/metrics"
	"github.com/cutover/cutover/services/kit/telemetry"
	"github.com/cutover/cutover/services/orchestrator/jobspec"
	"github.com/cutover/cutover/services/orchestrator/jobstore"
	"github.com/cutover/cutover/services/orchestrator/stages"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
)

// workPartition is a partition's River job (see package queue): it claims
// the partition and runs it. A positive again asks River to run it again
// after that long: a retry's backoff, or no room under the job's
// parallelism yet.
func (s *Service) workPartition(ctx context.Context, jobID, part string) (again time.Duration, err error) {
	p, wait, err := s.store.ClaimPartition(ctx, jobID, part, s.cfg.Owner, s.cfg.Lease)
	if err != nil || p == nil {
		return wait, err
	}
	return s.runClaimed(ctx, p), nil
}

// runClaimed runs a claimed partition and records how it ended; a positive
// answer is the backoff before its next attempt.
func (s *Service) runClaimed(ctx context.Context, p *jobstore.Partition) time.Duration {
	bg := context.WithoutCancel(ctx) // bookkeeping must land even during shutdown
	job, err := s.store.GetJob(ctx, p.JobID)
	if err != nil && !errors.Is(err, ErrSealed) {
		slog.Error("load job", "job", p.JobID, "err", err)
		_ = s.store.ReleasePartition(bg, p, s.cfg.Owner)
		return 0
	}
	// A job whose secrets do not open with this replica's key goes the way
	// of a failed attempt: released at once it would be claimed again at
	// once, ahead of every other job; retried with backoff, then failed
	// loudly, it waits for a replica with the right key (or a resume).
	var counts *commonv1.Counts
	if err == nil {
		counts, err = s.runPartition(ctx, job, p)
	}
	switch {
	case err == nil:
		if err := s.store.FinishPartition(bg, p, s.cfg.Owner, counts); leaseLost(err) {
			slog.Warn("partition taken over by another claim before its end was recorded; the new holder records it",
				"job", p.JobID, "partition", p.ID, "epoch", p.Epoch)
		} else if err != nil {
			slog.Error("finish partition", "job", p.JobID, "partition", p.ID, "err", err)
		}
		s.finishJobs(ctx)
		return 0
	case leaseLost(err):
		// Paused or cut off past the lease, this replica lost the
		// partition: another claim holds it and the loader fenced this
		// one's batches. Give it up: no retry, no failure, no write.
		slog.Warn("partition taken over by another claim: giving it up", "job", p.JobID, "partition", p.ID, "epoch", p.Epoch, "err", err)
	case ctx.Err() != nil || errors.Is(err, ErrCancelled):
		// Shutdown or cancel: hand the partition back; the ledger keeps
		// what was loaded and a resume skips it.
		_ = s.store.ReleasePartition(bg, p, s.cfg.Owner)
	case retryable(err) && p.Attempts < s.cfg.MaxAttempts:
		backoff := stages.Backoff(p.Attempts, rand.Float64())
		slog.Warn("partition failed, will retry", "job", p.JobID, "partition", p.ID, "attempt", p.Attempts, "backoff", backoff, "err", err)
		metrics.Retry(bg)
		_ = s.store.RetryPartition(bg, p, s.cfg.Owner, backoff, err)
		return max(backoff, time.Millisecond)
	default:
		slog.Error("partition failed", "job", p.JobID, "partition", p.ID, "attempt", p.Attempts, "err", err)
		if err := s.store.FailPartition(bg, p, s.cfg.Owner, err); leaseLost(err) {
			slog.Warn("partition taken over by another claim: its failure here is not recorded", "job", p.JobID, "partition", p.ID, "epoch", p.Epoch)
			return 0
		} else if err != nil {
			slog.Error("record failure", "job", p.JobID, "err", err)
		}
		s.storeFinalReport(bg, p.JobID)
		s.endJobSpan(p.JobID, "failed")
	}
	return 0
}

// runPartition streams one partition through the stages. It resumes after
// the last batch the loader's ledger holds, so a retry never loads a row
// twice, and it checks the accounting of every batch and of the partition.
func (s *Service) runPartition(ctx context.Context, job *jobstore.Job, p *jobstore.Partition) (*commonv1.Counts, error) {
	spec := job.Spec
	if p.TableIndex < 0 || p.TableIndex >= len(spec.GetTables()) {
		return nil, fmt.Errorf("%w: partition %s names table %d of %d", ErrInvalidSpec, p.ID, p.TableIndex, len(spec.GetTables()))
	}
	tbl := spec.Tables[p.TableIndex]
	target := s.checker.Target(spec)
	parent := telemetry.Propagator().Extract(context.Background(), propagation.MapCarrier{"traceparent": job.TraceParent})
	pctx, span := tracer.Start(trace.ContextWithSpanContext(ctx, trace.SpanContextFromContext(parent)), "partition",
		trace.WithAttributes(attribute.String("cutover.job_id", job.ID), attribute.String("cutover.partition", p.ID),
			attribute.String("cutover.table", tbl.GetName()), attribute.Int("cutover.attempt", p.Attempts),
			attribute.Int64("cutover.epoch", p.Epoch)))
	defer span.End()
	counts, err := s.streamPartition(pctx, job, p, tbl, target)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		return nil, err
	}
	span.SetAttributes(attribute.Int64("cutover.rows_in", counts.Extracted), attribute.Int64("cutover.rows_out", counts.Loaded),
		attribute.Int64("cutover.rows_rejected", counts.Quarantined))
	return counts, nil
}

// streamPartition makes the partition's one call: the loader pulls the
// batches through validator, transformer and extractor and answers with an
// acknowledgement per batch, which this checks in order and counts.
func (s *Service) streamPartition(ctx context.Context, job *jobstore.Job, p *jobstore.Partition, tbl *commonv1.TableSpec, target *commonv1.TargetSpec) (*commonv1.Counts, error) {
	cl := s.cfg.Clients
	// The cause says why the stream was cut: a batch deadline is reported
	// as such, not as the cancellation it causes.
	ctx, cancelCause := context.WithCancelCause(ctx)
	cancel := func() { cancelCause(nil) }
	defer cancel()

	if err := s.truncateOnce(ctx, job, target); err != nil {
		return nil, err
	}
	// Resume point: the contiguous prefix of this partition in the ledger.
	lctx, lcancel := context.WithTimeout(ctx, stages.Wait)
	led, err := cl.Loader.GetLedger(lctx, &loaderv1.GetLedgerRequest{Target: target, JobId: job.ID, PartitionId: p.ID})
	lcancel()
	if err != nil {
		return nil, stages.Classify("loader", err)
	}
	prior := &commonv1.Counts{}
	var seq int64
	cursor := ""
	for _, e := range led.GetEntries() {
		if e.GetSeq() != seq {
			break
		}
		addCounts(prior, e.GetCounts())
		prior.Batches++
		seq++
		cursor = e.GetLastKey()
	}

	rd := stages.Read(ctx, job.Spec, tbl, &extractorv1.ReadBatchRequest{Range: p.Range, Cursor: cursor, JobId: job.ID, PartitionId: p.ID, Seq: seq,
		Snapshot: job.Snapshot(p.TableIndex), OnlyRefs: job.Redrive[tbl.GetName()]})
	req := &loaderv1.LoadPartitionRequest{
		Config: &loaderv1.LoadConfig{Target: target, Table: tbl.GetTargetTable(), JobId: job.ID, PartitionId: p.ID,
			Staged: jobspec.StagedTables(job.Spec)[tbl.GetTargetTable()], TableName: tbl.GetName(), System: tbl.GetSystem(),
			RedriveOf: job.RedriveOf, WriteMode: tbl.GetWriteMode(), Epoch: p.Epoch},
		Upstream: cl.Addrs.Validator,
		Validate: cl.PullRead(tbl, rd),
	}
	acks, err := stages.Opened(cancel, "loader", func() (grpc.ServerStreamingClient[loaderv1.LoadPartitionResponse], error) {
		return cl.Loader.LoadPartition(ctx, req)
	})
	if err != nil {
		return nil, err
	}
	// recvAck waits for the next acknowledgement for at most the batch
	// deadline: a stalled stage anywhere in the chain fails the attempt
	// instead of hanging it.
	recvAck := func(what string) (*loaderv1.LoadPartitionResponse, error) {
		t := time.AfterFunc(s.cfg.BatchTimeout, func() {
			cancelCause(fmt.Errorf("%w: loader: %s of partition %s not acknowledged within the batch timeout %s", ErrStage, what, p.ID, s.cfg.BatchTimeout))
		})
		defer t.Stop()
		return acks.Recv()
	}
	attempt := &commonv1.Counts{}
	clock := newStageClock()
	for {
		ack, err := recvAck(fmt.Sprintf("batch %d", seq))
		if err == io.EOF {
			break
		}
		if err != nil {
			if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
				return nil, cause
			}
			return nil, stages.Classify("loader", err)
		}
		if err := s.acknowledged(ctx, job, p, seq, ack); err != nil {
			return nil, err
		}
		for stage, us := range ack.GetStageMicros() {
			clock.add(stage, time.Duration(us)*time.Microsecond)
		}
		addCounts(attempt, ack.GetAck().GetCounts())
		attempt.Batches++
		seq++
		ok, err := s.store.Progress(ctx, p, s.cfg.Owner, s.cfg.Lease, sumCounts(prior, attempt))
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%w: job %s is no longer running", ErrCancelled, job.ID)
		}
		s.watchThresholds(ctx, job)
	}
	total := sumCounts(prior, attempt)
	if err := s.checkLedger(ctx, target, job.ID, p.ID, total); err != nil {
		return nil, err
	}
	p.Timing = clock.json()
	return total, nil
}

// acknowledged checks one batch's acknowledgement: the next seq, balanced,
// under a span of the orchestrator's in the batch's trace.
func (s *Service) acknowledged(ctx context.Context, job *jobstore.Job, p *jobstore.Partition, seq int64, pa *loaderv1.LoadPartitionResponse) error {
	bctx := telemetry.Propagator().Extract(ctx, propagation.MapCarrier(pa.GetTraceContext()))
	ack := pa.GetAck()
	_, span := tracer.Start(bctx, "orchestrator.ack", trace.WithAttributes(attribute.String("cutover.job_id", job.ID),
		attribute.String("cutover.partition", p.ID), attribute.Int64("cutover.seq", ack.GetSeq())))
	c := ack.GetCounts()
	if ack.GetSeq() != seq || !stages.Balanced(c) {
		err := fmt.Errorf("%w: batch %d of partition %s: loader acknowledged seq %d with extracted %d = loaded %d + quarantined %d + filtered %d",
			ErrUnbalanced, seq, p.ID, ack.GetSeq(), c.GetExtracted(), c.GetLoaded(), c.GetQuarantined(), c.GetFiltered())
		endSpan(span, err)
		return err
	}
	span.SetAttributes(attribute.Int64("cutover.rows_in", c.GetExtracted()), attribute.Int64("cutover.rows_out", c.GetLoaded()),
		attribute.Int64("cutover.rows_rejected", c.GetQuarantined()), attribute.Bool("cutover.skipped", ack.GetSkipped()))
	span.End()
	return nil
}

// checkLedger compares what we counted with what the target committed:
// the ledger is the stored fact, and it must hold every batch exactly once.
func (s *Service) checkLedger(ctx context.Context, target *commonv1.TargetSpec, jobID, partID string, want *commonv1.Counts) error {
	ctx, cancel := context.WithTimeout(ctx, stages.Wait)
	defer cancel()
	led, err := s.cfg.Clients.Loader.GetLedger(ctx, &loaderv1.GetLedgerRequest{Target: target, JobId: jobID, PartitionId: partID})
	if err != nil {
		return stages.Classify("loader", err)
	}
	got := &commonv1.Counts{}
	for i, e := range led.GetEntries() {
		if e.GetSeq() != int64(i) {
			return fmt.Errorf("%w: partition %s: ledger has seq %d where %d was expected", ErrUnbalanced, partID, e.GetSeq(), i)
		}
		addCounts(got, e.GetCounts())
		got.Batches++
	}
	if got.Extracted != want.Extracted || got.Loaded != want.Loaded || got.Quarantined != want.Quarantined || got.Filtered != want.Filtered || got.Batches != want.Batches {
		return fmt.Errorf("%w: partition %s: ledger says %d batches, extracted %d, loaded %d, quarantined %d, filtered %d; run counted %d, %d, %d, %d, %d",
			ErrUnbalanced, partID, got.Batches, got.Extracted, got.Loaded, got.Quarantined, got.Filtered, want.Batches, want.Extracted, want.Loaded, want.Quarantined, want.Filtered)
	}
	if !stages.Balanced(got) {
		return fmt.Errorf("%w: partition %s: extracted %d != loaded %d + quarantined %d + filtered %d", ErrUnbalanced, partID, got.Extracted, got.Loaded, got.Quarantined, got.Filtered)
	}
	return nil
}

// workFinish is a job's end as River work (see package queue).
func (s *Service) workFinish(ctx context.Context, id string) error {
	s.finishJob(ctx, id)
	return nil
}

// finishJobs ends every running job whose partitions are all done: it
// checks the job's accounting and stores its report.
func (s *Service) finishJobs(ctx context.Context) {
	ids, err := s.store.FinishableJobs(ctx)
	if err != nil {
		if ctx.Err() == nil {
			slog.Error("finishable jobs", "err", err)
		}
		return
	}
	for _, id := range ids {
		s.finishJob(ctx, id)
	}
}

// finishJob ends one job whose partitions are all done, under a claim so
// that no other worker or replica does the same at the same time.
func (s *Service) finishJob(ctx context.Context, id string) {
	if ok, err := s.store.ClaimFinish(ctx, id, s.finishLease()); err != nil || !ok {
		return
	}
	defer s.store.ReleaseFinish(context.WithoutCancel(ctx), id)
	defer s.holdFinish(ctx, id)()
	j, err := s.store.GetJob(ctx, id)
	if err != nil {
		if errors.Is(err, ErrSealed) {
			slog.Error("job not finished: its stored secrets do not open here", "job", id, "err", err)
		}
		return
	}
	// A share-of-rows threshold is judged now that every row is counted,
	// before anything is merged or keyed; again after finalizing, which may
	// quarantine more (unique, references, collisions).
	if s.thresholdFailed(ctx, j) {
		return
	}
	// Staged target tables move into the target, parents first, each once.
	if err := s.finalizeStaged(ctx, j); err != nil {
		if retryable(err) {
			slog.Warn("staged tables not finalized yet, will retry", "job", id, "err", err)
			return
		}
		s.failJobAtFinish(ctx, j, "finalizing staged tables: "+err.Error())
		return
	}
	if j, err = s.store.GetJob(ctx, id); err != nil {
		return
	}
	if len(j.Finalized) > 0 && s.thresholdFailed(ctx, j) {
		return
	}
	// Keys and references go on after the data, once per job.
	var consErr error
	if !j.ConstraintsDone && len(j.Constraints.GetConstraints()) > 0 {
		req := &loaderv1.AddConstraintsRequest{Target: s.checker.Target(j.Spec), Constraints: j.Constraints.GetConstraints()}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		res, err := s.cfg.Clients.Loader.AddConstraints(cctx, req)
		cancel()
		if err != nil {
			consErr = stages.Classify("loader", err)
			if retryable(consErr) {
				slog.Warn("constraints not added yet, will retry", "job", id, "err", consErr)
				return
			}
		} else if err := s.store.ConstraintsAdded(ctx, id, res.GetStatements()); err != nil {
			slog.Error("record constraints", "job", id, "err", err)
			return
		} else if j, err = s.store.GetJob(ctx, id); err != nil {
			return
		}
	}
	r, err := s.buildReport(ctx, j)
	if err != nil {
		slog.Warn("report not ready, will retry", "job", id, "err", err)
		return
	}
	state, errText := jobstore.StateSucceeded, ""
	if consErr != nil {
		state, errText = jobstore.StateFailed, "adding keys after the load: "+consErr.Error()
	}
	if !r.Balanced {
		state, errText = jobstore.StateFailed, ErrUnbalanced.Error()+": see report"
	}
	r.Ddl = j.DDL
	now := time.Now()
	r.State, r.Error, r.FinishedAt = jobstore.JobState(state), errText, ts(&now)
	setTiming(r, j.Started, &now)
	if state == jobstore.StateSucceeded && len(jobspec.SyncTables(j.Spec)) > 0 {
		// The full load is in: the followed tables follow their sources
		// until StopFollowing (follow.go).
		r.State, r.FinishedAt = jobstore.JobState(jobstore.StateFollowing), nil
		data, err := marshalReport(r)
		if err != nil {
			slog.Error("encode report", "job", id, "err", err)
			return
		}
		ok, err := s.store.StartFollowing(ctx, id, data, jobspec.FollowedTables(j.Spec))
		if err != nil {
			slog.Error("start following", "job", id, "err", err)
			return
		}
		if ok {
			// The full load is in: its snapshots would hold back VACUUM
			// and DDL on the sources for as long as the job follows.
			s.closeSnapshots(context.WithoutCancel(ctx), j.Spec, j.Snapshots)
			slog.Info("full load done, following", "job", id, "extracted", r.Totals.GetExtracted(), "loaded", r.Totals.GetLoaded(), "trace_id", j.TraceID)
			var ids []string
			for _, t := range jobspec.FollowedTables(j.Spec) {
				ids = append(ids, jobstore.SyncPrefix+t.Name)
			}
			if err := s.queue.Follow(ctx, id, ids); err != nil {
				slog.Warn("enqueue followers; the dispatcher will", "job", id, "err", err)
			}
		}
		return
	}
	data, err := marshalReport(r)
	if err != nil {
		slog.Error("encode report", "job", id, "err", err)
		return
	}
	ended, err := s.store.EndJob(ctx, id, state, errText, data)
	if err != nil {
		slog.Error("end job", "job", id, "err", err)
		return
	}
	if ended && state == jobstore.StateSucceeded {
		// A failed job keeps them for a resume (the snapshot hold).
		s.closeSnapshots(context.WithoutCancel(ctx), j.Spec, j.Snapshots)
	}
	if ended {
		slog.Info("job ended", "job", id, "state", state, "extracted", r.Totals.GetExtracted(), "loaded", r.Totals.GetLoaded(),
			"quarantined", r.Totals.GetQuarantined(), "trace_id", j.TraceID)
		s.endJobSpan(id, state)
	}
}

// storeFinalReport writes the report of a job that ended by failure or
// cancel; a report that cannot be built now is built on demand later.
func (s *Service) storeFinalReport(ctx context.Context, id string) {
	j, err := s.store.GetJob(ctx, id)
	if err != nil {
		return
	}
	r, err := s.buildReport(ctx, j)
	if err != nil {
		slog.Warn("report", "job", id, "err", err)
		return
	}
	if data, err := marshalReport(r); err == nil {
		_ = s.store.SetReport(ctx, id, data)
	}
}

func endSpan(sp trace.Span, err error) {
	sp.RecordError(err)
	sp.SetStatus(codes.Error, err.Error())
	sp.End()
}

func addCounts(dst, c *commonv1.Counts) {
	dst.Extracted += c.GetExtracted()
	dst.Loaded += c.GetLoaded()
	dst.Quarantined += c.GetQuarantined()
	dst.Filtered += c.GetFiltered()
	dst.MergedAway += c.GetMergedAway()
	dst.Warned += c.GetWarned()
}

func sumCounts(a, b *commonv1.Counts) *commonv1.Counts {
	return &commonv1.Counts{Extracted: a.Extracted + b.Extracted, Loaded: a.Loaded + b.Loaded,
		Quarantined: a.Quarantined + b.Quarantined, Batches: a.Batches + b.Batches,
		Filtered: a.Filtered + b.Filtered, MergedAway: a.MergedAway + b.MergedAway, Warned: a.Warned + b.Warned}
}
