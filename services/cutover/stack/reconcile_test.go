package stack_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/cutover/internal/testenv"
	"github.com/cutover/cutover/services/cutover/stack"
)

// reconcile calls ValidationService.Reconcile on the stack.
func reconcile(t *testing.T, st *stack.Stack, id string, maxDiff int32) *orchestratorv1.Reconciliation {
	t.Helper()
	return reconcileAt(t, st, id, maxDiff, commonv1.ReconcileLevel_RECONCILE_LEVEL_BOTH)
}

// reconcileAt reconciles at one level.
func reconcileAt(t *testing.T, st *stack.Stack, id string, maxDiff int32, level commonv1.ReconcileLevel) *orchestratorv1.Reconciliation {
	t.Helper()
	conn, err := st.Conn()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	res, err := orchestratorv1.NewValidationServiceClient(conn).Reconcile(context.Background(),
		&orchestratorv1.ReconcileRequest{Id: id, MaxDifferences: maxDiff, Level: level})
	if err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	return res.GetReconciliation()
}

func runJob(t *testing.T, jobs orchestratorv1.JobServiceClient, spec *commonv1.JobSpec) *orchestratorv1.Job {
	t.Helper()
	created, err := jobs.CreateJob(context.Background(), &orchestratorv1.CreateJobRequest{Spec: spec})
	if err != nil {
		t.Fatalf("CreateJob: %v", err)
	}
	job := testenv.WaitJob(t, jobs, created.Job.Id, 3*time.Minute)
	if job.State != orchestratorv1.JobState_JOB_STATE_SUCCEEDED {
		t.Fatalf("job %s: %s", job.State, job.Error)
	}
	return job
}

func rowDiffs(tr *commonv1.TableReconciliation) []string {
	var out []string
	for _, d := range tr.GetRows().GetDifferences() {
		out = append(out, d.Key+" "+d.Kind)
	}
	return out
}

