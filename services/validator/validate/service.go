// Package validate applies a job's rules to transformed batches: a row that
// fails a rule gets a Reject (it is quarantined later); values never change.
package validate

import (
	"context"
	"fmt"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	transformerv1 "github.com/cutover/cutover/gen/cutover/transformer/v1"
	validatorv1 "github.com/cutover/cutover/gen/cutover/validator/v1"
	"github.com/cutover/cutover/services/kit/server"
	"github.com/cutover/cutover/services/kit/stage"
	"google.golang.org/grpc"
)

// Service implements validatorv1.ValidatorServiceServer. It is stateless:
// every stream carries its own rules.
type Service struct {
	validatorv1.UnimplementedValidatorServiceServer
	up server.Upstreams // transformers it pulls from
}

// New returns the validator service.
func New() *Service { return &Service{} }

// Register adds the service to a gRPC server.
func (s *Service) Register(g *grpc.Server) { validatorv1.RegisterValidatorServiceServer(g, s) }

// Close closes the connections to upstream transformers.
func (s *Service) Close() error { return s.up.Close() }

// CheckRules implements the RPC.
func (s *Service) CheckRules(_ context.Context, req *validatorv1.CheckRulesRequest) (*validatorv1.CheckRulesResponse, error) {
	if err := CheckRules(req); err != nil {
		return nil, toStatus(err)
	}
	return &validatorv1.CheckRulesResponse{}, nil
}

// Validate reads the rules, then answers each batch in order.
func (s *Service) Validate(stream validatorv1.ValidatorService_ValidateServer) error {
	return toStatus(stage.Serve(stream, stage.Stream[validatorv1.ValidateRequest, validatorv1.ValidateResponse, validatorv1.ValidateConfig]{
		Name:   "validator",
		Config: (*validatorv1.ValidateRequest).GetConfig,
		Batch:  (*validatorv1.ValidateRequest).GetBatch,
		Compile: func(cfg *validatorv1.ValidateConfig) (stage.Func, error) {
			c, err := Compile(cfg.GetRules())
			if err != nil {
				return nil, err
			}
			return c.Apply, nil
		},
		Reply: func(b *commonv1.Batch) *validatorv1.ValidateResponse { return &validatorv1.ValidateResponse{Batch: b} },
	}))
}

// Pull validates the batches it pulls from an upstream transformer.
func (s *Service) Pull(req *validatorv1.PullRequest, stream validatorv1.ValidatorService_PullServer) error {
	c, err := Compile(req.GetConfig().GetRules())
	if err != nil {
		return toStatus(fmt.Errorf("config: %w", err))
	}
	cc, err := s.up.Conn(req.GetUpstream())
	if err != nil {
		return toStatus(fmt.Errorf("%w: upstream: %v", ErrInvalidRule, err))
	}
	ctx := stream.Context()
	up, err := transformerv1.NewTransformerServiceClient(cc).Pull(ctx, req.GetTransform())
	if err != nil {
		return toStatus(&stage.UpstreamError{Stage: "transformer", Err: err})
	}
	recv := func() (*commonv1.Batch, error) {
		r, err := up.Recv()
		return r.GetBatch(), err
	}
	return toStatus(stage.Pull(ctx, "validator", "transformer", recv, c.Apply, func(b *commonv1.Batch) error {
		return stream.Send(&validatorv1.PullResponse{Batch: b})
	}))
}

// UseDialOptions takes the process's credentials for calls upstream.
func (s *Service) UseDialOptions(opts ...grpc.DialOption) { s.up.Options = opts }
