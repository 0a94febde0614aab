package transform

import (
	"errors"
	"reflect"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	transformerv1 "github.com/cutover/cutover/gen/cutover/transformer/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"google.golang.org/protobuf/proto"
)

func sp(s string) *string { return &s }

func textCol(name string, vals ...*string) *commonv1.Column {
	b := batch.NewBuilder(name, tText, len(vals))
	for _, v := range vals {
		if v == nil {
			b.AppendNull()
		} else {
			b.AppendString(*v)
		}
	}
	return b.Column()
}

// colTexts renders a column as text, "NULL" for NULL.
func colTexts(c *commonv1.Column, n int) []string {
	out := make([]string, n)
	for i := range out {
		s, ok := batch.Text(c, i)
		if !ok {
			s = "NULL"
		}
		out[i] = s
	}
	return out
}

func TestApplyMapsRowsInPlace(t *testing.T) {
	refs := textCol("", sp("line 2"), sp("line 3"), sp("line 4"), sp("line 5"))
	in := &commonv1.Batch{
		JobId: "job", PartitionId: "p1", Seq: 7, Table: "orders", Source: "orders.csv",
		FirstKey: "1", LastKey: "5", NumRows: 4, SourceRefs: refs,
		TraceContext: map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		Columns: []*commonv1.Column{
			textCol("id", sp("1"), sp("2"), sp("3"), sp("x")),
			textCol("qty", sp("5"), nil, sp(""), sp("1")),
			textCol("name", sp("a"), sp("b"), nil, sp("d")),
		},
		// Row 3 was rejected by the extractor: it must not be reported again.
		Rejects: []*commonv1.Reject{{Row: 3, Stage: "extract", Rule: "ragged_row", Reason: "too many fields"}},
	}
	before := proto.Clone(in)
	cfg := &transformerv1.TransformConfig{Columns: []*commonv1.ColumnMapping{
		{Target: "order_id", Source: "id", Type: tInt, NotNull: true},
		{Target: "quantity", Source: "qty", Type: tInt, Default: sp("1")},
		{Target: "title", Source: "name", Type: tText, NotNull: true},
		{Target: "origin", Type: tText, Default: sp("legacy")},
		{Target: "note", Source: "name", Type: tText},
	}}
	out, err := Apply(cfg, in)
	if err != nil {
		t.Fatal(err)
	}
	if err := batch.Check(out); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(in, before) {
		t.Error("Apply modified its input")
	}
	if out.JobId != "job" || out.PartitionId != "p1" || out.Seq != 7 || out.Table != "orders" || out.Source != "orders.csv" ||
		out.FirstKey != "1" || out.LastKey != "5" || out.NumRows != 4 || !proto.Equal(out.SourceRefs, refs) ||
		!reflect.DeepEqual(out.TraceContext, in.TraceContext) {
		t.Errorf("metadata not passed through: %+v", out)
	}
	want := map[string][]string{
		"order_id": {"1", "2", "3", "NULL"},
		"quantity": {"5", "1", "1", "NULL"}, // NULL and "" take the default
		"title":    {"a", "b", "NULL", "NULL"},
		"origin":   {"legacy", "legacy", "legacy", "NULL"},
		"note":     {"a", "b", "NULL", "NULL"},
	}
	for k, name := range []string{"order_id", "quantity", "title", "origin", "note"} {
		c := out.Columns[k]
		if c.Name != name || c.Type != cfg.Columns[k].Type {
			t.Errorf("column %d = %s %s, want %s", k, c.Name, c.Type, name)
		}
		if got := colTexts(c, 4); !reflect.DeepEqual(got, want[name]) {
			t.Errorf("column %s = %q, want %q", name, got, want[name])
		}
	}
	wantRejects := []*commonv1.Reject{
		in.Rejects[0],
		{Row: 2, Stage: "transform", Rule: "not_null", Column: "title", Reason: "column title: NULL in a NOT NULL column"},
	}
	if len(out.Rejects) != len(wantRejects) {
		t.Fatalf("rejects = %v, want %v", out.Rejects, wantRejects)
	}
	for i := range wantRejects {
		if !proto.Equal(out.Rejects[i], wantRejects[i]) {
			t.Errorf("reject %d = %v, want %v", i, out.Rejects[i], wantRejects[i])
		}
	}
}

