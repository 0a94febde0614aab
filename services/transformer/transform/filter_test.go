package transform

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	transformerv1 "github.com/cutover/cutover/gen/cutover/transformer/v1"
	"github.com/cutover/cutover/services/kit/batch"
)

func boolCol(name string, vals ...*bool) *commonv1.Column {
	b := batch.NewBuilder(name, tBool, len(vals))
	for _, v := range vals {
		if v == nil {
			b.AppendNull()
		} else {
			b.AppendBool(*v)
		}
	}
	return b.Column()
}

func bp(v bool) *bool { return &v }

// rejectTexts renders rejects as "row stage rule column: reason".
func rejectTexts(rs []*commonv1.Reject) []string {
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%d %s %s %s: %s", r.Row, r.Stage, r.Rule, r.Column, r.Reason))
	}
	return out
}

// TestApplyFilters runs filters over a 5-row batch. Row 4 was rejected
// upstream: no filter sees it. NULL follows CEL: a NULL column is the value
// null, so `status == "closed"` is false for it (equality across types is
// false), while ordering or arithmetic on null (`amount > 100`) and a bare
// null result (`vip`) are evaluation errors, quarantined as filter_error.
// A null-safe filter says so: `amount != null && amount > 100`.
func TestApplyFilters(t *testing.T) {
	in := &commonv1.Batch{
		NumRows: 5,
		Columns: []*commonv1.Column{
			textCol("id", sp("1"), sp("2"), sp("3"), sp("4"), sp("5")),
			textCol("status", sp("active"), sp("closed"), nil, sp("test"), sp("closed")),
			intCol("amount", ip(10), ip(500), nil, ip(200), ip(1)),
			boolCol("vip", bp(true), bp(false), nil, bp(true), bp(true)),
			textCol("qty", sp("1"), sp("x"), sp("3"), sp("4"), sp("5")), // row 1 does not cast
		},
		Rejects: []*commonv1.Reject{{Row: 4, Stage: "extract", Rule: "ragged_row", Reason: "x"}},
	}
	cols := []*commonv1.ColumnMapping{
		{Target: "id", Source: "id", Type: tInt},
		{Target: "qty", Source: "qty", Type: tInt, NotNull: true},
	}
	tests := []struct {
		name    string
		filters []*commonv1.RowFilter
		rejects []string // new rejects, after the upstream one
		ids     []string // the id column
	}{
		{"none", nil,
			[]string{"1 transform cast qty: column qty: cannot cast"},
			[]string{"1", "2", "3", "4", "NULL"}},
		{"equality, NULL is not equal; filtered row is not also cast-rejected",
			[]*commonv1.RowFilter{{When: `status == "closed"`, Reason: "closed accounts"}},
			[]string{"1 filter filter : closed accounts"},
			[]string{"1", "NULL", "3", "4", "NULL"}},
		{"empty reason names the condition",
			[]*commonv1.RowFilter{{When: `row["status"] == "test"`}},
			[]string{"1 transform cast qty: column qty: cannot cast", `3 filter filter : filter: row["status"] == "test"`},
			[]string{"1", "2", "3", "NULL", "NULL"}},
		{"ordering on NULL is an error",
			[]*commonv1.RowFilter{{When: `amount > 100`, Reason: "big"}},
			[]string{"1 filter filter : big", "2 transform filter_error : filters[0]: no such overload", "3 filter filter : big"},
			[]string{"1", "NULL", "NULL", "NULL", "NULL"}},
		{"null-safe ordering",
			[]*commonv1.RowFilter{{When: `amount != null && amount > 100`, Reason: "big"}},
			[]string{"1 filter filter : big", "3 filter filter : big"},
			[]string{"1", "NULL", "3", "NULL", "NULL"}},
		{"null result is not a bool",
			[]*commonv1.RowFilter{{When: `vip`, Reason: "vip"}},
			[]string{"0 filter filter : vip", "1 transform cast qty: column qty: cannot cast", "2 transform filter_error : filters[0]: gives null_type, must give bool", "3 filter filter : vip"},
			[]string{"NULL", "2", "NULL", "NULL", "NULL"}},
		{"dyn non-bool result",
			[]*commonv1.RowFilter{{When: `row.status`}},
			[]string{"0 transform filter_error : filters[0]: gives string, must give bool", "1 transform filter_error : filters[0]: gives string, must give bool",
				"2 transform filter_error : filters[0]: gives null_type, must give bool", "3 transform filter_error : filters[0]: gives string, must give bool"},
			[]string{"NULL", "NULL", "NULL", "NULL", "NULL"}},
		{"first filter that holds decides; an error stops the row",
			[]*commonv1.RowFilter{
				{When: `status == "closed" || status == "test"`, Reason: "first"},
				{When: `amount > 0`, Reason: "second"},
				{When: `true`, Reason: "third"},
			},
			[]string{"0 filter filter : second", "1 filter filter : first", "2 transform filter_error : filters[1]: no such overload", "3 filter filter : first"},
			[]string{"NULL", "NULL", "NULL", "NULL", "NULL"}},
		{"false everywhere",
			[]*commonv1.RowFilter{{When: `false`}, {When: `id == "99"`}},
			[]string{"1 transform cast qty: column qty: cannot cast"},
			[]string{"1", "2", "3", "4", "NULL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Apply(&transformerv1.TransformConfig{Columns: cols, Filters: tt.filters}, in)
			if err != nil {
				t.Fatal(err)
			}
			if err := batch.Check(out); err != nil {
				t.Fatal(err)
			}
			if len(out.Columns) != len(cols) {
				t.Fatalf("%d columns, want %d", len(out.Columns), len(cols))
			}
			if got := colTexts(out.Columns[0], 5); !reflect.DeepEqual(got, tt.ids) {
				t.Errorf("id = %q, want %q", got, tt.ids)
			}
			if out.Rejects[0] != in.Rejects[0] {
				t.Errorf("upstream reject lost: %v", out.Rejects[0])
			}
			got := rejectTexts(out.Rejects[1:])
			if len(got) != len(tt.rejects) {
				t.Fatalf("rejects = %q, want %q", got, tt.rejects)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.rejects[i]) {
					t.Errorf("reject %d = %q, want prefix %q", i, got[i], tt.rejects[i])
				}
			}
			// A row is never reported twice: filtered and quarantined exclude
			// each other, and a filtered row gets no column reject.
			seen := map[int32]*commonv1.Reject{}
			for _, r := range out.Rejects {
				if prev, ok := seen[r.Row]; ok && (prev.Stage != "transform" || strings.HasPrefix(prev.Rule, "filter") || strings.HasPrefix(r.Rule, "filter")) {
					t.Errorf("row %d reported twice: %v", r.Row, out.Rejects)
				}
				seen[r.Row] = r
				if r.Rule == "filter_error" && r.Raw == "" {
					t.Errorf("filter_error without the row's raw text: %v", r)
				}
			}
		})
	}
}

