package extract

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	"github.com/cutover/cutover/services/kit/fsroot"
)

type jsonlKind struct{}

func init() {
	register(&commonv1.SourceSpec_Jsonl{}, "jsonl", jsonlKind{})
}

// jsonField is a column and the path of its value in each object.
type jsonField struct {
	name string
	path []string
	// item: with explode, the path is read from the array element (the
	// field path minus "item."); an empty path is the element itself.
	item bool
}

// jsonlFile is an open JSON Lines source with its fields resolved.
type jsonlFile struct {
	path      string
	f         *os.File
	size      int64
	dataStart int64 // after a UTF-8 BOM
	fields    []jsonField
	explode   []string // path of the array that gives one row per element
}

// itemPrefix marks a field path read from the exploded array's element.
const itemPrefix = "item"

func openJSONL(roots *fsroot.Roots, s *commonv1.JsonlSource) (*jsonlFile, error) {
	if s.GetPath() == "" {
		return nil, invalid("source.jsonl.path", "required")
	}
	jf := &jsonlFile{path: s.GetPath()}
	if e := s.GetExplode(); e != "" {
		jf.explode = strings.Split(e, ".")
		for _, sg := range jf.explode {
			if sg == "" {
				return nil, invalid("source.jsonl.explode", "%q has an empty segment", e)
			}
		}
	}
	seen := map[string]bool{}
	for i, fl := range s.GetFields() {
		field := fmt.Sprintf("source.jsonl.fields[%d]", i)
		if fl.GetName() == "" {
			return nil, invalid(field+".name", "empty column name")
		}
		if seen[fl.GetName()] {
			return nil, invalid(field+".name", "column %q given twice", fl.GetName())
		}
		seen[fl.GetName()] = true
		p := fl.GetPath()
		if p == "" {
			p = fl.GetName()
		}
		segs := strings.Split(p, ".")
		for _, sg := range segs {
			if sg == "" {
				return nil, invalid(field+".path", "%q has an empty segment", p)
			}
		}
		fld := jsonField{name: fl.GetName(), path: segs}
		if jf.explode != nil && segs[0] == itemPrefix {
			fld.path, fld.item = segs[1:], true
		}
		jf.fields = append(jf.fields, fld)
	}
	f, err := openSourceFile(roots, "source.jsonl.path", jf.path)
	if err != nil {
		return nil, err
	}
	jf.f = f
	if err := jf.init(); err != nil {
		f.Close()
		return nil, err
	}
	return jf, nil
}

func (jf *jsonlFile) Close() error { return jf.f.Close() }

func (jf *jsonlFile) init() error {
	st, err := jf.f.Stat()
	if err != nil {
		return fmt.Errorf("source.jsonl.path: stat %s: %w", jf.path, err)
	}
	if st.IsDir() {
		return fmt.Errorf("%w: source.jsonl.path: %s is a directory", ErrPrecondition, jf.path)
	}
	jf.size = st.Size()
	var head [3]byte
	if n, _ := jf.f.ReadAt(head[:], 0); n == 3 && bytes.Equal(head[:], utf8BOM) {
		jf.dataStart = 3
	}
	if len(jf.fields) > 0 {
		return nil
	}
	// No fields: the keys of the first object, in the order written.
	lr := newLineReader(jf.f, jf.dataStart, jf.size, 64<<10)
	for lineNo := int64(1); ; lineNo++ {
		line, _, ok, err := lr.next()
		if err != nil {
			return fmt.Errorf("source.jsonl.path: read %s: %w", jf.path, err)
		}
		if !ok {
			return fmt.Errorf("%w: source.jsonl.fields: %s has no JSON object to take column names from", ErrPrecondition, jf.path)
		}
		if isBlank(line) {
			continue
		}
		keys, ok := jsonTopKeys(line)
		if !ok {
			return fmt.Errorf("%w: source.jsonl.fields: line %d of %s is not a JSON object, so it cannot name the columns; give the fields", ErrPrecondition, lineNo, jf.path)
		}
		if len(keys) == 0 {
			return fmt.Errorf("%w: source.jsonl.fields: the first object of %s (line %d) has no keys; give the fields", ErrPrecondition, jf.path, lineNo)
		}
		for _, k := range keys {
			if len(jf.explode) == 1 && k == jf.explode[0] {
				continue // the array's elements are the item columns
			}
			jf.fields = append(jf.fields, jsonField{name: k, path: []string{k}})
		}
		if jf.explode != nil {
			return jf.itemColumns(lr, line, lineNo)
		}
		return nil
	}
}

// itemColumnsScan bounds the search for an element that names the item
// columns: every ReadBatch resolves the columns again.
const itemColumnsScan = 1 << 20