func TestApplyRejectsSortedByRow(t *testing.T) {
	in := &commonv1.Batch{NumRows: 3, Columns: []*commonv1.Column{
		textCol("a", sp("x"), sp("1"), sp("y")),
		textCol("b", sp("1"), sp("z"), sp("w")),
	}}
	cfg := &transformerv1.TransformConfig{Columns: []*commonv1.ColumnMapping{
		{Target: "a", Source: "a", Type: tInt},
		{Target: "b", Source: "b", Type: tInt},
	}}
	out, err := Apply(cfg, in)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range out.Rejects {
		got = append(got, r.Column+"@"+string(rune('0'+r.Row)))
	}
	// Every failing value is reported, ordered by row.
	if want := []string{"a@0", "b@1", "a@2", "b@2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("rejects = %v, want %v", got, want)
	}
	if got := colTexts(out.Columns[1], 3); !reflect.DeepEqual(got, []string{"1", "NULL", "NULL"}) {
		t.Errorf("b = %v", got)
	}
}

func TestApplyErrors(t *testing.T) {
	good := &commonv1.Batch{NumRows: 1, Columns: []*commonv1.Column{textCol("id", sp("1"))}}
	tests := []struct {
		name string
		cfg  []*commonv1.ColumnMapping
		in   *commonv1.Batch
		want error
	}{
		{"unknown source", []*commonv1.ColumnMapping{{Target: "x", Source: "nope", Type: tInt}}, good, ErrUnknownSourceColumn},
		{"malformed", []*commonv1.ColumnMapping{{Target: "x", Source: "id", Type: tInt}},
			&commonv1.Batch{NumRows: 2, Columns: []*commonv1.Column{textCol("id", sp("1"))}}, batch.ErrMalformed},
		{"bad default", []*commonv1.ColumnMapping{{Target: "x", Source: "id", Type: tInt, Default: sp("one")}}, good, ErrInvalidMapping},
		{"no type", []*commonv1.ColumnMapping{{Target: "x", Source: "id"}}, good, ErrInvalidMapping},
	}
	for _, tt := range tests {
		_, err := Apply(&transformerv1.TransformConfig{Columns: tt.cfg}, tt.in)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestApplyEmptyBatch(t *testing.T) {
	cfg := &transformerv1.TransformConfig{Columns: []*commonv1.ColumnMapping{{Target: "x", Source: "id", Type: tNum}}}
	out, err := Apply(cfg, &commonv1.Batch{Columns: []*commonv1.Column{textCol("id")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := batch.Check(out); err != nil || out.NumRows != 0 || len(out.Columns) != 1 {
		t.Errorf("empty batch: %v %v", out, err)
	}
}

// TestApplyTextSplitRune: two invalid halves whose concatenation is valid
// UTF-8 must still be refused one by one.
func TestApplyTextSplitRune(t *testing.T) {
	in := &commonv1.Batch{NumRows: 3, Columns: []*commonv1.Column{textCol("v", sp("a\xc3"), sp("\xa9b"), sp("é"))}}
	cfg := &transformerv1.TransformConfig{Columns: []*commonv1.ColumnMapping{{Target: "t", Source: "v", Type: tText}}}
	out, err := Apply(cfg, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Rejects) != 2 || out.Rejects[0].Row != 0 || out.Rejects[1].Row != 1 {
		t.Fatalf("rejects = %v", out.Rejects)
	}
	if got := colTexts(out.Columns[0], 3); !reflect.DeepEqual(got, []string{"NULL", "NULL", "é"}) {
		t.Errorf("t = %q", got)
	}
}
