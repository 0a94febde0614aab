// Package chaos is the fault-injection suite behind `make chaos`: a job over
// three tables (a CSV into a keyed table and into a keyless one, a MariaDB
// table) runs with every service a separate process while services are
// SIGKILLed, PostgreSQL restarts and links reset or stall; then every
// target table must hold exactly what the data generator says: each valid
// row once with its value, each broken row quarantined once. A fault counts
// only when it hit: when some part of the system observed it (a failed
// attempt, a retry, a re-leased partition, a resume, a logged warning, a
// failed client call) while the job ran. The suite is test code only;
// `make chaos` runs the full form, `go test` (and so `make test`) a
// bounded one.
package chaos

import (
	"context"
	"crypto/md5"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/kit/mysqltest"
	"github.com/cutover/cutover/services/kit/server"
	_ "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var binDir string

// TestMain builds the service binaries once, as separate programs.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cutover-chaos-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	wd, _ := os.Getwd()
	root := filepath.Clean(filepath.Join(wd, "..", "..", ".."))
	for _, s := range append(append([]string{}, stages...), "orchestrator", "gateway") {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, s), "./cmd/"+s)
		cmd.Dir = filepath.Join(root, "services", s)
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", s, err, out)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	mysqltest.Cleanup()
	os.RemoveAll(dir)
	os.Exit(code)
}

// settings are the suite's size; env overrides them (see README, Chaos).
type settings struct {
	seed                          uint64
	hits, rows, myRows, parts, bs int
	batchTimeout                  time.Duration
}

func loadSettings() settings {
	s := settings{seed: uint64(time.Now().UnixNano()), hits: 24, rows: 40000, myRows: 12000, parts: 8, bs: 200, batchTimeout: 3 * time.Second}
	if os.Getenv("CUTOVER_CHAOS_FULL") == "1" {
		s.hits, s.rows, s.myRows, s.parts, s.bs = 72, 120000, 40000, 24, 250
	}
	envInt := func(name string, p *int) {
		if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
			*p = n
		}
	}
	if v, err := strconv.ParseUint(os.Getenv("CUTOVER_CHAOS_SEED"), 10, 64); err == nil {
		s.seed = v
	}
	envInt("CUTOVER_CHAOS_FAULTS", &s.hits)
	envInt("CUTOVER_CHAOS_ROWS", &s.rows)
	envInt("CUTOVER_CHAOS_PARTITIONS", &s.parts)
	envInt("CUTOVER_CHAOS_BATCH", &s.bs)
	return s
}

// Fault kinds. Every one must score at least one hit, or the suite fails.
var kinds = []string{
	"kill extractor", "kill transformer", "kill validator", "kill loader", "kill orchestrator", "pause orchestrator",
	"postgres restart", "net reset stage", "net stall stage", "net stall acks",
	"net reset target", "net reset control", "net reset source", "net reset gateway",
}

