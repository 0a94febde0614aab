package orchestrate

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/orchestrator/jobspec"
	"github.com/cutover/cutover/services/orchestrator/jobstore"
	"github.com/cutover/cutover/services/orchestrator/stages"
)

// defaultCutoverWait bounds the lag and drain steps of a switch-over.
const defaultCutoverWait = 60 * time.Second

// CutoverJob switches a following job over: each step runs only when the
// one before it passed, and the answer says how each went. A failed step
// leaves the job following (its followers untouched), so the operator can
// fix what it names and call again.
func (s *Service) CutoverJob(ctx context.Context, req *orchestratorv1.CutoverJobRequest) (*orchestratorv1.CutoverJobResponse, error) {
	if req.GetMaxLagRows() < 0 || req.GetMaxLagSeconds() < 0 || req.GetWaitSeconds() < 0 {
		return nil, toStatus(jobspec.Invalid("max_lag_rows", "limits and waits must not be negative"))
	}
	j, err := s.store.GetJob(ctx, req.GetId())
	if err != nil {
		return nil, toStatus(err)
	}
	if j.State != jobstore.StateFollowing {
		return nil, toStatus(fmt.Errorf("%w: job %s is %s; only a following job can be switched over", ErrJobState, j.ID, j.State))
	}
	wait := time.Duration(req.GetWaitSeconds()) * time.Second
	if wait == 0 {
		wait = defaultCutoverWait
	}
	c := &cutover{s: s, job: j, out: &orchestratorv1.CutoverJobResponse{}}
	steps := []struct {
		name string
		run  func(context.Context) (orchestratorv1.CutoverStep_Outcome, string)
	}{
		{"lag", func(ctx context.Context) (orchestratorv1.CutoverStep_Outcome, string) {
			return c.waitLag(ctx, req.GetMaxLagRows(), req.GetMaxLagSeconds(), wait)
		}},
		{"writes_paused", func(context.Context) (orchestratorv1.CutoverStep_Outcome, string) {
			if req.GetWritesPaused() {
				return orchestratorv1.CutoverStep_OUTCOME_OK, "the caller confirmed that the application's writes on the source are paused"
			}
			return orchestratorv1.CutoverStep_OUTCOME_SKIPPED, "writes not confirmed paused: changes after the drain are applied until the followers stop"
		}},
		{"drain", func(ctx context.Context) (orchestratorv1.CutoverStep_Outcome, string) {
			return c.drain(ctx, wait)
		}},
		{"reconcile", c.reconcile},
		{"sequences", c.sequences},
		{"stop_following", c.stop},
	}
	failed := false
	for _, st := range steps {
		step := &orchestratorv1.CutoverStep{Name: st.name, Outcome: orchestratorv1.CutoverStep_OUTCOME_NOT_RUN}
		c.out.Steps = append(c.out.Steps, step)
		if failed {
			continue
		}
		start := time.Now()
		step.Outcome, step.Detail = st.run(ctx)
		step.TookMs = time.Since(start).Milliseconds()
		failed = step.Outcome == orchestratorv1.CutoverStep_OUTCOME_FAILED
		slog.Info("cutover step", "job", j.ID, "step", st.name, "outcome", step.Outcome.String(), "detail", step.Detail)
	}
	c.out.Ok = !failed
	if c.out.Job, err = s.getJob(ctx, j.ID); err != nil {
		return nil, toStatus(err)
	}
	return c.out, nil
}

// cutover is one switch-over's state between its steps.
type cutover struct {
	s   *Service
	job *jobstore.Job
	out *orchestratorv1.CutoverJobResponse
}

