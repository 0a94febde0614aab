// Package chaos is the fault-injection suite behind `make chaos`: a
// multi-partition job runs with every service a separate process while
// services are SIGKILLed, PostgreSQL restarts mid-COPY and links between
// services reset, slow down or stall; then the target must equal a clean
// run's, row for row. The suite is test code only; `make chaos` runs the
// full form, `go test` (and so `make test`) a bounded one.
package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/kit/server"
	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var binDir string

// TestMain builds the service binaries once, as separate programs.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cutover-chaos-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	wd, _ := os.Getwd()
	root := filepath.Clean(filepath.Join(wd, "..", "..", ".."))
	for _, s := range append(append([]string{}, stages...), "orchestrator") {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, s), "./cmd/"+s)
		cmd.Dir = filepath.Join(root, "services", s)
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", s, err, out)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// settings are the suite's size; env overrides them (see README, Chaos).
type settings struct {
	seed                    uint64
	faults, rows, parts, bs int
	batchTimeout            time.Duration
}

func loadSettings() settings {
	s := settings{seed: uint64(time.Now().UnixNano()), faults: 9, rows: 60000, parts: 8, bs: 200, batchTimeout: 3 * time.Second}
	if os.Getenv("CUTOVER_CHAOS_FULL") == "1" {
		s.faults, s.rows, s.parts, s.bs = 36, 200000, 24, 250
	}
	envInt := func(name string, p *int) {
		if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
			*p = n
		}
	}
	if v, err := strconv.ParseUint(os.Getenv("CUTOVER_CHAOS_SEED"), 10, 64); err == nil {
		s.seed = v
	}
	envInt("CUTOVER_CHAOS_FAULTS", &s.faults)
	envInt("CUTOVER_CHAOS_ROWS", &s.rows)
	envInt("CUTOVER_CHAOS_PARTITIONS", &s.parts)
	envInt("CUTOVER_CHAOS_BATCH", &s.bs)
	return s
}

// Fault kinds. Every kind is injected once per cycle, cycles in a seeded
// random order.
var kinds = []string{
	"kill extractor", "kill transformer", "kill validator", "kill loader", "kill orchestrator",
	"postgres restart", "net reset_peer", "net latency", "net stall",
}

// TestChaos runs a clean job, then the same job under faults in rounds
// until the fault budget is spent, and checks every round's target
// against the clean one.
func TestChaos(t *testing.T) {
	cfg := loadSettings()
	t.Logf("chaos seed %d (CUTOVER_CHAOS_SEED=%d replays it): %d faults, %d rows, %d partitions, batch %d",
		cfg.seed, cfg.seed, cfg.faults, cfg.rows, cfg.parts, cfg.bs)
	fmt.Printf("chaos seed %d\n", cfg.seed)
	rng := rand.New(rand.NewPCG(cfg.seed, 0x636875746f766572))

	pg := startCluster(t)
	control := pg.database(t, "chaos_control")
	csv := writeCSV(t, cfg.rows)
	st := startStack(t, binDir, control,
		"CUTOVER_LEASE=4s", "CUTOVER_BATCH_TIMEOUT="+cfg.batchTimeout.String(), "CUTOVER_WORKERS=4", "CUTOVER_MAX_ATTEMPTS=5")
	jobs := jobClient(t, st)

	cleanDB := pg.database(t, "chaos_clean")
	cleanJob := runJob(t, st, jobs, spec(csv, cleanDB, cfg), nil)
	clean := snapshotOf(t, cleanDB, cleanJob)
	if clean.rows == 0 || clean.quarantined == 0 {
		t.Fatalf("the clean run loaded %d rows and quarantined %d; both must be > 0", clean.rows, clean.quarantined)
	}

	inj := &injector{t: t, st: st, pg: pg, rng: rng, cfg: cfg, byKind: map[string]int{}}
	var lost, dup int
	for round := 1; inj.total < cfg.faults; round++ {
		if round > 4*cfg.faults {
			t.Fatalf("only %d of %d faults injected in %d rounds; make the job longer", inj.total, cfg.faults, round-1)
		}
		db := pg.database(t, fmt.Sprintf("chaos_round_%d", round))
		job := runJob(t, st, jobs, spec(csv, db, cfg), inj)
		got := snapshotOf(t, db, job)
		// A fault may still be healing (a PostgreSQL restart that found no
		// COPY to hit lands after the job): Unavailable is retried, as any
		// client does.
		var rep *orchestratorv1.GetJobReportResponse
		var err error
		for try := 0; try < 30; try++ {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			rep, err = jobs.GetJobReport(ctx, &orchestratorv1.GetJobReportRequest{Id: job.Id})
			cancel()
			if status.Code(err) != codes.Unavailable {
				break
			}
			time.Sleep(time.Second)
		}
		if err != nil || !rep.GetReport().GetBalanced() {
			t.Errorf("round %d: the report of job %s is not balanced (err %v)", round, job.Id, err)
		}
		l, d, problems := compare(clean, got)
		lost += l
		dup += d
		t.Logf("round %d: job %s, faults so far %d, resumes %d, lost %d, duplicated %d", round, job.Id, inj.total, inj.resumes, l, d)
		for _, p := range problems {
			t.Errorf("round %d: %s", round, p)
		}
	}
	names := append([]string{}, kinds...)
	sort.Strings(names)
	for _, k := range names {
		fmt.Printf("  %-18s %d\n", k, inj.byKind[k])
	}
	fmt.Printf("  %-18s %d of %d postgres restarts\n", "mid-COPY", inj.midCopy, inj.byKind["postgres restart"])
	fmt.Printf("  %-18s %d\n", "job resumes", inj.resumes)
	fmt.Printf("  %-18s %d\n", "batch timeouts", st.countInLogs("not acknowledged within the batch timeout"))
	fmt.Printf("  %-18s %d\n", "partition retries", st.countInLogs("partition failed, will retry"))
	if lost != 0 || dup != 0 {
		t.Errorf("lost %d rows, duplicated %d", lost, dup)
	}
	if t.Failed() {
		t.Logf("service logs:\n%s", st.logs())
	}
	fmt.Printf("faults %d, lost %d, duplicated %d\n", inj.total, lost, dup)
}

