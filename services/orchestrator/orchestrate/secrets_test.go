package orchestrate

import (
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	transformerv1 "github.com/cutover/cutover/gen/cutover/transformer/v1"
	validatorv1 "github.com/cutover/cutover/gen/cutover/validator/v1"
	"github.com/cutover/cutover/services/kit/pgtest"
	"github.com/cutover/cutover/services/kit/sealbox"
	"github.com/cutover/cutover/services/orchestrator/jobstore"
	"github.com/cutover/cutover/services/orchestrator/stages"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
)

// planted is a password that must appear in no row of the control schema
// and no response; trust auth ignores it, so the DSNs still connect.
const planted = "Pl4nted"

var (
	plantedTarget = "postgres://postgres:" + planted + "@127.0.0.1:5432/target_db"
	plantedSource = "postgres://postgres:" + planted + "@127.0.0.1:5432/legacy_db"
)

// fakeStages answer a one-table, one-partition, one-row job. They record
// every DSN they are given, so a test sees that the orchestrator read its
// stored spec back whole; while fail is set, a partition's load is
// refused with it.
type fakeStages struct {
	extractorv1.ExtractorServiceClient
	transformer fakeStageTransformer
	validator   fakeStageValidator
	loader      fakeStageLoader

	mu     sync.Mutex
	fail   error
	dsns   map[string]bool
	ledger map[string][]*loaderv1.LedgerEntry // by job and partition
}

type fakeStageLoader struct {
	loaderv1.LoaderServiceClient
	f *fakeStages
}

type fakeStageTransformer struct {
	transformerv1.TransformerServiceClient
}

type fakeStageValidator struct {
	validatorv1.ValidatorServiceClient
}

func newFakeStages() *fakeStages {
	f := &fakeStages{dsns: map[string]bool{}, ledger: map[string][]*loaderv1.LedgerEntry{}}
	f.loader.f = f
	return f
}

func (f *fakeStages) clients() stages.Clients {
	return stages.Clients{Extractor: f, Transformer: &f.transformer, Validator: &f.validator, Loader: &f.loader}
}

func (f *fakeStages) saw(dsns ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, d := range dsns {
		f.dsns[d] = true
	}
}

func (f *fakeStages) seen() map[string]bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]bool{}
	for d := range f.dsns {
		out[d] = true
	}
	return out
}

func (f *fakeStages) setFail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
}

func (f *fakeStages) DescribeSource(_ context.Context, in *extractorv1.DescribeSourceRequest, _ ...grpc.CallOption) (*extractorv1.DescribeSourceResponse, error) {
	f.saw(in.GetSource().GetPostgres().GetDsn())
	return &extractorv1.DescribeSourceResponse{Columns: []*commonv1.SourceColumn{{Name: "id", Type: commonv1.ColumnType_COLUMN_TYPE_INT64, SourceType: "bigint"}},
		PrimaryKey: []string{"id"}}, nil
}

func (f *fakeStages) OpenSnapshot(context.Context, *extractorv1.OpenSnapshotRequest, ...grpc.CallOption) (*extractorv1.OpenSnapshotResponse, error) {
	return nil, status.Error(codes.Unimplemented, "no snapshots")
}

func (f *fakeStages) PlanPartitions(_ context.Context, in *extractorv1.PlanPartitionsRequest, _ ...grpc.CallOption) (*extractorv1.PlanPartitionsResponse, error) {
	f.saw(in.GetSource().GetPostgres().GetDsn())
	return &extractorv1.PlanPartitionsResponse{Ranges: []*commonv1.KeyRange{{}}}, nil
}

func (*fakeStageTransformer) CheckMapping(context.Context, *transformerv1.CheckMappingRequest, ...grpc.CallOption) (*transformerv1.CheckMappingResponse, error) {
	return &transformerv1.CheckMappingResponse{}, nil
}

func (*fakeStageValidator) CheckRules(context.Context, *validatorv1.CheckRulesRequest, ...grpc.CallOption) (*validatorv1.CheckRulesResponse, error) {
	return &validatorv1.CheckRulesResponse{}, nil
}

