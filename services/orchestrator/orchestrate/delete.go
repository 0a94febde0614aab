package orchestrate

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/orchestrator/jobspec"
	"github.com/cutover/cutover/services/orchestrator/stages"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const (
	// purgeWait bounds one loader PurgeJob (one target transaction).
	purgeWait = 30 * time.Minute
	// defaultAuditRetention is --audit-retention's default.
	defaultAuditRetention = 90 * 24 * time.Hour
	// defaultSnapshotHold is --snapshot-hold's default: time to resume a
	// failed job the same day, not days of VACUUM held back.
	defaultSnapshotHold = time.Hour
	// retentionBatch is how many expired jobs one sweep deletes at most.
	retentionBatch = 100
)

// DeleteJob removes an ended job: the loader purges its bookkeeping in the
// target, then its control rows go. It cannot be rolled back afterwards.
func (s *Service) DeleteJob(ctx context.Context, req *orchestratorv1.DeleteJobRequest) (*orchestratorv1.DeleteJobResponse, error) {
	if req.GetId() == "" {
		return nil, toStatus(fmt.Errorf("%w: id: required", ErrInvalidArgument))
	}
	res, err := s.deleteJob(ctx, req.GetId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &orchestratorv1.DeleteJobResponse{Id: req.GetId(), Purged: res}, nil
}

// deleteJob is DeleteJob, also run by retention. The job goes to deleting
// first, so nothing resumes or rolls it back meanwhile; a failure after
// that leaves it deleting, and the next call (or sweep) finishes it.
func (s *Service) deleteJob(ctx context.Context, id string) (*loaderv1.PurgeJobResponse, error) {
	j, err := s.store.GetJob(ctx, id)
	if err != nil {
		return nil, err
	}
	before, ok, err := s.store.BeginDelete(ctx, id)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: job %s is %s; only an ended job (succeeded, failed, cancelled or rolled back) can be deleted, so cancel it first",
			ErrJobState, id, before)
	}
	// Partitions of a cancelled job may still be finishing a batch; the
	// loader's purge waits for them (and refuses any after it), but letting
	// them land first keeps the counts of the purge whole.
	s.waitPartitions(ctx, id)
	pctx, cancel := context.WithTimeout(ctx, purgeWait)
	res, err := s.cfg.Clients.Loader.PurgeJob(pctx, &loaderv1.PurgeJobRequest{
		Target: s.checker.Target(j.Spec), JobId: id, Tables: jobspec.TargetTables(j.Spec),
	})
	cancel()
	if c := status.Code(err); c == codes.FailedPrecondition || c == codes.InvalidArgument {
		return nil, err // the loader's message says what is wrong with the target
	}
	if err != nil {
		return nil, stages.Classify("loader", err)
	}
	if _, err := s.store.DeleteJobRows(ctx, id); err != nil {
		return nil, err
	}
	s.endJobSpan(id, "deleted")
	var rows int64
	for _, c := range res.GetCounts() {
		rows += c.GetRows()
	}
	slog.Info("job deleted", "job", id, "was", before, "bookkeeping_rows", rows, "tables_dropped", len(res.GetDroppedTables()))
	return res, nil
}

// sweepEvery is how often retention looks: a tenth of the shorter
// retention, between a second and ten minutes.
func sweepEvery(ds ...time.Duration) time.Duration {
	every := 10 * time.Minute
	for _, d := range ds {
		if d > 0 && d/10 < every {
			every = d / 10
		}
	}
	return max(every, time.Second)
}

// sweep deletes the ended jobs older than the retention (and jobs a delete
// left half done), each as DeleteJob does, and the audit entries older
// than theirs. It runs as a periodic River job (package queue), so one
// replica sweeps at a time; a job deleted by a sweep and a DeleteJob at
// once is purged twice, which the loader takes.
func (s *Service) sweep(ctx context.Context) {
	if s.cfg.Retention > 0 {
		ids, err := s.store.ExpiredJobs(ctx, s.cfg.Retention, retentionBatch)
		if err != nil && ctx.Err() == nil {
			slog.Warn("retention: list expired jobs", "err", err)
		}
		for _, id := range ids {
			if ctx.Err() != nil {
				return
			}
			if _, err := s.deleteJob(ctx, id); err != nil && ctx.Err() == nil {
				slog.Warn("retention: delete job", "job", id, "err", err)
			}
		}
	}
	if s.cfg.SnapshotHold > 0 {
		held, err := s.store.HeldSnapshots(ctx, s.cfg.SnapshotHold, retentionBatch)
		if err != nil && ctx.Err() == nil {
			slog.Warn("snapshot hold: list jobs", "err", err)
		}
		for _, j := range held {
			// Marked first, and only while the job is still failed or
			// cancelled: a resume that won the race keeps its snapshots.
			ok, err := s.store.ReleaseSnapshots(ctx, j.ID)
			if err != nil || !ok {
				continue
			}
			s.closeSnapshots(context.WithoutCancel(ctx), j.Spec, j.Snapshots)
			slog.Info("snapshot hold over: source snapshots released", "job", j.ID, "hold", s.cfg.SnapshotHold)
		}
	}
	if s.cfg.AuditRetention > 0 {
		n, err := s.store.ExpireAudit(ctx, s.cfg.AuditRetention)
		switch {
		case err != nil && ctx.Err() == nil:
			slog.Warn("retention: expire audit entries", "err", err)
		case n > 0:
			slog.Info("retention: audit entries expired", "entries", n)
		}
	}
}
