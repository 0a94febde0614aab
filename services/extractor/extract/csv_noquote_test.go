package extract

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// TestCSVNoQuoting reads a point-of-sale export that never encloses a
// field and has stray quotes in its values (inches, nicknames, a lone "):
// with no_quoting every quote is part of its value, each line is a record,
// a short line is still ragged; read as RFC 4180 the same file loses those
// rows to csv_syntax. As 1, 2 and 3 partitions the rows are the same.
func TestCSVNoQuoting(t *testing.T) {
	path, err := filepath.Abs(filepath.Join("testdata", "csv", "pos_unquoted.txt"))
	if err != nil {
		t.Fatal(err)
	}
	s := newService(t)
	spec := &commonv1.CsvSource{Path: path, Delimiter: "|", NoQuoting: true, EmptyIsNull: true}
	src := csvSource(spec)
	got, _ := readAll(t, s, src, nil, 3)
	want := []row{
		{ref: "line 2", vals: []string{"1001", `Pizza Margherita 12"`, `12"`, "9.50", null}},
		{ref: "line 3", vals: []string{"1002", `"Hawaiian" special`, `14"`, "11.00", `customer said "no pineapple`}},
		{ref: "line 4", vals: []string{"1003", "Garlic bread", null, null, `half "portion`}},
		{ref: "line 6", vals: []string{"1004", "Coke 0.5l", "0.5", "1.80", `"`}},
		{ref: "line 7", vals: []string{"1005", `O'Brien's "Irish" stew`, "bowl", "7.25", null}},
		{ref: "line 8", vals: []string{null, null, null, null, null}, reject: "ragged_row||line 8: 4 fields, expected 5|1006|Tiramisu \"home made\"|slice|4.00"},
		{ref: "line 9", vals: []string{"1007", `""`, `""`, "0.00", `""`}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("no_quoting:\n got %q\nwant %q", got, want)
	}
	d, err := s.DescribeSource(context.Background(), &extractorv1.DescribeSourceRequest{Source: src})
	if err != nil || len(d.GetColumns()) != 5 || d.GetColumns()[4].GetName() != "note" {
		t.Fatalf("describe: %v, %v", d, err)
	}
	for _, n := range []int{1, 2, 3} {
		if p := readPartitioned(t, s, src, n, 2); !reflect.DeepEqual(p, want) {
			t.Fatalf("%d partitions:\n got %q\nwant %q", n, p, want)
		}
	}

	// The same file as RFC 4180: the stray quotes are syntax errors.
	rfc, _ := readAll(t, s, csvSource(&commonv1.CsvSource{Path: path, Delimiter: "|"}), nil, 100)
	syntax := 0
	for _, r := range rfc {
		if strings.HasPrefix(r.reject, "csv_syntax|") {
			syntax++
		}
	}
	if syntax < 4 {
		t.Fatalf("read with quoting, %d rows are csv_syntax: %q", syntax, rfc)
	}

	// Spaces trimmed, a tab delimiter.
	tsv := writeFile(t, "a\tb\n x\" \t \"y \n")
	got, _ = readAll(t, s, csvSource(&commonv1.CsvSource{Path: tsv, Delimiter: "\t", NoQuoting: true, TrimSpace: true}), nil, 10)
	if want := []row{{ref: "line 2", vals: []string{`x"`, `"y`}}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("trimmed: %q, want %q", got, want)
	}
}

func TestCSVNoQuotingOptionErrors(t *testing.T) {
	s := newService(t)
	good := writeFile(t, "a,b\n1,2\n")
	for _, tc := range []struct {
		spec  *commonv1.CsvSource
		field string
	}{
		{&commonv1.CsvSource{Path: good, NoQuoting: true, Quote: "'"}, "source.csv.quote"},
		{&commonv1.CsvSource{Path: good, NoQuoting: true, Escape: `\`}, "source.csv.escape"},
	} {
		_, err := s.DescribeSource(context.Background(), &extractorv1.DescribeSourceRequest{Source: csvSource(tc.spec)})
		wantCode(t, err, codes.InvalidArgument, tc.field, "no_quoting")
	}
}

// noQuoteRecords is the reference reading of a file without quoting: lines
// end at \n with one \r before it dropped (and a \r ending the file), an
// empty line is skipped, a line is split at every delimiter, and with trim
// spaces and tabs around a field go.
func noQuoteRecords(data []byte, comma string, trim bool) (lines []int64, recs [][]string) {
	if bytes.HasPrefix(data, utf8BOM) {
		data = data[len(utf8BOM):]
	}
	for i, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSuffix(l, "\r")
		if l == "" {
			continue
		}
		fields := strings.Split(l, comma)
		if trim {
			for k := range fields {
				fields[k] = strings.Trim(fields[k], " \t")
			}
		}
		lines = append(lines, int64(i+1))
		recs = append(recs, fields)
	}
	return lines, recs
}

// FuzzCSVNoQuoting holds the no_quoting reader to noQuoteRecords: the same
// records on the same lines, the same values, a ragged line rejected, for
// any UTF-8 bytes, delimiter and buffer size.
func FuzzCSVNoQuoting(f *testing.F) {
	pos, err := os.ReadFile(filepath.Join("testdata", "csv", "pos_unquoted.txt"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pos, uint8(1), false, uint8(3))
	f.Add([]byte("a,b\n\"x,y\"\n\"\"\"\n1,\"2\r\n\r\r\n3 , 4\r"), uint8(0), true, uint8(1))
	f.Add([]byte("id;n\n1;\"a;\n\n2;b\"\n"), uint8(2), false, uint8(16))
	f.Add([]byte("\xEF\xBB\xBFa\tb\n \"\t'\n"), uint8(3), true, uint8(0))
	commas := []string{",", "|", ";", "\t"}
	path := filepath.Join(f.TempDir(), "f.csv")
	opts := Options{FileRoots: []string{filepath.Dir(path)}}
	f.Fuzz(func(t *testing.T, data []byte, c uint8, trim bool, size uint8) {
		if !utf8.Valid(data) {
			return // invalid bytes are the encoding tests' business
		}
		comma := commas[int(c)%len(commas)]
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		testReadLimit = []int{0, 1, 3, 16}[int(size>>4)%4]
		defer func() { testReadLimit = 0 }()
		s, err := NewWithOptions(opts)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		spec := &commonv1.CsvSource{Path: path, Delimiter: comma, NoQuoting: true, TrimSpace: trim}
		src := csvSource(spec)
		lines, recs := noQuoteRecords(data, comma, trim)
		_, err = s.DescribeSource(context.Background(), &extractorv1.DescribeSourceRequest{Source: src})
		if len(recs) == 0 {
			if err == nil {
				t.Fatalf("a file with no line described")
			}
			return
		}
		header := recs[0]
		seen := map[string]bool{}
		dup := false
		for i, h := range header {
			if h == "" {
				h = "column_" + strconv.Itoa(i+1)
			}
			dup = dup || seen[h]
			seen[h] = true
		}
		if dup {
			if err == nil {
				t.Fatalf("a header with a name twice described: %q", header)
			}
			return
		}
		if err != nil {
			t.Fatalf("describe: %v", err)
		}
		got, _ := readAll(t, s, src, nil, int(size%7)+1)
		if len(got) != len(recs)-1 {
			t.Fatalf("%d rows, want %d: %q", len(got), len(recs)-1, got)
		}
		for i, r := range got {
			want := recs[i+1]
			if r.ref != "line "+strconv.FormatInt(lines[i+1], 10) {
				t.Fatalf("row %d ref %q, want line %d", i, r.ref, lines[i+1])
			}
			if len(want) != len(header) {
				if !strings.HasPrefix(r.reject, "ragged_row|") {
					t.Fatalf("row %d: %d fields, want ragged_row, got %q", i, len(want), r.reject)
				}
				continue
			}
			if r.reject != "" || !reflect.DeepEqual(r.vals, want) {
				t.Fatalf("row %d: %q (reject %q), want %q", i, r.vals, r.reject, want)
			}
		}
		// Partitions read what one read reads.
		p := proto.CloneOf(spec)
		if parts := readPartitioned(t, s, csvSource(p), int(size%5)+2, int(size%3)+1); !reflect.DeepEqual(parts, got) {
			t.Fatalf("partitions:\n got %q\nwant %q", parts, got)
		}
	})
}
