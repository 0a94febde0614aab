// Package dashboard_test drives the gateway's dashboard page in headless
// Chromium (Debian's chromium, through chromedp) against the real embedded
// stack: jobs run, the page is read while they run and after they end, the
// page's buttons act on them, and screenshots of each step are saved.
package dashboard_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/cutover/internal/testenv"
	"github.com/cutover/cutover/services/cutover/stack"
	"github.com/cutover/cutover/services/kit/auth"
	"github.com/cutover/cutover/services/kit/pgtest"
	"github.com/cutover/cutover/services/kit/telemetry"
	"github.com/cutover/cutover/services/orchestrator/orchestrate"
	"github.com/jackc/pgx/v5"
)

var traceSink string

func TestMain(m *testing.M) {
	// Spans go to a file, as in a local run, so jobs carry trace ids.
	dir, _ := os.MkdirTemp("", "cutover-dashboard-test")
	tel, err := telemetry.Setup(context.Background(), "cutover-test", filepath.Join(dir, "traces.jsonl"))
	if err != nil {
		panic(err)
	}
	traceSink = tel.Sink
	code := pgtest.Run(m)
	_ = tel.Shutdown(context.Background())
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// chromiumPath finds Debian's chromium. Under CI=true its absence fails the
// test (CI must run it); elsewhere the test is skipped, naming what is
// missing.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "chromium"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	const msg = "Chromium is missing: no /usr/bin/chromium or chromium in PATH (Debian package chromium; deploy/local/ensure-deps.sh installs it)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + "; CI runs the dashboard test, so this is a failure")
	}
	t.Skip(msg)
	return ""
}

// ordersCSV has three rows that must be quarantined, each for another
// reason: a number that is not one, a status outside the rule's list and a
// negative amount.
const ordersCSV = `id,customer,amount,status
1,10,12.50,new
2,11,7,paid
3,12,abc,new
4,13,3.00,zzz
5,14,-1.00,paid
6,15,4.00,paid
`

const bigRows = 40000

