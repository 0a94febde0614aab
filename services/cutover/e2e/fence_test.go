package e2e

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/cutover/internal/testenv"
)

// TestPausedOwnerIsFenced is the split brain of two orchestrators sharing
// one control database: the owner of a partition is stopped (SIGSTOP) for
// longer than its lease while its load of the partition goes on in the
// loader; the other orchestrator takes the partition over and finishes the
// job; the paused owner's batches after the take-over are refused by the
// loader's fence, and once it runs again (SIGCONT) it gives the partition
// up without retrying or failing it. The target holds every source row
// once, each batch once, and no batch of the old epoch committed after the
// new epoch was recorded.
func TestPausedOwnerIsFenced(t *testing.T) {
	db := testenv.NewDB(t)
	// Each batch's COPY takes at least 100 ms (a statement trigger), so a
	// partition's load outlasts the pause and the lease: the paused
	// owner's stream still has batches to commit when it is taken over.
	db.Exec(`CREATE TABLE seq (id bigint PRIMARY KEY, v text)`,
		`CREATE FUNCTION pace() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.1); RETURN NULL; END $$`,
		`CREATE TRIGGER pace AFTER INSERT ON seq FOR EACH STATEMENT EXECUTE FUNCTION pace()`)
	const parts, rows, batch = 4, 3200, 10
	// The first orchestrator ("A") runs one partition at a time.
	p := startProcs(t, "CUTOVER_CONTROL_URL="+db.URL, "CUTOVER_TARGET_URL="+db.URL, "CUTOVER_LEASE=2s", "CUTOVER_WORKERS=1")
	pidA := p.pid("orchestrator")
	// Whatever happens, the stopped process must run again to be stopped.
	t.Cleanup(func() { _ = syscall.Kill(pidA, syscall.SIGCONT) })

	spec := seqSpec(seqCSV(t, rows), batch)
	spec.Parallelism = parts
	spec.Tables[0].Partitions = parts
	jobs := jobClient(p)
	created, err := jobs.CreateJob(context.Background(), &orchestratorv1.CreateJobRequest{Spec: spec})
	if err != nil {
		t.Fatalf("CreateJob: %v", err)
	}
	id := created.Job.Id
	if n := db.Int(`SELECT count(*) FROM cutover_control.partitions WHERE job_id = $1`, id); n != parts {
		t.Fatalf("job planned %d partitions, want %d", n, parts)
	}

	// A claims a partition and loads it.
	var part string
	waitFor(t, p, 30*time.Second, "A to claim a partition", func() bool {
		ids := db.Strings(`SELECT id FROM cutover_control.partitions WHERE job_id = $1 AND state = 'running' AND lease_owner LIKE $2`,
			id, "%:"+strconv.Itoa(pidA)+":%")
		if len(ids) == 1 {
			part = ids[0]
		}
		return part != ""
	})
	// The second orchestrator ("B") shares the job: it takes the other
	// partitions and keeps a worker free for A's.
	pidB := p.startOrchestrator(t, "b", "CUTOVER_WORKERS="+strconv.Itoa(parts))
	waitFor(t, p, 30*time.Second, "A's first batches", func() bool {
		return db.Int(`SELECT count(*) FROM cutover.ledger WHERE job_id = $1 AND partition_id = $2`, id, part) >= 2
	})
	if err := syscall.Kill(pidA, syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP A: %v", err)
	}
	// A's lease as A last renewed it, in the database's clock: B must not
	// take the partition before it runs out (the lease counts from A's last
	// renewal, not from the pause).
	leaseEnd := db.Strings(`SELECT (extract(epoch FROM lease_until) * 1000)::bigint::text FROM cutover_control.partitions WHERE job_id = $1 AND id = $2`, id, part)[0]
	atPause := db.Int(`SELECT count(*) FROM cutover.ledger WHERE job_id = $1 AND partition_id = $2`, id, part)
	if atPause >= int64(rows/parts/batch) {
		t.Fatalf("A's partition was loaded before the pause; make it longer")
	}

	// B takes the partition over once A's lease ran out, with the next
	// epoch; the loader fences A's stream, whose next batch is refused.
	waitFor(t, p, time.Minute, "B to take A's partition over", func() bool {
		return db.Int(`SELECT count(*) FROM cutover_control.partitions WHERE job_id = $1 AND id = $2 AND epoch = 2 AND lease_owner LIKE $3`,
			id, part, "%:"+strconv.Itoa(pidB)+":%") == 1
	})
	// B's claim set its lease to claim time + 2s: the claim came after A's
	// lease ran out (B may have renewed since, which only moves it later).
	if early := db.Int(`SELECT coalesce($3::bigint - (extract(epoch FROM lease_until) * 1000)::bigint + 2000, -1) FROM cutover_control.partitions WHERE job_id = $1 AND id = $2`,
		id, part, leaseEnd); early > 0 {
		t.Fatalf("the partition was taken over %d ms before A's lease ran out", early)
	}
	waitFor(t, p, time.Minute, "the fence to refuse A's batch", func() bool {
		return db.Int(`SELECT count(*) FROM cutover.fences WHERE job_id = $1 AND partition_id = $2 AND epoch = 2 AND refused >= 1 AND refused_epoch = 1`, id, part) == 1
	})
	// B finishes the job while A is still stopped.
	waitFor(t, p, 2*time.Minute, "B to finish the job", func() bool {
		return len(db.Strings(`SELECT id FROM cutover_control.jobs WHERE id = $1 AND state IN ('succeeded', 'failed')`, id)) == 1
	})

	// A runs again: it reads the acknowledgements queued for it, finds its
	// lease taken, and gives the partition up.
	if err := syscall.Kill(pidA, syscall.SIGCONT); err != nil {
		t.Fatalf("SIGCONT A: %v", err)
	}
	waitFor(t, p, time.Minute, "A to give the partition up", func() bool {
		b, _ := os.ReadFile(filepath.Join(p.dir, "orchestrator.log"))
		return strings.Contains(string(b), "partition taken over by another claim: giving it up")
	})
	time.Sleep(500 * time.Millisecond) // anything A would still write lands now

	job := testenv.WaitJob(t, jobs, id, time.Minute)
	if job.State != orchestratorv1.JobState_JOB_STATE_SUCCEEDED {
		t.Fatalf("job %s: %s\n%s", job.State, job.Error, p.logs())
	}
	if job.Counts.Extracted != rows || job.Counts.Loaded != rows || job.Counts.Quarantined != 0 {
		t.Fatalf("job counts %+v, want %d rows loaded", job.Counts, rows)
	}
	// Every source row once, as the generator wrote it (seqCSV: id i,
	// value "value i").
	if n := db.Int(`SELECT count(*) FROM seq`); n != rows {
		t.Errorf("target holds %d rows, want %d", n, rows)
	}
	if n := db.Int(`SELECT count(*) FROM generate_series(1, $1::int) g(i) FULL JOIN seq ON seq.id = g.i
		WHERE seq.id IS NULL OR g.i IS NULL OR seq.v IS DISTINCT FROM 'value ' || g.i`, rows); n != 0 {
		t.Errorf("%d rows missing, extra or wrong against the generated source", n)
	}
	// Each batch once in the ledger, the whole partition accounted for.
	if n := db.Int(`SELECT count(*) FROM (SELECT partition_id, seq FROM cutover.ledger WHERE job_id = $1 GROUP BY 1, 2 HAVING count(*) > 1) d`, id); n != 0 {
		t.Errorf("%d batches are in the ledger twice", n)
	}
	if n := db.Int(`SELECT coalesce(sum(loaded), 0) FROM cutover.ledger WHERE job_id = $1`, id); n != rows {
		t.Errorf("ledger counts %d loaded rows, want %d", n, rows)
	}
	// A's partition: batches of epoch 1 (before the take-over) and of
	// epoch 2 (B's); none of epoch 1 began after epoch 2 was recorded.
	if n := db.Int(`SELECT count(*) FROM cutover.ledger WHERE job_id = $1 AND partition_id = $2 AND epoch = 1`, id, part); n < atPause {
		t.Errorf("A's partition has %d batches of epoch 1, %d were committed at the pause", n, atPause)
	}
	if n := db.Int(`SELECT count(*) FROM cutover.ledger WHERE job_id = $1 AND partition_id = $2 AND epoch = 2`, id, part); n == 0 {
		t.Errorf("B committed no batch of A's partition")
	}
	if n := db.Int(`SELECT count(*) FROM cutover.ledger l JOIN cutover.fences f USING (job_id, partition_id)
		WHERE l.job_id = $1 AND l.partition_id = $2 AND l.epoch < f.epoch AND l.committed_at >= f.updated_at`, id, part); n != 0 {
		t.Errorf("%d batches of the old epoch committed after the take-over", n)
	}
	if n := db.Int(`SELECT count(*) FROM cutover.ledger WHERE job_id = $1 AND epoch = 0`, id); n != 0 {
		t.Errorf("%d batches were committed without an epoch (not fenced)", n)
	}
	// The refusal is in the loader's log; A neither retried nor failed the
	// partition, and the control schema has it done under B's epoch.
	if b, _ := os.ReadFile(filepath.Join(p.dir, "loader.log")); !strings.Contains(string(b), "fenced commit refused") {
		t.Errorf("the loader's log does not show the refusal")
	}
	logA, _ := os.ReadFile(filepath.Join(p.dir, "orchestrator.log"))
	for _, s := range []string{"partition failed", "will retry"} {
		if strings.Contains(string(logA), s) {
			t.Errorf("A's log says %q:\n%s", s, logA)
		}
	}
	if n := db.Int(`SELECT count(*) FROM cutover_control.partitions WHERE job_id = $1 AND id = $2 AND state = 'done' AND epoch = 2 AND loaded > 0`, id, part); n != 1 {
		t.Errorf("A's partition is not done under epoch 2")
	}
	t.Logf("partition %s: %d batches at the pause, taken over after A's lease ran out; batches by epoch: %v; fence: %v",
		part, atPause,
		db.Strings(`SELECT epoch || ':' || count(*) FROM cutover.ledger WHERE job_id = $1 AND partition_id = $2 GROUP BY epoch ORDER BY epoch`, id, part),
		db.Strings(`SELECT 'epoch ' || epoch || ', refused ' || refused || ' of epoch ' || refused_epoch FROM cutover.fences WHERE job_id = $1 AND partition_id = $2`, id, part))
	for _, line := range strings.Split(string(logA), "\n") {
		if strings.Contains(line, "giving it up") {
			t.Logf("A: %s", line)
		}
	}
	if t.Failed() {
		t.Log(p.logs())
	}
}

