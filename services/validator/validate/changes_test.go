package validate

import (
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
)

// TestChangeBatchSkipsDeleteRows: rules do not judge a delete row (only its
// key matters), ops and position go through.
func TestChangeBatchSkipsDeleteRows(t *testing.T) {
	in := &commonv1.Batch{NumRows: 2, Ops: []byte("ud"), Position: "p",
		Columns: []*commonv1.Column{bytesCol("name", commonv1.ColumnType_COLUMN_TYPE_TEXT, nil, nil)}}
	out, err := Apply([]*commonv1.Rule{notNull("name")}, in)
	if err != nil {
		t.Fatal(err)
	}
	if string(out.Ops) != "ud" || out.Position != "p" {
		t.Fatalf("ops %q position %q", out.Ops, out.Position)
	}
	if len(out.Rejects) != 1 || out.Rejects[0].Row != 0 {
		t.Fatalf("rejects %v, want only row 0", out.Rejects)
	}
}
