package extract

import (
	"bytes"
	"encoding/binary"
	"encoding/csv"
	"io"
	"math/bits"
	"sync"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"github.com/cutover/cutover/services/kit/batch"
)

// The scanner reads CSV records straight out of a large read buffer and
// appends field bytes into the batch's column buffers, so a record costs no
// allocation. It follows the rules of encoding/csv (RFC 4180, no LazyQuotes,
// no TrimLeadingSpace, no comments) to the byte, including its quirks, so
// that cursors, line numbers and rejects are what they always were:
//   - lines end at \n; a \r before it is dropped, and so is a \r ending the
//     file; a quoted field keeps its line ends as \n;
//   - blank lines between records are skipped;
//   - a " inside an unquoted field, or a closing " followed by anything but
//     "", the delimiter or the line end, makes the record a syntax error and
//     the rest of that line is skipped; a quoted field open at the end of
//     the file is a syntax error too.
// The differential fuzz test holds it to the encoding/csv reader it replaced.

type scanStatus int

const (
	scanRecord scanStatus = iota // a record; its fields are in the sink
	scanEOF                      // no more records
	scanSyntax                   // a malformed record, consumed up to its error line's end
)

const (
	// minRead and maxChunk bound one read; a record longer than the buffer
	// still fits because each fill reads at least as much as is buffered.
	minRead  = 4 << 10
	maxChunk = 4 << 20
	// bufKeep is the largest buffer put back into the pool.
	bufKeep = 16 << 20
)

// testReadLimit, when set by a test, caps every read so that records
// straddle buffer refills.
var testReadLimit int

var scanBufs = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

var (
	quoteByte   = []byte{'"'}
	newlineByte = []byte{'\n'}
)

type scanner struct {
	r     io.ReaderAt
	limit int64 // read no further than this offset
	comma []byte
	pb    *[]byte // pooled buffer holder
	b     []byte
	off   int64 // file offset of b[0]
	pos   int   // start of the unconsumed bytes in b
	end   int   // end of the bytes read into b
	eof   bool  // b[end] is limit
	line  int64 // line number at pos
	want  int   // size of the next read
	// dialect is nil for RFC 4180 with '"' quotes, the fast path; else
	// parseDialect reads the record.
	dialect *csvDialect

	// Set by next for the record just returned; the slices stay valid until
	// the next call.
	recLine int64  // line of the record's first line
	rec     []byte // raw bytes of the record
	span    []byte // raw bytes consumed: blank lines before the record and the record
	errLine int64  // for scanSyntax: line and byte column of the error
	errCol  int64
	errKind error // csv.ErrBareQuote or csv.ErrQuote

	// parse results
	used int   // bytes consumed
	nls  int64 // newlines consumed
}

func newScanner(r io.ReaderAt, off, limit, line int64, comma []byte, want int) *scanner {
	pb := scanBufs.Get().(*[]byte)
	return &scanner{r: r, off: off, limit: limit, line: line, comma: comma, pb: pb, b: *pb, want: max(want, minRead)}
}

func (sc *scanner) release() {
	if cap(sc.b) <= bufKeep {
		*sc.pb = sc.b[:cap(sc.b)]
		scanBufs.Put(sc.pb)
	}
	sc.pb, sc.b = nil, nil
}

// offset is the absolute offset of the next record.
func (sc *scanner) offset() int64 { return sc.off + int64(sc.pos) }

// syntaxText renders the syntax error of the last record in the words of
// encoding/csv.
func (sc *scanner) syntaxText() string {
	pe := csv.ParseError{StartLine: int(sc.recLine), Line: int(sc.errLine), Column: int(sc.errCol), Err: sc.errKind}
	return pe.Error()
}

// next reads one record into out, reading more of the file as needed.
func (sc *scanner) next(out *fieldSink) (scanStatus, error) {
	for {
		var st scanStatus
		var more bool
		if sc.dialect == nil {
			st, more = sc.parse(out)
		} else {
			st, more = sc.parseDialect(out)
		}
		if !more {
			sc.span = sc.b[sc.pos : sc.pos+sc.used]
			sc.pos += sc.used
			sc.line += sc.nls
			return st, nil
		}
		// The record runs past the buffered bytes: drop what it produced
		// and parse it again once more of it is in the buffer.
		out.reset()
		if err := sc.fill(); err != nil {
			return 0, err
		}
	}
}

