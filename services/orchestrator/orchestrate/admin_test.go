package orchestrate

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/kit/pgtest"
	"github.com/cutover/cutover/services/orchestrator/jobstore"
	"github.com/cutover/cutover/services/orchestrator/stages"
	"github.com/cutover/cutover/services/orchestrator/validation"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// fakeLoader answers PurgeJob and records it; any other call panics (its
// embedded client is nil), which is how these tests see that a refused
// request reached no stage.
type fakeLoader struct {
	loaderv1.LoaderServiceClient
	mu     sync.Mutex
	purged []*loaderv1.PurgeJobRequest
	fail   error
}

func (f *fakeLoader) PurgeJob(_ context.Context, in *loaderv1.PurgeJobRequest, _ ...grpc.CallOption) (*loaderv1.PurgeJobResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	f.purged = append(f.purged, proto.Clone(in).(*loaderv1.PurgeJobRequest))
	return &loaderv1.PurgeJobResponse{Counts: []*loaderv1.PurgeCount{{Table: "cutover.ledger", Rows: 3}}}, nil
}

func (f *fakeLoader) purgedJobs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for _, p := range f.purged {
		ids = append(ids, p.GetJobId())
	}
	return ids
}

const testTarget = "postgres://cutover@127.0.0.1:1/target"

// testService is a Service on a control schema of its own in real
// PostgreSQL, with no workers running and a fake loader as its only stage.
func testService(t *testing.T, cfg Config) (*Service, *fakeLoader, *pgxpool.Pool) {
	t.Helper()
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	st, err := jobstore.Open(ctx, url, processBox())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	fl := &fakeLoader{}
	cfg.DefaultTarget = testTarget
	cfg.Lease, cfg.Poll = 200*time.Millisecond, 10*time.Millisecond
	cfg.Clients = stages.Clients{Loader: fl}
	return &Service{cfg: cfg, store: st, checker: &validation.Checker{Clients: cfg.Clients, DefaultTarget: testTarget},
		jobSpans: map[string]trace.Span{}}, fl, pool
}

