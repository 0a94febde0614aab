package orchestrate

import (
	"context"

	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	transformerv1 "github.com/cutover/cutover/gen/cutover/transformer/v1"
	validatorv1 "github.com/cutover/cutover/gen/cutover/validator/v1"
	"github.com/cutover/cutover/services/kit/telemetry"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/grpc"
)

// The hub relays each batch three times. Decoding every value vector only
// to encode it again cost more CPU than any stage (make bench), so batches
// cross the orchestrator as relay views (relay.proto): the header is
// decoded, the vectors pass through as bytes.

var bidi = &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}

func readBatchRelay(ctx context.Context, cc grpc.ClientConnInterface, req *extractorv1.ReadBatchRequest) (*orchestratorv1.RelayReadBatchResponse, error) {
	out := new(orchestratorv1.RelayReadBatchResponse)
	if err := cc.Invoke(ctx, extractorv1.ExtractorService_ReadBatch_FullMethodName, req, out); err != nil {
		return nil, err
	}
	return out, nil
}

// relayStream is one bidirectional stage stream carrying relay messages.
type relayStream struct{ grpc.ClientStream }

func openRelay(ctx context.Context, cc grpc.ClientConnInterface, method string) (relayStream, error) {
	s, err := cc.NewStream(ctx, bidi, method)
	return relayStream{s}, err
}

func (r relayStream) recvBatch() (*orchestratorv1.RelayBatch, error) {
	m := new(orchestratorv1.RelayBatchResponse)
	if err := r.RecvMsg(m); err != nil {
		return nil, err
	}
	return m.GetBatch(), nil
}

func transformConfig(c *transformerv1.TransformConfig) *orchestratorv1.RelayTransformRequest {
	return &orchestratorv1.RelayTransformRequest{Msg: &orchestratorv1.RelayTransformRequest_Config{Config: c}}
}

func transformBatch(b *orchestratorv1.RelayBatch) *orchestratorv1.RelayTransformRequest {
	return &orchestratorv1.RelayTransformRequest{Msg: &orchestratorv1.RelayTransformRequest_Batch{Batch: b}}
}

func validateConfig(c *validatorv1.ValidateConfig) *orchestratorv1.RelayValidateRequest {
	return &orchestratorv1.RelayValidateRequest{Msg: &orchestratorv1.RelayValidateRequest_Config{Config: c}}
}

func validateBatch(b *orchestratorv1.RelayBatch) *orchestratorv1.RelayValidateRequest {
	return &orchestratorv1.RelayValidateRequest{Msg: &orchestratorv1.RelayValidateRequest_Batch{Batch: b}}
}

func loadConfig(c *loaderv1.LoadConfig) *orchestratorv1.RelayLoadRequest {
	return &orchestratorv1.RelayLoadRequest{Msg: &orchestratorv1.RelayLoadRequest_Config{Config: c}}
}

func loadBatch(b *orchestratorv1.RelayBatch) *orchestratorv1.RelayLoadRequest {
	return &orchestratorv1.RelayLoadRequest{Msg: &orchestratorv1.RelayLoadRequest_Batch{Batch: b}}
}

// injectRelay stores the span context of ctx in the batch header.
func injectRelay(ctx context.Context, b *orchestratorv1.RelayBatch) {
	if b.TraceContext == nil {
		b.TraceContext = map[string]string{}
	}
	telemetry.Propagator().Inject(ctx, propagation.MapCarrier(b.TraceContext))
}
