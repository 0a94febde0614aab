package stack_test

import (
	"context"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/cutover/internal/testenv"
)

// TestThresholdsStopJobs: the bad CSV quarantines 7 of 10 rows, 1 of them
// by rule cast. A threshold the job passes fails it with the threshold, the
// rule and the figures in the job and its report; one it keeps to succeeds.
func TestThresholdsStopJobs(t *testing.T) {
	db := testenv.NewDB(t)
	db.Exec(ordersDDL)
	_, jobs := startStack(t, db)
	csv := testenv.WriteFile(t, "orders.csv", badCSV)
	zero, half, most := int64(0), 0.5, 0.8
	tests := []struct {
		name string
		th   *commonv1.Threshold
		want []string // in the error; none: the job succeeds
	}{
		{"any cast reject", &commonv1.Threshold{Rule: "cast", MaxRows: &zero}, []string{"thresholds[0]", "rule cast", "more than the threshold of 0"}},
		{"half of the table", &commonv1.Threshold{Table: "orders", MaxRatio: &half}, []string{"thresholds[0]", "of 10 rows quarantined in table orders", "50%"}},
		{"most of the job", &commonv1.Threshold{MaxRatio: &most}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db.Exec(`TRUNCATE orders`)
			spec := ordersSpec(csv)
			spec.Thresholds = []*commonv1.Threshold{tt.th}
			created, err := jobs.CreateJob(context.Background(), &orchestratorv1.CreateJobRequest{Spec: spec})
			if err != nil {
				t.Fatal(err)
			}
			job := testenv.WaitJob(t, jobs, created.Job.Id, time.Minute)
			if tt.want == nil {
				if job.State != orchestratorv1.JobState_JOB_STATE_SUCCEEDED {
					t.Fatalf("job %s: %s", job.State, job.Error)
				}
				return
			}
			if job.State != orchestratorv1.JobState_JOB_STATE_FAILED {
				t.Fatalf("job %s, want FAILED by the threshold", job.State)
			}
			rep, err := jobs.GetJobReport(context.Background(), &orchestratorv1.GetJobReportRequest{Id: job.Id})
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(job.Error, w) || !strings.Contains(rep.GetReport().GetError(), w) {
					t.Errorf("job error %q / report error %q: want %q", job.Error, rep.GetReport().GetError(), w)
				}
			}
		})
	}
}
