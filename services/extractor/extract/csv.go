package extract

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	"github.com/cutover/cutover/services/kit/fsroot"
)

const (
	stageExtract = "extract"
	textType     = commonv1.ColumnType_COLUMN_TYPE_TEXT
	// maxRaw caps the raw record kept in a reject.
	maxRaw = 4096
)

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// csvSpec is a validated CsvSource.
type csvSpec struct {
	path string
	// pattern is a source's file name pattern (csv_pattern.go); a file
	// of it is opened with path set, field "source.csv.pattern", its
	// references prefixed with its name and its header held to the first
	// file's (wantNames, from wantFrom).
	pattern   string
	field     string // the spec field that names the file, for errors
	refPrefix string
	wantNames []string
	wantFrom  string
	comma     rune
	header    bool
	columns   []string
	null      string
	// emptyNull: an unquoted empty field is NULL (empty_is_null).
	emptyNull bool
	// ignoreExtra: fields past the named columns are dropped, not a
	// ragged_row (ignore_extra_fields).
	ignoreExtra bool
	// Dialect and encoding (csvopts.go); the zero values are RFC 4180 in
	// UTF-8, which takes the scanner's fast path.
	dialect  *csvDialect
	quote    byte
	rawComma []byte       // the delimiter as it appears in the file, if not UTF-8
	enc      *csvEncoding // decodes each field; nil for UTF-8 and UTF-16
	utf16    utf16Order   // the file is transcoded to UTF-8 before scanning
	encName  string       // for messages
}

func parseCSVSpec(s *commonv1.CsvSource) (csvSpec, error) {
	sp := csvSpec{path: s.GetPath(), pattern: s.GetPattern(), field: "source.csv.path", comma: ',', header: !s.GetNoHeader(), columns: s.GetColumns(), null: s.GetNullMarker(), quote: '"', encName: "UTF-8",
		emptyNull: s.GetEmptyIsNull(), ignoreExtra: s.GetIgnoreExtraFields()}
	switch {
	case sp.path != "" && sp.pattern != "":
		return sp, invalid("source.csv.pattern", "give path (one file) or pattern (many files), not both")
	case sp.path == "" && sp.pattern == "":
		return sp, invalid("source.csv.path", "required (or pattern, for many files)")
	}
	if d := s.GetDelimiter(); d != "" {
		r, n := utf8.DecodeRuneInString(d)
		if n != len(d) {
			return sp, invalid("source.csv.delimiter", "must be one character, got %q", d)
		}
		// encoding/csv refused a NUL delimiter on every read; say so up front.
		if r == 0 || r == '\r' || r == '\n' || r == utf8.RuneError {
			return sp, invalid("source.csv.delimiter", "%q cannot be a delimiter", d)
		}
		sp.comma = r
	}
	if err := parseCSVOptions(s, &sp); err != nil {
		return sp, err
	}
	if sp.comma == rune(sp.quote) {
		if s.GetQuote() != "" {
			return sp, invalid("source.csv.quote", "%q is also the delimiter", s.GetQuote())
		}
		return sp, invalid("source.csv.delimiter", "%q cannot be a delimiter", s.GetDelimiter())
	}
	if !sp.header && len(sp.columns) == 0 {
		return sp, invalid("source.csv.columns", "required when no_header is set")
	}
	seen := make(map[string]bool, len(sp.columns))
	for i, c := range sp.columns {
		if c == "" {
			return sp, invalid(fmt.Sprintf("source.csv.columns[%d]", i), "empty column name")
		}
		if seen[c] {
			return sp, invalid(fmt.Sprintf("source.csv.columns[%d]", i), "column %q given twice", c)
		}
		seen[c] = true
	}
	return sp, nil
}

// csvFile is an open CSV source whose header has been read.
type csvFile struct {
	spec      csvSpec
	f         *os.File
	tmp       string // a transcoded copy of the file to remove on Close
	size      int64
	names     []string
	dataStart int64 // byte offset of the first data record
	dataLine  int64 // line number at dataStart
}

// openCSV opens a CSV source inside roots without a transcode cache.
func openCSV(roots *fsroot.Roots, s *commonv1.CsvSource) (*csvFile, error) {
	return openCSVIn(roots, nil, s)
}

