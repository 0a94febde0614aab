package orchestrate

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/orchestrator/jobstore"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// auditWait bounds the write of one audit entry.
const auditWait = 5 * time.Second

// Audit records one call in the audit log; the server's interceptor calls
// it. It never fails the call: an entry that cannot be written is logged.
// The write outlives the call's own cancellation (a caller that hung up is
// still audited).
func (s *Service) Audit(ctx context.Context, r jobstore.AuditRecord) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditWait)
	defer cancel()
	if err := s.store.AppendAudit(actx, r); err != nil {
		slog.Error("audit entry not recorded", "method", r.Method, "principal", r.Principal, "job", r.JobID, "outcome", r.Outcome, "err", err)
	}
}

// ListAuditEvents lists the audit log, newest first, a page at a time.
func (s *Service) ListAuditEvents(ctx context.Context, req *orchestratorv1.ListAuditEventsRequest) (*orchestratorv1.ListAuditEventsResponse, error) {
	f := jobstore.AuditFilter{JobID: req.GetJobId(), Principal: req.GetPrincipal(), PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken()}
	if req.GetSince() != nil {
		if err := req.GetSince().CheckValid(); err != nil {
			return nil, toStatus(fmt.Errorf("%w: since: %v", ErrInvalidArgument, err))
		}
		f.Since = req.GetSince().AsTime()
	}
	recs, next, err := s.store.ListAudit(ctx, f)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &orchestratorv1.ListAuditEventsResponse{NextPageToken: next}
	for _, r := range recs {
		out.Events = append(out.Events, &orchestratorv1.AuditEvent{
			Id: r.ID, At: timestamppb.New(r.At), Principal: r.Principal, Role: r.Role, Method: r.Method,
			JobId: r.JobID, Outcome: r.Outcome, Peer: r.Peer, Detail: r.Detail,
		})
	}
	return out, nil
}
