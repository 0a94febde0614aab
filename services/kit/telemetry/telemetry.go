// Package telemetry sets OpenTelemetry up once per process: a tracer
// provider exporting by OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set and to a
// JSON-lines file otherwise, and W3C trace-context + baggage propagation.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TraceFileEnv names the JSON-lines span file used when OTLP is not set.
const TraceFileEnv = "CUTOVER_TRACE_FILE"

// DefaultTraceFile is where spans go when neither OTLP nor a file is set.
func DefaultTraceFile() string {
	return filepath.Join(os.TempDir(), "cutover", "traces.jsonl")
}

// Telemetry is the process's tracing setup.
type Telemetry struct {
	// Sink says where spans go: "otlp <endpoint>" or a file path.
	Sink     string
	provider *sdktrace.TracerProvider
}

// Setup installs the global tracer provider and propagators for service.
// traceFile overrides CUTOVER_TRACE_FILE; both empty uses DefaultTraceFile.
func Setup(ctx context.Context, service, traceFile string) (*Telemetry, error) {
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", service)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
		resource.WithTelemetrySDK(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("telemetry resource: %w", err)
	}
	var exp sdktrace.SpanExporter
	var sink string
	if ep := os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT"); ep != "" {
		// The exporter reads the OTEL_EXPORTER_OTLP_* variables itself.
		exp, err = otlptracegrpc.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("otlp exporter: %w", err)
		}
		sink = "otlp " + ep
	} else {
		if traceFile == "" {
			traceFile = os.Getenv(TraceFileEnv)
		}
		if traceFile == "" {
			traceFile = DefaultTraceFile()
		}
		fe, err := NewFileExporter(traceFile)
		if err != nil {
			return nil, err
		}
		exp, sink = fe, fe.Path()
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		sdktrace.WithBatcher(exp),
	)
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(Propagator())
	return &Telemetry{Sink: sink, provider: tp}, nil
}

// Shutdown flushes and stops the exporter.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	if t == nil || t.provider == nil {
		return nil
	}
	return t.provider.Shutdown(ctx)
}

// ForceFlush exports every ended span now.
func (t *Telemetry) ForceFlush(ctx context.Context) error {
	if t == nil || t.provider == nil {
		return nil
	}
	return t.provider.ForceFlush(ctx)
}

// Propagator is W3C trace-context plus baggage.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// InjectBatch stores the span context of ctx in the batch, so that each
// stage can hang its work under the batch's span whichever stream carries it.
func InjectBatch(ctx context.Context, b *commonv1.Batch) {
	if b.TraceContext == nil {
		b.TraceContext = map[string]string{}
	}
	Propagator().Inject(ctx, propagation.MapCarrier(b.TraceContext))
}

// BatchContext returns ctx with the batch's span context as parent.
func BatchContext(ctx context.Context, b *commonv1.Batch) context.Context {
	if len(b.GetTraceContext()) == 0 {
		return ctx
	}
	return Propagator().Extract(ctx, propagation.MapCarrier(b.GetTraceContext()))
}

// BatchAttrs are the span attributes of a batch: ids and counts, never data.
func BatchAttrs(b *commonv1.Batch) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String("cutover.job_id", b.GetJobId()),
		attribute.String("cutover.partition", b.GetPartitionId()),
		attribute.Int64("cutover.seq", b.GetSeq()),
		attribute.String("cutover.table", b.GetTable()),
		attribute.Int("cutover.rows_in", int(b.GetNumRows())),
	}
}

// TraceID returns the hex trace id of ctx's span, or "".
func TraceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.HasTraceID() {
		return ""
	}
	return sc.TraceID().String()
}
