package follow

import (
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A key check's delete batch: the key columns as text (cast downstream
// like any value), the other columns NULL, every row a delete at the
// follower's position, each row's reference naming its key.
func TestDeleteBatch(t *testing.T) {
	src := &extractorv1.DescribeSourceResponse{PrimaryKey: []string{"region", "id"}, Columns: []*commonv1.SourceColumn{
		{Name: "id", Type: commonv1.ColumnType_COLUMN_TYPE_INT64},
		{Name: "region", Type: commonv1.ColumnType_COLUMN_TYPE_TEXT},
		{Name: "amount", Type: commonv1.ColumnType_COLUMN_TYPE_NUMERIC},
	}}
	keys := [][]string{{"eu", "7"}, {"us", "12"}}
	b := deleteBatch(src, keys, "pos-9")
	if err := batch.Check(b); err != nil {
		t.Fatal(err)
	}
	if b.GetNumRows() != 2 || string(b.GetOps()) != "dd" || b.GetPosition() != "pos-9" {
		t.Fatalf("batch: rows %d, ops %q, position %q", b.GetNumRows(), b.GetOps(), b.GetPosition())
	}
	for _, tc := range []struct {
		col  int
		name string
		want []string // "" = NULL
	}{
		{0, "id", []string{"7", "12"}},
		{1, "region", []string{"eu", "us"}},
		{2, "amount", []string{"", ""}},
	} {
		c := b.GetColumns()[tc.col]
		if c.GetName() != tc.name {
			t.Fatalf("column %d is %s, want %s", tc.col, c.GetName(), tc.name)
		}
		for i, w := range tc.want {
			got := ""
			if !batch.IsNull(c, i) {
				got = string(batch.AppendText(nil, c, i))
			}
			if got != w {
				t.Errorf("%s row %d = %q, want %q", tc.name, i, got, w)
			}
		}
	}
	for i, want := range []string{"region=eu,id=7", "region=us,id=12"} {
		if got := batch.SourceRef(b, i); got != want {
			t.Errorf("ref %d = %q, want %q", i, got, want)
		}
	}
}
