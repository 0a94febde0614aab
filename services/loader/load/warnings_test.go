package load

import (
	"context"
	"fmt"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

func warning(row int32, rule, column, reason string) *commonv1.Reject {
	return &commonv1.Reject{Row: row, Stage: "validate", Rule: rule, Column: column, Reason: reason, Raw: "raw " + rule, Warning: true}
}

// TestWarnedRowsLoadAndAreCounted: a warned row loads and is listed in
// cutover.warnings; a row with two warnings counts once; a warned row
// that another rule, a row filter or the target refuses is quarantined or
// filtered only. Both COPY formats give the same outcome.
func TestWarnedRowsLoadAndAreCounted(t *testing.T) {
	for _, textOnly := range []bool{false, true} {
		t.Run(fmt.Sprintf("textOnly=%v", textOnly), func(t *testing.T) {
			e := newEnv(t, itemsDDL)
			e.svc.textOnly.Store(textOnly)
			// qty -5 breaks the target's CHECK; name "toolong" its varchar(5).
			b := itemsBatch(1, []any{1, 2, 3, 4, 5, 6, 7}, []any{"a", "b", "c", "d", "e", "f", "toolong"}, []any{1, 2, 3, 4, -5, 6, 7})
			b.Table, b.Source = "legacy_items", "items.csv"
			withRefs(b, "l1", "l2", "l3", "l4", "l5", "l6", "l7")
			b.Rejects = []*commonv1.Reject{
				warning(1, "short_name", "name", "column name: too short"),
				warning(2, "short_name", "name", "column name: too short"),
				warning(2, "qty_even", "qty", "column qty: odd\x00value"),
				warning(3, "short_name", "name", "column name: too short"),
				{Row: 3, Stage: "validate", Rule: "regex", Column: "name", Reason: "column name: no match", Raw: "d"},
				warning(4, "short_name", "name", "column name: too short"),
				warning(5, "short_name", "name", "column name: too short"),
				{Row: 5, Stage: "filter", Rule: "filter", Reason: "test rows"},
				warning(6, "short_name", "name", "column name: too short"),
			}
			resp, err := e.load(t, e.config("items", "job-w", "p0"), b)
			if err != nil {
				t.Fatal(err)
			}
			// Loaded: rows 0, 1, 2; quarantined: 3 (regex), 4 (CHECK), 6
			// (varchar); filtered: 5. Warned: rows 1 and 2.
			want := &commonv1.Counts{Extracted: 7, Loaded: 3, Quarantined: 3, Filtered: 1, Warned: 2, Batches: 1}
			if len(resp) != 1 || !proto.Equal(resp[0].Counts, want) {
				t.Fatalf("counts %v, want %v", resp, want)
			}
			if got := e.rows(t, `SELECT id FROM items ORDER BY id`); strings.Join(got, ",") != "1,2,3" {
				t.Errorf("items = %v", got)
			}
			if got := e.rows(t, `SELECT table_name, target_table, system, partition_id, seq, row_index, source, source_ref, rule, column_name, reason, raw
FROM cutover.warnings ORDER BY id`); strings.Join(got, "\n") != strings.Join([]string{
				"legacy_items|items||p0|1|1|items.csv|l2|short_name|name|column name: too short|raw short_name",
				`legacy_items|items||p0|1|2|items.csv|l3|short_name|name|column name: too short|raw short_name`,
				`legacy_items|items||p0|1|2|items.csv|l3|qty_even|qty|column qty: odd\x00value|raw qty_even`,
			}, "\n") {
				t.Errorf("warnings:\n%s", strings.Join(got, "\n"))
			}
			// No warning reaches the quarantine; the refused rows are there.
			if got := e.rows(t, `SELECT row_index || ':' || rule FROM cutover.quarantine ORDER BY row_index`); strings.Join(got, ",") != "3:regex,4:target_constraint,6:target_constraint" {
				t.Errorf("quarantine = %v", got)
			}

			// The ledger keeps the count: a resent batch answers with it.
			again, err := e.load(t, e.config("items", "job-w", "p0"), b)
			if err != nil || len(again) != 1 || !again[0].Skipped || !proto.Equal(again[0].Counts, want) {
				t.Fatalf("resent: %v, %v", again, err)
			}
			ctx := context.Background()
			led, err := e.client.GetLedger(ctx, &loaderv1.GetLedgerRequest{Target: e.target(), JobId: "job-w"})
			if err != nil || len(led.Entries) != 1 || led.Entries[0].Counts.Warned != 2 || led.Entries[0].Counts.Loaded != 3 {
				t.Fatalf("ledger: %v, %v", led, err)
			}
			sum, err := e.client.GetQuarantineSummary(ctx, &loaderv1.GetQuarantineSummaryRequest{Target: e.target(), JobId: "job-w", Examples: 1})
			if err != nil {
				t.Fatal(err)
			}
			var groups []string
			for _, g := range sum.Warnings {
				groups = append(groups, fmt.Sprintf("%s/%s=%d:%s", g.Table, g.Rule, g.Count, g.Examples[0].SourceRef))
			}
			if got := strings.Join(groups, " "); got != "legacy_items/qty_even=1:l3 legacy_items/short_name=2:l2" {
				t.Errorf("warning groups = %s", got)
			}
			for _, g := range sum.Groups {
				if g.Rule == "short_name" || g.Rule == "qty_even" {
					t.Errorf("a warning rule in the quarantine groups: %v", g)
				}
			}
			e.checkLedgerBalancedWithFiltered(t)
		})
	}
}

// checkLedgerBalancedWithFiltered asserts extracted = loaded + quarantined
// + filtered, and warned <= loaded, for every ledger row.
func (e *env) checkLedgerBalancedWithFiltered(t testing.TB) {
	t.Helper()
	if n := e.count(t, `SELECT count(*) FROM cutover.ledger WHERE extracted <> loaded + quarantined + filtered OR warned > loaded`); n != 0 {
		t.Fatalf("%d ledger rows do not balance", n)
	}
}

// TestFinalizeUniqueAndReferenceRules stages orders from two systems and
// runs their job-wide rules at finalize:
//
//	orders_a r2 names no customer (references, error): quarantined, so its
//	  order number 200 is free for orders_b r4;
//	orders_b r1 repeats orders_a r1's order number (unique, error);
//	orders_b r5 repeats it too and r6 is merged into r5: both quarantined;
//	orders_b r2 names no customer (references, warn): loads, warned;
//	orders_b r3 shares store and day with orders_a r1 (unique on two
//	  columns, warn): loads, warned;
//	orders_a r3 has no customer (NULL passes) and a batch warning from
//	  the validator, recorded when staged.
func TestFinalizeUniqueAndReferenceRules(t *testing.T) {
	e := newEnv(t, `CREATE TABLE customers (id bigint PRIMARY KEY)`, `INSERT INTO customers VALUES (1), (2)`,
		`CREATE TABLE orders (id bigint PRIMARY KEY, order_no text, customer_id bigint, store text, day text, ext text)`)
	type row struct {
		id        int
		no        any
		cust      any
		store     any
		day       any
		ext       any
		ref       string
		batchWarn bool
	}
	sources := []struct {
		spec, system string
		rows         []row
	}{
		{"orders_a", "a", []row{
			{1, "100", 1, "s1", "d1", nil, "r1", false},
			{2, "200", 99, "s2", "d1", nil, "r2", false},
			{3, "300", nil, "s1", "d2", nil, "r3", true},
		}},
		{"orders_b", "b", []row{
			{4, "100", 2, "s3", "d1", nil, "r1", false},
			{5, "500", 98, "s3", "d2", nil, "r2", false},
			{6, "600", 1, "s1", "d1", nil, "r3", false},
			{7, "200", 1, "s4", "d1", nil, "r4", false},
			{8, "100", 1, "s5", "d1", "E1", "r5", false},
			{9, "900", nil, "s6", "d1", "E1", "r6", false},
		}},
	}
	for _, src := range sources {
		var ids, nos, custs, stores, ds, exts []any
		var refs []string
		var rejects []*commonv1.Reject
		for i, r := range src.rows {
			ids, nos, custs, stores, ds, exts = append(ids, r.id), append(nos, r.no), append(custs, r.cust), append(stores, r.store), append(ds, r.day), append(exts, r.ext)
			refs = append(refs, r.ref)
			if r.batchWarn {
				rejects = append(rejects, warning(int32(i), "has_customer", "customer_id", "column customer_id: NULL"))
			}
		}
		b := withRefs(mkBatch(1, col{"id", tInt, ids}, col{"order_no", tText, nos}, col{"customer_id", tInt, custs},
			col{"store", tText, stores}, col{"day", tText, ds}, col{"ext", tText, exts}), refs...)
		b.Rejects = rejects
		resp, err := e.load(t, e.stagedConfig("orders", src.spec, src.system, src.spec), b)
		if err != nil {
			t.Fatal(err)
		}
		if w := int64(len(rejects)); resp[0].Counts.Warned != w {
			t.Errorf("%s staged warned = %d, want %d", src.spec, resp[0].Counts.Warned, w)
		}
	}
	uniqueNo := &commonv1.Rule{Column: "order_no", Kind: &commonv1.Rule_Unique{Unique: &commonv1.UniqueRule{}}}
	req := &loaderv1.FinalizeStagedRequest{
		Target: e.target(), JobId: "job-f", TargetTable: "orders",
		Sources: []*loaderv1.StagedSource{
			{Table: "orders_a", System: "a", Rules: []*commonv1.Rule{
				uniqueNo,
				{Column: "customer_id", Kind: &commonv1.Rule_References{References: &commonv1.ReferenceRule{Table: "customers", Column: "id"}}},
			}},
			{Table: "orders_b", System: "b", SystemRank: 1, Rules: []*commonv1.Rule{
				{Name: "one_per_store_day", Severity: commonv1.Severity_SEVERITY_WARN, Kind: &commonv1.Rule_Unique{Unique: &commonv1.UniqueRule{Columns: []string{"store", "day"}}}},
				uniqueNo,
				{Name: "customer_known", Column: "customer_id", Severity: commonv1.Severity_SEVERITY_WARN,
					Kind: &commonv1.Rule_References{References: &commonv1.ReferenceRule{Table: "customers", Column: "id"}}},
			}},
		},
		Dedupe: &commonv1.Dedupe{Keys: []*commonv1.MatchKey{{Columns: []string{"ext"}}}, Policy: commonv1.SurvivorPolicy_SURVIVOR_POLICY_MOST_COMPLETE},
	}
	resp, err := e.client.FinalizeStaged(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.rows(t, `SELECT id, order_no FROM orders ORDER BY id`); strings.Join(got, ";") != "1|100;3|300;5|500;6|600;7|200" {
		t.Errorf("orders = %v", got)
	}
	if got := e.rows(t, `SELECT table_name, source_ref, stage, rule, column_name, reason, raw FROM cutover.quarantine ORDER BY table_name, source_ref`); strings.Join(got, "\n") != strings.Join([]string{
		`orders_a|r2|finalize|references|customer_id|column customer_id: '99' is not in customers.id|99`,
		`orders_b|r1|finalize|unique|order_no|unique (order_no): order_no='100' is already taken by orders_a row r1, which keeps it|order_no='100'`,
		`orders_b|r5|finalize|unique|order_no|unique (order_no): order_no='100' is already taken by orders_a row r1, which keeps it|order_no='100'`,
		`orders_b|r6|finalize|unique|order_no|merged into r5, which failed: unique (order_no): order_no='100' is already taken by orders_a row r1, which keeps it|order_no='100'`,
	}, "\n") {
		t.Errorf("quarantine:\n%s", strings.Join(got, "\n"))
	}
	if got := e.rows(t, `SELECT table_name, source_ref, seq, row_index, rule, column_name, reason, raw FROM cutover.warnings ORDER BY id`); strings.Join(got, "\n") != strings.Join([]string{
		`orders_a|r3|1|2|has_customer|customer_id|column customer_id: NULL|raw has_customer`,
		`orders_b|r2|1|1|customer_known|customer_id|column customer_id: '98' is not in customers.id|98`,
		`orders_b|r3|1|2|one_per_store_day|store,day|unique (store, day): store='s1', day='d1' is already taken by orders_a row r1, which keeps it|store='s1', day='d1'`,
	}, "\n") {
		t.Errorf("warnings:\n%s", strings.Join(got, "\n"))
	}
	var outcomes []string
	for _, o := range resp.Tables {
		outcomes = append(outcomes, fmt.Sprintf("%s loaded=%d merged=%d quarantined=%d warned=%d", o.Table, o.Loaded, o.MergedAway, o.Quarantined, o.Warned))
	}
	if got := strings.Join(outcomes, "; "); got != "orders_a loaded=2 merged=0 quarantined=1 warned=0; orders_b loaded=3 merged=0 quarantined=3 warned=2" {
		t.Errorf("outcomes = %s", got)
	}
	var ruleRows []string
	for _, r := range resp.RuleRows {
		ruleRows = append(ruleRows, fmt.Sprintf("%s=%d", r.Key, r.Rows))
	}
	if got := strings.Join(ruleRows, " "); got != "references=1 unique=3 customer_known=1 one_per_store_day=1" {
		t.Errorf("rule rows = %s", got)
	}
	// r6 was merged into a row that did not load: no merge is recorded.
	if n := e.count(t, `SELECT count(*) FROM cutover.merges`); n != 0 || len(resp.Merges) != 0 {
		t.Errorf("merges = %d, %v", n, resp.Merges)
	}
	if n := e.count(t, `SELECT count(*) FROM cutover.quarantine WHERE rule IN ('customer_known', 'one_per_store_day')`); n != 0 {
		t.Errorf("%d warn rows quarantined", n)
	}
	// The quarantine summary lists the finalize warnings with the batch ones.
	sum, err := e.client.GetQuarantineSummary(context.Background(), &loaderv1.GetQuarantineSummaryRequest{Target: e.target(), JobId: "job-f"})
	if err != nil {
		t.Fatal(err)
	}
	var groups []string
	for _, g := range sum.Warnings {
		groups = append(groups, fmt.Sprintf("%s/%s=%d", g.Table, g.Rule, g.Count))
	}
	if got := strings.Join(groups, " "); got != "orders_a/has_customer=1 orders_b/customer_known=1 orders_b/one_per_store_day=1" {
		t.Errorf("warning groups = %s", got)
	}
	// A second call answers with the first outcome.
	again, err := e.client.FinalizeStaged(context.Background(), req)
	if err != nil || !proto.Equal(again, resp) {
		t.Errorf("second finalize: %v, %v", again, err)
	}
}

// TestFinalizeSelfReferenceAndRuleErrors: a references rule on the staged
// table itself finds the rows of this job; bad rules are refused with the
// field named, and nothing is finalized.
func TestFinalizeSelfReferenceAndRuleErrors(t *testing.T) {
	ddl := `CREATE TABLE staff (id bigint PRIMARY KEY, manager_id bigint, code text)`
	stage := func(t *testing.T, e *env) {
		b := withRefs(mkBatch(1, col{"id", tInt, []any{1, 2, 3}}, col{"manager_id", tInt, []any{nil, 1, 7}}, col{"code", tText, []any{"x", "x", "y"}}), "r1", "r2", "r3")
		if _, err := e.load(t, e.stagedConfig("staff", "staff", "hr", "p"), b); err != nil {
			t.Fatal(err)
		}
	}
	manager := &commonv1.Rule{Column: "manager_id", Kind: &commonv1.Rule_References{References: &commonv1.ReferenceRule{Table: "staff", Column: "id"}}}
	e := newEnv(t, ddl)
	stage(t, e)
	resp, err := e.client.FinalizeStaged(context.Background(), &loaderv1.FinalizeStagedRequest{
		Target: e.target(), JobId: "job-f", TargetTable: "staff",
		Sources: []*loaderv1.StagedSource{{Table: "staff", System: "hr", Rules: []*commonv1.Rule{manager}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.rows(t, `SELECT id FROM staff ORDER BY id`); strings.Join(got, ",") != "1,2" {
		t.Errorf("staff = %v", got)
	}
	if o := resp.Tables[0]; o.Loaded != 2 || o.Quarantined != 1 {
		t.Errorf("outcome = %v", o)
	}

	tests := []struct {
		name string
		rule *commonv1.Rule
		want string
	}{
		{"row rule", &commonv1.Rule{Column: "code", Kind: &commonv1.Rule_NotNull{NotNull: &commonv1.NotNullRule{}}}, "sources[0].rules[0]: only unique and references rules"},
		{"unknown unique column", &commonv1.Rule{Kind: &commonv1.Rule_Unique{Unique: &commonv1.UniqueRule{Columns: []string{"code", "nope"}}}}, `sources[0].rules[0].unique.columns[1]: invalid argument: column "nope" is not in target table`},
		{"unique without columns", &commonv1.Rule{Kind: &commonv1.Rule_Unique{Unique: &commonv1.UniqueRule{}}}, "sources[0].rules[0]: a unique rule needs column or unique.columns"},
		{"references unknown column", &commonv1.Rule{Column: "boss", Kind: &commonv1.Rule_References{References: &commonv1.ReferenceRule{Table: "staff", Column: "id"}}}, `sources[0].rules[0].column: invalid argument: column "boss"`},
		{"references without table", &commonv1.Rule{Column: "manager_id", Kind: &commonv1.Rule_References{References: &commonv1.ReferenceRule{Column: "id"}}}, "sources[0].rules[0].references: table and column are required"},
		{"references a missing table", &commonv1.Rule{Column: "manager_id", Kind: &commonv1.Rule_References{References: &commonv1.ReferenceRule{Table: "bosses", Column: "id"}}}, `bosses`},
		{"bad severity", &commonv1.Rule{Column: "code", Severity: 7, Kind: &commonv1.Rule_Unique{Unique: &commonv1.UniqueRule{}}}, "sources[0].rules[0].severity: unknown severity 7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, ddl)
			stage(t, e)
			_, err := e.client.FinalizeStaged(context.Background(), &loaderv1.FinalizeStagedRequest{
				Target: e.target(), JobId: "job-f", TargetTable: "staff",
				Sources: []*loaderv1.StagedSource{{Table: "staff", System: "hr", Rules: []*commonv1.Rule{tt.rule}}},
			})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if c := status.Code(err); c != codes.InvalidArgument && c != codes.NotFound {
				t.Errorf("code = %v", c)
			}
			if n := e.count(t, `SELECT count(*) FROM staff`) + e.count(t, `SELECT count(*) FROM cutover.finalized`); n != 0 {
				t.Errorf("a refused finalize left %d rows", n)
			}
		})
	}
}