// pid is the process id of a service start.sh started.
func (p *procs) pid(name string) int {
	p.t.Helper()
	b, err := os.ReadFile(filepath.Join(p.dir, name+".pid"))
	if err != nil {
		p.t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		p.t.Fatal(err)
	}
	return pid
}

// startOrchestrator starts one more orchestrator process on the same
// stages and control database, logging to orchestrator-<name>.log, and
// returns its pid; it is stopped (SIGTERM) when the test ends.
func (p *procs) startOrchestrator(t *testing.T, name string, env ...string) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	logf, err := os.Create(filepath.Join(p.dir, "orchestrator-"+name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(binDir, "orchestrator"))
	cmd.Env = append(append([]string{}, p.env...), "CUTOVER_ORCHESTRATOR_ADDR="+addr,
		"CUTOVER_EXTRACTOR_ADDR="+p.addr(offsets["extractor"]), "CUTOVER_TRANSFORMER_ADDR="+p.addr(offsets["transformer"]),
		"CUTOVER_VALIDATOR_ADDR="+p.addr(offsets["validator"]), "CUTOVER_LOADER_ADDR="+p.addr(offsets["loader"]),
		"CUTOVER_TRACE_FILE="+filepath.Join(p.dir, "traces-"+name+".jsonl"))
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	waitFor(t, p, 30*time.Second, "orchestrator "+name+" to listen", func() bool {
		select {
		case <-done:
			t.Fatalf("orchestrator %s exited at start\n%s", name, p.logs())
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return cmd.Process.Pid
}
