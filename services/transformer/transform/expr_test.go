package transform

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	transformerv1 "github.com/cutover/cutover/gen/cutover/transformer/v1"
	"github.com/cutover/cutover/services/kit/batch"
)

func intCol(name string, vals ...*int64) *commonv1.Column {
	b := batch.NewBuilder(name, tInt, len(vals))
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

// TestApplyExpr evaluates expressions over a 3-row batch; row 2 was rejected
// upstream and must stay NULL without a new reject. NULL semantics are
// CEL's: a NULL input is the value null, so `first + " " + last` with a NULL
// is a no-such-overload error (an expr reject) while `x == null ? …` works.
func TestApplyExpr(t *testing.T) {
	in := &commonv1.Batch{
		NumRows: 3,
		Columns: []*commonv1.Column{
			textCol("first", sp("Ada"), nil, sp("Zed")),
			textCol("last", sp("Lovelace"), sp("Hopper"), sp("Z")),
			intCol("qty", ip(3), ip(0), ip(7)),
			intCol("amount", ip(150), ip(100), nil),
			textCol("order-no", sp("A-1"), sp("A-2"), sp("A-3")),
		},
		Rejects: []*commonv1.Reject{{Row: 2, Stage: "extract", Rule: "ragged_row", Reason: "x"}},
	}
	tests := []struct {
		name    string
		m       *commonv1.ColumnMapping
		want    []string
		rejects []string // "row rule reason" of new rejects
	}{
		{"concat", &commonv1.ColumnMapping{Target: "full", Type: tText, Expr: `first + " " + last`},
			[]string{"Ada Lovelace", "NULL", "NULL"},
			[]string{`1 expr column full: no such overload: _+_`}},
		{"null aware", &commonv1.ColumnMapping{Target: "full", Type: tText, Expr: `first == null ? last : first + " " + last`},
			[]string{"Ada Lovelace", "Hopper", "NULL"}, nil},
		{"arithmetic", &commonv1.ColumnMapping{Target: "total", Type: tInt, Expr: `qty * 2 + amount`},
			[]string{"156", "100", "NULL"}, nil},
		{"int to numeric", &commonv1.ColumnMapping{Target: "avg", Type: tNum, Precision: 8, Scale: 2, Expr: `double(amount) / 4.0`},
			[]string{"37.50", "25.00", "NULL"}, nil},
		{"row map", &commonv1.ColumnMapping{Target: "ref", Type: tText, Expr: `row["order-no"] + "/" + string(row.qty)`},
			[]string{"A-1/3", "A-2/0", "NULL"}, nil},
		{"conditional", &commonv1.ColumnMapping{Target: "size", Type: tText, Expr: `amount > 100 ? "big" : "small"`},
			[]string{"big", "small", "NULL"}, nil},
		{"division by zero", &commonv1.ColumnMapping{Target: "per", Type: tInt, Expr: `amount / qty`},
			[]string{"50", "NULL", "NULL"},
			[]string{`1 expr column per: division by zero`}},
		{"no such key", &commonv1.ColumnMapping{Target: "k", Type: tText, Expr: `row["nope"]`},
			[]string{"NULL", "NULL", "NULL"},
			[]string{`0 expr column k: no such key: nope`, `1 expr column k: no such key: nope`}},
		{"null result takes default", &commonv1.ColumnMapping{Target: "n", Type: tInt, Default: sp("-1"), Expr: `qty == 0 ? null : qty`},
			[]string{"3", "-1", "NULL"}, nil},
		// A typed branch beside null: CEL's checker alone refuses these.
		{"null beside a typed branch", &commonv1.ColumnMapping{Target: "n", Type: tNum, Precision: 8, Scale: 2, Expr: `qty == 0 ? null : double(qty) * 1.5`},
			[]string{"4.50", "NULL", "NULL"}, nil},
		{"typed branch beside null", &commonv1.ColumnMapping{Target: "s", Type: tText, Expr: `qty == 0 ? "none" : null`},
			[]string{"NULL", "none", "NULL"}, nil},
		{"null result not null", &commonv1.ColumnMapping{Target: "n", Type: tInt, NotNull: true, Expr: `qty == 0 ? null : qty`},
			[]string{"3", "NULL", "NULL"},
			[]string{`1 not_null column n: NULL in a NOT NULL column`}},
		{"cast reject", &commonv1.ColumnMapping{Target: "n", Type: tInt, Expr: `first`},
			[]string{"NULL", "NULL", "NULL"},
			[]string{`0 cast column n: cannot cast expression result "Ada" to bigint: `}}, // row 1: NULL, no cast
		{"unstorable result", &commonv1.ColumnMapping{Target: "l", Type: tText, Expr: `[qty]`},
			[]string{"NULL", "NULL", "NULL"},
			[]string{`0 expr column l: result type cannot be stored: list`, `1 expr column l: result type cannot be stored: list`}},
		{"comprehension variable", &commonv1.ColumnMapping{Target: "b", Type: tBool, Expr: `[1, 2].exists(x, x == qty)`},
			[]string{"false", "false", "NULL"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Apply(&transformerv1.TransformConfig{Columns: []*commonv1.ColumnMapping{tt.m}}, in)
			if err != nil {
				t.Fatal(err)
			}
			if err := batch.Check(out); err != nil {
				t.Fatal(err)
			}
			if got := colTexts(out.Columns[0], 3); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("values = %q, want %q", got, tt.want)
			}
			var got []string
			for _, r := range out.Rejects[1:] {
				if r.Stage != "transform" || r.Column != tt.m.Target {
					t.Errorf("reject %+v: wrong stage or column", r)
				}
				got = append(got, strings.Join([]string{string(rune('0' + r.Row)), r.Rule, r.Reason}, " "))
			}
			if len(got) != len(tt.rejects) {
				t.Fatalf("rejects = %q, want %q", got, tt.rejects)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.rejects[i]) {
					t.Errorf("reject %d = %q, want prefix %q", i, got[i], tt.rejects[i])
				}
			}
		})
	}
}