// TestChaos runs the job under faults, round after round, until the hit
// budget is spent and every kind has hit, and checks every round's targets
// against the generator's expectation.
func TestChaos(t *testing.T) {
	cfg := loadSettings()
	t.Logf("chaos seed %d (CUTOVER_CHAOS_SEED=%d replays it): %d hits, %d+%d rows, %d partitions, batch %d",
		cfg.seed, cfg.seed, cfg.hits, cfg.rows, cfg.myRows, cfg.parts, cfg.bs)
	fmt.Printf("chaos seed %d\n", cfg.seed)
	rng := rand.New(rand.NewPCG(cfg.seed, 0x636875746f766572))

	pg := startCluster(t)
	control := pg.database(t, "chaos_control")
	csv := writeCSV(t, cfg.rows)
	members := writeMembers(t, cfg.myRows)
	maria := mariaSource(t, cfg.myRows)
	st := startStack(t, binDir, control,
		"CUTOVER_LEASE=4s", "CUTOVER_BATCH_TIMEOUT="+cfg.batchTimeout.String(), "CUTOVER_WORKERS=4", "CUTOVER_MAX_ATTEMPTS=5")
	src := mysqlVia(t, st, maria)
	jobs := jobClient(t, st)
	rest := newRESTClient(t, st)
	want := expected(cfg)

	inj := &injector{t: t, st: st, pg: pg, rng: rng, cfg: cfg, control: control, byKind: map[string]int{}, tried: map[string]int{}}
	var lost, dup int
	for round := 1; !inj.done(); round++ {
		if round > 2*cfg.hits {
			break // done() is checked below, with the kinds that missed
		}
		db := pg.database(t, fmt.Sprintf("chaos_round_%d", round))
		job := runJob(t, st, jobs, rest, spec(csv, members, st.viaLink("target", db), src, cfg), db, cfg.rows, inj)
		got := snapshotOf(t, db, job)
		var rep *orchestratorv1.GetJobReportResponse
		var err error
		for try := 0; try < 30; try++ { // a fault may still be healing: Unavailable is retried
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			rep, err = jobs.GetJobReport(ctx, &orchestratorv1.GetJobReportRequest{Id: job.Id})
			cancel()
			if status.Code(err) != codes.Unavailable {
				break
			}
			time.Sleep(time.Second)
		}
		if err != nil || !rep.GetReport().GetBalanced() {
			t.Errorf("round %d: the report of job %s is not balanced (err %v)", round, job.Id, err)
		}
		l, d, problems := verify(want, got)
		lost += l
		dup += d
		t.Logf("round %d: job %s, hits so far %d of %d faults, lost %d, duplicated %d", round, job.Id, inj.hits, inj.total, l, d)
		for _, p := range problems {
			t.Errorf("round %d: %s", round, p)
		}
		if l != 0 || d != 0 || len(problems) > 0 {
			break // a broken round is the finding: more rounds add nothing
		}
	}
	rollbackUnderFaults(t, st, jobs, rest, pg, csv, members, src, cfg, inj)
	followUnderFaults(t, st, jobs, pg, maria, src, inj)
	followLogicalUnderFaults(t, st, jobs, pg, inj)
	names := append([]string{}, kinds...)
	sort.Strings(names)
	var missed []string
	fmt.Printf("  %-20s %5s %6s\n", "kind", "hits", "faults")
	for _, k := range names {
		fmt.Printf("  %-20s %5d %6d\n", k, inj.byKind[k], inj.tried[k])
		if inj.byKind[k] == 0 {
			missed = append(missed, k)
		}
	}
	fmt.Printf("  %-20s %d\n", "job resumes", inj.resumes)
	fmt.Printf("  %-20s %d\n", "fenced commits", st.countInLogs("fenced commit refused"))
	fmt.Printf("  %-20s %d\n", "client call errors", inj.clientErrs)
	for _, h := range inj.log {
		t.Logf("hit: %s", h)
	}
	if len(missed) > 0 {
		t.Errorf("no hit for %s in %d faults: the suite cannot claim it survives them", strings.Join(missed, ", "), inj.total)
	}
	if inj.hits < cfg.hits {
		t.Errorf("%d hits, the budget is %d", inj.hits, cfg.hits)
	}
	if lost != 0 || dup != 0 {
		t.Errorf("lost %d rows, duplicated %d", lost, dup)
	}
	if t.Failed() {
		t.Logf("service logs:\n%s", st.logs())
	}
	fmt.Printf("faults %d, lost %d, duplicated %d\n", inj.hits, lost, dup)
}

