package stack_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/cutover/internal/testenv"
)

// TestLargeValues: batches are bounded by bytes as well as rows, so wide rows
// load in several batches instead of one message over the gRPC limit, and
// one value over the batch limit is quarantined with its size instead of
// failing the job. The expected figures are the generator's.
func TestLargeValues(t *testing.T) {
	cases := []struct {
		name     string
		rows     int
		width    func(id int) int // bytes of the payload of row id
		loaded   int64
		tooLarge []int // ids whose payload must be quarantined
	}{
		{name: "200 rows of 512 KB", rows: 200, width: func(int) int { return 512 << 10 }, loaded: 200},
		{name: "one 200 MB field", rows: 5, width: func(id int) int {
			if id == 3 {
				return 200 << 20
			}
			return 100
		}, loaded: 4, tooLarge: []int{3}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			db := testenv.NewDB(t)
			db.Exec(`CREATE TABLE wide (id bigint PRIMARY KEY, payload text NOT NULL, n int NOT NULL)`)
			path := filepath.Join(t.TempDir(), "wide.csv")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			w := bufio.NewWriterSize(f, 1<<20)
			fmt.Fprintln(w, "id,payload,n")
			for id := 1; id <= tc.rows; id++ {
				fmt.Fprintf(w, "%d,", id)
				chunk := strings.Repeat(string(rune('a'+id%26)), 1<<16)
				for left := tc.width(id); left > 0; left -= len(chunk) {
					w.WriteString(chunk[:min(left, len(chunk))])
				}
				fmt.Fprintf(w, ",%d\n", id*7)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			f.Close()

			_, jobs := startStack(t, db)
			spec := &commonv1.JobSpec{Name: "wide", BatchSize: 1000, Tables: []*commonv1.TableSpec{{
				Name: "wide", TargetTable: "wide",
				Source: &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Csv{Csv: &commonv1.CsvSource{Path: path}}},
				Columns: []*commonv1.ColumnMapping{{Target: "id", Source: "id"}, {Target: "payload", Source: "payload"},
					{Target: "n", Source: "n"}},
			}}}
			ctx := context.Background()
			created, err := jobs.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: spec})
			if err != nil {
				t.Fatalf("CreateJob: %v", err)
			}
			job := testenv.WaitJob(t, jobs, created.Job.Id, 3*time.Minute)
			if job.State != orchestratorv1.JobState_JOB_STATE_SUCCEEDED {
				t.Fatalf("job %s: %s", job.State, job.Error)
			}
			if job.Counts.Extracted != int64(tc.rows) || job.Counts.Loaded != tc.loaded || job.Counts.Quarantined != int64(len(tc.tooLarge)) {
				t.Fatalf("counts %+v, want extracted %d loaded %d quarantined %d", job.Counts, tc.rows, tc.loaded, len(tc.tooLarge))
			}
			if tc.rows > 1 && job.Counts.Batches < 2 && len(tc.tooLarge) == 0 {
				t.Fatalf("%d rows of %d bytes came in %d batch(es): not bounded by bytes", tc.rows, tc.width(1), job.Counts.Batches)
			}
			// Every loaded row is whole: its payload length and n are the generator's.
			for id := 1; id <= tc.rows; id++ {
				quarantined := false
				for _, q := range tc.tooLarge {
					quarantined = quarantined || q == id
				}
				n := db.Int(`SELECT count(*) FROM wide WHERE id = $1 AND length(payload) = $2 AND n = $3`, id, tc.width(id), id*7)
				if (n == 1) == quarantined {
					t.Errorf("row %d: %d whole rows in the target, quarantined %v", id, n, quarantined)
				}
			}
			q, err := jobs.ListQuarantine(ctx, &orchestratorv1.ListQuarantineRequest{Id: job.Id})
			if err != nil {
				t.Fatal(err)
			}
			if len(q.GetRows()) != len(tc.tooLarge) {
				t.Fatalf("quarantine %v, want %d rows", q.GetRows(), len(tc.tooLarge))
			}
			for i, r := range q.GetRows() {
				size := fmt.Sprint(tc.width(tc.tooLarge[i]))
				if r.GetRule() != "too_large" || r.GetColumn() != "payload" || !strings.Contains(r.GetReason(), size) ||
					r.GetSourceRef() != fmt.Sprintf("line %d", tc.tooLarge[i]+1) || len(r.GetRaw()) > 4096 {
					t.Errorf("quarantined row: rule %q column %q ref %q reason %q (raw %d bytes); want too_large on payload naming %s bytes",
						r.GetRule(), r.GetColumn(), r.GetSourceRef(), r.GetReason(), len(r.GetRaw()), size)
				}
			}
		})
	}
}
