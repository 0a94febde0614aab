package ctl

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/cutover/internal/testenv"
	"github.com/cutover/cutover/services/cutover/stack"
	"github.com/cutover/cutover/services/kit/mysqltest"
	"github.com/cutover/cutover/services/kit/pgtest"
	"github.com/cutover/cutover/services/orchestrator/orchestrate"
	"google.golang.org/protobuf/encoding/protojson"
)

// tlsDir is the stacks' CA, certificates and admin token; cutoverctl finds
// them through CUTOVER_TLS_DIR, as in a user's shell.
var tlsDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cutoverctl-tls")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	tlsDir = dir
	os.Setenv("CUTOVER_TLS_DIR", dir)
	code := pgtest.Run(m)
	mysqltest.Cleanup()
	os.Exit(code)
}

// startStack runs the embedded stack against db (target and control
// schema) and returns the orchestrator's address.
func startStack(t *testing.T, db *testenv.DB) *stack.Stack {
	t.Helper()
	st, err := stack.Start(context.Background(), stack.Config{
		Addrs:        stack.EphemeralAddrs(),
		Orchestrator: orchestrate.Config{ControlURL: db.URL, DefaultTarget: db.URL, Workers: 2, Poll: 20 * time.Millisecond},
		Grace:        5 * time.Second,
		TLSDir:       tlsDir,
		FileRoots:    testenv.FileRoots(t),
	})
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close stack: %v", err)
		}
	})
	return st
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func tempFile(t *testing.T, name, content string) string {
	t.Helper()
	return testenv.WriteFile(t, name, content)
}

func writeSpec(t *testing.T, spec *commonv1.JobSpec) string {
	t.Helper()
	b, err := protojson.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	return tempFile(t, "spec.json", string(b))
}

type result struct {
	code           int
	stdout, stderr string
}

func runCtl(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), args, &out, &errb)
	return result{code, out.String(), errb.String()}
}

func (r result) want(t *testing.T, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
}

func readJUnit(t *testing.T, path string) parsedJUnit {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parseJUnit(t, b)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const ordersDDL = `CREATE TABLE orders (
	id bigint PRIMARY KEY, customer_id bigint NOT NULL, amount numeric(12,2), status text NOT NULL,
	ordered_on date, note varchar(10), source text NOT NULL)`

// badCSV has five bad rows among ten (cast, ragged, one_of, length, range).
const badCSV = `id,customer,amount,status,day,note
1,10,12.50,new,2023-01-05,ok
2,11,7,paid,2023-01-06,
3,12,abc,new,2023-01-07,non-number
4,13,1.00,new,2023-02-30,bad date
5,14,3.00,new
6,15,4.00,zzz,2023-01-08,bad status
7,16,5.00,paid,2023-01-09,"a, ""b"""
8,17,6.00,paid,2023-01-10,far too long a note
9,18,7.00,paid,2023-01-11,x,extra
10,19,-1.00,paid,2023-01-12,negative
`

func ordersSpec(csvPath string) *commonv1.JobSpec {
	legacy := "legacy"
	return &commonv1.JobSpec{
		Name: "orders", BatchSize: 3,
		Tables: []*commonv1.TableSpec{{
			Name: "orders", TargetTable: "orders",
			Source: &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Csv{Csv: &commonv1.CsvSource{Path: csvPath}}},
			Columns: []*commonv1.ColumnMapping{
				{Target: "id", Source: "id"}, {Target: "customer_id", Source: "customer"}, {Target: "amount", Source: "amount"},
				{Target: "status", Source: "status"}, {Target: "ordered_on", Source: "day"}, {Target: "note", Source: "note"},
				{Target: "source", Default: &legacy},
			},
			Rules: []*commonv1.Rule{
				{Column: "status", Kind: &commonv1.Rule_OneOf{OneOf: &commonv1.OneOfRule{Values: []string{"new", "paid"}}}},
				{Column: "amount", Kind: &commonv1.Rule_Range{Range: &commonv1.RangeRule{Min: "0"}}},
			},
		}},
	}
}

