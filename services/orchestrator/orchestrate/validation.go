package orchestrate

import (
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
)

// validationServer serves ValidationService: the checks CI calls. It shares
// the orchestrator's clients and control store.
type validationServer struct {
	orchestratorv1.UnimplementedValidationServiceServer
	s *Service
}
