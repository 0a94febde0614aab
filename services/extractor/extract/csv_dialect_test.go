package extract

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
	"golang.org/x/text/encoding/unicode"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// readCSVRows reads a source whole, checking that the same rows come out
// at batch sizes 1 and 1000.
func readCSVRows(t *testing.T, spec *commonv1.CsvSource) []row {
	t.Helper()
	s := newService(t)
	want, _ := readAll(t, s, csvSource(spec), nil, 1000)
	if got, _ := readAll(t, s, csvSource(spec), nil, 1); !reflect.DeepEqual(got, want) {
		t.Fatalf("batch size 1 reads other rows:\n got %q\nwant %q", got, want)
	}
	return want
}

func TestCSVDialectCorpus(t *testing.T) {
	tests := []struct {
		file string
		spec *commonv1.CsvSource
		want []row
	}{
		{
			file: "mysql_escape.csv",
			spec: &commonv1.CsvSource{Escape: `\`, NullMarker: `\N`},
			want: []row{
				{ref: "line 2", vals: []string{"1", `say "hi"`, "北京市朝阳区"}},
				{ref: "line 3", vals: []string{"2", `back\slash`, "x"}},
				{ref: "line 4", vals: []string{"3", null, `a"b`}},
				{ref: "line 5", vals: []string{"4", "line\\\nbreak", "臺北"}},
				{ref: "line 8", vals: []string{"5", `c:\dir\file`, null}},
				{ref: "line 9", vals: []string{null, null, null}, reject: "csv_syntax||parse error on line 9, column 22: extraneous or missing \" in quoted-field|6,\"unterminated \\\",x"},
			},
		},
		{
			file: "quote_trim.csv",
			spec: &commonv1.CsvSource{Quote: "'", TrimSpace: true, Delimiter: ";"},
			want: []row{
				{ref: "line 2", vals: []string{"1", "张三", "  keeps spaces  "}},
				{ref: "line 3", vals: []string{"2", "it's", "x;y"}},
				{ref: "line 4", vals: []string{null, null, null}, reject: "csv_syntax||parse error on line 4, column 6: bare ' in non-quoted-field|3;bad'quote;z"},
				{ref: "line 5", vals: []string{null, null, null}, reject: "csv_syntax||parse error on line 5, column 15: extraneous or missing ' in quoted-field|4;'ok';'closed'junk"},
				{ref: "line 6", vals: []string{null, null, null}, reject: "ragged_row||line 6: 4 fields, expected 3|5;a;b;c"},
				{ref: "line 7", vals: []string{"6", "", ""}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			spec := proto.Clone(tt.spec).(*commonv1.CsvSource)
			spec.Path = filepath.Join(fileRoots(t)[1], "csv", tt.file)
			if got := readCSVRows(t, spec); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("\n got %q\nwant %q", got, tt.want)
			}
			d, err := newService(t).DescribeSource(context.Background(), &extractorv1.DescribeSourceRequest{Source: csvSource(spec)})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range d.GetColumns() {
				if strings.TrimSpace(c.GetName()) != c.GetName() {
					t.Errorf("header name %q not trimmed", c.GetName())
				}
			}
		})
	}
}

