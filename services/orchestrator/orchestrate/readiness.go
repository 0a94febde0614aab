package orchestrate

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/orchestrator/jobspec"
	"github.com/cutover/cutover/services/orchestrator/jobstore"
)

// stopWait bounds how long StopFollowing waits for the last drain.
const stopWait = 5 * time.Minute

// GetReadiness says whether it is safe to switch systems: every followed
// table caught up (lag within the limits) and the last reconciliation
// passed.
func (s *Service) GetReadiness(ctx context.Context, req *orchestratorv1.GetReadinessRequest) (*orchestratorv1.GetReadinessResponse, error) {
	if req.GetMaxLagRows() < 0 || req.GetMaxLagSeconds() < 0 {
		return nil, toStatus(jobspec.Invalid("max_lag_rows", "limits must not be negative"))
	}
	maxSeconds := req.GetMaxLagSeconds()
	if maxSeconds == 0 {
		maxSeconds = defaultReadyLagSeconds
	}
	j, err := s.store.GetJob(ctx, req.GetId())
	if err != nil {
		return nil, toStatus(err)
	}
	out := &orchestratorv1.GetReadinessResponse{JobId: j.ID, State: jobstore.JobState(j.State)}
	if len(jobspec.SyncTables(j.Spec)) == 0 {
		out.Reasons = append(out.Reasons, "the job follows no table (no table has a sync spec)")
	}
	switch j.State {
	case jobstore.StateFollowing:
	case jobstore.StateRunning, jobstore.StatePending:
		out.Reasons = append(out.Reasons, "the full load is still running")
	default:
		out.Reasons = append(out.Reasons, "the job is "+j.State+", not following")
	}
	followers, err := s.store.Followers(ctx, j.ID)
	if err != nil {
		return nil, toStatus(err)
	}
	seen := map[string]bool{}
	for _, f := range followers {
		t := &orchestratorv1.TableLag{Table: f.Table, Position: f.Position, LagRows: f.LagRows, LagSeconds: f.LagSeconds,
			Upserts: f.Upserts, Deletes: f.Deletes, LastAppliedAt: ts(f.Applied), LastCheckedAt: ts(f.Checked), CommitDelaySeconds: f.CommitDelaySeconds, KeptValues: f.KeptValues}
		seen[t.Table] = true
		switch {
		case f.State == jobstore.StateFollowing && f.ErrText != "":
			out.Reasons = append(out.Reasons, fmt.Sprintf("table %s: the follower stopped: %s", t.Table, f.ErrText))
		case f.State == jobstore.StateFollowing && f.Polled == nil:
			out.Reasons = append(out.Reasons, fmt.Sprintf("table %s: no follower has read its source yet", t.Table))
		case t.LagRows > req.GetMaxLagRows():
			out.Reasons = append(out.Reasons, fmt.Sprintf("table %s: %d rows behind the source (at most %d)", t.Table, t.LagRows, req.GetMaxLagRows()))
		case t.LagSeconds > maxSeconds:
			out.Reasons = append(out.Reasons, fmt.Sprintf("table %s: %.1f s behind the source (at most %.1f)", t.Table, t.LagSeconds, maxSeconds))
		}
		out.Tables = append(out.Tables, t)
	}
	if j.State == jobstore.StateFollowing {
		for _, i := range jobspec.SyncTables(j.Spec) {
			if name := j.Spec.Tables[i].GetName(); !seen[name] {
				out.Reasons = append(out.Reasons, fmt.Sprintf("table %s: no follower yet", name))
			}
		}
	}
	rec, err := s.store.Reconciliation(ctx, j.ID)
	if err != nil {
		return nil, toStatus(err)
	}
	out.Reconciled = rec.GetOk()
	switch {
	case rec == nil:
		out.Reasons = append(out.Reasons, "no reconciliation has run (run Reconcile once lag is near zero)")
	case !rec.GetOk():
		var bad []string
		for _, t := range rec.GetTables() {
			if !t.GetOk() {
				bad = append(bad, t.GetTargetTable())
			}
		}
		out.Reasons = append(out.Reasons, "the last reconciliation failed: "+strings.Join(bad, ", "))
	}
	out.Ready = len(out.Reasons) == 0
	return out, nil
}

// StopFollowing ends a following job: its followers apply what is pending
// (lag 0, and one more key check), then the job succeeds. It waits for
// that, at most stopWait or the call's deadline.
func (s *Service) StopFollowing(ctx context.Context, req *orchestratorv1.StopFollowingRequest) (*orchestratorv1.StopFollowingResponse, error) {
	j, err := s.store.GetJob(ctx, req.GetId())
	if err != nil {
		return nil, toStatus(err)
	}
	ok, err := s.store.RequestStop(ctx, j.ID)
	if err != nil {
		return nil, toStatus(err)
	}
	if !ok {
		return nil, toStatus(fmt.Errorf("%w: job %s is %s, only a following job can stop following", ErrJobState, j.ID, j.State))
	}
	slog.Info("stop following requested", "job", j.ID)
	ctx, cancel := context.WithTimeout(ctx, stopWait)
	defer cancel()
	for {
		job, err := s.getJob(ctx, j.ID)
		if err != nil {
			return nil, toStatus(err)
		}
		if job.GetState() != orchestratorv1.JobState_JOB_STATE_FOLLOWING {
			return &orchestratorv1.StopFollowingResponse{Job: job}, nil
		}
		select {
		case <-ctx.Done():
			return nil, toStatus(fmt.Errorf("%w: job %s: the followers did not drain within %s; it stops when they do", ErrStage, j.ID, stopWait))
		case <-time.After(s.cfg.Poll):
		}
	}
}
