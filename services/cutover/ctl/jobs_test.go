package ctl

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/cutover/internal/testenv"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/encoding/protojson"
)

// step is one cutoverctl call and what it must print. In args and wanted
// text, JOB, FIRST and SECOND stand for the scenario's job ids.
type step struct {
	name   string
	args   []string
	code   int
	stdout []string // each must appear
	absent []string // none may appear
	match  string   // a regexp stdout must match
	last   string   // the last line of stdout must hold it
	stderr string   // the one line on stderr starts with it; "" = no stderr
}

func (s step) run(t *testing.T, addr string, ids map[string]string) result {
	t.Helper()
	sub := func(v string) string {
		for k, id := range ids {
			v = strings.ReplaceAll(v, k, id)
		}
		return v
	}
	var args []string
	for _, a := range s.args {
		args = append(args, sub(a))
	}
	r := runCtl(t, append(args, "--addr", addr)...)
	r.want(t, s.code)
	for _, w := range s.stdout {
		if !strings.Contains(r.stdout, sub(w)) {
			t.Errorf("stdout lacks %q:\n%s", sub(w), r.stdout)
		}
	}
	for _, w := range s.absent {
		if strings.Contains(r.stdout, sub(w)) {
			t.Errorf("stdout holds %q:\n%s", sub(w), r.stdout)
		}
	}
	if s.match != "" && !regexp.MustCompile(sub(s.match)).MatchString(r.stdout) {
		t.Errorf("stdout does not match %q:\n%s", sub(s.match), r.stdout)
	}
	if s.last != "" {
		lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
		if l := lines[len(lines)-1]; !strings.Contains(l, sub(s.last)) {
			t.Errorf("last line %q does not hold %q; stdout:\n%s", l, sub(s.last), r.stdout)
		}
	}
	switch {
	case s.stderr == "" && r.stderr != "":
		t.Errorf("stderr: %s", r.stderr)
	case s.stderr != "" && (!strings.HasPrefix(r.stderr, sub(s.stderr)) || strings.Count(r.stderr, "\n") != 1):
		t.Errorf("stderr %q, want one line starting %q", r.stderr, sub(s.stderr))
	}
	return r
}

func runSteps(t *testing.T, addr string, ids map[string]string, steps []step) {
	t.Helper()
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) { s.run(t, addr, ids) })
	}
}

// twoTables writes the spec of a job loading two rows, ids from and
// from+1, into each of orders and items, next to rows they already hold.
func twoTables(t *testing.T, name string, from int) string {
	t.Helper()
	spec := ordersSpec(tempFile(t, "orders.csv", fmt.Sprintf("id,customer,amount,status,day,note\n%d,10,1.00,new,2023-01-05,a\n%d,11,2.00,paid,2023-01-06,b\n", from, from+1)))
	spec.Name = name
	spec.Target = &commonv1.TargetSpec{IfExists: commonv1.IfExists_IF_EXISTS_APPEND}
	spec.Tables = append(spec.Tables, &commonv1.TableSpec{
		Name: "items", TargetTable: "items",
		Source:  &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Csv{Csv: &commonv1.CsvSource{Path: tempFile(t, "items.csv", fmt.Sprintf("id,v\n%d,x\n%d,y\n", from, from+1))}}},
		Columns: []*commonv1.ColumnMapping{{Target: "id", Source: "id"}, {Target: "v", Source: "v"}},
	})
	return writeSpec(t, spec)
}