// fill moves the unconsumed bytes to the front of the buffer and reads more.
func (sc *scanner) fill() error {
	if sc.pos > 0 {
		sc.end = copy(sc.b, sc.b[sc.pos:sc.end])
		sc.off += int64(sc.pos)
		sc.pos = 0
	}
	left := sc.limit - sc.off - int64(sc.end)
	if left <= 0 {
		sc.eof = true
		return nil
	}
	// Reading at least as much as is buffered doubles the buffer for a
	// record longer than it, so re-parsing such a record stays linear.
	n := int(min(int64(max(sc.want, sc.end)), left))
	if testReadLimit > 0 {
		n = min(n, testReadLimit)
	}
	if sc.end+n > len(sc.b) {
		nb := make([]byte, sc.end+n)
		copy(nb, sc.b[:sc.end])
		sc.b = nb
	}
	got, err := sc.r.ReadAt(sc.b[sc.end:sc.end+n], sc.off+int64(sc.end))
	sc.end += got
	if err == io.EOF || sc.off+int64(sc.end) >= sc.limit {
		sc.eof = true
	} else if err != nil {
		return err
	}
	sc.want = min(2*sc.want, maxChunk)
	return nil
}

// lineAt returns the content end (before "\r\n", "\n" or a final "\r") and
// the end of the line starting at p, or ok false if the line is not all in
// data yet.
func lineAt(data []byte, p int, atEOF bool) (ce, next int, hasNL, ok bool) {
	nl := bytes.IndexByte(data[p:], '\n')
	if nl < 0 {
		if !atEOF {
			return 0, 0, false, false
		}
		ce = len(data)
		if ce > p && data[ce-1] == '\r' {
			ce--
		}
		return ce, len(data), false, true
	}
	next = p + nl + 1
	ce = next - 1
	if ce > p && data[ce-1] == '\r' {
		ce--
	}
	return ce, next, true, true
}

// parse parses one record from the unconsumed bytes into out. more means
// the bytes end inside the record and the end of the file is not reached.
func (sc *scanner) parse(out *fieldSink) (st scanStatus, more bool) {
	data := sc.b[sc.pos:sc.end]
	atEOF := sc.eof
	comma := sc.comma
	var nls int64
	p := 0
	// Skip blank lines.
	for {
		if p == len(data) {
			if !atEOF {
				return 0, true
			}
			sc.used, sc.nls = p, nls
			return scanEOF, false
		}
		nl := bytes.IndexByte(data[p:], '\n')
		if nl < 0 {
			if !atEOF {
				return 0, true
			}
			if len(data)-p == 1 && data[p] == '\r' {
				sc.used, sc.nls = len(data), nls
				return scanEOF, false
			}
			break
		}
		if nl == 0 || (nl == 1 && data[p] == '\r') {
			p += nl + 1
			nls++
			continue
		}
		break
	}
	recStart := p
	sc.recLine = sc.line + nls
	ln := sc.recLine // line number of the line being parsed
	ls := p          // its start
	ce, next, hasNL, _ := lineAt(data, p, atEOF)
	i := p
	nextQ := -1 // first " at or after i on the line, ce if none; stale when < i
	// syntax ends the record at an error on line ln; the rest of the line
	// is consumed.
	syntax := func(line, col int64, kind error) (scanStatus, bool) {
		if hasNL {
			nls++
		}
		sc.used, sc.nls = next, nls
		sc.errLine, sc.errCol, sc.errKind = line, col, kind
		return scanSyntax, false
	}
fields:
	for {
		if i == ce || data[i] != '"' {
			// Unquoted field.
			var j int
			if len(comma) == 1 {
				// One pass finds the delimiter or a bare quote.
				fe := findByte2(data, i, ce, comma[0], '"')
				if fe < ce && data[fe] == '"' {
					return syntax(ln, int64(fe-ls+1), csv.ErrBareQuote)
				}
				out.add(data[i:fe])
				out.end()
				if fe == ce {
					break fields
				}
				i = fe + 1
				continue
			}
			j = bytes.Index(data[i:ce], comma)
			fe := ce
			if j >= 0 {
				fe = i + j
			}
			// One search for " serves all the unquoted fields before it.
			if nextQ < i {
				if nextQ = bytes.IndexByte(data[i:ce], '"'); nextQ < 0 {
					nextQ = ce
				} else {
					nextQ += i
				}
			}
			if nextQ < fe {
				return syntax(ln, int64(nextQ-ls+1), csv.ErrBareQuote)
			}
			out.add(data[i:fe])
			out.end()
			if j < 0 {
				break fields
			}
			i = fe + len(comma)
			continue
		}
		// Quoted field.
		out.markQuoted()
		i++
		for {
			if q := bytes.IndexByte(data[i:ce], '"'); q >= 0 {
				out.add(data[i : i+q])
				i += q + 1
				switch {
				case i < ce && data[i] == '"':
					out.add(quoteByte)
					i++
				case bytes.HasPrefix(data[i:ce], comma):
					out.end()
					i += len(comma)
					continue fields
				case i == ce:
					out.end()
					break fields
				default:
					return syntax(ln, int64(i-ls), csv.ErrQuote)
				}
				continue
			}
			if i == ce && !hasNL {
				return syntax(ln, int64(i-ls+1), csv.ErrQuote)
			}
			// The field goes on past the line end.
			out.add(data[i:ce])
			endCol := int64(ce - ls + 1)
			if !hasNL {
				return syntax(ln, endCol, csv.ErrQuote)
			}
			out.add(newlineByte)
			endCol++
			p = next
			nls++
			var ok bool
			if ce, next, hasNL, ok = lineAt(data, p, atEOF); !ok {
				return 0, true
			}
			if ce == p && !hasNL {
				// Only "" or "\r" is left of the file.
				return syntax(ln, endCol, csv.ErrQuote)
			}
			ln++
			ls, i = p, p
			nextQ = -1
		}
	}
	if hasNL {
		nls++
	}
	sc.used, sc.nls = next, nls
	sc.rec = data[recStart:next]
	return scanRecord, false
}