func jobClient(t *testing.T, st *stack) orchestratorv1.JobServiceClient {
	t.Helper()
	opts, err := server.ClientOptions(st.tls)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := server.Dial(st.jobAddr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return orchestratorv1.NewJobServiceClient(cc)
}

// writeCSV writes id,v rows; every 500th value breaks the rule and is
// quarantined, so the accounting has two terms to balance.
func writeCSV(t *testing.T, n int) string {
	t.Helper()
	var sb strings.Builder
	sb.WriteString("id,v\n")
	for i := 1; i <= n; i++ {
		if i%500 == 7 {
			fmt.Fprintf(&sb, "%d,broken %d\n", i, i)
			continue
		}
		fmt.Fprintf(&sb, "%d,value %d\n", i, i)
	}
	path := filepath.Join(t.TempDir(), "chaos.csv")
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func spec(csv, target string, cfg settings) *commonv1.JobSpec {
	return &commonv1.JobSpec{Name: "chaos", BatchSize: int32(cfg.bs), Parallelism: 4,
		Target: &commonv1.TargetSpec{Dsn: target},
		Tables: []*commonv1.TableSpec{{
			Name: "seq", TargetTable: "seq", Partitions: int32(cfg.parts),
			Source:  &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Csv{Csv: &commonv1.CsvSource{Path: csv}}},
			Columns: []*commonv1.ColumnMapping{{Target: "id", Source: "id"}, {Target: "v", Source: "v"}},
			Rules:   []*commonv1.Rule{{Column: "v", Kind: &commonv1.Rule_Regex{Regex: &commonv1.RegexRule{Pattern: "^value"}}}},
		}}}
}

// runJob creates the target table, runs the job to SUCCEEDED (resuming it
// when retries ran out), with inj injecting faults while it runs.
func runJob(t *testing.T, st *stack, jobs orchestratorv1.JobServiceClient, sp *commonv1.JobSpec, inj *injector) *orchestratorv1.Job {
	t.Helper()
	exec1(t, sp.Target.Dsn, `CREATE TABLE seq (id bigint PRIMARY KEY, v text NOT NULL)`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	created, err := jobs.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: sp})
	cancel()
	if err != nil {
		t.Fatalf("CreateJob: %v", err)
	}
	id := created.Job.Id
	stop := make(chan struct{})
	var wg sync.WaitGroup
	if inj != nil {
		wg.Add(1)
		go func() { defer wg.Done(); inj.run(stop) }()
	}
	finish := func() {
		close(stop)
		wg.Wait()
		if inj != nil && inj.err != nil {
			t.Fatalf("injecting faults: %v\n%s", inj.err, st.logs())
		}
	}
	deadline := time.Now().Add(10 * time.Minute)
	resumed := 0
	for {
		if time.Now().After(deadline) {
			finish()
			t.Fatalf("job %s did not succeed within 10 minutes\n%s", id, st.logs())
		}
		time.Sleep(200 * time.Millisecond)
		if n := st.healProxies(); n > 0 {
			t.Logf("job %s: restarted %d proxy listener(s) that had stopped accepting", id, n)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res, err := jobs.GetJob(ctx, &orchestratorv1.GetJobRequest{Id: id})
		cancel()
		if err != nil {
			continue // the orchestrator may be down for a moment
		}
		job := res.GetJob()
		switch job.GetState() {
		case orchestratorv1.JobState_JOB_STATE_SUCCEEDED:
			finish()
			return job
		case orchestratorv1.JobState_JOB_STATE_FAILED:
			if inj == nil {
				t.Fatalf("clean run failed: %s\n%s", job.GetError(), st.logs())
			}
			// Retries ran out under the faults: resume, as an operator would,
			// but not forever: a job that keeps failing is a finding.
			resumed++
			if resumed > 5 {
				finish()
				t.Fatalf("job %s failed again after 5 resumes: %s\n%s", id, job.GetError(), st.logs())
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := jobs.ResumeJob(ctx, &orchestratorv1.ResumeJobRequest{Id: id})
			cancel()
			if err == nil {
				inj.mu.Lock()
				inj.resumes++
				inj.mu.Unlock()
				t.Logf("job %s failed (%s); resumed", id, job.GetError())
			}
		case orchestratorv1.JobState_JOB_STATE_CANCELLED:
			finish()
			t.Fatalf("job %s was cancelled", id)
		}
	}
}

func exec1(t *testing.T, dsn, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// injector injects faults at seeded random moments while a job runs.
type injector struct {
	t   *testing.T
	st  *stack
	pg  *cluster
	rng *rand.Rand
	cfg settings

	mu      sync.Mutex
	order   []string
	total   int
	byKind  map[string]int
	midCopy int
	resumes int
	err     error
}

func (in *injector) next() string {
	if len(in.order) == 0 {
		in.order = append([]string{}, kinds...)
		in.rng.Shuffle(len(in.order), func(i, j int) { in.order[i], in.order[j] = in.order[j], in.order[i] })
	}
	k := in.order[0]
	in.order = in.order[1:]
	return k
}

func (in *injector) sleep(stop chan struct{}, d time.Duration) bool {
	select {
	case <-stop:
		return false
	case <-time.After(d):
		return true
	}
}

func (in *injector) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(in.rng.Int64N(int64(hi-lo)))
}

// run injects until stop closes or the budget is spent; every fault is
// healed before the next one and before run returns.
func (in *injector) run(stop chan struct{}) {
	for in.total < in.cfg.faults {
		if !in.sleep(stop, in.between(100*time.Millisecond, 700*time.Millisecond)) {
			return
		}
		kind := in.next()
		if err := in.inject(kind); err != nil {
			in.err = fmt.Errorf("%s: %w", kind, err)
			return
		}
		in.mu.Lock()
		in.total++
		in.byKind[kind]++
		in.mu.Unlock()
	}
}

func (in *injector) inject(kind string) error {
	switch {
	case strings.HasPrefix(kind, "kill "):
		s := in.st.services[strings.TrimPrefix(kind, "kill ")]
		s.kill9()
		time.Sleep(in.between(0, 800*time.Millisecond))
		return s.start()
	case kind == "postgres restart":
		// Wait for a COPY in flight (up to 5s), then crash-restart.
		if in.copyRunning(5 * time.Second) {
			in.midCopy++
		}
		return in.pg.restart()
	default:
		link := stages[in.rng.IntN(len(stages))]
		p := in.st.proxies[link]
		stream := []string{"upstream", "downstream"}[in.rng.IntN(2)]
		var typ, attrs string
		var hold time.Duration
		switch kind {
		case "net reset_peer":
			typ, attrs, hold = "reset_peer", `{"timeout":0}`, in.between(200*time.Millisecond, 800*time.Millisecond)
		case "net latency":
			typ, hold = "latency", in.between(time.Second, 3*time.Second)
			attrs = fmt.Sprintf(`{"latency":%d,"jitter":50}`, 100+in.rng.IntN(300))
		case "net stall":
			// Longer than the batch deadline, so the deadline must fire.
			typ, attrs, hold = "timeout", `{"timeout":0}`, in.cfg.batchTimeout+in.between(time.Second, 2*time.Second)
		}
		body := fmt.Sprintf(`{"name":"chaos","type":%q,"stream":%q,"toxicity":1,"attributes":%s}`, typ, stream, attrs)
		if _, err := p.Toxics.AddToxicJson(strings.NewReader(body)); err != nil {
			return fmt.Errorf("add %s toxic on %s: %w", typ, link, err)
		}
		time.Sleep(hold)
		return p.Toxics.RemoveToxic(context.Background(), "chaos")
	}
}

func (in *injector) copyRunning(wait time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	conn, err := pgx.Connect(ctx, in.pg.URL)
	if err != nil {
		return false
	}
	defer conn.Close(context.Background())
	for ctx.Err() == nil {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query ILIKE 'copy %'`).Scan(&n); err == nil && n > 0 {
			return true
		}
		time.Sleep(2 * time.Millisecond)
	}
	return false
}
