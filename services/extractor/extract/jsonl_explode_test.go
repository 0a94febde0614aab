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

func jsonlExplode(path, explode string, fields ...string) *commonv1.SourceSpec {
	src := jsonlSource(path, fields...)
	src.GetJsonl().Explode = explode
	return src
}

// lineOf is the line number a source ref starts with ("line N ...").
func lineOf(t testing.TB, ref string) int64 {
	t.Helper()
	f := strings.Fields(ref)
	if len(f) < 2 || f[0] != "line" {
		t.Fatalf("source ref %q is not line N", ref)
	}
	n, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		t.Fatalf("source ref %q: %v", ref, err)
	}
	return n
}

// readAllLines is readAll for exploded sources: batches are cut on line
// boundaries, so a batch may pass the batch size only with the rows of a
// single line. It also returns each batch's row count.
func readAllLines(t testing.TB, s *Service, src *commonv1.SourceSpec, kr *commonv1.KeyRange, size int) (rows []row, cursors []string, counts []int) {
	t.Helper()
	cursor := ""
	lastLine := int64(0)
	for i := 0; ; i++ {
		if i > 100000 {
			t.Fatal("no end after 100000 batches")
		}
		resp, err := s.ReadBatch(context.Background(), &extractorv1.ReadBatchRequest{Source: src, Range: kr, Cursor: cursor, BatchSize: int32(size)})
		if err != nil {
			t.Fatalf("ReadBatch(cursor %q): %v", cursor, err)
		}
		b := resp.GetBatch()
		rs := rowsOf(t, b)
		if len(rs) > size && lineOf(t, rs[0].ref) != lineOf(t, rs[len(rs)-1].ref) {
			t.Fatalf("batch at cursor %q has %d rows from several lines, batch size %d", cursor, len(rs), size)
		}
		// A line's rows never straddle two batches.
		if len(rs) > 0 && lineOf(t, rs[0].ref) <= lastLine {
			t.Fatalf("batch at cursor %q starts in line %d, the previous batch ended in line %d", cursor, lineOf(t, rs[0].ref), lastLine)
		}
		if len(rs) > 0 {
			lastLine = lineOf(t, rs[len(rs)-1].ref)
		}
		cursors = append(cursors, cursor)
		counts = append(counts, len(rs))
		rows = append(rows, rs...)
		if resp.GetDone() {
			return rows, cursors, counts
		}
		// The orchestrator takes an empty batch for the end of a partition.
		if len(rs) == 0 {
			t.Fatalf("empty batch without done at cursor %q", cursor)
		}
		cursor = b.GetLastKey()
	}
}

