package batch

import (
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
)

func TestSelectKeepsRowsRefsAndRejects(t *testing.T) {
	ints := NewBuilder("i", commonv1.ColumnType_COLUMN_TYPE_INT64, 4)
	texts := NewBuilder("s", commonv1.ColumnType_COLUMN_TYPE_TEXT, 4)
	bools := NewBuilder("b", commonv1.ColumnType_COLUMN_TYPE_BOOL, 4)
	refs := NewBuilder("ref", commonv1.ColumnType_COLUMN_TYPE_TEXT, 4)
	for i, s := range []string{"a", "", "ccc", "d"} {
		ints.AppendInt(int64(i * 10))
		if i == 1 {
			texts.AppendNull()
		} else {
			texts.AppendString(s)
		}
		bools.AppendBool(i%2 == 1)
		refs.AppendString("line " + string(rune('1'+i)))
	}
	b := &commonv1.Batch{Seq: 3, LastKey: "k", NumRows: 4, Columns: []*commonv1.Column{ints.Column(), texts.Column(), bools.Column()},
		SourceRefs: refs.Column(), Rejects: []*commonv1.Reject{{Row: 0, Rule: "x"}, {Row: 3, Rule: "y"}}}
	got := Select(b, []int{1, 3})
	if err := Check(got); err != nil {
		t.Fatal(err)
	}
	if got.NumRows != 2 || got.Seq != 3 || got.LastKey != "k" {
		t.Fatalf("header: %v", got)
	}
	if got.Columns[0].Ints[0] != 10 || got.Columns[0].Ints[1] != 30 {
		t.Errorf("ints: %v", got.Columns[0].Ints)
	}
	if !IsNull(got.Columns[1], 0) || string(Bytes(got.Columns[1], 1)) != "d" {
		t.Errorf("texts: %v", got.Columns[1])
	}
	if !Bit(got.Columns[2].Bools, 0) || !Bit(got.Columns[2].Bools, 1) {
		t.Errorf("bools: %v", got.Columns[2].Bools)
	}
	if SourceRef(got, 0) != "line 2" || SourceRef(got, 1) != "line 4" {
		t.Errorf("refs: %q %q", SourceRef(got, 0), SourceRef(got, 1))
	}
	if len(got.Rejects) != 1 || got.Rejects[0].Row != 1 || got.Rejects[0].Rule != "y" {
		t.Errorf("rejects: %v", got.Rejects)
	}
}
