package extract

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// FuzzCSV feeds arbitrary bytes to the CSV reader: it must never panic,
// every batch must be well formed, and every record a plain csv.Reader sees
// must come out as exactly one row, with a reject when it is unusable.
func FuzzCSV(f *testing.F) {
	f.Add([]byte("id,name\n1,a\n2,b\n"), uint8(0), false, uint8(2))
	f.Add([]byte("\xEF\xBB\xBFa;b\r\n1;\"x\r\ny\"\r\n\n2\n"), uint8(1), false, uint8(1))
	f.Add([]byte("1,\"unterminated\n2,b"), uint8(0), true, uint8(3))
	f.Add([]byte("a,b\n1,b\"ad\n\xff,\xfe\n"), uint8(0), false, uint8(5))
	f.Add([]byte(messyCSV(20)), uint8(0), false, uint8(4))
	delims := []rune{',', ';', '\t', '§'}
	// Executions run one at a time per worker, so one file is enough.
	path := filepath.Join(f.TempDir(), "f.csv")
	s := newServiceWith(f, Options{FileRoots: []string{filepath.Dir(path)}})
	f.Fuzz(func(t *testing.T, data []byte, d uint8, noHeader bool, size uint8) {
		comma := delims[int(d)%len(delims)]
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		spec := &commonv1.CsvSource{Path: path, Delimiter: string(comma), NoHeader: noHeader}
		if noHeader {
			spec.Columns = []string{"a", "b", "c"}
		}
		records, bad, headerOK := referenceCount(data, comma, noHeader, len(spec.Columns))
		batchSize := int(size%16) + 1
		cursor := ""
		rows, rejects := 0, 0
		for i := 0; ; i++ {
			if i > records+2 {
				t.Fatalf("no end after %d batches for %d records", i, records)
			}
			resp, err := s.ReadBatch(context.Background(), &extractorv1.ReadBatchRequest{Source: csvSource(spec), Cursor: cursor, BatchSize: int32(batchSize)})
			if err != nil {
				if status.Code(err) == codes.FailedPrecondition && !noHeader && i == 0 && !headerOK {
					return // an unusable header refuses the file up front
				}
				t.Fatalf("ReadBatch(%q): %v", cursor, err)
			}
			b := resp.GetBatch()
			rowsOf(t, b) // checks shape and that it marshals
			rows += int(b.GetNumRows())
			rejects += len(b.GetRejects())
			if resp.GetDone() {
				break
			}
			cursor = b.GetLastKey()
		}
		if rows != records {
			t.Fatalf("got %d rows, csv.Reader sees %d records", rows, records)
		}
		if rejects != bad {
			t.Fatalf("got %d rejects, want %d", rejects, bad)
		}
	})
}

// referenceCount reads the whole input with a plain csv.Reader and counts
// its records and the ones that must be rejected.
func referenceCount(data []byte, comma rune, noHeader bool, ncol int) (records, bad int, headerOK bool) {
	data = bytes.TrimPrefix(data, utf8BOM)
	r := csv.NewReader(bytes.NewReader(data))
	r.Comma = comma
	r.FieldsPerRecord = -1
	headerOK = true
	if !noHeader {
		h, err := r.Read()
		if err != nil {
			return 0, 0, false
		}
		ncol = len(h)
		seen := map[string]bool{}
		for i, n := range h {
			if n == "" {
				n = fmt.Sprintf("column_%d", i+1)
			}
			if !utf8.ValidString(n) || seen[n] {
				headerOK = false
			}
			seen[n] = true
		}
	}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return records, bad, headerOK
		}
		records++
		var pe *csv.ParseError
		if errors.As(err, &pe) || len(rec) != ncol || !utf8.ValidString(strings.Join(rec, "")) {
			bad++
		}
	}
}

func FuzzCursor(f *testing.F) {
	f.Add("0:1")
	f.Add("123:45")
	f.Add("-1:+2")
	f.Fuzz(func(t *testing.T, c string) {
		off, line, err := parseCursor(c)
		if err != nil {
			if status.Code(toStatus(err)) != codes.InvalidArgument {
				t.Fatalf("bad cursor %q gives %v", c, err)
			}
			return
		}
		off2, line2, err := parseCursor(formatCursor(off, line))
		if err != nil || off2 != off || line2 != line {
			t.Fatalf("cursor %q does not round-trip", c)
		}
	})
}