func TestReadJSONLExplode(t *testing.T) {
	tests := []struct {
		name    string
		content string
		explode string
		fields  []string
		cols    []string
		want    []row
	}{
		{
			name: "derived columns, missing, null and empty arrays give no rows",
			content: `{"id": 1, "items": [{"sku": "A", "q": 2}, {"sku": "B", "q": 1.50}], "note": "x"}` + "\n" +
				`{"id": 2, "items": []}` + "\n" +
				`{"id": 3}` + "\n" +
				`{"id": 4, "items": null}` + "\n" +
				`{"id": 5, "items": [{"sku": "C", "extra": true}, {}]}` + "\n",
			explode: "items",
			cols:    []string{"id", "note", "item.sku", "item.q"},
			want: []row{
				{ref: "line 1 item 0", vals: []string{"1", "x", "A", "2"}},
				{ref: "line 1 item 1", vals: []string{"1", "x", "B", "1.50"}},
				{ref: "line 5 item 0", vals: []string{"5", null, "C", null}},
				{ref: "line 5 item 1", vals: []string{"5", null, null, null}},
			},
		},
		{
			name: "not arrays, scalars, nested arrays, broken lines, encoding",
			content: `{"id": 1, "items": "not an array"}` + "\n" +
				`{"id": 2, "items": {"0": {"sku": "obj"}}}` + "\n" +
				`{"id": 3, "items": 7}` + "\n" +
				`{"id": 4, "items": [1, "two", null, [3, [4]], {"sku": "s"}, true]}` + "\n" +
				`[1, 2]` + "\n" +
				`{"id": 5, broken` + "\n" +
				`{"id": 6, "items": [{"sku": "\ud800"}, {"sku": "ok"}]}` + "\n" +
				`{"id": "\ud800", "items": [{"sku": "p"}]}` + "\n" +
				"{\"id\": \"\xff\", \"items\": [1]}\n",
			explode: "items",
			fields:  []string{"id", "sku=item.sku", "whole=item", "first=item.0", "all=items"},
			cols:    []string{"id", "sku", "whole", "first", "all"},
			want: []row{
				{ref: "line 1", vals: []string{null, null, null, null, null}, reject: `json_type||line 1: explode path items is a JSON string, not an array|{"id": 1, "items": "not an array"}`},
				{ref: "line 2", vals: []string{null, null, null, null, null}, reject: `json_type||line 2: explode path items is a JSON object, not an array|{"id": 2, "items": {"0": {"sku": "obj"}}}`},
				{ref: "line 3", vals: []string{null, null, null, null, null}, reject: `json_type||line 3: explode path items is a JSON number, not an array|{"id": 3, "items": 7}`},
				{ref: "line 4 item 0", vals: []string{"4", null, "1", null, `[1,"two",null,[3,[4]],{"sku":"s"},true]`}},
				{ref: "line 4 item 1", vals: []string{"4", null, "two", null, `[1,"two",null,[3,[4]],{"sku":"s"},true]`}},
				{ref: "line 4 item 2", vals: []string{"4", null, null, null, `[1,"two",null,[3,[4]],{"sku":"s"},true]`}},
				{ref: "line 4 item 3", vals: []string{"4", null, "[3,[4]]", "3", `[1,"two",null,[3,[4]],{"sku":"s"},true]`}},
				{ref: "line 4 item 4", vals: []string{"4", "s", `{"sku":"s"}`, null, `[1,"two",null,[3,[4]],{"sku":"s"},true]`}},
				{ref: "line 4 item 5", vals: []string{"4", null, "true", null, `[1,"two",null,[3,[4]],{"sku":"s"},true]`}},
				{ref: "line 5", vals: []string{null, null, null, null, null}, reject: `json_syntax||line 5: a JSON array, not an object|[1, 2]`},
				{ref: "line 6", vals: []string{null, null, null, null, null}, reject: `json_syntax||line 6: invalid JSON at byte 11: invalid character 'b' looking for beginning of object key string|{"id": 5, broken`},
				{ref: "line 7 item 0", vals: []string{null, null, null, null, null}, reject: `encoding|sku|line 7 item 0: column sku: lone UTF-16 surrogate escape in "\ud800"|{"sku": "\ud800"}`},
				{ref: "line 7 item 1", vals: []string{"6", "ok", `{"sku":"ok"}`, null, `[{"sku":"\ud800"},{"sku":"ok"}]`}},
				{ref: "line 8 item 0", vals: []string{null, null, null, null, null}, reject: `encoding|id|line 8 item 0: column id: lone UTF-16 surrogate escape in "\ud800"|{"id": "\ud800", "items": [{"sku": "p"}]}`},
				{ref: "line 9", vals: []string{null, null, null, null, null}, reject: `encoding||line 9: invalid UTF-8 at byte 9|{"id": "\xff", "items": [1]}`},
			},
		},
		{
			name: "nested path: top-level keys stay, elements of the first non-empty array name the columns",
			content: `{"id": 1, "order": {"lines": []}}` + "\n" +
				`{"id": 2, "order": {"lines": ["a", "b"]}}` + "\n" +
				`{"id": 3, "order": "flat"}` + "\n" +
				`{"id": 4, "order": [{"lines": ["c"]}]}` + "\n",
			explode: "order.lines",
			cols:    []string{"id", "order", "item"},
			want: []row{
				{ref: "line 2 item 0", vals: []string{"2", `{"lines":["a","b"]}`, "a"}},
				{ref: "line 2 item 1", vals: []string{"2", `{"lines":["a","b"]}`, "b"}},
			},
		},
		{
			name:    "path through an array index",
			content: `{"orders": [{"items": [10, 11]}, {"items": [12]}]}` + "\n" + `{"orders": []}` + "\n",
			explode: "orders.0.items",
			fields:  []string{"v=item"},
			cols:    []string{"v"},
			want: []row{
				{ref: "line 1 item 0", vals: []string{"10"}},
				{ref: "line 1 item 1", vals: []string{"11"}},
			},
		},
		{
			name:    "duplicate keys: the last array, as encoding/json",
			content: `{"items": [1], "items": [2, 3]}` + "\n",
			explode: "items",
			fields:  []string{"item"},
			cols:    []string{"item"},
			want: []row{
				{ref: "line 1 item 0", vals: []string{"2"}},
				{ref: "line 1 item 1", vals: []string{"3"}},
			},
		},
		{
			name:    "BOM, CRLF, blank lines, whitespace in the array, a top-level key named item",
			content: "\xEF\xBB\xBF{\"item\": [ {\"a\" : 1} , {\"a\":\"x\\ty\"} ] }\r\n\n  \r\n{\"item\": [ ]}\r\n{\"item\":[{\"a\":3}]}",
			explode: "item",
			cols:    []string{"item.a"},
			want: []row{
				{ref: "line 1 item 0", vals: []string{"1"}},
				{ref: "line 1 item 1", vals: []string{"x\ty"}},
				{ref: "line 5 item 0", vals: []string{"3"}},
			},
		},
	}
	s := newService(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := jsonlExplode(writeJSONL(t, tc.content), tc.explode, tc.fields...)
			d, err := s.DescribeSource(context.Background(), &extractorv1.DescribeSourceRequest{Source: src})
			if err != nil {
				t.Fatal(err)
			}
			var cols []string
			for _, c := range d.GetColumns() {
				cols = append(cols, c.GetName())
			}
			if !reflect.DeepEqual(cols, tc.cols) {
				t.Errorf("columns %q, want %q", cols, tc.cols)
			}
			if d.GetEstimatedRows() != int64(len(tc.want)) {
				t.Errorf("estimated %d rows, want %d (a small file is counted whole)", d.GetEstimatedRows(), len(tc.want))
			}
			for _, size := range []int{1, 2, 1000} {
				got, _, _ := readAllLines(t, s, src, nil, size)
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("batch size %d:\n got %q\nwant %q", size, got, tc.want)
				}
			}
		})
	}
}

