package jobspec

import "errors"

// Errors of a spec, mapped to gRPC codes at the orchestrator's edge.
var (
	// ErrInvalidSpec: the job spec is wrong; the message names the field.
	ErrInvalidSpec = errors.New("invalid job spec")
	// ErrTargetMismatch: the target cannot take the data as specified.
	ErrTargetMismatch = errors.New("target cannot take the data")
	// ErrSourceRefused: the source cannot be read as specified (a table
	// without the key its reads need, a view, a missing privilege); the
	// message names the field. Like ErrTargetMismatch it is
	// FailedPrecondition: the spec may be right, the database is not ready.
	ErrSourceRefused = errors.New("source cannot be read as specified")
)