// itemColumns adds the columns of the first array element found from the
// first object (line, numbered lineNo) on: "item.<key>" for each key of an
// object element, "item" for any other element.
func (jf *jsonlFile) itemColumns(lr *lineReader, line []byte, lineNo int64) error {
	explode := strings.Join(jf.explode, ".")
	var scratch []byte
	for {
		if utf8.Valid(line) && json.Valid(line) && line[jsonWS(line, 0)] == '{' {
			if arr, ok := jsonLookup(line, jf.explode, &scratch); ok && arr[0] == '[' {
				for j := jsonWS(arr, 1); arr[j] != ']'; {
					e := jsonEnd(arr, j)
					if err := jf.addItemColumns(arr[j:e], lineNo); err != errNoItemKeys {
						return err
					}
					j = jsonWS(arr, e)
					if arr[j] == ',' {
						j = jsonWS(arr, j+1)
					}
				}
			}
		}
		l, start, ok, err := lr.next()
		if err != nil {
			return fmt.Errorf("source.jsonl.path: read %s: %w", jf.path, err)
		}
		if !ok || start-jf.dataStart >= itemColumnsScan {
			return fmt.Errorf("%w: source.jsonl.fields: no object in the first MiB of %s has an element in %q to name the item columns; give the fields", ErrPrecondition, jf.path, explode)
		}
		line = bytes.TrimSuffix(l, []byte{'\r'})
		lineNo++
	}
}

var errNoItemKeys = errors.New("element has no keys")

func (jf *jsonlFile) addItemColumns(elem []byte, lineNo int64) error {
	var items []jsonField
	if elem[0] == '{' {
		keys, _ := jsonTopKeys(elem)
		if len(keys) == 0 {
			return errNoItemKeys // an empty object names nothing: look further
		}
		for _, k := range keys {
			items = append(items, jsonField{name: itemPrefix + "." + k, path: []string{k}, item: true})
		}
	} else {
		items = []jsonField{{name: itemPrefix, item: true}}
	}
	seen := map[string]bool{}
	for _, fl := range jf.fields {
		seen[fl.name] = true
	}
	for _, it := range items {
		if seen[it.name] {
			return fmt.Errorf("%w: source.jsonl.fields: column %q of the elements of %q (line %d of %s) is also a top-level key; give the fields", ErrPrecondition, it.name, strings.Join(jf.explode, "."), lineNo, jf.path)
		}
	}
	jf.fields = append(jf.fields, items...)
	return nil
}

// jsonTopKeys returns the distinct top-level keys of a JSON object line,
// in order, or false if the line is not an object.
func jsonTopKeys(line []byte) ([]string, bool) {
	if !utf8.Valid(line) || !json.Valid(line) {
		return nil, false
	}
	i := jsonWS(line, 0)
	if line[i] != '{' {
		return nil, false
	}
	var keys []string
	seen := map[string]bool{}
	var scratch []byte
	for j := jsonWS(line, i+1); line[j] != '}'; {
		kend := jsonStringEnd(line, j)
		var err error
		scratch, err = appendJSONString(scratch[:0], line[j:kend])
		if err != nil {
			return nil, false
		}
		if k := string(scratch); !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
		j = jsonWS(line, jsonWS(line, kend)+1)
		j = jsonWS(line, jsonEnd(line, j))
		if line[j] == ',' {
			j = jsonWS(line, j+1)
		}
	}
	return keys, true
}

func isBlank(line []byte) bool {
	for _, c := range line {
		if c != ' ' && c != '\t' && c != '\r' {
			return false
		}
	}
	return true
}

func (jsonlKind) describe(_ context.Context, s *Service, src *commonv1.SourceSpec) (*extractorv1.DescribeSourceResponse, error) {
	jf, err := openJSONL(s.files, src.GetJsonl())
	if err != nil {
		return nil, err
	}
	defer jf.Close()
	resp := &extractorv1.DescribeSourceResponse{}
	for _, fl := range jf.fields {
		resp.Columns = append(resp.Columns, &commonv1.SourceColumn{Name: fl.name, SourceType: "json", Type: textType, Nullable: true, PgType: "text"})
	}
	// Scale the records of the first MiB to the file.
	lr := newLineReader(jf.f, jf.dataStart, jf.size, 64<<10)
	var n, read int64
	var scratch []byte
	for read < 1<<20 {
		line, start, ok, err := lr.next()
		if err != nil {
			return nil, fmt.Errorf("source.jsonl.path: read %s: %w", jf.path, err)
		}
		if !ok {
			resp.EstimatedRows = n
			return resp, nil
		}
		n += int64(jf.rowsOf(line, &scratch))
		read = start + int64(len(line)) + 1 - jf.dataStart
	}
	resp.EstimatedRows = (jf.size - jf.dataStart) * n / read
	return resp, nil
}

