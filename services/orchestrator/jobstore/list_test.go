package jobstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
)

// listAll pages through ListJobs and returns the ids in order.
func listAll(t *testing.T, s *Store, q ListQuery) []string {
	t.Helper()
	var ids []string
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("ListJobs does not end")
		}
		jobs, next, err := s.ListJobs(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs) > q.Limit {
			t.Fatalf("page of %d jobs, limit %d", len(jobs), q.Limit)
		}
		for _, j := range jobs {
			ids = append(ids, j.ID)
		}
		if next == "" {
			return ids
		}
		q.PageToken = next
	}
}

// TestListJobsPages: 120 jobs, some created at the same instant, page
// through in pages of 50 exactly once each, newest first; the state
// filter keeps only the states asked for.
func TestListJobsPages(t *testing.T) {
	s, pool := open(t)
	ctx := context.Background()
	for i := range 120 {
		newJob(t, s, fmt.Sprintf("job-%03d", i), 1, 1)
	}
	// 30 jobs share one created_at: the id breaks the tie.
	if _, err := pool.Exec(ctx, `UPDATE cutover_control.jobs SET created_at = CASE WHEN id < 'job-030' THEN '2020-01-01T00:00:00Z'
		ELSE '2024-01-01T00:00:00Z'::timestamptz + substr(id, 5)::int * interval '1 millisecond' END`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE cutover_control.jobs SET state = CASE WHEN id < 'job-050' THEN 'succeeded' WHEN id < 'job-070' THEN 'failed' ELSE state END`); err != nil {
		t.Fatal(err)
	}
	ids := listAll(t, s, ListQuery{Limit: 50})
	if len(ids) != 120 {
		t.Fatalf("listed %d jobs, want 120", len(ids))
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("job %s listed twice", id)
		}
		seen[id] = true
	}
	if ids[0] != "job-119" || ids[89] != "job-030" || ids[90] != "job-000" || ids[119] != "job-029" {
		t.Fatalf("order: first %s, 90th %s, 91st %s, last %s", ids[0], ids[89], ids[90], ids[119])
	}
	ended := listAll(t, s, ListQuery{Limit: 7, States: []string{StateSucceeded, StateFailed}})
	if len(ended) != 70 {
		t.Fatalf("succeeded or failed: %d jobs, want 70", len(ended))
	}
	for _, id := range ended {
		if id >= "job-070" {
			t.Fatalf("state filter let %s through", id)
		}
	}
	if got := listAll(t, s, ListQuery{Limit: 50, States: []string{StateCancelled}}); len(got) != 0 {
		t.Fatalf("cancelled: %v", got)
	}
	if _, _, err := s.ListJobs(ctx, ListQuery{Limit: 5, PageToken: "not-a-token"}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("bad token: %v", err)
	}
}

// TestListJobsSummaries: a listed job carries no spec and a short error,
// however large the job's own are, and the same counts as GetJob's.
func TestListJobsSummaries(t *testing.T) {
	s, pool := open(t)
	ctx := context.Background()
	big := &commonv1.JobSpec{Name: "big"}
	for i := range 200 {
		big.Tables = append(big.Tables, &commonv1.TableSpec{Name: fmt.Sprint("t", i), TargetTable: "t",
			Filters: []*commonv1.RowFilter{{When: strings.Repeat("row.a == 1 || ", 1000) + "true"}}})
	}
	if err := s.InsertJob(ctx, &Job{ID: "job-big", Name: "big", Parallelism: 1, Spec: big},
		[]Partition{{ID: "p0", Table: "t", Range: &commonv1.KeyRange{}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE cutover_control.jobs SET error = repeat('e', 1000000) WHERE id = 'job-big'`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE cutover_control.partitions SET extracted = 10, loaded = 9, quarantined = 1, batches = 1, state = 'done'`); err != nil {
		t.Fatal(err)
	}
	if err := s.SetFinalized(ctx, "job-big", "t", &loaderv1.FinalizeStagedResponse{Tables: []*loaderv1.StagedOutcome{
		{Table: "t0", Loaded: 5, MergedAway: 3, Quarantined: 1, Warned: 2}, {Table: "t1", Loaded: 1, MergedAway: 1}}}); err != nil {
		t.Fatal(err)
	}
	jobs, next, err := s.ListJobs(ctx, ListQuery{Limit: 10})
	if err != nil || len(jobs) != 1 || next != "" {
		t.Fatalf("list: %d jobs, next %q, %v", len(jobs), next, err)
	}
	j := jobs[0]
	if j.Spec != nil || len(j.ErrText) > 1024 || len(j.DDL) != 0 {
		t.Fatalf("summary holds the spec (%v), an error of %d bytes or DDL", j.Spec != nil, len(j.ErrText))
	}
	full, err := s.GetJob(ctx, "job-big")
	if err != nil {
		t.Fatal(err)
	}
	if j.Counts.Extracted != 10 || j.Counts.Loaded != 9 || j.Total != 1 || j.Done != 1 || j.State != full.State || !j.Created.Equal(full.Created) {
		t.Fatalf("summary %+v", j)
	}
	sum := func(j *Job) (m, q, w int64) {
		for _, f := range j.Finalized {
			for _, o := range f.GetTables() {
				m, q, w = m+o.GetMergedAway(), q+o.GetQuarantined(), w+o.GetWarned()
			}
		}
		return
	}
	if m, q, w := sum(j); m != 4 || q != 1 || w != 2 {
		t.Fatalf("finalized sums of the summary: merged %d, quarantined %d, warned %d", m, q, w)
	}
	if a, b, c := sum(full); fmt.Sprint(a, b, c) != "4 1 2" {
		t.Fatalf("finalized sums of the job: %d %d %d", a, b, c)
	}
}

// TestDeleteRows: only an ended job goes to deleting; deleting it removes
// its control rows (partitions with it) and nothing of another job.
func TestDeleteRows(t *testing.T) {
	s, pool := open(t)
	ctx := context.Background()
	newJob(t, s, "job-run", 1, 2)
	newJob(t, s, "job-end", 1, 2)
	newJob(t, s, "job-keep", 1, 2)
	if state, ok, err := s.BeginDelete(ctx, "job-run"); err != nil || ok || state != StateRunning {
		t.Fatalf("begin delete of a running job: %s %v %v", state, ok, err)
	}
	if _, _, err := s.BeginDelete(ctx, "job-none"); !errors.Is(err, ErrJobNotFound) {
		t.Fatalf("unknown job: %v", err)
	}
	for _, id := range []string{"job-end", "job-keep"} {
		if ok, err := s.FailJob(ctx, id, "boom"); err != nil || !ok {
			t.Fatal(ok, err)
		}
	}
	if ok, err := s.DeleteJobRows(ctx, "job-end"); err != nil || ok {
		t.Fatalf("rows of a job not deleting were deleted: %v %v", ok, err)
	}
	if state, ok, err := s.BeginDelete(ctx, "job-end"); err != nil || !ok || state != StateFailed {
		t.Fatalf("begin delete: %s %v %v", state, ok, err)
	}
	if j, _ := s.GetJob(ctx, "job-end"); j.State != StateDeleting || JobState(j.State).String() != "JOB_STATE_DELETING" {
		t.Fatalf("state %s", j.State)
	}
	if ok, _ := s.ResumeJob(ctx, "job-end"); ok {
		t.Fatal("a deleting job resumed")
	}
	// A second call (after a failure half way) may begin again.
	if _, ok, err := s.BeginDelete(ctx, "job-end"); err != nil || !ok {
		t.Fatalf("begin delete again: %v %v", ok, err)
	}
	if ok, err := s.DeleteJobRows(ctx, "job-end"); err != nil || !ok {
		t.Fatalf("delete rows: %v %v", ok, err)
	}
	var jobs, parts int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM cutover_control.jobs WHERE id = 'job-end'),
		(SELECT count(*) FROM cutover_control.partitions WHERE job_id = 'job-end')`).Scan(&jobs, &parts); err != nil {
		t.Fatal(err)
	}
	if jobs != 0 || parts != 0 {
		t.Fatalf("left: %d job rows, %d partitions", jobs, parts)
	}
	if _, err := s.GetJob(ctx, "job-keep"); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Partitions(ctx, "job-keep"); len(n) != 2 {
		t.Fatalf("the other job has %d partitions", len(n))
	}
}

