package metrics

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func scrape(t *testing.T, p *Provider) string {
	t.Helper()
	rec := httptest.NewRecorder()
	p.Handler.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

// A batch through a stage shows as Prometheus series with the counts it
// carried: rows in, rows out (not rejected by any stage), rows this stage
// quarantined, rejects by rule kind with a spec's rule name folded into
// "named", and the time histogram.
func TestBatchSeries(t *testing.T) {
	ctx := context.Background()
	p, err := Setup(ctx, "cutover-test")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(ctx)
	in := &commonv1.Batch{NumRows: 10, Rejects: []*commonv1.Reject{{Row: 0, Rule: "cast"}}}
	snap := Received(in)
	out := &commonv1.Batch{NumRows: 10, Rejects: []*commonv1.Reject{{Row: 0, Rule: "cast"},
		{Row: 1, Rule: "one_of"}, {Row: 1, Rule: "no_bad_customers_of_acme"}, {Row: 2, Rule: "regex", Warning: true}}}
	Batch(ctx, "validator", snap, out, 30*time.Millisecond)
	Loaded(ctx, 8, 2, 0, []*commonv1.Reject{{Rule: "target_constraint"}})
	InFlight(ctx, "loader", 1)
	Retry(ctx)
	unreg, err := ObserveControl(func(context.Context) (*Control, error) {
		return &Control{Jobs: map[string]int64{"running": 2}, Partitions: map[string]int64{"pending": 5}, Followers: 1, LagRows: 7, LagSeconds: 1.5}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer unreg() //nolint:errcheck
	text := scrape(t, p)
	for _, want := range []string{
		`cutover_rows_total{outcome="in",stage="validator"} 10`,
		`cutover_rows_total{outcome="out",stage="validator"} 8`,
		`cutover_rows_total{outcome="quarantined",stage="validator"} 1`,
		`cutover_rejects_total{rule="one_of",stage="validator"} 1`,
		`cutover_rejects_total{rule="named",stage="validator"} 1`,
		`cutover_rejects_total{rule="regex",stage="validator"} 1`,
		`cutover_rejects_total{rule="target_constraint",stage="loader"} 1`,
		`cutover_rows_total{outcome="out",stage="loader"} 8`,
		`cutover_batch_duration_seconds_bucket{stage="validator",le="0.05"} 1`,
		`cutover_batch_duration_seconds_count{stage="validator"} 1`,
		`cutover_batches_in_flight{stage="loader"} 1`,
		`cutover_partition_retries_total 1`,
		`cutover_jobs{state="running"} 2`,
		`cutover_partitions{state="pending"} 5`,
		`cutover_followers 1`,
		`cutover_follower_lag_rows 7`,
		`cutover_follower_lag_seconds 1.5`,
		`go_goroutines`,
		`target_info{service_name="cutover-test"`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("no %s in\n%s", want, grepCutover(text))
		}
	}
	if strings.Contains(text, "acme") {
		t.Errorf("a rule name from a spec became a label:\n%s", grepCutover(text))
	}
	if !strings.Contains(text, `cutover_batch_size_bytes_total{outcome="in",stage="validator"}`) {
		t.Errorf("no batch size series:\n%s", grepCutover(text))
	}
}

func grepCutover(text string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "cutover_") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestRuleLabel(t *testing.T) {
	for in, want := range map[string]string{"not_null": "not_null", "cast": "cast", "My rule 7": "named", "": "named"} {
		if got := Rule(in); got != want {
			t.Errorf("Rule(%q) = %q, want %q", in, got, want)
		}
	}
}