func jobClient(t *testing.T, st *stack) orchestratorv1.JobServiceClient {
	t.Helper()
	opts, err := server.ClientOptions(st.tls)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := server.Dial(st.jobAddr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return orchestratorv1.NewJobServiceClient(cc)
}

// The generator: valid rows load as "value <id>", every row the rule
// refuses is quarantined by its source reference.

// csvBroken says whether CSV row id breaks the rule.
func csvBroken(id int) bool { return id%500 == 7 }

// myBroken says whether MariaDB row id breaks the rule.
func myBroken(id int) bool { return id%300 == 11 }

// writeCSV writes id,v rows.
func writeCSV(t *testing.T, n int) string {
	t.Helper()
	var sb strings.Builder
	sb.WriteString("id,v\n")
	for i := 1; i <= n; i++ {
		if csvBroken(i) {
			fmt.Fprintf(&sb, "%d,broken %d\n", i, i)
			continue
		}
		fmt.Fprintf(&sb, "%d,value %d\n", i, i)
	}
	path := filepath.Join(t.TempDir(), "chaos.csv")
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// memberValue is member row id's v: every 50th row repeats the row before
// it, so the two are one record and the newer (larger id) survives.
func memberValue(id int) string {
	if id%50 == 2 {
		id--
	}
	return fmt.Sprintf("member %d", id)
}

// writeMembers writes the staged table's id,v rows.
func writeMembers(t *testing.T, n int) string {
	t.Helper()
	var sb strings.Builder
	sb.WriteString("id,v\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&sb, "%d,%s\n", i, memberValue(i))
	}
	path := filepath.Join(t.TempDir(), "members.csv")
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// mariaSource creates the MariaDB table and returns its DSN.
func mariaSource(t *testing.T, n int) string {
	t.Helper()
	dsn := mysqltest.NewDatabase(t)
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE my_seq (id int PRIMARY KEY, v varchar(40) NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	var vals []string
	flush := func() {
		if len(vals) == 0 {
			return
		}
		if _, err := db.Exec(`INSERT INTO my_seq VALUES ` + strings.Join(vals, ",")); err != nil {
			t.Fatal(err)
		}
		vals = vals[:0]
	}
	for i := 1; i <= n; i++ {
		v := fmt.Sprintf("value %d", i)
		if myBroken(i) {
			v = fmt.Sprintf("broken %d", i)
		}
		vals = append(vals, fmt.Sprintf("(%d,'%s')", i, v))
		if len(vals) == 1000 {
			flush()
		}
	}
	flush()
	return dsn
}

// expected is what the generator says each table must end with.
func expected(cfg settings) map[string]*tableWant {
	csvWant := &tableWant{rows: map[int64]string{}, quarantine: map[string]bool{}}
	for i := 1; i <= cfg.rows; i++ {
		if csvBroken(i) {
			csvWant.quarantine[fmt.Sprintf("line %d", i+1)] = true // line 1 is the header
		} else {
			csvWant.rows[int64(i)] = fmt.Sprintf("value %d", i)
		}
	}
	myWant := &tableWant{rows: map[int64]string{}, quarantine: map[string]bool{}}
	for i := 1; i <= cfg.myRows; i++ {
		if myBroken(i) {
			myWant.quarantine[fmt.Sprintf("id=%d", i)] = true
		} else {
			myWant.rows[int64(i)] = fmt.Sprintf("value %d", i)
		}
	}
	keyless := *csvWant
	keyless.keyless = true
	// The upsert table starts with "old <id>" for every third id: valid
	// rows replace them, broken ones leave them.
	upsert := &tableWant{rows: map[int64]string{}, quarantine: csvWant.quarantine}
	for id, v := range csvWant.rows {
		upsert.rows[id] = v
	}
	for i := 3; i <= cfg.rows; i += 3 {
		if csvBroken(i) {
			upsert.rows[int64(i)] = fmt.Sprintf("old %d", i)
			upsert.preexisting++
		}
	}
	// The staged table: of each pair with the same v, the larger id.
	members := &tableWant{rows: map[int64]string{}, quarantine: map[string]bool{}}
	for i := 1; i <= cfg.myRows; i++ {
		if i%50 == 1 && i+1 <= cfg.myRows {
			members.merged++
			continue
		}
		members.rows[int64(i)] = memberValue(i)
	}
	return map[string]*tableWant{"seq": csvWant, "seq_nokey": &keyless, "my_seq": myWant, "seq_upsert": upsert, "members": members}
}

func spec(csv, members, target, mysqlDSN string, cfg settings) *commonv1.JobSpec {
	rule := []*commonv1.Rule{{Column: "v", Kind: &commonv1.Rule_Regex{Regex: &commonv1.RegexRule{Pattern: "^value"}}}}
	cols := []*commonv1.ColumnMapping{{Target: "id", Source: "id"}, {Target: "v", Source: "v"}}
	csvSrc := &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Csv{Csv: &commonv1.CsvSource{Path: csv}}}
	return &commonv1.JobSpec{Name: "chaos", BatchSize: int32(cfg.bs), Parallelism: 4,
		Target: &commonv1.TargetSpec{Dsn: target},
		Tables: []*commonv1.TableSpec{
			{Name: "seq", TargetTable: "seq", Partitions: int32(cfg.parts), Source: csvSrc, Columns: cols, Rules: rule},
			// No key in the target: only the ledger keeps a batch from
			// loading twice.
			{Name: "seq_nokey", TargetTable: "seq_nokey", Partitions: int32(cfg.parts / 2), Source: csvSrc, Columns: cols, Rules: rule},
			{Name: "my_seq", TargetTable: "my_seq", Partitions: int32(cfg.parts / 2), Columns: cols, Rules: rule,
				Source: &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Mysql{Mysql: &commonv1.MysqlSource{Dsn: mysqlDSN, Table: "my_seq"}}}},
			// Rows with a taken key replace the row (its before image kept).
			{Name: "seq_upsert", TargetTable: "seq_upsert", Partitions: int32(cfg.parts / 2), Source: csvSrc, Columns: cols, Rules: rule,
				WriteMode: commonv1.WriteMode_WRITE_MODE_UPSERT},
			// Staged: rows with the same v are one record, merged at
			// finalize across partitions; the larger id survives.
			{Name: "members", TargetTable: "members", Partitions: int32(cfg.parts / 2), Columns: cols,
				Source: &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Csv{Csv: &commonv1.CsvSource{Path: members}}},
				Dedupe: &commonv1.Dedupe{Keys: []*commonv1.MatchKey{{Columns: []string{"v"}}}, Policy: commonv1.SurvivorPolicy_SURVIVOR_POLICY_NEWEST, NewestBy: "id"}},
		}}
}

// runJob creates the target tables and runs the job to SUCCEEDED (resuming
// it when retries ran out), with inj injecting faults while it runs. The
// job is watched through the gateway, as a client would, so the client's
// link is one the faults hit.
func runJob(t *testing.T, st *stack, jobs orchestratorv1.JobServiceClient, rest *restClient, sp *commonv1.JobSpec, direct string, rows int, inj *injector) *orchestratorv1.Job {
	t.Helper()
	exec1(t, direct, `CREATE TABLE seq (id bigint PRIMARY KEY, v text NOT NULL)`)
	exec1(t, direct, `CREATE TABLE seq_nokey (id bigint, v text)`)
	exec1(t, direct, `CREATE TABLE my_seq (id bigint PRIMARY KEY, v text NOT NULL)`)
	exec1(t, direct, `CREATE TABLE seq_upsert (id bigint PRIMARY KEY, v text NOT NULL)`)
	exec1(t, direct, `CREATE TABLE members (id bigint PRIMARY KEY, v text NOT NULL)`)
	exec1(t, direct, `INSERT INTO seq_upsert SELECT g, 'old ' || g FROM generate_series(3, $1::int, 3) g`, rows)
	var created *orchestratorv1.CreateJobResponse
	var err error
	for try := 0; try < 10; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		created, err = jobs.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: sp})
		cancel()
		if status.Code(err) != codes.Unavailable {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		t.Fatalf("CreateJob: %v", err)
	}
	id := created.Job.Id
	stop := make(chan struct{})
	var wg sync.WaitGroup
	if inj != nil {
		inj.startJob(id)
		wg.Add(1)
		go func() { defer wg.Done(); inj.run(stop) }()
	}
	finish := func() {
		close(stop)
		wg.Wait()
		if inj != nil && inj.err != nil {
			t.Fatalf("injecting faults: %v\n%s", inj.err, st.logs())
		}
	}
	deadline := time.Now().Add(10 * time.Minute)
	resumed := 0
	for {
		if time.Now().After(deadline) {
			finish()
			t.Fatalf("job %s did not succeed within 10 minutes\n%s", id, st.logs())
		}
		time.Sleep(200 * time.Millisecond)
		if n := st.healProxies(); n > 0 {
			t.Logf("job %s: restarted %d proxy listener(s) that had stopped accepting", id, n)
		}
		state, jobErr, err := rest.jobState(id)
		if err != nil {
			if inj != nil {
				inj.clientError(err)
			}
			continue // the gateway or the orchestrator may be down for a moment
		}
		switch state {
		case "JOB_STATE_SUCCEEDED":
			finish()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			res, err := jobs.GetJob(ctx, &orchestratorv1.GetJobRequest{Id: id})
			cancel()
			if err != nil {
				t.Fatalf("GetJob %s: %v", id, err)
			}
			return res.GetJob()
		case "JOB_STATE_FAILED":
			if inj == nil {
				t.Fatalf("clean run failed: %s\n%s", jobErr, st.logs())
			}
			// Retries ran out under the faults: resume, as an operator would,
			// but not forever: a job that keeps failing is a finding.
			resumed++
			if resumed > 5 {
				finish()
				t.Fatalf("job %s failed again after 5 resumes: %s\n%s", id, jobErr, st.logs())
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := jobs.ResumeJob(ctx, &orchestratorv1.ResumeJobRequest{Id: id})
			cancel()
			if err == nil {
				inj.resumed()
				t.Logf("job %s failed (%s); resumed", id, jobErr)
			}
		case "JOB_STATE_CANCELLED":
			finish()
			t.Fatalf("job %s was cancelled", id)
		}
	}
}