// TestDashboard: what an operator sees and does on the dashboard.
func TestDashboard(t *testing.T) {
	chrome := chromiumPath(t)
	shots := newShots(t)

	src, db := testenv.NewDB(t), testenv.NewDB(t)
	src.Exec(`CREATE TABLE big (id bigint PRIMARY KEY, label text NOT NULL, amount numeric(12,2))`,
		fmt.Sprintf(`INSERT INTO big SELECT g, 'row ' || g, g / 100.0 FROM generate_series(1, %d) g`, bigRows))
	db.Exec(`CREATE TABLE big (id bigint PRIMARY KEY, label text NOT NULL, amount numeric(12,2))`,
		`CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL, amount numeric(12,2), status text NOT NULL)`)

	opToken, viewToken := auth.NewToken(), auth.NewToken()
	st, err := stack.Start(context.Background(), stack.Config{
		Addrs: stack.EphemeralAddrs(),
		Orchestrator: orchestrate.Config{ControlURL: db.URL, DefaultTarget: db.URL, Workers: 2, Poll: 20 * time.Millisecond,
			// A held batch renews no lease: a long one keeps the partition
			// with its first attempt while the test holds it.
			TraceSink: traceSink, BatchTimeout: 10 * time.Minute, Lease: 10 * time.Minute},
		Grace:     5 * time.Second,
		FileRoots: testenv.FileRoots(t),
		Tokens:    []string{auth.TokenLine("olga", auth.RoleOperator, opToken), auth.TokenLine("vic", auth.RoleViewer, viewToken)},
	})
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close stack: %v", err)
		}
	})
	conn, err := st.Conn()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	jobs := orchestratorv1.NewJobServiceClient(conn)
	ctx := context.Background()

	// Job A quarantines three rows and ends.
	ordersJob, err := jobs.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: &commonv1.JobSpec{
		Name: "orders from the shop", BatchSize: 2,
		Tables: []*commonv1.TableSpec{{
			Name: "orders", TargetTable: "orders",
			Source: &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Csv{Csv: &commonv1.CsvSource{Path: testenv.WriteFile(t, "orders.csv", ordersCSV)}}},
			Columns: []*commonv1.ColumnMapping{{Target: "id", Source: "id"}, {Target: "customer_id", Source: "customer"},
				{Target: "amount", Source: "amount"}, {Target: "status", Source: "status"}},
			Rules: []*commonv1.Rule{
				{Column: "status", Kind: &commonv1.Rule_OneOf{OneOf: &commonv1.OneOfRule{Values: []string{"new", "paid"}}}},
				{Column: "amount", Kind: &commonv1.Rule_Range{Range: &commonv1.RangeRule{Min: "0"}}},
			},
		}},
	}})
	if err != nil {
		t.Fatalf("CreateJob orders: %v", err)
	}
	a := testenv.WaitJob(t, jobs, ordersJob.Job.Id, 2*time.Minute)
	if a.State != orchestratorv1.JobState_JOB_STATE_SUCCEEDED || a.Counts.GetQuarantined() != 3 {
		t.Fatalf("orders job: %s, counts %+v, error %q", a.State, a.Counts, a.Error)
	}

	// Job B is held mid-run: an open transaction that has inserted a source
	// key into the target makes the COPY of the batch holding that key wait
	// on the unique index, and rolling it back lets the batch through. Keys
	// held in the first three of its four partitions, released one by one
	// while the page watches, give the rows/s plot its bursts; the last
	// key, held until the job is cancelled, keeps it running at 3 of 4.
	holds := map[int]func(){}
	for _, key := range []int{5000, 15000, 25000, bigRows} {
		holds[key] = holdKey(t, db.URL, key)
	}

	// The browser: one tab per person (sessionStorage, where the page keeps
	// the token, is per tab).
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		// The stack's CA is made in memory for this test.
		chromedp.IgnoreCertErrors, chromedp.WindowSize(1440, 1000))...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	if err := chromedp.Do(browser); err != nil { // starts the browser
		t.Fatalf("start chromium %s: %v", chrome, err)
	}
	base := st.GatewayURL()

	// Without a token, and with a wrong one, the page says so.
	anon := newTab(t, browser, "no-token", shots)
	anon.open(base + "/")
	anon.waitFor("the missing-token message", `!document.getElementById('auth-msg').hidden && document.getElementById('auth-msg').innerText.includes('No bearer token')`)
	if n := evalJS[int](anon, `document.querySelectorAll('#jobs tr').length`); n != 0 {
		t.Errorf("without a token the page lists %d jobs", n)
	}
	anon.shot("01-no-token", "no token: the red banner says there is no bearer token and how to get one; no job is listed")
	anon.login("not-a-token-anyone-issued")
	anon.waitFor("the refused-token message", `!document.getElementById('auth-msg').hidden && document.getElementById('auth-msg').innerText.includes('refused this token')`)
	if n := evalJS[int](anon, `document.querySelectorAll('#jobs tr').length`); n != 0 {
		t.Errorf("with a wrong token the page lists %d jobs", n)
	}
	anon.shot("02-wrong-token", "wrong token: the red banner says the gateway refused the token (unknown or revoked); no job is listed")
	anon.close()

	admin := newTab(t, browser, "admin", shots)
	admin.open(base + "/")
	admin.login(st.Token)
	admin.waitFor("the orders job listed as Succeeded", fmt.Sprintf(`(() => { const r = document.querySelector('#jobs tr[data-job=%q] .state'); return !!r && r.textContent === 'Succeeded'; })()`, a.Id))
	admin.waitFor("the admin role", `(document.getElementById('role') || {}).textContent === 'admin'`)

	bigJob, err := jobs.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: &commonv1.JobSpec{
		Name: "big table", BatchSize: 500,
		Tables: []*commonv1.TableSpec{{
			Name: "big", TargetTable: "big", Partitions: 4,
			Source:  &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Postgres{Postgres: &commonv1.PostgresSource{Dsn: src.URL, Schema: "public", Table: "big"}}},
			Columns: []*commonv1.ColumnMapping{{Target: "id", Source: "id"}, {Target: "label", Source: "label"}, {Target: "amount", Source: "amount"}},
		}},
	}})
	if err != nil {
		t.Fatalf("CreateJob big: %v", err)
	}
	id := bigJob.Job.Id
	sel := fmt.Sprintf(`#jobs tr[data-job=%q]`, id)
	admin.waitFor("the big job in the list", fmt.Sprintf(`!!document.querySelector(%q)`, sel))
	admin.click(sel + " a")

	// While it runs: released a partition at a time, up to 3 of 4.
	samples := fmt.Sprintf(`(samples.get(%q) || []).length`, id)
	admin.waitFor("two samples of the job's counts", samples+` >= 2`)
	for i, key := range []int{5000, 15000, 25000} {
		n := evalJS[int](admin, samples)
		holds[key]()
		waitJob(t, jobs, id, fmt.Sprintf("%d partitions done", i+1), func(j *orchestratorv1.Job) bool { return j.PartitionsDone >= int32(i+1) })
		admin.waitFor("two more samples", fmt.Sprintf(`%s >= %d`, samples, n+2))
	}
	running := waitJob(t, jobs, id, "3 of 4 partitions done, the fourth held", func(j *orchestratorv1.Job) bool {
		return j.State == orchestratorv1.JobState_JOB_STATE_RUNNING && j.PartitionsDone == 3 && j.PartitionsTotal == 4
	})
	admin.waitFor("Running with 3 of 4 partitions and a plot of at least 3 points",
		`document.getElementById('job-state').textContent === 'Running' && document.getElementById('job-parts').textContent.startsWith('3 of 4 partitions') &&
		 document.querySelectorAll('#rate-plot circle.pt').length >= 3 && !!document.querySelector('#tables .tbl[data-table="big"]')`)
	if peak := evalJS[float64](admin, fmt.Sprintf(`Math.max(...rates(%q).map(p => p.r))`, id)); peak <= 0 {
		t.Errorf("the plot's peak is %v rows/s while rows were loading", peak)
	}
	if pct := evalJS[string](admin, `document.getElementById('job-bar').dataset.pct`); pct != "75" {
		t.Errorf("the partitions bar is at %s%%, want 75%%", pct)
	}
	// Per table (WatchJob's table progress): rows read against the
	// source's row estimate, held under 100% while a partition remains.
	// The estimate must be near what the generator wrote.
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	ws, err := jobs.WatchJob(wctx, &orchestratorv1.WatchJobRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	first, err := ws.Recv()
	wcancel()
	if err != nil || len(first.GetTables()) != 1 {
		t.Fatalf("WatchJob: %v %v", first, err)
	}
	est, ex := first.Tables[0].GetEstimatedRows(), first.Tables[0].GetCounts().GetExtracted()
	if est < bigRows/2 || est > bigRows*2 {
		t.Errorf("the source's row estimate is %d for %d rows", est, bigRows)
	}
	wantPct := int(math.Round(100 * math.Min(float64(ex)/float64(est), 0.99)))
	admin.waitFor(fmt.Sprintf("the big table's bar at 3 of 4 partitions and %d%% of the estimate", wantPct), fmt.Sprintf(`(() => { const t = document.querySelector('#tables .tbl[data-table="big"]');
		return !!t && t.dataset.partitions === '3/4' && t.querySelector('.bar').dataset.pct === '%d' && t.innerText.includes('rows read (source estimate)'); })()`, wantPct))
	if ex := evalJS[int64](admin, `Number(document.querySelector('#tables .tbl[data-table="big"]').dataset.extracted)`); ex <= 0 || ex >= bigRows {
		t.Errorf("the big table's bar says %d rows read while the job runs, want some but not all %d", ex, bigRows)
	}
	admin.waitFor("the job list at 3 of 4 partitions", fmt.Sprintf(`(() => { const r = document.querySelector(%q); return !!r && r.querySelector('.state').textContent === 'Running' && r.innerText.includes('3 of 4'); })()`, sel))
	if tr := evalJS[string](admin, `document.getElementById('trace-id').textContent`); tr != running.TraceId || tr == "" {
		t.Errorf("trace id on the page %q, the job's %q", tr, running.TraceId)
	}
	if body := evalJS[string](admin, `document.body.innerText`); strings.Contains(body, "JOB_STATE_") {
		t.Errorf("the page shows raw enum names: %.400s", body[strings.Index(body, "JOB_STATE_"):])
	}
	if n := evalJS[int](admin, `document.querySelectorAll('#actions button[data-action="cancel"]').length`); n != 1 {
		t.Errorf("the admin sees %d cancel buttons on a running job, want 1", n)
	}
	admin.shot("03-running", "admin, big job running: state Running, partitions 3 of 4 (75%) for the job and for table big (green loaded, striped rest to do), rows/s plot with points, time per stage, trace id, a Cancel job button")

	// A viewer sees the job but no actions.
	viewer := newTab(t, browser, "viewer", shots)
	viewer.open(base + "/#job=" + id)
	viewer.login(viewToken)
	viewer.waitFor("the viewer role and the running job", `(document.getElementById('role') || {}).textContent === 'viewer' && document.getElementById('job-state').textContent === 'Running' && !!document.getElementById('read-only')`)
	if n := evalJS[int](viewer, `document.querySelectorAll('#actions button').length`); n != 0 {
		t.Errorf("a viewer is shown %d action buttons", n)
	}
	viewer.shot("04-viewer", "viewer, same running job: role viewer (read only), no action buttons, a line saying actions need operator or admin")
	viewer.close()

	// An operator cancels it from the page.
	op := newTab(t, browser, "operator", shots)
	op.open(base + "/#job=" + id)
	op.login(opToken)
	op.waitFor("the operator role and a Cancel button", `(document.getElementById('role') || {}).textContent === 'operator' && !!document.querySelector('#actions button[data-action="cancel"]')`)
	op.act("cancel")
	waitState(t, jobs, id, orchestratorv1.JobState_JOB_STATE_CANCELLED)
	op.waitFor("Cancelled at 3 of 4, with Resume and Roll back", `document.getElementById('job-state').textContent === 'Cancelled' &&
		document.getElementById('job-parts').textContent.startsWith('3 of 4') &&
		!!document.querySelector('#actions button[data-action="resume"]') && !!document.querySelector('#actions button[data-action="rollback"]') &&
		!document.querySelector('#actions button[data-action="cancel"]')`)
	op.shot("05-cancelled", "operator, after clicking Cancel job and confirming: state Cancelled, a green line saying so, Resume and Roll back buttons")

	// Resume from the page once the held batch may go through.
	holds[bigRows]()
	op.act("resume")
	done := waitState(t, jobs, id, orchestratorv1.JobState_JOB_STATE_SUCCEEDED)
	if done.Counts.GetLoaded() != bigRows || done.Counts.GetExtracted() != bigRows {
		t.Fatalf("resumed job counts %+v, want %d loaded", done.Counts, bigRows)
	}
	if n := db.Int(`SELECT count(*) FROM big`); n != bigRows {
		t.Fatalf("target has %d rows after the resume, want %d", n, bigRows)
	}
	admin.waitFor("Succeeded, balanced, every row accounted for, 4 stages", `document.getElementById('job-state').textContent === 'Succeeded' &&
		document.getElementById('c-balanced').textContent === 'balanced' &&
		document.getElementById('job-bar').dataset.pct === '100' && document.querySelectorAll('#stages .stage').length === 4 &&
		(() => { const t = document.querySelector('#tables .tbl[data-table="big"]'); return !!t && t.dataset.extracted === '`+fmt.Sprint(bigRows)+`' && t.dataset.accounted === t.dataset.extracted &&
			t.dataset.partitions === '4/4' && t.querySelector('.bar').dataset.pct === '100'; })()`)
	if n := evalJS[int](admin, `document.querySelectorAll('#rate-plot circle.pt').length`); n < 3 {
		t.Errorf("the plot has %d points after the job", n)
	}
	admin.shot("06-succeeded", "admin, big job after the resume: state Succeeded, partitions 4 of 4, the table bar full and green (every row accounted for), rows/s plot over the first run and the resumed one, time per stage for extractor, transformer, validator and loader")

	// The HTML report opens from the page (fetched with the token).
	report := admin.openReport(id)
	report.shot("07-report", "the job's HTML report, styled, opened in a new tab from the dashboard's Open HTML report button")
	report.close()

	// Roll it back from the page.
	op.waitFor("Succeeded with Roll back", `document.getElementById('job-state').textContent === 'Succeeded' && !!document.querySelector('#actions button[data-action="rollback"]')`)
	op.act("rollback")
	waitState(t, jobs, id, orchestratorv1.JobState_JOB_STATE_ROLLED_BACK)
	if n := db.Int(`SELECT count(*) FROM big`); n != 0 {
		t.Fatalf("target has %d rows after the rollback, want 0", n)
	}
	op.waitFor("Rolled back, with no action left", `document.getElementById('job-state').textContent === 'Rolled back' && document.querySelectorAll('#actions button').length === 0`)
	op.shot("08-rolled-back", "operator, after clicking Roll back and confirming: state Rolled back, the message that the target is as before the job, no action left")
	op.close()

	// The quarantine of the orders job, by table and rule, with reasons and
	// raw values; and lineage from a quarantined row.
	// The list by state.
	admin.setSelect("state-filter", "JOB_STATE_ROLLED_BACK")
	admin.waitFor("only the rolled back job listed", fmt.Sprintf(`(() => { const r = document.querySelectorAll('#jobs tr'); return r.length === 1 && r[0].dataset.job === %q && r[0].querySelector('.state').textContent === 'Rolled back'; })()`, id))
	admin.setSelect("state-filter", "")
	admin.waitFor("both jobs listed again", `document.querySelectorAll('#jobs tr').length === 2`)
	admin.click(fmt.Sprintf(`#jobs tr[data-job=%q] a`, a.Id))
	admin.waitFor("three quarantined rows", `document.getElementById('job-title').textContent === 'orders from the shop' && document.querySelectorAll('#q-rows tr').length === 3`)
	rows := evalJS[[]qrow](admin, `[...document.querySelectorAll('#q-rows tr')].map(r => ({table: r.dataset.table, rule: r.dataset.rule,
		reason: r.querySelector('.reason').textContent, raw: r.querySelector('.raw code').textContent}))`)
	var castRule string
	raws := map[string]bool{}
	for _, r := range rows {
		if r.Table != "orders" || r.Rule == "" || r.Reason == "" {
			t.Errorf("quarantine row without table, rule or reason: %+v", r)
		}
		raws[r.Raw] = true
		if strings.Contains(r.Raw, "abc") {
			castRule = r.Rule
		}
	}
	if castRule == "" {
		t.Fatalf("no quarantined row shows the raw value abc: %+v", rows)
	}
	if !evalJS[bool](admin, `document.getElementById('q-total').textContent.includes('3 rows')`) {
		t.Errorf("quarantine total: %q", evalJS[string](admin, `document.getElementById('q-total').textContent`))
	}
	admin.shot("09-quarantine", "admin, orders job (Succeeded, 6 read, 3 loaded, 3 quarantined): the table bar half green half red with rejects by rule, and the quarantine listing its 3 rows with source row, stage, rule, column, reason and raw value")
	admin.setSelect("q-table", "orders")
	admin.setSelect("q-rule", castRule)
	admin.waitFor("one row of rule "+castRule, fmt.Sprintf(`(() => { const r = [...document.querySelectorAll('#q-rows tr')]; return r.length === 1 && r[0].dataset.rule === %q && document.getElementById('q-total').textContent.includes('1 row'); })()`, castRule))
	admin.click(`#q-rows tr button`)
	admin.waitFor("the lineage of the quarantined row", `[...document.querySelectorAll('#lin-rows tr')].some(r => r.dataset.outcome === 'quarantined')`)
	admin.shot("10-quarantine-rule", "admin, orders job: the quarantine filtered to table orders and rule "+castRule+" shows the one row with raw value abc and its reason; the lineage lookup below, opened from that row, shows the source row's outcome quarantined")
	// A loaded row, looked up by its target key.
	admin.setSelect("lin-mode", "target")
	admin.do(chromedp.SetValue(chromedp.ID("lin-target-table"), "orders"), chromedp.SetValue(chromedp.ID("lin-target-key"), "id=6"))
	admin.click("#lin-go")
	admin.waitFor("the lineage of orders id=6", `[...document.querySelectorAll('#lin-rows tr')].some(r => r.dataset.outcome === 'loaded' && r.innerText.includes('line 7'))`)
	admin.close()
}