// rowsOf is the number of rows a line gives: none for a blank line, with
// explode one per element (none for a missing, null or empty array), else one.
func (jf *jsonlFile) rowsOf(line []byte, scratch *[]byte) int {
	line = bytes.TrimSuffix(line, []byte{'\r'})
	if isBlank(line) {
		return 0
	}
	if jf.explode == nil || !utf8.Valid(line) || !json.Valid(line) || line[jsonWS(line, 0)] != '{' {
		return 1
	}
	arr, ok := jsonLookup(line, jf.explode, scratch)
	switch {
	case !ok || arr[0] == 'n':
		return 0
	case arr[0] != '[':
		return 1 // a json_type reject
	}
	return jsonLen(arr)
}

// jsonLen is the number of elements of the array arr.
func jsonLen(arr []byte) int {
	n := 0
	for j := jsonWS(arr, 1); arr[j] != ']'; n++ {
		j = jsonWS(arr, jsonEnd(arr, j))
		if arr[j] == ',' {
			j = jsonWS(arr, j+1)
		}
	}
	return n
}

// plan cuts the file into n chunks that start at line starts. Each range
// is (lower cursor, upper byte offset): a chunk holds the lines that start
// at or after its lower cursor and before its upper offset.
func (jsonlKind) plan(_ context.Context, s *Service, src *commonv1.SourceSpec, n int) ([]*commonv1.KeyRange, error) {
	jf, err := openJSONL(s.files, src.GetJsonl())
	if err != nil {
		return nil, err
	}
	defer jf.Close()
	return jf.plan(n)
}

func (jf *jsonlFile) plan(n int) ([]*commonv1.KeyRange, error) {
	data := jf.size - jf.dataStart
	if n <= 1 || data <= 1 {
		return []*commonv1.KeyRange{{}}, nil
	}
	targets := make([]int64, 0, n-1)
	for i := 1; i < n; i++ {
		targets = append(targets, jf.dataStart+data*int64(i)/int64(n))
	}
	var starts []string // cursors of chunks 2..n
	var offs []int64
	lr := newLineReader(jf.f, jf.dataStart, jf.size, 256<<10)
	line := int64(1)
	for len(targets) > 0 {
		l, start, ok, err := lr.next()
		if err != nil {
			return nil, fmt.Errorf("source.jsonl.path: read %s: %w", jf.path, err)
		}
		if !ok {
			break
		}
		next := start + int64(len(l)) + 1
		line++
		if next >= jf.size {
			break // no line starts there: no chunk
		}
		if next < targets[0] {
			continue
		}
		for len(targets) > 0 && targets[0] <= next {
			targets = targets[1:]
		}
		starts = append(starts, formatCursor(next, line))
		offs = append(offs, next)
	}
	ranges := make([]*commonv1.KeyRange, 0, len(starts)+1)
	lower := ""
	for i, s := range starts {
		ranges = append(ranges, &commonv1.KeyRange{Lower: lower, Upper: strconv.FormatInt(offs[i], 10)})
		lower = s
	}
	return append(ranges, &commonv1.KeyRange{Lower: lower}), nil
}

func (jsonlKind) read(_ context.Context, s *Service, src *commonv1.SourceSpec, rng *commonv1.KeyRange, cursor string, lim readLimits) (*commonv1.Batch, bool, error) {
	jf, err := openJSONL(s.files, src.GetJsonl())
	if err != nil {
		return nil, false, err
	}
	defer jf.Close()
	return jf.read(rng, cursor, lim)
}

// bounds resolves the range and cursor to a start position and an end
// offset within the data.
func (jf *jsonlFile) bounds(rng *commonv1.KeyRange, cursor string) (off, line, end int64, err error) {
	off, line, end = jf.dataStart, 1, jf.size
	lo := jf.dataStart
	if l := rng.GetLower(); l != "" {
		if lo, line, err = parseCursor(l); err != nil {
			return 0, 0, 0, invalid("range.lower", "%q is not <offset>:<line>", l)
		}
		off = lo
	}
	if u := rng.GetUpper(); u != "" {
		if end, err = strconv.ParseInt(u, 10, 64); err != nil || end < lo || end > jf.size {
			return 0, 0, 0, invalid("range.upper", "%q is not a byte offset in %s after the lower bound", u, jf.path)
		}
	}
	if cursor != "" {
		if off, line, err = parseCursor(cursor); err != nil {
			return 0, 0, 0, err
		}
	}
	if off < lo || off > end || lo < jf.dataStart || lo > jf.size {
		return 0, 0, 0, invalid("cursor", "offset %d is outside the range %d..%d of %s", off, lo, end, jf.path)
	}
	return off, line, end, nil
}