func (l *fakeStageLoader) DescribeTarget(_ context.Context, in *loaderv1.DescribeTargetRequest, _ ...grpc.CallOption) (*loaderv1.DescribeTargetResponse, error) {
	l.f.saw(in.GetTarget().GetDsn())
	return &loaderv1.DescribeTargetResponse{Columns: []*loaderv1.TargetColumn{{Name: "id", PgType: "bigint", Type: commonv1.ColumnType_COLUMN_TYPE_INT64, NotNull: true}},
		PrimaryKey: []string{"id"}}, nil
}

func (l *fakeStageLoader) GetLedger(_ context.Context, in *loaderv1.GetLedgerRequest, _ ...grpc.CallOption) (*loaderv1.GetLedgerResponse, error) {
	l.f.saw(in.GetTarget().GetDsn())
	l.f.mu.Lock()
	defer l.f.mu.Unlock()
	return &loaderv1.GetLedgerResponse{Entries: l.f.ledger[in.GetJobId()+"/"+in.GetPartitionId()]}, nil
}

func (l *fakeStageLoader) GetQuarantineSummary(_ context.Context, in *loaderv1.GetQuarantineSummaryRequest, _ ...grpc.CallOption) (*loaderv1.GetQuarantineSummaryResponse, error) {
	l.f.saw(in.GetTarget().GetDsn())
	return &loaderv1.GetQuarantineSummaryResponse{}, nil
}

// LoadPartition loads one row: a ledger entry and its acknowledgement.
func (l *fakeStageLoader) LoadPartition(_ context.Context, in *loaderv1.LoadPartitionRequest, _ ...grpc.CallOption) (grpc.ServerStreamingClient[loaderv1.LoadPartitionResponse], error) {
	cfg := in.GetConfig()
	l.f.saw(cfg.GetTarget().GetDsn(), in.GetValidate().GetTransform().GetRead().GetRead().GetSource().GetPostgres().GetDsn())
	l.f.mu.Lock()
	defer l.f.mu.Unlock()
	if l.f.fail != nil {
		return nil, l.f.fail
	}
	counts := &commonv1.Counts{Extracted: 1, Loaded: 1}
	key := cfg.GetJobId() + "/" + cfg.GetPartitionId()
	l.f.ledger[key] = append(l.f.ledger[key], &loaderv1.LedgerEntry{PartitionId: cfg.GetPartitionId(), Seq: 0, LastKey: "1", Counts: counts})
	return &ackStream{acks: []*loaderv1.LoadPartitionResponse{{Ack: &loaderv1.LoadResponse{Seq: 0, Counts: counts}, LastKey: "1"}}}, nil
}

// ackStream hands out its acknowledgements, then io.EOF.
type ackStream struct {
	grpc.ClientStream
	acks []*loaderv1.LoadPartitionResponse
}

func (s *ackStream) Recv() (*loaderv1.LoadPartitionResponse, error) {
	if len(s.acks) == 0 {
		return nil, io.EOF
	}
	a := s.acks[0]
	s.acks = s.acks[1:]
	return a, nil
}

// secretJobSpec has the planted password in its target and source DSNs.
func secretJobSpec() *commonv1.JobSpec {
	return &commonv1.JobSpec{Name: "secret", Target: &commonv1.TargetSpec{Dsn: plantedTarget},
		Tables: []*commonv1.TableSpec{{Name: "orders", TargetTable: "orders",
			Source:  &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Postgres{Postgres: &commonv1.PostgresSource{Dsn: plantedSource, Table: "orders"}}},
			Columns: []*commonv1.ColumnMapping{{Target: "id", Source: "id"}}}}}
}

func newService(t *testing.T, url, keyFile string, f *fakeStages) *Service {
	t.Helper()
	s, err := New(context.Background(), Config{ControlURL: url, Workers: 1, Poll: 10 * time.Millisecond, Lease: 5 * time.Second,
		MaxAttempts: 2, Owner: "test-" + filepath.Base(keyFile), SecretKeyFile: keyFile, Clients: f.clients()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() }) // again after a test's own Close: a no-op
	return s
}

