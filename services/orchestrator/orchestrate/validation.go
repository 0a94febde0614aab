package orchestrate

import (
	"context"

	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/orchestrator/validation"
)

// validationServer serves ValidationService, the checks CI calls: spec
// checks and dry runs from package validation, Reconcile from the job
// store. Errors become statuses here, at the edge.
type validationServer struct {
	orchestratorv1.UnimplementedValidationServiceServer
	s *Service
	v *validation.Server
}

// ValidateSpec checks a spec against the live schemas and lists every
// problem.
func (x *validationServer) ValidateSpec(ctx context.Context, req *orchestratorv1.ValidateSpecRequest) (*orchestratorv1.ValidateSpecResponse, error) {
	resp, err := x.v.ValidateSpec(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
}

// DryRun checks the spec and runs rows through the stages into nothing.
func (x *validationServer) DryRun(ctx context.Context, req *orchestratorv1.DryRunRequest) (*orchestratorv1.DryRunResponse, error) {
	resp, err := x.v.DryRun(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
}
