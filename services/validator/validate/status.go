package validate

import (
	"context"
	"errors"

	"github.com/cutover/cutover/services/kit/batch"
	"github.com/cutover/cutover/services/kit/stage"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// toStatus is the one place domain errors become gRPC status codes.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err // already a status, e.g. from stream.Recv
	}
	switch {
	case errors.Is(err, ErrInvalidRule), errors.Is(err, ErrUnknownColumn),
		errors.Is(err, stage.ErrNoConfig), errors.Is(err, stage.ErrProtocol), errors.Is(err, batch.ErrMalformed):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}
