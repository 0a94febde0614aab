package extract

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

// FuzzCSVDifferential holds the scanner to the encoding/csv reader it
// replaced (csv_ref_test.go): for any bytes, delimiter, header mode, null
// marker and batch size, opening the file, estimating its rows and reading
// it batch by batch, from the start or from an arbitrary cursor, must give
// identical results: rows, values, NULLs, rejects, cursors and source refs.
func FuzzCSVDifferential(f *testing.F) {
	f.Add([]byte("id,name\n1,a\n2,b\n"), uint8(0), false, uint8(2), uint8(0), uint16(0))
	f.Add([]byte("\xEF\xBB\xBFa;b\r\n1;\"x\r\ny\"\r\n\n2\n"), uint8(1), false, uint8(1), uint8(1), uint16(7))
	f.Add([]byte("1,\"unterminated\n2,b"), uint8(0), true, uint8(3), uint8(2), uint16(3))
	f.Add([]byte("a,b\n1,b\"ad\n\xff,\xfe\n\"x\"y,2\n"), uint8(0), false, uint8(5), uint8(0), uint16(0))
	f.Add([]byte("a§b\n1§\"\"\"§\"§2\n\\N§NULL\r\n\"a\r\n\r\n\""), uint8(3), false, uint8(1), uint8(1), uint16(0))
	f.Add([]byte("a€b\n1€2€3\n\"1\"€\"2\"\n\r"), uint8(4), false, uint8(7), uint8(2), uint16(9))
	f.Add([]byte("a,b\n1,\"x\n\r"), uint8(0), false, uint8(7), uint8(0), uint16(0))
	f.Add([]byte("a,b\n\n\r\n1,2\n\n"), uint8(0), false, uint8(0), uint8(0), uint16(5))
	f.Add([]byte(messyCSV(30)), uint8(0), false, uint8(4), uint8(0), uint16(0))
	delims := []string{",", ";", "\t", "§", "€"}
	nulls := []string{"", `\N`, "NULL"}
	path := filepath.Join(f.TempDir(), "f.csv")
	roots := dirRoots(f, path)
	f.Fuzz(func(t *testing.T, data []byte, d uint8, noHeader bool, size, knobs uint8, at uint16) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		spec := &commonv1.CsvSource{Path: path, Delimiter: delims[int(d)%len(delims)], NoHeader: noHeader, NullMarker: nulls[int(knobs)%len(nulls)]}
		if noHeader {
			spec.Columns = []string{"a", "b", "c"}
		}
		// Small reads make records straddle buffer refills.
		testReadLimit = []int{0, 1, 2, 3, 5, 16}[int(knobs/3)%6]
		defer func() { testReadLimit = 0 }()

		cf, err := openCSV(roots, spec)
		rf, rerr := refOpenCSV(spec)
		if (err == nil) != (rerr == nil) || err != nil && err.Error() != rerr.Error() {
			t.Fatalf("open: got %v, reference %v", err, rerr)
		}
		if err != nil {
			return
		}
		defer cf.Close()
		defer rf.Close()
		if !slices.Equal(cf.names, rf.names) || cf.dataStart != rf.dataStart || cf.dataLine != rf.dataLine {
			t.Fatalf("header: got %q at %d:%d, reference %q at %d:%d", cf.names, cf.dataStart, cf.dataLine, rf.names, rf.dataStart, rf.dataLine)
		}
		est, err := cf.estimateRows()
		rest, rerr := rf.refEstimateRows()
		if est != rest || (err == nil) != (rerr == nil) {
			t.Fatalf("estimate: got %d, %v, reference %d, %v", est, err, rest, rerr)
		}

		batchSize := int(size%8) + 1
		cursor := ""
		for i := 0; ; i++ {
			if i > len(data)+2 {
				t.Fatalf("no end after %d batches", i)
			}
			next, done := compareBatch(t, spec, cursor, batchSize)
			if done {
				break
			}
			cursor = next
		}
		// A cursor anywhere, even inside a record, reads the same.
		if size := int64(len(data)) - cf.dataStart; size >= 0 {
			off := cf.dataStart + int64(at)%(size+1)
			compareBatch(t, spec, formatCursor(off, 1+int64(at)%5), batchSize)
		}
	})
}

