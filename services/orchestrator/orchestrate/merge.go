package orchestrate

import (
	"context"
	"log/slog"
	"time"

	"github.com/cutover/cutover/services/orchestrator/jobspec"
	"github.com/cutover/cutover/services/orchestrator/jobstore"
	"github.com/cutover/cutover/services/orchestrator/stages"
)

// Merging systems: a target table fed by dedupe, key collisions, new ids or
// references is staged (see the loader's FinalizeStaged); when every
// partition is in, the orchestrator finalizes the staged tables, those
// whose ids others reference first.

// finalizeStaged finalizes the job's staged target tables not yet done,
// recording each outcome before going on: a crash in between repeats only
// a call the loader answers from its own record.
func (s *Service) finalizeStaged(ctx context.Context, j *jobstore.Job) error {
	order, err := jobspec.FinalizeOrder(j.Spec)
	if err != nil {
		return err
	}
	for _, table := range order {
		if _, ok := j.Finalized[table]; ok {
			continue
		}
		fctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
		res, err := s.cfg.Clients.Loader.FinalizeStaged(fctx, jobspec.FinalizeRequest(j.Spec, s.checker.Target(j.Spec), j.ID, table))
		cancel()
		if err != nil {
			return stages.Classify("loader", err)
		}
		if err := s.store.SetFinalized(ctx, j.ID, table, res); err != nil {
			return err
		}
		slog.Info("staged table finalized", "job", j.ID, "table", table, "merges", len(res.GetMerges()), "unresolved_refs", res.GetUnresolvedRefs())
	}
	return nil
}

// failJobAtFinish ends a job whose partitions all finished but whose end
// step failed for good.
func (s *Service) failJobAtFinish(ctx context.Context, j *jobstore.Job, errText string) {
	r, err := s.buildReport(ctx, j)
	if err != nil {
		slog.Warn("report not ready, will retry", "job", j.ID, "err", err)
		return
	}
	now := time.Now()
	r.State, r.Error, r.FinishedAt = jobstore.JobState(jobstore.StateFailed), errText, ts(&now)
	setTiming(r, j.Started, &now)
	data, err := marshalReport(r)
	if err != nil {
		slog.Error("encode report", "job", j.ID, "err", err)
		return
	}
	if ended, err := s.store.EndJob(ctx, j.ID, jobstore.StateFailed, errText, data); err != nil {
		slog.Error("end job", "job", j.ID, "err", err)
	} else if ended {
		slog.Info("job ended", "job", j.ID, "state", jobstore.StateFailed, "error", errText)
		s.endJobSpan(j.ID, jobstore.StateFailed)
	}
}
