package stage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"go.opentelemetry.io/otel"
	"google.golang.org/grpc/status"
)

// Recv yields the next batch from upstream; io.EOF ends the stream cleanly.
type Recv func() (*commonv1.Batch, error)

// Send hands one processed batch downstream.
type Send func(*commonv1.Batch) error

// UpstreamError is an error that came from the upstream stream. It keeps
// the upstream's status code and prefixes the upstream's name, so the
// orchestrator at the end of the chain reads which stage failed and whether
// the failure is worth a retry.
type UpstreamError struct {
	Stage string
	Err   error
}

func (e *UpstreamError) Error() string { return e.Stage + ": " + status.Convert(e.Err).Message() }
func (e *UpstreamError) Unwrap() error { return e.Err }

// GRPCStatus is the upstream's status with the stage named in its message.
func (e *UpstreamError) GRPCStatus() *status.Status {
	return status.New(status.Code(e.Err), e.Error())
}

// prefetch is how many batches a stage holds from upstream while it works
// on one: it overlaps decoding the next batch with processing this one;
// beyond that, gRPC flow control holds upstream back.
const prefetch = 1

// Pull is one link of the data plane: batches from upstream, each processed
// by f under a span that hangs from the batch's own span, timed into the
// batch's stage_micros, and sent downstream in order. It returns nil only
// when upstream ended cleanly; an upstream error comes back wrapped in
// UpstreamError.
func Pull(ctx context.Context, name, upstream string, recv Recv, f Func, send Send) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := Prefetch(ctx, upstream, recv)
	tracer := otel.Tracer("cutover/" + name)
	for {
		b, err := next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		start := time.Now()
		out, err := traced(ctx, tracer, name, b, f)
		if err != nil {
			return fmt.Errorf("batch seq %d: %w", b.GetSeq(), err)
		}
		AddMicros(out, name, time.Since(start))
		if err := send(out); err != nil {
			return err
		}
	}
}

// Prefetch receives from upstream in the background, holding at most
// prefetch batches, until the end of the stream, an error or the end of
// ctx. Errors other than io.EOF come back as UpstreamError.
func Prefetch(ctx context.Context, upstream string, recv Recv) Recv {
	type item struct {
		b   *commonv1.Batch
		err error
	}
	in := make(chan item, prefetch)
	go func() {
		defer close(in)
		for {
			b, err := recv()
			if err != nil && !errors.Is(err, io.EOF) {
				err = &UpstreamError{Stage: upstream, Err: err}
			}
			select {
			case in <- item{b, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return func() (*commonv1.Batch, error) {
		if err := ctx.Err(); err != nil { // a batch may still be queued: the end wins
			return nil, err
		}
		select {
		case it, ok := <-in:
			if !ok { // after the end or an error already returned
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				return nil, io.EOF
			}
			return it.b, it.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// AddMicros adds d to the batch's time in the named stage.
func AddMicros(b *commonv1.Batch, name string, d time.Duration) {
	if b.StageMicros == nil {
		b.StageMicros = map[string]int64{}
	}
	b.StageMicros[name] += d.Microseconds()
}

// One yields b, then the end of the stream.
func One(b *commonv1.Batch) Recv {
	done := false
	return func() (*commonv1.Batch, error) {
		if done {
			return nil, io.EOF
		}
		done = true
		return b, nil
	}
}
