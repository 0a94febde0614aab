package stages

import (
	"context"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	transformerv1 "github.com/cutover/cutover/gen/cutover/transformer/v1"
	validatorv1 "github.com/cutover/cutover/gen/cutover/validator/v1"
	"github.com/cutover/cutover/services/kit/stage"
	"github.com/cutover/cutover/services/kit/telemetry"
	"go.opentelemetry.io/otel/propagation"
)

// The data plane is one chain of pulls: the loader pulls from a validator,
// which pulls from a transformer, which pulls from the extractor. The
// orchestrator builds the chain's request, each stage told its upstream's
// address: the loader runs it for a job (orchestrate, acknowledgements come
// back) and for reconcile's replay of the source (orchestrate's Reconcile: the loader
// hashes the rows); the orchestrator reads validated batches itself only
// for a dry run's sample. This is the one place that chain is put together.

// PullRead is the validator's request for a partition the extractor reads.
func (c Clients) PullRead(tbl *commonv1.TableSpec, r *extractorv1.StreamBatchesRequest) *validatorv1.PullRequest {
	p := c.pull(tbl)
	p.Transform.Source = &transformerv1.PullRequest_Read{Read: r}
	return p
}

// PullBatch is the validator's request for one batch already read.
func (c Clients) PullBatch(tbl *commonv1.TableSpec, b *commonv1.Batch) *validatorv1.PullRequest {
	p := c.pull(tbl)
	p.Transform.Source = &transformerv1.PullRequest_Batch{Batch: b}
	return p
}

func (c Clients) pull(tbl *commonv1.TableSpec) *validatorv1.PullRequest {
	a := c.Addrs
	return &validatorv1.PullRequest{Config: &validatorv1.ValidateConfig{Rules: tbl.GetRules()}, Upstream: a.Transformer,
		Transform: &transformerv1.PullRequest{
			Config:   &transformerv1.TransformConfig{Columns: tbl.GetColumns(), System: tbl.GetSystem(), Filters: tbl.GetFilters()},
			Upstream: a.Extractor,
		}}
}

// Read is the extractor's request for a partition from its cursor; its
// batches' spans hang under ctx's span.
func Read(ctx context.Context, spec *commonv1.JobSpec, tbl *commonv1.TableSpec, r *extractorv1.ReadBatchRequest) *extractorv1.StreamBatchesRequest {
	r.Source, r.Table, r.BatchSize, r.BatchBytes = tbl.GetSource(), tbl.GetName(), spec.GetBatchSize(), spec.GetBatchBytes()
	sr := &extractorv1.StreamBatchesRequest{Read: r, TraceContext: map[string]string{}}
	telemetry.Propagator().Inject(ctx, propagation.MapCarrier(sr.TraceContext))
	return sr
}

// PullValidated runs a table's read through the chain up to the validator
// and hands each validated batch, in order, to f.
func (c Clients) PullValidated(ctx context.Context, tbl *commonv1.TableSpec, rd *extractorv1.StreamBatchesRequest, f func(*commonv1.Batch) error) error {
	return c.pullValidated(ctx, c.PullRead(tbl, rd), rd, f)
}

// PullValidatedFormats is PullValidated with the transformer saying, per
// batch, which rows each column mapping format parses
// (Batch.format_matches): a dry run names a format that parses none.
func (c Clients) PullValidatedFormats(ctx context.Context, tbl *commonv1.TableSpec, rd *extractorv1.StreamBatchesRequest, f func(*commonv1.Batch) error) error {
	req := c.PullRead(tbl, rd)
	req.Transform.Config.ReportFormats = true
	return c.pullValidated(ctx, req, rd, f)
}

func (c Clients) pullValidated(ctx context.Context, req *validatorv1.PullRequest, rd *extractorv1.StreamBatchesRequest, f func(*commonv1.Batch) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := Opened(cancel, "validator", func() (validatorv1.ValidatorService_PullClient, error) {
		return c.Validator.Pull(ctx, req)
	})
	if err != nil {
		return err
	}
	recv := func() (*commonv1.Batch, error) {
		m, err := st.Recv()
		return m.GetBatch(), err
	}
	return upstreamErr(stage.InOrder("validator", rd.GetRead().GetSeq(), recv, f))
}
