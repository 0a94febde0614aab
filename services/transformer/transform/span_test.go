package transform

import (
	"context"
	"io"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	transformerv1 "github.com/cutover/cutover/gen/cutover/transformer/v1"
	"github.com/cutover/cutover/services/kit/telemetry"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func TestBatchSpanIsChildOfBatchSpan(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(prev); _ = tp.Shutdown(context.Background()) })

	ctx, parent := tp.Tracer("test").Start(context.Background(), "batch")
	b := &commonv1.Batch{JobId: "j", NumRows: 2, Columns: []*commonv1.Column{textCol("v", sp("1"), sp("secret-value"))}}
	telemetry.InjectBatch(ctx, b)
	parent.End()

	// Through the real stream: the span is made where every batch goes.
	stream, err := startServer(t).Transform(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cfg := &transformerv1.TransformConfig{Columns: []*commonv1.ColumnMapping{{Target: "n", Source: "v", Type: tInt}}}
	for _, req := range []*transformerv1.TransformRequest{
		{Msg: &transformerv1.TransformRequest_Config{Config: cfg}},
		{Msg: &transformerv1.TransformRequest_Batch{Batch: b}},
	} {
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("stream end: %v", err)
	}
	var found bool
	for _, s := range rec.Ended() {
		if s.Name() != "transformer.batch" {
			continue
		}
		found = true
		if s.Parent().SpanID() != parent.SpanContext().SpanID() || s.SpanContext().TraceID() != parent.SpanContext().TraceID() {
			t.Errorf("span parent = %v, want the batch span %v", s.Parent().SpanID(), parent.SpanContext().SpanID())
		}
		attrs := map[string]any{}
		for _, kv := range s.Attributes() {
			attrs[string(kv.Key)] = kv.Value.AsInterface()
			if v, ok := kv.Value.AsInterface().(string); ok && v == "secret-value" {
				t.Errorf("row value leaked into attribute %s", kv.Key)
			}
		}
		if attrs["cutover.rows_out"] != int64(1) || attrs["cutover.rows_rejected"] != int64(1) || attrs["cutover.job_id"] != "j" {
			t.Errorf("attributes = %v", attrs)
		}
	}
	if !found {
		t.Fatal("no transformer.batch span")
	}
}