func TestApplyExprTypes(t *testing.T) {
	bld := func(typ commonv1.ColumnType, f func(b *batch.Builder)) *commonv1.Column {
		b := batch.NewBuilder(typ.String(), typ, 1)
		f(b)
		return b.Column()
	}
	in := &commonv1.Batch{NumRows: 1, Columns: []*commonv1.Column{
		bld(tTS, func(b *batch.Builder) { b.AppendInt(1_700_000_000_123_456) }),
		bld(tDate, func(b *batch.Builder) { b.AppendInt(19000) }),
		bld(tFloat, func(b *batch.Builder) { b.AppendFloat(0.1) }),
		bld(tBool, func(b *batch.Builder) { b.AppendBool(true) }),
		bld(tBytes, func(b *batch.Builder) { b.AppendBytes([]byte{0x5c, 'x', 0xff}) }),
		bld(tNum, func(b *batch.Builder) { b.AppendString("12.50") }),
	}}
	tests := []struct {
		expr string
		typ  commonv1.ColumnType
		want string
	}{
		{`row.COLUMN_TYPE_TIMESTAMPTZ + duration("1h")`, tTS, "2023-11-14T23:13:20.123456Z"},
		{`string(row.COLUMN_TYPE_TIMESTAMPTZ)`, tText, "2023-11-14T22:13:20.123456Z"},
		{`row.COLUMN_TYPE_DATE`, tText, "2022-01-08"},
		{`row.COLUMN_TYPE_DATE`, tDate, "2022-01-08"},
		{`row.COLUMN_TYPE_FLOAT64 * 3.0`, tText, "0.30000000000000004"},
		{`!row.COLUMN_TYPE_BOOL`, tBool, "false"},
		{`row.COLUMN_TYPE_BYTES`, tBytes, "\\x\xff"}, // bytes are taken verbatim, not as hex text
		{`row.COLUMN_TYPE_NUMERIC + "0"`, tNum, "12.500"},
		{`uint(7)`, tText, "7"},
	}
	for _, tt := range tests {
		out, err := Apply(&transformerv1.TransformConfig{Columns: []*commonv1.ColumnMapping{{Target: "t", Type: tt.typ, Expr: tt.expr}}}, in)
		if err != nil {
			t.Fatalf("%s: %v", tt.expr, err)
		}
		if len(out.Rejects) > 0 {
			t.Errorf("%s: rejects %v", tt.expr, out.Rejects)
			continue
		}
		if got := colTexts(out.Columns[0], 1)[0]; got != tt.want {
			t.Errorf("%s = %q, want %q", tt.expr, got, tt.want)
		}
	}
}

func TestApplyExprMissingBatchColumn(t *testing.T) {
	in := &commonv1.Batch{NumRows: 1, Columns: []*commonv1.Column{textCol("a", sp("x"))}}
	_, err := Apply(&transformerv1.TransformConfig{Columns: []*commonv1.ColumnMapping{{Target: "t", Type: tText, Expr: `b + a`}}}, in)
	if !errors.Is(err, ErrUnknownSourceColumn) || !strings.Contains(err.Error(), `columns[0].expr: unknown source column "b"`) {
		t.Errorf("err = %v", err)
	}
}

