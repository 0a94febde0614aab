// Package stage serves the stream protocol the transformer and validator
// share: the first message configures the stream, every later message is a
// batch answered in order, each under a span that hangs from the batch's
// own span (the batch carries its trace context across streams).
package stage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"github.com/cutover/cutover/services/kit/metrics"
	"github.com/cutover/cutover/services/kit/telemetry"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
)

// Protocol errors; each service maps them (to InvalidArgument) in its
// status.go with its own errors.
var (
	// ErrNoConfig is a stream whose first message is not the config.
	ErrNoConfig = errors.New("first message must be config")
	// ErrProtocol is a stream message out of place (a second config).
	ErrProtocol = errors.New("unexpected stream message")
)

// Func processes one batch of a configured stream.
type Func func(*commonv1.Batch) (*commonv1.Batch, error)

// Stream describes one stage's messages to Serve.
type Stream[Req, Resp, Cfg any] struct {
	// Name names the tracer ("cutover/<name>") and span ("<name>.batch").
	Name string
	// Config and Batch pick the parts of a request; nil when absent.
	Config func(*Req) *Cfg
	Batch  func(*Req) *commonv1.Batch
	// Compile turns the config into the per-batch function.
	Compile func(*Cfg) (Func, error)
	// Reply wraps a processed batch.
	Reply func(*commonv1.Batch) *Resp
}

// Serve runs the stream until the client closes it. Errors are returned
// unmapped: the service's status.go maps them.
func Serve[Req, Resp, Cfg any](stream grpc.BidiStreamingServer[Req, Resp], s Stream[Req, Resp, Cfg]) error {
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		return err
	}
	cfg := s.Config(first)
	if cfg == nil {
		return ErrNoConfig
	}
	apply, err := s.Compile(cfg)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	tracer := otel.Tracer("cutover/" + s.Name)
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		b := s.Batch(req)
		if b == nil {
			return fmt.Errorf("%w: config after the first message", ErrProtocol)
		}
		out, err := traced(stream.Context(), tracer, s.Name, b, apply)
		if err != nil {
			return fmt.Errorf("batch seq %d: %w", b.GetSeq(), err)
		}
		if err := stream.Send(s.Reply(out)); err != nil {
			return err
		}
	}
}

// traced applies f under a span that is a child of the batch's span, and
// records the batch in the stage's metrics.
func traced(ctx context.Context, tracer trace.Tracer, name string, b *commonv1.Batch, f Func) (*commonv1.Batch, error) {
	ctx = telemetry.BatchContext(ctx, b)
	_, span := tracer.Start(ctx, name+".batch", trace.WithAttributes(telemetry.BatchAttrs(b)...))
	defer span.End()
	metrics.InFlight(ctx, name, 1)
	defer metrics.InFlight(ctx, name, -1)
	in, start := metrics.Received(b), time.Now()
	out, err := f(b)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, name+" failed")
		return nil, err
	}
	metrics.Batch(ctx, name, in, out, time.Since(start))
	rej := batch.CountBits(batch.Rejected(out))
	span.SetAttributes(
		attribute.Int("cutover.rows_out", int(out.GetNumRows())-rej),
		attribute.Int("cutover.rows_rejected", rej),
	)
	return out, nil
}
