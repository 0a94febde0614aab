package stack_test

import (
	"context"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/cutover/internal/testenv"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func validationClient(t *testing.T, db *testenv.DB) orchestratorv1.ValidationServiceClient {
	t.Helper()
	st, _ := startStack(t, db)
	conn, err := st.Conn()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return orchestratorv1.NewValidationServiceClient(conn)
}

// TestValidateSpecNamesEveryProblem: a good spec passes; a spec with
// several mistakes in two tables gets all of them, each with its table,
// field and column, and nothing is created or loaded.
func TestValidateSpecNamesEveryProblem(t *testing.T) {
	db := testenv.NewDB(t)
	db.Exec(ordersDDL)
	v := validationClient(t, db)
	csv := testenv.WriteFile(t, "orders.csv", badCSV)
	ctx := context.Background()

	good, err := v.ValidateSpec(ctx, &orchestratorv1.ValidateSpecRequest{Spec: ordersSpec(csv)})
	if err != nil {
		t.Fatal(err)
	}
	if !good.GetOk() || len(good.GetTables()) != 1 || !good.GetTables()[0].GetOk() || good.GetSpecHash() == "" {
		t.Fatalf("good spec: %v", good)
	}

	bad := ordersSpec(csv)
	bad.Tables[0].Columns[2].Source = "amout"
	second := ordersSpec(csv).Tables[0]
	second.Name = "orders_again"
	second.Columns[5].Expr, second.Columns[5].Source = "note +", ""
	second.Rules = append(second.Rules, &commonv1.Rule{Column: "nope", Kind: &commonv1.Rule_NotNull{NotNull: &commonv1.NotNullRule{}}})
	bad.Tables = append(bad.Tables, second)
	res, err := v.ValidateSpec(ctx, &orchestratorv1.ValidateSpecRequest{Spec: bad})
	if err != nil {
		t.Fatal(err)
	}
	if res.GetOk() || len(res.GetTables()) != 2 {
		t.Fatalf("bad spec: %v", res)
	}
	for i, want := range []struct{ table, field, column, msg string }{
		{"orders", "tables[0].columns[2].source", "amount", "amout"},
		{"orders_again", "tables[1].columns[5].expr", "note", "note +"},
	} {
		tc := res.GetTables()[i]
		if tc.GetOk() || len(tc.GetProblems()) == 0 {
			t.Fatalf("table %s: %v", want.table, tc)
		}
		p := tc.GetProblems()[0]
		if p.GetTable() != want.table || p.GetField() != want.field || p.GetColumn() != want.column || !strings.Contains(p.GetMessage(), want.msg) {
			t.Errorf("problem of %s = %v, want %+v", want.table, p, want)
		}
	}
	if n := db.Int(`SELECT count(*) FROM orders`); n != 0 {
		t.Fatalf("validation loaded %d rows", n)
	}

	// No spec at all is a problem of the job, not an error.
	none, err := v.ValidateSpec(ctx, &orchestratorv1.ValidateSpecRequest{})
	if err != nil || none.GetOk() || len(none.GetProblems()) != 1 || none.GetProblems()[0].GetField() != "spec" {
		t.Fatalf("empty spec: %v, %v", none, err)
	}
}

// TestDryRunCountsWithoutLoading runs the bad CSV into nothing: the same
// outcome a job would have, by rule with examples, sample rows, and an
// empty target.
func TestDryRunCountsWithoutLoading(t *testing.T) {
	db := testenv.NewDB(t)
	db.Exec(ordersDDL)
	v := validationClient(t, db)
	csv := testenv.WriteFile(t, "orders.csv", badCSV)
	ctx := context.Background()

	res, err := v.DryRun(ctx, &orchestratorv1.DryRunRequest{Spec: ordersSpec(csv), Rows: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.GetOk() || len(res.GetTables()) != 1 {
		t.Fatalf("dry run with quarantined rows must not be ok: %v", res)
	}
	dt := res.GetTables()[0]
	if c := dt.GetCounts(); c.GetExtracted() != 10 || c.GetLoaded()+c.GetQuarantined() != 10 || c.GetQuarantined() < 5 {
		t.Errorf("counts = %v", c)
	}
	rules := map[string]int64{}
	for _, r := range dt.GetRules() {
		rules[r.GetRule()] = r.GetRows()
		if len(r.GetExamples()) == 0 || r.GetExamples()[0].GetSourceRef() == "" {
			t.Errorf("rule %s has no example with a source ref", r.GetRule())
		}
	}
	for _, r := range []string{"cast", "ragged_row", "one_of", "range"} {
		if rules[r] == 0 {
			t.Errorf("no rejects by %s in %v", r, rules)
		}
	}
	if len(dt.GetRows()) != 2 || len(dt.GetRows()[0].GetValues()) != len(dt.GetColumns()) || dt.GetRows()[0].GetSourceRef() != "line 2" ||
		dt.GetRows()[0].GetValues()[0].GetText() != "1" {
		t.Errorf("sample rows: columns %v rows %v", dt.GetColumns(), dt.GetRows())
	}
	if n := db.Int(`SELECT count(*) FROM orders`); n != 0 {
		t.Fatalf("dry run loaded %d rows", n)
	}

	// A sample of the first 2 rows is clean; a threshold of 50% lets the
	// whole file pass, one of 10% does not.
	res, err = v.DryRun(ctx, &orchestratorv1.DryRunRequest{Spec: ordersSpec(csv), Sample: 2})
	if err != nil || !res.GetOk() || res.GetTables()[0].GetCounts().GetExtracted() != 2 {
		t.Fatalf("sample of 2: %v, %v", res, err)
	}
	for _, tc := range []struct {
		ratio float64
		ok    bool
	}{{0.8, true}, {0.1, false}} {
		spec := ordersSpec(csv)
		spec.Thresholds = []*commonv1.Threshold{{MaxRatio: &tc.ratio}}
		res, err = v.DryRun(ctx, &orchestratorv1.DryRunRequest{Spec: spec})
		if err != nil || res.GetOk() != tc.ok {
			t.Fatalf("threshold %v: ok %v, want %v (%v, %v)", tc.ratio, res.GetOk(), tc.ok, res.GetProblems(), err)
		}
		if !tc.ok && (len(res.GetProblems()) != 1 || !strings.Contains(res.GetProblems()[0].GetMessage(), "threshold")) {
			t.Errorf("threshold problem: %v", res.GetProblems())
		}
	}

	// A bad spec is answered with its problems, nothing runs.
	bad := ordersSpec(csv)
	bad.Tables[0].Columns[0].Source = "order_id"
	res, err = v.DryRun(ctx, &orchestratorv1.DryRunRequest{Spec: bad})
	if err != nil || res.GetOk() || res.GetTables()[0].GetCounts().GetExtracted() != 0 || len(res.GetTables()[0].GetProblems()) == 0 {
		t.Fatalf("bad spec dry run: %v, %v", res, err)
	}
	if _, err := v.DryRun(ctx, &orchestratorv1.DryRunRequest{Spec: ordersSpec(csv), Sample: -1}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("negative sample: %v", err)
	}
}