// textCol is a TEXT column under construction. Unlike batch.Builder it
// keeps its lengths in plain ints and writes values with copy, so appending
// stores no pointer: with the GC marking, every pointer store would pay a
// write barrier, and a record has many values.
type textCol struct {
	data  []byte // bytes past n are free room
	n     int    // bytes in use
	start int    // start of the current row's value
	offs  []uint32
	rows  int
	nulls []byte
}

func newTextCol(rows, bytes int) textCol {
	return textCol{data: make([]byte, bytes), offs: make([]uint32, rows+1)}
}

func (c *textCol) add(b []byte) {
	if len(b) <= 16 && cap(b) >= 16 && len(c.data)-c.n >= 16 {
		// A short value is moved as two words; the bytes past it are
		// read from the input buffer's spare capacity and land in free room.
		src, dst := b[:16], c.data[c.n:c.n+16]
		binary.LittleEndian.PutUint64(dst, binary.LittleEndian.Uint64(src))
		binary.LittleEndian.PutUint64(dst[8:], binary.LittleEndian.Uint64(src[8:]))
		c.n += len(b)
		return
	}
	if len(c.data)-c.n < len(b) {
		c.grow(c.n + len(b))
	}
	c.n += copy(c.data[c.n:], b)
}

// grow makes room for at least n bytes.
func (c *textCol) grow(n int) {
	d := make([]byte, max(n, 2*len(c.data), 256))
	copy(d, c.data[:c.n])
	c.data = d
}

// value is the current row's value so far.
func (c *textCol) value() []byte { return c.data[c.start:c.n] }

// endRow ends the current row with the bytes added since the last one.
func (c *textCol) endRow() {
	if c.rows+1 >= len(c.offs) {
		o := make([]uint32, 2*len(c.offs))
		copy(o, c.offs)
		c.offs = o
	}
	c.rows++
	c.offs[c.rows] = uint32(c.n)
	c.start = c.n
}

// nullRow ends the current row as NULL.
func (c *textCol) nullRow() {
	c.n = c.start
	c.nulls = batch.SetBit(c.nulls, c.rows)
	c.endRow()
}

// truncate drops the rows from rows on; the current row must be empty.
func (c *textCol) truncate(rows int) {
	c.rows = rows
	c.n = int(c.offs[rows])
	c.start = c.n
	nb := (rows + 7) / 8
	if len(c.nulls) > nb {
		c.nulls = c.nulls[:nb]
	}
	if rows%8 != 0 && len(c.nulls) == nb {
		c.nulls[nb-1] &= byte(1)<<(rows%8) - 1
	}
}

// column is the built column, as batch.Builder would build it.
func (c *textCol) column(name string) *commonv1.Column {
	return &commonv1.Column{Name: name, Type: textType, Data: c.data[:c.n:c.n], Offsets: c.offs[:c.rows+1], Nulls: c.nulls}
}

// fieldSink receives the fields of a record: field k goes straight to the
// end of cols[k], fields past the columns to extra.
type fieldSink struct {
	cols    []textCol
	n       int // fields ended
	extra   []byte
	ends    []int // end of each field in extra
	discard bool  // drop the bytes of fields past cols (a scan for boundaries)
	// limit, if not 0, is the most bytes a field may have: a longer one
	// keeps only its first bigPrefix bytes in its column, and its length
	// in big, so that a huge field is never copied out of the read buffer
	// (the row leaves it out as too large). Fields past cols then keep at
	// most maxRaw bytes each: they only ever show in a reject.
	limit int
	big   []int64 // by column: the length of the record's over-limit field, 0 if none
	nbig  int     // over-limit fields in the record
	// quoted, if not nil, says by column whether the record's field was
	// quoted (for empty_is_null: "" is an empty string, nothing is NULL).
	quoted []bool
}

