package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/cutover/internal/testenv"
)

// metricsOffsets are the services' offsets from the port base: each serves
// /metrics on base+100+offset (start.sh, CUTOVER_METRICS_BASE).
var metricsOffsets = map[string]int{"extractor": 1, "transformer": 2, "validator": 3, "loader": 4, "orchestrator": 5, "gateway": 80}

// series is one scrape: "name{labels}" → value.
type series map[string]float64

func (p *procs) scrape(t *testing.T, service string) series {
	t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", p.base+100+metricsOffsets[service])
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("%s /metrics: %v", service, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s /metrics: %s", service, resp.Status)
	}
	out := series{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("%s: unparsable line %q", service, line)
		}
		out[line[:i]] = v
	}
	return out
}

var labelRe = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// TestMetricsOnEveryService: every service serves /metrics while a job
// runs; the stages' row counters rise during the job and end at the
// generator's counts; after 100 jobs (each with its own table, job name and
// spec rule name) the set of series has not grown and no label carries a
// job's free text.
func TestMetricsOnEveryService(t *testing.T) {
	db := testenv.NewDB(t)
	p := startProcs(t, "CUTOVER_CONTROL_URL="+db.URL, "CUTOVER_TARGET_URL="+db.URL)
	jobs := jobClient(p)
	ctx := context.Background()

	// Job 1: 120,000 rows in batches of 100 (long enough to see counters move); every 100th row breaks the regex.
	const rows, every = 120000, 100
	var sb strings.Builder
	sb.WriteString("id,v\n")
	for i := 1; i <= rows; i++ {
		if i%every == 0 {
			fmt.Fprintf(&sb, "%d,bad %d\n", i, i)
		} else {
			fmt.Fprintf(&sb, "%d,value %d\n", i, i)
		}
	}
	db.Exec(`CREATE TABLE seq (id bigint PRIMARY KEY, v text)`)
	created, err := jobs.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: seqSpec(testenv.WriteFile(t, "metrics.csv", sb.String()), 100)})
	if err != nil {
		t.Fatal(err)
	}
	stagesRows := map[string]string{
		"extractor":   `cutover_rows_total{outcome="out",stage="extractor"}`,
		"transformer": `cutover_rows_total{outcome="out",stage="transformer"}`,
		"validator":   `cutover_rows_total{outcome="out",stage="validator"}`,
		"loader":      `cutover_rows_total{outcome="out",stage="loader"}`,
	}
	seen := map[string]map[float64]bool{}
	running, queued := false, false
	for {
		j, err := jobs.GetJob(ctx, &orchestratorv1.GetJobRequest{Id: created.Job.Id})
		if err != nil {
			t.Fatal(err)
		}
		if j.Job.State != orchestratorv1.JobState_JOB_STATE_RUNNING && j.Job.State != orchestratorv1.JobState_JOB_STATE_PENDING {
			if j.Job.State != orchestratorv1.JobState_JOB_STATE_SUCCEEDED {
				t.Fatalf("job 1 %s: %s", j.Job.State, j.Job.Error)
			}
			break
		}
		for svc, name := range stagesRows {
			if seen[svc] == nil {
				seen[svc] = map[float64]bool{}
			}
			if v := p.scrape(t, svc)[name]; v > 0 && v < rows {
				seen[svc][v] = true
			}
		}
		o := p.scrape(t, "orchestrator")
		if o[`cutover_partitions{state="running"}`] > 0 {
			running = true
		}
		if o[`cutover_queue_jobs{kind="cutover_partition",state="running"}`] > 0 {
			queued = true
		}
		time.Sleep(20 * time.Millisecond)
	}
	for svc := range stagesRows {
		if len(seen[svc]) < 2 {
			t.Errorf("%s: its rows counter was not seen rising during the job (values %v)", svc, seen[svc])
		}
	}
	if !running {
		t.Error("orchestrator: no running partition seen in cutover_partitions during the job")
	}
	if !queued {
		t.Error("orchestrator: no running partition job seen in cutover_queue_jobs during the job")
	}
	// At the end: the generator's counts.
	bad := float64(rows / every)
	for _, c := range []struct {
		svc, name string
		want      float64
	}{
		{"extractor", `cutover_rows_total{outcome="out",stage="extractor"}`, rows},
		{"transformer", `cutover_rows_total{outcome="in",stage="transformer"}`, rows},
		{"transformer", `cutover_rows_total{outcome="out",stage="transformer"}`, rows},
		{"validator", `cutover_rows_total{outcome="out",stage="validator"}`, rows - bad},
		{"validator", `cutover_rows_total{outcome="quarantined",stage="validator"}`, bad},
		{"validator", `cutover_rejects_total{rule="regex",stage="validator"}`, bad},
		{"loader", `cutover_rows_total{outcome="in",stage="loader"}`, rows},
		{"loader", `cutover_rows_total{outcome="out",stage="loader"}`, rows - bad},
		{"loader", `cutover_rows_total{outcome="quarantined",stage="loader"}`, bad},
		{"loader", `cutover_batch_duration_seconds_count{stage="loader"}`, rows / 100},
		{"orchestrator", `cutover_jobs{state="succeeded"}`, 1},
	} {
		if got := p.scrape(t, c.svc)[c.name]; got != c.want {
			t.Errorf("%s: %s = %v, want %v", c.svc, c.name, got, c.want)
		}
	}
	gw := p.scrape(t, "gateway")
	if gw["go_goroutines"] == 0 {
		t.Errorf("gateway: no Go runtime metrics")
	}

	// 99 more small jobs, each with its own names: the series stay the same.
	var after10 map[string]int
	var freeText []string
	for n := 2; n <= 100; n++ {
		table := fmt.Sprintf("t_metrics_%d", n)
		db.Exec(fmt.Sprintf(`CREATE TABLE %s (id bigint PRIMARY KEY, v text)`, table))
		spec := seqSpec(seqCSV(t, 20), 10)
		spec.Name = fmt.Sprintf("metrics job %d", n)
		spec.Tables[0].Name, spec.Tables[0].TargetTable = table, table
		spec.Tables[0].Rules[0].Name = fmt.Sprintf("rule_of_job_%d", n)
		c, err := jobs.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: spec})
		if err != nil {
			t.Fatalf("job %d: %v", n, err)
		}
		if j := testenv.WaitJob(t, jobs, c.Job.Id, time.Minute); j.State != orchestratorv1.JobState_JOB_STATE_SUCCEEDED {
			t.Fatalf("job %d %s: %s", n, j.State, j.Error)
		}
		freeText = append(freeText, c.Job.Id, table, spec.Name, spec.Tables[0].Rules[0].Name)
		if n == 10 {
			after10 = counts(t, p)
		}
	}
	after100 := counts(t, p)
	for svc, n := range after100 {
		if n != after10[svc] {
			t.Errorf("%s: %d series after 10 jobs, %d after 100", svc, after10[svc], n)
		}
	}
	for svc := range metricsOffsets {
		for key := range p.scrape(t, svc) {
			for _, m := range labelRe.FindAllStringSubmatch(key, -1) {
				for _, f := range freeText {
					if strings.Contains(m[2], f) {
						t.Errorf("%s: label %s=%q carries a job's %q", svc, m[1], m[2], f)
					}
				}
			}
		}
	}
	if got := p.scrape(t, "orchestrator")[`cutover_jobs{state="succeeded"}`]; got != 100 {
		t.Errorf(`cutover_jobs{state="succeeded"} = %v after 100 jobs`, got)
	}
}

// counts is the number of cutover_ and rpc_ series per service (the Go
// runtime's own vary with what the runtime did, not with jobs).
func counts(t *testing.T, p *procs) map[string]int {
	out := map[string]int{}
	for svc := range metricsOffsets {
		for key := range p.scrape(t, svc) {
			if strings.HasPrefix(key, "cutover_") || strings.HasPrefix(key, "rpc_") {
				out[svc]++
			}
		}
	}
	return out
}