// examplesDir is the repository's examples/ directory.
func examplesDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "..", "examples"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestValidateDemoSpec: the demo spec (CSV + legacy PostgreSQL) passes the
// spec check; its dry run finds the demo's bad rows and fails.
func TestValidateDemoSpec(t *testing.T) {
	legacy, target := testenv.NewDB(t), testenv.NewDB(t)
	ex := examplesDir(t)
	legacy.Exec(readFile(t, filepath.Join(ex, "demo", "legacy.sql")))
	target.Exec(readFile(t, filepath.Join(ex, "demo", "target.sql")))
	t.Setenv("CUTOVER_LEGACY_URL", legacy.URL)
	st := startStack(t, target)
	spec := filepath.Join(ex, "demo", "spec.json")
	dir := t.TempDir()
	junit, report := filepath.Join(dir, "junit.xml"), filepath.Join(dir, "report.md")

	// A wrong token is refused (exit 2) before anything is checked.
	r := runCtl(t, "validate", "--addr", st.Addrs.Orchestrator, "--token", "WRONG", "--spec", spec)
	r.want(t, ExitUsage)
	if !strings.Contains(r.stderr, "unknown bearer token") {
		t.Errorf("wrong token: stderr %q", r.stderr)
	}
	r = runCtl(t, "validate", "--addr", st.Addrs.Orchestrator, "--spec", spec, "--junit", junit, "--report", report)
	r.want(t, ExitOK)
	p := readJUnit(t, junit)
	if p.Failures != 0 || len(p.Suites) != 3 || p.Suites[0].Name != "customers" || p.Suites[1].Name != "orders" {
		t.Errorf("junit: %+v", p.outcomes())
	}
	if md := readFile(t, report); !strings.HasPrefix(md, "## ✅ Spec check passed") {
		t.Errorf("report:\n%s", md)
	}
	if !strings.HasPrefix(r.stdout, "validate PASS") {
		t.Errorf("stdout: %s", r.stdout)
	}

	r = runCtl(t, "validate", "--addr", st.Addrs.Orchestrator, "--spec", spec, "--dry-run", "--junit", junit, "--report", report)
	r.want(t, ExitFailed)
	got := readJUnit(t, junit).outcomes()
	for k, want := range map[string]string{
		"orders/rule one_of":   "fail: 2 rows quarantined by rule one_of",
		"orders/rule range":    "fail: 1 row quarantined by rule range",
		"customers/rule regex": "fail: ",
		"job/spec":             "pass",
	} {
		if !strings.HasPrefix(got[k], want) {
			t.Errorf("%s = %q, want %q…", k, got[k], want)
		}
	}
	md := readFile(t, report)
	for _, w := range []string{"## ❌ Dry run failed", "| orders | ❌ | 2400 |", "| one_of | error | 2 |", "id=101"} {
		if !strings.Contains(md, w) {
			t.Errorf("dry-run report lacks %q:\n%s", w, md)
		}
	}
	if n := target.Int(`SELECT count(*) FROM shop.orders`); n != 0 {
		t.Errorf("validation loaded %d rows", n)
	}
}