// TestReconcileNamesTheDamage: after a clean load Reconcile passes; after
// the target is damaged in known ways (a row deleted, an amount changed by
// 0.01, a key duplicated, a date altered) it reports exactly those keys,
// with both sides' values, and the aggregate check names exactly the
// groups those rows belong to.
func TestReconcileNamesTheDamage(t *testing.T) {
	src, db := testenv.NewDB(t), testenv.NewDB(t)
	src.Exec(`CREATE TABLE sales (id int PRIMARY KEY, store text NOT NULL, day date NOT NULL, amount numeric(10,2), qty int, note text)`,
		`INSERT INTO sales SELECT g, 'S' || (g % 4), date '2024-03-01' + (g % 5), round((g * 7.31) % 500, 2), g % 9, CASE WHEN g % 10 = 0 THEN NULL ELSE 'n' || g END
		 FROM generate_series(1, 400) g`,
		// One row the rules quarantine: it must not count as missing.
		`UPDATE sales SET qty = -1 WHERE id = 77`)
	// No key on the target, so a key can be duplicated: rows are matched by
	// the source's primary key.
	db.Exec(`CREATE TABLE sales (id bigint NOT NULL, store text, day date, amount numeric(12,2), qty bigint, note text, payload jsonb)`)
	st, jobs := startStack(t, db)
	spec := &commonv1.JobSpec{Name: "sales", BatchSize: 64, Tables: []*commonv1.TableSpec{{
		Name: "sales", TargetTable: "sales", Partitions: 3,
		Source: &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Postgres{Postgres: &commonv1.PostgresSource{Dsn: src.URL, Table: "sales"}}},
		Columns: []*commonv1.ColumnMapping{{Target: "id", Source: "id"}, {Target: "store", Source: "store"}, {Target: "day", Source: "day"},
			{Target: "amount", Source: "amount"}, {Target: "qty", Source: "qty"}, {Target: "note", Source: "note"},
			{Target: "payload", Expr: `"{}"`}},
		Rules: []*commonv1.Rule{{Column: "qty", Kind: &commonv1.Rule_Range{Range: &commonv1.RangeRule{Min: "0"}}}},
		Aggregates: []*commonv1.Aggregate{
			{Name: "sales per store per day", GroupBy: []string{"store", "day"}, Sum: []string{"amount"}},
			{Name: "total", Sum: []string{"amount", "qty"}},
		},
	}}}
	job := runJob(t, jobs, spec)
	if job.Counts.Loaded != 399 || job.Counts.Quarantined != 1 {
		t.Fatalf("counts %+v", job.Counts)
	}

	clean := reconcile(t, st, job.Id, 0)
	if len(clean.Tables) != 1 {
		t.Fatalf("tables: %+v", clean.Tables)
	}
	tr := clean.Tables[0]
	if !clean.Ok || !tr.Ok || tr.ExpectedRows != 399 || tr.TargetRows != 399 || tr.Rows.Rows != 399 || tr.Rows.RangesDiffering != 0 || len(tr.Aggregates) != 2 {
		t.Fatalf("clean load does not reconcile: %v", clean)
	}
	if tr.TargetTable != "public.sales" || !slices.Equal(tr.Tables, []string{"sales"}) {
		t.Fatalf("names: %s %v", tr.TargetTable, tr.Tables)
	}
	if !strings.Contains(tr.Rows.Skipped, "payload (jsonb") {
		t.Fatalf("skipped = %q, want the jsonb column named", tr.Rows.Skipped)
	}
	for _, a := range tr.Aggregates {
		if !a.Ok || len(a.Differences) != 0 {
			t.Fatalf("aggregate %s: %v", a.Name, a)
		}
	}
	if g := tr.Aggregates[0].Groups; g != 20 {
		t.Fatalf("groups = %d, want 4 stores x 5 days", g)
	}

	groupOf := func(id int) string {
		return db.Strings(fmt.Sprintf(`SELECT store || '|' || day::text FROM sales WHERE id = %d`, id))[0]
	}
	wantGroups := []string{groupOf(10), groupOf(20), groupOf(30), groupOf(40)}
	db.Exec(`DELETE FROM sales WHERE id = 10`,
		`UPDATE sales SET amount = amount + 0.01 WHERE id = 20`,
		`INSERT INTO sales SELECT * FROM sales WHERE id = 30`,
		`UPDATE sales SET day = day + 1 WHERE id = 40`)
	wantGroups = append(wantGroups, groupOf(40))

	got := reconcile(t, st, job.Id, 0)
	tr = got.Tables[0]
	if got.Ok || tr.Ok {
		t.Fatalf("damaged target reconciles: %v", got)
	}
	want := []string{"id=10 missing", "id=20 changed", "id=30 extra", "id=40 changed"}
	if d := rowDiffs(tr); !slices.Equal(d, want) || tr.Rows.Truncated {
		t.Fatalf("row differences %v (truncated %v), want %v", d, tr.Rows.Truncated, want)
	}
	// The last reconciliation travels with the job's report.
	rep, err := jobs.GetJobReport(context.Background(), &orchestratorv1.GetJobReportRequest{Id: job.Id})
	if err != nil {
		t.Fatal(err)
	}
	if rr := rep.GetReport().GetReconciliation(); rr == nil || rr.GetOk() || !slices.Equal(rowDiffs(rr.GetTables()[0]), want) {
		t.Fatalf("report's reconciliation: %v", rr)
	}
	if tr.ExpectedRows != 399 || tr.TargetRows != 399 {
		t.Fatalf("counts: expected %d, target %d", tr.ExpectedRows, tr.TargetRows)
	}
	d := tr.Rows.Differences
	if !strings.Contains(d[0].Source, "id=10") || d[0].Target != "" {
		t.Errorf("missing row values: %q / %q", d[0].Source, d[0].Target)
	}
	amount := db.Strings(`SELECT amount::text FROM sales WHERE id = 20`)[0]
	if !strings.Contains(d[1].Target, "amount="+amount) || strings.Contains(d[1].Source, "amount="+amount) {
		t.Errorf("changed amount: source %q, target %q, want target amount %s", d[1].Source, d[1].Target, amount)
	}
	if strings.Count(d[2].Target, "id=30") != 2 || strings.Count(d[2].Source, "id=30") != 1 {
		t.Errorf("duplicated key: source %q, target %q", d[2].Source, d[2].Target)
	}
	if tr.Rows.RangesDiffering < 1 || tr.Rows.RangesDiffering > 4 {
		t.Errorf("ranges differing = %d", tr.Rows.RangesDiffering)
	}

	byStore := tr.Aggregates[0]
	var named []string
	for _, g := range byStore.Differences {
		named = append(named, strings.Join(g.Group, "|"))
	}
	named = slices.Compact(named)
	slices.Sort(wantGroups)
	wantGroups = slices.Compact(wantGroups)
	sorted := slices.Clone(named)
	slices.Sort(sorted)
	if byStore.Ok || !slices.Equal(slices.Compact(sorted), wantGroups) {
		t.Fatalf("aggregate groups named %v, want %v", named, wantGroups)
	}
	total := tr.Aggregates[1]
	if total.Ok || len(total.Differences) != 2 { // the sums of amount and of qty; the count is even
		t.Fatalf("total: %v", total)
	}
	for _, g := range total.Differences {
		if len(g.Group) != 0 || g.Source == g.Target {
			t.Errorf("total difference %v", g)
		}
	}
}

