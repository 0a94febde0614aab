package orchestrate

import (
	"context"
	"fmt"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/orchestrator/jobspec"
	"github.com/cutover/cutover/services/orchestrator/jobstore"
	"github.com/cutover/cutover/services/orchestrator/stages"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Reconcile proves a finished job's target against its source, per target
// table: row counts, group totals (TableSpec.aggregates) and rows. The
// loader, the target's one owner, compares each table
// (LoaderService.ReconcileTable) at the request's level: independent (the
// source database and the target each hash and total their own rows in
// SQL, the extractor running the source's side) and/or replay (the job's
// partitions pulled again from the validator with the requests built here
// as for the job, pipeline.go). The orchestrator reads the job and its
// partitions from the control schema, keeps the accounting (the rows each
// table should hold) and the outcome.

const (
	defaultMaxDiff = 20
	maxMaxDiff     = 1000
)

// Reconcile serves ValidationService.Reconcile.
func (v *validationServer) Reconcile(ctx context.Context, req *orchestratorv1.ReconcileRequest) (*orchestratorv1.ReconcileResponse, error) {
	res, err := v.s.Reconcile(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	// The last reconciliation goes with the job's report.
	if err := v.s.store.SetReconciliation(ctx, req.GetId(), res.GetReconciliation()); err != nil {
		return nil, toStatus(err)
	}
	return res, nil
}

// Reconcile compares a succeeded job's source and target (see above);
// errors are domain errors (toStatus maps them) or the loader's statuses.
func (s *Service) Reconcile(ctx context.Context, req *orchestratorv1.ReconcileRequest) (*orchestratorv1.ReconcileResponse, error) {
	start := time.Now()
	if d := req.GetMaxDifferences(); d < 0 || d > maxMaxDiff {
		return nil, jobspec.Invalid("max_differences", "must be 0 (default %d) to %d, got %d", defaultMaxDiff, maxMaxDiff, d)
	}
	j, err := s.store.GetJob(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	if j.State != jobstore.StateSucceeded && j.State != jobstore.StateFollowing {
		return nil, fmt.Errorf("%w: job %s is %s; only a succeeded or following job can be reconciled", ErrJobState, j.ID, j.State)
	}
	ctx, span := tracer.Start(ctx, "reconcile", withJob(j.ID))
	defer span.End()
	report, err := s.buildReport(ctx, j)
	if err != nil {
		return nil, err
	}
	parts, err := s.store.PartRanges(ctx, j.ID)
	if err != nil {
		return nil, err
	}
	level := req.GetLevel()
	if level == commonv1.ReconcileLevel_RECONCILE_LEVEL_UNSPECIFIED {
		level = commonv1.ReconcileLevel_RECONCILE_LEVEL_INDEPENDENT
	}
	out := &orchestratorv1.Reconciliation{JobId: j.ID, Ok: true, Level: level}
	loaded := map[string]int64{}
	for _, tr := range report.GetTables() {
		loaded[tr.GetName()] += tr.GetCounts().GetLoaded()
	}
	spec, err := reconcileSpec(j, req, level)
	if err != nil {
		return nil, err
	}
	staged := jobspec.StagedTables(j.Spec)
	var order []string
	specsOf := map[string][]int{}
	for i, t := range spec.GetTables() {
		tt := t.GetTargetTable()
		if _, ok := specsOf[tt]; !ok {
			order = append(order, tt)
		}
		specsOf[tt] = append(specsOf[tt], i)
	}
	for _, tt := range order {
		treq := &loaderv1.ReconcileTableRequest{Target: s.checker.Target(j.Spec), Table: tt, JobId: j.ID, Staged: staged[tt],
			Upstream: s.cfg.Clients.Addrs.Validator, Extractor: s.cfg.Clients.Addrs.Extractor,
			MaxDifferences: req.GetMaxDifferences(), Parallelism: int32(max(s.cfg.Workers, 1)), Level: level}
		for _, i := range specsOf[tt] {
			if spec != j.Spec {
				treq.Sources = append(treq.Sources, &loaderv1.ReconcileSource{TableIndex: int32(i), Table: withZone(spec, spec.GetTables()[i])})
				continue
			}
			treq.Sources = append(treq.Sources, s.reconcileSource(ctx, j, i, parts[i]))
		}
		res, err := s.cfg.Clients.Loader.ReconcileTable(ctx, treq)
		if err != nil {
			return nil, reconcileErr(err)
		}
		tr := res.GetReconciliation()
		if tr == nil {
			return nil, fmt.Errorf("%w: loader: ReconcileTable of %s answered without a reconciliation", ErrStageFatal, tt)
		}
		for _, i := range specsOf[tt] {
			tr.ExpectedRows += loaded[spec.Tables[i].GetName()]
		}
		if ind := tr.GetIndependent(); ind != nil && tr.GetRows() == nil && !staged[tt] {
			// The independent level counts the source itself (less the
			// rows the job quarantined or filtered), not the job's report.
			tr.ExpectedRows = ind.GetSourceRows()
		}
		if spec == j.Spec && jobspec.Followed(j.Spec, specsOf[tt]) {
			// Changes since the full load count: the target must hold
			// what the source holds now.
			if tr.GetRows() != nil {
				tr.ExpectedRows = tr.GetRows().GetRows()
			}
		}
		// The loader's verdict covers rows and aggregates; the counts
		// are the job's accounting.
		tr.Ok = tr.Ok && tr.ExpectedRows == tr.TargetRows
		out.Ok = out.Ok && tr.Ok
		out.Warning = out.Warning || tr.Warning
		out.Tables = append(out.Tables, tr)
	}
	out.DurationSeconds = time.Since(start).Seconds()
	span.SetAttributes(attribute.Bool("cutover.reconciled", out.Ok))
	return &orchestratorv1.ReconcileResponse{Reconciliation: out}, nil
}

// reconcileSource is table spec i and the validator's request for each of
// its partitions, as the job pulled them.
func (s *Service) reconcileSource(ctx context.Context, j *jobstore.Job, i int, parts []jobstore.PartRange) *loaderv1.ReconcileSource {
	tbl := j.Spec.GetTables()[i]
	snapshot := j.Snapshot(i)
	if tbl.GetSync() != nil {
		snapshot = "" // a followed table is compared as it is now
	}
	src := &loaderv1.ReconcileSource{TableIndex: int32(i), Table: withZone(j.Spec, tbl)}
	for _, p := range parts {
		rd := stages.Read(ctx, j.Spec, tbl, &extractorv1.ReadBatchRequest{Range: p.Range, JobId: j.ID, PartitionId: p.ID, Snapshot: snapshot})
		src.Partitions = append(src.Partitions, s.cfg.Clients.PullRead(tbl, rd))
	}
	return src
}

// reconcileErr classifies the loader's answer: a refused spec or a target
// that does not match it reaches the caller as the loader said it (as
// GetLineage does); anything else is the loader failing.
func reconcileErr(err error) error {
	switch status.Code(err) {
	case codes.InvalidArgument, codes.FailedPrecondition, codes.NotFound:
		return err
	}
	return stages.Classify("loader", err)
}

func withJob(id string) trace.SpanStartOption {
	return trace.WithAttributes(attribute.String("cutover.job_id", id))
}

func describeReq(t *commonv1.TableSpec) *extractorv1.DescribeSourceRequest {
	return &extractorv1.DescribeSourceRequest{Source: t.GetSource()}
}

// withZone is tbl with the job's time zone where it names none: the
// independent level reads zone-less source times in the zone the job read
// them in.
func withZone(spec *commonv1.JobSpec, tbl *commonv1.TableSpec) *commonv1.TableSpec {
	if tbl.GetTimeZone() != "" || spec.GetTimeZone() == "" {
		return tbl
	}
	tbl = proto.Clone(tbl).(*commonv1.TableSpec)
	tbl.TimeZone = spec.GetTimeZone()
	return tbl
}

// reconcileSpec is the spec the job is reconciled against: its own, or the
// request's (ReconcileRequest.spec), whose tables must each be one of the
// job's by name and target table.
func reconcileSpec(j *jobstore.Job, req *orchestratorv1.ReconcileRequest, level commonv1.ReconcileLevel) (*commonv1.JobSpec, error) {
	if req.GetSpec() == nil {
		return j.Spec, nil
	}
	if level != commonv1.ReconcileLevel_RECONCILE_LEVEL_INDEPENDENT {
		return nil, jobspec.Invalid("spec", "a spec to compare against is used at the independent level only; leave level unset or independent")
	}
	own := map[string]string{}
	for _, t := range j.Spec.GetTables() {
		own[t.GetName()] = t.GetTargetTable()
	}
	if len(req.GetSpec().GetTables()) == 0 {
		return nil, jobspec.Invalid("spec.tables", "at least one table is required")
	}
	for i, t := range req.GetSpec().GetTables() {
		tt, ok := own[t.GetName()]
		if !ok || tt != t.GetTargetTable() {
			return nil, jobspec.Invalid(fmt.Sprintf("spec.tables[%d]", i), "table %q into %q is not one of job %s's tables", t.GetName(), t.GetTargetTable(), j.ID)
		}
	}
	spec := proto.Clone(req.GetSpec()).(*commonv1.JobSpec)
	spec.Target = j.Spec.GetTarget()
	return spec, nil
}