// openCSVWith opens a CSV source inside svc's file roots; svc caches
// transcoded files.
func openCSVWith(svc *Service, s *commonv1.CsvSource) (*csvFile, error) {
	return openCSVIn(svc.files, svc, s)
}

// openCSVIn opens a CSV source inside roots; cache, if not nil, caches
// transcoded files.
func openCSVIn(roots *fsroot.Roots, cache *Service, s *commonv1.CsvSource) (*csvFile, error) {
	sp, err := parseCSVSpec(s)
	if err != nil {
		return nil, err
	}
	return openCSVSpec(roots, cache, sp)
}

// openCSVSpec opens the file of a parsed spec (sp.path) inside roots.
func openCSVSpec(roots *fsroot.Roots, cache *Service, sp csvSpec) (*csvFile, error) {
	f, err := openSourceFile(roots, sp.field, sp.path)
	if err != nil {
		return nil, err
	}
	cf := &csvFile{spec: sp, f: f}
	if err := cf.transcode(cache); err != nil {
		cf.Close()
		return nil, err
	}
	if err := cf.init(); err != nil {
		cf.Close()
		return nil, err
	}
	return cf, nil
}

func (cf *csvFile) Close() error {
	err := cf.f.Close()
	if cf.tmp != "" {
		os.Remove(cf.tmp)
	}
	return err
}

// stat checks that the path is a file and skips a UTF-8 BOM.
func (cf *csvFile) stat() error {
	st, err := cf.f.Stat()
	if err != nil {
		return fmt.Errorf("source.csv.path: stat %s: %w", cf.spec.path, err)
	}
	if st.IsDir() {
		return fmt.Errorf("%w: source.csv.path: %s is a directory", ErrPrecondition, cf.spec.path)
	}
	cf.size = st.Size()
	var head [3]byte
	if n, _ := cf.f.ReadAt(head[:], 0); n == 3 && bytes.Equal(head[:], utf8BOM) {
		cf.dataStart = 3
	}
	cf.dataLine = 1
	return nil
}

// init skips a UTF-8 BOM and reads the header line.
func (cf *csvFile) init() error {
	if err := cf.stat(); err != nil {
		return err
	}
	if !cf.spec.header {
		cf.names = cf.spec.columns
		return nil
	}
	sc := cf.scanner(cf.dataStart, cf.dataLine, 0)
	defer sc.release()
	var rec fieldSink
	st, err := sc.next(&rec)
	if err != nil {
		return fmt.Errorf("source.csv.path: read %s: %w", cf.spec.path, err)
	}
	switch st {
	case scanEOF:
		return fmt.Errorf("%w: source.csv.path: %s is empty, expected a header line", ErrPrecondition, cf.spec.path)
	case scanSyntax:
		return fmt.Errorf("%w: source.csv.path: %s: header: %s", ErrPrecondition, cf.spec.path, sc.syntaxText())
	}
	names := make([]string, rec.n)
	seen := make(map[string]bool, rec.n)
	for i := range names {
		name, ok := cf.text(rec.field(i))
		if !ok {
			return fmt.Errorf("%w: source.csv.path: %s: header column %d is not valid %s: %s", ErrPrecondition, cf.spec.path, i+1, cf.spec.encName, name)
		}
		if name == "" {
			// A trailing delimiter in the header is common; name the column
			// by position rather than refusing the file.
			name = "column_" + strconv.Itoa(i+1)
		}
		if seen[name] {
			return fmt.Errorf("%w: %s: %s: header has column %q twice", ErrPrecondition, cf.spec.field, cf.spec.path, name)
		}
		seen[name] = true
		names[i] = name
	}
	if cf.spec.wantNames != nil && !slices.Equal(names, cf.spec.wantNames) {
		return fmt.Errorf("%w: %s: %s has the header %s, but %s, the first file, has %s: every file of a pattern needs the same header",
			ErrPrecondition, cf.spec.field, cf.spec.path, quoteNames(names), cf.spec.wantFrom, quoteNames(cf.spec.wantNames))
	}
	if len(cf.spec.columns) > 0 {
		if len(cf.spec.columns) != len(names) {
			return fmt.Errorf("%w: source.csv.columns: %d names given, header of %s has %d columns", ErrPrecondition, len(cf.spec.columns), cf.spec.path, len(names))
		}
		names = cf.spec.columns
	}
	cf.names = names
	cf.dataStart = sc.offset()
	cf.dataLine = sc.line
	return nil
}