type qrow struct {
	Table  string `json:"table"`
	Rule   string `json:"rule"`
	Reason string `json:"reason"`
	Raw    string `json:"raw"`
}

// holdKey inserts key into the target's big table in a transaction left
// open, and returns what rolls it back (also run when the test ends).
func holdKey(t *testing.T, url string, key int) func() {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(context.Background(), `INSERT INTO big VALUES ($1, 'held', 0)`, key); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release := func() {
		once.Do(func() {
			if err := tx.Rollback(context.Background()); err != nil {
				t.Errorf("release key %d: %v", key, err)
			}
			conn.Close(context.Background())
		})
	}
	t.Cleanup(release)
	return release
}

// waitJob waits, through the API, until the job is as cond says.
func waitJob(t *testing.T, jobs orchestratorv1.JobServiceClient, id, what string, cond func(*orchestratorv1.Job) bool) *orchestratorv1.Job {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		j := getJob(t, jobs, id)
		if cond(j) {
			return j
		}
		if j.State != orchestratorv1.JobState_JOB_STATE_RUNNING && j.State != orchestratorv1.JobState_JOB_STATE_PENDING {
			t.Fatalf("job %s is %s, waiting for %s: %s", id, j.State, what, j.Error)
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s never had %s: %+v", id, what, j)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func getJob(t *testing.T, jobs orchestratorv1.JobServiceClient, id string) *orchestratorv1.Job {
	t.Helper()
	r, err := jobs.GetJob(context.Background(), &orchestratorv1.GetJobRequest{Id: id})
	if err != nil {
		t.Fatalf("GetJob %s: %v", id, err)
	}
	return r.Job
}

// waitState waits, through the API, for the effect of a click.
func waitState(t *testing.T, jobs orchestratorv1.JobServiceClient, id string, want orchestratorv1.JobState) *orchestratorv1.Job {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		j := getJob(t, jobs, id)
		if j.State == want {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s is %s, want %s (error %q)", id, j.State, want, j.Error)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// shots is where screenshots go: the test's temp dir, and also
// CUTOVER_TEST_SCREENSHOTS when set (to keep them after the test).
type shots struct {
	dirs []string
}

func newShots(t *testing.T) *shots {
	s := &shots{dirs: []string{t.TempDir()}}
	if d := os.Getenv("CUTOVER_TEST_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		s.dirs = append(s.dirs, d)
	}
	return s
}

// tab is one browser tab, one person.
type tab struct {
	t      *testing.T
	ctx    context.Context
	cancel context.CancelFunc
	name   string
	shots  *shots
	wg     sync.WaitGroup
}

func newTab(t *testing.T, parent context.Context, name string, s *shots, opts ...chromedp.ContextOption) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(parent, opts...)
	b := &tab{t: t, ctx: ctx, cancel: cancel, name: name, shots: s}
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open tab %s: %v", name, err)
	}
	// The page's exceptions and console errors go to the test log (not the
	// browser's lines for refused requests and the missing favicon: the
	// test makes some on purpose).
	msgs := chromedp.Console(ctx)
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.IsException() || (m.Type == "error" && !strings.Contains(m.String(), "Failed to load resource")) {
				t.Logf("%s tab console: %s", name, m)
			}
		}
	}()
	t.Cleanup(b.close)
	return b
}

