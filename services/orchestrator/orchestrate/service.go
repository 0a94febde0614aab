// Package orchestrate owns migration jobs: it serves JobService, plans
// partitions and runs each as one call to the loader (the batches flow
// between the stages, package stages), checks every acknowledgement against
// the ledger, keeps the accounting in the control schema (package jobstore,
// behind the store interface) and writes reports. Spec checks are package
// validation, followers package follow.
package orchestrate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"github.com/cutover/cutover/services/kit/metrics"
	"github.com/cutover/cutover/services/kit/telemetry"
	"github.com/cutover/cutover/services/orchestrator/follow"
	"github.com/cutover/cutover/services/orchestrator/jobspec"
	"github.com/cutover/cutover/services/orchestrator/jobstore"
	"github.com/cutover/cutover/services/orchestrator/queue"
	"github.com/cutover/cutover/services/orchestrator/stages"
	"github.com/cutover/cutover/services/orchestrator/validation"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var tracer = otel.Tracer("cutover/orchestrator")

// Config configures an orchestrator replica.
type Config struct {
	// ControlURL is the PostgreSQL database holding the control schema.
	ControlURL string
	// DefaultTarget is used when a spec names no target DSN.
	DefaultTarget string
	// Workers is how many partitions this replica runs at once.
	Workers int
	// Lease is how long a claimed partition stays ours without progress.
	Lease time.Duration
	// MaxAttempts bounds the tries of one partition before the job fails.
	MaxAttempts int
	// BatchTimeout bounds the wait for one batch (extract, or its loader
	// acknowledgement): a stalled peer fails the attempt, which is retried.
	BatchTimeout time.Duration
	// Poll is how often a waiting call (WatchJob, StopFollowing, a
	// rollback) looks at the control store again.
	Poll time.Duration
	// TraceSink is where this process's spans go, for the report.
	TraceSink string
	// Owner names this replica in leases; default host:pid:random.
	Owner string
	// Retention deletes ended jobs this long after they ended, as DeleteJob
	// does (the target's bookkeeping purged, then the control rows); 0
	// keeps them.
	Retention time.Duration
	// AuditRetention deletes audit entries older than this; 0 keeps them.
	AuditRetention time.Duration
	// SnapshotHold is how long a failed or cancelled job keeps its source
	// snapshots for a resume; 0 until it is deleted.
	SnapshotHold time.Duration
	// SecretKeyFile holds the key that seals DSN secrets in the control
	// schema (sealbox.ParseKey's forms); every replica sharing the schema
	// needs the same. Empty: a random key for this process only.
	SecretKeyFile string
	Clients       stages.Clients
}

// Service implements the JobService.
type Service struct {
	orchestratorv1.UnimplementedJobServiceServer
	cfg   Config
	store store
	// queue hands partitions, ends and periodic work to the replicas.
	queue *queue.Queue
	// unobserve stops the control database's gauges (metrics).
	unobserve func() error
	// checker checks specs against the stages; followers run the jobs'
	// tables that follow their sources.
	checker   *validation.Checker
	followers *follow.Runner
	stop      context.CancelFunc

	mu       sync.Mutex
	jobSpans map[string]trace.Span // job spans started here, ended at the job's end

	thresholds thresholdClock
}

