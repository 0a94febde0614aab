package extract

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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

func jsonlSource(path string, fields ...string) *commonv1.SourceSpec {
	s := &commonv1.JsonlSource{Path: path}
	for _, f := range fields {
		name, p, _ := strings.Cut(f, "=")
		s.Fields = append(s.Fields, &commonv1.JsonField{Name: name, Path: p})
	}
	return &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Jsonl{Jsonl: s}}
}

func writeJSONL(t testing.TB, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "in.jsonl")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadJSONL(t *testing.T) {
	tests := []struct {
		name    string
		content string
		fields  []string // name=path; none: keys of the first object
		cols    []string
		want    []row
	}{
		{
			name:    "top-level keys, values as written",
			content: `{"id": 1, "amount": 12.50, "big": 123456789012345678901234567890, "ok": true, "no": false, "nil": null, "s": "a\"b\u00e9\n"}` + "\n",
			cols:    []string{"id", "amount", "big", "ok", "no", "nil", "s"},
			want:    []row{{ref: "line 1", vals: []string{"1", "12.50", "123456789012345678901234567890", "true", "false", null, "a\"bé\n"}}},
		},
		{
			name: "nested paths, missing paths, objects and arrays compact",
			content: `{"customer": {"address": {"city": "Lyon"}}, "items": [{"sku": "A-1", "q": 2e3}, {"sku": "B"}], "tags": [ 1, "x" , {"k" : [ ]} ]}` + "\n" +
				`{"customer": {"address": null}, "items": []}` + "\n" +
				`{"customer": "flat", "items": {"0": {"sku": "key zero"}}}` + "\n",
			fields: []string{"city=customer.address.city", "sku=items.0.sku", "q=items.0.q", "second=items.1.sku", "tags", "customer.address"},
			cols:   []string{"city", "sku", "q", "second", "tags", "customer.address"},
			want: []row{
				{ref: "line 1", vals: []string{"Lyon", "A-1", "2e3", "B", `[1,"x",{"k":[]}]`, `{"city":"Lyon"}`}},
				{ref: "line 2", vals: []string{null, null, null, null, null, null}},
				{ref: "line 3", vals: []string{null, "key zero", null, null, null, null}},
			},
		},
		{
			name:    "broken lines, blank lines, not an object",
			content: "\xEF\xBB\xBF{\"a\": 1}\n\n   \n{\"a\": 2,}\n[1, 2]\n\"text\"\n{\"a\": \"x\"}\r\n{\"a\": 3}",
			cols:    []string{"a"},
			want: []row{
				{ref: "line 1", vals: []string{"1"}},
				{ref: "line 4", vals: []string{null}, reject: `json_syntax||line 4: invalid JSON at byte 9: invalid character '}' looking for beginning of object key string|{"a": 2,}`},
				{ref: "line 5", vals: []string{null}, reject: `json_syntax||line 5: a JSON array, not an object|[1, 2]`},
				{ref: "line 6", vals: []string{null}, reject: `json_syntax||line 6: a JSON string, not an object|"text"`},
				{ref: "line 7", vals: []string{"x"}},
				{ref: "line 8", vals: []string{"3"}},
			},
		},
		{
			name:    "encoding",
			content: "{\"a\": \"ok\", \"b\": 1}\n{\"a\": \"\xff\", \"b\": 2}\n{\"a\": \"\\ud800\", \"b\": 3}\n{\"a\": \"\\ud83d\\ude00\", \"b\": 4}\n",
			cols:    []string{"a", "b"},
			want: []row{
				{ref: "line 1", vals: []string{"ok", "1"}},
				{ref: "line 2", vals: []string{null, null}, reject: `encoding||line 2: invalid UTF-8 at byte 8|{"a": "\xff", "b": 2}`},
				{ref: "line 3", vals: []string{null, null}, reject: `encoding|a|line 3: column a: lone UTF-16 surrogate escape in "\ud800"|{"a": "\ud800", "b": 3}`},
				{ref: "line 4", vals: []string{"😀", "4"}},
			},
		},
		{
			name:    "duplicate keys: the last one, as encoding/json",
			content: `{"a": 1, "a": 2, "b\u002ec": "escaped key"}` + "\n",
			fields:  []string{"a", "bc=b.c"},
			cols:    []string{"a", "bc"},
			want:    []row{{ref: "line 1", vals: []string{"2", null}}},
		},
	}
	s := newService(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := jsonlSource(writeJSONL(t, tc.content), tc.fields...)
			d, err := s.DescribeSource(context.Background(), &extractorv1.DescribeSourceRequest{Source: src})
			if err != nil {
				t.Fatal(err)
			}
			var cols []string
			for _, c := range d.GetColumns() {
				cols = append(cols, c.GetName())
				if c.GetType() != textType || c.GetPgType() != "text" {
					t.Errorf("column %s: %v %q", c.GetName(), c.GetType(), c.GetPgType())
				}
			}
			if !reflect.DeepEqual(cols, tc.cols) {
				t.Errorf("columns %q, want %q", cols, tc.cols)
			}
			for _, size := range []int{1, 2, 1000} {
				got, _ := readAll(t, s, src, nil, size)
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("batch size %d:\n got %q\nwant %q", size, got, tc.want)
				}
			}
		})
	}
}

