package stack_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/cutover/internal/testenv"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestRedriveLoadsFixedRowsOnly: a job quarantines 7 of 10 rows; the spec
// is fixed (the status and amount rules dropped); a re-drive reads only the
// 7, loads the 2 the fix allows, quarantines the other 5 again, and marks
// the first job's 2 entries resolved. Both jobs balance.
func TestRedriveLoadsFixedRowsOnly(t *testing.T) {
	db := testenv.NewDB(t)
	db.Exec(ordersDDL)
	_, jobs := startStack(t, db)
	csv := testenv.WriteFile(t, "orders.csv", badCSV)
	ctx := context.Background()

	first, err := jobs.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: ordersSpec(csv)})
	if err != nil {
		t.Fatal(err)
	}
	j1 := testenv.WaitJob(t, jobs, first.Job.Id, time.Minute)
	if j1.State != orchestratorv1.JobState_JOB_STATE_SUCCEEDED || j1.Counts.Quarantined != 7 {
		t.Fatalf("first job: %s %v", j1.State, j1.Counts)
	}

	// Paging through the quarantine: 3 pages of 3, 3, 1.
	var refs []string
	token := ""
	for page := 0; ; page++ {
		res, err := jobs.ListQuarantine(ctx, &orchestratorv1.ListQuarantineRequest{Id: j1.Id, PageSize: 3, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		if res.GetTotal() != 7 || page > 3 {
			t.Fatalf("page %d: total %d", page, res.GetTotal())
		}
		for _, r := range res.GetRows() {
			refs = append(refs, r.GetSourceRef())
			if r.GetRule() == "" || r.GetReason() == "" || r.GetTable() != "orders" {
				t.Errorf("row %v", r)
			}
		}
		if token = res.GetNextPageToken(); token == "" {
			break
		}
	}
	slices.Sort(refs) // pages come in quarantine order: by batch, then stage
	if strings.Join(refs, ",") != "line 10,line 11,line 4,line 5,line 6,line 7,line 9" {
		t.Fatalf("quarantined refs: %v", refs)
	}
	res, err := jobs.ListQuarantine(ctx, &orchestratorv1.ListQuarantineRequest{Id: j1.Id, Rule: "one_of"})
	if err != nil || res.GetTotal() != 1 || res.GetRows()[0].GetSourceRef() != "line 7" {
		t.Fatalf("filter by rule: %v %v", res, err)
	}

	fixed := ordersSpec(csv)
	fixed.Tables[0].Rules = nil
	redrive, err := jobs.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: fixed, RedriveOf: j1.Id})
	if err != nil {
		t.Fatal(err)
	}
	j2 := testenv.WaitJob(t, jobs, redrive.Job.Id, time.Minute)
	if j2.State != orchestratorv1.JobState_JOB_STATE_SUCCEEDED {
		t.Fatalf("re-drive: %s %s", j2.State, j2.Error)
	}
	if c := j2.Counts; c.Extracted != 7 || c.Loaded != 2 || c.Quarantined != 5 {
		t.Fatalf("re-drive counts = %v, want extracted 7 = loaded 2 + quarantined 5", c)
	}
	rep, err := jobs.GetJobReport(ctx, &orchestratorv1.GetJobReportRequest{Id: j2.Id})
	if err != nil || !rep.GetReport().GetBalanced() {
		t.Fatalf("re-drive report: %v %v", rep, err)
	}
	if got := db.Strings(`SELECT id::text FROM orders ORDER BY id::bigint`); strings.Join(got, ",") != "1,2,6,7,10" {
		t.Fatalf("target ids = %v", got)
	}
	// The first job's entries: 5 open, 2 resolved by the re-drive.
	open, err := jobs.ListQuarantine(ctx, &orchestratorv1.ListQuarantineRequest{Id: j1.Id})
	if err != nil || open.GetTotal() != 5 {
		t.Fatalf("open entries after re-drive: %v %v", open, err)
	}
	all, err := jobs.ListQuarantine(ctx, &orchestratorv1.ListQuarantineRequest{Id: j1.Id, IncludeResolved: true})
	if err != nil || all.GetTotal() != 7 {
		t.Fatalf("all entries: %v %v", all, err)
	}
	var resolved []string
	for _, r := range all.GetRows() {
		if r.GetResolvedBy() != "" {
			if r.GetResolvedBy() != j2.Id {
				t.Errorf("entry %s resolved by %q, want %q", r.GetSourceRef(), r.GetResolvedBy(), j2.Id)
			}
			resolved = append(resolved, r.GetSourceRef())
		}
	}
	slices.Sort(resolved)
	if strings.Join(resolved, ",") != "line 11,line 7" {
		t.Fatalf("resolved entries: %v", resolved)
	}

	// Nothing left to fix for a re-drive of the re-drive's fixed rows; an
	// unknown job is refused.
	if _, err := jobs.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: fixed, RedriveOf: "job-nope"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("re-drive of an unknown job: %v", err)
	}
	if _, err := jobs.ListQuarantine(ctx, &orchestratorv1.ListQuarantineRequest{Id: j1.Id, PageToken: "x"}); status.Code(err) == codes.OK {
		t.Fatal("a made-up page token was accepted")
	}
}
