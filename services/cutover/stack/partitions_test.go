package stack_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/cutover/internal/testenv"
)

// runInto migrates src into a fresh target table with n partitions and
// returns the job.
func runInto(t *testing.T, jobs orchestratorv1.JobServiceClient, src *commonv1.SourceSpec, target string, n int32) *orchestratorv1.Job {
	t.Helper()
	spec := &commonv1.JobSpec{Name: fmt.Sprintf("%d partitions", n), BatchSize: 777, Parallelism: 4,
		Target: &commonv1.TargetSpec{CreateTables: true},
		Tables: []*commonv1.TableSpec{{Name: target, TargetTable: target, Source: src, Partitions: n}}}
	created, err := jobs.CreateJob(context.Background(), &orchestratorv1.CreateJobRequest{Spec: spec})
	if err != nil {
		t.Fatalf("CreateJob: %v", err)
	}
	if created.Job.PartitionsTotal != n {
		t.Fatalf("planned %d partitions, want %d", created.Job.PartitionsTotal, n)
	}
	job := testenv.WaitJob(t, jobs, created.Job.Id, 3*time.Minute)
	if job.State != orchestratorv1.JobState_JOB_STATE_SUCCEEDED {
		t.Fatalf("%d partitions: %s %s", n, job.State, job.Error)
	}
	return job
}

// checksum is an order-independent digest of a table's rows.
func checksum(db *testenv.DB, table string) string {
	return db.Strings(fmt.Sprintf(`SELECT count(*)::text || ':' || md5(string_agg(md5(t::text), '' ORDER BY md5(t::text))) FROM %s t`, table))[0]
}

// TestPartitionCountDoesNotChangeTheResult: the same source migrated with
// 1 and with 16 partitions gives identical targets and exact counts.
func TestPartitionCountDoesNotChangeTheResult(t *testing.T) {
	src, db := testenv.NewDB(t), testenv.NewDB(t)
	const rows = 20000
	src.Exec(`CREATE TABLE big (id bigint PRIMARY KEY, k int, label text, amount numeric(14,4), at timestamptz)`,
		// Gaps and a skewed key space, so ranges are uneven.
		fmt.Sprintf(`INSERT INTO big SELECT g * 10000 + g * g %% 7919, g %% 97, 'row ' || g, g / 7.0, timestamptz '2020-01-01' + g * interval '1 second' FROM generate_series(1, %d) g`, rows))
	_, jobs := startStack(t, db, "")
	one := runInto(t, jobs, pgTable(src.URL, "public", "big"), "big_1", 1)
	many := runInto(t, jobs, pgTable(src.URL, "public", "big"), "big_16", 16)
	for _, j := range []*orchestratorv1.Job{one, many} {
		if j.Counts.Extracted != rows || j.Counts.Loaded != rows || j.Counts.Quarantined != 0 {
			t.Fatalf("%s: counts %+v, want %d loaded", j.Name, j.Counts, rows)
		}
	}
	a, b, s := checksum(db, "big_1"), checksum(db, "big_16"), checksum(src, "big")
	if a != b || a != s {
		t.Fatalf("checksums differ: source %s, 1 partition %s, 16 partitions %s", s, a, b)
	}
}