// markQuoted notes that the field being read is quoted.
func (s *fieldSink) markQuoted() {
	if s.n < len(s.quoted) {
		s.quoted[s.n] = true
	}
}

// bigPrefix is what a field over the limit keeps of its start, enough for
// the reject's raw prefix cut on a character boundary.
const bigPrefix = rawPrefixBytes + 4

func (s *fieldSink) add(b []byte) {
	if s.n < len(s.cols) {
		c := &s.cols[s.n]
		if s.limit > 0 && (s.nbig > 0 || c.n-c.start+len(b) > s.limit) {
			s.addLimited(c, b)
			return
		}
		c.add(b)
	} else if !s.discard {
		if s.limit > 0 {
			from := 0
			if len(s.ends) > 0 {
				from = s.ends[len(s.ends)-1]
			}
			b = b[:min(len(b), max(maxRaw-(len(s.extra)-from), 0))]
		}
		s.extra = append(s.extra, b...)
	}
}

// addLimited is add for a field that is or becomes longer than the limit.
func (s *fieldSink) addLimited(c *textCol, b []byte) {
	k := s.n
	if s.big == nil {
		s.big = make([]int64, len(s.cols))
	}
	if s.big[k] > 0 {
		s.big[k] += int64(len(b))
		return
	}
	cur := c.n - c.start
	if cur+len(b) <= s.limit {
		c.add(b)
		return
	}
	s.big[k] = int64(cur + len(b))
	s.nbig++
	if keep := bigPrefix - cur; keep > 0 {
		c.add(b[:min(keep, len(b))])
	} else {
		c.n = c.start + bigPrefix
	}
}

// bigLen is the length of field k if it is over the limit, else 0.
func (s *fieldSink) bigLen(k int) int64 {
	if s.nbig == 0 || k >= len(s.big) {
		return 0
	}
	return s.big[k]
}

func (s *fieldSink) end() {
	if s.n >= len(s.cols) {
		s.ends = append(s.ends, len(s.extra))
	}
	s.n++
}

// field returns field k of the current record.
func (s *fieldSink) field(k int) []byte {
	if k < len(s.cols) {
		return s.cols[k].value()
	}
	if s.discard {
		return nil
	}
	k -= len(s.cols)
	from := 0
	if k > 0 {
		from = s.ends[k-1]
	}
	return s.extra[from:s.ends[k]]
}

// reset drops the current record's bytes.
func (s *fieldSink) reset() {
	for k := range min(s.n+1, len(s.cols)) {
		c := &s.cols[k]
		c.n = c.start
	}
	s.clear()
}

// clear forgets the current record once its columns ended their rows.
func (s *fieldSink) clear() {
	s.n = 0
	if s.nbig > 0 {
		clear(s.big)
		s.nbig = 0
	}
	s.extra = s.extra[:0]
	s.ends = s.ends[:0]
	if s.quoted != nil {
		clear(s.quoted)
	}
}

// join renders the record's fields joined by the delimiter, as a reject's raw.
func (s *fieldSink) join(comma []byte) string { return string(s.joinBytes(comma)) }

func (s *fieldSink) joinBytes(comma []byte) []byte {
	var out []byte
	for k := range s.n {
		if k > 0 {
			out = append(out, comma...)
		}
		out = append(out, s.field(k)...)
	}
	return out
}

// csvDialect is a CSV dialect other than RFC 4180 with '"' quotes.
type csvDialect struct {
	quote  byte
	escape byte // 0: a quote inside quotes is doubled
	trim   bool // trim spaces and tabs around unquoted fields
	// noQuote: no field is ever quoted (no_quoting); a quote character is
	// an ordinary one, and a record is one line.
	noQuote bool
	// errBare and errQuote are csv.ErrBareQuote and csv.ErrQuote in the
	// words of this quote character.
	errBare, errQuote error
}

const (
	swarLo = 0x0101010101010101
	swarHi = 0x8080808080808080
)

// findByte2 returns the index of the first a or b in data[i:end], or end.
// Fields are short, so eight bytes at a time in a register beat a call to
// bytes.IndexByte per field; it may look at bytes past end, never past data.
func findByte2(data []byte, i, end int, a, b byte) int {
	ma, mb := swarLo*uint64(a), swarLo*uint64(b)
	for i < end && i+8 <= len(data) {
		w := binary.LittleEndian.Uint64(data[i:])
		x, y := w^ma, w^mb
		// The lowest byte flagged is exactly the first a or b.
		if m := ((x-swarLo)&^x | (y-swarLo)&^y) & swarHi; m != 0 {
			return min(i+bits.TrailingZeros64(m)>>3, end)
		}
		i += 8
	}
	for ; i < end; i++ {
		if c := data[i]; c == a || c == b {
			return i
		}
	}
	return end
}
