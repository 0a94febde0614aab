package orchestrate

import (
	"context"
	"errors"
	"fmt"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/orchestrator/jobspec"
	"github.com/cutover/cutover/services/orchestrator/jobstore"
	"github.com/cutover/cutover/services/orchestrator/stages"
)

// A re-drive is a job that reads only the rows an earlier job quarantined
// (by their source references, per table spec name), typically with a
// fixed spec; as they load, the earlier job's entries are marked resolved
// by it. Its own accounting is the usual one over the rows it read.

// maxRedriveRows bounds a re-drive: the references travel with every read.
const maxRedriveRows = 100000

// redriveRefs returns, per table spec of spec, the unresolved quarantined
// references of job oldID.
func (s *Service) redriveRefs(ctx context.Context, oldID string, spec *commonv1.JobSpec) (map[string][]string, error) {
	old, err := s.store.GetJob(ctx, oldID)
	if errors.Is(err, ErrJobNotFound) {
		return nil, jobspec.Invalid("redrive_of", "no job %q", oldID)
	}
	if err != nil {
		return nil, err
	}
	if !terminal(jobstore.JobState(old.State)) {
		return nil, fmt.Errorf("%w: redrive_of: job %s is %s; re-drive a job that has ended", ErrJobState, oldID, old.State)
	}
	target := s.checker.Target(spec)
	if s.checker.Target(old.Spec).GetDsn() != target.GetDsn() {
		return nil, jobspec.Invalid("redrive_of", "job %s loaded into another target; a re-drive loads where its quarantine is", oldID)
	}
	refs := map[string][]string{}
	total := 0
	for _, t := range spec.GetTables() {
		token := ""
		for {
			page, err := s.cfg.Clients.Loader.ListQuarantine(ctx, &loaderv1.ListQuarantineRequest{
				Target: target, JobId: oldID, Table: t.GetName(), PageSize: 1000, PageToken: token})
			if err != nil {
				return nil, stages.Classify("loader", err)
			}
			seen := map[string]bool{}
			for _, r := range page.GetRows() {
				if !seen[r.GetSourceRef()] {
					seen[r.GetSourceRef()] = true
					refs[t.GetName()] = append(refs[t.GetName()], r.GetSourceRef())
					total++
				}
			}
			if total > maxRedriveRows {
				return nil, jobspec.Invalid("redrive_of", "job %s has more than %d quarantined rows to re-drive; fix the source or split the job", oldID, maxRedriveRows)
			}
			if token = page.GetNextPageToken(); token == "" {
				break
			}
		}
	}
	if total == 0 {
		return nil, jobspec.Invalid("redrive_of", "job %s has no unresolved quarantined rows in the tables of this spec", oldID)
	}
	return refs, nil
}

// ListQuarantine lists a job's quarantined rows from its target.
func (s *Service) ListQuarantine(ctx context.Context, req *orchestratorv1.ListQuarantineRequest) (*orchestratorv1.ListQuarantineResponse, error) {
	j, err := s.store.GetJob(ctx, req.GetId())
	if err != nil {
		return nil, toStatus(err)
	}
	res, err := s.cfg.Clients.Loader.ListQuarantine(ctx, &loaderv1.ListQuarantineRequest{
		Target: s.checker.Target(j.Spec), JobId: j.ID, Table: req.GetTable(), Rule: req.GetRule(),
		PageSize: req.GetPageSize(), PageToken: req.GetPageToken(), IncludeResolved: req.GetIncludeResolved(),
	})
	if err != nil {
		return nil, toStatus(stages.Classify("loader", err))
	}
	out := &orchestratorv1.ListQuarantineResponse{NextPageToken: res.GetNextPageToken(), Total: res.GetTotal()}
	for _, r := range res.GetRows() {
		out.Rows = append(out.Rows, &orchestratorv1.QuarantinedRow{Table: r.GetTable(), System: r.GetSystem(), Source: r.GetSource(),
			SourceRef: r.GetSourceRef(), Stage: r.GetStage(), Rule: r.GetRule(), Column: r.GetColumn(), Reason: r.GetReason(),
			Raw: r.GetRaw(), ResolvedBy: r.GetResolvedBy()})
	}
	return out, nil
}
