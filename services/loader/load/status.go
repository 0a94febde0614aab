package load

import (
	"context"
	"errors"

	"github.com/cutover/cutover/services/kit/batch"
	"github.com/cutover/cutover/services/loader/reconcile"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// toStatus is the one place that turns loader errors into gRPC status codes.
// Messages are built by this package with DSNs redacted, so they are safe
// to return as they are.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(interface{ GRPCStatus() *status.Status }); ok {
		return err // already a status, e.g. from the stream itself
	}
	var fe *FencedError
	if errors.As(err, &fe) {
		return fe.status()
	}
	code := codes.Internal
	switch {
	case errors.Is(err, ErrInvalidArgument), errors.Is(err, reconcile.ErrInvalidArgument), errors.Is(err, batch.ErrMalformed):
		code = codes.InvalidArgument
	case errors.Is(err, ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, ErrTargetMismatch), errors.Is(err, reconcile.ErrTargetMismatch), errors.Is(err, ErrFailedPrecondition):
		code = codes.FailedPrecondition
	case errors.Is(err, ErrUnavailable), errors.Is(err, ErrClosed):
		code = codes.Unavailable
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	}
	return status.Error(code, err.Error())
}
