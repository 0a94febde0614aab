package transform

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	transformerv1 "github.com/cutover/cutover/gen/cutover/transformer/v1"
	"github.com/cutover/cutover/services/kit/batch"
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

// changeCol builds a column from text forms: "NULL" is NULL and "-" a value
// the change left out (Column.unchanged).
func changeCol(name string, typ commonv1.ColumnType, vals ...string) *commonv1.Column {
	b := batch.NewBuilder(name, typ, len(vals))
	for _, v := range vals {
		switch {
		case v == "NULL":
			b.AppendNull()
		case v == "-":
			b.AppendUnchanged()
		case typ == tInt:
			x, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				panic(err)
			}
			b.AppendInt(x)
		default:
			b.AppendString(v)
		}
	}
	return b.Column()
}

// changeTexts renders a column as changeCol reads it.
func changeTexts(c *commonv1.Column, n int) string {
	out := colTexts(c, n)
	for i := range out {
		if batch.IsUnchanged(c, i) {
			out[i] = "-"
		}
	}
	return strings.Join(out, "|")
}

// unchangedMsg matches the reason of an unchanged_value reject; its group is
// the source column named.
var unchangedMsg = regexp.MustCompile(`source column (\S+) is not in the change: its value was an unchanged TOASTed value, which PostgreSQL leaves out of the log; REPLICA IDENTITY FULL on the source table carries it$`)

