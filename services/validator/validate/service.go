// Package validate applies a job's rules to transformed batches: a row that
// fails a rule gets a Reject (it is quarantined later); values never change.
package validate

import (
	"context"
	"errors"
	"fmt"
	"io"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	validatorv1 "github.com/cutover/cutover/gen/cutover/validator/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"github.com/cutover/cutover/services/kit/telemetry"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
)

// Service implements validatorv1.ValidatorServiceServer. It is stateless:
// every stream carries its own rules.
type Service struct {
	validatorv1.UnimplementedValidatorServiceServer
}

// New returns the validator service.
func New() *Service { return &Service{} }

// Register adds the service to a gRPC server.
func (s *Service) Register(g *grpc.Server) { validatorv1.RegisterValidatorServiceServer(g, s) }

// Close releases nothing; the service holds no resources.
func (s *Service) Close() error { return nil }

// CheckRules implements the RPC.
func (s *Service) CheckRules(_ context.Context, req *validatorv1.CheckRulesRequest) (*validatorv1.CheckRulesResponse, error) {
	if err := CheckRules(req); err != nil {
		return nil, toStatus(err)
	}
	return &validatorv1.CheckRulesResponse{}, nil
}

// Validate reads the rules, then answers each batch in order.
func (s *Service) Validate(stream validatorv1.ValidatorService_ValidateServer) error {
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		return toStatus(err)
	}
	if first.GetConfig() == nil {
		return toStatus(ErrNoConfig)
	}
	c, err := Compile(first.GetConfig().GetRules())
	if err != nil {
		return toStatus(fmt.Errorf("config: %w", err))
	}
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return toStatus(err)
		}
		b := req.GetBatch()
		if b == nil {
			return toStatus(fmt.Errorf("%w: config after the first message", ErrProtocol))
		}
		out, err := c.traced(stream.Context(), b)
		if err != nil {
			return toStatus(fmt.Errorf("batch seq %d: %w", b.GetSeq(), err))
		}
		if err := stream.Send(&validatorv1.ValidateResponse{Batch: out}); err != nil {
			return toStatus(err)
		}
	}
}

// traced applies the rules under a span that is a child of the batch's span.
func (c *Compiled) traced(ctx context.Context, b *commonv1.Batch) (*commonv1.Batch, error) {
	ctx = telemetry.BatchContext(ctx, b)
	_, span := otel.Tracer("cutover/validator").Start(ctx, "validator.batch", trace.WithAttributes(telemetry.BatchAttrs(b)...))
	defer span.End()
	out, err := c.Apply(b)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "validate failed")
		return nil, err
	}
	rej := batch.CountBits(batch.Rejected(out))
	span.SetAttributes(
		attribute.Int("cutover.rows_out", int(out.GetNumRows())-rej),
		attribute.Int("cutover.rows_rejected", rej),
	)
	return out, nil
}
