package orchestrate

import (
	"context"

	"github.com/cutover/cutover/services/kit/auth"
	"github.com/cutover/cutover/services/orchestrator/jobstore"
)

// AuditEvent stores an event of the auth interceptor (kit/server.Auditor),
// so every mutating or refused call reaches the control schema.
func (s *Service) AuditEvent(ctx context.Context, ev auth.Event) {
	s.Audit(ctx, jobstore.AuditRecord{At: ev.At, Principal: ev.Principal, Role: string(ev.Role), Method: ev.Method,
		JobID: ev.JobID, Outcome: ev.Outcome, Peer: ev.Peer})
}
