package orchestrate

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	"github.com/cutover/cutover/services/orchestrator/jobspec"
	"github.com/cutover/cutover/services/orchestrator/jobstore"
	"github.com/cutover/cutover/services/orchestrator/stages"
)

// Thresholds (JobSpec.thresholds) stop a job whose quarantine passes a
// limit. A row count is passed for good once passed, so it is checked while
// the job runs (at most once a second per job) and stops it at once; a
// share of the extracted rows is known only at the end, so it is checked
// when every partition is in, before the job's rows are finalized and its
// keys added.

// thresholdEvery is how often a running job's counts are held against its
// row-count thresholds.
const thresholdEvery = time.Second

// thresholdClock throttles the checks per job.
type thresholdClock struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (c *thresholdClock) due(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil {
		c.last = map[string]time.Time{}
	}
	if time.Since(c.last[id]) < thresholdEvery {
		return false
	}
	c.last[id] = time.Now()
	return true
}

// watchThresholds checks a running job's row-count thresholds and fails the
// job when one is passed; its partitions then stop at their next batch.
func (s *Service) watchThresholds(ctx context.Context, j *jobstore.Job) {
	if !jobspec.HasRowLimit(j.Spec) || !s.thresholds.due(j.ID) {
		return
	}
	msg, err := s.thresholdBreach(ctx, j, false)
	if err != nil {
		slog.Warn("threshold check", "job", j.ID, "err", err)
		return
	}
	if msg == "" {
		return
	}
	if ok, err := s.store.FailJob(ctx, j.ID, msg); err != nil {
		slog.Error("fail job on threshold", "job", j.ID, "err", err)
	} else if ok {
		slog.Warn("job stopped: threshold passed", "job", j.ID, "threshold", msg)
		s.storeFinalReport(context.WithoutCancel(ctx), j.ID)
		s.endJobSpan(j.ID, jobstore.StateFailed)
	}
}

// thresholdBreach holds the job's stored counts (partitions, finalized
// tables, quarantine by rule) against its thresholds and describes the
// first one passed, or returns "". Before the end only row counts count.
func (s *Service) thresholdBreach(ctx context.Context, j *jobstore.Job, final bool) (string, error) {
	ths := j.Spec.GetThresholds()
	if len(ths) == 0 {
		return "", nil
	}
	parts, err := s.store.Partitions(ctx, j.ID)
	if err != nil {
		return "", err
	}
	byTable := map[string]*commonv1.Counts{}
	for _, p := range parts {
		c := byTable[p.Table]
		if c == nil {
			c = &commonv1.Counts{}
			byTable[p.Table] = c
		}
		addCounts(c, p.Counts)
	}
	for _, f := range j.Finalized {
		for _, o := range f.GetTables() {
			if c := byTable[o.GetTable()]; c != nil {
				applyFinalized(c, o)
			}
		}
	}
	var byRule map[string]int64 // "table\x00rule" → rows
	for _, th := range ths {
		if th.GetRule() != "" && byRule == nil {
			qctx, cancel := context.WithTimeout(ctx, stages.Wait)
			q, err := s.cfg.Clients.Loader.GetQuarantineSummary(qctx, &loaderv1.GetQuarantineSummaryRequest{Target: s.checker.Target(j.Spec), JobId: j.ID, Examples: 1})
			cancel()
			if err != nil {
				return "", stages.Classify("loader", err)
			}
			byRule = map[string]int64{}
			for _, g := range q.GetGroups() {
				byRule[g.GetTable()+"\x00"+g.GetRule()] += g.GetCount()
			}
		}
	}
	for k, th := range ths {
		if !final && th.MaxRows == nil {
			continue
		}
		var extracted, hit int64
		for _, t := range j.Spec.GetTables() {
			if th.GetTable() != "" && t.GetName() != th.GetTable() {
				continue
			}
			c := byTable[t.GetName()]
			extracted += c.GetExtracted()
			if th.GetRule() == "" {
				hit += c.GetQuarantined()
			} else {
				hit += byRule[t.GetName()+"\x00"+th.GetRule()]
			}
		}
		if msg := jobspec.ThresholdPassed(th, hit, extracted); msg != "" {
			return fmt.Sprintf("threshold passed: thresholds[%d]: %s", k, msg), nil
		}
	}
	return "", nil
}

// thresholdFailed ends the job as failed when a threshold is passed at its
// end; it also reports true when the check could not be made (the finish
// is retried later).
func (s *Service) thresholdFailed(ctx context.Context, j *jobstore.Job) bool {
	msg, err := s.thresholdBreach(ctx, j, true)
	if err != nil {
		slog.Warn("thresholds not checked yet, will retry", "job", j.ID, "err", err)
		return true
	}
	if msg == "" {
		return false
	}
	s.failJobAtFinish(ctx, j, msg)
	return true
}