// waitLag waits until every follower is at or under the lag, at most
// wait.
func (c *cutover) waitLag(ctx context.Context, maxRows int64, maxSeconds float64, wait time.Duration) (orchestratorv1.CutoverStep_Outcome, string) {
	deadline := time.Now().Add(wait)
	for {
		r, err := c.s.GetReadiness(ctx, &orchestratorv1.GetReadinessRequest{Id: c.job.ID, MaxLagRows: maxRows, MaxLagSeconds: max(maxSeconds, 0)})
		if err != nil {
			return orchestratorv1.CutoverStep_OUTCOME_FAILED, err.Error()
		}
		var behind, lags []string
		for _, reason := range r.GetReasons() {
			// The reconciliation is a later step; lag is what this waits for.
			if strings.HasPrefix(reason, "table ") {
				behind = append(behind, reason)
			}
		}
		for _, t := range r.GetTables() {
			lags = append(lags, fmt.Sprintf("%s %d rows, %.1f s", t.GetTable(), t.GetLagRows(), t.GetLagSeconds()))
		}
		if len(behind) == 0 && r.GetState() == orchestratorv1.JobState_JOB_STATE_FOLLOWING {
			return orchestratorv1.CutoverStep_OUTCOME_OK, "lag: " + strings.Join(lags, "; ")
		}
		if r.GetState() != orchestratorv1.JobState_JOB_STATE_FOLLOWING {
			return orchestratorv1.CutoverStep_OUTCOME_FAILED, "the job is no longer following"
		}
		if time.Now().After(deadline) {
			return orchestratorv1.CutoverStep_OUTCOME_FAILED, fmt.Sprintf("still behind after %s: %s", wait, strings.Join(behind, "; "))
		}
		select {
		case <-ctx.Done():
			return orchestratorv1.CutoverStep_OUTCOME_FAILED, ctx.Err().Error()
		case <-time.After(c.s.cfg.Poll):
		}
	}
}

// drain waits until every follower has read its source again since the
// step began (its beat moved on: a lag of 0 from before does not count)
// and found nothing left, at most wait.
func (c *cutover) drain(ctx context.Context, wait time.Duration) (orchestratorv1.CutoverStep_Outcome, string) {
	deadline := time.Now().Add(wait)
	var seen map[string]time.Time
	for {
		fs, err := c.s.store.Followers(ctx, c.job.ID)
		if err != nil {
			return orchestratorv1.CutoverStep_OUTCOME_FAILED, err.Error()
		}
		polled := map[string]time.Time{}
		for _, f := range fs {
			if f.Polled != nil {
				polled[f.Table] = *f.Polled
			}
		}
		if seen == nil {
			seen = polled // the beats as they were when the step began
		} else {
			var behind []string
			for _, f := range fs {
				switch {
				case f.State != jobstore.StateFollowing:
					behind = append(behind, f.Table+" is "+f.State)
				case !polled[f.Table].After(seen[f.Table]):
					behind = append(behind, f.Table+" has not read its source since the drain began")
				case f.LagRows > 0:
					behind = append(behind, fmt.Sprintf("%s %d rows behind", f.Table, f.LagRows))
				}
			}
			if len(behind) == 0 {
				return orchestratorv1.CutoverStep_OUTCOME_OK, fmt.Sprintf("%d followers read their sources again and found nothing left", len(fs))
			}
			if time.Now().After(deadline) {
				return orchestratorv1.CutoverStep_OUTCOME_FAILED, fmt.Sprintf("not drained after %s: %s", wait, strings.Join(behind, "; "))
			}
		}
		select {
		case <-ctx.Done():
			return orchestratorv1.CutoverStep_OUTCOME_FAILED, ctx.Err().Error()
		case <-time.After(c.s.cfg.Poll):
		}
	}
}