// New opens the control schema and starts the workers.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 30 * time.Second
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.BatchTimeout <= 0 {
		cfg.BatchTimeout = 2 * time.Minute
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 200 * time.Millisecond
	}
	if cfg.Retention < 0 {
		return nil, fmt.Errorf("--retention (CUTOVER_RETENTION) must not be negative, got %s", cfg.Retention)
	}
	if cfg.AuditRetention < 0 {
		return nil, fmt.Errorf("--audit-retention (CUTOVER_AUDIT_RETENTION) must not be negative, got %s", cfg.AuditRetention)
	}
	if cfg.Owner == "" {
		host, _ := os.Hostname()
		cfg.Owner = fmt.Sprintf("%s:%d:%s", host, os.Getpid(), randomHex(3))
	}
	box, err := secretBox(cfg.SecretKeyFile)
	if err != nil {
		return nil, err
	}
	st, err := jobstore.Open(ctx, cfg.ControlURL, box)
	if err != nil {
		return nil, err
	}
	runCtx, stop := context.WithCancel(context.Background())
	s := &Service{cfg: cfg, store: st, checker: &validation.Checker{Clients: cfg.Clients, DefaultTarget: cfg.DefaultTarget}, stop: stop, jobSpans: map[string]trace.Span{}}
	s.followers = follow.New(follow.Config{Owner: cfg.Owner, Lease: cfg.Lease, BatchTimeout: cfg.BatchTimeout, Clients: cfg.Clients,
		Target: s.checker.Target, Report: s.followReport, Ended: func(id string) { s.endJobSpan(id, jobstore.StateSucceeded) }}, st)
	h := queue.Handlers{Partition: s.workPartition, Follow: s.followers.Work, Finish: s.workFinish, Finishable: st.FinishableJobs}
	if cfg.Retention > 0 || cfg.AuditRetention > 0 || cfg.SnapshotHold > 0 {
		h.Retain, h.RetainEvery = s.sweep, sweepEvery(cfg.Retention, cfg.AuditRetention, cfg.SnapshotHold)
	}
	err = queue.Migrate(ctx, st.Pool())
	if err == nil {
		s.queue, err = queue.Start(runCtx, st.Pool(), queue.Config{Workers: cfg.Workers, ID: cfg.Owner}, h)
	}
	if err != nil {
		stop()
		st.Close()
		return nil, err
	}
	s.unobserve, err = metrics.ObserveControl(func(ctx context.Context) (*metrics.Control, error) {
		c, err := st.Gauges(ctx)
		if err != nil {
			return nil, err
		}
		return c, s.queue.Counts(ctx, c)
	})
	if err != nil {
		_ = s.queue.Stop(ctx)
		stop()
		st.Close()
		return nil, err
	}
	return s, nil
}

// Register registers the JobService.
func (s *Service) Register(g *grpc.Server) {
	orchestratorv1.RegisterJobServiceServer(g, s)
	orchestratorv1.RegisterValidationServiceServer(g, &validationServer{s: s, v: validation.NewServer(s.checker)})
}

// Close stops the workers; partitions they held are handed back.
func (s *Service) Close() error {
	// Running partitions are cancelled and handed back before the
	// client stops; the dispatcher gives them to another replica.
	if err := s.queue.Stop(context.Background()); err != nil {
		slog.Warn("stop the job queue", "err", err)
	}
	s.stop()
	_ = s.unobserve()
	s.mu.Lock()
	for id, sp := range s.jobSpans {
		sp.End()
		delete(s.jobSpans, id)
	}
	s.mu.Unlock()
	s.store.Close()
	return nil
}

// enqueue asks for runs of job id's partitions; the dispatcher does it
// within a second if this fails (or this replica dies first).
func (s *Service) enqueue(ctx context.Context, id string) {
	parts, err := s.store.Partitions(ctx, id)
	if err == nil {
		ids := make([]string, len(parts))
		for i, p := range parts {
			ids[i] = p.ID
		}
		err = s.queue.Enqueue(ctx, id, ids)
	}
	if err != nil {
		slog.Warn("enqueue partitions; the dispatcher will", "job", id, "err", err)
	}
}

