package validate

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	validatorv1 "github.com/cutover/cutover/gen/cutover/validator/v1"
	"github.com/cutover/cutover/services/kit/batch"
)

func length(col string, lo, hi int32) *commonv1.Rule {
	return &commonv1.Rule{Column: col, Kind: &commonv1.Rule_Length{Length: &commonv1.LengthRule{Min: lo, Max: hi}}}
}
func expr(col, src string) *commonv1.Rule {
	return &commonv1.Rule{Column: col, Kind: &commonv1.Rule_Expr{Expr: &commonv1.ExprRule{Expr: src}}}
}
func unique(col string, cols ...string) *commonv1.Rule {
	return &commonv1.Rule{Column: col, Kind: &commonv1.Rule_Unique{Unique: &commonv1.UniqueRule{Columns: cols}}}
}
func refRule(col, table, column string) *commonv1.Rule {
	return &commonv1.Rule{Column: col, Kind: &commonv1.Rule_References{References: &commonv1.ReferenceRule{Table: table, Column: column}}}
}
func warn(r *commonv1.Rule) *commonv1.Rule { r.Severity = commonv1.Severity_SEVERITY_WARN; return r }
func named(name string, r *commonv1.Rule) *commonv1.Rule {
	r.Name = name
	return r
}

// typedBatch has one column of each type; row 3 is all NULL.
func typedBatch() *commonv1.Batch {
	f := batch.NewBuilder("score", tFloat, 4)
	for _, v := range []float64{1.5, -2, 0} {
		f.AppendFloat(v)
	}
	f.AppendNull()
	ok := batch.NewBuilder("paid", tBool, 4)
	ok.AppendBool(true)
	ok.AppendBool(false)
	ok.AppendBool(true)
	ok.AppendNull()
	blob := batch.NewBuilder("blob", tBytes, 4)
	blob.AppendBytes([]byte{0xff, 0})
	blob.AppendBytes([]byte("abcd"))
	blob.AppendBytes(nil)
	blob.AppendNull()
	return &commonv1.Batch{NumRows: 4, Columns: []*commonv1.Column{
		intCol("id", tInt, ip(1), ip(2), ip(3), nil),
		bytesCol("name", tText, sp("Zoë"), sp("a\x00b"), sp(strings.Repeat("长", 70)), nil),
		bytesCol("amount", tNum, sp("10.50"), sp("-0.01"), sp("99999999999999999999.99"), nil),
		// 2024-03-01T00:00:00Z, 2024-03-02, 2024-02-29
		intCol("ordered_at", tTS, ip(1_709_251_200_000_000), ip(1_709_337_600_000_000), ip(1_709_164_800_000_000), nil),
		intCol("shipped_on", tDate, ip(19783), ip(19783), ip(19783), nil),
		f.Column(), ok.Column(), blob.Column(),
		bytesCol("odd name", tText, sp("x"), sp("y"), sp(""), nil),
	}}
}

// outcome renders rejects as "row:rule[!warn]: reason | raw".
func outcome(rejects []*commonv1.Reject) []string {
	var got []string
	for _, r := range rejects {
		w := ""
		if r.Warning {
			w = "!warn"
		}
		got = append(got, fmt.Sprintf("%d:%s%s: %s | %s", r.Row, r.Rule, w, r.Reason, r.Raw))
	}
	return got
}