// jsonlFixture writes n records with blank, broken and long lines mixed in.
func jsonlFixture(t testing.TB, n int) string {
	var sb strings.Builder
	for i := 1; i <= n; i++ {
		switch {
		case i%17 == 0:
			sb.WriteString("\n")
		case i%23 == 0:
			sb.WriteString(`{"id": ` + strconv.Itoa(i) + ", broken\n")
		default:
			fmt.Fprintf(&sb, `{"id": %d, "name": "n%d", "pad": %q, "o": {"x": [%d]}}`+"\n", i, i, strings.Repeat("p", i%40), i)
		}
	}
	return writeJSONL(t, sb.String())
}

func TestJSONLPartitions(t *testing.T) {
	s := newService(t)
	tests := []struct {
		name string
		src  *commonv1.SourceSpec
		rows int
		read func(testing.TB, *Service, *commonv1.SourceSpec, *commonv1.KeyRange, int) []row
	}{
		{
			name: "one row per line",
			src:  jsonlSource(jsonlFixture(t, 500), "id", "name", "x=o.x.0"),
			rows: 500 - 500/17,
			read: func(t testing.TB, s *Service, src *commonv1.SourceSpec, kr *commonv1.KeyRange, size int) []row {
				rs, _ := readAll(t, s, src, kr, size)
				return rs
			},
		},
		{
			// Lines of 0 to 4 elements: batches of any size are cut on lines.
			name: "explode",
			src:  jsonlExplode(jsonlExplodeFixture(t, 500), "items", "id", "sku=item.sku", "q=item.q", "name"),
			rows: 842,
			read: func(t testing.TB, s *Service, src *commonv1.SourceSpec, kr *commonv1.KeyRange, size int) []row {
				rs, _, _ := readAllLines(t, s, src, kr, size)
				return rs
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			whole := tc.read(t, s, tc.src, nil, 100000)
			if len(whole) != tc.rows {
				t.Fatalf("%d rows, want %d", len(whole), tc.rows)
			}
			for _, n := range []int{1, 2, 3, 7, 64, 10000} {
				plan, err := s.PlanPartitions(context.Background(), &extractorv1.PlanPartitionsRequest{Source: tc.src, Partitions: int32(n)})
				if err != nil {
					t.Fatal(err)
				}
				if n > 1 && n < 100 && len(plan.GetRanges()) != n {
					t.Errorf("%d partitions planned as %d ranges", n, len(plan.GetRanges()))
				}
				for _, size := range []int{1, 3, 13, 1000} {
					var got []row
					for _, kr := range plan.GetRanges() {
						got = append(got, tc.read(t, s, tc.src, kr, size)...)
					}
					if !reflect.DeepEqual(got, whole) {
						t.Fatalf("%d partitions, batch size %d: rows differ from one partition", n, size)
					}
				}
			}
		})
	}
}