// TestValidateBrokenColumn: a spec naming a column the source lacks exits
// 1, and its JUnit XML has a failing case naming the column.
func TestValidateBrokenColumn(t *testing.T) {
	db := testenv.NewDB(t)
	db.Exec(ordersDDL)
	st := startStack(t, db)
	spec := ordersSpec(tempFile(t, "orders.csv", badCSV))
	spec.Tables[0].Columns[2].Source = "amout"
	path := writeSpec(t, spec)
	for _, dry := range []bool{false, true} {
		t.Run(fmt.Sprintf("dry-run=%v", dry), func(t *testing.T) {
			dir := t.TempDir()
			junit, report := filepath.Join(dir, "junit.xml"), filepath.Join(dir, "report.md")
			args := []string{"validate", "--addr", st.Addrs.Orchestrator, "--spec", path, "--junit", junit, "--report", report}
			if dry {
				args = append(args, "--dry-run")
			}
			r := runCtl(t, args...)
			r.want(t, ExitFailed)
			p := readJUnit(t, junit)
			got := p.outcomes()
			spec := got["orders/spec"]
			if p.Failures != 1 || !strings.HasPrefix(spec, "fail: tables[0].columns[2].source: ") ||
				!strings.Contains(spec, `"amout"`) || !strings.HasSuffix(spec, "(column amount)") {
				t.Errorf("junit: %v", got)
			}
			md := readFile(t, report)
			if !strings.Contains(md, "- `tables[0].columns[2].source`: ") || !strings.Contains(md, "(column `amount`)") {
				t.Errorf("report:\n%s", md)
			}
			if !strings.Contains(r.stdout, "FAIL orders / spec: tables[0].columns[2].source") {
				t.Errorf("stdout:\n%s", r.stdout)
			}
		})
	}

	// Neither the extractor nor the REST gateway is the orchestrator: a
	// usage error, said so in one line.
	for _, tc := range []struct{ addr, want string }{
		{st.Addrs.Extractor, "does not serve cutover.orchestrator.v1.ValidationService"},
		{st.Addrs.Gateway, "does not speak gRPC"},
	} {
		r := runCtl(t, "validate", "--addr", tc.addr, "--spec", path)
		r.want(t, ExitUsage)
		if !strings.Contains(r.stderr, tc.want) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("stderr: %q, want %q", r.stderr, tc.want)
		}
	}
}

// TestDryRunThresholds: bad rows fail a dry run unless thresholds allow
// them; a sample of the clean first rows passes.
func TestDryRunThresholds(t *testing.T) {
	db := testenv.NewDB(t)
	db.Exec(ordersDDL)
	st := startStack(t, db)
	csv := tempFile(t, "orders.csv", badCSV)
	for _, tc := range []struct {
		name       string
		thresholds []*commonv1.Threshold
		extra      []string
		code       int
		outcomes   map[string]string
	}{
		{name: "no thresholds", code: ExitFailed, outcomes: map[string]string{
			"orders/rule one_of": "fail: 1 row quarantined by rule one_of", "orders/rule cast": "fail:", "orders/rule ragged_row": "fail:"}},
		{name: "thresholds allow", thresholds: []*commonv1.Threshold{{MaxRatio: ptr(0.8)}}, code: ExitOK, outcomes: map[string]string{
			"orders/rule one_of": "pass", "orders/rule cast": "pass", "job/thresholds": "pass"}},
		{name: "threshold passed", thresholds: []*commonv1.Threshold{{MaxRatio: ptr(0.1)}}, code: ExitFailed, outcomes: map[string]string{
			"orders/rule one_of": "pass", "job/thresholds": "fail: thresholds[0]: "}},
		{name: "table threshold on one rule", thresholds: []*commonv1.Threshold{{Table: "orders", Rule: "one_of", MaxRows: ptr(int64(0))}}, code: ExitFailed,
			outcomes: map[string]string{"orders/thresholds": "fail: thresholds[0]: 1 row quarantined by rule one_of in table orders"}},
		{name: "clean sample", extra: []string{"--sample", "2"}, code: ExitOK, outcomes: map[string]string{
			"orders/rule one_of": "pass", "orders/rule range": "pass"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := ordersSpec(csv)
			spec.Thresholds = tc.thresholds
			junit := filepath.Join(t.TempDir(), "junit.xml")
			r := runCtl(t, append([]string{"validate", "--dry-run", "--rows", "2", "--addr", st.Addrs.Orchestrator, "--spec", writeSpec(t, spec), "--junit", junit}, tc.extra...)...)
			r.want(t, tc.code)
			p := readJUnit(t, junit)
			got := p.outcomes()
			for k, want := range tc.outcomes {
				if !strings.HasPrefix(got[k], want) {
					t.Errorf("%s = %q, want %q…", k, got[k], want)
				}
			}
			if (p.Failures == 0) != (tc.code == ExitOK) {
				t.Errorf("exit %d with %d JUnit failures: %v", r.code, p.Failures, got)
			}
		})
	}
	if n := db.Int(`SELECT count(*) FROM orders`); n != 0 {
		t.Errorf("dry runs loaded %d rows", n)
	}
}