// TestReconcileFindsScatteredDifferences: 20,000 rows in several
// partitions with 10 differences scattered over the key space: all 10 are
// found, and a smaller limit lists the first ones and says there are more.
func TestReconcileFindsScatteredDifferences(t *testing.T) {
	db := testenv.NewDB(t)
	const rows = 20000
	// A file source has no key: rows are matched by the target's primary key.
	var sb strings.Builder
	sb.WriteString("id,k,label,amount,at,ok,ratio\n")
	t0 := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for g := 1; g <= rows; g++ {
		fmt.Fprintf(&sb, "%d,%d,row %d,%d.%04d,%s,%v,%s\n", g*3, g%97, g, g/7, g%7*1428, t0.Add(time.Duration(g)*time.Second).Format(time.RFC3339),
			g%3 == 0, strconv.FormatFloat(float64(g)/3, 'g', -1, 64))
	}
	csv := testenv.WriteFile(t, "big.csv", sb.String())
	db.Exec(`CREATE TABLE big (id bigint PRIMARY KEY, k int, label text, amount numeric(14,4), at timestamptz, ok boolean, ratio double precision)`)
	st, jobs := startStack(t, db)
	job := runJob(t, jobs, &commonv1.JobSpec{Name: "big", BatchSize: 1000, Parallelism: 4, Tables: []*commonv1.TableSpec{{
		Name: "big", TargetTable: "big", Partitions: 6,
		Source: &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Csv{Csv: &commonv1.CsvSource{Path: csv}}},
		Columns: []*commonv1.ColumnMapping{{Target: "id", Source: "id"}, {Target: "k", Source: "k"}, {Target: "label", Source: "label"},
			{Target: "amount", Source: "amount"}, {Target: "at", Source: "at"}, {Target: "ok", Source: "ok"}, {Target: "ratio", Source: "ratio"}},
	}}})
	if job.PartitionsTotal < 2 {
		t.Fatalf("partitions = %d, want several", job.PartitionsTotal)
	}
	if r := reconcile(t, st, job.Id, 0); !r.Ok || r.Tables[0].Rows.Rows != rows {
		t.Fatalf("clean load does not reconcile: %v", r)
	} else if ind := r.Tables[0].GetIndependent(); !strings.Contains(ind.GetRowsSkipped(), "a source is a file") || len(ind.GetWarnings()) != 1 {
		// The extractor's NO_DATABASE refusal turns the independent level
		// into replay, with a warning that says so.
		t.Errorf("a CSV source at level both: independent check %v, want it skipped as a file with one warning", ind)
	}
	db.Exec(`UPDATE big SET label = 'x' WHERE id = 3`,
		`UPDATE big SET amount = amount + 0.0001 WHERE id = 6003`,
		`UPDATE big SET at = at + interval '1 microsecond' WHERE id = 12000`,
		`UPDATE big SET ok = NOT ok WHERE id = 30000`,
		`UPDATE big SET ratio = ratio * (1 + 1e-15) WHERE id = 45000`,
		`UPDATE big SET k = NULL WHERE id = 59997`,
		`DELETE FROM big WHERE id IN (300, 33333, 60000)`,
		`INSERT INTO big (id, k) VALUES (1, 1)`)
	want := []string{"id=1 extra", "id=3 changed", "id=300 missing", "id=6003 changed", "id=12000 changed", "id=30000 changed",
		"id=33333 missing", "id=45000 changed", "id=59997 changed", "id=60000 missing"}
	tests := []struct {
		max       int32
		want      []string
		truncated bool
	}{
		{20, want, false},
		{10, want, false},
		{4, want[:4], true},
	}
	for _, tt := range tests {
		r := reconcile(t, st, job.Id, tt.max)
		tr := r.Tables[0]
		if got := rowDiffs(tr); r.Ok || !slices.Equal(got, tt.want) || tr.Rows.Truncated != tt.truncated {
			t.Errorf("max %d: differences %v truncated %v, want %v truncated %v", tt.max, got, tr.Rows.Truncated, tt.want, tt.truncated)
		}
		if tr.ExpectedRows != rows || tr.TargetRows != rows-2 {
			t.Errorf("counts: expected %d target %d", tr.ExpectedRows, tr.TargetRows)
		}
	}
}