func TestJSONLCursorDeterminism(t *testing.T) {
	p := jsonlFixture(t, 200)
	s := newService(t)
	src := jsonlSource(p)
	_, cursors := readAll(t, s, src, nil, 9)
	exploded := jsonlExplode(jsonlExplodeFixture(t, 200), "items")
	_, explodedCursors, _ := readAllLines(t, s, exploded, nil, 9)
	for _, tc := range []struct {
		src     *commonv1.SourceSpec
		cursors []string
	}{{src, cursors}, {exploded, explodedCursors}} {
		for _, c := range tc.cursors {
			a, err1 := s.ReadBatch(context.Background(), &extractorv1.ReadBatchRequest{Source: tc.src, Cursor: c, BatchSize: 9})
			b, err2 := s.ReadBatch(context.Background(), &extractorv1.ReadBatchRequest{Source: tc.src, Cursor: c, BatchSize: 9})
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			if !proto.Equal(a, b) {
				t.Fatalf("cursor %q gives different batches", c)
			}
		}
	}
	// The keys of the first object name the columns.
	d, err := s.DescribeSource(context.Background(), &extractorv1.DescribeSourceRequest{Source: src})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.GetColumns()) != 4 || d.GetColumns()[3].GetName() != "o" || d.GetEstimatedRows() < 150 || d.GetEstimatedRows() > 250 {
		t.Errorf("describe: %v", d)
	}
}

func TestJSONLErrors(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	good := writeJSONL(t, "{\"a\": 1}\n")
	tests := []struct {
		name  string
		src   *commonv1.SourceSpec
		code  codes.Code
		parts []string
	}{
		{"no path", jsonlSource(""), codes.InvalidArgument, []string{"source.jsonl.path"}},
		{"missing", jsonlSource(filepath.Join(t.TempDir(), "x.jsonl")), codes.InvalidArgument, []string{"source.jsonl.path", "x.jsonl", notInRoots}},
		{"empty name", jsonlSource(good, "=a"), codes.InvalidArgument, []string{"source.jsonl.fields[0].name"}},
		{"twice", jsonlSource(good, "a", "a"), codes.InvalidArgument, []string{"source.jsonl.fields[1].name"}},
		{"empty segment", jsonlSource(good, "a=x..y"), codes.InvalidArgument, []string{"source.jsonl.fields[0].path"}},
		{"first line not an object", jsonlSource(writeJSONL(t, "\n[1]\n")), codes.FailedPrecondition, []string{"line 2", "source.jsonl.fields"}},
		{"empty file", jsonlSource(writeJSONL(t, "")), codes.FailedPrecondition, []string{"no JSON object"}},
	}
	for _, tc := range tests {
		_, err := s.DescribeSource(ctx, &extractorv1.DescribeSourceRequest{Source: tc.src})
		t.Run(tc.name, func(t *testing.T) { wantCode(t, err, tc.code, tc.parts...) })
	}
	for _, tc := range []struct {
		cursor string
		kr     *commonv1.KeyRange
		field  string
	}{
		{"x", nil, "cursor"}, {"100:1", nil, "cursor"}, {"", &commonv1.KeyRange{Lower: "z"}, "range.lower"},
		{"", &commonv1.KeyRange{Upper: "99"}, "range.upper"},
	} {
		_, err := s.ReadBatch(ctx, &extractorv1.ReadBatchRequest{Source: jsonlSource(good), Cursor: tc.cursor, Range: tc.kr})
		wantCode(t, err, codes.InvalidArgument, tc.field)
	}
}