// TestJobCommands: an operator's day with cutoverctl. Two jobs run
// through (create --watch; create, then watch); a third is held back by a
// lock on items, so that it is running while it is listed, shown, watched,
// refused a resume and a delete, and cancelled; then it is resumed to the
// end, listed page by page, deleted, and every one of these calls is in
// the audit log.
func TestJobCommands(t *testing.T) {
	db := testenv.NewDB(t)
	db.Exec(ordersDDL, `CREATE TABLE items (id bigint PRIMARY KEY, v text)`)
	st := startStack(t, db)
	addr := st.Addrs.Orchestrator
	ids := map[string]string{}

	r := step{args: []string{"create", "--spec", twoTables(t, "first", 1), "--watch"}, code: ExitOK,
		stdout: []string{"table orders: partitions 0/1, ", "table orders: partitions 1/1, extracted 2, loaded 2, quarantined 0\n",
			"table items: partitions 1/1, extracted 2, loaded 2, quarantined 0\n"},
		match: `^created job \S+ \(first\)\n`, last: " job SUCCEEDED: partitions 2/2, extracted 4, loaded 4, quarantined 0"}.run(t, addr, ids)
	ids["FIRST"] = strings.Fields(r.stdout)[2]
	r = step{args: []string{"create", "--spec", twoTables(t, "second", 3), "--quiet"}, code: ExitOK, match: `^\S+\n$`}.run(t, addr, ids)
	ids["SECOND"] = strings.TrimSpace(r.stdout)
	step{args: []string{"watch", ids["SECOND"]}, code: ExitOK, stdout: []string{"table items: partitions 1/1, extracted 2, loaded 2"},
		last: " job SUCCEEDED: partitions 2/2, extracted 4, loaded 4"}.run(t, addr, ids)

	// Writes to items wait for this transaction: the third job runs until
	// it ends.
	ctx := context.Background()
	lock, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close(ctx)
	tx, err := lock.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `LOCK TABLE items IN SHARE MODE`); err != nil {
		t.Fatal(err)
	}
	r = step{args: []string{"create", "--spec", twoTables(t, "held", 5), "--quiet"}, code: ExitOK}.run(t, addr, ids)
	ids["JOB"] = strings.TrimSpace(r.stdout)
	watchDone := make(chan result, 1)
	go func() {
		var out, errb strings.Builder
		code := Run(context.Background(), []string{"watch", ids["JOB"], "--addr", addr}, &out, &errb)
		watchDone <- result{code, out.String(), errb.String()}
	}()

	runSteps(t, addr, ids, []step{
		{name: "status running", args: []string{"status", "JOB"}, code: ExitOK,
			stdout: []string{"job JOB (held): RUNNING\n", "  TABLE ", "PARTITIONS"}, match: `\n  items +0/1 `},
		{name: "status json", args: []string{"status", "JOB", "--json"}, code: ExitOK, match: `"table":\s*"items",\s*"partitions_total":\s*1\b`}, // protojson varies its spaces
		{name: "list running", args: []string{"list", "--state", "running"}, code: ExitOK,
			stdout: []string{"JOB  held", "RUNNING"}, absent: []string{"FIRST", "SECOND", "next page"}},
		{name: "list two states", args: []string{"list", "--state", "running,succeeded"}, code: ExitOK, stdout: []string{"JOB", "FIRST", "SECOND"}},
		{name: "list a page", args: []string{"list", "--state", "succeeded", "--page-size", "1"}, code: ExitOK,
			stdout: []string{"SECOND  second  SUCCEEDED  2/2"}, absent: []string{"FIRST", "JOB"}, last: "next page: --page-token "},
		{name: "list bad state", args: []string{"list", "--state", "runing"}, code: ExitUsage, stderr: `cutoverctl: --state: unknown state "runing"`},
		{name: "list bad token", args: []string{"list", "--page-token", "nope"}, code: ExitUsage, stderr: "cutoverctl: ListJobs: invalid argument: page_token: not a token this listing gave out\n"},
		{name: "resume refused", args: []string{"resume", "JOB"}, code: ExitFailed, stderr: "cutoverctl: ResumeJob refused: job state does not allow this: job JOB is running, only failed or cancelled jobs can be resumed\n"},
		{name: "delete refused", args: []string{"delete", "JOB"}, code: ExitFailed, stderr: "cutoverctl: DeleteJob refused: "},
		{name: "create refused", args: []string{"create", "--spec", writeSpec(t, ordersSpec(tempFile(t, "o.csv", "id,customer,amount,status,day,note\n9,1,1,new,2023-01-01,x\n")))},
			code: ExitFailed, stderr: "cutoverctl: CreateJob refused: "},
		{name: "watch to a deadline", args: []string{"watch", "JOB", "--timeout", "3s"}, code: ExitFailed,
			stdout: []string{" table items: partitions 0/1, "}, last: "job JOB is still RUNNING at the deadline (--timeout 3s)"},
		{name: "cancel", args: []string{"cancel", "JOB"}, code: ExitOK, stdout: []string{"cancelled JOB\n", "  job CANCELLED: partitions "}},
		{name: "cancel again", args: []string{"cancel", "JOB"}, code: ExitFailed, stderr: "cutoverctl: CancelJob refused: "},
		{name: "watch unknown", args: []string{"watch", unknownJob}, code: ExitUsage, stderr: "cutoverctl: WatchJob: "},
	})
	// The watch that ran meanwhile ends with the job: exit 1, as it was
	// cancelled; items never got a partition done.
	w := <-watchDone
	w.want(t, ExitFailed)
	lines := strings.Split(strings.TrimRight(w.stdout, "\n"), "\n")
	if !strings.Contains(w.stdout, " table orders: partitions ") || !strings.Contains(w.stdout, " table items: partitions 0/1, extracted ") ||
		!strings.Contains(lines[len(lines)-1], " job CANCELLED: partitions ") || strings.Contains(w.stdout, "items: partitions 1/1") || w.stderr != "" {
		t.Errorf("watch of the cancelled job:\n%s\nstderr: %s", w.stdout, w.stderr)
	}

	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	runSteps(t, addr, ids, []step{
		{name: "resume", args: []string{"resume", "JOB", "--watch"}, code: ExitOK,
			stdout: []string{"resumed JOB\n  job RUNNING: ", "table items: partitions 1/1, extracted 2, loaded 2, quarantined 0"},
			last:   " job SUCCEEDED: partitions 2/2, extracted 4, loaded 4, quarantined 0"},
		{name: "status succeeded", args: []string{"status", "JOB"}, code: ExitOK,
			stdout: []string{"job JOB (held): SUCCEEDED\n", "  partitions 2/2; extracted 4, loaded 4, quarantined 0"}, match: `\n  items +1/1 +2 +2 +0 `},
		{name: "watch ended", args: []string{"watch", "JOB"}, code: ExitOK, last: " job SUCCEEDED: partitions 2/2"},
		{name: "watch json", args: []string{"watch", "JOB", "--json"}, code: ExitOK, match: `^\{\s*"job":\s*\{\s*"id":\s*"JOB".*"state":\s*"[A-Z_]+_SUCCEEDED".*"tables":\s*\[\s*\{\s*"table":\s*"orders"`},
		{name: "list running none", args: []string{"list", "--state", "running"}, code: ExitOK, absent: []string{"JOB", "FIRST", "SECOND"}},
	})
	if n := db.Int(`SELECT count(DISTINCT id) FROM items`); n != 6 || db.Int(`SELECT count(*) FROM items`) != 6 {
		t.Errorf("items holds %d distinct ids, want 6 once each", n)
	}

	// Page by page, newest first: the three jobs once each, in order.
	var listed []string
	token := ""
	for page := 0; ; page++ {
		args := []string{"list", "--state", "succeeded", "--page-size", "2", "--json", "--addr", addr}
		if token != "" {
			args = append(args, "--page-token", token)
		}
		r := runCtl(t, args...)
		r.want(t, ExitOK)
		var res orchestratorv1.ListJobsResponse
		if err := protojson.Unmarshal([]byte(r.stdout), &res); err != nil {
			t.Fatalf("list --json: %v\n%s", err, r.stdout)
		}
		for _, j := range res.GetJobs() {
			listed = append(listed, j.GetId())
		}
		if token = res.GetNextPageToken(); token == "" || page > 3 {
			break
		}
	}
	if want := []string{ids["JOB"], ids["SECOND"], ids["FIRST"]}; strings.Join(listed, " ") != strings.Join(want, " ") {
		t.Errorf("pages of 2 listed %v, want %v", listed, want)
	}

	runSteps(t, addr, ids, []step{
		{name: "delete", args: []string{"delete", "JOB"}, code: ExitOK, stdout: []string{"deleted JOB\n"}},
		{name: "status deleted", args: []string{"status", "JOB"}, code: ExitUsage, stderr: "cutoverctl: WatchJob: "},
		{name: "audit", args: []string{"audit", "--job", "JOB"}, code: ExitOK,
			stdout: []string{"CreateJob", "CancelJob", "ResumeJob", "DeleteJob", "FailedPrecondition", "dev-admin"}, absent: []string{"next page"}},
	})

	// The audit log, a page of three at a time: every call above that
	// changed or was refused to change the job, newest first.
	var calls []string
	token = ""
	for page := 0; ; page++ {
		args := []string{"audit", "--job", ids["JOB"], "--page-size", "3", "--json", "--addr", addr}
		if token != "" {
			args = append(args, "--page-token", token)
		}
		r := runCtl(t, args...)
		r.want(t, ExitOK)
		var res orchestratorv1.ListAuditEventsResponse
		if err := protojson.Unmarshal([]byte(r.stdout), &res); err != nil {
			t.Fatalf("audit --json: %v\n%s", err, r.stdout)
		}
		if len(res.GetEvents()) > 3 {
			t.Fatalf("page of %d entries, asked for 3", len(res.GetEvents()))
		}
		for _, e := range res.GetEvents() {
			calls = append(calls, e.GetMethod()[strings.LastIndexByte(e.GetMethod(), '/')+1:]+" "+e.GetOutcome())
		}
		if token = res.GetNextPageToken(); token == "" || page > 5 {
			break
		}
	}
	want := []string{"DeleteJob OK", "ResumeJob OK", "CancelJob FailedPrecondition", "CancelJob OK",
		"DeleteJob FailedPrecondition", "ResumeJob FailedPrecondition", "CreateJob OK"}
	if strings.Join(calls, ", ") != strings.Join(want, ", ") {
		t.Errorf("audit pages:\n  %s\nwant\n  %s", strings.Join(calls, ", "), strings.Join(want, ", "))
	}
}