// CreateJob checks the spec, plans partitions and starts the job.
func (s *Service) CreateJob(ctx context.Context, req *orchestratorv1.CreateJobRequest) (*orchestratorv1.CreateJobResponse, error) {
	pctx, cancel := context.WithTimeout(ctx, stages.Wait)
	defer cancel()
	if n := len(req.GetRedriveOf()); n > jobspec.MaxNameBytes {
		return nil, toStatus(jobspec.Invalid("redrive_of", "is %d bytes long, at most %d", n, jobspec.MaxNameBytes))
	}
	id := "job-" + time.Now().UTC().Format("20060102-150405") + "-" + randomHex(4)
	prep, err := s.prepare(pctx, req.GetSpec(), id, req.GetRedriveOf() != "")
	if err != nil {
		follow.DropSlots(context.WithoutCancel(ctx), s.cfg.Clients, req.GetSpec(), id)
		return nil, toStatus(jobspec.NamingTable(req.GetSpec(), err))
	}
	created := false
	defer func() {
		if !created { // the slots asked for at the start serve no job
			follow.DropSlots(context.WithoutCancel(ctx), s.cfg.Clients, req.GetSpec(), id)
		}
	}()
	spec, plans := prep.spec, prep.plans
	var redrive map[string][]string
	if old := req.GetRedriveOf(); old != "" {
		if redrive, err = s.redriveRefs(pctx, old, spec); err != nil {
			s.closeSnapshots(context.WithoutCancel(ctx), spec, prep.snapshots)
			return nil, toStatus(err)
		}
	}
	// One trace per job: the job span is a new root linked to the request.
	jctx, jspan := tracer.Start(context.Background(), "job",
		trace.WithNewRoot(), trace.WithLinks(trace.LinkFromContext(ctx)),
		trace.WithAttributes(attribute.String("cutover.job_id", id), attribute.String("cutover.job_name", spec.GetName()),
			attribute.Int("cutover.tables", len(spec.GetTables()))))
	carrier := propagation.MapCarrier{}
	telemetry.Propagator().Inject(jctx, carrier)
	j := &jobstore.Job{ID: id, Name: spec.GetName(), Spec: spec, Parallelism: int(spec.GetParallelism()),
		TraceID: telemetry.TraceID(jctx), TraceParent: carrier.Get("traceparent"), TraceSink: s.cfg.TraceSink,
		DDL: prep.ddl, Constraints: &loaderv1.AddConstraintsRequest{Constraints: prep.constraints}, Snapshots: prep.snapshots, Estimates: prep.estimates,
		SpecHash: jobspec.Hash(req.GetSpec()), RedriveOf: req.GetRedriveOf(), Redrive: redrive, SyncStart: prep.syncStart}
	// target.backup: the copies exist before any partition can start.
	if j.Backups, err = s.backup(pctx, id, spec); err != nil {
		s.closeSnapshots(context.WithoutCancel(ctx), spec, prep.snapshots)
		jspan.End()
		return nil, toStatus(err)
	}
	var parts []jobstore.Partition
	for i, ranges := range plans {
		if redrive != nil && len(redrive[spec.Tables[i].GetName()]) == 0 {
			continue // nothing of this table to re-drive
		}
		for k, r := range ranges {
			parts = append(parts, jobstore.Partition{ID: fmt.Sprintf("%s-%04d", spec.Tables[i].GetName(), k), Table: spec.Tables[i].GetName(), TableIndex: i, Range: r})
		}
	}
	if err := s.store.InsertJob(ctx, j, parts); err != nil {
		s.closeSnapshots(context.WithoutCancel(ctx), spec, prep.snapshots)
		jspan.End()
		return nil, toStatus(err)
	}
	created = true
	jspan.SetAttributes(attribute.Int("cutover.partitions", len(parts)))
	s.mu.Lock()
	s.jobSpans[id] = jspan
	s.mu.Unlock()
	slog.Info("job created", "job", id, "name", spec.GetName(), "partitions", len(parts), "trace_id", j.TraceID)
	s.enqueue(ctx, id)
	job, err := s.getJob(ctx, id)
	if err != nil {
		return nil, toStatus(err)
	}
	return &orchestratorv1.CreateJobResponse{Job: job}, nil
}

func (s *Service) getJob(ctx context.Context, id string) (*orchestratorv1.Job, error) {
	j, err := s.store.GetJob(ctx, id)
	if err != nil {
		return nil, err
	}
	return jobProto(j), nil
}