// TestFilterSkipsExprColumns: an expression column does not evaluate (and so
// cannot reject) a filtered row.
func TestFilterSkipsExprColumns(t *testing.T) {
	in := &commonv1.Batch{NumRows: 2, Columns: []*commonv1.Column{intCol("a", ip(0), ip(2)), intCol("b", ip(4), ip(4))}}
	out, err := Apply(&transformerv1.TransformConfig{
		Columns: []*commonv1.ColumnMapping{{Target: "q", Type: tInt, Expr: `b / a`}},
		Filters: []*commonv1.RowFilter{{When: `a == 0`, Reason: "no divisor"}},
	}, in)
	if err != nil {
		t.Fatal(err)
	}
	if got := rejectTexts(out.Rejects); !reflect.DeepEqual(got, []string{"0 filter filter : no divisor"}) {
		t.Errorf("rejects = %q", got)
	}
	if got := colTexts(out.Columns[0], 2); !reflect.DeepEqual(got, []string{"NULL", "2"}) {
		t.Errorf("q = %q", got)
	}
}

// TestFilterConfigErrors: a filter that cannot work is refused before any
// row, by Apply (stream config) and by CheckMapping, naming filters[j].when.
func TestFilterConfigErrors(t *testing.T) {
	source := []*commonv1.SourceColumn{{Name: "id"}, {Name: "status"}, {Name: "amount", Type: tInt}}
	in := &commonv1.Batch{NumRows: 1, Columns: []*commonv1.Column{textCol("id", sp("1")), textCol("status", sp("a")), intCol("amount", ip(1))}}
	cols := []*commonv1.ColumnMapping{{Target: "id", Source: "id", Type: tInt}}
	tests := []struct {
		name  string
		when  string
		apply string // error of Apply, prefix
		check string // error of CheckMapping with prefix tables[1], prefix
		kind  error
	}{
		{"unknown column", `stauts == "x"`,
			`filters[1].when: unknown source column "stauts": batch has id, status, amount`,
			`tables[1].filters[1].when: unknown source column "stauts"`, ErrUnknownSourceColumn},
		{"unknown row key", `row["nope"] == 1`, "",
			`tables[1].filters[1].when: unknown source column "nope" in row["nope"]`, ErrUnknownSourceColumn},
		{"not bool", `amount + 1`,
			`filters[1].when: gives int, must give bool`,
			`tables[1].filters[1].when: gives int, must give bool`, ErrInvalidMapping},
		{"string constant", `"yes"`,
			`filters[1].when: gives string, must give bool`,
			`tables[1].filters[1].when: gives string, must give bool`, ErrInvalidMapping},
		{"syntax", `status ==`,
			`filters[1].when: ERROR: <input>:1:10: Syntax error`,
			`tables[1].filters[1].when: ERROR: <input>:1:10: Syntax error`, ErrInvalidMapping},
		{"empty", ` `,
			`filters[1].when: must not be empty`,
			`tables[1].filters[1].when: must not be empty`, ErrInvalidMapping},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			filters := []*commonv1.RowFilter{{When: `true`}, {When: tt.when}}
			_, err := Apply(&transformerv1.TransformConfig{Columns: cols, Filters: filters}, in)
			if tt.apply == "" {
				// Not known before the row: a missing key is a per-row error.
				if err != nil {
					t.Errorf("Apply: %v", err)
				}
			} else if err == nil || !strings.HasPrefix(err.Error(), tt.apply) || !errors.Is(err, tt.kind) {
				t.Errorf("Apply: err = %v, want prefix %q (%v)", err, tt.apply, tt.kind)
			}
			err = CheckMapping(&transformerv1.CheckMappingRequest{Columns: cols, SourceColumns: source, FieldPrefix: "tables[1]", Filters: filters})
			if err == nil || !strings.HasPrefix(err.Error(), tt.check) || !errors.Is(err, tt.kind) {
				t.Errorf("CheckMapping: err = %v, want prefix %q (%v)", err, tt.check, tt.kind)
			}
		})
	}
	ok := []*commonv1.RowFilter{{When: `status == "x" || row.amount > 3`}, {When: `amount`}} // dyn: checked per row
	if err := CheckMapping(&transformerv1.CheckMappingRequest{Columns: cols, SourceColumns: source, FieldPrefix: "t", Filters: ok}); err != nil {
		t.Errorf("valid filters: %v", err)
	}
}
