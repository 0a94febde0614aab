package telemetry

import (
	"context"
	"path/filepath"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// TestBatchCarriesItsSpan: a stage that only has the batch message hangs
// its span under the batch's span, and the file exporter keeps the links.
func TestBatchCarriesItsSpan(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spans.jsonl")
	exp, err := NewFileExporter(path)
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	tracer := tp.Tracer("test")

	ctx, batchSpan := tracer.Start(context.Background(), "batch")
	b := &commonv1.Batch{JobId: "j", Seq: 7, NumRows: 3}
	InjectBatch(ctx, b)
	if b.TraceContext["traceparent"] == "" {
		t.Fatalf("no traceparent in %v", b.TraceContext)
	}
	// Another service: a fresh context, only the message.
	sctx, stageSpan := tracer.Start(BatchContext(context.Background(), b), "stage.batch")
	stageSpan.SetAttributes(BatchAttrs(b)...)
	if TraceID(sctx) != TraceID(ctx) {
		t.Fatalf("trace ids differ: %s vs %s", TraceID(sctx), TraceID(ctx))
	}
	stageSpan.End()
	batchSpan.End()
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans, err := ReadSpans(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(spans) != 2 {
		t.Fatalf("got %d spans, want 2", len(spans))
	}
	stage, batch := spans[0], spans[1]
	if stage.Name != "stage.batch" || stage.ParentSpanID != batch.SpanID || stage.TraceID != batch.TraceID {
		t.Fatalf("stage span %+v is not under batch span %+v", stage, batch)
	}
	if stage.Attributes["cutover.seq"] != "7" || stage.Attributes["cutover.rows_in"] != "3" {
		t.Fatalf("attributes = %v", stage.Attributes)
	}
}

func TestBatchContextWithoutTraceIsUnchanged(t *testing.T) {
	ctx := context.WithValue(context.Background(), struct{}{}, 1)
	if got := BatchContext(ctx, &commonv1.Batch{}); got != ctx {
		t.Fatal("a batch without trace context changed the context")
	}
	if TraceID(ctx) != "" {
		t.Fatal("trace id without a span")
	}
}

func TestSetupWritesToTheNamedFile(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	path := filepath.Join(t.TempDir(), "t.jsonl")
	tel, err := Setup(context.Background(), "svc", path)
	if err != nil {
		t.Fatal(err)
	}
	if tel.Sink != path {
		t.Fatalf("sink = %s, want %s", tel.Sink, path)
	}
	_, sp := otel.Tracer("x").Start(context.Background(), "one")
	sp.SetAttributes(attribute.String("k", "v"))
	sp.End()
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans, err := ReadSpans(path)
	if err != nil || len(spans) != 1 || spans[0].Service != "svc" || spans[0].Attributes["k"] != "v" {
		t.Fatalf("spans = %+v, %v", spans, err)
	}
}