// scanner starts a scanner at a record boundary; want is the expected
// number of bytes to read, 0 if unknown.
func (cf *csvFile) scanner(off, line int64, want int) *scanner {
	sc := newScanner(cf.f, off, cf.size, line, cf.spec.commaBytes(), want)
	sc.dialect = cf.spec.dialect
	return sc
}

// commaBytes is the delimiter as it appears in the file.
func (sp csvSpec) commaBytes() []byte {
	if sp.rawComma != nil {
		return sp.rawComma
	}
	return utf8.AppendRune(nil, sp.comma)
}

// text is a field as UTF-8 text, or, when it does not decode, its text
// with the bytes at fault shown as \xNN and ok false.
func (cf *csvFile) text(b []byte) (s string, ok bool) {
	if cf.spec.enc != nil {
		return cf.spec.enc.text(b)
	}
	if s = string(b); !utf8.ValidString(s) {
		return escapeInvalid(s), false
	}
	return s, true
}

// rawText is the raw bytes of a record for a reject, readable.
func (cf *csvFile) rawText(b []byte) string {
	s, _ := cf.text(b)
	return s
}

// parseCursor reads "<byte offset>:<line number>".
func parseCursor(c string) (off, line int64, err error) { return parseCursorField("cursor", c) }

// parseCursorField is parseCursor for a cursor given in field.
func parseCursorField(field, c string) (off, line int64, err error) {
	i := strings.IndexByte(c, ':')
	if i < 0 {
		return 0, 0, invalid(field, "%q is not <offset>:<line>", c)
	}
	off, err1 := strconv.ParseInt(c[:i], 10, 64)
	line, err2 := strconv.ParseInt(c[i+1:], 10, 64)
	if err1 != nil || err2 != nil || off < 0 || line < 1 {
		return 0, 0, invalid(field, "%q is not <offset>:<line>", c)
	}
	return off, line, nil
}

func formatCursor(off, line int64) string {
	return strconv.FormatInt(off, 10) + ":" + strconv.FormatInt(line, 10)
}

func describeCSV(svc *Service, s *commonv1.CsvSource) (*extractorv1.DescribeSourceResponse, error) {
	if s.GetPattern() != "" {
		return describeCSVPattern(svc, s)
	}
	cf, err := openCSVWith(svc, s)
	if err != nil {
		return nil, err
	}
	defer cf.Close()
	resp := &extractorv1.DescribeSourceResponse{}
	for _, n := range cf.names {
		resp.Columns = append(resp.Columns, &commonv1.SourceColumn{Name: n, SourceType: "text", Type: textType, Nullable: true})
	}
	est, err := cf.estimateRows()
	if err != nil {
		return nil, err
	}
	resp.EstimatedRows = est
	return resp, nil
}

// estimateRows scales the average size of the first records to the file.
func (cf *csvFile) estimateRows() (int64, error) {
	sc := cf.scanner(cf.dataStart, cf.dataLine, 64<<10)
	defer sc.release()
	var rec fieldSink
	var n int64
	for n < 1000 && sc.offset()-cf.dataStart < 1<<20 {
		st, err := sc.next(&rec)
		if err != nil {
			return 0, fmt.Errorf("source.csv.path: read %s: %w", cf.spec.path, err)
		}
		rec.clear()
		if st == scanEOF {
			return n, nil
		}
		n++
	}
	read := sc.offset() - cf.dataStart
	if n == 0 || read == 0 {
		return n, nil
	}
	return (cf.size - cf.dataStart) * n / read, nil
}

// planCSV splits the file into up to n chunks that start on record
// boundaries (csvpart.go).
func planCSV(ctx context.Context, svc *Service, s *commonv1.CsvSource, n int) ([]*commonv1.KeyRange, error) {
	if s.GetPattern() != "" {
		return planCSVPattern(ctx, svc, s, n)
	}
	cf, err := openCSVWith(svc, s)
	if err != nil {
		return nil, err
	}
	defer cf.Close()
	if n <= 1 {
		return []*commonv1.KeyRange{{}}, nil
	}
	return cf.chunks(ctx, n)
}

