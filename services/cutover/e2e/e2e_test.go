package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/cutover/internal/testenv"
	"github.com/cutover/cutover/services/kit/pki"
	"github.com/cutover/cutover/services/kit/telemetry"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func jobClient(p *procs) orchestratorv1.JobServiceClient {
	return orchestratorv1.NewJobServiceClient(p.dial())
}

func seqSpec(csv string, batch int32) *commonv1.JobSpec {
	return &commonv1.JobSpec{Name: "seq", BatchSize: batch, Tables: []*commonv1.TableSpec{{
		Name: "seq", TargetTable: "seq",
		Source:  &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Csv{Csv: &commonv1.CsvSource{Path: csv}}},
		Columns: []*commonv1.ColumnMapping{{Target: "id", Source: "id"}, {Target: "v", Source: "v"}},
		Rules:   []*commonv1.Rule{{Column: "v", Kind: &commonv1.Rule_Regex{Regex: &commonv1.RegexRule{Pattern: "^value"}}}},
	}}}
}

func seqCSV(t *testing.T, n int) string {
	var sb strings.Builder
	sb.WriteString("id,v\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&sb, "%d,value %d\n", i, i)
	}
	return testenv.WriteFile(t, "seq.csv", sb.String())
}

// withPassword puts a password into a DSN; trust auth ignores it, so it
// stands in for a real secret that must never show up anywhere.
func withPassword(dsn, pw string) string {
	u, _ := url.Parse(dsn)
	u.User = url.UserPassword("postgres", pw)
	return u.String()
}