// TestJSONLExplodeBatches pins where batches are cut: before a line whose
// rows would pass the batch size, unless the batch is still empty.
func TestJSONLExplodeBatches(t *testing.T) {
	// Lines with 3, 0, 1, 2, 5 and 1 elements.
	var sb strings.Builder
	for i, n := range []int{3, 0, 1, 2, 5, 1} {
		fmt.Fprintf(&sb, `{"id": %d, "items": [%s]}`+"\n", i+1, strings.TrimSuffix(strings.Repeat("0,", n), ","))
	}
	src := jsonlExplode(writeJSONL(t, sb.String()), "items", "id", "item")
	s := newService(t)
	for _, tc := range []struct {
		size int
		want []int
	}{
		{1, []int{3, 1, 2, 5, 1}},
		{2, []int{3, 1, 2, 5, 1}},
		{3, []int{3, 3, 5, 1}},
		{4, []int{4, 2, 5, 1}},
		{6, []int{6, 6}},
		{12, []int{12}},
	} {
		_, cursors, counts := readAllLines(t, s, src, nil, tc.size)
		if !reflect.DeepEqual(counts, tc.want) {
			t.Errorf("batch size %d: batches of %v rows, want %v", tc.size, counts, tc.want)
		}
		// Cursors stay <offset>:<line>, and a retried batch is the same batch.
		for _, c := range cursors {
			if c == "" {
				continue
			}
			if _, _, err := parseCursor(c); err != nil {
				t.Fatalf("cursor %q: %v", c, err)
			}
			a, err1 := s.ReadBatch(context.Background(), &extractorv1.ReadBatchRequest{Source: src, Cursor: c, BatchSize: int32(tc.size)})
			b, err2 := s.ReadBatch(context.Background(), &extractorv1.ReadBatchRequest{Source: src, Cursor: c, BatchSize: int32(tc.size)})
			if err1 != nil || err2 != nil || !proto.Equal(a, b) {
				t.Fatalf("cursor %q gives different batches (%v, %v)", c, err1, err2)
			}
		}
	}
}