func exec1(t *testing.T, dsn, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// rollbackUnderFaults loads the keyed tables once more and rolls the job
// back while services are killed and links reset: the call is repeated
// until it answers (as a client would), and the tables must then be as
// they were before the job, by the generator: empty, and the upsert
// table's "old" rows back.
func rollbackUnderFaults(t *testing.T, st *stack, jobs orchestratorv1.JobServiceClient, rest *restClient, pg *cluster, csv, members, src string, cfg settings, inj *injector) {
	t.Helper()
	db := pg.database(t, "chaos_rollback")
	sp := spec(csv, members, st.viaLink("target", db), src, cfg)
	sp.Tables = slices.DeleteFunc(sp.Tables, func(tb *commonv1.TableSpec) bool { return tb.GetName() == "seq_nokey" || tb.GetName() == "members" })
	job := runJob(t, st, jobs, rest, sp, db, cfg.rows, nil)
	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		n := 0
		for _, kind := range []string{"kill loader", "net reset target", "kill orchestrator", "postgres restart", "net reset control"} {
			if !inj.sleep(stop, inj.between(50*time.Millisecond, 400*time.Millisecond)) {
				break
			}
			if err := inj.inject(kind); err != nil {
				t.Errorf("rollback: %s: %v", kind, err)
			}
			n++
		}
		done <- n
	}()
	var err error
	tries := 0
	for ; tries < 20; tries++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_, err = jobs.RollbackJob(ctx, &orchestratorv1.RollbackJobRequest{Id: job.Id})
		cancel()
		if err == nil {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	close(stop)
	faults := <-done
	if err != nil {
		t.Fatalf("rollback of %s under %d faults failed %d times, last: %v\n%s", job.Id, faults, tries, err, st.logs())
	}
	var counts [3]int64
	var old string
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM seq), (SELECT count(*) FROM my_seq), (SELECT count(*) FROM seq_upsert),
		(SELECT coalesce(md5(string_agg(id || ':' || v, ',' ORDER BY id)), '') FROM seq_upsert)`).Scan(&counts[0], &counts[1], &counts[2], &old); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := 3; i <= cfg.rows; i += 3 {
		want = append(want, fmt.Sprintf("%d:old %d", i, i))
	}
	wantSum := fmt.Sprintf("%x", md5.Sum([]byte(strings.Join(want, ","))))
	if counts[0] != 0 || counts[1] != 0 || counts[2] != int64(len(want)) || old != wantSum {
		t.Errorf("after rollback under faults: seq %d rows, my_seq %d (want 0 and 0); seq_upsert %d rows (want %d), checksum %s (want %s)",
			counts[0], counts[1], counts[2], len(want), old, wantSum)
	}
	fmt.Printf("  %-20s %d faults during the call, %d failed calls repeated, target restored\n", "rollback", faults, tries)
}
