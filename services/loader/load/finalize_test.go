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
)

// stagedConfig is a staged load of one table spec.
func (e *env) stagedConfig(table, spec, system, part string) *loaderv1.LoadConfig {
	c := e.config(table, "job-f", part)
	c.Staged, c.TableName, c.System = true, spec, system
	return c
}

func (e *env) rows(t *testing.T, sql string) []string {
	t.Helper()
	rows, err := e.db.Query(context.Background(), sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		v, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		var parts []string
		for _, x := range v {
			if x == nil {
				parts = append(parts, "NULL")
				continue
			}
			parts = append(parts, strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(strings.TrimSpace(toString(x)), "\n", " "), "  ", " ")))
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func toString(x any) string {
	switch v := x.(type) {
	case string:
		return v
	default:
		return strings.Trim(strings.ReplaceAll(strings.TrimSpace(fmtAny(v)), "\t", " "), " ")
	}
}

// TestFinalizeMergesAcrossSystemsAndRemapsReferences stages customers from
// two systems (one duplicate inside system a, two people in both systems),
// their orders (one pointing at a merged customer, one at nobody), then
// finalizes customers and orders and checks every table cutover writes.
func TestFinalizeMergesAcrossSystemsAndRemapsReferences(t *testing.T) {
	e := newEnv(t,
		`CREATE TABLE customers (id bigint PRIMARY KEY, phone text, email text, name text, updated int, created text NOT NULL DEFAULT 'now')`,
		`CREATE TABLE orders (id bigint PRIMARY KEY, order_no text UNIQUE, customer_id bigint REFERENCES customers)`)
	// Partition p1 of system a, partition p2 of system b; ids are what the
	// transformer's new_id would give (any distinct numbers do here).
	a := withRefs(mkBatch(1,
		col{"id", tInt, []any{101, 102, 103, 104}},
		col{"phone", tText, []any{"+8613800000001", "+8613800000002", "+8613800000001", nil}},
		col{"email", tText, []any{nil, "b@x.cn", "a@x.cn", "d@x.cn"}},
		col{"name", tText, []any{"A1", "A2", "A1 again", "A4"}},
		col{"updated", tInt, []any{1, 1, 5, 1}},
		col{"__old__id", tText, []any{"1", "2", "3", "4"}},
	), "id=1", "id=2", "id=3", "id=4")
	a.Source = "mysql pos.members"
	b := withRefs(mkBatch(1,
		col{"id", tInt, []any{201, 202}},
		col{"phone", tText, []any{nil, "+8613800000009"}},
		col{"email", tText, []any{"b@x.cn", "e@x.cn"}},
		col{"name", tText, []any{"B-Two", "B9"}},
		col{"updated", tInt, []any{9, 1}},
		col{"__old__id", tText, []any{"C-1", "C-2"}},
	), "line 2", "line 3")
	b.Source = "xlsx customers.xlsx"
	if _, err := e.load(t, e.stagedConfig("customers", "customers_a", "pos-a", "p1"), a); err != nil {
		t.Fatal(err)
	}
	if _, err := e.load(t, e.stagedConfig("customers", "customers_b", "shop-b", "p2"), b); err != nil {
		t.Fatal(err)
	}
	if got := e.rows(t, `SELECT count(*) FROM customers`); got[0] != "0" {
		t.Fatalf("staged rows reached the target before finalize: %v", got)
	}
	ctx := context.Background()
	req := &loaderv1.FinalizeStagedRequest{
		Target: e.target(), JobId: "job-f", TargetTable: "customers",
		Sources: []*loaderv1.StagedSource{
			{Table: "customers_a", System: "pos-a", SystemRank: 0, NewIds: []*loaderv1.StagedColumn{{Column: "id", Entity: "customer"}}},
			{Table: "customers_b", System: "shop-b", SystemRank: 1, NewIds: []*loaderv1.StagedColumn{{Column: "id", Entity: "customer"}}},
		},
		Dedupe: &commonv1.Dedupe{
			Keys:     []*commonv1.MatchKey{{Name: "phone", Columns: []string{"phone"}}, {Name: "email", Columns: []string{"email"}}},
			Policy:   commonv1.SurvivorPolicy_SURVIVOR_POLICY_NEWEST,
			NewestBy: "updated", Fill: true,
		},
	}
	resp, err := e.client.FinalizeStaged(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	// 101 and 103 share a phone (103 is newer, survives, gets 101's
	// nothing: 103 has every field); 102 and 201 share an email (201 newer,
	// survives and takes 102's phone).
	want := []string{
		"103|+8613800000001|a@x.cn|A1 again|5|now",
		"104|NULL|d@x.cn|A4|1|now",
		"201|+8613800000002|b@x.cn|B-Two|9|now",
		"202|+8613800000009|e@x.cn|B9|1|now",
	}
	if got := e.rows(t, `SELECT * FROM customers ORDER BY id`); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("customers:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if resp.GetFilledFields() != 1 {
		t.Errorf("filled fields = %d, want 1 (201's phone)", resp.GetFilledFields())
	}
	gotOut := map[string]string{}
	for _, o := range resp.GetTables() {
		gotOut[o.GetTable()] = strings.Join([]string{itoa(o.GetLoaded()), itoa(o.GetMergedAway()), itoa(o.GetQuarantined())}, "/")
	}
	if gotOut["customers_a"] != "2/2/0" || gotOut["customers_b"] != "2/0/0" {
		t.Errorf("outcome per table (loaded/merged/quarantined) = %v", gotOut)
	}
	if got := e.rows(t, `SELECT system, source_ref, winner_system, winner_ref, winner_key, match_key FROM cutover.merges ORDER BY source_ref`); strings.Join(got, ";") !=
		"pos-a|id=1|pos-a|id=3|id=103|phone;pos-a|id=2|shop-b|line 2|id=201|email" {
		t.Errorf("merges = %v", got)
	}
	if got := e.rows(t, `SELECT system, old_id, new_id FROM cutover.id_map ORDER BY system, old_id`); strings.Join(got, ";") !=
		"pos-a|1|103;pos-a|2|201;pos-a|3|103;pos-a|4|104;shop-b|C-1|201;shop-b|C-2|202" {
		t.Errorf("id map = %v", got)
	}

	// A second call returns the stored outcome and changes nothing.
	again, err := e.client.FinalizeStaged(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if again.GetFilledFields() != 1 || len(again.GetMerges()) != 2 {
		t.Errorf("second finalize = %v", again)
	}

	// Orders of system a: one for old customer 2 (merged into 201), one for
	// old customer 99 (unknown). The provisional ids are placeholders.
	o := withRefs(mkBatch(1,
		col{"id", tInt, []any{501, 502}},
		col{"order_no", tText, []any{"100", "101"}},
		col{"customer_id", tInt, []any{-1, -2}},
		col{"__old__id", tText, []any{"o1", "o2"}},
		col{"__old__customer_id", tText, []any{"2", "99"}},
	), "id=o1", "id=o2")
	ob := withRefs(mkBatch(1,
		col{"id", tInt, []any{601}},
		col{"order_no", tText, []any{"100"}},
		col{"customer_id", tInt, []any{-3}},
		col{"__old__id", tText, []any{"x1"}},
		col{"__old__customer_id", tText, []any{"C-2"}},
	), "line 1")
	if r, err := e.load(t, e.stagedConfig("orders", "orders_a", "pos-a", "p3"), o); err != nil || len(r) != 1 || r[0].GetCounts().GetLoaded() != 2 {
		t.Fatal(r, err)
	}
	if _, err := e.load(t, e.stagedConfig("orders", "orders_b", "shop-b", "p4"), ob); err != nil {
		t.Fatal(err)
	}
	oresp, err := e.client.FinalizeStaged(ctx, &loaderv1.FinalizeStagedRequest{
		Target: e.target(), JobId: "job-f", TargetTable: "orders",
		Sources: []*loaderv1.StagedSource{
			{Table: "orders_a", System: "pos-a", SystemRank: 0, NewIds: []*loaderv1.StagedColumn{{Column: "id", Entity: "order"}},
				Refs: []*loaderv1.StagedColumn{{Column: "customer_id", Entity: "customer"}}},
			{Table: "orders_b", System: "shop-b", SystemRank: 1, NewIds: []*loaderv1.StagedColumn{{Column: "id", Entity: "order"}},
				Refs: []*loaderv1.StagedColumn{{Column: "customer_id", Entity: "customer"}}},
		},
		Collisions: []*commonv1.KeyCollision{{Column: "order_no", Rule: commonv1.CollisionRule_COLLISION_RULE_PREFIX_SYSTEM}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.rows(t, `SELECT id, order_no, customer_id FROM orders ORDER BY id`); strings.Join(got, ";") != "501|pos-a-100|201;601|shop-b-100|202" {
		t.Errorf("orders = %v", got)
	}
	if oresp.GetUnresolvedRefs() != 1 || len(oresp.GetCollisions()) != 1 || oresp.GetCollisions()[0].GetKeys() != 1 || oresp.GetCollisions()[0].GetRows() != 2 {
		t.Errorf("orders outcome = %v", oresp)
	}
	if got := e.rows(t, `SELECT table_name, source_ref, stage, rule, column_name, reason FROM cutover.quarantine ORDER BY id`); strings.Join(got, ";") !=
		`orders_a|id=o2|finalize|unresolved_ref|customer_id|column customer_id: no customer with old id '99' in system pos-a` {
		t.Errorf("quarantine = %v", got)
	}
	if n := e.rows(t, `SELECT count(*) FROM pg_tables WHERE schemaname = 'cutover_stage'`); n[0] != "0" {
		t.Errorf("staging tables left: %v", n)
	}

	// Lineage: the survivor 201 came from shop-b line 2 and pos-a id=2.
	lin, err := e.client.GetLineage(ctx, &loaderv1.GetLineageRequest{Target: e.target(), JobId: "job-f", TargetTable: "customers", TargetKey: "id=201"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range lin.GetRecords() {
		got = append(got, r.GetSystem()+" "+r.GetSourceRef()+" "+r.GetOutcome()+" "+r.GetMergedInto())
	}
	if strings.Join(got, ";") != "shop-b line 2 loaded ;pos-a id=2 merged shop-b customers_b line 2" {
		t.Errorf("lineage of id=201 = %q", got)
	}
	for _, tc := range []struct {
		system, ref, want string
	}{
		{"pos-a", "id=1", "merged customers id=103"},
		{"pos-a", "id=o2", "quarantined orders unresolved_ref"},
		{"shop-b", "line 1", "loaded orders id=601"},
	} {
		lin, err := e.client.GetLineage(ctx, &loaderv1.GetLineageRequest{Target: e.target(), JobId: "job-f", System: tc.system, SourceRef: tc.ref})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range lin.GetRecords() {
			s := r.GetOutcome() + " " + r.GetTargetTable()
			if r.GetTargetKey() != "" {
				s += " " + r.GetTargetKey()
			}
			if r.GetRule() != "" {
				s += " " + r.GetRule()
			}
			got = append(got, s)
		}
		if strings.Join(got, ";") != tc.want {
			t.Errorf("lineage of %s %s = %q, want %q", tc.system, tc.ref, got, tc.want)
		}
	}
	if _, err := e.client.GetLineage(ctx, &loaderv1.GetLineageRequest{Target: e.target(), JobId: "job-f", TargetTable: "customers"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("lineage without key: %v, want InvalidArgument", err)
	}
}

// TestFinalizeKeepFirstSystemQuarantinesLaterKeys checks the other
// collision rule and that survivors that still collide fail loudly.
func TestFinalizeKeepFirstSystemQuarantinesLaterKeys(t *testing.T) {
	e := newEnv(t, `CREATE TABLE orders (id bigint PRIMARY KEY, order_no text UNIQUE)`)
	for _, s := range []struct {
		spec, system string
		ids          []any
		nos          []any
	}{
		{"orders_a", "a", []any{1, 2}, []any{"100", "200"}},
		{"orders_b", "b", []any{3, 4}, []any{"100", "300"}},
	} {
		bt := withRefs(mkBatch(1, col{"id", tInt, s.ids}, col{"order_no", tText, s.nos}), "r1", "r2")
		if _, err := e.load(t, e.stagedConfig("orders", s.spec, s.system, s.spec), bt); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := e.client.FinalizeStaged(context.Background(), &loaderv1.FinalizeStagedRequest{
		Target: e.target(), JobId: "job-f", TargetTable: "orders",
		Sources:    []*loaderv1.StagedSource{{Table: "orders_a", System: "a"}, {Table: "orders_b", System: "b", SystemRank: 1}},
		Collisions: []*commonv1.KeyCollision{{Column: "order_no", Rule: commonv1.CollisionRule_COLLISION_RULE_KEEP_FIRST_SYSTEM}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.rows(t, `SELECT id, order_no FROM orders ORDER BY id`); strings.Join(got, ";") != "1|100;2|200;4|300" {
		t.Errorf("orders = %v", got)
	}
	if got := e.rows(t, `SELECT table_name, source_ref, rule, reason FROM cutover.quarantine`); strings.Join(got, ";") !=
		`orders_b|r1|key_collision|column order_no: key '100' is also in a system listed earlier, which keeps it` {
		t.Errorf("quarantine = %v", got)
	}
	if resp.GetTables()[1].GetQuarantined() != 1 || resp.GetTables()[1].GetLoaded() != 1 {
		t.Errorf("outcome = %v", resp.GetTables())
	}

	// Two rows of one system with one key: no rule applies, the target's
	// unique constraint refuses, the finalize fails and names it.
	e2 := newEnv(t, `CREATE TABLE orders (id bigint PRIMARY KEY, order_no text UNIQUE)`)
	bt := withRefs(mkBatch(1, col{"id", tInt, []any{1, 2}}, col{"order_no", tText, []any{"100", "100"}}), "r1", "r2")
	if _, err := e2.load(t, e2.stagedConfig("orders", "orders_a", "a", "p"), bt); err != nil {
		t.Fatal(err)
	}
	_, err = e2.client.FinalizeStaged(context.Background(), &loaderv1.FinalizeStagedRequest{
		Target: e2.target(), JobId: "job-f", TargetTable: "orders", Sources: []*loaderv1.StagedSource{{Table: "orders_a", System: "a"}}})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "order_no") {
		t.Errorf("colliding survivors: %v, want FailedPrecondition naming order_no", err)
	}
	if got := e2.rows(t, `SELECT count(*) FROM orders`); got[0] != "0" {
		t.Errorf("a failed finalize left %s rows", got[0])
	}
}

func itoa(n int64) string { return fmtAny(n) }

func fmtAny(v any) string { return fmt.Sprint(v) }

// TestFinalizeTransitiveMatchesAndMostComplete: r1 and r2 share a phone,
// r2 and r3 an e-mail, so all three are one record although r1 and r3
// share nothing; the most complete row survives and the report names the
// key each merged row shares with it, "transitive" for none. Rows without
// any key value stay alone.
func TestFinalizeTransitiveMatchesAndMostComplete(t *testing.T) {
	e := newEnv(t, `CREATE TABLE c (id bigint PRIMARY KEY, phone text, email text, city text)`)
	b := withRefs(mkBatch(1,
		col{"id", tInt, []any{1, 2, 3, 4, 5}},
		col{"phone", tText, []any{"p1", "p1", nil, "", nil}},
		col{"email", tText, []any{nil, "e1", "e1", "", nil}},
		col{"city", tText, []any{"Wuhan", nil, nil, "Xi'an", "Hefei"}},
	), "r1", "r2", "r3", "r4", "r5")
	if _, err := e.load(t, e.stagedConfig("c", "c", "s", "p"), b); err != nil {
		t.Fatal(err)
	}
	resp, err := e.client.FinalizeStaged(context.Background(), &loaderv1.FinalizeStagedRequest{
		Target: e.target(), JobId: "job-f", TargetTable: "c",
		Sources: []*loaderv1.StagedSource{{Table: "c", System: "s"}},
		Dedupe: &commonv1.Dedupe{Keys: []*commonv1.MatchKey{{Columns: []string{"phone"}}, {Name: "mail", Columns: []string{"email"}}},
			Policy: commonv1.SurvivorPolicy_SURVIVOR_POLICY_MOST_COMPLETE, Fill: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	// r1 and r2 tie on completeness (3 fields); the source order decides.
	if got := e.rows(t, `SELECT * FROM c ORDER BY id`); strings.Join(got, ";") != "1|p1|e1|Wuhan;4|||Xi'an;5|NULL|NULL|Hefei" {
		t.Errorf("c = %v", got)
	}
	if got := e.rows(t, `SELECT source_ref, winner_ref, match_key FROM cutover.merges ORDER BY source_ref`); strings.Join(got, ";") != "r2|r1|phone;r3|r1|transitive" {
		t.Errorf("merges = %v", got)
	}
	if o := resp.GetTables()[0]; o.GetLoaded() != 3 || o.GetMergedAway() != 2 || resp.GetFilledFields() != 1 {
		t.Errorf("outcome = %v", resp)
	}
}

// TestStagedTargetWithIdentityKey: a target whose key the target generates
// (identity) is staged without that key and gets it when finalized.
func TestStagedTargetWithIdentityKey(t *testing.T) {
	e := newEnv(t, `CREATE TABLE g (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text, seen int NOT NULL DEFAULT 1)`)
	b := withRefs(mkBatch(1, col{"email", tText, []any{"a@x", "a@x", "b@x"}}), "r1", "r2", "r3")
	if r, err := e.load(t, e.stagedConfig("g", "g", "s", "p"), b); err != nil || r[0].GetCounts().GetLoaded() != 3 {
		t.Fatalf("staged load: %v %v", r, err)
	}
	_, err := e.client.FinalizeStaged(context.Background(), &loaderv1.FinalizeStagedRequest{
		Target: e.target(), JobId: "job-f", TargetTable: "g", Sources: []*loaderv1.StagedSource{{Table: "g", System: "s"}},
		Dedupe: &commonv1.Dedupe{Keys: []*commonv1.MatchKey{{Columns: []string{"email"}}}, Policy: commonv1.SurvivorPolicy_SURVIVOR_POLICY_MOST_COMPLETE},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.rows(t, `SELECT email, seen FROM g ORDER BY id`); strings.Join(got, ";") != "a@x|1;b@x|1" {
		t.Errorf("g = %v", got)
	}
}
