package stack_test

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/cutover/internal/testenv"
	"github.com/cutover/cutover/services/kit/mysqltest"
	gproto "google.golang.org/protobuf/proto"
)

// plantedSale is one generated source row and the errors the wrong
// mapping plants in it.
type plantedSale struct {
	id                      int
	ts                      string // "" = NULL
	amount, note            string
	status                  string
	qty                     int
	fen                     int64
	shifted, digit, trimmed bool
}

func plantedSales() []plantedSale {
	var out []plantedSale
	for id := 1; id <= 60; id++ {
		s := plantedSale{id: id, status: []string{"new", "paid", "void"}[id%3], qty: id % 7, fen: int64(id) * 1234,
			amount: fmt.Sprintf("%d.%d0", id*3, id%10), note: fmt.Sprintf("n%d", id)}
		if id%5 == 0 { // a time: read in the wrong zone, it moves by an hour
			s.ts, s.shifted = time.Date(2024, 1, 15, 10, id, 0, 0, time.UTC).Format("2006-01-02 15:04:05"), true
		}
		if id%3 == 0 { // a second decimal digit: rounding down to one drops it
			s.amount, s.digit = fmt.Sprintf("%d.%02d", id*3, 10*(id%9)+1+id%8), true
		}
		if id%4 == 0 { // spaces around: trim removes them
			s.note, s.trimmed = "  "+s.note+" ", true
		}
		out = append(out, s)
	}
	return out
}

