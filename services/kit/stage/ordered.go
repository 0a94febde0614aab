package stage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrBadBatch: a stage answered with a malformed batch or one out of
// sequence; asking again gets the same answer.
var ErrBadBatch = errors.New("upstream broke the stream")

// Open opens a stream to the stage name, cancelling it (through cancel)
// when the stage does not answer within wait: WaitForReady would wait
// forever. A failure is an UpstreamError naming the stage, Unavailable when
// the stage never answered.
func Open[T any](cancel context.CancelFunc, name string, wait time.Duration, open func() (T, error)) (T, error) {
	timer := time.AfterFunc(wait, cancel)
	s, err := open()
	if !timer.Stop() {
		var zero T
		return zero, &UpstreamError{Stage: name, Err: status.Errorf(codes.Unavailable, "not ready within %s", wait)}
	}
	if err != nil {
		return s, &UpstreamError{Stage: name, Err: err}
	}
	return s, nil
}

// InOrder hands f each batch recv yields until io.EOF, each well formed
// (batch.Check) and numbered from first without a gap. A failure of recv
// comes back as an UpstreamError naming the stage, a bad batch wrapping
// ErrBadBatch, an error of f as it is.
func InOrder(name string, first int64, recv Recv, f func(*commonv1.Batch) error) error {
	for seq := first; ; seq++ {
		b, err := recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return &UpstreamError{Stage: name, Err: err}
		}
		if err := batch.Check(b); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrBadBatch, name, err)
		}
		if b.GetSeq() != seq {
			return fmt.Errorf("%w: %s: batch %d came back as seq %d", ErrBadBatch, name, seq, b.GetSeq())
		}
		if err := f(b); err != nil {
			return err
		}
	}
}

// Refused says whether a stage's status code refuses the work, so that a
// retry cannot help, rather than reporting a failure a retry may fix.
// ResourceExhausted is a message over the size limit: the same batch would
// be too large again.
func Refused(c codes.Code) bool {
	switch c {
	case codes.InvalidArgument, codes.FailedPrecondition, codes.NotFound, codes.OutOfRange, codes.PermissionDenied, codes.Unimplemented,
		codes.ResourceExhausted:
		return true
	}
	return false
}