// refLookup walks a value decoded by encoding/json the way a path means.
func refLookup(v any, path []string) (any, bool) {
	for _, seg := range path {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[seg]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(x) || strconv.Itoa(i) != seg {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

func decodeNumber(t *testing.T, b []byte) any {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%q: %v", b, err)
	}
	return v
}

// FuzzJSONLookup compares path extraction with encoding/json.
func FuzzJSONLookup(f *testing.F) {
	f.Add(`{"a": {"b": [1, {"c": "x"}]}}`, "a.b.1.c")
	f.Add(`{"a": 1, "a": {"z": 2}}`, "a.z")
	f.Add(`{"k\u002e": "v", "n": -1.50e+3}`, "n")
	f.Add(`{"s": "\ud83d\ude00\n\"", "t": [ ]}`, "s")
	f.Add(`{"o": { "x" : [ true , null ] } }`, "o")
	f.Add(`{"items": [ [ ], {"a": [1, 2]} , "s", 3 ]}`, "items")
	f.Fuzz(func(t *testing.T, doc, path string) {
		b := []byte(doc)
		if !utf8.Valid(b) || !json.Valid(b) || path == "" {
			return
		}
		segs := strings.Split(path, ".")
		var scratch []byte
		got, found := jsonLookup(b, segs, &scratch)
		want, ok := refLookup(decodeNumber(t, b), segs)
		if b[jsonWS(b, 0)] == '{' {
			if fv := jsonFields(b, []jsonField{{name: "x", path: segs}}, nil, &scratch); (fv[0] != nil) != found || string(fv[0]) != string(got) {
				t.Fatalf("%s at %q: one-pass lookup %q, path lookup %q", doc, path, fv[0], got)
			}
		}
		if found != ok {
			t.Fatalf("%s at %q: found %v, encoding/json %v", doc, path, found, ok)
		}
		if !found {
			return
		}
		// explode counts the elements of the array it finds.
		if arr, ok := want.([]any); ok && jsonLen(got) != len(arr) {
			t.Fatalf("%s at %q: %d elements, encoding/json %d", doc, path, jsonLen(got), len(arr))
		}
		if c := appendJSONCompact(nil, got); true {
			var ref bytes.Buffer
			if err := json.Compact(&ref, got); err != nil || ref.String() != string(c) {
				t.Fatalf("compact %q = %q, encoding/json %q (%v)", got, c, ref.String(), err)
			}
		}
		switch w := want.(type) {
		case string:
			s, err := appendJSONString(nil, got)
			if err == nil && string(s) != w {
				t.Fatalf("%s at %q: %q, encoding/json %q", doc, path, s, w)
			}
			if err != nil && !strings.Contains(w, "\uFFFD") {
				t.Fatalf("%s at %q: %v but encoding/json read %q", doc, path, err, w)
			}
		case json.Number:
			if string(got) != string(w) {
				t.Fatalf("%s at %q: number %q, encoding/json %q", doc, path, got, w)
			}
		case bool:
			if string(got) != strconv.FormatBool(w) {
				t.Fatalf("%s at %q: %q, want %v", doc, path, got, w)
			}
		case nil:
			if string(got) != "null" {
				t.Fatalf("%s at %q: %q, want null", doc, path, got)
			}
		default:
			if !reflect.DeepEqual(decodeNumber(t, appendJSONCompact(nil, got)), w) {
				t.Fatalf("%s at %q: %q is not the value encoding/json found", doc, path, got)
			}
		}
	})
}

func BenchmarkReadJSONL(b *testing.B) {
	var sb strings.Builder
	for i := range 10000 {
		fmt.Fprintf(&sb, `{"id": %d, "name": "customer %d", "amount": %d.25, "city": "Lyon", "ok": true, "o": {"a": [1, 2]}, "note": "x\ty", "n": null}`+"\n", i, i, i)
	}
	p := writeJSONL(b, sb.String())
	s := newService(b)
	src := jsonlSource(p)
	b.SetBytes(int64(sb.Len()))
	b.ReportAllocs()
	for b.Loop() {
		resp, err := s.ReadBatch(context.Background(), &extractorv1.ReadBatchRequest{Source: src, BatchSize: 10000})
		if err != nil || resp.GetBatch().GetNumRows() != 10000 {
			b.Fatal(err)
		}
	}
}