// compareBatch reads one batch with both readers and fails on any
// difference; it returns the next cursor and whether the file is done.
func compareBatch(t *testing.T, spec *commonv1.CsvSource, cursor string, size int) (string, bool) {
	t.Helper()
	got, done, err := readCSV(dirRoots(t, spec.GetPath()), spec, cursor, size)
	want, wantDone, werr := refReadCSV(spec, cursor, size)
	if (err == nil) != (werr == nil) || err != nil && err.Error() != werr.Error() {
		t.Fatalf("cursor %q: got error %v, reference %v", cursor, err, werr)
	}
	if err != nil {
		return "", true
	}
	if done != wantDone || !proto.Equal(got, want) {
		t.Fatalf("cursor %q size %d:\n got done=%v %v\nwant done=%v %v", cursor, size, done, describeBatch(got), wantDone, describeBatch(want))
	}
	rowsOf(t, got)
	return want.GetLastKey(), wantDone
}

func describeBatch(b *commonv1.Batch) string {
	var sb strings.Builder
	sb.WriteString("last_key=" + b.GetLastKey())
	for i := range int(b.GetNumRows()) {
		sb.WriteString("\n  " + strings.ReplaceAll(batchRowText(b, i), "\n", `\n`))
	}
	for _, r := range b.GetRejects() {
		sb.WriteString("\n  reject " + prototext.Format(r))
	}
	for _, c := range b.GetColumns() {
		sb.WriteString("\n  col " + c.GetName() + " data=" + string(bytes.ReplaceAll(c.GetData(), []byte("\n"), []byte(`\n`))))
	}
	return sb.String()
}

func batchRowText(b *commonv1.Batch, i int) string {
	var parts []string
	for _, c := range b.GetColumns() {
		if isNullAt(c, i) {
			parts = append(parts, null)
			continue
		}
		parts = append(parts, string(c.GetData()[c.GetOffsets()[i]:c.GetOffsets()[i+1]]))
	}
	return refText(b, i) + ": " + strings.Join(parts, "|")
}

func isNullAt(c *commonv1.Column, i int) bool {
	j := i >> 3
	return j < len(c.GetNulls()) && c.GetNulls()[j]&(1<<(uint(i)&7)) != 0
}

func refText(b *commonv1.Batch, i int) string {
	c := b.GetSourceRefs()
	if c == nil || i+1 >= len(c.GetOffsets()) {
		return "?"
	}
	return string(c.GetData()[c.GetOffsets()[i]:c.GetOffsets()[i+1]])
}

// TestCSVLongRecords reads records far longer than a read and than the
// scanner's buffer, which must grow, and compares with the reference.
func TestCSVLongRecords(t *testing.T) {
	long := strings.Repeat("x,\"\"y\r\n", 400_000) // ~2.8 MB inside quotes
	content := "id,note\n1,\"" + long + "\"\n2,plain\n3,\"" + long[:5000] + "\n"
	spec := &commonv1.CsvSource{Path: writeFile(t, content)}
	for _, size := range []int{1, 1000} {
		cursor := ""
		for i := 0; ; i++ {
			if i > 10 {
				t.Fatal("no end")
			}
			next, done := compareBatch(t, spec, cursor, size)
			if done {
				break
			}
			cursor = next
		}
	}
	b, _, err := readCSV(dirRoots(t, spec.GetPath()), spec, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if b.GetNumRows() != 3 || len(b.GetRejects()) != 1 || b.GetRejects()[0].GetRule() != "csv_syntax" {
		t.Fatalf("got %d rows, rejects %v", b.GetNumRows(), b.GetRejects())
	}
	if v, _ := batch.Text(b.GetColumns()[1], 0); len(v) != len(long)-400_000*2 {
		t.Fatalf("long value has %d bytes, want %d", len(v), len(long)-400_000*2)
	}
}
