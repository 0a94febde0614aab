package orchestrate

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/orchestrator/jobspec"
	"github.com/cutover/cutover/services/orchestrator/jobstore"
	"github.com/cutover/cutover/services/orchestrator/stages"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
)

// rollbackWait bounds one loader Rollback (one target transaction).
const rollbackWait = 30 * time.Minute

// backup has the loader copy every target table of the spec when
// target.backup is set; nil otherwise.
func (s *Service) backup(ctx context.Context, id string, spec *commonv1.JobSpec) (map[string]int64, error) {
	if !spec.GetTarget().GetBackup() {
		return nil, nil
	}
	tables := jobspec.TargetTables(spec)
	res, err := s.cfg.Clients.Loader.BackupTables(ctx, &loaderv1.BackupTablesRequest{Target: s.checker.Target(spec), JobId: id, Tables: tables})
	if err != nil {
		return nil, stages.Refusal("target.backup", "loader", err)
	}
	out := map[string]int64{}
	for i, n := range res.GetRows() {
		if i < len(tables) {
			out[tables[i]] = n
		}
	}
	slog.Info("target tables backed up", "job", id, "tables", len(tables))
	return out, nil
}

// truncateOnce empties the job's target tables before its first batch
// (target.if_exists truncate). Every partition asks before it loads; the
// loader empties them once per job, in the transaction that records it,
// after the copies CreateJob took: a crash before that commit leaves the
// tables as they were, one after it never empties them again, so a
// resumed job keeps the rows it loaded and the rollback finds the earlier
// ones in the copies.
func (s *Service) truncateOnce(ctx context.Context, job *jobstore.Job, target *commonv1.TargetSpec) error {
	if job.RedriveOf != "" || jobspec.IfExists(job.Spec) != commonv1.IfExists_IF_EXISTS_TRUNCATE {
		return nil
	}
	tables := jobspec.TargetTables(job.Spec)
	tctx, cancel := context.WithTimeout(ctx, stages.Wait)
	defer cancel()
	res, err := s.cfg.Clients.Loader.BackupTables(tctx, &loaderv1.BackupTablesRequest{Target: target, JobId: job.ID, Tables: tables, Truncate: true})
	if err != nil {
		return stages.Classify("loader", err)
	}
	if res.GetTruncated() {
		slog.Info("target tables emptied (target.if_exists truncate)", "job", job.ID, "tables", tables)
	}
	return nil
}

// RollbackJob restores the target to its state before an ended job.
func (s *Service) RollbackJob(ctx context.Context, req *orchestratorv1.RollbackJobRequest) (*orchestratorv1.RollbackJobResponse, error) {
	j, err := s.store.GetJob(ctx, req.GetId())
	if err != nil {
		return nil, toStatus(err)
	}
	switch j.State {
	case jobstore.StateSucceeded, jobstore.StateFailed, jobstore.StateCancelled, jobstore.StateRolledBack:
	case jobstore.StateDeleting:
		return nil, toStatus(fmt.Errorf("%w: job %s is being deleted; its bookkeeping is purged and it can no longer be rolled back", ErrJobState, j.ID))
	default:
		return nil, toStatus(fmt.Errorf("%w: job %s is %s; cancel it first, then roll it back", ErrJobState, j.ID, j.State))
	}
	// An ended job's partitions may still be finishing a batch; the loader
	// would wait for it (or refuse it after), but waiting here first lets
	// the last batches land before they are undone, not after.
	s.waitPartitions(ctx, j.ID)
	rctx, cancel := context.WithTimeout(ctx, rollbackWait)
	res, err := s.cfg.Clients.Loader.Rollback(rctx, &loaderv1.RollbackRequest{Target: s.checker.Target(j.Spec), JobId: j.ID, Tables: jobspec.TargetTables(j.Spec)})
	cancel()
	if c := status.Code(err); c == codes.FailedPrecondition || c == codes.InvalidArgument {
		return nil, err // the loader's message names the table and what to do
	}
	if err != nil {
		return nil, toStatus(stages.Classify("loader", err))
	}
	ok, err := s.store.RollBack(ctx, j.ID, res)
	if err != nil {
		return nil, toStatus(err)
	}
	if !ok {
		// Resumed between the check and now: the loader's rollback stands
		// (its record makes a later call a no-op), the job runs on.
		return nil, toStatus(fmt.Errorf("%w: job %s was resumed while it was rolled back; cancel it and roll it back again", ErrJobState, j.ID))
	}
	s.markReportRolledBack(ctx, j.ID)
	for _, t := range res.GetTables() {
		slog.Info("job rolled back", "job", j.ID, "table", t.GetTable(), "deleted", t.GetDeleted(), "restored", t.GetRestored(), "from_backup", t.GetFromBackup())
	}
	job, err := s.getJob(ctx, j.ID)
	if err != nil {
		return nil, toStatus(err)
	}
	return &orchestratorv1.RollbackJobResponse{Job: job, Tables: res.GetTables()}, nil
}

// markReportRolledBack sets the stored report's state, so that the report
// says the job's rows are gone; a job without one gets it built now.
func (s *Service) markReportRolledBack(ctx context.Context, id string) {
	j, err := s.store.GetJob(ctx, id)
	if err != nil {
		return
	}
	r := &orchestratorv1.JobReport{}
	if len(j.Report) == 0 || protojson.Unmarshal(j.Report, r) != nil {
		s.storeFinalReport(ctx, id)
		return
	}
	r.State = orchestratorv1.JobState_JOB_STATE_ROLLED_BACK
	if data, err := marshalReport(r); err == nil {
		if err := s.store.SetReport(ctx, id, data); err != nil {
			slog.Warn("report", "job", id, "err", err)
		}
	}
}

// waitPartitions waits, at most a lease, until no partition of the job is
// held by a live worker.
func (s *Service) waitPartitions(ctx context.Context, id string) {
	deadline := time.Now().Add(s.cfg.Lease)
	for time.Now().Before(deadline) {
		n, err := s.store.LiveClaims(ctx, id)
		if err != nil || n == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.cfg.Poll):
		}
	}
}