var unreachable = regexp.MustCompile(`^cutoverctl: cannot reach orchestrator at 127\.0\.0\.1:\d+: connection refused\n$`)

// TestUnreachable: a closed port is exit 2 with one line, for every
// command, well within the default deadlines.
func TestUnreachable(t *testing.T) {
	addr := closedAddr(t)
	spec := writeSpec(t, ordersSpec("orders.csv"))
	for _, args := range [][]string{
		{"validate", "--spec", spec, "--addr", addr},
		{"validate", "--spec", spec, "--dry-run", "--addr", addr},
		{"reconcile", "some-job", "--addr", addr},
		{"readiness", "some-job", "--addr", addr},
		{"readiness", "some-job", "--watch", "--addr", addr},
		{"stop-following", "some-job", "--addr", addr},
		{"rollback", "some-job", "--addr", addr},
	} {
		t.Run(strings.Join(args[:2], " "), func(t *testing.T) {
			r := runCtl(t, args...)
			r.want(t, ExitUsage)
			if !unreachable.MatchString(r.stderr) || r.stdout != "" {
				t.Errorf("stderr %q stdout %q", r.stderr, r.stdout)
			}
		})
	}
	// The address may come from the environment.
	t.Setenv("CUTOVER_ORCHESTRATOR_ADDR", addr)
	r := runCtl(t, "validate", "--spec", spec)
	r.want(t, ExitUsage)
	if !strings.Contains(r.stderr, addr) {
		t.Errorf("stderr %q does not name %s", r.stderr, addr)
	}
}