// TestJobCommandMistakes: mistakes in a command line are exit 2 with a
// line that names them, before any call (nothing listens at the address).
func TestJobCommandMistakes(t *testing.T) {
	addr := closedAddr(t)
	spec := tempFile(t, "spec.json", `{"name":"x"}`)
	runSteps(t, addr, nil, []step{
		{name: "create without spec", args: []string{"create"}, code: ExitUsage, stderr: "cutoverctl: create: --spec is required\n"},
		{name: "create with an argument", args: []string{"create", "--spec", spec, "extra"}, code: ExitUsage, stderr: `cutoverctl: create takes no arguments, got ["extra"]`},
		{name: "create quiet json", args: []string{"create", "--spec", spec, "--quiet", "--json"}, code: ExitUsage, stderr: "cutoverctl: --quiet does not go with --json or --watch\n"},
		{name: "create missing spec", args: []string{"create", "--spec", "/nonexistent/spec.json"}, code: ExitUsage, stderr: "cutoverctl: read spec: open /nonexistent/spec.json: "},
		{name: "watch without job", args: []string{"watch"}, code: ExitUsage, stderr: "cutoverctl: watch: want exactly one job id: cutoverctl watch JOB\n"},
		{name: "status two jobs", args: []string{"status", "a", "b"}, code: ExitUsage, stderr: "cutoverctl: status: want exactly one job id"},
		{name: "cancel without job", args: []string{"cancel"}, code: ExitUsage, stderr: "cutoverctl: cancel: want exactly one job id"},
		{name: "resume without job", args: []string{"resume", " "}, code: ExitUsage, stderr: "cutoverctl: resume: want exactly one job id"},
		{name: "watch has no --watch", args: []string{"watch", "j", "--watch"}, code: ExitUsage, stderr: "cutoverctl: flag provided but not defined: -watch\n"},
		{name: "list page too big", args: []string{"list", "--page-size", "501"}, code: ExitUsage, stderr: "cutoverctl: --page-size must be between 0 and 500, got 501\n"},
		{name: "list limit and page", args: []string{"list", "--limit", "5", "--page-token", "t"}, code: ExitUsage, stderr: "cutoverctl: --limit follows the pages; "},
		{name: "audit page too big", args: []string{"audit", "--page-size", "1001"}, code: ExitUsage, stderr: "cutoverctl: --page-size must be between 0 and 1000, got 1001\n"},
		{name: "unreachable", args: []string{"watch", "j"}, code: ExitUsage, stderr: "cutoverctl: cannot reach orchestrator at " + addr},
		{name: "unknown command", args: []string{"stats"}, code: ExitUsage, stderr: `cutoverctl: unknown command "stats" (want validate, create, list, status, watch,`},
	})
}
