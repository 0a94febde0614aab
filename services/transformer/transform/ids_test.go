package transform

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	transformerv1 "github.com/cutover/cutover/gen/cutover/transformer/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"github.com/cutover/cutover/services/kit/ident"
)

func i64(system, entity, old string) string {
	return strconv.FormatInt(ident.Int64(system, entity, old), 10)
}

func bytesCol(name string, vals ...[]byte) *commonv1.Column {
	b := batch.NewBuilder(name, tBytes, len(vals))
	for _, v := range vals {
		b.AppendBytes(v)
	}
	return b.Column()
}

// TestApplyIDs maps one new_id or ref column over a 7-row batch and checks
// its values against kit/ident, its "__old__" column and its rejects. Row 6
// was rejected upstream: NULL everywhere, no reject.
func TestApplyIDs(t *testing.T) {
	in := &commonv1.Batch{
		NumRows: 7,
		Columns: []*commonv1.Column{
			textCol("id", sp("17"), sp(" 42 "), nil, sp(""), sp(" \t"), sp("A-9"), sp("99")),
			intCol("cust", ip(5), nil, ip(7), ip(8), ip(9), ip(10), ip(11)),
			textCol("cust_text", sp("C1"), nil, sp(""), sp("C4"), sp(" "), sp("C6"), sp("C7")),
			bytesCol("raw", []byte("ok"), []byte{0xff}, []byte("a\x00b"), []byte(""), []byte("b"), []byte("c"), []byte("d")),
		},
		Rejects: []*commonv1.Reject{{Row: 6, Stage: "extract", Rule: "ragged_row", Reason: "x"}},
	}
	trim := []*commonv1.CleanStep{step("trim")}
	tests := []struct {
		name    string
		m       *commonv1.ColumnMapping
		want    []string
		old     []string // the __old__ column
		rejects []string // "row rule reason" (column is the target), prefixes
	}{
		{"new_id bigint after trim",
			&commonv1.ColumnMapping{Target: "id", Source: "id", Type: tInt, Clean: trim, NewId: &commonv1.NewId{Entity: "order"}},
			[]string{i64("pos-a", "order", "17"), i64("pos-a", "order", "42"), "NULL", "NULL", "NULL", i64("pos-a", "order", "A-9"), "NULL"},
			[]string{"17", "42", "NULL", "NULL", "NULL", "A-9", "NULL"},
			[]string{"2 new_id column id: no old id", "3 new_id column id: no old id", "4 new_id column id: no old id"}},
		{"new_id without a chain keeps the text verbatim",
			&commonv1.ColumnMapping{Target: "id", Source: "id", Type: tInt, NewId: &commonv1.NewId{Entity: "order"}},
			[]string{i64("pos-a", "order", "17"), i64("pos-a", "order", " 42 "), "NULL", "NULL", i64("pos-a", "order", " \t"), i64("pos-a", "order", "A-9"), "NULL"},
			[]string{"17", " 42 ", "NULL", "NULL", " \t", "A-9", "NULL"},
			[]string{"2 new_id column id: no old id", "3 new_id column id: no old id"}},
		{"new_id numeric is the same number",
			&commonv1.ColumnMapping{Target: "id", Source: "cust", Type: tNum, NewId: &commonv1.NewId{Entity: "customer"}},
			[]string{i64("pos-a", "customer", "5"), "NULL", i64("pos-a", "customer", "7"), i64("pos-a", "customer", "8"), i64("pos-a", "customer", "9"), i64("pos-a", "customer", "10"), "NULL"},
			[]string{"5", "NULL", "7", "8", "9", "10", "NULL"},
			[]string{"1 new_id column id: no old id"}},
		{"new_id text is a UUID",
			&commonv1.ColumnMapping{Target: "id", Source: "cust_text", Type: tText, MaxLength: 36, NewId: &commonv1.NewId{Entity: "customer"}},
			[]string{ident.UUID("pos-a", "customer", "C1"), "NULL", "NULL", ident.UUID("pos-a", "customer", "C4"), ident.UUID("pos-a", "customer", " "), ident.UUID("pos-a", "customer", "C6"), "NULL"},
			[]string{"C1", "NULL", "NULL", "C4", " ", "C6", "NULL"},
			[]string{"1 new_id column id: no old id", "2 new_id column id: no old id"}},
		{"new_id from bytes must be text",
			&commonv1.ColumnMapping{Target: "id", Source: "raw", Type: tInt, NewId: &commonv1.NewId{Entity: "e"}},
			[]string{i64("pos-a", "e", "ok"), "NULL", "NULL", "NULL", i64("pos-a", "e", "b"), i64("pos-a", "e", "c"), "NULL"},
			[]string{"ok", "NULL", "NULL", "NULL", "b", "c", "NULL"},
			[]string{`1 new_id column id: old id "\xff" is not valid text`, `2 new_id column id: old id "a\x00b" is not valid text`, "3 new_id column id: no old id"}},
		{"new_id clean error",
			&commonv1.ColumnMapping{Target: "id", Source: "cust_text", Type: tInt, Clean: []*commonv1.CleanStep{step("enum", "values", "C1|C4")}, NewId: &commonv1.NewId{Entity: "e"}},
			[]string{i64("pos-a", "e", "C1"), "NULL", "NULL", i64("pos-a", "e", "C4"), "NULL", "NULL", "NULL"},
			[]string{"C1", "NULL", "NULL", "C4", "NULL", "NULL", "NULL"},
			[]string{"1 new_id column id: no old id", `2 clean column id: step 1 (enum): "" is not one of`, "4 clean column id: ", "5 clean column id: "}},
		{"ref in another system; NULL and empty are NULL",
			&commonv1.ColumnMapping{Target: "customer_id", Source: "cust_text", Type: tInt, Ref: &commonv1.IdRef{Entity: "customer", System: "crm"}},
			[]string{i64("crm", "customer", "C1"), "NULL", "NULL", i64("crm", "customer", "C4"), i64("crm", "customer", " "), i64("crm", "customer", "C6"), "NULL"},
			[]string{"C1", "NULL", "NULL", "C4", " ", "C6", "NULL"},
			nil},
		{"ref in the own system, NOT NULL",
			&commonv1.ColumnMapping{Target: "customer_id", Source: "cust_text", Type: tText, NotNull: true, Clean: trim, Ref: &commonv1.IdRef{Entity: "customer"}},
			[]string{ident.UUID("pos-a", "customer", "C1"), "NULL", "NULL", ident.UUID("pos-a", "customer", "C4"), "NULL", ident.UUID("pos-a", "customer", "C6"), "NULL"},
			[]string{"C1", "NULL", "NULL", "C4", "NULL", "C6", "NULL"},
			[]string{"1 not_null column customer_id: NULL in a NOT NULL column", "2 not_null", "4 not_null"}},
		{"ref default is the final value, no old id",
			&commonv1.ColumnMapping{Target: "customer_id", Source: "cust", Type: tInt, Default: sp("0"), Ref: &commonv1.IdRef{Entity: "customer"}},
			[]string{i64("pos-a", "customer", "5"), "0", i64("pos-a", "customer", "7"), i64("pos-a", "customer", "8"), i64("pos-a", "customer", "9"), i64("pos-a", "customer", "10"), "NULL"},
			[]string{"5", "NULL", "7", "8", "9", "10", "NULL"},
			nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &transformerv1.TransformConfig{System: "pos-a", Columns: []*commonv1.ColumnMapping{tt.m}}
			out, err := Apply(cfg, in)
			if err != nil {
				t.Fatal(err)
			}
			if err := batch.Check(out); err != nil {
				t.Fatal(err)
			}
			if len(out.Columns) != 2 || out.Columns[0].Name != tt.m.Target || out.Columns[1].Name != "__old__"+tt.m.Target || out.Columns[1].Type != tText {
				t.Fatalf("columns = %v", out.Columns)
			}
			if got := colTexts(out.Columns[0], 7); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("values = %q, want %q", got, tt.want)
			}
			if got := colTexts(out.Columns[1], 7); !reflect.DeepEqual(got, tt.old) {
				t.Errorf("old ids = %q, want %q", got, tt.old)
			}
			var got []string
			for _, r := range out.Rejects[1:] {
				if r.Stage != "transform" || r.Column != tt.m.Target {
					t.Errorf("reject %+v: wrong stage or column", r)
				}
				got = append(got, strconv.Itoa(int(r.Row))+" "+r.Rule+" "+r.Reason)
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

// TestApplyIDColumnsLayout: mapped columns keep their order, the "__old__"
// columns follow in mapping order; a row rejected by any column (here a
// cast) or filtered has no old id, and a filtered row gets no new_id reject.
func TestApplyIDColumnsLayout(t *testing.T) {
	in := &commonv1.Batch{NumRows: 4, Columns: []*commonv1.Column{
		textCol("id", sp("1"), sp("2"), nil, sp("4")),
		textCol("cust", sp("c1"), sp("c2"), sp("c3"), sp("c4")),
		textCol("qty", sp("1"), sp("x"), sp("3"), sp("4")),
		textCol("kind", sp("sale"), sp("sale"), sp("test"), sp("sale")),
	}}
	cfg := &transformerv1.TransformConfig{
		System: "pos-a",
		Columns: []*commonv1.ColumnMapping{
			{Target: "customer_id", Source: "cust", Type: tInt, Ref: &commonv1.IdRef{Entity: "customer"}},
			{Target: "qty", Source: "qty", Type: tInt},
			{Target: "id", Source: "id", Type: tInt, NewId: &commonv1.NewId{Entity: "order"}},
		},
		Filters: []*commonv1.RowFilter{{When: `kind == "test"`, Reason: "test orders"}},
	}
	out, err := Apply(cfg, in)
	if err != nil {
		t.Fatal(err)
	}
	if err := batch.Check(out); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range out.Columns {
		names = append(names, c.Name)
	}
	if want := []string{"customer_id", "qty", "id", "__old__customer_id", "__old__id"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("columns = %q, want %q", names, want)
	}
	want := [][]string{
		{i64("pos-a", "customer", "c1"), i64("pos-a", "customer", "c2"), "NULL", i64("pos-a", "customer", "c4")},
		{"1", "NULL", "NULL", "4"},
		{i64("pos-a", "order", "1"), i64("pos-a", "order", "2"), "NULL", i64("pos-a", "order", "4")},
		{"c1", "NULL", "NULL", "c4"},
		{"1", "NULL", "NULL", "4"},
	}
	for k, w := range want {
		if got := colTexts(out.Columns[k], 4); !reflect.DeepEqual(got, w) {
			t.Errorf("%s = %q, want %q", names[k], got, w)
		}
	}
	// Row 2 has no old id but is filtered: no new_id reject.
	if got := rejectTexts(out.Rejects); len(got) != 2 || !strings.HasPrefix(got[0], "1 transform cast qty: column qty: cannot cast") ||
		got[1] != "2 filter filter : test orders" {
		t.Errorf("rejects = %q", got)
	}
}

// TestIDConfigErrors: new_id and ref settings that cannot work are refused
// by Apply and by CheckMapping, naming the field and the target column.
func TestIDConfigErrors(t *testing.T) {
	source := []*commonv1.SourceColumn{{Name: "id"}, {Name: "flag", Type: tBool}}
	in := &commonv1.Batch{NumRows: 1, Columns: []*commonv1.Column{textCol("id", sp("1")), boolCol("flag", bp(true))}}
	nid := &commonv1.NewId{Entity: "order"}
	tests := []struct {
		name string
		m    *commonv1.ColumnMapping
		want string // after the prefix
	}{
		{"bool target", &commonv1.ColumnMapping{Target: "f", Source: "flag", Type: tBool, NewId: nid},
			`columns[1].new_id: target column "f": type boolean cannot hold an identifier`},
		{"timestamp ref", &commonv1.ColumnMapping{Target: "f", Source: "id", Type: tTS, Ref: &commonv1.IdRef{Entity: "x"}},
			`columns[1].ref: target column "f": type timestamptz cannot hold an identifier`},
		{"both", &commonv1.ColumnMapping{Target: "f", Source: "id", Type: tInt, NewId: nid, Ref: &commonv1.IdRef{Entity: "x"}},
			`columns[1].ref: target column "f": both new_id and ref are set; use one`},
		{"empty entity", &commonv1.ColumnMapping{Target: "f", Source: "id", Type: tInt, NewId: &commonv1.NewId{}},
			`columns[1].new_id.entity: target column "f": must not be empty`},
		{"empty ref entity", &commonv1.ColumnMapping{Target: "f", Source: "id", Type: tInt, Ref: &commonv1.IdRef{System: "crm"}},
			`columns[1].ref.entity: target column "f": must not be empty`},
		{"expr", &commonv1.ColumnMapping{Target: "f", Type: tInt, Expr: `id + "x"`, NewId: nid},
			`columns[1].new_id: target column "f": needs a source column holding the old id (not expr)`},
		{"no source", &commonv1.ColumnMapping{Target: "f", Type: tInt, Default: sp("1"), Ref: &commonv1.IdRef{Entity: "x"}},
			`columns[1].ref: target column "f": needs a source column`},
		{"default", &commonv1.ColumnMapping{Target: "f", Source: "id", Type: tInt, Default: sp("1"), NewId: nid},
			`columns[1].new_id: target column "f": a default cannot stand in for the old id`},
		{"numeric too small", &commonv1.ColumnMapping{Target: "f", Source: "id", Type: tNum, Precision: 20, Scale: 2, NewId: nid},
			`columns[1].new_id: target column "f": numeric(20,2) cannot hold a 19-digit identifier`},
		{"varchar too short", &commonv1.ColumnMapping{Target: "f", Source: "id", Type: tText, MaxLength: 32, NewId: nid},
			`columns[1].new_id: target column "f": varchar(32) cannot hold a 36-character UUID`},
		{"old-id column name taken", &commonv1.ColumnMapping{Target: "__old__id", Source: "id", Type: tText},
			`columns[0].target: target column "id": the old-id column "__old__id" is also a mapped target`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cols := []*commonv1.ColumnMapping{{Target: "id", Source: "id", Type: tInt, NewId: nid}, tt.m}
			_, err := Apply(&transformerv1.TransformConfig{Columns: cols}, in)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) || !errors.Is(err, ErrInvalidMapping) {
				t.Errorf("Apply: err = %v, want prefix %q", err, tt.want)
			}
			err = CheckMapping(&transformerv1.CheckMappingRequest{Columns: cols, SourceColumns: source, FieldPrefix: "tables[2]"})
			if err == nil || !strings.HasPrefix(err.Error(), "tables[2]."+tt.want) || !errors.Is(err, ErrInvalidMapping) {
				t.Errorf("CheckMapping: err = %v, want prefix %q", err, "tables[2]."+tt.want)
			}
		})
	}
	valid := []*commonv1.ColumnMapping{
		{Target: "id", Source: "id", Type: tNum, Precision: 19, NewId: nid},
		{Target: "uid", Source: "id", Type: tText, MaxLength: 36, Ref: &commonv1.IdRef{Entity: "o", System: "crm"}},
		{Target: "flag", Source: "flag", Type: tBool},
	}
	if err := CheckMapping(&transformerv1.CheckMappingRequest{Columns: valid, SourceColumns: source}); err != nil {
		t.Errorf("valid: %v", err)
	}
}