func TestJSONLExplodeErrors(t *testing.T) {
	s := newService(t)
	good := writeJSONL(t, `{"a": 1, "items": [{"b": 2}]}`+"\n")
	tests := []struct {
		name  string
		src   *commonv1.SourceSpec
		code  codes.Code
		parts []string
	}{
		{"empty segment", jsonlExplode(good, "items..x"), codes.InvalidArgument, []string{"source.jsonl.explode", "items..x"}},
		{"empty item path segment", jsonlExplode(good, "items", "x=item."), codes.InvalidArgument, []string{"source.jsonl.fields[0].path"}},
		{"no element anywhere", jsonlExplode(writeJSONL(t, `{"a": 1, "items": []}`+"\n"+`{"a": 2}`+"\n"), "items"), codes.FailedPrecondition, []string{"source.jsonl.fields", `"items"`, "give the fields"}},
		{"only empty objects", jsonlExplode(writeJSONL(t, `{"a": 1, "items": [{}, {}]}`+"\n"), "items"), codes.FailedPrecondition, []string{"source.jsonl.fields"}},
		{"item column is a top-level key", jsonlExplode(writeJSONL(t, `{"item.b": 1, "items": [{"b": 2}]}`+"\n"), "items"), codes.FailedPrecondition, []string{`"item.b"`, "line 1", "top-level key"}},
		{"scalar item column is a top-level key", jsonlExplode(writeJSONL(t, `{"item": 1, "items": [2]}`+"\n"), "items"), codes.FailedPrecondition, []string{`"item"`}},
		{"first line not an object", jsonlExplode(writeJSONL(t, "[1]\n"), "items"), codes.FailedPrecondition, []string{"line 1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.DescribeSource(context.Background(), &extractorv1.DescribeSourceRequest{Source: tc.src})
			wantCode(t, err, tc.code, tc.parts...)
			_, err = s.ReadBatch(context.Background(), &extractorv1.ReadBatchRequest{Source: tc.src})
			wantCode(t, err, tc.code, tc.parts...)
		})
	}
	// Without explode, "item." is an ordinary path.
	rows, _ := readAll(t, s, jsonlSource(writeJSONL(t, `{"item": {"b": 7}}`+"\n"), "item.b"), nil, 10)
	if len(rows) != 1 || rows[0].vals[0] != "7" {
		t.Errorf("item.b without explode: %q", rows)
	}
}

// jsonlExplodeFixture writes n lines whose arrays hold 0 to 4 elements,
// with blank, broken, null, missing and not-array lines mixed in.
func jsonlExplodeFixture(t testing.TB, n int) string {
	var sb strings.Builder
	for i := 1; i <= n; i++ {
		switch {
		case i%17 == 0:
			sb.WriteString("\n")
		case i%23 == 0:
			sb.WriteString(`{"id": ` + strconv.Itoa(i) + ", broken\n")
		case i%29 == 0:
			fmt.Fprintf(&sb, `{"id": %d, "items": {"sku": "x"}}`+"\n", i)
		case i%31 == 0:
			fmt.Fprintf(&sb, `{"id": %d, "items": null}`+"\n", i)
		case i%37 == 0:
			fmt.Fprintf(&sb, `{"id": %d}`+"\n", i)
		default:
			var items []string
			for k := range i % 5 {
				items = append(items, fmt.Sprintf(`{"sku": "s%d-%d", "q": %d, "pad": %q}`, i, k, k, strings.Repeat("p", (i+k)%40)))
			}
			fmt.Fprintf(&sb, `{"id": %d, "name": "n%d", "items": [%s]}`+"\n", i, i, strings.Join(items, ", "))
		}
	}
	return writeJSONL(t, sb.String())
}

// FuzzJSONLExplode reads arbitrary files with explode and checks every row
// against encoding/json: one row per element of each object's array, one
// reject row per unreadable line or non-array, the same rows for any batch
// size and partition count.
func FuzzJSONLExplode(f *testing.F) {
	f.Add("{\"id\": 1, \"items\": [1, \"a\", null, [2], {\"s\": \"x\"}]}\n{\"items\": []}\n{}\n", uint8(1))
	f.Add("\xEF\xBB\xBF{\"items\": 5}\r\n[1]\n{bad\n\n{\"items\": null, \"items\": [{\"s\": \"\\ud800\"}]}", uint8(2))
	f.Add("{\"items\": [[], {}, {\"s\": [1, {\"t\": 2}]}], \"id\": \"\\u00e9\"}\n{\"id\": \"\xff\", \"items\": [1]}\n", uint8(3))
	path := filepath.Join(f.TempDir(), "f.jsonl")
	s := newServiceWith(f, Options{FileRoots: []string{filepath.Dir(path)}})
	f.Fuzz(func(t *testing.T, data string, size uint8) {
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		src := jsonlExplode(path, "items", "id", "item", "s=item.s")
		batchSize := int(size%8) + 1
		got, _, _ := readAllLines(t, s, src, nil, batchSize)
		whole, _, _ := readAllLines(t, s, src, nil, 100000)
		if !reflect.DeepEqual(got, whole) {
			t.Fatalf("batch size %d reads other rows than one batch", batchSize)
		}
		plan, err := s.PlanPartitions(context.Background(), &extractorv1.PlanPartitionsRequest{Source: src, Partitions: 3})
		if err != nil {
			t.Fatal(err)
		}
		var parts []row
		for _, kr := range plan.GetRanges() {
			rs, _, _ := readAllLines(t, s, src, kr, batchSize)
			parts = append(parts, rs...)
		}
		if !reflect.DeepEqual(parts, whole) {
			t.Fatalf("3 partitions read other rows than one")
		}
		want := referenceExplode(t, data)
		if len(got) != len(want) {
			t.Fatalf("%d rows, encoding/json gives %d", len(got), len(want))
		}
		for i, w := range want {
			g := got[i]
			if g.ref != w.ref {
				t.Fatalf("row %d: ref %q, want %q", i, g.ref, w.ref)
			}
			rule, _, _ := strings.Cut(g.reject, "|")
			if w.rule != "" {
				if rule != w.rule {
					t.Fatalf("row %d (%s): reject %q, want rule %s", i, g.ref, g.reject, w.rule)
				}
				continue
			}
			if rule != "" {
				// Only a lone surrogate escape, which encoding/json reads as U+FFFD.
				if rule != "encoding" || !strings.Contains(g.reject, "surrogate") {
					t.Fatalf("row %d (%s): unexpected reject %q", i, g.ref, g.reject)
				}
				continue
			}
			checkJSONText(t, g.ref+" item", g.vals[1], w.elem)
		}
	})
}

