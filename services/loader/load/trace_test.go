package load

import (
	"context"
	"testing"

	"github.com/cutover/cutover/services/kit/telemetry"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func TestBatchSpanIsChildOfBatchSpan(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prev, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(telemetry.Propagator())
	t.Cleanup(func() {
		otel.SetTracerProvider(prev)
		otel.SetTextMapPropagator(prevProp)
		_ = tp.Shutdown(context.Background())
	})

	e := newEnv(t, itemsDDL)
	ctx, parent := tp.Tracer("test").Start(context.Background(), "batch")
	b := itemsBatch(1, []any{1, 2}, []any{"a", "b"}, []any{1, 2})
	b.JobId, b.PartitionId = "job-t", "p0"
	b.Rejects = append(b.Rejects, rejectRow(1))
	telemetry.InjectBatch(ctx, b)
	parent.End()
	if _, err := e.load(t, e.config("items", "job-t", "p0"), b, b); err != nil {
		t.Fatal(err)
	}
	var spans []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == "loader.batch" {
			spans = append(spans, s)
		}
	}
	if len(spans) != 2 {
		t.Fatalf("%d loader.batch spans, want 2", len(spans))
	}
	for i, s := range spans {
		if s.Parent().SpanID() != parent.SpanContext().SpanID() || s.SpanContext().TraceID() != parent.SpanContext().TraceID() {
			t.Fatalf("span %d is not a child of the batch span", i)
		}
		attrs := map[attribute.Key]attribute.Value{}
		for _, kv := range s.Attributes() {
			attrs[kv.Key] = kv.Value
		}
		skipped := i == 1
		if attrs["cutover.rows_loaded"].AsInt64() != 1 || attrs["cutover.rows_quarantined"].AsInt64() != 1 ||
			attrs["cutover.skipped"].AsBool() != skipped || attrs["cutover.job_id"].AsString() != "job-t" {
			t.Fatalf("span %d attributes %v", i, s.Attributes())
		}
		for k, v := range attrs {
			if v.Type() == attribute.STRING && (v.AsString() == e.dsn || v.AsString() == "a") {
				t.Fatalf("span attribute %s carries data or a DSN", k)
			}
		}
	}
}
