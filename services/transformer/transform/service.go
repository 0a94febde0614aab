// Package transform maps source batches onto the target schema: it leaves
// out the rows a filter matches, picks and renames columns, fills defaults,
// derives new identifiers and casts text into typed vectors.
// A value that cannot be cast becomes a Reject on its row, never an error.
package transform

import (
	"context"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	transformerv1 "github.com/cutover/cutover/gen/cutover/transformer/v1"
	"github.com/cutover/cutover/services/kit/stage"
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
	return toStatus(stage.Serve(stream, stage.Stream[transformerv1.TransformRequest, transformerv1.TransformResponse, transformerv1.TransformConfig]{
		Name:   "transformer",
		Config: (*transformerv1.TransformRequest).GetConfig,
		Batch:  (*transformerv1.TransformRequest).GetBatch,
		Compile: func(cfg *transformerv1.TransformConfig) (stage.Func, error) {
			p, err := compile(cfg)
			if err != nil {
				return nil, err
			}
			return p.apply, nil
		},
		Reply: func(b *commonv1.Batch) *transformerv1.TransformResponse {
			return &transformerv1.TransformResponse{Batch: b}
		},
	}))
}
