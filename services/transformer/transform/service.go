// Package transform maps source batches onto the target schema: it leaves
// out the rows a filter matches, picks and renames columns, fills defaults,
// derives new identifiers and casts text into typed vectors.
// A value that cannot be cast becomes a Reject on its row, never an error.
package transform

import (
	"context"
	"fmt"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	transformerv1 "github.com/cutover/cutover/gen/cutover/transformer/v1"
	"github.com/cutover/cutover/services/kit/server"
	"github.com/cutover/cutover/services/kit/stage"
	"google.golang.org/grpc"
)

// Service implements transformerv1.TransformerServiceServer. It is
// stateless: every stream carries its own config.
type Service struct {
	transformerv1.UnimplementedTransformerServiceServer
	up server.Upstreams // extractors it pulls from
}

// New returns the transformer service.
func New() *Service { return &Service{} }

// Register adds the service to a gRPC server.
func (s *Service) Register(g *grpc.Server) { transformerv1.RegisterTransformerServiceServer(g, s) }

// Close closes the connections to upstream extractors.
func (s *Service) Close() error { return s.up.Close() }

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

// Pull transforms the batches it reads from upstream: a partition streamed
// by the extractor, or one batch given inline.
func (s *Service) Pull(req *transformerv1.PullRequest, stream transformerv1.TransformerService_PullServer) error {
	p, err := compile(req.GetConfig())
	if err != nil {
		return toStatus(fmt.Errorf("config: %w", err))
	}
	ctx := stream.Context()
	var recv stage.Recv
	switch src := req.GetSource().(type) {
	case *transformerv1.PullRequest_Read:
		cc, err := s.up.Conn(req.GetUpstream())
		if err != nil {
			return toStatus(fmt.Errorf("%w: upstream: %v", ErrInvalidMapping, err))
		}
		up, err := extractorv1.NewExtractorServiceClient(cc).StreamBatches(ctx, src.Read)
		if err != nil {
			return toStatus(&stage.UpstreamError{Stage: "extractor", Err: err})
		}
		recv = func() (*commonv1.Batch, error) {
			r, err := up.Recv()
			return r.GetBatch(), err
		}
	case *transformerv1.PullRequest_Batch:
		recv = stage.One(src.Batch)
	default:
		return toStatus(fmt.Errorf("%w: source: a read or a batch is required", ErrInvalidMapping))
	}
	return toStatus(stage.Pull(ctx, "transformer", "extractor", recv, p.apply, func(b *commonv1.Batch) error {
		return stream.Send(&transformerv1.PullResponse{Batch: b})
	}))
}

// UseDialOptions takes the process's credentials for calls upstream.
func (s *Service) UseDialOptions(opts ...grpc.DialOption) { s.up.Options = opts }