// readCSV reads up to size records starting at cursor. Every record becomes
// exactly one row; records that cannot be used are NULL rows with a reject.
func readCSV(roots *fsroot.Roots, s *commonv1.CsvSource, cursor string, size int) (*commonv1.Batch, bool, error) {
	return readCSVRange(roots, nil, s, nil, cursor, readLimits{rows: size, bytes: DefaultBatchBytes})
}

// readCSVRange is readCSV within a chunk of the file: an empty cursor starts
// at rng.lower, and the read is done at the first record that starts at or
// after the byte offset rng.upper. A batch ends before the record that
// would take it past lim.bytes (limits.go); then the cursor is that
// record's start.
func readCSVRange(roots *fsroot.Roots, cache *Service, s *commonv1.CsvSource, rng *commonv1.KeyRange, cursor string, lim readLimits) (*commonv1.Batch, bool, error) {
	if s.GetPattern() != "" {
		return readCSVPattern(roots, cache, s, rng, cursor, lim)
	}
	cf, err := openCSVIn(roots, cache, s)
	if err != nil {
		return nil, false, err
	}
	defer cf.Close()
	return cf.read(rng, cursor, lim)
}

// read is readCSVRange on an open file.
func (cf *csvFile) read(rng *commonv1.KeyRange, cursor string, lim readLimits) (*commonv1.Batch, bool, error) {
	size := lim.rows
	var err error
	off, line := cf.dataStart, cf.dataLine
	field := "cursor"
	if cursor == "" && rng.GetLower() != "" {
		cursor, field = rng.GetLower(), "range.lower"
	}
	if cursor != "" {
		if off, line, err = parseCursorField(field, cursor); err != nil {
			return nil, false, err
		}
		if off < cf.dataStart || off > cf.size {
			return nil, false, invalid(field, "offset %d is outside the data of %s (%d..%d)", off, cf.spec.path, cf.dataStart, cf.size)
		}
	}
	stop := cf.size
	if u := rng.GetUpper(); u != "" {
		if stop, err = strconv.ParseInt(u, 10, 64); err != nil || stop < 0 {
			return nil, false, invalid("range.upper", "%q is not a byte offset", u)
		}
	}
	sc := cf.scanner(off, line, 64<<10)
	defer sc.release()

	ncol := len(cf.names)
	capRows := min(size, 1<<14)
	rec := fieldSink{cols: make([]textCol, ncol)}
	if lim.bytes > 0 {
		rec.limit = int(lim.bytes)
	}
	if cf.spec.emptyNull {
		rec.quoted = make([]bool, ncol)
	}
	cols := rec.cols
	for i := range cols {
		cols[i] = newTextCol(capRows, 4<<10)
	}
	refs := newTextCol(capRows, capRows*12)
	b := &commonv1.Batch{Source: cf.spec.path}
	var (
		comma    = sc.comma
		null     = []byte(cf.spec.null)
		hasNull  = len(null) > 0
		refBuf   []byte
		prevLine int64
		rows     int
		eof      bool
		full     bool // the batch ended before a record that did not fit
		sizer    = newRowSizer(lim, ncol)
		fixed    = int64(ncol) * slotCost(textType)
		total    = firstBytes(cf.spec.path, cursor)
		next     int64
		nextLine int64
	)
	remaining := stop - off
	if lim.bytes > 0 {
		remaining = min(remaining, lim.bytes)
	}
	for rows < size && sc.offset() < stop {
		recOff, recLn := sc.offset(), sc.line
		st, err := sc.next(&rec)
		if err != nil {
			return nil, false, fmt.Errorf("source.csv.path: read %s: %w", cf.spec.path, err)
		}
		recLine := sc.recLine
		// rej, if set, makes the record a NULL row.
		var rej *commonv1.Reject
		switch {
		case st == scanEOF:
			eof = true
		case st == scanSyntax:
			raw := sc.span[:min(len(sc.span), maxRaw)]
			rej = &commonv1.Reject{Rule: "csv_syntax", Reason: sc.syntaxText(),
				Raw: cf.rawText(bytes.Trim(raw, "\r\n"))}
		case rec.n != ncol && !(rec.n > ncol && cf.spec.ignoreExtra):
			rej = &commonv1.Reject{Rule: "ragged_row",
				Reason: fmt.Sprintf("line %d: %d fields, expected %d", recLine, rec.n, ncol),
				Raw:    cut(cf.rawText(rec.joinBytes(comma)))}
		case cf.spec.enc != nil:
			// Fields are decoded one by one: the record was split on bytes
			// that never occur inside a character of the encoding.
			rej = cf.spec.enc.decodeRecord(&rec, cf.names, recLine, comma)
		case !utf8.Valid(sc.rec):
			// Valid raw bytes make valid fields: quotes, delimiters and line
			// ends never split a character. Only here look for the field.
			if bad := badField(&rec); bad >= 0 {
				rej = &commonv1.Reject{Rule: "encoding", Column: cf.names[bad],
					Reason: fmt.Sprintf("line %d: column %s: invalid %s in %s", recLine, cf.names[bad], cf.spec.encName, cut(escapeInvalid(string(rec.field(bad))))),
					Raw:    cut(escapeInvalid(rec.join(comma)))}
			}
		}
		if eof {
			break
		}
		refBuf = appendFileLineRef(refBuf, cf.spec.refPrefix, prevLine, recLine)
		nrej := len(b.Rejects)
		rowBytes := fixed + refCost(len(refBuf))
		var big []bool
		if rej != nil {
			rej.Row, rej.Stage = int32(rows), stageExtract
			rowBytes += rejectCost(rej)
		} else {
			for k := range cols {
				// A field over the limit in the file is over it as text too
				// (no encoding decodes to fewer bytes); its size is then
				// the file's.
				if n := rec.bigLen(k); n > 0 {
					sizer.sizes[k] = n
				} else {
					sizer.sizes[k] = int64(cols[k].n - cols[k].start)
				}
			}
			rowBytes = sizer.pick(rowBytes)
			if sizer.nbig > 0 {
				big = sizer.big
				where := "line " + strconv.FormatInt(recLine, 10) + ": "
				for k, ok := range big {
					if !ok {
						continue
					}
					v := cols[k].value()
					if cf.spec.enc != nil && rec.bigLen(k) > 0 {
						// Left raw by decodeRecord: decode what is shown.
						v = []byte(cf.rawText(v[:min(len(v), rawPrefixBytes)]))
					}
					r := sizer.reject(where, cf.names[k], k, v, false)
					r.Row = int32(rows)
					b.Rejects = append(b.Rejects, r)
					rowBytes += rejectCost(r)
				}
			}
		}
		if !lim.fits(rows, total, rowBytes) {
			// The record starts the next batch.
			rec.reset()
			b.Rejects = b.Rejects[:nrej]
			full, next, nextLine = true, recOff, recLn
			break
		}
		total += rowBytes
		if rej != nil {
			rec.reset()
			for k := range cols {
				cols[k].nullRow()
			}
			b.Rejects = append(b.Rejects, rej)
		} else {
			cf.endRow(&rec, null, hasNull, big)
		}
		prevLine = recLine
		refs.add(refBuf)
		refs.endRow()
		rows++
		if rows == presizeAfter && size > 2*presizeAfter {
			presize(cols, rows, size, remaining)
			// Read the rest of the batch in about one go.
			sc.want = int(min(max((sc.offset()-off)/int64(rows)*int64(size-rows)*9/8, 64<<10), maxChunk))
		}
	}
	if !full {
		next, nextLine = sc.offset(), sc.line
	}
	b.NumRows = int32(rows)
	b.Columns = make([]*commonv1.Column, ncol)
	for i := range cols {
		b.Columns[i] = cols[i].column(cf.names[i])
	}
	b.SourceRefs = refs.column("source_ref")
	b.LastKey = formatCursor(next, nextLine)
	return b, !full && (eof || next >= stop || next >= cf.size), nil
}

