package transform

import (
	"strconv"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	transformerv1 "github.com/cutover/cutover/gen/cutover/transformer/v1"
)

// TestChangeBatchPassThrough: ops and position go through; a delete row
// keeps its key and gets NULL elsewhere, with no not_null reject, no
// default, no filter and no expression evaluated; an upsert row is
// transformed as any row.
func TestChangeBatchPassThrough(t *testing.T) {
	in := &commonv1.Batch{NumRows: 3, Ops: []byte("udu"), Position: `["w","3"]`,
		SourceRefs: textCol("", sp("id=1"), sp("id=2"), sp("id=3")),
		Columns: []*commonv1.Column{
			textCol("id", sp("1"), sp("2"), sp("3")),
			textCol("name", sp("a"), nil, nil),
		}}
	cfg := &transformerv1.TransformConfig{
		Columns: []*commonv1.ColumnMapping{
			{Target: "id", Source: "id", Type: tInt, NotNull: true},
			{Target: "name", Source: "name", Type: tText, NotNull: true},
			{Target: "tag", Type: tText, Default: sp("x")},
			{Target: "upper", Expr: `name + "!"`, Type: tText},
		},
		Filters: []*commonv1.RowFilter{{When: "name == 'a'", Reason: "a rows"}},
	}
	out, err := Apply(cfg, in)
	if err != nil {
		t.Fatal(err)
	}
	if string(out.Ops) != "udu" || out.Position != `["w","3"]` {
		t.Fatalf("ops %q position %q", out.Ops, out.Position)
	}
	var rej []string
	for _, r := range out.Rejects {
		rej = append(rej, strings.Join([]string{strconv.Itoa(int(r.Row)), r.Rule, r.Column}, ":"))
	}
	// Row 0 is filtered, row 2 (an upsert without a name) is refused; the
	// delete row 1 passes with its key.
	if got := strings.Join(rej, " "); !strings.Contains(got, "0:filter:") || !strings.Contains(got, "2:not_null:name") || strings.Contains(got, "1:") {
		t.Fatalf("rejects %s", got)
	}
	if got := colTexts(out.Columns[0], 3); got[1] != "2" {
		t.Fatalf("delete row key %v", got)
	}
	for k := 1; k < 4; k++ {
		if got := colTexts(out.Columns[k], 3); got[1] != "NULL" {
			t.Fatalf("delete row column %s = %v", out.Columns[k].Name, got)
		}
	}
}
