package load

import "errors"

// Domain errors; status.go maps each to one gRPC code.
var (
	// ErrInvalidArgument: a bad request or batch; the message names the field.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrNotFound: the target table (or database object) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrTargetMismatch: the target refuses the batch's shape (unknown
	// column, missing privilege), so retrying cannot help.
	ErrTargetMismatch = errors.New("target does not match the batch")
	// ErrUnavailable: the target cannot be reached or dropped the
	// connection; nothing of the batch was committed and a retry may work.
	ErrUnavailable = errors.New("target unavailable")
	// ErrCountMismatch: PostgreSQL reported a different number of copied
	// rows than were sent; the batch is rolled back.
	ErrCountMismatch = errors.New("copied row count mismatch")
	// ErrFailedPrecondition: the request cannot be done in the target's
	// present state (e.g. a rollback of a table with no key and no backup).
	ErrFailedPrecondition = errors.New("failed precondition")
	// ErrClosed: the service was closed.
	ErrClosed = errors.New("loader closed")
)
