package reconcile

import (
	"context"
	"errors"
	"fmt"
	"runtime"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	validatorv1 "github.com/cutover/cutover/gen/cutover/validator/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"github.com/cutover/cutover/services/kit/stage"
	"github.com/cutover/cutover/services/kit/telemetry"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// The source side: the job's partitions pulled again from the validator at
// the request's upstream, with the requests the job pulled them with (the
// validator pulls them through transformer and extractor), exactly what the
// loader got, without loading them. Rows an error rule, a filter or the
// loader refused are left out: the target never got them.

// sourceResult is what one pass over a target table's sources gives.
type sourceResult struct {
	digest *digest
	aggs   []map[string]*aggAcc
	rows   []srcRow // with a bucket selection: those buckets' rows
}

type srcRow struct {
	h    int64
	vals []*string
}

type srcBatch struct {
	k int // index into tablePlan.srcs
	b *commonv1.Batch
	// skip marks the rows the target never got.
	skip []byte
}

// source reads every source row of p once. Without sel it digests the rows
// and totals the aggregates; with sel it keeps the rows of those buckets.
func (r *reconciler) source(ctx context.Context, p *tablePlan, sel map[int]bool) (*sourceResult, error) {
	workers := runtime.GOMAXPROCS(0)
	batches := make(chan srcBatch, workers)
	g, gctx := errgroup.WithContext(ctx)
	// Partitions stream at once up to the request's parallelism.
	g.Go(func() error {
		defer close(batches)
		pg, pctx := errgroup.WithContext(gctx)
		pg.SetLimit(max(int(r.req.GetParallelism()), 1))
		for k, src := range p.srcs {
			for _, part := range src.GetPartitions() {
				pg.Go(func() error { return r.streamSource(pctx, part, k, batches) })
			}
		}
		return pg.Wait()
	})
	results := make([]*sourceResult, workers)
	for w := range workers {
		g.Go(func() error {
			h := newRowHasher(p, sel)
			for sb := range batches {
				if err := h.batch(sb); err != nil {
					return err
				}
			}
			results[w] = h.res
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := &sourceResult{digest: &digest{}, aggs: make([]map[string]*aggAcc, len(p.aggs))}
	for k := range out.aggs {
		out.aggs[k] = map[string]*aggAcc{}
	}
	for _, res := range results {
		out.digest.add(res.digest)
		out.rows = append(out.rows, res.rows...)
		for k, m := range res.aggs {
			for key, acc := range m {
				if have := out.aggs[k][key]; have != nil {
					have.merge(acc)
				} else {
					out.aggs[k][key] = acc
				}
			}
		}
	}
	return out, nil
}

// streamSource pulls one partition from the validator with the job's
// request for it and hands each validated batch on with the rows to skip.
func (r *reconciler) streamSource(ctx context.Context, part *validatorv1.PullRequest, k int, out chan<- srcBatch) error {
	rd := part.GetTransform().GetRead().GetRead()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ctx, span := tracer.Start(ctx, "reconcile partition", trace.WithAttributes(
		attribute.String("cutover.job_id", r.req.GetJobId()), attribute.String("cutover.partition", rd.GetPartitionId())))
	defer span.End()
	snapshot := rd.GetSnapshot()
	loadRej := r.loadRej[rd.GetPartitionId()]
	for try := 0; ; try++ {
		req := proto.Clone(part).(*validatorv1.PullRequest)
		sr := req.GetTransform().GetRead()
		sr.Read.Snapshot = snapshot
		// The batches' spans hang under this partition's.
		sr.TraceContext = map[string]string{}
		telemetry.Propagator().Inject(ctx, propagation.MapCarrier(sr.TraceContext))
		sent := false
		err := r.pull(ctx, req, func(b *commonv1.Batch) error {
			sent = true
			var skip []byte
			for _, rj := range b.GetRejects() {
				if !rj.GetWarning() {
					skip = batch.SetBit(skip, int(rj.GetRow()))
				}
			}
			for _, row := range loadRej[b.GetSeq()] {
				skip = batch.SetBit(skip, int(row))
			}
			select {
			case out <- srcBatch{k: k, b: b, skip: skip}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		if try == 0 && !sent && snapshot != "" && refused(err) {
			// The job's snapshot is gone (released, or its extractor
			// restarted; FailedPrecondition): compare with the source as
			// it is now. Another refusal comes back again.
			snapshot = ""
			continue
		}
		return err
	}
}

// pull runs one partition's request through the chain up to the validator
// at the request's upstream and hands each validated batch, in order, to f.
func (r *reconciler) pull(ctx context.Context, req *validatorv1.PullRequest, f func(*commonv1.Batch) error) error {
	cc, err := r.dial(r.req.GetUpstream())
	if err != nil {
		return fmt.Errorf("%w: upstream: %v", ErrInvalidArgument, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := stage.Open(cancel, "validator", stageWait, func() (validatorv1.ValidatorService_PullClient, error) {
		return validatorv1.NewValidatorServiceClient(cc).Pull(ctx, req)
	})
	if err != nil {
		return err
	}
	recv := func() (*commonv1.Batch, error) {
		m, err := st.Recv()
		return m.GetBatch(), err
	}
	return stage.InOrder("validator", req.GetTransform().GetRead().GetRead().GetSeq(), recv, f)
}

// refused says whether a stage refused the work (as opposed to failing in
// a way a retry may fix).
func refused(err error) bool {
	var up *stage.UpstreamError
	if errors.As(err, &up) {
		return stage.Refused(status.Code(up.Err))
	}
	return errors.Is(err, ErrUpstream)
}
