package stack_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/cutover/internal/testenv"
	"github.com/cutover/cutover/services/kit/mysqltest"
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
	_, jobs := startStack(t, db)
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

// TestMariaDBPartitionCount: a MariaDB table migrated with 1 and with 16
// partitions gives identical targets (checksum) and exact counts. CI runs
// it on 20,000 rows; make bench sets CUTOVER_PARTITION_ROWS=5000000.
func TestMariaDBPartitionCount(t *testing.T) {
	rows := 20000
	if v := os.Getenv("CUTOVER_PARTITION_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("CUTOVER_PARTITION_ROWS: %v", err)
		}
		rows = n
	}
	mdsn := mysqltest.NewDatabase(t)
	my, err := sql.Open("mysql", mdsn)
	if err != nil {
		t.Fatal(err)
	}
	defer my.Close()
	for _, q := range []string{
		`CREATE TABLE big (id bigint unsigned PRIMARY KEY, k int, label varchar(40), amount decimal(14,4), at datetime(6), flag tinyint(1))`,
		fmt.Sprintf(`INSERT INTO big SELECT seq * 3 + seq %% 2, seq %% 97, CONCAT('row ', seq), seq / 7, '2020-01-01' + INTERVAL seq SECOND, seq %% 2 FROM seq_1_to_%d`, rows),
	} {
		if _, err := my.Exec(q); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	db := testenv.NewDB(t)
	_, jobs := startStack(t, db)
	src := &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Mysql{Mysql: &commonv1.MysqlSource{Dsn: mdsn, Table: "big"}}}
	start := time.Now()
	one := runInto(t, jobs, src, "big_1", 1)
	mid := time.Now()
	many := runInto(t, jobs, src, "big_16", 16)
	t.Logf("%d rows: 1 partition %s, 16 partitions %s", rows, mid.Sub(start).Round(time.Millisecond), time.Since(mid).Round(time.Millisecond))
	for _, j := range []*orchestratorv1.Job{one, many} {
		if j.Counts.Extracted != int64(rows) || j.Counts.Loaded != int64(rows) || j.Counts.Quarantined != 0 {
			t.Fatalf("%s: counts %+v, want %d loaded", j.Name, j.Counts, rows)
		}
	}
	a, b := checksum(db, "big_1"), checksum(db, "big_16")
	if a != b {
		t.Fatalf("checksums differ: 1 partition %s, 16 partitions %s", a, b)
	}
	var sum string
	if err := my.QueryRow(`SELECT CAST(SUM(id) + SUM(k) AS CHAR) FROM big`).Scan(&sum); err != nil {
		t.Fatal(err)
	}
	if got := db.Strings(`SELECT (sum(id) + sum(k))::text FROM big_16`)[0]; got != sum {
		t.Fatalf("sum(id)+sum(k): MariaDB %s, PostgreSQL %s", sum, got)
	}
	t.Logf("checksum %s", a)
}

// TestKeylessTableThroughSnapshot: a PostgreSQL table without a primary key
// (duplicates included) is read by ctid ranges, which needs the job's
// snapshot that CreateJob opens; every row arrives exactly once. (Isolation
// from concurrent writes is tested in the extractor's pgsnap_test.go.)
func TestKeylessTableThroughSnapshot(t *testing.T) {
	src, db := testenv.NewDB(t), testenv.NewDB(t)
	src.Exec(`CREATE TABLE log (at int, msg text)`,
		`INSERT INTO log SELECT g % 500, 'line ' || (g % 700) FROM generate_series(1, 6000) g`)
	_, jobs := startStack(t, db)
	job := runInto(t, jobs, pgTable(src.URL, "public", "log"), "log_copy", 3)
	if job.Counts.Loaded != 6000 {
		t.Fatalf("loaded %d rows, want 6000", job.Counts.Loaded)
	}
	if a, b := checksum(src, "log"), checksum(db, "log_copy"); a != b {
		t.Fatalf("checksums differ: source %s, target %s", a, b)
	}
}
