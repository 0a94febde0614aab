package validate

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"google.golang.org/protobuf/proto"
)

func sp(s string) *string { return &s }

func bytesCol(name string, t commonv1.ColumnType, vals ...*string) *commonv1.Column {
	b := batch.NewBuilder(name, t, len(vals))
	for _, v := range vals {
		if v == nil {
			b.AppendNull()
		} else {
			b.AppendString(*v)
		}
	}
	return b.Column()
}

// intCol builds an INT64-stored column; a nil entry is NULL.
func intCol(name string, t commonv1.ColumnType, vals ...*int64) *commonv1.Column {
	b := batch.NewBuilder(name, t, len(vals))
	for _, v := range vals {
		if v == nil {
			b.AppendNull()
		} else {
			b.AppendInt(*v)
		}
	}
	return b.Column()
}

func ip(v int64) *int64 { return &v }

func notNull(col string) *commonv1.Rule {
	return &commonv1.Rule{Column: col, Kind: &commonv1.Rule_NotNull{NotNull: &commonv1.NotNullRule{}}}
}
func regex(col, p string) *commonv1.Rule {
	return &commonv1.Rule{Column: col, Kind: &commonv1.Rule_Regex{Regex: &commonv1.RegexRule{Pattern: p}}}
}
func rng(col, lo, hi string) *commonv1.Rule {
	return &commonv1.Rule{Column: col, Kind: &commonv1.Rule_Range{Range: &commonv1.RangeRule{Min: lo, Max: hi}}}
}
func oneOf(col string, vals ...string) *commonv1.Rule {
	return &commonv1.Rule{Column: col, Kind: &commonv1.Rule_OneOf{OneOf: &commonv1.OneOfRule{Values: vals}}}
}

// failures runs one rule over one column and returns row:reason per reject.
func failures(t *testing.T, r *commonv1.Rule, col *commonv1.Column) []string {
	t.Helper()
	n := len(col.Ints) + len(col.Floats)
	if batch.Storage(col.Type) == batch.StorageBytes {
		n = len(col.Offsets) - 1
	}
	out, err := Apply([]*commonv1.Rule{r}, &commonv1.Batch{NumRows: int32(n), Columns: []*commonv1.Column{col}})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	var got []string
	for _, rj := range out.Rejects {
		if rj.Stage != "validate" || rj.Column != col.Name {
			t.Errorf("reject %v: wrong stage or column", rj)
		}
		got = append(got, string(rune('0'+rj.Row))+":"+rj.Rule+": "+rj.Reason+" raw="+rj.Raw)
	}
	return got
}

func TestRules(t *testing.T) {
	text := bytesCol("status", tText, sp("new"), nil, sp("zzz"), sp(""), sp("paid"))
	amounts := bytesCol("amount", tNum, sp("-0.01"), sp("0"), sp("10000.00"), sp("12000.00"), nil, sp("10000.000001"))
	ints := intCol("qty", tInt, ip(-1), ip(0), ip(10), ip(11), nil)
	// 2024-03-01T00:00:00Z and one microsecond later
	ts := intCol("at", tTS, ip(1_709_251_200_000_000), ip(1_709_251_200_000_001), ip(1_709_251_199_999_999))
	dates := intCol("d", tDate, ip(19783), ip(19784), ip(19782)) // 2024-03-01 ±1
	floats := &commonv1.Column{Name: "f", Type: tFloat, Floats: []float64{0.5, 1.5, -0.5}}
	tests := []struct {
		name string
		r    *commonv1.Rule
		col  *commonv1.Column
		want []string
	}{
		{"not_null", notNull("status"), text, []string{"1:not_null: column status: NULL is not allowed raw="}},
		{"one_of", oneOf("status", "new", "paid", "shipped"), text, []string{
			`2:one_of: column status: "zzz" is not one of [new paid shipped] raw=zzz`,
			`3:one_of: column status: "" is not one of [new paid shipped] raw=`}},
		{"regex unanchored as written", regex("status", "a"), text, []string{
			`0:regex: column status: "new" does not match /a/ raw=new`,
			`2:regex: column status: "zzz" does not match /a/ raw=zzz`,
			`3:regex: column status: "" does not match /a/ raw=`}},
		{"regex anchored", regex("status", "^(new|pai)$"), text, []string{
			`2:regex: column status: "zzz" does not match /^(new|pai)$/ raw=zzz`,
			`3:regex: column status: "" does not match /^(new|pai)$/ raw=`,
			`4:regex: column status: "paid" does not match /^(new|pai)$/ raw=paid`}},
		{"numeric range inclusive", rng("amount", "0", "1e4"), amounts, []string{
			"0:range: column amount: -0.01 is below the minimum 0 raw=-0.01",
			"3:range: column amount: 12000.00 is above the maximum 1e4 raw=12000.00",
			"5:range: column amount: 10000.000001 is above the maximum 1e4 raw=10000.000001"}},
		{"numeric min only", rng("amount", "-0.010", ""), amounts, nil},
		{"numeric max only", rng("amount", "", "-0.001"), amounts, []string{
			"1:range: column amount: 0 is above the maximum -0.001 raw=0",
			"2:range: column amount: 10000.00 is above the maximum -0.001 raw=10000.00",
			"3:range: column amount: 12000.00 is above the maximum -0.001 raw=12000.00",
			"5:range: column amount: 10000.000001 is above the maximum -0.001 raw=10000.000001"}},
		{"int range inclusive", rng("qty", "0", "10"), ints, []string{
			"0:range: column qty: -1 is below the minimum 0 raw=-1",
			"3:range: column qty: 11 is above the maximum 10 raw=11"}},
		{"int one_of uses text form", oneOf("qty", "0", "10"), ints, []string{
			`0:one_of: column qty: "-1" is not one of [0 10] raw=-1`,
			`3:one_of: column qty: "11" is not one of [0 10] raw=11`}},
		{"int regex uses text form", regex("qty", `^\d+$`), ints, []string{`0:regex: column qty: "-1" does not match /^\d+$/ raw=-1`}},
		{"timestamp range", rng("at", "2024-03-01", "2024-03-01T00:00:00.000001Z"), ts, []string{
			"2:range: column at: 2024-02-29T23:59:59.999999Z is below the minimum 2024-03-01 raw=2024-02-29T23:59:59.999999Z"}},
		{"timestamp range with zone", rng("at", "", "2024-03-01 01:00:00+01:00"), ts, []string{
			"1:range: column at: 2024-03-01T00:00:00.000001Z is above the maximum 2024-03-01 01:00:00+01:00 raw=2024-03-01T00:00:00.000001Z"}},
		{"date range", rng("d", "2024-03-01", "2024-03-01"), dates, []string{
			"1:range: column d: 2024-03-02 is above the maximum 2024-03-01 raw=2024-03-02",
			"2:range: column d: 2024-02-29 is below the minimum 2024-03-01 raw=2024-02-29"}},
		{"float range", rng("f", "0", "1.5"), floats, []string{"2:range: column f: -0.5 is below the minimum 0 raw=-0.5"}},
	}
	for _, tt := range tests {
		if got := failures(t, tt.r, tt.col); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
	}
}

