package orchestrate

import (
	"encoding/json"
	"sync"
	"time"

	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
)

// stageOrder is the order stages are reported in.
var stageOrder = []string{"extractor", "transformer", "validator", "loader"}

// stageClock times a partition's batches per stage: each stream answers in
// order, so a FIFO of send times per stage pairs every answer with its
// batch. The time includes queueing in the stage, which is what an operator
// looking for the slow stage wants to see.
type stageClock struct {
	mu    sync.Mutex
	sent  map[string][]time.Time
	times map[string]*stageTime
}

// stageTime is one stage's total, stored with the partition.
type stageTime struct {
	Batches int64   `json:"batches"`
	Seconds float64 `json:"seconds"`
	Max     float64 `json:"max"`
}

func newStageClock() *stageClock {
	return &stageClock{sent: map[string][]time.Time{}, times: map[string]*stageTime{}}
}

func (c *stageClock) send(stage string) {
	c.mu.Lock()
	c.sent[stage] = append(c.sent[stage], time.Now())
	c.mu.Unlock()
}

func (c *stageClock) recv(stage string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	q := c.sent[stage]
	if len(q) == 0 {
		return
	}
	c.add(stage, time.Since(q[0]))
	c.sent[stage] = q[1:]
}

func (c *stageClock) add(stage string, d time.Duration) {
	t := c.times[stage]
	if t == nil {
		t = &stageTime{}
		c.times[stage] = t
	}
	t.Batches++
	t.Seconds += d.Seconds()
	t.Max = max(t.Max, d.Seconds())
}

// json is the partition's timings for the control schema.
func (c *stageClock) json() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, err := json.Marshal(c.times)
	if err != nil {
		return []byte("{}")
	}
	return b
}

// sumStageTimes adds stored partition timings into per-stage totals.
func sumStageTimes(dst map[string]*orchestratorv1.StageTiming, stored []byte) {
	var m map[string]stageTime
	if len(stored) == 0 || json.Unmarshal(stored, &m) != nil {
		return
	}
	for stage, t := range m {
		d := dst[stage]
		if d == nil {
			d = &orchestratorv1.StageTiming{Stage: stage}
			dst[stage] = d
		}
		d.Batches += t.Batches
		d.Seconds += t.Seconds
		d.MaxBatchSeconds = max(d.MaxBatchSeconds, t.Max)
	}
}