// read reads up to lim.rows records from cursor within rng. Every
// non-blank line is one row; a line that cannot be read is a NULL row with
// a reject. With explode, a line gives one row per element of its array; a
// batch ends on a line boundary, so it holds more than lim.rows rows (or
// lim.bytes bytes) only when one line alone has more elements (or bytes)
// than that. A batch ends before the line that would take it past
// lim.bytes (limits.go); then the cursor is that line's start.
func (jf *jsonlFile) read(rng *commonv1.KeyRange, cursor string, lim readLimits) (*commonv1.Batch, bool, error) {
	size := lim.rows
	off, line, end, err := jf.bounds(rng, cursor)
	if err != nil {
		return nil, false, err
	}
	lr := newLineReader(jf.f, off, end, 256<<10)
	ncol := len(jf.fields)
	capRows := min(size, 1<<14)
	cols := make([]textCol, ncol)
	for i := range cols {
		cols[i] = newTextCol(capRows, 4<<10)
	}
	refs := newTextCol(capRows, capRows*12)
	b := &commonv1.Batch{Source: jf.path}
	var (
		refBuf   []byte
		scratch  []byte
		vals     = make([][]byte, ncol)
		prevLine int64
		rows     int
		next     = off
		sizer    = newRowSizer(lim, ncol)
		fixed    = int64(ncol) * slotCost(textType)
		total    = firstBytes(jf.path, cursor)
		full     bool // the batch ended before a line that did not fit
	)
	ex := jf.explodeLookups()
	// where says where a row is in its rejects: the line, and the item of
	// the exploded array if item >= 0.
	where := func(line int64, item int) string {
		w := "line " + strconv.FormatInt(line, 10)
		if item >= 0 {
			w += " item " + strconv.Itoa(item)
		}
		return w + ": "
	}
	// sizeRow sizes a row of values (limits.go), adds the rejects of the
	// values too large to keep and returns the row's bytes with them.
	sizeRow := func(vals [][]byte, ref []byte, line int64, item int) int64 {
		nrej := len(b.Rejects)
		rowBytes := jsonRowBytes(sizer, vals, fixed+refCost(len(ref)))
		for k, ok := range sizer.big {
			if ok && sizer.nbig > 0 {
				r := sizer.reject(where(line, item), jf.fields[k].name, k, jsonTextPrefix(vals[k], rawPrefixBytes), false)
				r.Row = int32(rows)
				b.Rejects = append(b.Rejects, r)
			}
		}
		return rowBytes + rejectsCost(b.Rejects, nrej)
	}
	// addRow adds the row sizeRow sized, but the values too large; a
	// string that cannot be unescaped makes it a NULL row with a reject,
	// whose bytes it returns. raw is the line and elem the exploded
	// element, if any, for that reject.
	addRow := func(vals [][]byte, line int64, item int, raw, elem []byte) int64 {
		var big []bool
		if sizer.nbig > 0 {
			big = sizer.big
		}
		bad, err := addJSONRow(cols, vals, big, &scratch)
		if err == nil {
			return 0
		}
		if jf.fields[bad].item {
			raw = elem
		}
		for k := range cols {
			cols[k].nullRow()
		}
		r := &commonv1.Reject{Row: int32(rows), Stage: stageExtract, Rule: "encoding", Column: jf.fields[bad].name, Raw: cut(string(raw)),
			Reason: fmt.Sprintf("%scolumn %s: %v in %s", where(line, item), jf.fields[bad].name, err, cut(string(vals[bad])))}
		b.Rejects = append(b.Rejects, r)
		return rejectCost(r)
	}
	eof := false
lines:
	for rows < size {
		l, start, ok, err := lr.next()
		if err != nil {
			return nil, false, fmt.Errorf("source.jsonl.path: read %s: %w", jf.path, err)
		}
		if !ok {
			eof = true
			break
		}
		recLine := line
		line++
		next = start + int64(len(l)) + 1
		if next > end {
			next = end // the last line has no newline
		}
		l = bytes.TrimSuffix(l, []byte{'\r'})
		if isBlank(l) {
			continue
		}
		// rej, if set, makes the line a NULL row.
		var rej *commonv1.Reject
		switch {
		case !utf8.Valid(l):
			raw := cut(escapeInvalid(string(l)))
			rej = &commonv1.Reject{Rule: "encoding", Raw: raw,
				Reason: fmt.Sprintf("line %d: invalid UTF-8 at byte %d", recLine, invalidAt(l)+1)}
		case !json.Valid(l):
			rej = &commonv1.Reject{Rule: "json_syntax", Raw: cut(string(l)),
				Reason: fmt.Sprintf("line %d: %s", recLine, jsonSyntaxText(l))}
		case l[jsonWS(l, 0)] != '{':
			rej = &commonv1.Reject{Rule: "json_syntax", Raw: cut(string(l)),
				Reason: fmt.Sprintf("line %d: a JSON %s, not an object", recLine, jsonKindName(l[jsonWS(l, 0)]))}
		case ex != nil:
			ex.vals = jsonFields(l, ex.lookups, ex.vals, &scratch)
			arr := ex.vals[len(ex.lookups)-1]
			switch {
			case arr == nil || arr[0] == 'n':
				continue // missing or null: no rows, like an empty array
			case arr[0] != '[':
				rej = &commonv1.Reject{Rule: "json_type", Raw: cut(string(l)),
					Reason: fmt.Sprintf("line %d: explode path %s is a JSON %s, not an array", recLine, ex.path, jsonKindName(arr[0]))}
			default:
				if n := jsonLen(arr); rows > 0 && rows+n > size {
					// The line's rows would not fit: the next batch starts with it.
					next, line = start, recLine
					break lines
				}
				rows0, nrej0, total0 := rows, len(b.Rejects), total
				k := 0
				for j := jsonWS(arr, 1); arr[j] != ']'; k++ {
					e := jsonEnd(arr, j)
					elem := arr[j:e]
					jf.explodeRow(ex, elem, vals)
					// Lines and items are numbered anew on each row: an item ref
					// cannot be counted up the way appendLineRef counts lines.
					ex.ref = strconv.AppendInt(append(strconv.AppendInt(append(ex.ref[:0], "line "...), recLine, 10), " item "...), int64(k), 10)
					total += sizeRow(vals, ex.ref, recLine, k)
					total += addRow(vals, recLine, k, l, elem)
					refs.add(ex.ref)
					refs.endRow()
					rows++
					j = jsonWS(arr, e)
					if arr[j] == ',' {
						j = jsonWS(arr, j+1)
					}
				}
				if rows0 > 0 && lim.bytes > 0 && total > lim.bytes {
					// The line's rows do not fit: the next batch starts with it.
					for i := range cols {
						cols[i].truncate(rows0)
					}
					refs.truncate(rows0)
					b.Rejects = b.Rejects[:nrej0]
					rows, total = rows0, total0
					next, line, full = start, recLine, true
					break lines
				}
				continue
			}
		}
		refBuf = appendLineRef(refBuf, prevLine, recLine)
		if rej != nil {
			rej.Row, rej.Stage = int32(rows), stageExtract
			rowBytes := fixed + refCost(len(refBuf)) + rejectCost(rej)
			if !lim.fits(rows, total, rowBytes) {
				next, line, full = start, recLine, true
				break
			}
			for k := range cols {
				cols[k].nullRow()
			}
			b.Rejects = append(b.Rejects, rej)
			total += rowBytes
		} else {
			vals = jsonFields(l, jf.fields, vals, &scratch)
			nrej := len(b.Rejects)
			rowBytes := sizeRow(vals, refBuf, recLine, -1)
			if !lim.fits(rows, total, rowBytes) {
				// The line starts the next batch.
				b.Rejects = b.Rejects[:nrej]
				next, line, full = start, recLine, true
				break
			}
			total += rowBytes + addRow(vals, recLine, -1, l, nil)
		}
		prevLine = recLine
		refs.add(refBuf)
		refs.endRow()
		rows++
	}
	b.NumRows = int32(rows)
	b.Columns = make([]*commonv1.Column, ncol)
	for i := range cols {
		b.Columns[i] = cols[i].column(jf.fields[i].name)
	}
	b.SourceRefs = refs.column("source_ref")
	b.LastKey = formatCursor(next, line)
	return b, !full && (eof || next >= end), nil
}