// jobProto is the whole job, its spec redacted.
func jobProto(j *jobstore.Job) *orchestratorv1.Job {
	job := jobSummary(j)
	job.Spec = jobspec.Redacted(j.Spec)
	return job
}

// jobSummary is the job without its spec.
func jobSummary(j *jobstore.Job) *orchestratorv1.Job {
	c := &j.Counts
	counts := &commonv1.Counts{Extracted: c.Extracted, Loaded: c.Loaded, Quarantined: c.Quarantined, Batches: c.Batches, Filtered: c.Filtered, Warned: c.Warned}
	for _, f := range j.Finalized {
		for _, o := range f.GetTables() {
			applyFinalized(counts, o)
		}
	}
	return &orchestratorv1.Job{
		Id: j.ID, Name: j.Name, State: jobstore.JobState(j.State), SpecHash: j.SpecHash,
		Counts:          counts,
		PartitionsTotal: j.Total, PartitionsDone: j.Done, Error: j.ErrText, TraceId: j.TraceID,
		CreatedAt: ts(&j.Created), StartedAt: ts(j.Started), FinishedAt: ts(j.Finished),
	}
}

// GetJob returns a job with its counts so far.
func (s *Service) GetJob(ctx context.Context, req *orchestratorv1.GetJobRequest) (*orchestratorv1.GetJobResponse, error) {
	job, err := s.getJob(ctx, req.GetId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &orchestratorv1.GetJobResponse{Job: job}, nil
}

// Bounds of ListJobs: its pages, and the free text of a summary, so a
// listing stays small whatever one job holds.
const (
	defaultJobPage   = 50
	maxJobPage       = 500
	summaryNameBytes = jobspec.MaxJobNameBytes
	summaryErrBytes  = 1 << 10
)

// ListJobs returns job summaries, newest first, a page at a time.
func (s *Service) ListJobs(ctx context.Context, req *orchestratorv1.ListJobsRequest) (*orchestratorv1.ListJobsResponse, error) {
	n := int(req.GetPageSize())
	switch {
	case n < 0:
		return nil, toStatus(fmt.Errorf("%w: page_size: must not be negative, got %d", ErrInvalidArgument, n))
	case n == 0:
		n = defaultJobPage
	case n > maxJobPage:
		n = maxJobPage
	}
	q := jobstore.ListQuery{Limit: n, PageToken: req.GetPageToken()}
	for i, st := range req.GetStates() {
		name := jobstore.StateName(st)
		if name == "" {
			return nil, toStatus(fmt.Errorf("%w: states[%d]: %s is not a job state", ErrInvalidArgument, i, st))
		}
		q.States = append(q.States, name)
	}
	rows, next, err := s.store.ListJobs(ctx, q)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &orchestratorv1.ListJobsResponse{NextPageToken: next}
	for _, j := range rows {
		job := jobSummary(j)
		job.Name = cutText(job.Name, summaryNameBytes)
		job.Error = cutText(job.Error, summaryErrBytes)
		out.Jobs = append(out.Jobs, job)
	}
	return out, nil
}

// cutText cuts s to at most max bytes at a character, marking the cut.
func cutText(s string, max int) string {
	if len(s) <= max {
		return s
	}
	return batch.CutUTF8(s, max-len("…")) + "…"
}

// CancelJob stops a running job; batches already loaded stay loaded and
// ResumeJob carries on from the ledger.
func (s *Service) CancelJob(ctx context.Context, req *orchestratorv1.CancelJobRequest) (*orchestratorv1.CancelJobResponse, error) {
	j, err := s.store.GetJob(ctx, req.GetId())
	if err != nil {
		return nil, toStatus(err)
	}
	ok, err := s.store.CancelJob(ctx, j.ID)
	if err != nil {
		return nil, toStatus(err)
	}
	if !ok {
		return nil, toStatus(fmt.Errorf("%w: job %s is %s, only pending, running or following jobs can be cancelled", ErrJobState, j.ID, j.State))
	}
	if j.State == jobstore.StateFollowing { // it follows no more: free the sources' slots
		follow.DropSlots(context.WithoutCancel(ctx), s.cfg.Clients, j.Spec, j.ID)
	}
	s.storeFinalReport(ctx, j.ID)
	s.endJobSpan(j.ID, "cancelled")
	job, err := s.getJob(ctx, j.ID)
	if err != nil {
		return nil, toStatus(err)
	}
	return &orchestratorv1.CancelJobResponse{Job: job}, nil
}

// ResumeJob re-runs the unfinished partitions of a failed or cancelled job.
func (s *Service) ResumeJob(ctx context.Context, req *orchestratorv1.ResumeJobRequest) (*orchestratorv1.ResumeJobResponse, error) {
	j, err := s.store.GetJob(ctx, req.GetId())
	if err != nil {
		return nil, toStatus(err)
	}
	if j.SnapshotsReleased {
		return nil, toStatus(fmt.Errorf("%w: job %s's source snapshots were released when --snapshot-hold (CUTOVER_SNAPSHOT_HOLD) ran out after it ended, so that the source could vacuum: "+
			"a resume would read other data than its finished partitions did; start the job over (rollback, then a new job)", ErrJobState, j.ID))
	}
	ok, err := s.store.ResumeJob(ctx, j.ID)
	if ok {
		metrics.Resume(ctx)
	}
	if err != nil {
		return nil, toStatus(err)
	}
	if !ok {
		return nil, toStatus(fmt.Errorf("%w: job %s is %s, only failed or cancelled jobs can be resumed", ErrJobState, j.ID, j.State))
	}
	slog.Info("job resumed", "job", j.ID)
	s.enqueue(ctx, j.ID)
	job, err := s.getJob(ctx, j.ID)
	if err != nil {
		return nil, toStatus(err)
	}
	return &orchestratorv1.ResumeJobResponse{Job: job}, nil
}

// WatchJob streams the job with its progress per table whenever it
// changes, and ends after the job ends.
func (s *Service) WatchJob(req *orchestratorv1.WatchJobRequest, stream grpc.ServerStreamingServer[orchestratorv1.WatchJobResponse]) error {
	ctx := stream.Context()
	var last *orchestratorv1.WatchJobResponse
	tick := time.NewTicker(s.cfg.Poll)
	defer tick.Stop()
	for {
		j, err := s.store.GetJob(ctx, req.GetId())
		if err != nil {
			return toStatus(err)
		}
		parts, err := s.store.Partitions(ctx, j.ID)
		if err != nil {
			return toStatus(err)
		}
		m := &orchestratorv1.WatchJobResponse{Job: jobProto(j), Tables: tableProgress(j, parts)}
		if last == nil || !proto.Equal(m, last) {
			if err := stream.Send(m); err != nil {
				return err
			}
			last = m
		}
		if terminal(m.Job.State) {
			return nil
		}
		select {
		case <-ctx.Done():
			return toStatus(ctx.Err())
		case <-tick.C:
		}
	}
}

// tableProgress sums the partitions of each table spec, in spec order,
// moving what finalizing a staged table merged away or quarantined out of
// its loaded rows as the job's totals do.
func tableProgress(j *jobstore.Job, parts []jobstore.PartitionCounts) []*orchestratorv1.TableProgress {
	byName := map[string]*orchestratorv1.TableProgress{}
	var out []*orchestratorv1.TableProgress
	for i, t := range j.Spec.GetTables() {
		tp := &orchestratorv1.TableProgress{Table: t.GetName(), Counts: &commonv1.Counts{}}
		if i < len(j.Estimates) {
			tp.EstimatedRows = j.Estimates[i]
		}
		byName[t.GetName()] = tp
		out = append(out, tp)
	}
	for _, p := range parts {
		tp := byName[p.Table]
		if tp == nil || p.State == jobstore.StateFollowing {
			continue
		}
		tp.PartitionsTotal++
		if p.State == jobstore.StateDone {
			tp.PartitionsDone++
		}
		addCounts(tp.Counts, p.Counts)
		tp.Counts.Batches += p.Counts.GetBatches()
	}
	for _, f := range j.Finalized {
		for _, o := range f.GetTables() {
			if tp := byName[o.GetTable()]; tp != nil {
				applyFinalized(tp.Counts, o)
			}
		}
	}
	return out
}

func terminal(s orchestratorv1.JobState) bool {
	return s == orchestratorv1.JobState_JOB_STATE_SUCCEEDED || s == orchestratorv1.JobState_JOB_STATE_FAILED || s == orchestratorv1.JobState_JOB_STATE_CANCELLED ||
		s == orchestratorv1.JobState_JOB_STATE_ROLLED_BACK || s == orchestratorv1.JobState_JOB_STATE_DELETING
}

// GetJobReport returns the stored report of an ended job, or a live one.
func (s *Service) GetJobReport(ctx context.Context, req *orchestratorv1.GetJobReportRequest) (*orchestratorv1.GetJobReportResponse, error) {
	j, err := s.store.GetJob(ctx, req.GetId())
	if err != nil {
		return nil, toStatus(err)
	}
	var r *orchestratorv1.JobReport
	if len(j.Report) > 0 {
		r = &orchestratorv1.JobReport{}
		if err := protojson.Unmarshal(j.Report, r); err != nil {
			r = nil
		}
	}
	if r == nil {
		if r, err = s.buildReport(ctx, j); err != nil {
			return nil, toStatus(err)
		}
	}
	if r.Reconciliation, err = s.store.Reconciliation(ctx, j.ID); err != nil {
		return nil, toStatus(err)
	}
	rb, err := s.store.RollbackOutcome(ctx, j.ID)
	if err != nil {
		return nil, toStatus(err)
	}
	r.Rollback = rb.GetTables()
	if j.State == jobstore.StateRolledBack {
		r.State = jobstore.JobState(j.State)
	}
	return &orchestratorv1.GetJobReportResponse{Report: r}, nil
}

// GetLineage answers where a target row came from or what became of a
// source row, with the job's mapping version.
func (s *Service) GetLineage(ctx context.Context, req *orchestratorv1.GetLineageRequest) (*orchestratorv1.GetLineageResponse, error) {
	j, err := s.store.GetJob(ctx, req.GetId())
	if err != nil {
		return nil, toStatus(err)
	}
	target := s.checker.Target(j.Spec)
	// The report names tables with their schema; either form works here.
	table := strings.TrimPrefix(req.GetTargetTable(), target.GetSchema()+".")
	res, err := s.cfg.Clients.Loader.GetLineage(ctx, &loaderv1.GetLineageRequest{
		Target: target, JobId: j.ID, TargetTable: table, TargetKey: req.GetTargetKey(),
		System: req.GetSystem(), SourceRef: req.GetSourceRef(), Table: req.GetTable(),
	})
	if status.Code(err) == codes.InvalidArgument {
		return nil, err // the question was malformed, not the loader
	}
	if err != nil {
		return nil, toStatus(stages.Classify("loader", err))
	}
	return &orchestratorv1.GetLineageResponse{JobId: j.ID, SpecHash: j.SpecHash, Records: res.GetRecords()}, nil
}

// applyFinalized moves a finalized table spec's staged rows into their
// final terms: merged away or quarantined at finalize instead of loaded.
func applyFinalized(c *commonv1.Counts, o *loaderv1.StagedOutcome) {
	c.Loaded -= o.GetMergedAway() + o.GetQuarantined()
	c.MergedAway += o.GetMergedAway()
	c.Quarantined += o.GetQuarantined()
	c.Warned += o.GetWarned()
}

func (s *Service) endJobSpan(id, outcome string) {
	s.mu.Lock()
	sp, ok := s.jobSpans[id]
	delete(s.jobSpans, id)
	s.mu.Unlock()
	if ok {
		sp.SetAttributes(attribute.String("cutover.outcome", outcome))
		sp.End()
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func ts(t *time.Time) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return timestamppb.New(*t)
}
