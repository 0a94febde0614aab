package extract

import (
	"context"
	"errors"
	"fmt"
)

// Domain errors. Handlers wrap them with context naming the field or the
// source; status.go maps them to gRPC codes in one place.
var (
	// ErrInvalid is a bad spec or request; the message names the field.
	ErrInvalid = errors.New("invalid argument")
	// ErrNotFound is a missing table, sheet or database. A missing file is
	// refused like any path outside the file roots (files.go).
	ErrNotFound = errors.New("not found")
	// ErrPrecondition is a source that exists but cannot be read as asked
	// (no primary key, unreadable header, no permission).
	ErrPrecondition = errors.New("failed precondition")
	// ErrUnavailable is a source that cannot be reached right now.
	ErrUnavailable = errors.New("source unavailable")
)

// invalid builds an ErrInvalid whose message starts with the field at fault.
func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalid, field, fmt.Sprintf(format, args...))
}

// classified reports whether err already carries its code (a domain error
// or the caller's cancellation), so a driver-error mapper passes it through.
func classified(err error) bool {
	return errors.Is(err, ErrInvalid) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrPrecondition) ||
		errors.Is(err, ErrUnavailable) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
