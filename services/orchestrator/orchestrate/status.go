package orchestrate

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// toStatus maps an orchestrator error to a gRPC status; it is the only place
// that decides codes, so REST callers see one consistent HTTP mapping.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok && !isDomain(err) {
		return err
	}
	code := codes.Internal
	switch {
	case errors.Is(err, ErrInvalidSpec), errors.Is(err, ErrInvalidArgument):
		code = codes.InvalidArgument
	case errors.Is(err, ErrTargetMismatch), errors.Is(err, ErrSourceRefused):
		code = codes.FailedPrecondition
	case errors.Is(err, ErrJobNotFound):
		code = codes.NotFound
	case errors.Is(err, ErrJobState), errors.Is(err, ErrSealed):
		code = codes.FailedPrecondition
	case errors.Is(err, ErrStage), controlStoreDown(err):
		code = codes.Unavailable
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	}
	return status.Error(code, err.Error())
}

// controlStoreDown reports an error of the control database's connection
// (a restart, a dropped connection): the call may be retried.
func controlStoreDown(err error) bool {
	var pgErr *pgconn.PgError
	var connErr *pgconn.ConnectError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), errors.As(err, &connErr):
		return true
	case errors.As(err, &pgErr):
		// 57P01..03: shutdown; 08: connection exceptions.
		return strings.HasPrefix(pgErr.Code, "57P") || strings.HasPrefix(pgErr.Code, "08")
	}
	var netErr net.Error
	return errors.As(err, &netErr)
}

func isDomain(err error) bool {
	for _, d := range []error{ErrInvalidSpec, ErrInvalidArgument, ErrTargetMismatch, ErrSourceRefused, ErrJobNotFound, ErrJobState, ErrUnbalanced, ErrStage, ErrStageFatal, ErrCancelled, ErrSealed} {
		if errors.Is(err, d) {
			return true
		}
	}
	return false
}

// retryable says whether a failed partition should be tried again: stage
// outages are, refusals and broken accounting are not.
func retryable(err error) bool {
	if errors.Is(err, ErrUnbalanced) || errors.Is(err, ErrStageFatal) || errors.Is(err, ErrCancelled) || errors.Is(err, ErrInvalidSpec) || leaseLost(err) {
		return false
	}
	return true
}
