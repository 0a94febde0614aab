package batch

import (
	"errors"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"google.golang.org/protobuf/proto"
)

func TestBuilderRoundTrip(t *testing.T) {
	ids := NewBuilder("id", commonv1.ColumnType_COLUMN_TYPE_INT64, 3)
	names := NewBuilder("name", commonv1.ColumnType_COLUMN_TYPE_TEXT, 3)
	ok := NewBuilder("ok", commonv1.ColumnType_COLUMN_TYPE_BOOL, 3)
	ts := NewBuilder("at", commonv1.ColumnType_COLUMN_TYPE_TIMESTAMPTZ, 3)
	ids.AppendInt(1)
	ids.AppendNull()
	ids.AppendInt(-3)
	names.AppendString("a")
	names.AppendString("")
	names.AppendNull()
	ok.AppendBool(true)
	ok.AppendBool(false)
	ok.AppendNull()
	ts.AppendInt(0)
	ts.AppendInt(1_500_000)
	ts.AppendNull()
	b := &commonv1.Batch{NumRows: 3, Columns: []*commonv1.Column{ids.Column(), names.Column(), ok.Column(), ts.Column()}}
	wire, err := proto.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	var got commonv1.Batch
	if err := proto.Unmarshal(wire, &got); err != nil {
		t.Fatal(err)
	}
	if err := Check(&got); err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"1", "NULL", "-3"},
		{"a", "", "NULL"},
		{"true", "false", "NULL"},
		{"1970-01-01T00:00:00Z", "1970-01-01T00:00:01.5Z", "NULL"},
	}
	for c, col := range got.Columns {
		for i := 0; i < 3; i++ {
			v, ok := Text(col, i)
			if !ok {
				v = "NULL"
			}
			if v != want[c][i] {
				t.Errorf("column %s row %d = %q, want %q", col.Name, i, v, want[c][i])
			}
		}
	}
	if got := RowText(&got, 1); got != `id=NULL, name="", ok="false", at="1970-01-01T00:00:01.5Z"` {
		t.Errorf("RowText = %s", got)
	}
}

func TestCheckRejectsMalformed(t *testing.T) {
	tests := []struct {
		name string
		b    *commonv1.Batch
	}{
		{"negative rows", &commonv1.Batch{NumRows: -1}},
		{"short ints", &commonv1.Batch{NumRows: 2, Columns: []*commonv1.Column{{Name: "a", Type: commonv1.ColumnType_COLUMN_TYPE_INT64, Ints: []int64{1}}}}},
		{"offsets count", &commonv1.Batch{NumRows: 2, Columns: []*commonv1.Column{{Name: "a", Type: commonv1.ColumnType_COLUMN_TYPE_TEXT, Offsets: []uint32{0, 1}, Data: []byte("x")}}}},
		{"offsets past data", &commonv1.Batch{NumRows: 1, Columns: []*commonv1.Column{{Name: "a", Type: commonv1.ColumnType_COLUMN_TYPE_TEXT, Offsets: []uint32{0, 5}, Data: []byte("x")}}}},
		{"offsets decrease", &commonv1.Batch{NumRows: 2, Columns: []*commonv1.Column{{Name: "a", Type: commonv1.ColumnType_COLUMN_TYPE_TEXT, Offsets: []uint32{0, 2, 1}, Data: []byte("x")}}}},
		{"reject row out of range", &commonv1.Batch{NumRows: 1, Rejects: []*commonv1.Reject{{Row: 1}}}},
		{"long null bitmap", &commonv1.Batch{NumRows: 1, Columns: []*commonv1.Column{{Name: "a", Type: commonv1.ColumnType_COLUMN_TYPE_INT64, Ints: []int64{1}, Nulls: []byte{0, 1}}}}},
	}
	for _, tt := range tests {
		if err := Check(tt.b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Check = %v, want ErrMalformed", tt.name, err)
		}
	}
}

// FuzzCheck feeds arbitrary wire bytes: Check must either refuse the batch
// or make every value readable without a panic.
func FuzzCheck(f *testing.F) {
	seed, _ := proto.Marshal(&commonv1.Batch{NumRows: 1, Columns: []*commonv1.Column{{Name: "a", Type: commonv1.ColumnType_COLUMN_TYPE_TEXT, Offsets: []uint32{0, 1}, Data: []byte("x")}}})
	f.Add(seed)
	f.Fuzz(func(t *testing.T, wire []byte) {
		var b commonv1.Batch
		if proto.Unmarshal(wire, &b) != nil {
			return
		}
		if b.NumRows > 1<<16 || Check(&b) != nil {
			return
		}
		for i := 0; i < int(b.NumRows); i++ {
			_ = RowText(&b, i)
			_ = SourceRef(&b, i)
		}
	})
}