// jsonRowBytes sizes a row of JSON values for the batch (limits.go): it
// sets the sizer's sizes, picks the values too large to keep and returns
// the row's bytes without them (rejects not counted); fixed is the rest of
// the row. A value's raw length bounds its text's from above (escapes and
// whitespace only shrink); the exact text length is worked out only when
// the bounds come near the limit.
func jsonRowBytes(sizer *rowSizer, vals [][]byte, fixed int64) int64 {
	sum := fixed
	for k, v := range vals {
		switch {
		case v == nil || v[0] == 'n':
			sizer.sizes[k] = -1
		case v[0] == '"':
			sizer.sizes[k] = int64(len(v) - 2)
		default:
			sizer.sizes[k] = int64(len(v))
		}
		sum += max(sizer.sizes[k], 0)
	}
	if lim := sizer.lim.bytes; lim > 0 && sum > lim {
		for k, v := range vals {
			if sizer.sizes[k] >= 0 {
				sizer.sizes[k] = jsonTextLen(v)
			}
		}
	}
	return sizer.pick(fixed)
}

// addJSONRow adds one row of JSON values (nil or null: NULL; big[k] set:
// NULL, left out as too large). A string that cannot be unescaped leaves no
// row and gives the column's index.
func addJSONRow(cols []textCol, vals [][]byte, big []bool, scratch *[]byte) (int, error) {
	bad, badErr := -1, error(nil)
	for k := range cols {
		v := vals[k]
		if v == nil || v[0] == 'n' || big != nil && big[k] {
			cols[k].nullRow()
			continue
		}
		if err := addJSON(&cols[k], v, scratch); err != nil && bad < 0 {
			bad, badErr = k, err
		}
	}
	if bad < 0 {
		return -1, nil
	}
	// The values are in place already: take them back out.
	for k := range cols {
		c := &cols[k]
		c.rows--
		c.n = int(c.offs[c.rows])
		c.start = c.n
	}
	return bad, badErr
}