func TestNumericRangeExactness(t *testing.T) {
	// Values a float64 cannot tell apart from the bounds.
	col := bytesCol("n", tNum, sp("0.30000000000000000001"), sp("99999999999999999999.99"), sp("100000000000000000000.00"),
		sp("1.5e2"), sp("abc"), sp("0.29999999999999999999"), sp("-0"))
	got := failures(t, rng("n", "0.3", "99999999999999999999.99"), col)
	want := []string{
		"2:range: column n: 100000000000000000000.00 is above the maximum 99999999999999999999.99 raw=100000000000000000000.00",
		`4:range: column n: "abc" is not a number raw=abc`,
		"5:range: column n: 0.29999999999999999999 is below the minimum 0.3 raw=0.29999999999999999999",
		"6:range: column n: -0 is below the minimum 0.3 raw=-0",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestApplyPassesThrough(t *testing.T) {
	refs := bytesCol("", tText, sp("1"), sp("2"), sp("3"))
	in := &commonv1.Batch{
		JobId: "job", PartitionId: "p", Seq: 3, Table: "orders", Source: "src", FirstKey: "0", LastKey: "3", NumRows: 3,
		SourceRefs: refs, TraceContext: map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		Columns: []*commonv1.Column{bytesCol("status", tText, sp("bad"), sp("worse"), sp("new"))},
		// Row 0 was already rejected by the transformer: not reported again.
		Rejects: []*commonv1.Reject{{Row: 0, Stage: "transform", Rule: "cast", Column: "x"}},
	}
	before := proto.Clone(in)
	out, err := Apply([]*commonv1.Rule{oneOf("status", "new"), regex("status", "^n"), notNull("status")}, in)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(in, before) {
		t.Error("Apply modified its input")
	}
	if out.JobId != "job" || out.PartitionId != "p" || out.Seq != 3 || out.Table != "orders" || out.Source != "src" ||
		out.FirstKey != "0" || out.LastKey != "3" || out.NumRows != 3 || !proto.Equal(out.SourceRefs, refs) ||
		!reflect.DeepEqual(out.TraceContext, in.TraceContext) || !proto.Equal(out.Columns[0], in.Columns[0]) {
		t.Errorf("batch not passed through: %v", out)
	}
	var got []string
	for _, r := range out.Rejects {
		got = append(got, r.Stage+"/"+r.Rule+"@"+string(rune('0'+r.Row)))
	}
	// Each failing rule of row 1 is reported, row 0 is not reported twice.
	if want := []string{"transform/cast@0", "validate/one_of@1", "validate/regex@1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("rejects = %v, want %v", got, want)
	}
}

func TestApplyErrors(t *testing.T) {
	in := &commonv1.Batch{NumRows: 1, Columns: []*commonv1.Column{bytesCol("name", tText, sp("x"))}}
	tests := []struct {
		name  string
		rules []*commonv1.Rule
		in    *commonv1.Batch
		want  error
		msg   string
	}{
		{"unknown column", []*commonv1.Rule{notNull("nope")}, in, ErrUnknownColumn, `rules[0].column: unknown column "nope" (batch has: name)`},
		{"range on text", []*commonv1.Rule{rng("name", "a", "b")}, in, ErrInvalidRule, "rules[0].range: needs a bigint"},
		{"malformed", []*commonv1.Rule{notNull("name")}, &commonv1.Batch{NumRows: 2, Columns: in.Columns}, batch.ErrMalformed, "malformed batch"},
		{"bad regex", []*commonv1.Rule{regex("name", "(")}, in, ErrInvalidRule, "rules[0].regex.pattern: error parsing regexp"},
		{"no kind", []*commonv1.Rule{{Column: "name"}}, in, ErrInvalidRule, "rules[0]: exactly one of"},
	}
	for _, tt := range tests {
		_, err := Apply(tt.rules, tt.in)
		if !errors.Is(err, tt.want) || !strings.HasPrefix(err.Error(), tt.msg) {
			t.Errorf("%s: err = %v, want %q (%v)", tt.name, err, tt.msg, tt.want)
		}
	}
}