func TestCheckMappingExpr(t *testing.T) {
	source := []*commonv1.SourceColumn{{Name: "first", Type: tText}, {Name: "last"}, {Name: "amount", Type: tInt}, {Name: "order-no"}}
	tests := []struct {
		name string
		m    *commonv1.ColumnMapping
		want string // "" = valid
		kind error
	}{
		{"valid", &commonv1.ColumnMapping{Target: "full", Type: tText, Expr: `first + " " + last + row["order-no"]`}, "", nil},
		{"comprehension vars are not columns", &commonv1.ColumnMapping{Target: "b", Type: tBool, Expr: `[1].all(x, x < amount)`}, "", nil},
		{"syntax error", &commonv1.ColumnMapping{Target: "full", Type: tText, Expr: `first +`},
			`t.columns[0].expr: target column "full": ERROR: <input>:1:8: Syntax error`, ErrInvalidMapping},
		{"type error", &commonv1.ColumnMapping{Target: "n", Type: tInt, Expr: `1 + "a"`},
			`t.columns[0].expr: target column "n": ERROR: <input>:1:3: found no matching overload for '_+_'`, ErrInvalidMapping},
		{"unknown function", &commonv1.ColumnMapping{Target: "n", Type: tInt, Expr: `frob(amount)`},
			`t.columns[0].expr: target column "n": ERROR: <input>:1:5: undeclared reference to 'frob'`, ErrInvalidMapping},
		{"with source", &commonv1.ColumnMapping{Target: "full", Source: "first", Type: tText, Expr: `first`},
			`t.columns[0].expr: target column "full": both source "first" and expr are set`, ErrInvalidMapping},
		{"unknown variable", &commonv1.ColumnMapping{Target: "full", Type: tText, Expr: `frist + last`},
			`t.columns[0].expr: target column "full": unknown source column "frist"`, ErrUnknownSourceColumn},
		{"unknown row key", &commonv1.ColumnMapping{Target: "full", Type: tText, Expr: `row["order_no"]`},
			`t.columns[0].expr: target column "full": unknown source column "order_no"`, ErrUnknownSourceColumn},
		{"unknown row field", &commonv1.ColumnMapping{Target: "full", Type: tText, Expr: `row.nope`},
			`t.columns[0].expr: target column "full": unknown source column "nope"`, ErrUnknownSourceColumn},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckMapping(&transformerv1.CheckMappingRequest{FieldPrefix: "t", SourceColumns: source, Columns: []*commonv1.ColumnMapping{tt.m}})
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) || !errors.Is(err, tt.kind) {
				t.Fatalf("err = %v, want prefix %q (%v)", err, tt.want, tt.kind)
			}
			if st := toStatus(err); !strings.Contains(st.Error(), "InvalidArgument") {
				t.Errorf("status = %v", st)
			}
		})
	}
}

func BenchmarkApplyExpr(b *testing.B) {
	const n = 4096
	first, last, qty := batch.NewBuilder("first", tText, n), batch.NewBuilder("last", tText, n), batch.NewBuilder("qty", tInt, n)
	for i := range n {
		first.AppendString("Ada")
		last.AppendString("Lovelace")
		qty.AppendInt(int64(i))
	}
	in := &commonv1.Batch{NumRows: n, Columns: []*commonv1.Column{first.Column(), last.Column(), qty.Column()}}
	p, err := compile(&transformerv1.TransformConfig{Columns: []*commonv1.ColumnMapping{
		{Target: "full", Type: tText, Expr: `first + " " + last`},
		{Target: "size", Type: tText, Expr: `qty > 100 ? "big" : "small"`},
	}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.apply(in); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzCompileExpr: any expression text either compiles or is refused with an
// error; the stream-time and CheckMapping-time compiles agree on validity
// when every referenced identifier is a known column.
func FuzzCompileExpr(f *testing.F) {
	for _, s := range []string{`a + " " + b`, `row["x-y"]`, `[1].exists(x, x > a)`, `a ? 1 : "b"`, `int(a) / 0`, `row.`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		ep, err := compileExpr(src, nil)
		if err != nil {
			return
		}
		known := map[string]bool{}
		for _, v := range ep.vars {
			known[v] = true
		}
		if _, err := compileExpr(src, known); err != nil && !errors.Is(err, ErrUnknownSourceColumn) {
			t.Fatalf("%q compiles at stream time but not with its columns known: %v", src, err)
		}
	})
}