func (b *tab) close() {
	b.cancel()
	b.wg.Wait()
}

// front brings the tab to the front, as a person looks at one tab at a
// time (the page polls less often in a hidden tab).
func (b *tab) front() {
	b.t.Helper()
	if _, err := chromedp.Call(b.ctx, page.BringToFront, cdp.Empty{}); err != nil {
		b.t.Fatalf("%s tab: bring to front: %v", b.name, err)
	}
}

func (b *tab) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	b.front()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.fail("browser action: %v", err)
	}
}

func (b *tab) open(url string) { b.t.Helper(); b.do(chromedp.Navigate(url)) }

// click clicks what css selects, again if the page redrew it between
// finding and clicking (the page refreshes on its own).
func (b *tab) click(css string) {
	b.t.Helper()
	b.front()
	var err error
	for range 5 {
		ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
		err = chromedp.Do(ctx, chromedp.Click(chromedp.CSS(css)))
		cancel()
		if err == nil || !strings.Contains(err.Error(), "Could not find node") {
			break
		}
	}
	if err != nil {
		b.fail("click %s: %v", css, err)
	}
}

// login types the token into the page's token field and presses Use.
func (b *tab) login(token string) {
	b.t.Helper()
	b.do(chromedp.Evaluate[chromedp.Void](`document.getElementById('token').value = ''`),
		chromedp.SendKeys(chromedp.ID("token"), token), chromedp.Click(chromedp.ID("use-token")))
}

