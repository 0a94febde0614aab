package stack_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/cutover/demodata"
	"github.com/cutover/cutover/services/cutover/internal/testenv"
	"github.com/cutover/cutover/services/cutover/runjob"
	"github.com/cutover/cutover/services/kit/mysqltest"
	"github.com/go-sql-driver/mysql"
)

// mergeDir is examples/merge, from this package's directory.
var mergeDir = filepath.Join("..", "..", "..", "examples", "merge")

// The outcome examples/merge/expected.md writes down; the test also checks
// that the generator still plants exactly this (TestMergeDemoExpectation).
var mergeWant = struct {
	tables     map[string][5]int64 // extracted, loaded, quarantined, filtered, merged_away
	quarantine []string            // table|source_ref|rule|column
	filtered   map[string]map[string]int64
	mergedBy   map[string]int64
	filled     int64
	collisions []string
	unresolved map[string]int64 // target table → references to no record
	rows       map[string]int64
	bySystem   map[string]string // target table → "pos-a n, shop-b m"
	totals     string
	lineage    struct{ phone, survivorRef, mergedRef, row string }
	lineageOrd int64
}{
	tables: map[string][5]int64{
		"customers_a": {300, 282, 2, 3, 13},
		"customers_b": {200, 164, 1, 2, 33},
		"orders_a":    {1500, 1486, 2, 12, 0},
		"orders_b":    {1200, 1199, 1, 0, 0},
		"items_a":     {3737, 3735, 2, 0, 0},
		"items_b":     {3031, 3030, 1, 0, 0},
	},
	quarantine: []string{
		"customers_a|line 84|clean|phone",
		"customers_a|line 180|clean|level",
		"customers_b|row 153|clean|email",
		"orders_a|id=7|clean|ordered_at",
		"orders_a|id=530|" + demodata.RuleUnresolvedRef + "|customer_id",
		"orders_b|line 8|cast|total",
		"items_a|id=1644|range|qty",
		"items_a|id=2000|" + demodata.RuleUnresolvedRef + "|order_id",
		"items_b|line 471 item 3|range|qty",
	},
	filtered: map[string]map[string]int64{
		"customers_a": {demodata.ReasonTestAccount: 3},
		"customers_b": {demodata.ReasonTestAccount: 2},
		"orders_a":    {demodata.ReasonVoided: 12},
	},
	mergedBy:   map[string]int64{"phone": 28, "email": 18},
	filled:     61,
	collisions: []string{"100674", "100783", "100792", "100916", "100957"},
	unresolved: map[string]int64{"orders": 1, "order_items": 1},
	rows:       map[string]int64{"customers": 446, "orders": 2685, "order_items": 6765},
	bySystem: map[string]string{
		"customers":   "pos-a 282, shop-b 164",
		"orders":      "pos-a 1486, shop-b 1199",
		"order_items": "pos-a 3735, shop-b 3030",
	},
	totals: "pos-a 178211.30, shop-b 147009.00",
	lineage: struct{ phone, survivorRef, mergedRef, row string }{
		"+8613896522600", "row 182", "line 53", "李宇轩|li.yuxuan2353@qq.com|regular|北京市|海淀区|shop-b",
	},
	lineageOrd: 12,
}

