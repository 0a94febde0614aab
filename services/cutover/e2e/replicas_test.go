package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/cutover/internal/testenv"
	"github.com/cutover/cutover/services/kit/server"
	"github.com/cutover/cutover/services/kit/telemetry"
	"github.com/jackc/pgx/v5"
)

// proc is one service process of the replica test.
type proc struct {
	name, addr string
	cmd        *exec.Cmd
}

func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	var ls []net.Listener
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().String())
	}
	for _, l := range ls {
		l.Close()
	}
	return out
}

func startProc(t *testing.T, dir, name, bin, addr string, env []string) *proc {
	t.Helper()
	log, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(binDir, bin))
	cmd.Env, cmd.Stdout, cmd.Stderr = env, log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{name: name, addr: addr, cmd: cmd}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		log.Close()
	})
	for i := 0; i < 300; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return p
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := os.ReadFile(filepath.Join(dir, name+".log"))
	t.Fatalf("%s did not listen on %s:\n%s", name, addr, b)
	return nil
}

// TestReplicas: two orchestrators and two of each stage, each its own
// process; the orchestrators reach the stages through list:/// targets
// (round robin over the replicas that answer). A job over 16 partitions
// runs; once both orchestrators hold partitions, one orchestrator and one
// replica of each stage are SIGKILLed. The job must end SUCCEEDED with
// every row once, both orchestrators must have taken partitions, and every
// batch committed after the kills must have a trace that reaches every
// service.
func TestReplicas(t *testing.T) {
	db := testenv.NewDB(t)
	db.Exec(`CREATE TABLE seq (id bigint PRIMARY KEY, v text)`)
	dir := t.TempDir()
	tlsDir := filepath.Join(dir, "tls")
	if err := server.WriteDevDir(tlsDir, []string{"extractor", "transformer", "validator", "loader", "orchestrator", "gateway"}); err != nil {
		t.Fatal(err)
	}
	traces := filepath.Join(dir, "traces.jsonl")
	base := append(os.Environ(), "CUTOVER_TLS_DIR="+tlsDir, "CUTOVER_FILE_ROOTS="+os.TempDir(), "CUTOVER_TRACE_FILE="+traces,
		"OTEL_BSP_SCHEDULE_DELAY=100", "CUTOVER_GRACE=5s")
	stageNames := []string{"extractor", "transformer", "validator", "loader"}
	addrs := freeAddrs(t, 2*len(stageNames)+2)
	procs := map[string]*proc{}
	orchEnv := append([]string{}, base...)
	for i, s := range stageNames {
		a, b := addrs[2*i], addrs[2*i+1]
		env := "CUTOVER_" + strings.ToUpper(s) + "_ADDR="
		procs[s+"-a"] = startProc(t, dir, s+"-a", s, a, append(append([]string{}, base...), env+a))
		procs[s+"-b"] = startProc(t, dir, s+"-b", s, b, append(append([]string{}, base...), env+b))
		orchEnv = append(orchEnv, env+server.ListScheme+":///"+a+","+b)
	}
	orchEnv = append(orchEnv, "CUTOVER_CONTROL_URL="+db.URL, "CUTOVER_TARGET_URL="+db.URL, "CUTOVER_LEASE=3s", "CUTOVER_WORKERS=4")
	oa, ob := addrs[len(addrs)-2], addrs[len(addrs)-1]
	procs["orchestrator-a"] = startProc(t, dir, "orchestrator-a", "orchestrator", oa, append(append([]string{}, orchEnv...), "CUTOVER_ORCHESTRATOR_ADDR="+oa))
	procs["orchestrator-b"] = startProc(t, dir, "orchestrator-b", "orchestrator", ob, append(append([]string{}, orchEnv...), "CUTOVER_ORCHESTRATOR_ADDR="+ob))

	opts, err := server.ClientOptions(tlsDir)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := server.Dial(oa, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	jobs := orchestratorv1.NewJobServiceClient(cc)

	const rows = 160000
	var sb strings.Builder
	sb.WriteString("id,v\n")
	for i := 1; i <= rows; i++ {
		fmt.Fprintf(&sb, "%d,value %d\n", i, i)
	}
	spec := seqSpec(testenv.WriteFile(t, "replicas.csv", sb.String()), 500)
	spec.Tables[0].Partitions = 16
	// Room for both replicas' 4 workers: parallelism caps the job's running
	// partitions across replicas, and one replica alone fills 4.
	spec.Parallelism = 8
	ctx := context.Background()
	created, err := jobs.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	id := created.Job.Id

	ctl, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close(ctx)
	pids := map[string]string{
		strconv.Itoa(procs["orchestrator-a"].cmd.Process.Pid): "orchestrator-a",
		strconv.Itoa(procs["orchestrator-b"].cmd.Process.Pid): "orchestrator-b",
	}
	// Owners are host:pid:random; a claim shows as lease_owner while held.
	took := map[string]int{}
	seenParts := map[string]map[string]bool{"orchestrator-a": {}, "orchestrator-b": {}}
	observe := func() {
		rs, err := ctl.Query(ctx, `SELECT id, coalesce(lease_owner, '') FROM cutover_control.partitions WHERE job_id = $1`, id)
		if err != nil {
			t.Fatal(err)
		}
		defer rs.Close()
		for rs.Next() {
			var part, owner string
			if err := rs.Scan(&part, &owner); err != nil {
				t.Fatal(err)
			}
			if f := strings.Split(owner, ":"); len(f) == 3 && pids[f[1]] != "" && !seenParts[pids[f[1]]][part] {
				seenParts[pids[f[1]]][part] = true
				took[pids[f[1]]]++
			}
		}
	}
	// Mid-job: both hold partitions and a tenth of the batches committed.
	committed := func() int {
		var n int
		if err := ctl.QueryRow(ctx, `SELECT count(*) FROM cutover.ledger WHERE job_id = $1`, id).Scan(&n); err != nil {
			return 0 // the loader has not made its tables yet
		}
		return n
	}
	deadline := time.Now().Add(2 * time.Minute)
	for took["orchestrator-a"] == 0 || took["orchestrator-b"] == 0 || committed() < 32 {
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "orchestrator-b.log"))
			t.Fatalf("both orchestrators did not hold partitions (took %v); orchestrator-b's log:\n%s", took, tail(b, 3000))
		}
		observe()
		time.Sleep(20 * time.Millisecond)
	}
	j, err := jobs.GetJob(ctx, &orchestratorv1.GetJobRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	if j.Job.State != orchestratorv1.JobState_JOB_STATE_RUNNING {
		t.Fatalf("the job ended (%s) before the kills: make it bigger", j.Job.State)
	}
	for _, n := range []string{"orchestrator-b", "extractor-a", "transformer-b", "validator-a", "loader-b"} {
		_ = procs[n].cmd.Process.Kill()
	}
	killed := time.Now()
	t.Logf("killed orchestrator-b and a replica of each stage with %d of %d batches committed", committed(), rows/500)
	for {
		observe()
		j, err = jobs.GetJob(ctx, &orchestratorv1.GetJobRequest{Id: id})
		if err != nil {
			t.Fatal(err)
		}
		if s := j.Job.State; s != orchestratorv1.JobState_JOB_STATE_RUNNING && s != orchestratorv1.JobState_JOB_STATE_PENDING {
			break
		}
		if time.Since(killed) > 3*time.Minute {
			t.Fatalf("job still %s 3 minutes after the kills", j.Job.State)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if j.Job.State != orchestratorv1.JobState_JOB_STATE_SUCCEEDED {
		t.Fatalf("job %s: %s", j.Job.State, j.Job.Error)
	}
	// Every row once, by the generator's numbers.
	var n, distinct, sum int64
	var bad int64
	if err := ctl.QueryRow(ctx, `SELECT count(*), count(DISTINCT id), coalesce(sum(id), 0), count(*) FILTER (WHERE v <> 'value ' || id) FROM seq`).Scan(&n, &distinct, &sum, &bad); err != nil {
		t.Fatal(err)
	}
	if n != rows || distinct != rows || sum != rows*(rows+1)/2 || bad != 0 {
		t.Fatalf("target holds %d rows (%d distinct ids, sum %d, %d wrong values), want %d once each", n, distinct, sum, bad, rows)
	}
	t.Logf("partitions held: orchestrator-a %d, orchestrator-b %d (of 16; a partition taken over counts for both)", took["orchestrator-a"], took["orchestrator-b"])

	// Traces: stop the survivors so they flush, then every batch committed
	// after the kills (the killed processes' unexported spans are lost with
	// them) has one attempt whose trace reaches every service.
	for _, name := range []string{"orchestrator-a", "extractor-b", "transformer-a", "validator-b", "loader-a"} {
		_ = procs[name].cmd.Process.Signal(syscall.SIGTERM)
		_ = procs[name].cmd.Wait()
	}
	spans, err := telemetry.ReadSpans(traces)
	if err != nil {
		t.Fatal(err)
	}
	children := map[string][]telemetry.SpanRecord{}
	batches := map[string][]telemetry.SpanRecord{}
	for _, s := range spans {
		children[s.ParentSpanID] = append(children[s.ParentSpanID], s)
		if s.Name == "batch" && s.Attributes["cutover.job_id"] == id {
			k := s.Attributes["cutover.partition"] + "/" + s.Attributes["cutover.seq"]
			batches[k] = append(batches[k], s)
		}
	}
	services := func(root telemetry.SpanRecord) map[string]bool {
		seen := map[string]bool{root.Service: true}
		stack := []string{root.SpanID}
		for len(stack) > 0 {
			sid := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, c := range children[sid] {
				seen[c.Service] = true
				stack = append(stack, c.SpanID)
			}
		}
		return seen
	}
	rs, err := ctl.Query(ctx, `SELECT partition_id, seq, committed_at > $2 FROM cutover.ledger WHERE job_id = $1`, id, killed.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	checked, incomplete := 0, 0
	for rs.Next() {
		var part string
		var seq int64
		var after bool
		if err := rs.Scan(&part, &seq, &after); err != nil {
			t.Fatal(err)
		}
		if !after {
			continue
		}
		checked++
		complete := false
		for _, b := range batches[part+"/"+strconv.FormatInt(seq, 10)] {
			got := services(b)
			if got["cutover-orchestrator"] && got["cutover-extractor"] && got["cutover-transformer"] && got["cutover-validator"] && got["cutover-loader"] {
				complete = true
			}
		}
		if !complete {
			incomplete++
			if incomplete <= 5 {
				t.Errorf("batch %s/%d: no attempt's trace reaches every service", part, seq)
			}
		}
	}
	rs.Close()
	if checked == 0 {
		t.Fatal("no batch was committed after the kills: the kills came too late to test anything")
	}
	t.Logf("%d batches committed after the kills, %d with an incomplete trace", checked, incomplete)
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