// TestExpiredJobs: retention picks ended jobs older than the age and jobs
// left deleting, never running ones or recent ones.
func TestExpiredJobs(t *testing.T) {
	s, pool := open(t)
	ctx := context.Background()
	for _, id := range []string{"old-ok", "old-failed", "old-running", "new-ok", "old-deleting", "new-deleting"} {
		newJob(t, s, id, 1, 1)
	}
	if _, err := pool.Exec(ctx, `UPDATE cutover_control.jobs SET
		state = CASE WHEN id LIKE '%-ok' THEN 'succeeded' WHEN id LIKE '%-failed' THEN 'failed' WHEN id LIKE '%-deleting' THEN 'deleting' ELSE state END,
		finished_at = CASE WHEN id LIKE 'old-%' AND id <> 'old-running' THEN now() - interval '2 hours' WHEN id LIKE 'new-%' THEN now() END,
		created_at = CASE WHEN id LIKE 'old-%' THEN now() - interval '3 hours' ELSE created_at END`); err != nil {
		t.Fatal(err)
	}
	ids, err := s.ExpiredJobs(ctx, time.Hour, 100)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ids, ","); got != "old-deleting,old-failed,old-ok,new-deleting" {
		t.Fatalf("expired: %s", got)
	}
	if ids, _ := s.ExpiredJobs(ctx, time.Hour, 1); len(ids) != 1 {
		t.Fatalf("limit 1: %v", ids)
	}
}