// TestMergeDemoExpectation: the figures above are the generator's, so the
// test and expected.md cannot drift apart.
func TestMergeDemoExpectation(t *testing.T) {
	e := demodata.Generate().Expect()
	for _, tc := range e.Tables {
		if got := [5]int64{tc.Extracted, tc.Loaded, tc.Quarantined, tc.Filtered, tc.MergedAway}; got != mergeWant.tables[tc.Name] {
			t.Errorf("%s: generator plants %v, test wants %v", tc.Name, got, mergeWant.tables[tc.Name])
		}
	}
	var q []string
	for _, r := range e.Quarantine {
		q = append(q, r.Table+"|"+r.Ref+"|"+r.Rule+"|"+r.Column)
	}
	if !slices.Equal(q, mergeWant.quarantine) {
		t.Errorf("quarantine: generator %q, test %q", q, mergeWant.quarantine)
	}
	if e.MergedByKey["phone"] != mergeWant.mergedBy["phone"] || e.MergedByKey["email"] != mergeWant.mergedBy["email"] || e.FilledFields != mergeWant.filled {
		t.Errorf("merges: generator %v filled %d", e.MergedByKey, e.FilledFields)
	}
	if !slices.Equal(e.Collisions, mergeWant.collisions) {
		t.Errorf("collisions: generator %v", e.Collisions)
	}
	for table, n := range mergeWant.rows {
		by := fmt.Sprintf("pos-a %d, shop-b %d", e.BySystem[table][demodata.SystemA], e.BySystem[table][demodata.SystemB])
		if e.TargetRows[table] != n || by != mergeWant.bySystem[table] {
			t.Errorf("%s: generator %d (%s)", table, e.TargetRows[table], by)
		}
	}
	if got := fmt.Sprintf("pos-a %s, shop-b %s", e.OrderTotals[demodata.SystemA], e.OrderTotals[demodata.SystemB]); got != mergeWant.totals {
		t.Errorf("totals: generator %s", got)
	}
	l := e.Lineage
	row := strings.Join([]string{l.Name, l.Email, l.Level, l.City, l.District, l.SourceSystem}, "|")
	if l.Phone != mergeWant.lineage.phone || l.Survivor.Ref != mergeWant.lineage.survivorRef || l.Merged.Ref != mergeWant.lineage.mergedRef ||
		row != mergeWant.lineage.row || l.Orders != mergeWant.lineageOrd {
		t.Errorf("lineage example: generator %s %s %s %s %d orders", l.Phone, l.Survivor.Ref, l.Merged.Ref, row, l.Orders)
	}
}

// loadSystemA creates pos-a's MariaDB database from system_a.sql.
func loadSystemA(t *testing.T) string {
	t.Helper()
	dsn := mysqltest.NewDatabase(t)
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MultiStatements = true
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	script, err := os.ReadFile(filepath.Join(mergeDir, demodata.SystemASQL))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(string(script)); err != nil {
		t.Fatalf("load %s: %v", demodata.SystemASQL, err)
	}
	return dsn
}