// setSelect chooses a value in a <select> as a person would (a change
// event follows).
func (b *tab) setSelect(id, value string) {
	b.t.Helper()
	b.waitFor("option "+value+" in #"+id, fmt.Sprintf(`[...document.getElementById(%q).options].some(o => o.value === %q)`, id, value))
	b.do(chromedp.SetValue(chromedp.ID(id), value),
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.getElementById(%q).dispatchEvent(new Event('change'))`, id)))
}

// act clicks an action button, then its "Really …?" confirmation.
func (b *tab) act(action string) {
	b.t.Helper()
	btn := fmt.Sprintf(`#actions button[data-action=%q]`, action)
	b.click(btn)
	b.waitFor("the confirmation of "+action, fmt.Sprintf(`(document.querySelector(%q) || {}).className === 'confirm'`, btn))
	b.click(btn)
	b.waitFor("the outcome of "+action, `document.getElementById('action-msg').className !== ''`)
	if cls := evalJS[string](b, `document.getElementById('action-msg').className`); cls != "good" {
		b.fail("%s: %s", action, evalJS[string](b, `document.getElementById('action-msg').textContent`))
	}
}

// openReport clicks "Open HTML report" and returns the new tab.
func (b *tab) openReport(id string) *tab {
	b.t.Helper()
	ch := chromedp.WaitNewTarget(b.ctx, func(i *target.Info) bool { return strings.HasPrefix(i.URL, "blob:") })
	b.click("#open-report")
	var tid target.ID
	select {
	case tid = <-ch:
	case <-time.After(time.Minute):
		b.fail("no report tab opened")
	}
	r := newTab(b.t, b.ctx, "report", b.shots, chromedp.WithTargetID(tid))
	r.waitFor("the report of "+id, fmt.Sprintf(`document.body && document.body.innerText.includes(%q) && document.body.innerText.includes('big')`, id))
	// Styled: the blob: page inherits the dashboard's policy, which allows
	// the report's style sheet.
	if bg := evalJS[string](r, `getComputedStyle(document.querySelector('th')).backgroundColor`); bg != "rgb(246, 248, 250)" {
		r.fail("the report opened from the dashboard is not styled: th background %q", bg)
	}
	return r
}

// waitFor polls a JavaScript condition in the page until it holds. The
// page's Content-Security-Policy forbids eval, so chromedp.Poll (which
// builds a Function in the page) cannot be used; DevTools evaluation is
// not subject to it.
func (b *tab) waitFor(what, cond string) {
	b.t.Helper()
	b.front()
	deadline := time.Now().Add(2 * time.Minute)
	var last error
	for time.Now().Before(deadline) {
		ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](cond))
		if err == nil && ok {
			return
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	b.fail("waiting for %s: still false (last error %v)", what, last)
}

func evalJS[T any](b *tab, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.fail("evaluate %.80s: %v", expr, err)
	}
	return v
}

// shot saves a full-page screenshot and logs where, with what it shows.
func (b *tab) shot(name, what string) {
	b.t.Helper()
	b.front()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	for i, d := range b.shots.dirs {
		p := filepath.Join(d, name+".png")
		if err := os.WriteFile(p, png, 0o644); err != nil {
			b.t.Errorf("save screenshot: %v", err)
		} else if i == 0 {
			b.t.Logf("screenshot %s: %s", p, what)
		}
	}
}

// fail ends the test with what the page says, and a screenshot of it.
func (b *tab) fail(format string, args ...any) {
	b.t.Helper()
	msg := fmt.Sprintf(format, args...)
	text, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText.slice(0, 3000) : ''`))
	if err != nil && !errors.Is(err, context.Canceled) {
		text = "(page unreadable: " + err.Error() + ")"
	}
	b.shot("failed-"+b.name, "the "+b.name+" tab when the test failed")
	b.t.Fatalf("%s tab: %s\npage text:\n%s", b.name, msg, text)
}