// insertJob stores a job in state with one partition, as CreateJob would.
func insertJob(t *testing.T, s *Service, pool *pgxpool.Pool, id, state string, spec *commonv1.JobSpec) {
	t.Helper()
	ctx := context.Background()
	if spec == nil {
		spec = &commonv1.JobSpec{Name: id, Tables: []*commonv1.TableSpec{{Name: "orders", TargetTable: "orders"}}}
	}
	if err := s.store.InsertJob(ctx, &jobstore.Job{ID: id, Name: spec.GetName(), Parallelism: 1, Spec: spec},
		[]jobstore.Partition{{ID: "orders-0000", Table: "orders", Range: &commonv1.KeyRange{}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE cutover_control.jobs SET state = $2, finished_at = CASE WHEN $2 <> 'running' THEN now() END WHERE id = $1`, id, state); err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, pool *pgxpool.Pool, q string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func csvTable(name, target string) *commonv1.TableSpec {
	return &commonv1.TableSpec{Name: name, TargetTable: target,
		Source: &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Csv{Csv: &commonv1.CsvSource{Path: "/data/" + name + ".csv"}}}}
}

// TestCreateJobRefusesReservedSchemas: a job aimed at one of the product's
// own schemas, however the schema is written, is refused with
// InvalidArgument naming the field, by CreateJob, ValidateSpec and DryRun
// alike, and nothing is written: no job row, no call to any stage (the
// fake stages would panic).
func TestCreateJobRefusesReservedSchemas(t *testing.T) {
	s, _, pool := testService(t, Config{})
	v := &validationServer{s: s, v: validation.NewServer(s.checker)}
	ctx := context.Background()
	for _, tc := range []struct {
		name, dsn, schema, table string
		field                    string
	}{
		{"lineage", "", "cutover", "lineage", "target.schema"},
		{"ledger", "", "cutover", "ledger", "target.schema"},
		{"quarantine", "", "cutover", "quarantine", "target.schema"},
		{"control", "", "cutover_control", "jobs", "target.schema"},
		{"staging", "", "cutover_stage", "orders", "target.schema"},
		{"backup", "", "cutover_backup", "orders", "target.schema"},
		{"catalog", "", "pg_catalog", "pg_class", "target.schema"},
		{"toast", "", "pg_toast", "x", "target.schema"},
		{"information_schema", "", "information_schema", "tables", "target.schema"},
		{"capitals", "", "Cutover", "lineage", "target.schema"},
		{"quoted", "", `"CUTOVER"`, "ledger", "target.schema"},
		{"qualified table", "", "", "cutover.lineage", "tables[0].target_table"},
		{"quoted qualified table", "", "public", `"Cutover"."ledger"`, "tables[0].target_table"},
		{"search_path", "postgres://u@h/db?options=-csearch_path%3Dcutover", "", "lineage", "target.dsn"},
		{"search_path keyword form", "host=h dbname=db options='-c search_path=public,cutover_control'", "", "jobs", "target.dsn"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := &commonv1.JobSpec{Name: "forge", Target: &commonv1.TargetSpec{Dsn: tc.dsn, Schema: tc.schema},
				Tables: []*commonv1.TableSpec{csvTable("forged", tc.table)}}
			check := func(call string, err error) {
				t.Helper()
				st := status.Convert(err)
				if st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), tc.field) || !strings.Contains(st.Message(), "is reserved for") {
					t.Errorf("%s: %s %q, want InvalidArgument naming %s", call, st.Code(), st.Message(), tc.field)
				}
			}
			_, err := s.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: spec})
			check("CreateJob", err)
			_, err = v.ValidateSpec(ctx, &orchestratorv1.ValidateSpecRequest{Spec: spec})
			check("ValidateSpec", err)
			_, err = v.DryRun(ctx, &orchestratorv1.DryRunRequest{Spec: spec})
			check("DryRun", err)
		})
	}
	if n := count(t, pool, `SELECT count(*) FROM cutover_control.jobs`); n != 0 {
		t.Fatalf("%d jobs stored", n)
	}
}

// TestCreateJobRefusesHugeName: a name past the bound is refused before
// anything else, with a short message, and no job row is created.
func TestCreateJobRefusesHugeName(t *testing.T) {
	s, _, pool := testService(t, Config{})
	ctx := context.Background()
	for _, name := range []string{strings.Repeat("n", 201), strings.Repeat("名", 1<<20)} {
		spec := &commonv1.JobSpec{Name: name, Tables: []*commonv1.TableSpec{csvTable("orders", "orders")}}
		_, err := s.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: spec})
		st := status.Convert(err)
		if st.Code() != codes.InvalidArgument || len(st.Message()) > 200 {
			t.Errorf("name of %d bytes: %s %.200q", len(name), st.Code(), st.Message())
		}
	}
	long := csvTable(strings.Repeat("t", 1000), "orders")
	_, err := s.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: &commonv1.JobSpec{Tables: []*commonv1.TableSpec{long}}})
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "tables[0].name") || len(st.Message()) > 400 {
		t.Errorf("long table name: %s %.300q", st.Code(), st.Message())
	}
	if n := count(t, pool, `SELECT count(*) FROM cutover_control.jobs`); n != 0 {
		t.Fatalf("%d jobs stored", n)
	}
}

// TestListJobsStaysSmall: 120 jobs page through exactly once in pages of
// 50, the state filter works, and a job whose spec and error are huge
// lists as a small summary (GetJob still has its spec).
func TestListJobsStaysSmall(t *testing.T) {
	s, _, pool := testService(t, Config{})
	ctx := context.Background()
	for i := range 120 {
		state := []string{jobstore.StateRunning, jobstore.StateSucceeded, jobstore.StateFailed}[i%3]
		insertJob(t, s, pool, fmt.Sprintf("job-%03d", i), state, nil)
	}
	list := func(req *orchestratorv1.ListJobsRequest) []string {
		t.Helper()
		var ids []string
		for pages := 0; ; pages++ {
			if pages > 50 {
				t.Fatal("no last page")
			}
			res, err := s.ListJobs(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if n := int(req.GetPageSize()); n > 0 && len(res.GetJobs()) > n {
				t.Fatalf("page of %d, asked %d", len(res.GetJobs()), n)
			}
			for _, j := range res.GetJobs() {
				ids = append(ids, j.GetId())
			}
			if res.GetNextPageToken() == "" {
				return ids
			}
			req.PageToken = res.GetNextPageToken()
		}
	}
	ids := list(&orchestratorv1.ListJobsRequest{PageSize: 50})
	seen := map[string]int{}
	for _, id := range ids {
		seen[id]++
	}
	if len(ids) != 120 || len(seen) != 120 {
		t.Fatalf("listed %d jobs, %d distinct; want 120", len(ids), len(seen))
	}
	ended := list(&orchestratorv1.ListJobsRequest{PageSize: 50, States: []orchestratorv1.JobState{
		orchestratorv1.JobState_JOB_STATE_SUCCEEDED, orchestratorv1.JobState_JOB_STATE_FAILED}})
	if len(ended) != 80 {
		t.Fatalf("succeeded or failed: %d, want 80", len(ended))
	}
	res, err := s.ListJobs(ctx, &orchestratorv1.ListJobsRequest{States: []orchestratorv1.JobState{orchestratorv1.JobState_JOB_STATE_RUNNING}, PageSize: 10000})
	if err != nil || len(res.GetJobs()) != 40 || res.GetNextPageToken() != "" {
		t.Fatalf("running: %d jobs, next %q, %v", len(res.GetJobs()), res.GetNextPageToken(), err)
	}
	for _, j := range res.GetJobs() {
		if j.GetState() != orchestratorv1.JobState_JOB_STATE_RUNNING || j.GetSpec() != nil {
			t.Fatalf("listed %v", j)
		}
	}
	for _, bad := range []*orchestratorv1.ListJobsRequest{{PageSize: -1}, {PageToken: "zzz"}, {States: []orchestratorv1.JobState{orchestratorv1.JobState_JOB_STATE_UNSPECIFIED}}} {
		if _, err := s.ListJobs(ctx, bad); status.Code(err) != codes.InvalidArgument {
			t.Errorf("ListJobs(%v): %v, want InvalidArgument", bad, err)
		}
	}

	// One job holding a spec of megabytes and a long error.
	big := &commonv1.JobSpec{Name: "big"}
	for i := range 300 {
		tbl := csvTable(fmt.Sprint("t", i), "orders")
		tbl.Filters = []*commonv1.RowFilter{{When: strings.Repeat("row.a == 1 || ", 1000) + "true", Reason: "r"}}
		big.Tables = append(big.Tables, tbl)
	}
	insertJob(t, s, pool, "job-zbig", jobstore.StateFailed, big)
	if _, err := pool.Exec(ctx, `UPDATE cutover_control.jobs SET error = repeat('e', 2000000), created_at = now() + interval '1 hour' WHERE id = 'job-zbig'`); err != nil {
		t.Fatal(err)
	}
	res, err = s.ListJobs(ctx, &orchestratorv1.ListJobsRequest{PageSize: 3})
	if err != nil || len(res.GetJobs()) != 3 || res.GetJobs()[0].GetId() != "job-zbig" {
		t.Fatalf("list: %v %v", res, err)
	}
	if n := proto.Size(res); n > 8<<10 {
		t.Fatalf("a page of 3 summaries is %d bytes", n)
	}
	if e := res.GetJobs()[0].GetError(); len(e) > 1024 || !strings.HasPrefix(e, "eee") {
		t.Fatalf("summary error of %d bytes", len(e))
	}
	full, err := s.GetJob(ctx, &orchestratorv1.GetJobRequest{Id: "job-zbig"})
	if err != nil || len(full.GetJob().GetSpec().GetTables()) != 300 {
		t.Fatalf("GetJob: %v", err)
	}
}

// TestDeleteJob: a running job is not deleted; an ended one is, its
// control rows first marked deleting, the loader asked to purge its
// bookkeeping in the target, then its rows gone; another job and the
// audit log are untouched. A purge that fails leaves the job deleting, and
// a second call finishes it.
func TestDeleteJob(t *testing.T) {
	s, fl, pool := testService(t, Config{})
	ctx := context.Background()
	spec := &commonv1.JobSpec{Name: "two", Target: &commonv1.TargetSpec{Schema: "sales"},
		Tables: []*commonv1.TableSpec{{Name: "a", TargetTable: "orders"}, {Name: "b", TargetTable: "lines"}}}
	insertJob(t, s, pool, "job-run", jobstore.StateRunning, nil)
	insertJob(t, s, pool, "job-done", jobstore.StateSucceeded, spec)
	insertJob(t, s, pool, "job-other", jobstore.StateSucceeded, nil)
	s.Audit(ctx, jobstore.AuditRecord{Principal: "ops", Role: "operator", Method: "/x/CreateJob", JobID: "job-done", Outcome: "OK", Peer: "p"})

	_, err := s.DeleteJob(ctx, &orchestratorv1.DeleteJobRequest{Id: "job-run"})
	if st := status.Convert(err); st.Code() != codes.FailedPrecondition || !strings.Contains(st.Message(), "is running") {
		t.Fatalf("delete of a running job: %v", err)
	}
	if _, err := s.DeleteJob(ctx, &orchestratorv1.DeleteJobRequest{Id: "job-none"}); status.Code(err) != codes.NotFound {
		t.Fatalf("delete of an unknown job: %v", err)
	}
	if _, err := s.DeleteJob(ctx, &orchestratorv1.DeleteJobRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("delete without an id: %v", err)
	}
	if got := fl.purgedJobs(); len(got) != 0 {
		t.Fatalf("purged %v for refused deletes", got)
	}

	// The loader is down: nothing is lost, the job waits deleting.
	fl.fail = status.Error(codes.Unavailable, "loader down")
	_, err = s.DeleteJob(ctx, &orchestratorv1.DeleteJobRequest{Id: "job-done"})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("delete with the loader down: %v", err)
	}
	if j, err := s.GetJob(ctx, &orchestratorv1.GetJobRequest{Id: "job-done"}); err != nil || j.GetJob().GetState() != orchestratorv1.JobState_JOB_STATE_DELETING {
		t.Fatalf("after a failed purge: %v %v", j, err)
	}
	if _, err := s.ResumeJob(ctx, &orchestratorv1.ResumeJobRequest{Id: "job-done"}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("resume of a deleting job: %v", err)
	}
	if _, err := s.RollbackJob(ctx, &orchestratorv1.RollbackJobRequest{Id: "job-done"}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("rollback of a deleting job: %v", err)
	}
	fl.fail = nil

	res, err := s.DeleteJob(ctx, &orchestratorv1.DeleteJobRequest{Id: "job-done"})
	if err != nil || res.GetId() != "job-done" || len(res.GetPurged().GetCounts()) != 1 {
		t.Fatalf("delete: %v %v", res, err)
	}
	if len(fl.purged) != 1 {
		t.Fatalf("purges: %v", fl.purged)
	}
	p := fl.purged[0]
	if p.GetJobId() != "job-done" || p.GetTarget().GetDsn() != testTarget || p.GetTarget().GetSchema() != "sales" ||
		strings.Join(p.GetTables(), ",") != "orders,lines" {
		t.Fatalf("purge request %v", p)
	}
	for _, q := range []string{`SELECT count(*) FROM cutover_control.jobs WHERE id = $1`, `SELECT count(*) FROM cutover_control.partitions WHERE job_id = $1`} {
		if n := count(t, pool, q, "job-done"); n != 0 {
			t.Fatalf("%s: %d left", q, n)
		}
		if n := count(t, pool, q, "job-other"); n != 1 {
			t.Fatalf("%s: the other job has %d", q, n)
		}
	}
	if _, err := s.GetJob(ctx, &orchestratorv1.GetJobRequest{Id: "job-done"}); status.Code(err) != codes.NotFound {
		t.Fatalf("get of a deleted job: %v", err)
	}
	if _, err := s.RollbackJob(ctx, &orchestratorv1.RollbackJobRequest{Id: "job-done"}); status.Code(err) != codes.NotFound {
		t.Fatalf("rollback of a deleted job: %v", err)
	}
	if n := count(t, pool, `SELECT count(*) FROM cutover_control.audit WHERE job_id = 'job-done'`); n != 1 {
		t.Fatalf("%d audit entries of the deleted job, want 1 (the log outlives jobs)", n)
	}
}

// TestRetention: a sweep deletes the ended jobs older than the retention
// (and one a delete left half done), as DeleteJob does, and only those;
// and the audit entries older than theirs.
func TestRetention(t *testing.T) {
	s, fl, pool := testService(t, Config{Retention: time.Hour, AuditRetention: 24 * time.Hour})
	ctx := context.Background()
	for id, state := range map[string]string{
		"old-succeeded": jobstore.StateSucceeded, "old-failed": jobstore.StateFailed, "old-cancelled": jobstore.StateCancelled,
		"old-rolled-back": jobstore.StateRolledBack, "old-running": jobstore.StateRunning, "old-following": jobstore.StateFollowing,
		"new-succeeded": jobstore.StateSucceeded, "new-deleting": jobstore.StateDeleting, "new-running": jobstore.StateRunning,
	} {
		insertJob(t, s, pool, id, state, nil)
	}
	if _, err := pool.Exec(ctx, `UPDATE cutover_control.jobs SET created_at = now() - interval '3 hours',
		finished_at = CASE WHEN finished_at IS NOT NULL THEN now() - interval '2 hours' END WHERE id LIKE 'old-%'`); err != nil {
		t.Fatal(err)
	}
	s.Audit(ctx, jobstore.AuditRecord{At: time.Now().Add(-48 * time.Hour), Principal: "p", Role: "r", Method: "m", Outcome: "OK", Peer: "x", JobID: "old-failed"})
	s.Audit(ctx, jobstore.AuditRecord{Principal: "p", Role: "r", Method: "m", Outcome: "OK", Peer: "x", JobID: "old-failed"})

	s.sweep(ctx)

	var left []string
	rows, err := pool.Query(ctx, `SELECT id FROM cutover_control.jobs ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		_ = rows.Scan(&id)
		left = append(left, id)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	if got := strings.Join(left, ","); got != "new-running,new-succeeded,old-following,old-running" {
		t.Fatalf("jobs left: %s", got)
	}
	purged := fl.purgedJobs()
	if got := strings.Join(sortedCopy(purged), ","); got != "new-deleting,old-cancelled,old-failed,old-rolled-back,old-succeeded" {
		t.Fatalf("purged: %s", got)
	}
	if n := count(t, pool, `SELECT count(*) FROM cutover_control.audit`); n != 1 {
		t.Fatalf("%d audit entries left, want the recent one", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM cutover_control.partitions WHERE job_id LIKE 'old-%'`); n != 2 {
		t.Fatalf("%d partitions of old jobs left, want those of the two live ones", n)
	}
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// TestAuditService: Audit records even for a call whose context ended,
// and ListAuditEvents reads the log back, filtered and a page at a time.
func TestAuditService(t *testing.T) {
	s, _, _ := testService(t, Config{})
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	for i := range 12 {
		job := ""
		if i%2 == 0 {
			job = "job-1"
		}
		s.Audit(gone, jobstore.AuditRecord{Principal: fmt.Sprint("u", i%3), Role: "admin", Method: "/cutover.orchestrator.v1.JobService/DeleteJob",
			JobID: job, Outcome: "OK", Peer: "10.0.0.1:1234"})
	}
	ctx := context.Background()
	var events []*orchestratorv1.AuditEvent
	req := &orchestratorv1.ListAuditEventsRequest{JobId: "job-1", PageSize: 4}
	for {
		res, err := s.ListAuditEvents(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, res.GetEvents()...)
		if res.GetNextPageToken() == "" {
			break
		}
		req.PageToken = res.GetNextPageToken()
	}
	if len(events) != 6 || events[0].GetJobId() != "job-1" || events[0].GetId() <= events[5].GetId() || events[0].GetAt() == nil {
		t.Fatalf("events of job-1: %v", events)
	}
	res, err := s.ListAuditEvents(ctx, &orchestratorv1.ListAuditEventsRequest{Principal: "u1", Since: timestamppb.New(time.Now().Add(-time.Hour))})
	if err != nil || len(res.GetEvents()) != 4 {
		t.Fatalf("events of u1: %v %v", res, err)
	}
	res, err = s.ListAuditEvents(ctx, &orchestratorv1.ListAuditEventsRequest{Since: timestamppb.New(time.Now().Add(time.Hour))})
	if err != nil || len(res.GetEvents()) != 0 {
		t.Fatalf("events from the future: %v %v", res, err)
	}
	for _, bad := range []*orchestratorv1.ListAuditEventsRequest{{PageToken: "x"}, {PageSize: -3}, {Since: &timestamppb.Timestamp{Nanos: -1}}} {
		if _, err := s.ListAuditEvents(ctx, bad); status.Code(err) != codes.InvalidArgument {
			t.Errorf("ListAuditEvents(%v): %v, want InvalidArgument", bad, err)
		}
	}
}

// TestRetentionSettings: --retention and --audit-retention come from the
// flags or CUTOVER_RETENTION / CUTOVER_AUDIT_RETENTION; a negative one is
// refused at start-up, naming it.
func TestRetentionSettings(t *testing.T) {
	t.Setenv("CUTOVER_RETENTION", "720h")
	var c Config
	fs := flag.NewFlagSet("o", flag.ContinueOnError)
	c.Flags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if c.Retention != 720*time.Hour || c.AuditRetention != defaultAuditRetention {
		t.Fatalf("retention %s, audit %s", c.Retention, c.AuditRetention)
	}
	if err := fs.Parse([]string{"--retention=0", "--audit-retention=1h"}); err != nil || c.Retention != 0 || c.AuditRetention != time.Hour {
		t.Fatalf("flags: %v %s %s", err, c.Retention, c.AuditRetention)
	}
	if _, err := New(context.Background(), Config{Retention: -time.Second}); err == nil || !strings.Contains(err.Error(), "--retention") {
		t.Fatalf("negative retention: %v", err)
	}
	if d := sweepEvery(time.Hour, 0); d != 6*time.Minute {
		t.Fatalf("sweep every %s", d)
	}
	if d := sweepEvery(0, 90*24*time.Hour); d != 10*time.Minute {
		t.Fatalf("sweep every %s", d)
	}
}