func TestLengthAndExprRules(t *testing.T) {
	tests := []struct {
		name string
		r    *commonv1.Rule
		want []string
	}{
		{"length counts characters, NULL passes", length("name", 2, 3), []string{
			"2:length: column name: \"长长长长长长长长长长长长长长长长长长长长长\"… has 70 characters, more than the maximum 3 | " + strings.Repeat("长", 70)}},
		{"length min only", length("name", 4, 0), []string{
			`0:length: column name: "Zoë" has 3 characters, fewer than the minimum 4 | Zoë`,
			`1:length: column name: "a\x00b" has 3 characters, fewer than the minimum 4 | a\x00b`}},
		{"length of bytea is in bytes", length("blob", 1, 3), []string{
			`1:length: column blob: "abcd" has 4 bytes, more than the maximum 3 | abcd`,
			`2:length: column blob: "" has 0 bytes, fewer than the minimum 1 | `}},
		{"length of a number is its text", length("amount", 0, 5), []string{
			`2:length: column amount: "99999999999999999999.99" has 23 characters, more than the maximum 5 | 99999999999999999999.99`}},
		{"cross-field timestamps, NULL handled by the expression", expr("ordered_at", `ordered_at == null || ordered_at >= timestamp("2024-03-01T00:00:00Z")`), []string{
			`2:expr: column ordered_at: "ordered_at == null || ordered_at >= timestamp(\"2024-03-01T00:00:00Z\")" is false | ordered_at="2024-02-29T00:00:00Z"`}},
		{"numeric is a double, compares with ints", expr("amount", "amount >= 0"), []string{
			`1:expr: column amount: "amount >= 0" is false | amount="-0.01"`,
			`3:expr: column amount: cannot evaluate "amount >= 0": no such overload: _>=_ | amount=NULL`}},
		{"dates are their text", expr("shipped_on", `shipped_on >= "2024-03-01"`), []string{
			`3:expr: column shipped_on: cannot evaluate "shipped_on >= \"2024-03-01\"": no such overload: _>=_ | shipped_on=NULL`}},
		{"row map reaches odd names, no column: whole row at fault", expr("", `row["odd name"] != "" && paid == true`), []string{
			`1:expr: "row[\"odd name\"] != \"\" && paid == true" is false | id="2", name="a\x00b", amount="-0.01", ordered_at="2024-03-02T00:00:00Z", shipped_on="2024-03-01", score="-2", paid="false", blob="abcd", odd name="y"`,
			`2:expr: "row[\"odd name\"] != \"\" && paid == true" is false | id="3", name="长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长…", amount="99999999999999999999.99", ordered_at="2024-02-29T00:00:00Z", shipped_on="2024-03-01", score="0", paid="true", blob="", odd name=""`,
			`3:expr: "row[\"odd name\"] != \"\" && paid == true" is false | id=NULL, name=NULL, amount=NULL, ordered_at=NULL, shipped_on=NULL, score=NULL, paid=NULL, blob=NULL, odd name=NULL`}},
		{"bool column alone is the condition; NULL gives null", expr("paid", "paid"), []string{
			`1:expr: column paid: "paid" is false | paid="false"`,
			`3:expr: column paid: "paid" gives null, not true | paid=NULL`}},
		{"bytes and sizes", expr("blob", "blob == null || size(blob) <= 2"), []string{
			`1:expr: column blob: "blob == null || size(blob) <= 2" is false | blob="abcd"`}},
		{"comprehension variables are not columns", expr("id", "[1, 2].all(x, x <= id)"), []string{
			`0:expr: column id: "[1, 2].all(x, x <= id)" is false | id="1"`,
			`3:expr: column id: cannot evaluate "[1, 2].all(x, x <= id)": no such overload | id=NULL`}},
		{"division by zero is an evaluation error", expr("score", "score == null || 1 / int(score) >= 0"), []string{
			`2:expr: column score: cannot evaluate "score == null || 1 / int(score) >= 0": division by zero | score="0"`}},
		{"name replaces the kind", named("ship_after_order", expr("id", "id == null || id != 2")), []string{
			`1:ship_after_order: column id: "id == null || id != 2" is false | id="2"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := typedBatch()
			out, err := Apply([]*commonv1.Rule{tt.r}, in)
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if got := outcome(out.Rejects); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestSeverityWarn(t *testing.T) {
	rules := []*commonv1.Rule{
		warn(length("name", 0, 3)),                            // rows 2 (too long)
		warn(named("positive", expr("amount", "amount > 0"))), // rows 1, 3
		regex("name", "^[^a]"),                                // error: row 1
		warn(notNull("id")),                                   // row 3
		// Job-wide rules are the loader's: never evaluated here.
		unique("id"), refRule("id", "customers", "id"),
	}
	in := typedBatch()
	in.Rejects = []*commonv1.Reject{{Row: 0, Stage: "transform", Rule: "cast", Column: "name"}}
	out, err := Apply(rules, in)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"0:cast:  | ",
		// Row 1 failed an error rule: its warning is dropped, it is quarantined.
		`1:regex: column name: "a\x00b" does not match /^[^a]/ | a\x00b`,
		`2:length!warn: column name: "长长长长长长长长长长长长长长长长长长长长长"… has 70 characters, more than the maximum 3 | ` + strings.Repeat("长", 70),
		`3:positive!warn: column amount: cannot evaluate "amount > 0": no such overload: _>_ | amount=NULL`,
		"3:not_null!warn: column id: NULL is not allowed | ",
	}
	if got := outcome(out.Rejects); !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	// Only rows 0 and 1 are rejected; 2 and 3 load with warnings.
	if got, want := batch.CountBits(batch.Rejected(out)), 2; got != want {
		t.Errorf("rejected rows = %d, want %d", got, want)
	}
	if got, want := batch.CountBits(batch.Warned(out)), 2; got != want {
		t.Errorf("warned rows = %d, want %d", got, want)
	}
	// A warned row from an earlier stage is still checked.
	again, err := Apply([]*commonv1.Rule{regex("name", "^Z")}, out)
	if err != nil {
		t.Fatal(err)
	}
	if got := outcome(again.Rejects[len(out.Rejects):]); !reflect.DeepEqual(got, []string{
		`2:regex: column name: "长长长长长长长长长长长长长长长长长长长长长"… does not match /^Z/ | ` + strings.Repeat("长", 70),
	}) {
		t.Errorf("second pass: %q", got)
	}
}

func TestCompileAndApplyRefuseBadRules(t *testing.T) {
	in := typedBatch()
	tests := []struct {
		name string
		r    *commonv1.Rule
		kind error
		msg  string
	}{
		{"negative length", length("name", -1, 0), ErrInvalidRule, "rules[0].length.min: must not be negative, got -1"},
		{"negative max", length("name", 0, -5), ErrInvalidRule, "rules[0].length.max: must not be negative, got -5"},
		{"no length bounds", length("name", 0, 0), ErrInvalidRule, "rules[0].length: min or max must be set"},
		{"length min above max", length("name", 5, 4), ErrInvalidRule, "rules[0].length: min 5 is above max 4"},
		{"empty expr", expr("id", "  "), ErrInvalidRule, "rules[0].expr.expr: must not be empty"},
		{"syntax error", expr("id", "id >"), ErrInvalidRule, "rules[0].expr.expr: ERROR: <input>:1:5: Syntax error"},
		{"never bool", expr("id", `"x" + "y"`), ErrInvalidRule, "rules[0].expr.expr: must give a bool, not string"},
		{"unknown function", expr("id", "frobnicate(id)"), ErrInvalidRule, "rules[0].expr.expr: ERROR: <input>:1:11: undeclared reference to 'frobnicate'"},
		{"unknown variable at apply", expr("id", "nope > 1"), ErrUnknownColumn, `rules[0].expr.expr: unknown column "nope" (batch has: id, name`},
		{"unknown row key at apply", expr("", `row["nope"] == 1`), ErrUnknownColumn, `rules[0].expr.expr: unknown column "nope"`},
		{"type error with the batch's types", expr("id", `id > "3"`), ErrInvalidRule, "rules[0].expr.expr: ERROR: <input>:1:4: found no matching overload for '_>_' applied to '(wrapper(int), string)'"},
		{"non-bool with the batch's types", expr("id", "id + 1"), ErrInvalidRule, "rules[0].expr.expr: must give a bool, not int"},
		{"bad severity", &commonv1.Rule{Column: "id", Severity: 9, Kind: &commonv1.Rule_NotNull{NotNull: &commonv1.NotNullRule{}}}, ErrInvalidRule, "rules[0].severity: unknown severity 9"},
		{"empty unique column", unique("", "id", ""), ErrInvalidRule, "rules[0].unique.columns[1]: must not be empty"},
		{"unique column twice", unique("", "id", "name", "id"), ErrInvalidRule, `rules[0].unique.columns[2]: column "id" is listed twice`},
		{"unique without columns needs the column", unique(""), ErrInvalidRule, "rules[0].column: must not be empty"},
		{"references without table", refRule("id", " ", "id"), ErrInvalidRule, "rules[0].references.table: must not be empty"},
		{"references without column", refRule("id", "customers", ""), ErrInvalidRule, "rules[0].references.column: must not be empty"},
		{"length needs a column", length("", 1, 0), ErrInvalidRule, "rules[0].column: must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Apply([]*commonv1.Rule{tt.r}, in)
			if !errors.Is(err, tt.kind) || !strings.HasPrefix(err.Error(), tt.msg) {
				t.Errorf("err = %v\nwant %q (%v)", err, tt.msg, tt.kind)
			}
		})
	}
}

func TestCheckRulesNewKinds(t *testing.T) {
	cols := []*commonv1.ColumnMapping{
		{Target: "id", Type: tInt}, {Target: "amount", Type: tNum}, {Target: "status", Type: tText},
		{Target: "ordered_at", Type: tTS}, {Target: "shipped_at", Type: tTS}, {Target: "day", Type: tDate}, {Target: "later"},
		{Target: "customer_id", Type: tInt},
	}
	tests := []struct {
		name string
		rule *commonv1.Rule
		want string // "" = valid
		kind error
	}{
		{"length", length("status", 1, 20), "", nil},
		{"cross-field", expr("shipped_at", "shipped_at == null || shipped_at >= ordered_at"), "", nil},
		{"numeric vs int", expr("amount", "amount > 0 && amount < 1e6"), "", nil},
		{"date vs text", expr("day", `day >= "2020-01-01"`), "", nil},
		{"untyped column is dyn", expr("later", "later > 3"), "", nil},
		{"row map", expr("", `row["status"] in ["new", "paid"]`), "", nil},
		{"warn", warn(expr("id", "id > 0")), "", nil},
		{"unique on the column", unique("id"), "", nil},
		{"unique on columns", unique("", "status", "day"), "", nil},
		{"references", refRule("customer_id", "customers", "id"), "", nil},
		{"expr unknown variable", expr("id", "id > 0 && nope"), `t.rules[0].expr.expr: unknown column "nope" (columns: id, amount, status, ordered_at, shipped_at, day, later, customer_id)`, ErrUnknownColumn},
		{"expr unknown row key", expr("id", "row.nope == 1"), `t.rules[0].expr.expr: unknown column "nope"`, ErrUnknownColumn},
		{"expr type mismatch", expr("id", "ordered_at > 3"), "t.rules[0].expr.expr: ERROR: <input>:1:12: found no matching overload for '_>_' applied to '(timestamp, int)'", ErrInvalidRule},
		{"expr not bool", expr("id", "amount * 2.0"), "t.rules[0].expr.expr: must give a bool, not double", ErrInvalidRule},
		{"expr not bool with a string", expr("id", "status"), "t.rules[0].expr.expr: must give a bool, not wrapper(string)", ErrInvalidRule},
		{"expr does not compile", expr("id", "id ==="), "t.rules[0].expr.expr: ERROR:", ErrInvalidRule},
		{"expr rule column unknown", expr("nope", "true"), `t.rules[0].column: unknown column "nope"`, ErrUnknownColumn},
		{"unique unknown column", unique("", "status", "nope"), `t.rules[0].unique.columns[1]: unknown column "nope"`, ErrUnknownColumn},
		{"unique default column unknown", unique("nope"), `t.rules[0].column: unknown column "nope"`, ErrUnknownColumn},
		{"references unknown column", refRule("nope", "customers", "id"), `t.rules[0].column: unknown column "nope"`, ErrUnknownColumn},
		{"length bad", length("status", 3, 2), "t.rules[0].length: min 3 is above max 2", ErrInvalidRule},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckRules(&validatorv1.CheckRulesRequest{Rules: []*commonv1.Rule{tt.rule}, Columns: cols, FieldPrefix: "t"})
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("unexpected %v", err)
			case tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want) || !errors.Is(err, tt.kind)):
				t.Errorf("err = %v\nwant %q", err, tt.want)
			}
		})
	}
}

// An expression is checked once per column types, not once per batch.
func TestExprPlanIsReused(t *testing.T) {
	c, err := Compile([]*commonv1.Rule{expr("id", "id == null || id > 1")})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := c.Apply(typedBatch()); err != nil {
			t.Fatal(err)
		}
	}
	text := &commonv1.Batch{NumRows: 1, Columns: []*commonv1.Column{bytesCol("id", tText, sp("7"))}}
	if _, err := c.Apply(text); err == nil || !strings.Contains(err.Error(), "found no matching overload") {
		t.Errorf("text id: err = %v", err)
	}
	if n := len(c.rules[0].expr.plans); n != 1 {
		t.Errorf("plans = %d, want 1 (the int one; the text one failed)", n)
	}
}
