package progress

import (
	"strings"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
)

const (
	running   = orchestratorv1.JobState_JOB_STATE_RUNNING
	succeeded = orchestratorv1.JobState_JOB_STATE_SUCCEEDED
	failed    = orchestratorv1.JobState_JOB_STATE_FAILED
)

// answer is a WatchJob answer of a job with tables orders (2 partitions)
// and items (1), ordersDone and itemsDone of them done.
func answer(state orchestratorv1.JobState, ordersDone, itemsDone int32, errText string) *orchestratorv1.WatchJobResponse {
	c := func(n int64) *commonv1.Counts { return &commonv1.Counts{Extracted: n, Loaded: n} }
	return &orchestratorv1.WatchJobResponse{
		Job: &orchestratorv1.Job{State: state, PartitionsTotal: 3, PartitionsDone: ordersDone + itemsDone,
			Counts: c(int64(ordersDone*1000 + itemsDone*10)), Error: errText},
		Tables: []*orchestratorv1.TableProgress{
			{Table: "orders", PartitionsTotal: 2, PartitionsDone: ordersDone, Counts: c(int64(ordersDone) * 1000)},
			{Table: "items", PartitionsTotal: 1, PartitionsDone: itemsDone, Counts: c(int64(itemsDone) * 10)},
		},
	}
}

// TestPlain: lines only for what changed, paced to one frame a second
// unless the state changes, the job's line last; Flush shows what the pace
// held back.
func TestPlain(t *testing.T) {
	type step struct {
		after time.Duration // since the previous step
		m     *orchestratorv1.WatchJobResponse
		want  []string // lines printed by this step, without their time
	}
	for _, tc := range []struct {
		name  string
		steps []step
		flush []string
	}{
		{name: "every change after a second", steps: []step{
			{0, answer(running, 0, 0, ""), []string{"table orders: partitions 0/2, extracted 0, loaded 0, quarantined 0",
				"table items: partitions 0/1, extracted 0, loaded 0, quarantined 0", "job RUNNING: partitions 0/3, extracted 0, loaded 0, quarantined 0"}},
			{time.Second, answer(running, 1, 0, ""), []string{"table orders: partitions 1/2, extracted 1000, loaded 1000, quarantined 0",
				"job RUNNING: partitions 1/3, extracted 1000, loaded 1000, quarantined 0"}},
			{time.Second, answer(succeeded, 2, 1, ""), []string{"table orders: partitions 2/2, extracted 2000, loaded 2000, quarantined 0",
				"table items: partitions 1/1, extracted 10, loaded 10, quarantined 0", "job SUCCEEDED: partitions 3/3, extracted 2010, loaded 2010, quarantined 0"}},
		}},
		{name: "paced, the final state at once", steps: []step{
			{0, answer(running, 0, 0, ""), []string{"table orders: partitions 0/2", "table items: partitions 0/1", "job RUNNING: partitions 0/3"}},
			{10 * time.Millisecond, answer(running, 1, 0, ""), nil},
			{10 * time.Millisecond, answer(failed, 1, 0, "target refuses\nwrites"), []string{"table orders: partitions 1/2",
				"job FAILED: partitions 1/3, extracted 1000, loaded 1000, quarantined 0; error: target refuses writes"}},
		}},
		{name: "flush shows the held back", steps: []step{
			{0, answer(running, 0, 0, ""), []string{"table orders: partitions 0/2", "table items: partitions 0/1", "job RUNNING"}},
			{10 * time.Millisecond, answer(running, 0, 1, ""), nil},
		}, flush: []string{"table items: partitions 1/1", "job RUNNING: partitions 1/3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			p := New(&b, false)
			clock := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
			p.now = func() time.Time { return clock }
			check := func(what string, want []string) {
				t.Helper()
				got := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
				if b.Len() == 0 {
					got = nil
				}
				b.Reset()
				if len(got) != len(want) {
					t.Fatalf("%s: %d lines, want %d:\n%s", what, len(got), len(want), strings.Join(got, "\n"))
				}
				for i, w := range want {
					if !strings.HasPrefix(got[i], clock.Format("15:04:05")+" "+w) {
						t.Errorf("%s: line %d = %q, want it to start with the time and %q", what, i, got[i], w)
					}
				}
			}
			for i, s := range tc.steps {
				clock = clock.Add(s.after)
				p.Update(s.m)
				check("step "+string(rune('0'+i)), s.want)
			}
			p.Flush()
			check("flush", tc.flush)
		})
	}
}

// TestTerminal: a frame is the job and a bar per table; the next frame
// moves the cursor back over it and clears before drawing.
func TestTerminal(t *testing.T) {
	var b strings.Builder
	p := New(&b, true)
	p.width = 200
	p.Update(answer(running, 1, 0, ""))
	first := b.String()
	for _, w := range []string{
		"job RUNNING  partitions 1/3  extracted 1,000, loaded 1,000, quarantined 0\n",
		"  orders [##########----------]  50% 1/2  loaded 1,000, quarantined 0\n",
		"  items  [--------------------]   0% 0/1  loaded 0, quarantined 0\n",
	} {
		if !strings.Contains(first, w) {
			t.Errorf("first frame lacks %q:\n%q", w, first)
		}
	}
	if strings.Contains(first, "\x1b[3A") {
		t.Errorf("the first frame moves the cursor up: %q", first)
	}
	b.Reset()
	p.Update(answer(succeeded, 2, 1, ""))
	second := b.String()
	if !strings.HasPrefix(second, "\r\x1b[3A\x1b[J") || !strings.Contains(second, "  items  [####################] 100% 1/1") {
		t.Errorf("second frame does not redraw the three lines:\n%q", second)
	}
	p.width = 30
	b.Reset()
	p.Update(answer(running, 0, 0, ""))
	for _, l := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
		if n := len([]rune(strings.TrimPrefix(l, "\r\x1b[3A\x1b[J"))); n > 29 {
			t.Errorf("line of %d runes on a 30-column terminal: %q", n, l)
		}
	}
}

func TestGroup(t *testing.T) {
	for in, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := group(in); got != want {
			t.Errorf("group(%d) = %q, want %q", in, got, want)
		}
	}
}

// A table whose source gave a row estimate is drawn as rows read of it,
// held under 100% until its partitions are done; one without, by partitions.
func TestTableBar(t *testing.T) {
	for _, c := range []struct {
		name           string
		done, total    int32
		extracted, est int64
		want           string
	}{
		{"no estimate", 1, 4, 500, 0, "]  25%"},
		{"rows of the estimate", 1, 4, 600, 1000, "]  60%"},
		{"more than estimated", 3, 4, 5000, 1000, "]  99%"},
		{"done", 4, 4, 900, 1000, "] 100%"},
		{"not planned", 0, 0, 0, 1000, "]    -"},
	} {
		got := tableBar(&orchestratorv1.TableProgress{PartitionsDone: c.done, PartitionsTotal: c.total, EstimatedRows: c.est,
			Counts: &commonv1.Counts{Extracted: c.extracted}})
		if !strings.HasSuffix(got, c.want) {
			t.Errorf("%s: %q, want …%q", c.name, got, c.want)
		}
	}
}