// TestReconcile: an unknown job is a usage error; a finished job
// reconciles clean, and a damaged target fails with the key named.
func TestReconcile(t *testing.T) {
	db := testenv.NewDB(t)
	db.Exec(ordersDDL)
	st := startStack(t, db)
	addr := st.Addrs.Orchestrator

	r := runCtl(t, "reconcile", "--addr", addr, "00000000-0000-0000-0000-000000000000")
	r.want(t, ExitUsage)
	if strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, "cutoverctl: ") {
		t.Errorf("stderr: %q", r.stderr)
	}

	conn, err := st.Conn()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	good := "id,customer,amount,status,day,note\n1,10,12.50,new,2023-01-05,a\n2,11,7.00,paid,2023-01-06,b\n3,12,8.00,paid,2023-01-07,c\n"
	spec := ordersSpec(tempFile(t, "orders.csv", good))
	spec.Tables[0].Aggregates = []*commonv1.Aggregate{{Name: "amount per status", GroupBy: []string{"status"}, Sum: []string{"amount"}}}
	jobs := orchestratorv1.NewJobServiceClient(conn)
	created, err := jobs.CreateJob(context.Background(), &orchestratorv1.CreateJobRequest{Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	id := created.GetJob().GetId()
	if j := testenv.WaitJob(t, jobs, id, time.Minute); j.GetState() != orchestratorv1.JobState_JOB_STATE_SUCCEEDED {
		t.Fatalf("job: %v", j)
	}
	dir := t.TempDir()
	junit, report := filepath.Join(dir, "junit.xml"), filepath.Join(dir, "report.md")
	r = runCtl(t, "reconcile", id, "--addr", addr, "--junit", junit, "--report", report)
	r.want(t, ExitOK)
	p := readJUnit(t, junit)
	if len(p.Suites) != 1 {
		t.Fatalf("suites: %v", p.outcomes())
	}
	suite := p.Suites[0].Name
	for _, c := range []string{"counts", "aggregate amount per status", "rows"} {
		if got := p.outcomes()[suite+"/"+c]; got != "pass" {
			t.Errorf("clean %s/%s = %q", suite, c, got)
		}
	}

	// A CSV source has no database for the independent level: the table
	// is replayed, and that is a warning CI can fail on.
	if got := p.outcomes()[suite+"/warning"]; !strings.HasPrefix(got, "skip") {
		t.Errorf("file source warning = %q, want a skipped check", got)
	}
	if !strings.Contains(r.stdout, "PASS with warnings") {
		t.Errorf("summary %q does not say warnings", r.stdout)
	}
	runCtl(t, "reconcile", id, "--addr", addr, "--fail-on-warning").want(t, ExitFailed)
	runCtl(t, "reconcile", id, "--addr", addr, "--level", "replay", "--fail-on-warning").want(t, ExitOK)
	runCtl(t, "reconcile", id, "--addr", addr, "--level", "sideways").want(t, ExitUsage)

	// One amount changed, one row deleted: both keys named, and the
	// aggregate names the group; the count is off by one.
	db.Exec(`UPDATE orders SET amount = amount + 0.01 WHERE id = 2`, `DELETE FROM orders WHERE id = 3`)
	r = runCtl(t, "reconcile", "--addr", addr, "--junit", junit, "--report", report, id)
	r.want(t, ExitFailed)
	p = readJUnit(t, junit)
	got := p.outcomes()
	for k, want := range map[string]string{
		"counts":                      "fail: expected 3 rows, target has 2",
		"aggregate amount per status": "fail: ",
		"rows":                        "fail: ",
	} {
		if !strings.HasPrefix(got[suite+"/"+k], want) {
			t.Errorf("%s = %q, want %q…", k, got[suite+"/"+k], want)
		}
	}
	for _, c := range p.Suites[0].Cases {
		switch {
		case c.Name == "rows" && (!strings.Contains(c.Failure.Text, "changed id=2: ") || !strings.Contains(c.Failure.Text, "missing id=3: ")):
			t.Errorf("rows failure: %q", c.Failure.Text)
		case c.Name == "aggregate amount per status" && !strings.Contains(c.Failure.Text, "group [paid] sum(amount): source 15.00, target 7.01"):
			t.Errorf("aggregate failure: %q", c.Failure.Text)
		}
	}
	md := readFile(t, report)
	for _, w := range []string{"## ❌ Reconciliation failed", "| changed | id=2 |", "| missing | id=3 |", "| paid | sum(amount) | 15.00 | 7.01 |", "Aggregate `amount per status`: 2 groups, 1 differ."} {
		if !strings.Contains(md, w) {
			t.Errorf("report lacks %q:\n%s", w, md)
		}
	}
}

// TestBinary builds cutoverctl and checks its exit codes as CI sees them.
func TestBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "cutoverctl")
	build := exec.Command("go", "build", "-o", bin, "../cmd/cutoverctl")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	db := testenv.NewDB(t)
	db.Exec(ordersDDL)
	st := startStack(t, db)
	good := writeSpec(t, ordersSpec(tempFile(t, "orders.csv", badCSV)))
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"good spec", []string{"validate", "--spec", good, "--addr", st.Addrs.Orchestrator}, ExitOK},
		{"bad rows", []string{"validate", "--spec", good, "--dry-run", "--addr", st.Addrs.Orchestrator}, ExitFailed},
		{"unreachable", []string{"validate", "--spec", good, "--addr", closedAddr(t)}, ExitUsage},
		{"usage", []string{"validate"}, ExitUsage},
		{"readiness usage", []string{"readiness", "--max-lag-rows", "-1", "job"}, ExitUsage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr %q", code, tc.code, stderr.String())
			}
			if tc.code == ExitUsage && strings.Count(stderr.String(), "\n") != 1 {
				t.Errorf("stderr is not one line: %q", stderr.String())
			}
		})
	}
}

func waitState(t *testing.T, jobs orchestratorv1.JobServiceClient, id string, want orchestratorv1.JobState) {
	t.Helper()
	waitUntil(t, "job "+id+" "+want.String(), func() bool {
		r, err := jobs.GetJob(context.Background(), &orchestratorv1.GetJobRequest{Id: id})
		if err != nil {
			t.Fatal(err)
		}
		if s := r.GetJob().GetState(); s == orchestratorv1.JobState_JOB_STATE_FAILED {
			t.Fatalf("job %s failed: %s", id, r.GetJob().GetError())
		}
		return r.GetJob().GetState() == want
	})
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
