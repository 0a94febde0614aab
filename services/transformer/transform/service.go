// Package transform maps source batches onto the target schema: it picks
// and renames columns, fills defaults and casts text into typed vectors.
// A value that cannot be cast becomes a Reject on its row, never an error.
package transform

import (
	"context"
	"errors"
	"fmt"
	"io"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	transformerv1 "github.com/cutover/cutover/gen/cutover/transformer/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"github.com/cutover/cutover/services/kit/telemetry"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
)

// Service implements transformerv1.TransformerServiceServer. It is
// stateless: every stream carries its own config.
type Service struct {
	transformerv1.UnimplementedTransformerServiceServer
}

// New returns the transformer service.
func New() *Service { return &Service{} }

// Register adds the service to a gRPC server.
func (s *Service) Register(g *grpc.Server) { transformerv1.RegisterTransformerServiceServer(g, s) }

// Close releases nothing; the service holds no resources.
func (s *Service) Close() error { return nil }

// CheckMapping implements the RPC.
func (s *Service) CheckMapping(_ context.Context, req *transformerv1.CheckMappingRequest) (*transformerv1.CheckMappingResponse, error) {
	if err := CheckMapping(req); err != nil {
		return nil, toStatus(err)
	}
	return &transformerv1.CheckMappingResponse{}, nil
}

// Transform reads the config, then answers each batch in order.
func (s *Service) Transform(stream transformerv1.TransformerService_TransformServer) error {
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
	p, err := compile(first.GetConfig())
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
		out, err := p.traced(stream.Context(), b)
		if err != nil {
			return toStatus(fmt.Errorf("batch seq %d: %w", b.GetSeq(), err))
		}
		if err := stream.Send(&transformerv1.TransformResponse{Batch: out}); err != nil {
			return toStatus(err)
		}
	}
}

// traced applies the plan under a span that is a child of the batch's span.
func (p *plan) traced(ctx context.Context, b *commonv1.Batch) (*commonv1.Batch, error) {
	ctx = telemetry.BatchContext(ctx, b)
	_, span := otel.Tracer("cutover/transformer").Start(ctx, "transformer.batch", trace.WithAttributes(telemetry.BatchAttrs(b)...))
	defer span.End()
	out, err := p.apply(b)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "transform failed")
		return nil, err
	}
	rej := batch.CountBits(batch.Rejected(out))
	span.SetAttributes(
		attribute.Int("cutover.rows_out", int(out.GetNumRows())-rej),
		attribute.Int("cutover.rows_rejected", rej),
	)
	return out, nil
}
