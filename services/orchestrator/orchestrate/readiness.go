package orchestrate

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
)

// stopWait bounds how long StopFollowing waits for the last drain.
const stopWait = 5 * time.Minute

// GetReadiness says whether it is safe to switch systems: every followed
// table caught up (lag within the limits) and the last reconciliation
// passed.
func (s *Service) GetReadiness(ctx context.Context, req *orchestratorv1.GetReadinessRequest) (*orchestratorv1.GetReadinessResponse, error) {
	if req.GetMaxLagRows() < 0 || req.GetMaxLagSeconds() < 0 {
		return nil, toStatus(invalid("max_lag_rows", "limits must not be negative"))
	}
	maxSeconds := req.GetMaxLagSeconds()
	if maxSeconds == 0 {
		maxSeconds = defaultReadyLagSeconds
	}
	j, err := s.store.getJob(ctx, req.GetId())
	if err != nil {
		return nil, toStatus(err)
	}
	out := &orchestratorv1.GetReadinessResponse{JobId: j.id, State: jobState(j.state)}
	if len(syncTables(j.spec)) == 0 {
		out.Reasons = append(out.Reasons, "the job follows no table (no table has a sync spec)")
	}
	switch j.state {
	case stateFollowing:
	case stateRunning, statePending:
		out.Reasons = append(out.Reasons, "the full load is still running")
	default:
		out.Reasons = append(out.Reasons, "the job is "+j.state+", not following")
	}
	rows, err := s.store.pool.Query(ctx, `SELECT table_name, position, lag_rows, lag_seconds, upserts, deletes, polled_at, applied_at, checked_at, state
		FROM cutover_control.partitions WHERE job_id = $1 AND id LIKE 'sync:%' ORDER BY table_index`, j.id)
	if err != nil {
		return nil, toStatus(fmt.Errorf("followers of %s: %w", j.id, err))
	}
	defer rows.Close()
	seen := map[string]bool{}
	for rows.Next() {
		t := &orchestratorv1.TableLag{}
		var polled, applied, checked *time.Time
		var state string
		if err := rows.Scan(&t.Table, &t.Position, &t.LagRows, &t.LagSeconds, &t.Upserts, &t.Deletes, &polled, &applied, &checked, &state); err != nil {
			return nil, toStatus(fmt.Errorf("followers of %s: %w", j.id, err))
		}
		t.LastAppliedAt, t.LastCheckedAt = ts(applied), ts(checked)
		seen[t.Table] = true
		switch {
		case state == stateFollowing && polled == nil:
			out.Reasons = append(out.Reasons, fmt.Sprintf("table %s: no follower has read its source yet", t.Table))
		case t.LagRows > req.GetMaxLagRows():
			out.Reasons = append(out.Reasons, fmt.Sprintf("table %s: %d rows behind the source (at most %d)", t.Table, t.LagRows, req.GetMaxLagRows()))
		case t.LagSeconds > maxSeconds:
			out.Reasons = append(out.Reasons, fmt.Sprintf("table %s: %.1f s behind the source (at most %.1f)", t.Table, t.LagSeconds, maxSeconds))
		}
		out.Tables = append(out.Tables, t)
	}
	if err := rows.Err(); err != nil {
		return nil, toStatus(fmt.Errorf("followers of %s: %w", j.id, err))
	}
	if j.state == stateFollowing {
		for _, i := range syncTables(j.spec) {
			if name := j.spec.Tables[i].GetName(); !seen[name] {
				out.Reasons = append(out.Reasons, fmt.Sprintf("table %s: no follower yet", name))
			}
		}
	}
	rec, err := s.store.reconciliation(ctx, j.id)
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
	j, err := s.store.getJob(ctx, req.GetId())
	if err != nil {
		return nil, toStatus(err)
	}
	ok, err := s.store.requestStop(ctx, j.id)
	if err != nil {
		return nil, toStatus(err)
	}
	if !ok {
		return nil, toStatus(fmt.Errorf("%w: job %s is %s, only a following job can stop following", ErrJobState, j.id, j.state))
	}
	slog.Info("stop following requested", "job", j.id)
	s.wakeFollowers()
	ctx, cancel := context.WithTimeout(ctx, stopWait)
	defer cancel()
	for {
		job, err := s.getJob(ctx, j.id)
		if err != nil {
			return nil, toStatus(err)
		}
		if job.GetState() != orchestratorv1.JobState_JOB_STATE_FOLLOWING {
			return &orchestratorv1.StopFollowingResponse{Job: job}, nil
		}
		select {
		case <-ctx.Done():
			return nil, toStatus(fmt.Errorf("%w: job %s: the followers did not drain within %s; it stops when they do", ErrStage, j.id, stopWait))
		case <-time.After(s.cfg.Poll):
		}
	}
}