// jsonTextLen is the length of the text addJSON adds for v, worked out
// without making it.
func jsonTextLen(v []byte) int64 {
	switch v[0] {
	case '"':
		if bytes.IndexByte(v, '\\') < 0 {
			return int64(len(v) - 2)
		}
		return jsonStringLen(v)
	case '{', '[':
		var n int64
		for i := 0; i < len(v); {
			switch v[i] {
			case ' ', '\t', '\r', '\n':
				i++
			case '"':
				e := jsonStringEnd(v, i)
				n += int64(e - i)
				i = e
			default:
				n++
				i++
			}
		}
		return n
	}
	return int64(len(v))
}

// jsonTextPrefix is about the first n bytes of the text addJSON adds for
// v (a string is unescaped, cut between escapes), made from v's start only.
func jsonTextPrefix(v []byte, n int) []byte {
	if v[0] != '"' {
		return v[:min(len(v), n+utf8.UTFMax)]
	}
	s := v[1 : len(v)-1]
	lim := min(len(s), 6*(n+utf8.UTFMax)) // an escape is at most 6 bytes a character
	end := 0
	for i := 0; i < lim; {
		w := 1
		if s[i] == '\\' {
			w = 2
			if s[i+1] == 'u' {
				w = 6
				if utf16.IsSurrogate(hex4(s[i+2:])) && i+12 <= len(s) && s[i+6] == '\\' && s[i+7] == 'u' {
					w = 12 // a surrogate pair is one character
				}
			}
		}
		if i+w > lim {
			break
		}
		i += w
		end = i
	}
	q := make([]byte, 0, end+2)
	q = append(append(append(q, '"'), s[:end]...), '"')
	out, _ := appendJSONString(nil, q)
	return out
}

// jsonStringLen is the length of what appendJSONString appends for s.
func jsonStringLen(s []byte) int64 {
	s = s[1 : len(s)-1]
	var n int64
	for i := 0; i < len(s); {
		j := bytes.IndexByte(s[i:], '\\')
		if j < 0 {
			return n + int64(len(s)-i)
		}
		n += int64(j)
		i += j + 1
		c := s[i]
		i++
		if c != 'u' {
			n++
			continue
		}
		r := hex4(s[i:])
		i += 4
		if utf16.IsSurrogate(r) {
			r2 := rune(-1)
			if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
				r2 = hex4(s[i+2:])
			}
			if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
				r = d
				i += 6
			} else {
				r = utf8.RuneError
			}
		}
		n += int64(utf8.RuneLen(r))
	}
	return n
}

// addJSON adds the text form of the JSON value v and ends the row.
func addJSON(c *textCol, v []byte, scratch *[]byte) error {
	var err error
	switch v[0] {
	case '"':
		if bytes.IndexByte(v, '\\') < 0 {
			c.add(v[1 : len(v)-1])
		} else {
			*scratch, err = appendJSONString((*scratch)[:0], v)
			c.add(*scratch)
		}
	case '{', '[':
		*scratch = appendJSONCompact((*scratch)[:0], v)
		c.add(*scratch)
	default: // numbers as written, true, false
		c.add(v)
	}
	c.endRow()
	return err
}

// explodeState holds what read needs per exploded line and element.
type explodeState struct {
	path    string
	lookups []jsonField // the object's fields, then the array
	vals    [][]byte
	objIdx  []int       // column → index in lookups, or -1
	items   []jsonField // element fields with a path
	itemIdx []int       // column → index in items, -1, or -2 for the element itself
	ivals   [][]byte
	ref     []byte
	scratch []byte // for escaped keys, apart from the read's value scratch
}

func (jf *jsonlFile) explodeLookups() *explodeState {
	if jf.explode == nil {
		return nil
	}
	ex := &explodeState{path: strings.Join(jf.explode, ".")}
	for _, fl := range jf.fields {
		oi, ii := -1, -1
		switch {
		case !fl.item:
			oi = len(ex.lookups)
			ex.lookups = append(ex.lookups, fl)
		case len(fl.path) == 0:
			ii = -2
		default:
			ii = len(ex.items)
			ex.items = append(ex.items, fl)
		}
		ex.objIdx = append(ex.objIdx, oi)
		ex.itemIdx = append(ex.itemIdx, ii)
	}
	ex.lookups = append(ex.lookups, jsonField{name: ex.path, path: jf.explode})
	return ex
}

