package reconcile

import (
	"errors"
	"fmt"

	"github.com/cutover/cutover/services/kit/stage"
)

// Domain errors of a reconciliation; the loader's toStatus maps each to one
// gRPC code. Database errors come classified by the loader (Target.Err),
// errors of the stages pulled from as stage.UpstreamError.
var (
	// ErrInvalidArgument: a bad request or spec; the message names the
	// field (InvalidArgument).
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrTargetMismatch: the target table is not what the job wrote, e.g.
	// it is gone (FailedPrecondition).
	ErrTargetMismatch = errors.New("target does not match the job")
	// ErrUpstream: a stage answered with a malformed or out-of-order
	// batch; retrying cannot help (Internal).
	ErrUpstream = stage.ErrBadBatch
)

// invalid is an ErrInvalidArgument naming the field.
func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidArgument, field, fmt.Sprintf(format, args...))
}
