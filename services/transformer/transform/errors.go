package transform

import "errors"

// Domain errors; status.go maps them to gRPC codes.
var (
	// ErrInvalidMapping is a column mapping that cannot work.
	ErrInvalidMapping = errors.New("invalid mapping")
	// ErrUnknownSourceColumn is a mapping source the batch or source lacks.
	ErrUnknownSourceColumn = errors.New("unknown source column")
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