// explodeRow fills vals with one element's row: the object's values found
// already in ex.vals, the element's looked up in elem.
func (jf *jsonlFile) explodeRow(ex *explodeState, elem []byte, vals [][]byte) {
	if len(ex.items) > 0 {
		if elem[0] == '{' {
			ex.ivals = jsonFields(elem, ex.items, ex.ivals, &ex.scratch)
		} else {
			// Not an object: only an index path into an array can match.
			if cap(ex.ivals) < len(ex.items) {
				ex.ivals = make([][]byte, len(ex.items))
			}
			ex.ivals = ex.ivals[:len(ex.items)]
			clear(ex.ivals)
			for i, it := range ex.items {
				if v, ok := jsonLookup(elem, it.path, &ex.scratch); ok {
					ex.ivals[i] = v
				}
			}
		}
	}
	for k := range vals {
		switch oi, ii := ex.objIdx[k], ex.itemIdx[k]; {
		case oi >= 0:
			vals[k] = ex.vals[oi]
		case ii == -2:
			vals[k] = elem
		default:
			vals[k] = ex.ivals[ii]
		}
	}
}

// invalidAt is the index of the first byte that is not valid UTF-8.
func invalidAt(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// jsonSyntaxText explains why a line is not JSON (error path only).
func jsonSyntaxText(l []byte) string {
	var raw json.RawMessage
	err := json.Unmarshal(l, &raw)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("invalid JSON at byte %d: %s", se.Offset, se.Error())
	}
	if err != nil {
		return "invalid JSON: " + err.Error()
	}
	return "invalid JSON"
}

