package jobstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// auditPages reads every page of f and returns the entries in order.
func auditPages(t *testing.T, s *Store, f AuditFilter) []AuditRecord {
	t.Helper()
	var out []AuditRecord
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("ListAudit does not end")
		}
		recs, next, err := s.ListAudit(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, recs...)
		if next == "" {
			return out
		}
		f.PageToken = next
	}
}

// TestAuditRoundTrip: entries written with AppendAudit come back from
// ListAudit newest first, page by page exactly once, filtered by job,
// principal and time; odd text is stored, cut short, never refused; the
// entries outlive their job.
func TestAuditRoundTrip(t *testing.T) {
	s, pool := open(t)
	ctx := context.Background()
	base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range 250 {
		r := AuditRecord{At: base.Add(time.Duration(i) * time.Minute), Principal: fmt.Sprint("user-", i%3), Role: "operator",
			Method: "/cutover.orchestrator.v1.JobService/CancelJob", Outcome: "OK", Peer: "127.0.0.1:5000"}
		if i%5 == 0 {
			r.JobID = "job-a"
		}
		if i%7 == 0 {
			r.Outcome, r.Detail = "PermissionDenied", "role viewer may not cancel"
		}
		if err := s.AppendAudit(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	all := auditPages(t, s, AuditFilter{PageSize: 100})
	if len(all) != 250 {
		t.Fatalf("%d entries, want 250", len(all))
	}
	seen := map[int64]bool{}
	for i, r := range all {
		if seen[r.ID] {
			t.Fatalf("entry %d listed twice", r.ID)
		}
		seen[r.ID] = true
		if i > 0 && !r.At.Before(all[i-1].At) {
			t.Fatalf("not newest first at %d: %s after %s", i, r.At, all[i-1].At)
		}
	}
	first := all[0]
	if !first.At.Equal(base.Add(249*time.Minute)) || first.Principal != "user-0" || first.Role != "operator" || first.Method == "" ||
		first.Peer != "127.0.0.1:5000" || first.JobID != "" || first.Outcome != "OK" {
		t.Fatalf("newest entry %+v", first)
	}
	if job := auditPages(t, s, AuditFilter{JobID: "job-a", PageSize: 7}); len(job) != 50 {
		t.Fatalf("job-a: %d entries, want 50", len(job))
	}
	if p := auditPages(t, s, AuditFilter{Principal: "user-1", PageSize: 30}); len(p) != 83 {
		t.Fatalf("user-1: %d entries, want 83", len(p))
	}
	since := auditPages(t, s, AuditFilter{Since: base.Add(200 * time.Minute), JobID: "job-a"})
	if len(since) != 10 || since[len(since)-1].At.Before(base.Add(200*time.Minute)) {
		t.Fatalf("since: %d entries", len(since))
	}
	denied := 0
	for _, r := range all {
		if r.Outcome == "PermissionDenied" {
			denied++
			if r.Detail == "" {
				t.Fatalf("detail lost: %+v", r)
			}
		}
	}
	if denied != 36 {
		t.Fatalf("%d denied entries, want 36", denied)
	}
	var nulls int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM cutover_control.audit WHERE job_id IS NULL AND detail IS NULL`).Scan(&nulls); err != nil {
		t.Fatal(err)
	}
	if nulls != 250-50-36+8 { // neither a job nor a detail (i%5 and i%7 both 0 for 8 of them)
		t.Fatalf("%d entries with NULL job and detail", nulls)
	}

	// Odd text is kept as far as it can be, never refused.
	odd := AuditRecord{Principal: "cn=\x00evil\xff", Method: "m", Outcome: "OK", Peer: "p", JobID: "job-z", Detail: strings.Repeat("é", 5000)}
	if err := s.AppendAudit(ctx, odd); err != nil {
		t.Fatal(err)
	}
	got := auditPages(t, s, AuditFilter{JobID: "job-z"})
	if len(got) != 1 || got[0].Principal != "cn=evil\uFFFD" || len(got[0].Detail) > 1024 || !utf8.ValidString(got[0].Detail) ||
		time.Since(got[0].At) > time.Minute {
		t.Fatalf("odd entry: %+v", got)
	}

	if _, _, err := s.ListAudit(ctx, AuditFilter{PageToken: "bogus"}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("bad token: %v", err)
	}
	if _, _, err := s.ListAudit(ctx, AuditFilter{PageSize: -1}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("negative page size: %v", err)
	}
	if recs, next, err := s.ListAudit(ctx, AuditFilter{PageSize: 5000}); err != nil || len(recs) != 251 || next != "" {
		t.Fatalf("a page size past the bound: %d entries, next %q, %v", len(recs), next, err)
	}

	// Entries outlive their job, and go by their own retention.
	newJob(t, s, "job-a", 1, 1)
	if ok, _ := s.FailJob(ctx, "job-a", "x"); !ok {
		t.Fatal("fail job-a")
	}
	if _, ok, err := s.BeginDelete(ctx, "job-a"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if ok, err := s.DeleteJobRows(ctx, "job-a"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if job := auditPages(t, s, AuditFilter{JobID: "job-a"}); len(job) != 50 {
		t.Fatalf("after deleting job-a: %d entries, want 50", len(job))
	}
	n, err := s.ExpireAudit(ctx, time.Since(base.Add(100*time.Minute-30*time.Second)))
	if err != nil || n != 100 {
		t.Fatalf("expired %d entries (%v), want the 100 oldest", n, err)
	}
	if left := auditPages(t, s, AuditFilter{PageSize: 1000}); len(left) != 151 {
		t.Fatalf("%d entries left, want 151", len(left))
	}
}
