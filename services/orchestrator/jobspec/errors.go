package jobspec

import "errors"

// Errors of a spec, mapped to gRPC codes at the orchestrator's edge.
var (
	// ErrInvalidSpec: the job spec is wrong; the message names the field.
	ErrInvalidSpec = errors.New("invalid job spec")
	// ErrTargetMismatch: the target cannot take the data as specified.
	ErrTargetMismatch = errors.New("target cannot take the data")
)