// TestTraceSpansAllServices: one batch's spans from all five services share
// the job's trace id and hang under that batch's span (the extractor's,
// under the orchestrator's partition span; the orchestrator's own is its
// check of the loader's acknowledgement), and no secret leaks into spans or
// logs.
func TestTraceSpansAllServices(t *testing.T) {
	db := testenv.NewDB(t)
	db.Exec(`CREATE TABLE seq (id bigint PRIMARY KEY, v text)`)
	const secret = "s3cretpw"
	target := withPassword(db.URL, secret)
	p := startProcs(t, "CUTOVER_CONTROL_URL="+db.URL, "CUTOVER_TARGET_URL="+target)
	jobs := jobClient(p)
	created, err := jobs.CreateJob(context.Background(), &orchestratorv1.CreateJobRequest{Spec: seqSpec(seqCSV(t, 25), 10)})
	if err != nil {
		t.Fatalf("CreateJob: %v", err)
	}
	job := testenv.WaitJob(t, jobs, created.Job.Id, time.Minute)
	if job.State != orchestratorv1.JobState_JOB_STATE_SUCCEEDED || job.Counts.Loaded != 25 {
		t.Fatalf("job %s %s %+v", job.State, job.Error, job.Counts)
	}
	checkMTLS(t, p)
	p.script("stop.sh") // SIGTERM flushes every process's spans

	spans, err := telemetry.ReadSpans(filepath.Join(p.dir, "traces.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]telemetry.SpanRecord{}
	var batchSpan *telemetry.SpanRecord
	for i, s := range spans {
		byID[s.SpanID] = s
		if s.Name == "batch" && s.Attributes["cutover.job_id"] == job.Id && s.Attributes["cutover.seq"] == "1" {
			batchSpan = &spans[i]
		}
	}
	if batchSpan == nil {
		t.Fatalf("no span for batch 1 of job %s among %d spans", job.Id, len(spans))
	}
	if batchSpan.TraceID != job.TraceId {
		t.Fatalf("batch span trace %s, job trace %s", batchSpan.TraceID, job.TraceId)
	}
	under := func(s telemetry.SpanRecord) bool {
		for hops := 0; s.ParentSpanID != "" && hops < 20; hops++ {
			if s.ParentSpanID == batchSpan.SpanID {
				return true
			}
			parent, ok := byID[s.ParentSpanID]
			if !ok {
				return false
			}
			s = parent
		}
		return false
	}
	found := map[string]int{}
	for _, s := range spans {
		if s.TraceID == batchSpan.TraceID && under(s) {
			found[s.Service]++
		}
	}
	for _, svc := range []string{"cutover-orchestrator", "cutover-extractor", "cutover-transformer", "cutover-validator", "cutover-loader"} {
		if found[svc] == 0 {
			t.Errorf("no span of %s under batch span %s (found %v)", svc, batchSpan.SpanID, found)
		}
	}
	// The batch hangs under its partition, the partition under the job.
	part, ok := byID[batchSpan.ParentSpanID]
	if !ok || part.Name != "partition" {
		t.Fatalf("batch span's parent is %+v, want the partition span", part)
	}
	if root, ok := byID[part.ParentSpanID]; !ok || root.Name != "job" || root.TraceID != job.TraceId {
		t.Fatalf("partition span's parent is %+v, want the job span", root)
	}
	// No secret in spans or logs.
	files, _ := filepath.Glob(filepath.Join(p.dir, "*"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if strings.Contains(string(b), secret) {
			t.Errorf("%s contains the DSN password", filepath.Base(f))
		}
	}
}

// TestLoaderKilledMidJob: SIGKILL the loader while batches commit, start it
// again, resume the job: every row is in the target exactly once and the
// ledger holds every batch once.
func TestLoaderKilledMidJob(t *testing.T) {
	db := testenv.NewDB(t)
	db.Exec(`CREATE TABLE seq (id bigint PRIMARY KEY, v text)`)
	// One attempt per partition: the kill fails the job, and the test
	// resumes it explicitly, as an operator would.
	p := startProcs(t, "CUTOVER_CONTROL_URL="+db.URL, "CUTOVER_TARGET_URL="+db.URL, "CUTOVER_MAX_ATTEMPTS=1")
	jobs := jobClient(p)
	const rows, batch = 300000, 200
	created, err := jobs.CreateJob(context.Background(), &orchestratorv1.CreateJobRequest{Spec: seqSpec(seqCSV(t, rows), batch)})
	if err != nil {
		t.Fatalf("CreateJob: %v", err)
	}
	id := created.Job.Id
	deadline := time.Now().Add(time.Minute)
	for db.Int(`SELECT count(*) FROM cutover.ledger WHERE job_id = $1`, id) < 20 {
		if time.Now().After(deadline) {
			t.Fatalf("no progress before the kill\n%s", p.logs())
		}
		time.Sleep(2 * time.Millisecond)
	}
	p.kill9("loader")
	before := db.Int(`SELECT count(*) FROM cutover.ledger WHERE job_id = $1`, id)
	if before >= rows/batch {
		t.Fatalf("the job finished before the kill; make it longer")
	}
	job := testenv.WaitJob(t, jobs, id, time.Minute)
	if job.State != orchestratorv1.JobState_JOB_STATE_FAILED {
		t.Fatalf("with the loader gone the job should fail, got %s", job.State)
	}
	p.script("start.sh", "loader")
	if _, err := jobs.ResumeJob(context.Background(), &orchestratorv1.ResumeJobRequest{Id: id}); err != nil {
		t.Fatalf("ResumeJob: %v", err)
	}
	job = testenv.WaitJob(t, jobs, id, 3*time.Minute)
	if job.State != orchestratorv1.JobState_JOB_STATE_SUCCEEDED {
		t.Fatalf("after resume: %s %s\n%s", job.State, job.Error, p.logs())
	}
	if n := db.Int(`SELECT count(*) FROM seq`); n != rows {
		t.Fatalf("target has %d rows, want %d", n, rows)
	}
	if n := db.Int(`SELECT count(DISTINCT id) FROM seq`); n != rows {
		t.Fatalf("target has %d distinct ids, want %d", n, rows)
	}
	if n := db.Int(`SELECT count(*) FROM seq WHERE v <> 'value ' || id`); n != 0 {
		t.Fatalf("%d rows have wrong values", n)
	}
	nb := int64(rows / batch)
	if n := db.Int(`SELECT count(*) FROM cutover.ledger WHERE job_id = $1`, id); n != nb {
		t.Fatalf("ledger has %d batches, want %d", n, nb)
	}
	if n := db.Int(`SELECT count(DISTINCT seq) FROM cutover.ledger WHERE job_id = $1 AND seq BETWEEN 0 AND $2`, id, nb-1); n != nb {
		t.Fatalf("ledger covers %d of seq 0..%d", n, nb-1)
	}
	if n := db.Int(`SELECT sum(extracted - loaded - quarantined) FROM cutover.ledger WHERE job_id = $1`, id); n != 0 {
		t.Fatalf("ledger does not balance by %d", n)
	}
	if job.Counts.Extracted != rows || job.Counts.Loaded != rows || job.Counts.Quarantined != 0 {
		t.Fatalf("job counts %+v", job.Counts)
	}
}

// checkMTLS: every gRPC port of the running processes refuses plaintext
// and a certificate from another CA, and the gateway speaks only HTTPS.
func checkMTLS(t *testing.T, p *procs) {
	t.Helper()
	foreign, err := pki.NewCA("elsewhere")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := foreign.Issue("orchestrator")
	if err != nil {
		t.Fatal(err)
	}
	ours, err := pki.RootsOnly(filepath.Join(p.tls, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"extractor", "transformer", "validator", "loader", "orchestrator"} {
		addr := p.addr(offsets[name])
		for how, opt := range map[string]grpc.DialOption{
			"plaintext": grpc.WithTransportCredentials(insecure.NewCredentials()),
			"foreign certificate": grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: ours.Pool(),
				GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert.TLS, nil }})),
		} {
			cc, err := grpc.NewClient(addr, opt)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			_, err = healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
			cancel()
			cc.Close()
			if err == nil {
				t.Errorf("%s at %s answered a client with a %s", name, addr, how)
			}
		}
	}
	res, err := http.Get("http://" + p.addr(offsets["gateway"]) + "/healthz")
	if err == nil {
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			t.Errorf("the gateway answered plain HTTP")
		}
	}
}