type explodeRef struct {
	ref  string
	rule string // the reject expected for the whole line, if any
	elem any
}

// referenceExplode derives the rows of a file with encoding/json.
func referenceExplode(t *testing.T, data string) []explodeRef {
	data = strings.TrimPrefix(data, string(utf8BOM))
	lines := strings.Split(data, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1] // a final newline ends the last line
	}
	var out []explodeRef
	for i, l := range lines {
		l = strings.TrimSuffix(l, "\r")
		if strings.Trim(l, " \t\r") == "" {
			continue
		}
		ref := "line " + strconv.Itoa(i+1)
		switch {
		case !utf8.ValidString(l):
			out = append(out, explodeRef{ref: ref, rule: "encoding"})
			continue
		case !json.Valid([]byte(l)):
			out = append(out, explodeRef{ref: ref, rule: "json_syntax"})
			continue
		}
		obj, ok := decodeNumber(t, []byte(l)).(map[string]any)
		if !ok {
			out = append(out, explodeRef{ref: ref, rule: "json_syntax"})
			continue
		}
		switch items := obj["items"].(type) {
		case nil: // missing or null
		case []any:
			for k, e := range items {
				out = append(out, explodeRef{ref: fmt.Sprintf("%s item %d", ref, k), elem: e})
			}
		default:
			out = append(out, explodeRef{ref: ref, rule: "json_type"})
		}
	}
	return out
}

// checkJSONText compares a column's text with the value encoding/json read.
func checkJSONText(t *testing.T, what, got string, want any) {
	t.Helper()
	switch w := want.(type) {
	case nil:
		if got != null {
			t.Fatalf("%s: %q, want NULL", what, got)
		}
	case string:
		if got != w {
			t.Fatalf("%s: %q, want %q", what, got, w)
		}
	case json.Number:
		if got != string(w) {
			t.Fatalf("%s: %q, want %q", what, got, w)
		}
	case bool:
		if got != strconv.FormatBool(w) {
			t.Fatalf("%s: %q, want %v", what, got, w)
		}
	default:
		var ref bytes.Buffer
		if !reflect.DeepEqual(decodeNumber(t, []byte(got)), w) || json.Compact(&ref, []byte(got)) != nil || ref.String() != got {
			t.Fatalf("%s: %q is not the compact form of %v", what, got, w)
		}
	}
}

func BenchmarkReadJSONLExplode(b *testing.B) {
	var sb strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&sb, `{"id": %d, "customer": "customer %d", "items": [`, i, i)
		for k := range 5 {
			if k > 0 {
				sb.WriteString(", ")
			}
			fmt.Fprintf(&sb, `{"sku": "SKU-%d-%d", "qty": %d, "price": %d.25}`, i, k, k+1, i)
		}
		sb.WriteString("]}\n")
	}
	src := jsonlExplode(writeJSONL(b, sb.String()), "items")
	s := newService(b)
	b.SetBytes(int64(sb.Len()))
	b.ReportAllocs()
	for b.Loop() {
		resp, err := s.ReadBatch(context.Background(), &extractorv1.ReadBatchRequest{Source: src, BatchSize: 10000})
		if err != nil || resp.GetBatch().GetNumRows() != 10000 {
			b.Fatal(err)
		}
	}
}