// mergeSpec reads examples/merge/spec.yaml as `cutover run` does, with the
// file paths made absolute and every table in parts partitions.
func mergeSpec(t *testing.T, mysqlDSN string, parts int32) *commonv1.JobSpec {
	t.Helper()
	t.Setenv("CUTOVER_SOURCE_A_DSN", mysqlDSN)
	// LoadSpec resolves the file paths against the spec's directory; an
	// absolute spec path makes them absolute.
	abs, err := filepath.Abs(filepath.Join(mergeDir, "spec.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	spec, err := runjob.LoadSpec(abs)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range spec.GetTables() {
		tb.Partitions = parts
	}
	return spec
}

// TestMergeDemo runs examples/merge through the embedded stack, once with
// one partition per table and once with eight, and checks the outcome of
// expected.md exactly; both targets must then be identical row for row,
// and lineage must explain a merged customer and a quarantined order.
func TestMergeDemo(t *testing.T) {
	mysqlDSN := loadSystemA(t)
	targetSQL, err := os.ReadFile(filepath.Join(mergeDir, "target.sql"))
	if err != nil {
		t.Fatal(err)
	}
	type run struct {
		db   *testenv.DB
		jobs orchestratorv1.JobServiceClient
		job  *orchestratorv1.Job
	}
	var runs []run
	for _, parts := range []int32{1, 8} {
		db := testenv.NewDB(t)
		db.Exec(string(targetSQL))
		_, jobs := startStack(t, db)
		created, err := jobs.CreateJob(context.Background(), &orchestratorv1.CreateJobRequest{Spec: mergeSpec(t, mysqlDSN, parts)})
		if err != nil {
			t.Fatalf("partitions %d: CreateJob: %v", parts, err)
		}
		job := testenv.WaitJob(t, jobs, created.Job.Id, 5*time.Minute)
		if job.State != orchestratorv1.JobState_JOB_STATE_SUCCEEDED {
			t.Fatalf("partitions %d: job %s: %s", parts, job.State, job.Error)
		}
		// Not a subtest: testenv.DB fails the test it was made for.
		checkMergeOutcome(t, fmt.Sprintf("partitions %d: ", parts), db, jobs, job)
		runs = append(runs, run{db, jobs, job})
	}

	// Same input, other partitioning, fresh target: the same bytes.
	for _, table := range []string{"customers", "orders", "order_items"} {
		q := fmt.Sprintf(`SELECT md5(string_agg(t::text, E'\n' ORDER BY id)) FROM shop_v2.%s t`, table)
		a, b := runs[0].db.Strings(q), runs[1].db.Strings(q)
		if a[0] != b[0] {
			t.Errorf("shop_v2.%s differs between the two runs: md5 %s vs %s", table, a[0], b[0])
		}
	}

	// Lineage, on the second run (not a subtest: see above).
	{
		r := runs[1]
		ctx := context.Background()
		lw := mergeWant.lineage
		id := r.db.Int(`SELECT id FROM shop_v2.customers WHERE phone = $1`, lw.phone)
		key := fmt.Sprintf("id=%d", id)
		resp, err := r.jobs.GetLineage(ctx, &orchestratorv1.GetLineageRequest{Id: r.job.Id, TargetTable: "customers", TargetKey: key})
		if err != nil {
			t.Fatalf("GetLineage(customers %s): %v", key, err)
		}
		if resp.GetJobId() != r.job.Id || resp.GetSpecHash() == "" {
			t.Errorf("lineage answer: job %q spec hash %q", resp.GetJobId(), resp.GetSpecHash())
		}
		got := map[string]*commonv1.LineageRecord{}
		for _, rec := range resp.GetRecords() {
			got[rec.GetSystem()+" "+rec.GetSourceRef()] = rec
		}
		if len(resp.GetRecords()) != 2 {
			t.Fatalf("lineage of customers %s: %d records, want the shop-b survivor and the pos-a member: %v", key, len(resp.GetRecords()), resp.GetRecords())
		}
		surv, merged := got[demodata.SystemB+" "+lw.survivorRef], got[demodata.SystemA+" "+lw.mergedRef]
		if surv == nil || surv.GetOutcome() != "loaded" || surv.GetTable() != "customers_b" || surv.GetTargetTable() != "customers" || surv.GetTargetKey() != key {
			t.Errorf("survivor record: %v", surv)
		}
		if merged == nil || merged.GetOutcome() != "merged" || merged.GetTable() != "customers_a" || merged.GetTargetKey() != key ||
			!strings.Contains(merged.GetMergedInto(), lw.survivorRef) {
			t.Errorf("merged record: %v", merged)
		}

		// A quarantined and a filtered source row. Source refs are unique
		// per table spec only (orders_a and items_a both have id=N), so
		// the question names the table spec.
		e := demodata.Generate().Expect()
		ql := e.QuarantineLineage
		var voided string
		for _, f := range e.Filters {
			if f.Table == "orders_a" && f.Reason == demodata.ReasonVoided {
				voided = f.Refs[0]
			}
		}
		for _, tc := range []struct {
			system, ref, table, outcome, rule, reasonHas string
		}{
			{e.QuarantineSystem, ql.Ref, ql.Table, "quarantined", ql.Rule, ql.Column},
			{demodata.SystemA, voided, "orders_a", "filtered", "filter", demodata.ReasonVoided},
		} {
			resp, err := r.jobs.GetLineage(ctx, &orchestratorv1.GetLineageRequest{Id: r.job.Id, System: tc.system, SourceRef: tc.ref, Table: tc.table})
			if err != nil {
				t.Fatalf("GetLineage(%s %s): %v", tc.system, tc.ref, err)
			}
			if len(resp.GetRecords()) != 1 {
				t.Fatalf("lineage of %s %s (%s): %d records, want 1: %v", tc.system, tc.ref, tc.table, len(resp.GetRecords()), resp.GetRecords())
			}
			rec := resp.GetRecords()[0]
			if rec == nil || rec.GetOutcome() != tc.outcome || rec.GetRule() != tc.rule || !strings.Contains(rec.GetReason(), tc.reasonHas) || rec.GetTargetKey() != "" {
				t.Errorf("lineage of %s %s (%s): %v; want outcome %s, rule %s, a reason naming %q", tc.system, tc.ref, tc.table, rec, tc.outcome, tc.rule, tc.reasonHas)
			}
		}
	}
}

// checkMergeOutcome compares one finished run with expected.md.
func checkMergeOutcome(t *testing.T, label string, db *testenv.DB, jobs orchestratorv1.JobServiceClient, job *orchestratorv1.Job) {
	t.Helper()
	w := mergeWant
	errorf := func(format string, a ...any) { t.Helper(); t.Errorf(label+format, a...) }
	rep, err := jobs.GetJobReport(context.Background(), &orchestratorv1.GetJobReportRequest{Id: job.Id})
	if err != nil {
		t.Fatal(err)
	}
	r := rep.GetReport()
	if !r.GetBalanced() {
		errorf("report not balanced: %v", r.GetTotals())
	}
	var total [5]int64
	seen := map[string]bool{}
	for _, tr := range r.GetTables() {
		c := tr.GetCounts()
		got := [5]int64{c.GetExtracted(), c.GetLoaded(), c.GetQuarantined(), c.GetFiltered(), c.GetMergedAway()}
		want, ok := w.tables[tr.GetName()]
		if !ok || got != want {
			errorf("%s: extracted, loaded, quarantined, filtered, merged_away = %v, want %v", tr.GetName(), got, want)
		}
		seen[tr.GetName()] = true
		for k := range total {
			total[k] += want[k]
		}
		filtered := map[string]int64{}
		for _, f := range tr.GetFiltered() {
			filtered[f.GetReason()] = f.GetCount()
		}
		if fmt.Sprint(filtered) != fmt.Sprint(w.filtered[tr.GetName()]) && (len(filtered) > 0 || len(w.filtered[tr.GetName()]) > 0) {
			errorf("%s: filtered by reason %v, want %v", tr.GetName(), filtered, w.filtered[tr.GetName()])
		}
	}
	if len(seen) != len(w.tables) {
		errorf("report has tables %v, want %d", seen, len(w.tables))
	}
	c := job.GetCounts()
	if got := [5]int64{c.GetExtracted(), c.GetLoaded(), c.GetQuarantined(), c.GetFiltered(), c.GetMergedAway()}; got != total {
		errorf("job counts %v, want %v", got, total)
	}

	merges := map[string]*orchestratorv1.MergeReport{}
	for _, m := range r.GetMerges() {
		// The report may name the table with its schema.
		merges[strings.TrimPrefix(m.GetTargetTable(), "shop_v2.")] = m
	}
	if m := merges["customers"]; m == nil {
		errorf("no merge report for customers: %v", r.GetMerges())
	} else {
		by := map[string]int64{}
		for _, k := range m.GetByKey() {
			by[k.GetKey()] = k.GetRows()
		}
		if m.GetMergedAway() != w.mergedBy["phone"]+w.mergedBy["email"] || fmt.Sprint(by) != fmt.Sprint(w.mergedBy) || m.GetFilledFields() != w.filled {
			errorf("customers merged away %d by key %v, filled %d; want %v, filled %d", m.GetMergedAway(), by, m.GetFilledFields(), w.mergedBy, w.filled)
		}
	}
	for table, n := range w.unresolved {
		if m := merges[table]; m.GetUnresolvedRefs() != n {
			errorf("%s: unresolved refs %d, want %d", table, m.GetUnresolvedRefs(), n)
		}
	}
	if m := merges["orders"]; len(m.GetCollisions()) != 1 {
		errorf("orders collisions: %v", m.GetCollisions())
	} else if cc := m.GetCollisions()[0]; cc.GetColumn() != "order_number" || cc.GetRule() != commonv1.CollisionRule_COLLISION_RULE_PREFIX_SYSTEM ||
		cc.GetKeys() != int64(len(w.collisions)) || cc.GetRows() != 2*int64(len(w.collisions)) {
		errorf("orders collision %v, want order_number PREFIX_SYSTEM on %d keys, %d rows", cc, len(w.collisions), 2*len(w.collisions))
	}

	q := db.Strings(`SELECT table_name || '|' || source_ref || '|' || rule || '|' || column_name FROM cutover.quarantine WHERE job_id = $1`, job.Id)
	slices.Sort(q)
	wq := slices.Clone(w.quarantine)
	slices.Sort(wq)
	if !slices.Equal(q, wq) {
		errorf("quarantine:\n got %q\nwant %q", q, wq)
	}
	if n := db.Int(`SELECT count(*) FROM cutover.quarantine WHERE job_id = $1 AND (reason = '' OR raw = '')`, job.Id); n != 0 {
		errorf("%d quarantined rows without reason or raw value", n)
	}

	for table, n := range w.rows {
		if got := db.Int(`SELECT count(*) FROM shop_v2.` + table); got != n {
			errorf("shop_v2.%s has %d rows, want %d", table, got, n)
		}
		by := strings.Join(db.Strings(`SELECT source_system || ' ' || count(*) FROM shop_v2.`+table+` GROUP BY source_system ORDER BY 1`), ", ")
		if by != w.bySystem[table] {
			errorf("shop_v2.%s by source_system: %s, want %s", table, by, w.bySystem[table])
		}
	}
	if got := strings.Join(db.Strings(`SELECT source_system || ' ' || sum(total) FROM shop_v2.orders GROUP BY source_system ORDER BY 1`), ", "); got != w.totals {
		errorf("order totals: %s, want %s", got, w.totals)
	}
	var prefixed []string
	for _, no := range w.collisions {
		prefixed = append(prefixed, demodata.SystemA+"-"+no, demodata.SystemB+"-"+no)
	}
	slices.Sort(prefixed)
	if got := db.Strings(`SELECT order_number FROM shop_v2.orders WHERE order_number LIKE '%-%' ORDER BY 1`); !slices.Equal(got, prefixed) {
		errorf("prefixed order numbers %v, want %v", got, prefixed)
	}
	for _, col := range []string{"phone", "email"} {
		if n := db.Int(`SELECT count(*) FROM (SELECT ` + col + ` FROM shop_v2.customers WHERE ` + col + ` IS NOT NULL GROUP BY 1 HAVING count(*) > 1) d`); n != 0 {
			errorf("%d %s values are on more than one customer after dedupe", n, col)
		}
	}
	lw := w.lineage
	row := db.Strings(`SELECT concat_ws('|', name, email, level, city, district, source_system) FROM shop_v2.customers WHERE phone = $1`, lw.phone)
	if len(row) != 1 || row[0] != lw.row {
		errorf("merged customer %s: %q, want %q", lw.phone, row, lw.row)
	}
	if n := db.Int(`SELECT count(*) FROM shop_v2.orders o JOIN shop_v2.customers c ON c.id = o.customer_id WHERE c.phone = $1`, lw.phone); n != w.lineageOrd {
		errorf("merged customer %s has %d orders, want %d from both systems", lw.phone, n, w.lineageOrd)
	}
}
