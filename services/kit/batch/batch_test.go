package batch

import (
	"errors"
	"slices"
	"strings"
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

func TestRejectedLeavesWarnedRowsOut(t *testing.T) {
	rej := func(row int32, warning bool) *commonv1.Reject {
		return &commonv1.Reject{Row: row, Stage: "validate", Rule: "r", Warning: warning}
	}
	tests := []struct {
		name           string
		rejects        []*commonv1.Reject
		rejected, warn []int
	}{
		{"none", nil, nil, nil},
		{"errors only", []*commonv1.Reject{rej(0, false), rej(2, false), rej(2, false)}, []int{0, 2}, nil},
		{"warnings only", []*commonv1.Reject{rej(1, true), rej(1, true), rej(9, true)}, nil, []int{1, 9}},
		{"error and warning on one row", []*commonv1.Reject{rej(3, true), rej(3, false)}, []int{3}, []int{3}},
		{"mixed rows", []*commonv1.Reject{rej(0, true), rej(1, false), rej(8, true), rej(15, false)}, []int{1, 15}, []int{0, 8}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &commonv1.Batch{NumRows: 16, Rejects: tt.rejects}
			for _, c := range []struct {
				what string
				bm   []byte
				want []int
			}{{"Rejected", Rejected(b), tt.rejected}, {"Warned", Warned(b), tt.warn}} {
				var got []int
				for i := 0; i < 16; i++ {
					if Bit(c.bm, i) {
						got = append(got, i)
					}
				}
				if !slices.Equal(got, c.want) {
					t.Errorf("%s rows = %v, want %v", c.what, got, c.want)
				}
				if n := CountBits(c.bm); n != len(c.want) {
					t.Errorf("%s CountBits = %d, want %d", c.what, n, len(c.want))
				}
			}
		})
	}
}

func TestRowTextCutsOnRuneBoundary(t *testing.T) {
	b := NewBuilder("name", commonv1.ColumnType_COLUMN_TYPE_TEXT, 1)
	b.AppendString(strings.Repeat("长", 70)) // 210 bytes
	got := RowText(&commonv1.Batch{NumRows: 1, Columns: []*commonv1.Column{b.Column()}}, 0)
	if want := `name="` + strings.Repeat("长", 66) + `…"`; got != want {
		t.Errorf("RowText = %s, want %s", got, want)
	}
}

func TestUnchangedRead(t *testing.T) {
	a, b, c := NewBuilder("a", commonv1.ColumnType_COLUMN_TYPE_TEXT, 3), NewBuilder("b", commonv1.ColumnType_COLUMN_TYPE_INT64, 3), NewBuilder("c", commonv1.ColumnType_COLUMN_TYPE_TEXT, 3)
	a.AppendString("x")
	a.AppendUnchanged()
	a.AppendString("z")
	b.AppendInt(1)
	b.AppendInt(2)
	b.AppendUnchanged()
	for range 3 {
		c.AppendNull()
	}
	bt := &commonv1.Batch{NumRows: 3, Columns: []*commonv1.Column{a.Column(), b.Column(), c.Column()}}
	if err := Check(bt); err != nil {
		t.Fatal(err)
	}
	all := func(string) bool { return true }
	for _, tc := range []struct {
		reads func(string) bool
		row   int
		want  string
	}{
		{all, 0, ""}, {all, 1, "a"}, {all, 2, "b"},
		{func(n string) bool { return n == "b" }, 1, ""},
		{func(n string) bool { return n == "c" }, 2, ""},
	} {
		got := ""
		if col := FirstUnchanged(UnchangedRead(bt, tc.reads), tc.row); col != nil {
			got = col.GetName()
		}
		if got != tc.want {
			t.Errorf("row %d: %q, want %q", tc.row, got, tc.want)
		}
	}
	if IsNull(a.Column(), 1) != true || !IsUnchanged(a.Column(), 1) || IsUnchanged(c.Column(), 1) {
		t.Error("an unchanged slot is NULL and marked; a NULL is not unchanged")
	}
	a.Column().Nulls = nil
	if err := Check(bt); err == nil {
		t.Error("Check passes an unchanged slot holding a value")
	}
}
