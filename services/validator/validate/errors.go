package validate

import "errors"

// Domain errors; status.go maps them to gRPC codes.
var (
	// ErrInvalidRule is a rule that cannot be applied.
	ErrInvalidRule = errors.New("invalid rule")
	// ErrUnknownColumn is a rule on a column the batch or mapping lacks.
	ErrUnknownColumn = errors.New("unknown column")
)

// fieldError names the spec field at fault; its message starts with the
// field path so that callers can point at the offending line of a spec.
type fieldError struct {
	field string
	msg   string
	kind  error
}

func (e *fieldError) Error() string { return e.field + ": " + e.msg }
func (e *fieldError) Unwrap() error { return e.kind }