// TestIndependentReconcileFindsWhatAReplayCannot (issue 12, item 8): a
// MariaDB table is loaded through a deliberately wrong mapping: its
// DATETIMEs read as Europe/Berlin although they are UTC (an hour off in
// January), amounts rounded down to one decimal (a digit lost), notes trimmed, and
// amounts in fen loaded as if they were yuan. The replay level re-runs the
// same mapping and finds nothing; the independent level, comparing the
// target with the intended mapping (rename and cast only), finds every
// planted key, and the declared total with its unit factor catches the
// fen/yuan error in every status group while the correct total passes.
// Expected keys come from the generator.
func TestIndependentReconcileFindsWhatAReplayCannot(t *testing.T) {
	mdsn := mysqltest.NewDatabase(t)
	my, err := sql.Open("mysql", mdsn)
	if err != nil {
		t.Fatal(err)
	}
	defer my.Close()
	if _, err := my.Exec(`CREATE TABLE sales (id int PRIMARY KEY, ts datetime NULL, amount decimal(12,2), note varchar(40), status varchar(10), qty int, amount_fen bigint)`); err != nil {
		t.Fatal(err)
	}
	rows := plantedSales()
	want := map[string]bool{}
	for _, s := range rows {
		var ts any
		if s.ts != "" {
			ts = s.ts
		}
		if _, err := my.Exec(`INSERT INTO sales VALUES (?, ?, ?, ?, ?, ?, ?)`, s.id, ts, s.amount, s.note, s.status, s.qty, s.fen); err != nil {
			t.Fatal(err)
		}
		if s.shifted || s.digit || s.trimmed {
			want[fmt.Sprintf("id=%d", s.id)] = true
		}
	}
	db := testenv.NewDB(t)
	db.Exec(`CREATE TABLE sales (id int PRIMARY KEY, ts timestamptz, amount numeric(12,2), note text, status text, qty int, total numeric(14,2))`)
	st, jobs := startStack(t, db)

	src := &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Mysql{Mysql: &commonv1.MysqlSource{Dsn: mdsn, Table: "sales"}}}
	aggs := []*commonv1.Aggregate{
		{Name: "qty by status", GroupBy: []string{"status"}, Sum: []string{"qty"}},
		{Name: "total by status", GroupBy: []string{"status"}, Sum: []string{"total"}, Factor: "0.01"},
	}
	intended := &commonv1.JobSpec{Name: "sales", Tables: []*commonv1.TableSpec{{Name: "sales", TargetTable: "sales", Source: src, Aggregates: aggs,
		Columns: []*commonv1.ColumnMapping{{Source: "id", Target: "id"}, {Source: "ts", Target: "ts"}, {Source: "amount", Target: "amount"},
			{Source: "note", Target: "note"}, {Source: "status", Target: "status"}, {Source: "qty", Target: "qty"}, {Source: "amount_fen", Target: "total"}}}}}
	wrong := gproto.CloneOf(intended)
	wrong.TimeZone = "Europe/Berlin"
	wrong.Tables[0].Columns[2].Clean = []*commonv1.CleanStep{{Function: "round", Args: map[string]string{"places": "1", "mode": "down"}}}
	wrong.Tables[0].Columns[3].Clean = []*commonv1.CleanStep{{Function: "trim"}}
	job := runJob(t, jobs, wrong)

	// The replay runs the wrong mapping again: its rows match.
	replay := reconcileAt(t, st, job.Id, 1000, commonv1.ReconcileLevel_RECONCILE_LEVEL_REPLAY)
	if rc := replay.GetTables()[0].GetRows(); !rc.GetOk() || len(rc.GetDifferences()) > 0 {
		t.Fatalf("the replay level saw the planted errors (it should not be able to): %v", rc)
	}

	conn, err := st.Conn()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	res, err := orchestratorv1.NewValidationServiceClient(conn).Reconcile(context.Background(),
		&orchestratorv1.ReconcileRequest{Id: job.Id, MaxDifferences: 1000, Spec: intended})
	if err != nil {
		t.Fatal(err)
	}
	rec := res.GetReconciliation()
	ind := rec.GetTables()[0].GetIndependent()
	if rec.GetOk() || ind.GetOk() {
		t.Fatalf("independent reconcile passed a wrong load: %v", ind)
	}
	if ind.GetSourceRows() != 60 || ind.GetTargetRows() != 60 {
		t.Errorf("rows: source %d, target %d; want 60 and 60", ind.GetSourceRows(), ind.GetTargetRows())
	}
	if got := strings.Join(ind.GetComparedColumns(), ","); got != "id,ts,amount,note,status,qty,total" {
		t.Errorf("compared %s, want every column", got)
	}
	got := map[string]bool{}
	for _, d := range ind.GetDifferences() {
		got[d.GetKey()] = true
		if d.GetKind() != "changed" {
			t.Errorf("%s: %s, want changed", d.GetKey(), d.GetKind())
		}
	}
	if ind.GetTruncated() || fmt.Sprint(sortedKeys(got)) != fmt.Sprint(sortedKeys(want)) {
		t.Fatalf("differing keys (truncated %v):\n got %v\nwant %v", ind.GetTruncated(), sortedKeys(got), sortedKeys(want))
	}
	// Each kind of error shows as the source's true value.
	for _, s := range rows {
		var d *commonv1.RowDifference
		for _, x := range ind.GetDifferences() {
			if x.GetKey() == fmt.Sprintf("id=%d", s.id) {
				d = x
			}
		}
		if s.shifted && !strings.Contains(d.GetSource(), "ts="+s.ts+",") {
			t.Errorf("id %d: source side %q lacks its UTC time %s", s.id, d.GetSource(), s.ts)
		}
		if s.digit && !strings.Contains(d.GetSource(), "amount="+s.amount+",") {
			t.Errorf("id %d: source side %q lacks amount %s", s.id, d.GetSource(), s.amount)
		}
		if s.trimmed && !strings.Contains(d.GetSource(), "note="+s.note+",") {
			t.Errorf("id %d: source side %q lacks note %q", s.id, d.GetSource(), s.note)
		}
	}
	totals := map[string]*commonv1.AggregateCheck{}
	for _, a := range ind.GetTotals() {
		totals[a.GetName()] = a
	}
	if a := totals["qty by status"]; !a.GetOk() || a.GetGroups() != 3 {
		t.Errorf("qty by status: %v, want ok over 3 groups", a)
	}
	if a := totals["total by status"]; a.GetOk() || len(a.GetDifferences()) != 3 {
		t.Errorf("total by status: %v, want all 3 groups to differ (fen loaded as yuan)", a)
	}
	if len(ind.GetWarnings()) > 0 {
		t.Errorf("warnings with the intended mapping: %v", ind.GetWarnings())
	}

	// At its own (wrong) mapping the job's check names what it skips:
	// a warning CI can fail on, never a silent ok.
	own := reconcileAt(t, st, job.Id, 10, commonv1.ReconcileLevel_RECONCILE_LEVEL_INDEPENDENT)
	ot := own.GetTables()[0]
	if !own.GetWarning() || !ot.GetWarning() {
		t.Fatalf("own mapping: no warning: %v", ot.GetIndependent())
	}
	var skipped []string
	for _, s := range ot.GetIndependent().GetSkippedColumns() {
		skipped = append(skipped, s.GetColumn()+": "+s.GetReason())
	}
	if !slices.ContainsFunc(skipped, func(s string) bool { return strings.HasPrefix(s, "note: cleaned (trim)") }) {
		t.Errorf("skipped %v: want note named as cleaned", skipped)
	}
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
