package validate

import (
	"context"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
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
	b := &commonv1.Batch{JobId: "j", NumRows: 2, Columns: []*commonv1.Column{bytesCol("v", tText, sp("1"), sp("secret-value"))}}
	telemetry.InjectBatch(ctx, b)
	parent.End()

	p, err := Compile([]*commonv1.Rule{regex("v", `^\d+$`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.traced(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, s := range rec.Ended() {
		if s.Name() != "validator.batch" {
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
		t.Fatal("no validator.batch span")
	}
}