// TestReconcileStagedTableCountsOnly: a deduplicated table is merged at
// finalize, so only its counts are compared, and the result says why.
func TestReconcileStagedTableCountsOnly(t *testing.T) {
	db := testenv.NewDB(t)
	db.Exec(`CREATE TABLE members (name text, email text, city text)`)
	st, jobs := startStack(t, db)
	csv := testenv.WriteFile(t, "members.csv", "name,email,city\nAnn,ann@x.cn,\nBo,bo@x.cn,Wuhan\nAnn L,ann@x.cn,Xi'an\nCy,cy@x.cn,Hefei\n")
	job := runJob(t, jobs, &commonv1.JobSpec{Name: "members", Tables: []*commonv1.TableSpec{{
		Name: "members", TargetTable: "members",
		Source:     &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Csv{Csv: &commonv1.CsvSource{Path: csv}}},
		Columns:    []*commonv1.ColumnMapping{{Target: "name", Source: "name"}, {Target: "email", Source: "email"}, {Target: "city", Source: "city"}},
		Dedupe:     &commonv1.Dedupe{Keys: []*commonv1.MatchKey{{Columns: []string{"email"}}}, Policy: commonv1.SurvivorPolicy_SURVIVOR_POLICY_MOST_COMPLETE},
		Aggregates: []*commonv1.Aggregate{{Name: "members per city", GroupBy: []string{"city"}}},
	}}})
	r := reconcile(t, st, job.Id, 0)
	tr := r.Tables[0]
	if !r.Ok || tr.ExpectedRows != 3 || tr.TargetRows != 3 || len(tr.Aggregates) != 0 || !strings.Contains(tr.Rows.Skipped, "staged") || len(tr.Rows.Differences) != 0 {
		t.Fatalf("staged table: %v", r)
	}
	db.Exec(`DELETE FROM members WHERE email = 'cy@x.cn'`)
	if r := reconcile(t, st, job.Id, 0); r.Ok || r.Tables[0].TargetRows != 2 {
		t.Fatalf("a deleted row must show in the counts: %v", r)
	}
}
