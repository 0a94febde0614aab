package extract

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

func TestReadCSV(t *testing.T) {
	tests := []struct {
		name    string
		content string
		spec    *commonv1.CsvSource // path filled in
		cols    []string
		want    []row
	}{
		{
			name:    "header",
			content: "id,name\n1,a\n2,b\n",
			cols:    []string{"id", "name"},
			want:    []row{{ref: "line 2", vals: []string{"1", "a"}}, {ref: "line 3", vals: []string{"2", "b"}}},
		},
		{
			name:    "no header, no final newline",
			content: "1,a\n2,b",
			spec:    &commonv1.CsvSource{NoHeader: true, Columns: []string{"id", "name"}},
			cols:    []string{"id", "name"},
			want:    []row{{ref: "line 1", vals: []string{"1", "a"}}, {ref: "line 2", vals: []string{"2", "b"}}},
		},
		{
			name:    "header renamed by columns",
			content: "x,y\n1,a\n",
			spec:    &commonv1.CsvSource{Columns: []string{"id", "name"}},
			cols:    []string{"id", "name"},
			want:    []row{{ref: "line 2", vals: []string{"1", "a"}}},
		},
		{
			name:    "quoted newline and delimiter",
			content: "id,note\n1,\"x\ny, \"\"z\"\"\"\n2,w\n",
			cols:    []string{"id", "note"},
			want:    []row{{ref: "line 2", vals: []string{"1", "x\ny, \"z\""}}, {ref: "line 4", vals: []string{"2", "w"}}},
		},
		{
			name:    "CRLF",
			content: "id,name\r\n1,a\r\n2,\"b\r\nc\"\r\n3,d",
			cols:    []string{"id", "name"},
			want: []row{
				{ref: "line 2", vals: []string{"1", "a"}},
				{ref: "line 3", vals: []string{"2", "b\nc"}},
				{ref: "line 5", vals: []string{"3", "d"}},
			},
		},
		{
			name:    "BOM",
			content: "\xEF\xBB\xBFid,name\n1,a\n",
			cols:    []string{"id", "name"},
			want:    []row{{ref: "line 2", vals: []string{"1", "a"}}},
		},
		{
			name:    "BOM without header",
			content: "\xEF\xBB\xBF1,a\n",
			spec:    &commonv1.CsvSource{NoHeader: true, Columns: []string{"id", "name"}},
			cols:    []string{"id", "name"},
			want:    []row{{ref: "line 1", vals: []string{"1", "a"}}},
		},
		{
			name:    "null marker vs empty string",
			content: "id,a,b\n1,\\N,\n2,,\\N\n3,\"\\N\",x\n",
			spec:    &commonv1.CsvSource{NullMarker: `\N`},
			cols:    []string{"id", "a", "b"},
			want: []row{
				{ref: "line 2", vals: []string{"1", null, ""}},
				{ref: "line 3", vals: []string{"2", "", null}},
				// A quoted marker is still the marker: encoding/csv drops quotes.
				{ref: "line 4", vals: []string{"3", null, "x"}},
			},
		},
		{
			name:    "no null marker keeps empty strings",
			content: "id,a\n1,\n2,NULL\n",
			cols:    []string{"id", "a"},
			want:    []row{{ref: "line 2", vals: []string{"1", ""}}, {ref: "line 3", vals: []string{"2", "NULL"}}},
		},
		{
			name:    "semicolon delimiter and blank lines",
			content: "id;name\n\n1;a,b\n\n\n2;c\n\n",
			spec:    &commonv1.CsvSource{Delimiter: ";"},
			cols:    []string{"id", "name"},
			want:    []row{{ref: "line 3", vals: []string{"1", "a,b"}}, {ref: "line 6", vals: []string{"2", "c"}}},
		},
		{
			name:    "multi-byte delimiter rune",
			content: "id§name\n1§a\n",
			spec:    &commonv1.CsvSource{Delimiter: "§"},
			cols:    []string{"id", "name"},
			want:    []row{{ref: "line 2", vals: []string{"1", "a"}}},
		},
		{
			name:    "empty header name",
			content: "id,\n1,a\n",
			cols:    []string{"id", "column_2"},
			want:    []row{{ref: "line 2", vals: []string{"1", "a"}}},
		},
		{
			name:    "ragged rows and bare quote quarantined",
			content: "id,name,amount\n1,a,10\n2,b\n3,c\"x,30\n4,d,40\n5,e,50,extra\n6,\"f\ng\",60\n",
			cols:    []string{"id", "name", "amount"},
			want: []row{
				{ref: "line 2", vals: []string{"1", "a", "10"}},
				{ref: "line 3", vals: []string{null, null, null}, reject: "ragged_row||line 3: 2 fields, expected 3|2,b"},
				{ref: "line 4", vals: []string{null, null, null}, reject: "csv_syntax||parse error on line 4, column 4: bare \" in non-quoted-field|3,c\"x,30"},
				{ref: "line 5", vals: []string{"4", "d", "40"}},
				{ref: "line 6", vals: []string{null, null, null}, reject: "ragged_row||line 6: 4 fields, expected 3|5,e,50,extra"},
				{ref: "line 7", vals: []string{"6", "f\ng", "60"}},
			},
		},
		{
			name:    "unterminated quote at the end",
			content: "id,name\n1,a\n2,\"b\n3,c\n",
			cols:    []string{"id", "name"},
			want: []row{
				{ref: "line 2", vals: []string{"1", "a"}},
				{ref: "line 3", vals: []string{null, null}, reject: "csv_syntax||record on line 3; parse error on line 4, column 5: extraneous or missing \" in quoted-field|2,\"b\n3,c"},
			},
		},
		{
			name:    "invalid UTF-8",
			content: "id,name\n1,caf\xe9\n2,ok\n",
			cols:    []string{"id", "name"},
			want: []row{
				{ref: "line 2", vals: []string{null, null}, reject: `encoding|name|line 2: column name: invalid UTF-8 in caf\xe9|1,caf\xe9`},
				{ref: "line 3", vals: []string{"2", "ok"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := &commonv1.CsvSource{}
			if tt.spec != nil {
				spec = proto.Clone(tt.spec).(*commonv1.CsvSource)
			}
			spec.Path = writeFile(t, tt.content)
			s := newService(t)
			for _, size := range []int{1, 2, 1000} {
				got, _ := readAll(t, s, csvSource(spec), nil, size)
				if !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("batch size %d:\n got %q\nwant %q", size, got, tt.want)
				}
			}
			resp, err := s.ReadBatch(context.Background(), &extractorv1.ReadBatchRequest{Source: csvSource(spec), BatchSize: 1000})
			if err != nil {
				t.Fatal(err)
			}
			b := resp.GetBatch()
			if b.GetSource() != spec.Path {
				t.Errorf("source %q, want %q", b.GetSource(), spec.Path)
			}
			var names []string
			for _, c := range b.GetColumns() {
				names = append(names, c.GetName())
				if c.GetType() != commonv1.ColumnType_COLUMN_TYPE_TEXT {
					t.Errorf("column %s has type %v", c.GetName(), c.GetType())
				}
			}
			if !reflect.DeepEqual(names, tt.cols) {
				t.Errorf("columns %q, want %q", names, tt.cols)
			}
		})
	}
}

// messyCSV mixes every kind of record the reader must handle.
func messyCSV(n int) string {
	var sb strings.Builder
	sb.WriteString("\xEF\xBB\xBFid,name,note\r\n")
	for i := 1; i <= n; i++ {
		switch i % 7 {
		case 0:
			fmt.Fprintf(&sb, "%d,\"multi\r\nline %d\",x\r\n", i, i)
		case 1:
			fmt.Fprintf(&sb, "%d,short\n", i) // ragged
		case 2:
			fmt.Fprintf(&sb, "%d,bare\"quote,x\n", i) // syntax error
		case 3:
			fmt.Fprintf(&sb, "\n%d,after blank,\"q,\"\"d\"\"\"\n", i)
		case 4:
			fmt.Fprintf(&sb, "%d,bad\xffutf8,x\n", i)
		default:
			fmt.Fprintf(&sb, "%d,plain %d,\n", i, i)
		}
	}
	return sb.String()
}

func TestCSVCursorDeterminism(t *testing.T) {
	s := newService(t)
	src := csvSource(&commonv1.CsvSource{Path: writeFile(t, messyCSV(100))})
	want, _ := readAll(t, s, src, nil, 1000)
	if len(want) != 100 {
		t.Fatalf("read %d rows, want 100", len(want))
	}
	got, cursors := readAll(t, s, src, nil, 3)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("batch size 3 gives other rows than batch size 1000:\n got %q\nwant %q", got, want)
	}
	seen := map[string]bool{}
	for _, r := range got {
		if seen[r.ref] {
			t.Fatalf("row %s read twice", r.ref)
		}
		seen[r.ref] = true
	}
	// Resuming from any cursor gives the same batch and the same tail.
	for i, c := range cursors {
		req := &extractorv1.ReadBatchRequest{Source: src, Cursor: c, BatchSize: 3}
		r1, err := s.ReadBatch(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := s.ReadBatch(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(r1, r2) {
			t.Fatalf("cursor %q: two reads differ", c)
		}
		if i*3 < len(want) {
			rest := rowsOf(t, r1.GetBatch())
			if !reflect.DeepEqual(rest, want[i*3:min(i*3+3, len(want))]) {
				t.Fatalf("cursor %q: got %q want %q", c, rest, want[i*3:min(i*3+3, len(want))])
			}
		}
	}
}

func TestDescribeAndPlanCSV(t *testing.T) {
	s := newService(t)
	var sb strings.Builder
	sb.WriteString("id,name\n")
	for i := range 500 {
		fmt.Fprintf(&sb, "%04d,n\n", i)
	}
	path := writeFile(t, sb.String())
	src := csvSource(&commonv1.CsvSource{Path: path})
	d, err := s.DescribeSource(context.Background(), &extractorv1.DescribeSourceRequest{Source: src})
	if err != nil {
		t.Fatal(err)
	}
	want := []*commonv1.SourceColumn{
		{Name: "id", SourceType: "text", Type: commonv1.ColumnType_COLUMN_TYPE_TEXT, Nullable: true},
		{Name: "name", SourceType: "text", Type: commonv1.ColumnType_COLUMN_TYPE_TEXT, Nullable: true},
	}
	if len(d.GetColumns()) != 2 || !proto.Equal(d.GetColumns()[0], want[0]) || !proto.Equal(d.GetColumns()[1], want[1]) {
		t.Errorf("columns %v", d.GetColumns())
	}
	if d.GetEstimatedRows() != 500 {
		t.Errorf("estimated rows %d, want 500 for uniform records", d.GetEstimatedRows())
	}
	if len(d.GetPrimaryKey()) != 0 {
		t.Errorf("a file has no primary key, got %v", d.GetPrimaryKey())
	}
	p, err := s.PlanPartitions(context.Background(), &extractorv1.PlanPartitionsRequest{Source: src, Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	// Chunks that start where the previous one ends and read every row once.
	rs := p.GetRanges()
	if len(rs) == 0 || len(rs) > 4 || rs[0].GetLower() != "" || rs[len(rs)-1].GetUpper() != "" {
		t.Fatalf("ranges %v, want up to 4 covering the file", rs)
	}
	var all []row
	for i, r := range rs {
		if i > 0 && !strings.HasPrefix(r.GetLower(), rs[i-1].GetUpper()+":") {
			t.Errorf("range %d starts at %q, the one before ends at %q", i, r.GetLower(), rs[i-1].GetUpper())
		}
		got, _ := readAll(t, s, src, r, 7)
		all = append(all, got...)
	}
	whole, _ := readAll(t, s, src, nil, 1000)
	if len(whole) != 500 || !reflect.DeepEqual(all, whole) {
		t.Errorf("chunks read %d rows, the whole file %d, or other rows", len(all), len(whole))
	}
}

func TestCSVErrors(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, "id,name\n1,a\n")
	empty := filepath.Join(dir, "empty.csv")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.csv")
	tests := []struct {
		name   string
		src    *commonv1.SourceSpec
		cursor string
		code   codes.Code
		parts  []string
	}{
		{"no source", nil, "", codes.InvalidArgument, []string{"source"}},
		{"no path", csvSource(&commonv1.CsvSource{}), "", codes.InvalidArgument, []string{"source.csv.path"}},
		{"missing file", csvSource(&commonv1.CsvSource{Path: missing}), "", codes.InvalidArgument, []string{"source.csv.path", missing, notInRoots}},
		{"directory", csvSource(&commonv1.CsvSource{Path: dir}), "", codes.InvalidArgument, []string{"source.csv.path", dir, notInRoots}},
		{"long delimiter", csvSource(&commonv1.CsvSource{Path: good, Delimiter: ";;"}), "", codes.InvalidArgument, []string{"source.csv.delimiter: must be one character"}},
		{"quote delimiter", csvSource(&commonv1.CsvSource{Path: good, Delimiter: `"`}), "", codes.InvalidArgument, []string{"source.csv.delimiter"}},
		{"no header no columns", csvSource(&commonv1.CsvSource{Path: good, NoHeader: true}), "", codes.InvalidArgument, []string{"source.csv.columns"}},
		{"duplicate columns", csvSource(&commonv1.CsvSource{Path: good, NoHeader: true, Columns: []string{"a", "a"}}), "", codes.InvalidArgument, []string{"source.csv.columns[1]"}},
		{"columns do not match header", csvSource(&commonv1.CsvSource{Path: good, Columns: []string{"a"}}), "", codes.FailedPrecondition, []string{"source.csv.columns"}},
		{"empty file", csvSource(&commonv1.CsvSource{Path: empty}), "", codes.FailedPrecondition, []string{"header", empty}},
		{"bad cursor", csvSource(&commonv1.CsvSource{Path: good}), "abc", codes.InvalidArgument, []string{"cursor"}},
		{"cursor in header", csvSource(&commonv1.CsvSource{Path: good}), "0:1", codes.InvalidArgument, []string{"cursor"}},
		{"cursor past end", csvSource(&commonv1.CsvSource{Path: good}), "999:3", codes.InvalidArgument, []string{"cursor"}},
	}
	s := newService(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.ReadBatch(context.Background(), &extractorv1.ReadBatchRequest{Source: tt.src, Cursor: tt.cursor, BatchSize: 10})
			wantCode(t, err, tt.code, tt.parts...)
			if tt.cursor == "" {
				_, err = s.DescribeSource(context.Background(), &extractorv1.DescribeSourceRequest{Source: tt.src})
				wantCode(t, err, tt.code, tt.parts...)
				_, err = s.PlanPartitions(context.Background(), &extractorv1.PlanPartitionsRequest{Source: tt.src})
				wantCode(t, err, tt.code, tt.parts...)
			}
		})
	}
	_, err := s.ReadBatch(context.Background(), &extractorv1.ReadBatchRequest{Source: csvSource(&commonv1.CsvSource{Path: good}), BatchSize: -1})
	wantCode(t, err, codes.InvalidArgument, "batch_size")
}

func TestCursorRoundTrip(t *testing.T) {
	tests := []struct {
		in       string
		off, ln  int64
		wantFail bool
	}{
		{"0:1", 0, 1, false},
		{"1234:56", 1234, 56, false},
		{"", 0, 0, true},
		{"12", 0, 0, true},
		{"-1:1", 0, 0, true},
		{"1:0", 0, 0, true},
		{"a:b", 0, 0, true},
	}
	for _, tt := range tests {
		off, ln, err := parseCursor(tt.in)
		if (err != nil) != tt.wantFail || off != tt.off || ln != tt.ln {
			t.Errorf("parseCursor(%q) = %d, %d, %v", tt.in, off, ln, err)
		}
		if err == nil && formatCursor(off, ln) != tt.in {
			t.Errorf("formatCursor(%d, %d) = %q, want %q", off, ln, formatCursor(off, ln), tt.in)
		}
	}
}