// reconcile compares the source as it is now with the target, each
// database by its own SQL (the independent level).
func (c *cutover) reconcile(ctx context.Context) (orchestratorv1.CutoverStep_Outcome, string) {
	r, err := c.s.Reconcile(ctx, &orchestratorv1.ReconcileRequest{Id: c.job.ID, Level: commonv1.ReconcileLevel_RECONCILE_LEVEL_INDEPENDENT})
	if err != nil {
		return orchestratorv1.CutoverStep_OUTCOME_FAILED, "reconcile: " + err.Error()
	}
	rec := r.GetReconciliation()
	c.out.Reconciliation = rec
	var bad, fine []string
	for _, t := range rec.GetTables() {
		ind := t.GetIndependent()
		line := fmt.Sprintf("%s: source %d rows, target %d, %d differing keys", t.GetTargetTable(), ind.GetSourceRows(), ind.GetTargetRows(), len(ind.GetDifferences()))
		if !t.GetOk() {
			bad = append(bad, line)
		} else {
			fine = append(fine, line)
		}
	}
	if !rec.GetOk() {
		return orchestratorv1.CutoverStep_OUTCOME_FAILED, "the target differs from the source: " + strings.Join(bad, "; ")
	}
	return orchestratorv1.CutoverStep_OUTCOME_OK, strings.Join(fine, "; ")
}

// sequences moves the identity or owned sequence of every followed
// table's single-column key past the largest key loaded, so the
// application's first insert after the switch gets a new key.
func (c *cutover) sequences(ctx context.Context) (orchestratorv1.CutoverStep_Outcome, string) {
	var cons []*loaderv1.TableConstraint
	for _, i := range jobspec.SyncTables(c.job.Spec) {
		t := c.job.Spec.Tables[i]
		dctx, cancel := context.WithTimeout(ctx, stages.Wait)
		src, err := c.s.cfg.Clients.Extractor.DescribeSource(dctx, &extractorv1.DescribeSourceRequest{Source: t.GetSource()})
		cancel()
		if err != nil {
			return orchestratorv1.CutoverStep_OUTCOME_FAILED, fmt.Sprintf("table %s: %v", t.GetName(), stages.Classify("extractor", err))
		}
		keys, err := jobspec.KeyTargets(t, src.GetPrimaryKey())
		if err != nil || len(keys) != 1 {
			continue // composite or unmapped keys have no sequence to move
		}
		cons = append(cons, &loaderv1.TableConstraint{Table: t.GetTargetTable(), Name: "cutover_restart_" + keys[0], Columns: keys, RestartIdentity: true})
	}
	if len(cons) == 0 {
		return orchestratorv1.CutoverStep_OUTCOME_SKIPPED, "no followed table has a single-column key"
	}
	actx, cancel := context.WithTimeout(ctx, stages.Wait)
	defer cancel()
	r, err := c.s.cfg.Clients.Loader.AddConstraints(actx, &loaderv1.AddConstraintsRequest{Target: c.s.checker.Target(c.job.Spec), Constraints: cons})
	if err != nil {
		return orchestratorv1.CutoverStep_OUTCOME_FAILED, stages.Classify("loader", err).Error()
	}
	if len(r.GetStatements()) == 0 {
		return orchestratorv1.CutoverStep_OUTCOME_SKIPPED, "no key column of a followed table has an identity or owned sequence"
	}
	return orchestratorv1.CutoverStep_OUTCOME_OK, strings.Join(r.GetStatements(), "; ")
}

// stop lets the followers drain and stop; the job succeeds.
func (c *cutover) stop(ctx context.Context) (orchestratorv1.CutoverStep_Outcome, string) {
	r, err := c.s.StopFollowing(ctx, &orchestratorv1.StopFollowingRequest{Id: c.job.ID})
	if err != nil {
		return orchestratorv1.CutoverStep_OUTCOME_FAILED, err.Error()
	}
	if st := r.GetJob().GetState(); st != orchestratorv1.JobState_JOB_STATE_SUCCEEDED {
		return orchestratorv1.CutoverStep_OUTCOME_FAILED, "the job ended " + jobstore.StateName(st) + ": " + r.GetJob().GetError()
	}
	n := r.GetJob().GetCounts()
	return orchestratorv1.CutoverStep_OUTCOME_OK, fmt.Sprintf("followers stopped; the job succeeded (extracted %d, loaded %d)", n.GetExtracted(), n.GetLoaded())
}