// badField is the first field of a record that is not valid UTF-8, leaving
// out fields too large to keep (only their start is in the columns); -1
// when only such fields, or fields past the columns that ignore_extra_fields
// drops, are at fault. Without them the raw record was not valid, so some
// field is not: the last if no other.
func badField(rec *fieldSink) int {
	ncol := len(rec.cols)
	for k := range ncol {
		if rec.bigLen(k) == 0 && !utf8.Valid(rec.field(k)) {
			return k
		}
	}
	if rec.nbig > 0 || rec.n > ncol {
		return -1
	}
	return ncol - 1
}

// endRow ends the record's row in every column, NULL where the field is
// the null marker, an unquoted empty field with empty_is_null, or big says
// it is left out as too large.
func (cf *csvFile) endRow(rec *fieldSink, null []byte, hasNull bool, big []bool) {
	for k := range rec.cols {
		c := &rec.cols[k]
		if hasNull && bytes.Equal(c.value(), null) || big != nil && big[k] ||
			rec.quoted != nil && c.n == c.start && !rec.quoted[k] {
			c.nullRow()
		} else {
			c.endRow()
		}
	}
	rec.clear()
}

// appendLineRef makes ref, "line <prev>" or empty, say "line <line>".
func appendLineRef(ref []byte, prev, line int64) []byte {
	return appendFileLineRef(ref, "", prev, line)
}