func jsonKindName(c byte) string {
	switch c {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// lineReader reads lines of a file region without allocating per line.
type lineReader struct {
	r        io.ReaderAt
	buf      []byte
	bufOff   int64 // file offset of buf[0]
	pos, end int   // unread bytes are buf[pos:end]
	limit    int64 // no byte at or past limit is read
}

func newLineReader(r io.ReaderAt, off, limit int64, bufSize int) *lineReader {
	return &lineReader{r: r, buf: make([]byte, bufSize), bufOff: off, limit: limit}
}

// next returns the next line without its '\n' and the file offset it
// starts at. The line is valid until the next call.
func (lr *lineReader) next() (line []byte, start int64, ok bool, err error) {
	scanned := 0
	for {
		if i := bytes.IndexByte(lr.buf[lr.pos+scanned:lr.end], '\n'); i >= 0 {
			line = lr.buf[lr.pos : lr.pos+scanned+i]
			start = lr.bufOff + int64(lr.pos)
			lr.pos += scanned + i + 1
			return line, start, true, nil
		}
		scanned = lr.end - lr.pos
		fileEnd := lr.bufOff + int64(lr.end)
		if fileEnd >= lr.limit {
			if scanned == 0 {
				return nil, 0, false, nil
			}
			line = lr.buf[lr.pos:lr.end]
			start = lr.bufOff + int64(lr.pos)
			lr.pos = lr.end
			return line, start, true, nil
		}
		// Move the partial line to the front, grow for a long line, refill.
		copy(lr.buf, lr.buf[lr.pos:lr.end])
		lr.bufOff += int64(lr.pos)
		lr.end -= lr.pos
		lr.pos = 0
		if lr.end == len(lr.buf) {
			// Double, but never past what is left to read: a huge line near
			// the end does not cost twice its size.
			nb := make([]byte, lr.end+int(min(int64(len(lr.buf)), lr.limit-fileEnd)))
			copy(nb, lr.buf[:lr.end])
			lr.buf = nb
		}
		want := int(min(int64(len(lr.buf)-lr.end), lr.limit-fileEnd))
		n, err := lr.r.ReadAt(lr.buf[lr.end:lr.end+want], fileEnd)
		lr.end += n
		if n < want {
			if err == io.EOF || err == nil {
				lr.limit = lr.bufOff + int64(lr.end) // the file is shorter than it was
			} else {
				return nil, 0, false, err
			}
		}
	}
}

// The functions below walk a JSON text that json.Valid accepted, so they
// index without bounds checks of their own.

func jsonWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// jsonStringEnd returns the index after the closing quote of the string
// that starts at b[i].
func jsonStringEnd(b []byte, i int) int {
	for j := i + 1; ; j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
}

// jsonEnd returns the index after the value that starts at b[i].
func jsonEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return jsonStringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; ; j++ {
			switch b[j] {
			case '"':
				j = jsonStringEnd(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
	}
	j := i
	for j < len(b) {
		switch b[j] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return j
		}
		j++
	}
	return j
}

// jsonLookup finds the value at path in a valid JSON text: a segment
// selects an object member (the last one, as encoding/json does with
// duplicate keys) or, in an array, the element at that decimal index.
func jsonLookup(doc []byte, path []string, scratch *[]byte) ([]byte, bool) {
	i := jsonWS(doc, 0)
	for _, seg := range path {
		switch doc[i] {
		case '{':
			match := -1
			for j := jsonWS(doc, i+1); doc[j] != '}'; {
				kend := jsonStringEnd(doc, j)
				key := doc[j+1 : kend-1]
				eq := false
				if bytes.IndexByte(key, '\\') < 0 {
					eq = string(key) == seg
				} else {
					var err error
					*scratch, err = appendJSONString((*scratch)[:0], doc[j:kend])
					eq = err == nil && string(*scratch) == seg
				}
				j = jsonWS(doc, jsonWS(doc, kend)+1)
				if eq {
					match = j
				}
				j = jsonWS(doc, jsonEnd(doc, j))
				if doc[j] == ',' {
					j = jsonWS(doc, j+1)
				}
			}
			if match < 0 {
				return nil, false
			}
			i = match
		case '[':
			idx, err := strconv.Atoi(seg)
			if err != nil || idx < 0 || strconv.Itoa(idx) != seg {
				return nil, false
			}
			found := false
			for j, k := jsonWS(doc, i+1), 0; doc[j] != ']'; k++ {
				if k == idx {
					i, found = j, true
					break
				}
				j = jsonWS(doc, jsonEnd(doc, j))
				if doc[j] == ',' {
					j = jsonWS(doc, j+1)
				}
			}
			if !found {
				return nil, false
			}
		default:
			return nil, false
		}
	}
	return doc[i:jsonEnd(doc, i)], true
}

// jsonFields finds the value of every field in one pass over the members
// of the object doc (valid JSON): the first path segment is matched while
// walking, deeper segments inside the matched member only. vals[k] is nil
// when field k is missing.
func jsonFields(doc []byte, fields []jsonField, vals [][]byte, scratch *[]byte) [][]byte {
	if cap(vals) < len(fields) {
		vals = make([][]byte, len(fields))
	}
	vals = vals[:len(fields)]
	clear(vals)
	i := jsonWS(doc, 0)
	if doc[i] != '{' {
		return vals
	}
	for j := jsonWS(doc, i+1); doc[j] != '}'; {
		kend := jsonStringEnd(doc, j)
		key := doc[j+1 : kend-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			var err error
			if *scratch, err = appendJSONString((*scratch)[:0], doc[j:kend]); err != nil {
				*scratch = (*scratch)[:0]
			}
			key = *scratch
		}
		v := jsonWS(doc, jsonWS(doc, kend)+1)
		end := jsonEnd(doc, v)
		for k := range fields {
			// Later duplicates win, as with encoding/json.
			if fields[k].path[0] == string(key) {
				vals[k] = doc[v:end]
			}
		}
		j = jsonWS(doc, end)
		if doc[j] == ',' {
			j = jsonWS(doc, j+1)
		}
	}
	for k := range fields {
		if vals[k] != nil && len(fields[k].path) > 1 {
			v, ok := jsonLookup(vals[k], fields[k].path[1:], scratch)
			if !ok {
				v = nil
			}
			vals[k] = v
		}
	}
	return vals
}

var errSurrogate = errors.New("lone UTF-16 surrogate escape")

// appendJSONString appends the unescaped content of the quoted JSON string
// s. A lone surrogate (\ud800) has no UTF-8 form: it is an error rather
// than a silent U+FFFD.
func appendJSONString(dst, s []byte) ([]byte, error) {
	s = s[1 : len(s)-1]
	var err error
	for i := 0; i < len(s); {
		j := bytes.IndexByte(s[i:], '\\')
		if j < 0 {
			return append(dst, s[i:]...), err
		}
		dst = append(dst, s[i:i+j]...)
		i += j + 1
		c := s[i]
		i++
		switch c {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(s[i:])
			i += 4
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					r2 = hex4(s[i+2:])
				}
				if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
					r = d
					i += 6
				} else {
					err = errSurrogate
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
		default: // '"', '\\', '/'
			dst = append(dst, c)
		}
	}
	return dst, err
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		default:
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}

// appendJSONCompact appends v without the whitespace between tokens;
// strings, escapes and numbers stay exactly as written.
func appendJSONCompact(dst, v []byte) []byte {
	for i := 0; i < len(v); {
		switch c := v[i]; c {
		case ' ', '\t', '\r', '\n':
			i++
		case '"':
			e := jsonStringEnd(v, i)
			dst = append(dst, v[i:e]...)
			i = e
		default:
			dst = append(dst, c)
			i++
		}
	}
	return dst
}
