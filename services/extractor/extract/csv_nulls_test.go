package extract

import (
	"reflect"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/simplifiedchinese"
	"google.golang.org/protobuf/proto"
)

// TestCSVEmptyIsNullAndExtraFields: empty_is_null makes an unquoted empty
// field NULL while "" stays an empty string; ignore_extra_fields keeps the
// named fields of a longer record (fewer is still ragged). Each file is read
// in UTF-8 and GBK, by the RFC 4180 scanner and the dialect scanner.
func TestCSVEmptyIsNullAndExtraFields(t *testing.T) {
	// SELECT … INTO OUTFILE … FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED
	// BY '"' LINES TERMINATED BY ',\n': a delimiter ends every line.
	const outfile = "1,\"张三\",北京,\n2,\"李四\",,\n3,王五,\"\",\n4,赵六\n5,a,b,c,d\n"
	cols := []string{"id", "name", "city"}
	tests := []struct {
		name    string
		content string
		spec    *commonv1.CsvSource
		want    []row
	}{
		{
			name:    "outfile with trailing delimiter, extra fields ignored",
			content: outfile,
			spec:    &commonv1.CsvSource{NoHeader: true, Columns: cols, IgnoreExtraFields: true},
			want: []row{
				{ref: "line 1", vals: []string{"1", "张三", "北京"}},
				{ref: "line 2", vals: []string{"2", "李四", ""}},
				{ref: "line 3", vals: []string{"3", "王五", ""}},
				{ref: "line 4", vals: []string{null, null, null}, reject: "ragged_row||line 4: 2 fields, expected 3|4,赵六"},
				{ref: "line 5", vals: []string{"5", "a", "b"}},
			},
		},
		{
			name:    "outfile with trailing delimiter, empty is NULL",
			content: outfile,
			spec:    &commonv1.CsvSource{NoHeader: true, Columns: cols, IgnoreExtraFields: true, EmptyIsNull: true},
			want: []row{
				{ref: "line 1", vals: []string{"1", "张三", "北京"}},
				{ref: "line 2", vals: []string{"2", "李四", null}},
				{ref: "line 3", vals: []string{"3", "王五", ""}},
				{ref: "line 4", vals: []string{null, null, null}, reject: "ragged_row||line 4: 2 fields, expected 3|4,赵六"},
				{ref: "line 5", vals: []string{"5", "a", "b"}},
			},
		},
		{
			name:    "without ignore_extra_fields a trailing delimiter is ragged",
			content: "1,张三,北京,\n",
			spec:    &commonv1.CsvSource{NoHeader: true, Columns: cols},
			want:    []row{{ref: "line 1", vals: []string{null, null, null}, reject: "ragged_row||line 1: 4 fields, expected 3|1,张三,北京,"}},
		},
		{
			name:    "export where empty means NULL and quoted empty is a string",
			content: "id,name,note\r\n1,,\"\"\r\n2,\"\",\r\n,上海,\"多\r\n行\"\r\n\r\n4,\"\"\"\",x\r\n",
			spec:    &commonv1.CsvSource{EmptyIsNull: true},
			want: []row{
				{ref: "line 2", vals: []string{"1", null, ""}},
				{ref: "line 3", vals: []string{"2", "", null}},
				{ref: "line 4", vals: []string{null, "上海", "多\n行"}},
				{ref: "line 7", vals: []string{"4", `"`, "x"}},
			},
		},
		{
			name:    "without empty_is_null empty fields are empty strings",
			content: "id,name\n1,\n2,\"\"\n",
			want: []row{
				{ref: "line 2", vals: []string{"1", ""}},
				{ref: "line 3", vals: []string{"2", ""}},
			},
		},
		{
			name:    "empty_is_null beside a null marker",
			content: "id,name,note\n1,NULL,\n2,\"NULL\",\"\"\n",
			spec:    &commonv1.CsvSource{EmptyIsNull: true, NullMarker: "NULL"},
			want: []row{
				{ref: "line 2", vals: []string{"1", null, null}},
				{ref: "line 3", vals: []string{"2", null, ""}},
			},
		},
		{
			name:    "a record shorter than the header is ragged with ignore_extra_fields",
			content: "id,name,city\n1,张三\n2,李四,北京,x,y\n",
			spec:    &commonv1.CsvSource{IgnoreExtraFields: true, EmptyIsNull: true},
			want: []row{
				{ref: "line 2", vals: []string{null, null, null}, reject: "ragged_row||line 2: 2 fields, expected 3|1,张三"},
				{ref: "line 3", vals: []string{"2", "李四", "北京"}},
			},
		},
		{
			name:    "extra quoted fields across lines are dropped",
			content: "id,name\n1,a,\"x\ny\",\"\"\n2,b\n",
			spec:    &commonv1.CsvSource{IgnoreExtraFields: true},
			want: []row{
				{ref: "line 2", vals: []string{"1", "a"}},
				{ref: "line 4", vals: []string{"2", "b"}},
			},
		},
	}
	encodings := []struct {
		name string
		enc  encoding.Encoding
	}{{"", encoding.Nop}, {"gbk", simplifiedchinese.GBK}}
	for _, tt := range tests {
		for _, e := range encodings {
			for _, dialect := range []bool{false, true} {
				name := tt.name + "/" + e.name
				if dialect {
					name += "/escape"
				}
				t.Run(name, func(t *testing.T) {
					spec := &commonv1.CsvSource{}
					if tt.spec != nil {
						spec = proto.Clone(tt.spec).(*commonv1.CsvSource)
					}
					spec.Path = encodeFile(t, e.enc, tt.content)
					spec.Encoding = e.name
					if dialect {
						spec.Escape = "#" // the dialect scanner (safe in GBK); no # in the files
					}
					if got := readCSVRows(t, spec); !reflect.DeepEqual(got, tt.want) {
						t.Fatalf("\n got %q\nwant %q", got, tt.want)
					}
				})
			}
		}
	}
}

// TestCSVEmptyIsNullTrim: with trim_space an unquoted field of only spaces
// is empty, so NULL; a quoted empty field with spaces around it stays "".
func TestCSVEmptyIsNullTrim(t *testing.T) {
	spec := &commonv1.CsvSource{Path: writeFile(t, "id;a;b\n1;   ; \"\" \n2;\t;x\n"), Delimiter: ";", TrimSpace: true, EmptyIsNull: true}
	want := []row{
		{ref: "line 2", vals: []string{"1", null, ""}},
		{ref: "line 3", vals: []string{"2", null, "x"}},
	}
	if got := readCSVRows(t, spec); !reflect.DeepEqual(got, want) {
		t.Fatalf("\n got %q\nwant %q", got, want)
	}
}

// TestCSVIgnoredFieldsNotChecked: bytes that are not UTF-8 in a field that
// ignore_extra_fields drops do not quarantine the row; in a kept field they
// still do.
func TestCSVIgnoredFieldsNotChecked(t *testing.T) {
	spec := &commonv1.CsvSource{Path: writeBytes(t, []byte("id,a\n1,x,\xff\n2,\xfe,y\n")), IgnoreExtraFields: true}
	want := []row{
		{ref: "line 2", vals: []string{"1", "x"}},
		{ref: "line 3", vals: []string{null, null}, reject: "encoding|a|line 3: column a: invalid UTF-8 in \\xfe|2,\\xfe,y"},
	}
	if got := readCSVRows(t, spec); !reflect.DeepEqual(got, want) {
		t.Fatalf("\n got %q\nwant %q", got, want)
	}
}