func waitState(t *testing.T, s *Service, id string, want orchestratorv1.JobState) *orchestratorv1.Job {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := s.GetJob(context.Background(), &orchestratorv1.GetJobRequest{Id: id})
		if err != nil {
			t.Fatal(err)
		}
		if res.Job.State == want {
			return res.Job
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s is %s (%s), want %s", id, res.Job.State, res.Job.Error, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// noSecretAtRest fails if any row of any table of the control schema (as
// the catalog lists them) holds the planted password.
func noSecretAtRest(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	rows, err := pool.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'cutover_control'`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) < 3 {
		t.Fatalf("control schema tables: %v", tables)
	}
	for _, tbl := range tables {
		var text string
		if err := pool.QueryRow(ctx, `SELECT coalesce(string_agg(t::text, E'\n'), '') FROM `+pgx.Identifier{"cutover_control", tbl}.Sanitize()+` t`).Scan(&text); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(text, planted) {
			t.Errorf("cutover_control.%s holds the password:\n%s", tbl, text)
		}
	}
}

// A job's DSN passwords are nowhere in the control schema or the API's
// answers, yet the job runs, fails, is resumed by another Service with the
// same key file and finishes with its DSNs intact; a Service with another
// key says which job it cannot read and why.
func TestJobSecretsSealedAndResumable(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	keyA, keyC := filepath.Join(dir, "a.key"), filepath.Join(dir, "c.key")
	for _, k := range []string{keyA, keyC} {
		if err := jobstore.WriteKeyFile(k); err != nil {
			t.Fatal(err)
		}
	}
	url := pgtest.NewDatabase(t)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	f := newFakeStages()
	// The first attempt is refused with a message that quotes the DSN.
	f.setFail(status.Error(codes.InvalidArgument, "cannot connect to "+plantedTarget))

	a := newService(t, url, keyA, f)
	res, err := a.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: secretJobSpec()})
	if err != nil {
		t.Fatal(err)
	}
	id := res.GetJob().GetId()
	if b, _ := protojson.Marshal(res); strings.Contains(string(b), planted) {
		t.Fatalf("CreateJob answers with the password: %s", b)
	}
	failed := waitState(t, a, id, orchestratorv1.JobState_JOB_STATE_FAILED)
	if strings.Contains(failed.Error, planted) || !strings.Contains(failed.Error, "cannot connect to postgres://postgres:") {
		t.Errorf("job error %q: want the stage's message without the password", failed.Error)
	}
	noSecretAtRest(t, pool)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	// Another Service (a replica, or this one restarted) with the same key
	// file resumes the job: it reads the stored spec back whole.
	f.setFail(nil)
	b := newService(t, url, keyA, f)
	if _, err := b.ResumeJob(ctx, &orchestratorv1.ResumeJobRequest{Id: id}); err != nil {
		t.Fatal(err)
	}
	done := waitState(t, b, id, orchestratorv1.JobState_JOB_STATE_SUCCEEDED)
	if done.GetCounts().GetLoaded() != 1 {
		t.Errorf("counts %v", done.GetCounts())
	}
	if !strings.Contains(done.GetSpec().GetTarget().GetDsn(), "127.0.0.1") || strings.Contains(done.GetSpec().GetTarget().GetDsn(), planted) {
		t.Errorf("GetJob's spec target %q: want it redacted, not sealed or plain", done.GetSpec().GetTarget().GetDsn())
	}
	seen := f.seen()
	delete(seen, "")
	if len(seen) != 2 || !seen[plantedTarget] || !seen[plantedSource] {
		t.Errorf("the stages were given DSNs %v, want exactly %s and %s", seen, plantedTarget, plantedSource)
	}
	stored, err := b.store.GetJob(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Spec.GetTarget().GetDsn() != plantedTarget || stored.Spec.GetTables()[0].GetSource().GetPostgres().GetDsn() != plantedSource {
		t.Errorf("stored spec read back: %v", stored.Spec)
	}
	rep, err := b.GetJobReport(ctx, &orchestratorv1.GetJobReportRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	if j, _ := protojson.Marshal(rep); strings.Contains(string(j), planted) {
		t.Errorf("report holds the password: %s", j)
	}
	noSecretAtRest(t, pool)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	// A Service with another key cannot read the job, and says so.
	c := newService(t, url, keyC, f)
	_, err = c.GetJob(ctx, &orchestratorv1.GetJobRequest{Id: id})
	st := status.Convert(err)
	if st.Code() != codes.FailedPrecondition || !strings.Contains(st.Message(), id) || !strings.Contains(st.Message(), "--secret-key-file") ||
		strings.Contains(st.Message(), planted) || strings.Contains(st.Message(), sealbox.Prefix) {
		t.Fatalf("GetJob with another key: %v; want FailedPrecondition naming the job and the flag", err)
	}
	list, err := c.ListJobs(ctx, &orchestratorv1.ListJobsRequest{})
	if err != nil || len(list.GetJobs()) != 1 {
		t.Fatalf("ListJobs with another key: %v, %v", list, err)
	}
}

// A replica whose key does not open a running job's secrets does not spin
// on it: it retries with backoff, then fails the job with a clear error.
func TestWrongKeyFailsJobLoudly(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	other, err := jobstore.Open(ctx, url, sealbox.New(sealbox.NewKey()))
	if err != nil {
		t.Fatal(err)
	}
	err = other.InsertJob(ctx, &jobstore.Job{ID: "job-other-key", Name: "x", Parallelism: 1, Spec: secretJobSpec()},
		[]jobstore.Partition{{ID: "orders-0000", Table: "orders", Range: &commonv1.KeyRange{}}})
	other.Close()
	if err != nil {
		t.Fatal(err)
	}
	f := newFakeStages()
	s := newService(t, url, "", f)
	deadline := time.Now().Add(20 * time.Second)
	for {
		j, err := s.ListJobs(ctx, &orchestratorv1.ListJobsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if job := j.GetJobs()[0]; job.GetState() == orchestratorv1.JobState_JOB_STATE_FAILED {
			if !strings.Contains(job.GetError(), "does not open") || !strings.Contains(job.GetError(), "target.dsn") {
				t.Errorf("job error %q does not say why", job.GetError())
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the job was never failed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(f.seen()) != 0 {
		t.Errorf("a stage was called for a job this replica cannot read: %v", f.seen())
	}
}

// Services of one process without a key file share the process's key:
// one reads what another stored.
func TestProcessKeyIsShared(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	f := newFakeStages()
	a := newService(t, url, "", f)
	b := newService(t, url, "", f)
	res, err := a.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: secretJobSpec()})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, b, res.GetJob().GetId(), orchestratorv1.JobState_JOB_STATE_SUCCEEDED)
}

// --secret-key-file (CUTOVER_SECRET_KEY_FILE) must name a key file that
// exists and holds a key; an error names the flag and the file, never the
// content, and creates nothing.
func TestSecretKeyFileSetting(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("CUTOVER_SECRET_KEY_FILE", filepath.Join(dir, "from-env.key"))
	var cfg Config
	fs := flag.NewFlagSet("orchestrator", flag.ContinueOnError)
	cfg.Flags(fs)
	if cfg.SecretKeyFile != filepath.Join(dir, "from-env.key") {
		t.Fatalf("env: SecretKeyFile = %q", cfg.SecretKeyFile)
	}
	if err := fs.Parse([]string{"--secret-key-file", filepath.Join(dir, "flag.key")}); err != nil || cfg.SecretKeyFile != filepath.Join(dir, "flag.key") {
		t.Fatalf("flag: %q, %v", cfg.SecretKeyFile, err)
	}
	bad := filepath.Join(dir, "bad.key")
	if err := os.WriteFile(bad, []byte("hunter2-hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, file, says string }{
		{"missing", filepath.Join(dir, "missing.key"), "no such file"},
		{"wrong size", bad, "want 32 raw bytes"},
		{"a directory", dir, "is a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(context.Background(), Config{ControlURL: "postgres://127.0.0.1:1/none", SecretKeyFile: tc.file})
			if err == nil {
				t.Fatal("started")
			}
			for _, want := range []string{"--secret-key-file", tc.file, tc.says} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q quotes the file", err)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.key")); err == nil {
		t.Fatal("a missing key file was created")
	}
}