// TestChangeBatchUnchanged: an upsert's unchanged value stays unchanged in a
// column mapped from it (renamed, cast or cleaned), with no default, no
// not_null reject and no cast; an expression, filter or id that reads it
// rejects the row (unchanged_value), one that does not is computed. Rows 1
// and 2 leave body and n out; row 3 is a delete.
func TestChangeBatchUnchanged(t *testing.T) {
	in := &commonv1.Batch{NumRows: 4, Ops: []byte("uuud"), Columns: []*commonv1.Column{
		changeCol("id", tInt, "1", "2", "3", "4"),
		changeCol("body", tText, "hi", "-", "x", "NULL"),
		changeCol("n", tInt, "5", "7", "-", "NULL"),
		changeCol("other", tText, "a", "b", "c", "NULL"),
	}}
	id := &commonv1.ColumnMapping{Target: "id", Source: "id", Type: tInt, NotNull: true}
	body := &commonv1.ColumnMapping{Target: "content", Source: "body", Type: tText}
	tests := []struct {
		name    string
		cols    []*commonv1.ColumnMapping
		filters []*commonv1.RowFilter
		want    map[string]string // output column: changeTexts; unlisted columns leave nothing out
		rejects []string          // "row stage rule column", plus the column named for unchanged_value
	}{
		{name: "rename and cast keep the bit",
			cols: []*commonv1.ColumnMapping{id, body,
				{Target: "n_text", Source: "n", Type: tText},
				{Target: "n_float", Source: "n", Type: tFloat},
				{Target: "n_num", Source: "n", Type: tNum, Precision: 10, Scale: 2},
			},
			want: map[string]string{"id": "1|2|3|4", "content": "hi|-|x|NULL", "n_text": "5|7|-|NULL", "n_float": "5|7|-|NULL", "n_num": "5.00|7.00|-|NULL"}},
		{name: "no cleaning, default or not_null",
			cols: []*commonv1.ColumnMapping{id,
				{Target: "content", Source: "body", Type: tText, NotNull: true, Default: sp("none"), Clean: []*commonv1.CleanStep{step("upper")}},
				{Target: "n", Source: "n", Type: tInt, NotNull: true},
			},
			// The delete row's NULLs are NULL too: neither default nor reject.
			want: map[string]string{"content": "HI|-|X|NULL", "n": "5|7|-|NULL"}},
		{name: "a cast that would fail is not tried",
			cols:    []*commonv1.ColumnMapping{{Target: "b", Source: "body", Type: tInt}},
			want:    map[string]string{"b": "NULL|-|NULL|NULL"},
			rejects: []string{"0 transform cast b", "2 transform cast b"}},
		{name: "expression reading the value rejects the row",
			cols:    []*commonv1.ColumnMapping{id, body, {Target: "shout", Expr: `body + "!"`, Type: tText}},
			want:    map[string]string{"content": "hi|-|x|NULL", "shout": "hi!|NULL|x!|NULL"},
			rejects: []string{"1 transform unchanged_value shout (body)"}},
		{name: "expression not reading it is computed",
			cols: []*commonv1.ColumnMapping{id, body, {Target: "shout", Expr: `other + "!"`, Type: tText}},
			want: map[string]string{"content": "hi|-|x|NULL", "shout": "a!|b!|c!|NULL"}},
		{name: "expression reading it through row by key",
			cols: []*commonv1.ColumnMapping{
				{Target: "twice", Expr: `row.n * 2`, Type: tInt},
				{Target: "shout", Expr: `row["other"] + "!"`, Type: tText},
			},
			want:    map[string]string{"twice": "10|14|NULL|NULL", "shout": "a!|b!|c!|NULL"},
			rejects: []string{"2 transform unchanged_value twice (n)"}},
		{name: "expression reading the whole row",
			cols:    []*commonv1.ColumnMapping{{Target: "width", Expr: `row.size()`, Type: tInt}},
			want:    map[string]string{"width": "4|NULL|NULL|NULL"},
			rejects: []string{"1 transform unchanged_value width (body)", "2 transform unchanged_value width (n)"}},
		{name: "id mapping from the value rejects the row",
			cols:    []*commonv1.ColumnMapping{id, {Target: "doc", Source: "body", Type: tText, Ref: &commonv1.IdRef{Entity: "doc"}}},
			want:    map[string]string{"__old__doc": "hi|NULL|x|NULL"},
			rejects: []string{"1 transform unchanged_value doc (body)"}},
		{name: "filter reading the value quarantines the row",
			cols:    []*commonv1.ColumnMapping{id, body, {Target: "n", Source: "n", Type: tInt}},
			filters: []*commonv1.RowFilter{{When: `body == "x"`, Reason: "x rows"}},
			// Row 1 is quarantined, row 2 filtered: neither loads, so
			// neither keeps a bit.
			want:    map[string]string{"id": "1|NULL|NULL|4", "content": "hi|NULL|NULL|NULL", "n": "5|NULL|NULL|NULL"},
			rejects: []string{"1 transform unchanged_value  (body)", "2 filter filter "}},
		{name: "filter not reading it",
			cols:    []*commonv1.ColumnMapping{id, body, {Target: "n", Source: "n", Type: tInt}},
			filters: []*commonv1.RowFilter{{When: `other == "a"`, Reason: "a rows"}},
			want:    map[string]string{"id": "NULL|2|3|4", "content": "NULL|-|x|NULL", "n": "NULL|7|-|NULL"},
			rejects: []string{"0 filter filter "}},
		{name: "constant column",
			cols: []*commonv1.ColumnMapping{id, body, {Target: "tag", Type: tText, Default: sp("t")}},
			want: map[string]string{"content": "hi|-|x|NULL", "tag": "t|t|t|NULL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Apply(&transformerv1.TransformConfig{Columns: tt.cols, Filters: tt.filters}, in)
			if err != nil {
				t.Fatal(err)
			}
			if err := batch.Check(out); err != nil {
				t.Fatal(err)
			}
			for _, c := range out.Columns {
				want, ok := tt.want[c.Name]
				if got := changeTexts(c, 4); ok && got != want {
					t.Errorf("column %s = %q, want %q", c.Name, got, want)
				}
				// The exact bits: those of the rows shown as "-", else none.
				var bits []byte
				for i, v := range strings.Split(want, "|") {
					if ok && v == "-" {
						bits = batch.SetBit(bits, i)
					}
				}
				if !bytes.Equal(c.Unchanged, bits) {
					t.Errorf("column %s unchanged = %08b, want %08b", c.Name, c.Unchanged, bits)
				}
			}
			var got []string
			for _, r := range out.Rejects {
				s := fmt.Sprintf("%d %s %s %s", r.Row, r.Stage, r.Rule, r.Column)
				if r.Rule == "unchanged_value" {
					if m := unchangedMsg.FindStringSubmatch(r.Reason); m != nil {
						s += " (" + m[1] + ")"
					} else {
						s += " reason " + r.Reason
					}
				}
				got = append(got, s)
			}
			if !slices.Equal(got, tt.rejects) {
				t.Errorf("rejects\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.rejects, "\n"))
			}
		})
	}
}

// TestChangeBatchUnchangedStream: the bits cross the Transform stream both
// ways.
func TestChangeBatchUnchangedStream(t *testing.T) {
	client := startServer(t)
	stream, err := client.Transform(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cfg := &transformerv1.TransformConfig{Columns: []*commonv1.ColumnMapping{
		{Target: "id", Source: "id", Type: tInt},
		{Target: "content", Source: "body", Type: tText, NotNull: true},
	}}
	in := &commonv1.Batch{NumRows: 3, Ops: []byte("uuu"), Columns: []*commonv1.Column{
		changeCol("id", tInt, "1", "2", "3"),
		changeCol("body", tText, "-", "b", "-"),
	}}
	for _, m := range []*transformerv1.TransformRequest{
		{Msg: &transformerv1.TransformRequest_Config{Config: cfg}},
		{Msg: &transformerv1.TransformRequest_Batch{Batch: in}},
	} {
		if err := stream.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	out := resp.GetBatch()
	if got := changeTexts(out.Columns[1], 3); got != "-|b|-" || !bytes.Equal(out.Columns[1].Unchanged, []byte{0b101}) || len(out.Rejects) != 0 {
		t.Errorf("content = %q, unchanged %08b, rejects %v", got, out.Columns[1].Unchanged, out.Rejects)
	}
}
