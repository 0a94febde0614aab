package extract

import (
	"context"
	"time"

	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	"github.com/cutover/cutover/services/kit/metrics"
	"github.com/cutover/cutover/services/kit/stage"
	"github.com/cutover/cutover/services/kit/telemetry"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// StreamBatches reads a partition batch after batch, as ReadBatch would be
// called with each batch's cursor, and streams them; gRPC flow control holds
// it back when downstream is slower. Each batch gets its own span, under the
// partition's span when the request carries its trace context: the batch's
// work in every later stage hangs under it.
func (s *Service) StreamBatches(req *extractorv1.StreamBatchesRequest, stream grpc.ServerStreamingServer[extractorv1.StreamBatchesResponse]) error {
	ctx := stream.Context()
	parent := ctx
	if tc := req.GetTraceContext(); len(tc) > 0 {
		sc := trace.SpanContextFromContext(telemetry.Propagator().Extract(ctx, propagation.MapCarrier(tc)))
		if sc.IsValid() {
			parent = trace.ContextWithSpanContext(ctx, sc)
		}
	}
	tracer := otel.Tracer("cutover/extractor")
	r := proto.CloneOf(req.GetRead())
	read := s.readBatch
	pass, err := s.openPass(ctx, r)
	if err != nil {
		return toStatus(err)
	}
	if pass != nil {
		// One pass for the whole partition (a table without key).
		defer pass.close()
		read = func(ctx context.Context, r *extractorv1.ReadBatchRequest) (*extractorv1.ReadBatchResponse, error) {
			b, done, err := pass.next(ctx)
			if err != nil {
				return nil, err
			}
			return batchResponse(r, b, done), nil
		}
	}
	for {
		bctx, span := tracer.Start(parent, "batch", trace.WithAttributes(
			attribute.String("cutover.job_id", r.GetJobId()), attribute.String("cutover.partition", r.GetPartitionId()),
			attribute.Int64("cutover.seq", r.GetSeq()), attribute.String("cutover.table", r.GetTable())))
		start := time.Now()
		resp, err := s.tracedRead(bctx, r, read)
		if err != nil {
			span.SetStatus(otelcodes.Error, "read failed")
			span.End()
			return err
		}
		b := resp.GetBatch()
		if b.GetNumRows() == 0 {
			span.End()
			return nil
		}
		d := time.Since(start)
		stage.AddMicros(b, "extractor", d)
		metrics.Batch(bctx, "extractor", nil, b, d)
		b.TraceContext = map[string]string{}
		telemetry.Propagator().Inject(bctx, propagation.MapCarrier(b.TraceContext))
		span.SetAttributes(attribute.Int("cutover.rows_in", int(b.GetNumRows())))
		err = stream.Send(&extractorv1.StreamBatchesResponse{Batch: b, Done: resp.GetDone()})
		span.End()
		if err != nil || resp.GetDone() {
			return err
		}
		r.Cursor = b.GetLastKey()
		r.Seq++
	}
}