// appendFileLineRef makes ref, "<prefix>line <prev>" or empty, say
// "<prefix>line <line>" (the prefix names the file of a pattern source).
// The next record is most often on the next line: then the last digit is
// counted up in place instead of formatting the number again.
func appendFileLineRef(ref []byte, prefix string, prev, line int64) []byte {
	if len(ref) > 0 && line == prev+1 && ref[len(ref)-1] != '9' {
		ref[len(ref)-1]++
		return ref
	}
	return strconv.AppendInt(append(append(ref[:0], prefix...), "line "...), line, 10)
}

// presizeAfter is the number of rows whose widths size the column buffers.
const presizeAfter = 64

// presize grows each column's data buffer once to what the batch will need
// at the average width seen so far, instead of doubling its way there.
// remaining bounds the guess: a batch never holds more than the file left.
func presize(cols []textCol, rows, size int, remaining int64) {
	for k := range cols {
		c := &cols[k]
		want := int64(c.n) * int64(size) / int64(rows) * 9 / 8
		want = min(want, remaining)
		if want > int64(len(c.data)) {
			c.grow(int(want))
		}
	}
}

// cut shortens a raw value for a reject.
func cut(s string) string {
	if len(s) <= maxRaw {
		return s
	}
	s = s[:maxRaw]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}

// escapeInvalid shows invalid UTF-8 bytes as \xNN so that the value can
// travel in a proto string and an operator still sees the original bytes.
func escapeInvalid(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var sb strings.Builder
	sb.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			fmt.Fprintf(&sb, `\x%02x`, s[i])
		} else {
			sb.WriteString(s[i : i+n])
		}
		i += n
	}
	return sb.String()
}

// utf16Order is the byte order of a UTF-16 file; such a file is transcoded
// to UTF-8 once and the copy is scanned.
type utf16Order uint8

const (
	notUTF16 utf16Order = iota
	utf16BOM            // the byte order mark decides
	utf16LE
	utf16BE
)

// csvTempFiles caches the UTF-8 copies of UTF-16 files within a Service
// (its kindCache "csv.utf16"), keyed by path, size and modification time.
type csvTempFiles struct {
	mu     sync.Mutex
	dir    string
	files  map[string]string
	closed bool
}

// get returns the copy for key, making it with make on first use. It holds
// the lock while making so that one file is transcoded once.
func (t *csvTempFiles) get(key string, mk func(path string) error) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return "", fmt.Errorf("%w: extractor is shutting down", ErrUnavailable)
	}
	if p, ok := t.files[key]; ok {
		return p, nil
	}
	if t.dir == "" {
		d, err := os.MkdirTemp("", "cutover-csv-")
		if err != nil {
			return "", fmt.Errorf("transcode: %w", err)
		}
		t.dir = d
		t.files = map[string]string{}
	}
	p := filepath.Join(t.dir, strconv.Itoa(len(t.files))+".csv")
	if err := mk(p); err != nil {
		os.Remove(p)
		return "", err
	}
	t.files[key] = p
	return p, nil
}

// Close removes every copy; the Service closes it with its other caches.
func (t *csvTempFiles) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	var err error
	if t.dir != "" {
		err = os.RemoveAll(t.dir)
	}
	t.dir, t.files = "", nil
	return err
}