func TestCSVDialects(t *testing.T) {
	tests := []struct {
		name    string
		content string
		spec    *commonv1.CsvSource
		want    []row
	}{
		{
			name:    "single quotes leave double quotes alone",
			content: "id,name\n1,'a,b'\n2,'it''s'\n3,\"x\"\n",
			spec:    &commonv1.CsvSource{Quote: "'"},
			want: []row{
				{ref: "line 2", vals: []string{"1", "a,b"}},
				{ref: "line 3", vals: []string{"2", "it's"}},
				{ref: "line 4", vals: []string{"3", `"x"`}},
			},
		},
		{
			name:    "escape equal to quote is RFC 4180",
			content: "id,name\n1,\"a\"\"b\"\n",
			spec:    &commonv1.CsvSource{Escape: `"`},
			want:    []row{{ref: "line 2", vals: []string{"1", `a"b`}}},
		},
		{
			name:    "escape outside quotes is a plain character",
			content: "id,name\n1,a\\\"b\n2,\\\\\n",
			spec:    &commonv1.CsvSource{Escape: `\`},
			want: []row{
				{ref: "line 2", vals: []string{null, null}, reject: "csv_syntax||parse error on line 2, column 5: bare \" in non-quoted-field|1,a\\\"b"},
				{ref: "line 3", vals: []string{"2", `\\`}},
			},
		},
		{
			name:    "escaped quote across a quoted newline with CRLF",
			content: "id,name\r\n1,\"a\\\"\r\nb\"\r\n2,z\r\n",
			spec:    &commonv1.CsvSource{Escape: `\`},
			want: []row{
				{ref: "line 2", vals: []string{"1", "a\"\nb"}},
				{ref: "line 4", vals: []string{"2", "z"}},
			},
		},
		{
			name:    "trim with tab delimiter keeps empty fields",
			content: "a\tb\tc\n 1\t\t x \n",
			spec:    &commonv1.CsvSource{Delimiter: "\t", TrimSpace: true},
			want:    []row{{ref: "line 2", vals: []string{"1", "", "x"}}},
		},
		{
			name:    "without trim spaces are data",
			content: "a,b\n 1 , x \n",
			want:    []row{{ref: "line 2", vals: []string{" 1 ", " x "}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := &commonv1.CsvSource{}
			if tt.spec != nil {
				spec = proto.Clone(tt.spec).(*commonv1.CsvSource)
			}
			spec.Path = writeFile(t, tt.content)
			if got := readCSVRows(t, spec); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// encodeFile writes content in enc to a temp file.
func encodeFile(t testing.TB, enc encoding.Encoding, content string) string {
	t.Helper()
	b, err := enc.NewEncoder().Bytes([]byte(content))
	if err != nil {
		t.Fatalf("encode %q: %v", content, err)
	}
	return writeBytes(t, b)
}

func writeBytes(t testing.TB, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "in.csv")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const (
	simplified  = "id,name,addr\r\n1,张三,北京市朝阳区\r\n2,\"李四, 王五\",\"上海\r\n浦东\"\r\n3,赵六\r\n\r\n4,钱七,\"深圳 \"\"南山\"\"\"\r\n"
	traditional = "id,name,addr\n1,張三,臺北市\n2,\"李四\",\"高雄\n左營\"\n3,王五\n"
)

var simplifiedRows = []row{
	{ref: "line 2", vals: []string{"1", "张三", "北京市朝阳区"}},
	{ref: "line 3", vals: []string{"2", "李四, 王五", "上海\n浦东"}},
	{ref: "line 5", vals: []string{null, null, null}, reject: "ragged_row||line 5: 2 fields, expected 3|3,赵六"},
	{ref: "line 7", vals: []string{"4", "钱七", `深圳 "南山"`}},
}

// TestCSVEncodings writes the same records in every encoding and reads
// each back to its exact text.
func TestCSVEncodings(t *testing.T) {
	utf16 := func(e unicode.Endianness, b unicode.BOMPolicy) encoding.Encoding { return unicode.UTF16(e, b) }
	tests := []struct {
		encoding string
		enc      encoding.Encoding
		content  string
		want     []row
	}{
		{"", encoding.Nop, simplified, simplifiedRows},
		{"GBK", simplifiedchinese.GBK, simplified, simplifiedRows},
		{"gb18030", simplifiedchinese.GB18030, simplified, simplifiedRows},
		{"gb18030", simplifiedchinese.GB18030, "id,x\n1,😀€\u00e9\n", []row{{ref: "line 2", vals: []string{"1", "😀€é"}}}},
		{"big5", traditionalchinese.Big5, traditional, []row{
			{ref: "line 2", vals: []string{"1", "張三", "臺北市"}},
			{ref: "line 3", vals: []string{"2", "李四", "高雄\n左營"}},
			{ref: "line 5", vals: []string{null, null, null}, reject: "ragged_row||line 5: 2 fields, expected 3|3,王五"},
		}},
		{"latin1", charmap.ISO8859_1, "id,name\n1,José\n2,\"Zürich, Genève\"\n", []row{
			{ref: "line 2", vals: []string{"1", "José"}},
			{ref: "line 3", vals: []string{"2", "Zürich, Genève"}},
		}},
		{"ISO-8859-1", charmap.ISO8859_1, "a\né\n", []row{{ref: "line 2", vals: []string{"é"}}}},
		{"US-ASCII", encoding.Nop, "id,name\n1,\"Smith, J.\"\n", []row{{ref: "line 2", vals: []string{"1", "Smith, J."}}}},
		{"utf-16", utf16(unicode.LittleEndian, unicode.UseBOM), simplified, simplifiedRows},
		{"utf-16", utf16(unicode.BigEndian, unicode.UseBOM), simplified, simplifiedRows},
		{"utf-16le", utf16(unicode.LittleEndian, unicode.IgnoreBOM), simplified, simplifiedRows},
		{"UTF-16BE", utf16(unicode.BigEndian, unicode.IgnoreBOM), simplified, simplifiedRows},
		{"utf-16le", utf16(unicode.LittleEndian, unicode.UseBOM), "id,x\n1,😀\n", []row{{ref: "line 2", vals: []string{"1", "😀"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.encoding, func(t *testing.T) {
			spec := &commonv1.CsvSource{Path: encodeFile(t, tt.enc, tt.content), Encoding: tt.encoding}
			if got := readCSVRows(t, spec); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestCSVEncodingRejects: bytes that do not decode quarantine their row
// with its line, the column and the bytes shown as \xNN; the rest loads.
func TestCSVEncodingRejects(t *testing.T) {
	gbk := func(s string) []byte { b, _ := simplifiedchinese.GBK.NewEncoder().Bytes([]byte(s)); return b }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	le := func(units ...uint16) []byte {
		var b []byte
		for _, u := range units {
			b = append(b, byte(u), byte(u>>8))
		}
		return b
	}
	str16 := func(s string) []byte {
		b, _ := unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM).NewEncoder().Bytes([]byte(s))
		return b
	}
	tests := []struct {
		name     string
		encoding string
		data     []byte
		want     []row
	}{
		{
			name: "gbk lone lead byte before the delimiter", encoding: "gbk",
			data: cat(gbk("id,name,city\n1,张三,北京\n2,"), []byte("ab\x81"), gbk(",上海\n3,李四,广州\n")),
			want: []row{
				{ref: "line 2", vals: []string{"1", "张三", "北京"}},
				{ref: "line 3", vals: []string{null, null, null}, reject: `encoding|name|line 3: column name: byte 3 (0x81) is not valid GBK in ab\x81|2,ab\x81,上海`},
				{ref: "line 4", vals: []string{"3", "李四", "广州"}},
			},
		},
		{
			name: "gbk lead byte at the end of the file", encoding: "gbk",
			data: cat(gbk("id,name\n1,张\n2,王"), []byte{0xFE}),
			want: []row{
				{ref: "line 2", vals: []string{"1", "张"}},
				{ref: "line 3", vals: []string{null, null}, reject: `encoding|name|line 3: column name: byte 3 (0xfe) is not valid GBK in 王\xfe|2,王\xfe`},
			},
		},
		{
			name: "big5 invalid byte", encoding: "big5",
			data: []byte("id,name\n1,\xff\n"),
			want: []row{{ref: "line 2", vals: []string{null, null}, reject: `encoding|name|line 2: column name: byte 1 (0xff) is not valid Big5 in \xff|1,\xff`}},
		},
		{
			name: "gb18030 encodes U+FFFD itself", encoding: "gb18030",
			data: []byte("id,name\n1,\x84\x31\xa4\x37\n2,\x81\x30\n"),
			want: []row{
				{ref: "line 2", vals: []string{"1", "\uFFFD"}},
				{ref: "line 3", vals: []string{null, null}, reject: `encoding|name|line 3: column name: byte 1 (0x81) is not valid GB18030 in \x810|2,\x810`},
			},
		},
		{
			// A Latin-1 "é" in a file declared ASCII: its row is quarantined.
			name: "ascii high byte", encoding: "ascii",
			data: []byte("id,name\n1,plain\n2,Jos\xe9\n3,ok\n"),
			want: []row{
				{ref: "line 2", vals: []string{"1", "plain"}},
				{ref: "line 3", vals: []string{null, null}, reject: `encoding|name|line 3: column name: byte 4 (0xe9) is not valid ASCII in Jos\xe9|2,Jos\xe9`},
				{ref: "line 4", vals: []string{"3", "ok"}},
			},
		},
		{
			name: "utf-16 lone surrogate", encoding: "utf-16le",
			data: cat(str16("id,name\n1,ok\n2,"), le(0xD800), str16("x\n3,😀\n")),
			want: []row{
				{ref: "line 2", vals: []string{"1", "ok"}},
				{ref: "line 3", vals: []string{null, null}, reject: `encoding|name|line 3: column name: invalid UTF-16LE in \xed\xa0\x80x|2,\xed\xa0\x80x`},
				{ref: "line 4", vals: []string{"3", "😀"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := &commonv1.CsvSource{Path: writeBytes(t, tt.data), Encoding: tt.encoding}
			if got := readCSVRows(t, spec); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestCSVOptionErrors(t *testing.T) {
	good := writeFile(t, "id,name\n1,a\n")
	badHeader := writeBytes(t, []byte("id,na\x81\n1,a\n"))
	noBOM := writeBytes(t, []byte("i\x00d\x00\n\x00"))
	tests := []struct {
		name  string
		spec  *commonv1.CsvSource
		code  codes.Code
		parts []string
	}{
		{"long quote", &commonv1.CsvSource{Path: good, Quote: "''"}, codes.InvalidArgument, []string{"source.csv.quote"}},
		{"non-ASCII quote", &commonv1.CsvSource{Path: good, Quote: "«"}, codes.InvalidArgument, []string{"source.csv.quote"}},
		{"quote is delimiter", &commonv1.CsvSource{Path: good, Quote: ","}, codes.InvalidArgument, []string{"source.csv.quote"}},
		{"quote is delimiter by default", &commonv1.CsvSource{Path: good, Quote: "'", Delimiter: "'"}, codes.InvalidArgument, []string{"source.csv.quote"}},
		{"newline quote", &commonv1.CsvSource{Path: good, Quote: "\n"}, codes.InvalidArgument, []string{"source.csv.quote"}},
		{"escape is delimiter", &commonv1.CsvSource{Path: good, Escape: ","}, codes.InvalidArgument, []string{"source.csv.escape"}},
		{"non-ASCII escape", &commonv1.CsvSource{Path: good, Escape: "é"}, codes.InvalidArgument, []string{"source.csv.escape"}},
		{"space quote with trim", &commonv1.CsvSource{Path: good, Quote: " ", TrimSpace: true}, codes.InvalidArgument, []string{"source.csv.quote"}},
		{"unknown encoding", &commonv1.CsvSource{Path: good, Encoding: "ebcdic"}, codes.InvalidArgument, []string{"source.csv.encoding", "ebcdic"}},
		{"backslash escape in gbk", &commonv1.CsvSource{Path: good, Escape: `\`, Encoding: "gbk"}, codes.InvalidArgument, []string{"source.csv.escape", "GBK"}},
		{"pipe delimiter in big5", &commonv1.CsvSource{Path: good, Delimiter: "|", Encoding: "big5"}, codes.InvalidArgument, []string{"source.csv.delimiter", "Big5"}},
		{"digit quote in gb18030", &commonv1.CsvSource{Path: good, Quote: "1", Encoding: "gb18030"}, codes.InvalidArgument, []string{"source.csv.quote"}},
		{"latin1 delimiter out of range", &commonv1.CsvSource{Path: good, Delimiter: "€", Encoding: "latin1"}, codes.InvalidArgument, []string{"source.csv.delimiter"}},
		{"utf-16 without BOM", &commonv1.CsvSource{Path: noBOM, Encoding: "utf-16"}, codes.InvalidArgument, []string{"source.csv.encoding", "byte order mark"}},
		{"undecodable header", &commonv1.CsvSource{Path: badHeader, Encoding: "gbk"}, codes.FailedPrecondition, []string{"header column 2", `na\x81`, "GBK"}},
	}
	s := newService(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.ReadBatch(context.Background(), &extractorv1.ReadBatchRequest{Source: csvSource(tt.spec), BatchSize: 10})
			wantCode(t, err, tt.code, tt.parts...)
			_, err = s.PlanPartitions(context.Background(), &extractorv1.PlanPartitionsRequest{Source: csvSource(tt.spec), Partitions: 3})
			wantCode(t, err, tt.code, tt.parts...)
		})
	}
	// A tab delimiter with a Latin-1 file is one byte like any other.
	spec := &commonv1.CsvSource{Path: writeBytes(t, []byte("a\xa7b\n1\xa72\n")), Delimiter: "§", Encoding: "latin1"}
	if got := readCSVRows(t, spec); !reflect.DeepEqual(got, []row{{ref: "line 2", vals: []string{"1", "2"}}}) {
		t.Fatalf("latin1 § delimiter: %q", got)
	}
}

// readPartitioned plans n partitions and reads each in batches of size,
// returning all rows in partition order.
func readPartitioned(t testing.TB, s *Service, src *commonv1.SourceSpec, n, size int) []row {
	t.Helper()
	p, err := s.PlanPartitions(context.Background(), &extractorv1.PlanPartitionsRequest{Source: src, Partitions: int32(n)})
	if err != nil {
		t.Fatal(err)
	}
	rs := p.GetRanges()
	if len(rs) == 0 || len(rs) > n || rs[0].GetLower() != "" || rs[len(rs)-1].GetUpper() != "" {
		t.Fatalf("%d partitions: ranges %v", n, rs)
	}
	var all []row
	for i, r := range rs {
		if i > 0 && !strings.HasPrefix(r.GetLower(), rs[i-1].GetUpper()+":") {
			t.Fatalf("range %d starts at %q, range %d ends at %q", i, r.GetLower(), i-1, rs[i-1].GetUpper())
		}
		rows, _ := readAll(t, s, src, r, size)
		if len(rows) == 0 && len(rs) > 1 {
			t.Fatalf("range %d (%v) is empty", i, r)
		}
		all = append(all, rows...)
	}
	return all
}

// TestCSVPartitions reads files as 1, 2, 3, 7 and 16 partitions in batches
// of 5: the rows, their source refs and rejects are the same every time.
func TestCSVPartitions(t *testing.T) {
	var gbkBody strings.Builder
	gbkBody.WriteString("id,name,note\r\n")
	for i := range 60 {
		fmt.Fprintf(&gbkBody, "%d,张三%d,'北京市\r\n朝阳区 #'%d#''\r\n", i, i, i)
		if i%9 == 0 {
			gbkBody.WriteString("ragged\r\n")
		}
	}
	gbkFile := encodeFile(t, simplifiedchinese.GBK, gbkBody.String())
	utf16File := encodeFile(t, unicode.UTF16(unicode.BigEndian, unicode.UseBOM), messyCSV(80))
	// No quote anywhere: the plan counts lines instead of parsing
	// (lineChunks), with blank lines, CRLF blank lines and ragged rows
	// around its boundaries.
	var plain strings.Builder
	plain.WriteString("id,name,note\n")
	for i := range 300 {
		fmt.Fprintf(&plain, "%d,name %d,note %d\r\n", i, i, i)
		switch {
		case i%11 == 0:
			plain.WriteString("ragged\n")
		case i%7 == 0:
			plain.WriteString("\n\r\n\n")
		case i%3 == 0:
			plain.WriteString("\n")
		}
	}
	tests := []struct {
		name    string
		spec    *commonv1.CsvSource
		rows    int
		rejects int
	}{
		{"messy UTF-8 with BOM, CRLF, quoted newlines, ragged rows", &commonv1.CsvSource{Path: writeFile(t, messyCSV(200))}, 200, 87},
		{"GBK with quote ', escape # and quoted CRLF", &commonv1.CsvSource{Path: gbkFile, Encoding: "gbk", Quote: "'", Escape: "#"}, 67, 7},
		{"UTF-16 transcoded", &commonv1.CsvSource{Path: utf16File, Encoding: "utf-16"}, 80, 24},
		{"no quotes, blank lines, CRLF", &commonv1.CsvSource{Path: writeFile(t, plain.String())}, 328, 28},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newService(t)
			src := csvSource(tt.spec)
			want, _ := readAll(t, s, src, nil, 1000)
			rejects := 0
			for _, r := range want {
				if r.reject != "" {
					rejects++
				}
			}
			if len(want) != tt.rows || rejects != tt.rejects {
				t.Fatalf("read %d rows, %d rejected, want %d, %d: %q", len(want), rejects, tt.rows, tt.rejects, want[:3])
			}
			for _, n := range []int{1, 2, 3, 7, 16, 64} {
				if got := readPartitioned(t, s, src, n, 5); !reflect.DeepEqual(got, want) {
					t.Fatalf("%d partitions:\n got %q\nwant %q", n, got, want)
				}
			}
		})
	}
}

// TestCSVPlanScanCap: past the scan cap the last chunk takes the rest.
func TestCSVPlanScanCap(t *testing.T) {
	defer func(v int64) { maxPlanScan = v }(maxPlanScan)
	maxPlanScan = 100
	s := newService(t)
	src := csvSource(&commonv1.CsvSource{Path: writeFile(t, messyCSV(100))})
	p, err := s.PlanPartitions(context.Background(), &extractorv1.PlanPartitionsRequest{Source: src, Partitions: 50})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(p.GetRanges()); n < 2 || n > 10 {
		t.Fatalf("%d ranges with a 100-byte scan cap", n)
	}
	want, _ := readAll(t, s, src, nil, 1000)
	if got := readPartitioned(t, s, src, 50, 7); !reflect.DeepEqual(got, want) {
		t.Fatal("capped plan reads other rows")
	}
}

// TestCSVRangeErrors: a bad range names its field.
func TestCSVRangeErrors(t *testing.T) {
	s := newService(t)
	src := csvSource(&commonv1.CsvSource{Path: writeFile(t, "id\n1\n2\n")})
	for _, tt := range []struct {
		kr    *commonv1.KeyRange
		field string
	}{
		{&commonv1.KeyRange{Lower: "x"}, "range.lower"},
		{&commonv1.KeyRange{Lower: "999:2"}, "range.lower"},
		{&commonv1.KeyRange{Upper: "-3"}, "range.upper"},
		{&commonv1.KeyRange{Upper: "abc"}, "range.upper"},
	} {
		_, err := s.ReadBatch(context.Background(), &extractorv1.ReadBatchRequest{Source: src, Range: tt.kr, BatchSize: 10})
		wantCode(t, err, codes.InvalidArgument, tt.field)
	}
}

// TestCSVUTF16Cache: a UTF-16 file is transcoded once per Service, again
// when it changes, and the copies go away with the Service.
func TestCSVUTF16Cache(t *testing.T) {
	s := newService(t)
	enc := unicode.UTF16(unicode.LittleEndian, unicode.UseBOM)
	path := encodeFile(t, enc, "id,name\n1,张三\n")
	src := csvSource(&commonv1.CsvSource{Path: path, Encoding: "utf-16"})
	read := func() []row { got, _ := readAll(t, s, src, nil, 10); return got }
	if got := read(); len(got) != 1 || got[0].vals[1] != "张三" {
		t.Fatalf("got %q", got)
	}
	read()
	tf := s.caches["csv.utf16"].(*csvTempFiles)
	if len(tf.files) != 1 {
		t.Fatalf("%d copies after two reads of one file, want 1", len(tf.files))
	}
	b, _ := enc.NewEncoder().Bytes([]byte("id,name\n1,张三\n2,臺北\n"))
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := read(); len(got) != 2 || got[1].vals[1] != "臺北" {
		t.Fatalf("after a change got %q", got)
	}
	dir := tf.dir
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("transcode dir %s still there after Close: %v", dir, err)
	}
	_, err := s.ReadBatch(context.Background(), &extractorv1.ReadBatchRequest{Source: src, BatchSize: 10})
	wantCode(t, err, codes.Unavailable)
}

// FuzzCSVPartitions: for any bytes and dialect, reading the file as k
// partitions gives exactly the rows of one sequential read.
func FuzzCSVPartitions(f *testing.F) {
	f.Add([]byte(messyCSV(30)), uint8(0), uint8(3), uint8(2))
	f.Add([]byte("a,b\n1,\"x\n\"\"y\"\n2,\"\\\"\"\r\n3,z"), uint8(1), uint8(7), uint8(1))
	f.Add([]byte("a;b\n 1 ; 'q;\n' \n2;'it''s'\n"), uint8(2), uint8(16), uint8(3))
	f.Add([]byte("id,n\n1,\xd5\xc5\xc8\xfd\n2,\x81\n"), uint8(3), uint8(2), uint8(5))
	f.Add([]byte("\xff\xfei\x00d\x00\n\x001\x00\n\x00\x00\xd8\n\x00"), uint8(4), uint8(3), uint8(1))
	f.Add([]byte("a,b\n1,2\n\n\r\n3,4\r\n\n5\n6,7\n\n"), uint8(0), uint8(4), uint8(0))
	dialects := []*commonv1.CsvSource{
		{},
		{Escape: `\`},
		{Quote: "'", TrimSpace: true, Delimiter: ";"},
		{Encoding: "gbk", NullMarker: "NULL"},
		{Encoding: "utf-16"},
		{Encoding: "latin1", Escape: "'", TrimSpace: true},
		{EmptyIsNull: true, IgnoreExtraFields: true},
		{Encoding: "gbk", Escape: "#", EmptyIsNull: true, IgnoreExtraFields: true, TrimSpace: true},
		{NoQuoting: true},
		{NoQuoting: true, TrimSpace: true, Delimiter: "|", EmptyIsNull: true, Encoding: "latin1"},
	}
	path := filepath.Join(f.TempDir(), "f.csv")
	opts := Options{FileRoots: []string{filepath.Dir(path)}}
	f.Fuzz(func(t *testing.T, data []byte, d, parts, size uint8) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		spec := proto.Clone(dialects[int(d)%len(dialects)]).(*commonv1.CsvSource)
		spec.Path = path
		testReadLimit = []int{0, 1, 3, 16}[int(size>>4)%4]
		defer func() { testReadLimit = 0 }()
		s, err := NewWithOptions(opts)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		src := csvSource(spec)
		if _, err := s.DescribeSource(context.Background(), &extractorv1.DescribeSourceRequest{Source: src}); err != nil {
			return // a file without a usable header
		}
		want, _ := readAll(t, s, src, nil, 1000)
		n := int(parts)%20 + 1
		if got := readPartitioned(t, s, src, n, int(size%7)+1); !reflect.DeepEqual(got, want) {
			t.Fatalf("%d partitions:\n got %q\nwant %q", n, got, want)
		}
	})
}

// FuzzCSVDialectDefault holds parseDialect, set to the default dialect, to
// parse, the fast path the differential fuzz test holds to encoding/csv.
func FuzzCSVDialectDefault(f *testing.F) {
	f.Add([]byte(messyCSV(20)), uint8(0), uint8(0))
	f.Add([]byte("a,b\n1,\"x\n\r"), uint8(0), uint8(1))
	f.Add([]byte("a§b\n1§\"\"\"§\"§2\n\"a\r\n\r\n\""), uint8(1), uint8(2))
	f.Add([]byte("1,\"unterminated\n2,b"), uint8(0), uint8(3))
	delims := [][]byte{{','}, []byte("§"), {'\t'}}
	f.Fuzz(func(t *testing.T, data []byte, d, limit uint8) {
		comma := delims[int(d)%len(delims)]
		testReadLimit = []int{0, 1, 2, 7}[int(limit)%4]
		defer func() { testReadLimit = 0 }()
		r := bytes.NewReader(data)
		fast := newScanner(r, 0, int64(len(data)), 1, comma, 0)
		defer fast.release()
		slow := newScanner(r, 0, int64(len(data)), 1, comma, 0)
		defer slow.release()
		slow.dialect = &csvDialect{quote: '"', errBare: csv.ErrBareQuote, errQuote: csv.ErrQuote}
		var a, b fieldSink
		for i := 0; ; i++ {
			if i > len(data)+1 {
				t.Fatal("no end")
			}
			sa, err1 := fast.next(&a)
			sb, err2 := slow.next(&b)
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			if sa != sb || fast.offset() != slow.offset() || fast.line != slow.line || fast.recLine != slow.recLine {
				t.Fatalf("record %d: status %d/%d offset %d/%d line %d/%d", i, sa, sb, fast.offset(), slow.offset(), fast.line, slow.line)
			}
			if sa == scanSyntax && fast.syntaxText() != slow.syntaxText() {
				t.Fatalf("record %d: %s / %s", i, fast.syntaxText(), slow.syntaxText())
			}
			if sa == scanRecord && a.join([]byte{0}) != b.join([]byte{0}) || a.n != b.n {
				t.Fatalf("record %d: fields %q / %q", i, a.join([]byte{0}), b.join([]byte{0}))
			}
			a.clear()
			b.clear()
			if sa == scanEOF {
				return
			}
		}
	})
}

// BenchmarkReadCSVGBK reads 1e5 GBK rows with Chinese text, an escape
// character and trimmed spaces: the dialect scanner and field decoding.
func BenchmarkReadCSVGBK(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("id,customer,city,amount,note\n")
	for i := range 100000 {
		fmt.Fprintf(&sb, "%d, 张三%d ,北京市朝阳区,%d.%02d,\"备注 #\"%d#\"\"\n", i, i%5000, i%997, i%100, i)
	}
	path := encodeFile(b, simplifiedchinese.GBK, sb.String())
	st, _ := os.Stat(path)
	spec := &commonv1.CsvSource{Path: path, Encoding: "gbk", Escape: "#", TrimSpace: true}
	b.SetBytes(st.Size())
	b.ReportAllocs()
	roots := dirRoots(b, path)
	for b.Loop() {
		cursor, rows := "", 0
		for {
			bt, done, err := readCSV(roots, spec, cursor, 10000)
			if err != nil {
				b.Fatal(err)
			}
			if len(bt.GetRejects()) > 0 {
				b.Fatal(bt.GetRejects()[0])
			}
			rows += int(bt.GetNumRows())
			if done {
				break
			}
			cursor = bt.GetLastKey()
		}
		if rows != 100000 {
			b.Fatalf("read %d rows", rows)
		}
	}
}

// TestCSVLineChunks: a quote-free file is planned by counting lines; a
// boundary after a blank line would read the record after it twice (the
// range before it reads blank lines with their record), so with blank lines
// everywhere every partition count must read each record once.
func TestCSVLineChunks(t *testing.T) {
	for _, tc := range []struct{ name, body string }{
		{"blank lines", "id,n\n1,a\n\n\n2,b\n\n\n3,c\n\n\n4,d\n"},
		{"CRLF blank lines", "id,n\r\n1,a\r\n\r\n\r\n2,b\r\n\r\n3,c\r\n\r\n\r\n\r\n4,d\r\n"},
		{"blank lines first and last", "id,n\n\n\n1,a\n2,b\n\n3,c\n\n\n"},
		{"no final newline", "id,n\n1,a\n\n2,b\n\n3,c"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newService(t)
			src := csvSource(&commonv1.CsvSource{Path: writeFile(t, tc.body)})
			want, _ := readAll(t, s, src, nil, 1000)
			if len(want) < 3 {
				t.Fatalf("read %d rows", len(want))
			}
			for n := 2; n <= len(tc.body); n++ {
				if got := readPartitioned(t, s, src, n, 2); !reflect.DeepEqual(got, want) {
					t.Fatalf("%d partitions:\n got %q\nwant %q", n, got, want)
				}
			}
		})
	}
}
