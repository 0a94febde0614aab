package extract

// CSV dialects (quote, escape, trim_space) and text encodings.
//
// GBK, GB18030, Big5 and Latin-1 files are split into records on raw bytes
// and then each field is decoded: the delimiter, quote, escape and line
// ends are required to be ASCII bytes that never occur inside a character
// of the encoding, so cursors stay byte offsets in the original file.
// UTF-16 is not ASCII-compatible: such a file is transcoded once into a
// UTF-8 copy (cached per Service) which is then scanned; its cursors and
// partition offsets are offsets in that copy. Lines map one to one, so line
// numbers are those of the original file.

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
	"golang.org/x/text/transform"
)

type segKind uint8

const (
	segSingle  segKind = iota // one byte, one character (Latin-1)
	segGBK                    // one or two bytes
	segGB18030                // one, two or four bytes
	segBig5                   // one or two bytes
)

// csvEncoding decodes the fields of an ASCII-compatible legacy encoding.
// It belongs to one open file: it keeps a decoder and scratch space.
type csvEncoding struct {
	name    string
	seg     segKind
	dec     transform.Transformer
	fffd    []byte // the encoding's own U+FFFD, which decodes legitimately
	scratch []byte
}

var legacyEncodings = map[string]struct {
	name string
	enc  encoding.Encoding
	seg  segKind
}{
	"gbk":        {"GBK", simplifiedchinese.GBK, segGBK},
	"gb18030":    {"GB18030", simplifiedchinese.GB18030, segGB18030},
	"big5":       {"Big5", traditionalchinese.Big5, segBig5},
	"latin1":     {"Latin-1", charmap.ISO8859_1, segSingle},
	"iso-8859-1": {"Latin-1", charmap.ISO8859_1, segSingle},
	"ascii":      {"ASCII", asciiEncoding{}, segSingle},
	"us-ascii":   {"ASCII", asciiEncoding{}, segSingle},
}

// parseCSVOptions validates the dialect and encoding fields of a CsvSource
// into sp; parseCSVSpec has read the delimiter.
func parseCSVOptions(s *commonv1.CsvSource, sp *csvSpec) error {
	ascii := func(field, v string) (byte, error) {
		if len(v) != 1 || v[0] >= utf8.RuneSelf || v[0] == 0 || v[0] == '\r' || v[0] == '\n' {
			return 0, invalid(field, "must be one ASCII character other than NUL, CR and LF, got %q", v)
		}
		return v[0], nil
	}
	var err error
	if s.GetNoQuoting() {
		// Fields are never enclosed: no quote and no escape to read.
		switch {
		case s.GetQuote() != "":
			return invalid("source.csv.quote", "must be empty with no_quoting: fields are never enclosed, so %q is an ordinary character", s.GetQuote())
		case s.GetEscape() != "":
			return invalid("source.csv.escape", "must be empty with no_quoting: an escape only applies inside quoted fields")
		}
		sp.quote = 0
		sp.dialect = &csvDialect{noQuote: true, trim: s.GetTrimSpace()}
	}
	if q := s.GetQuote(); q != "" {
		if sp.quote, err = ascii("source.csv.quote", q); err != nil {
			return err
		}
	}
	var esc byte
	if e := s.GetEscape(); e != "" {
		if esc, err = ascii("source.csv.escape", e); err != nil {
			return err
		}
		if rune(esc) == sp.comma {
			return invalid("source.csv.escape", "%q is also the delimiter", e)
		}
		if esc == sp.quote {
			esc = 0 // a doubled quote is what RFC 4180 does anyway
		}
	}
	trim := s.GetTrimSpace()
	if trim && (sp.quote == ' ' || sp.quote == '\t') {
		return invalid("source.csv.quote", "%q cannot be the quote with trim_space", string(sp.quote))
	}
	if sp.dialect == nil && (sp.quote != '"' || esc != 0 || trim) {
		sp.dialect = &csvDialect{quote: sp.quote, escape: esc, trim: trim, errBare: csv.ErrBareQuote, errQuote: csv.ErrQuote}
		if sp.quote != '"' {
			sp.dialect.errBare = errors.New(strings.ReplaceAll(csv.ErrBareQuote.Error(), `"`, string(sp.quote)))
			sp.dialect.errQuote = errors.New(strings.ReplaceAll(csv.ErrQuote.Error(), `"`, string(sp.quote)))
		}
	}

	name := strings.ToLower(strings.TrimSpace(s.GetEncoding()))
	switch name {
	case "", "utf-8", "utf8":
		return nil
	case "utf-16":
		sp.utf16, sp.encName = utf16BOM, "UTF-16"
		return nil
	case "utf-16le":
		sp.utf16, sp.encName = utf16LE, "UTF-16LE"
		return nil
	case "utf-16be":
		sp.utf16, sp.encName = utf16BE, "UTF-16BE"
		return nil
	}
	le, ok := legacyEncodings[name]
	if !ok {
		return invalid("source.csv.encoding", "unknown encoding %q (use utf-8, gbk, gb18030, big5, utf-16, utf-16le, utf-16be, latin1 or ascii)", s.GetEncoding())
	}
	sp.encName = le.name
	if le.seg != segSingle {
		// Bytes from 0x40 up are trail bytes of double-byte characters,
		// and GB18030 four-byte characters hold digits.
		safe := func(c rune) bool { return c < 0x40 && !(le.seg == segGB18030 && c >= '0' && c <= '9') }
		switch {
		case !safe(sp.comma):
			return invalid("source.csv.delimiter", "%q can occur inside a %s character; use a delimiter below 0x40 (such as , ; or tab) or convert the file to UTF-8", string(sp.comma), le.name)
		case !safe(rune(sp.quote)):
			return invalid("source.csv.quote", "%q can occur inside a %s character", string(sp.quote), le.name)
		case esc != 0 && !safe(rune(esc)):
			return invalid("source.csv.escape", "%q can occur inside a %s character (the 0x5C problem); convert the file to UTF-8 to use it", string(esc), le.name)
		}
	} else {
		if sp.comma > 0xFF {
			return invalid("source.csv.delimiter", "%q cannot be written in %s", string(sp.comma), le.name)
		}
		sp.rawComma = []byte{byte(sp.comma)}
	}
	e := &csvEncoding{name: le.name, seg: le.seg, dec: le.enc.NewDecoder()}
	if f, err := le.enc.NewEncoder().Bytes([]byte("\uFFFD")); err == nil {
		e.fffd = f
	}
	sp.enc = e
	return nil
}

// isASCII reports whether b has only bytes below 0x80, which every
// supported encoding maps to themselves.
func isASCII(b []byte) bool {
	for len(b) >= 8 {
		if (uint64(b[0])|uint64(b[1])|uint64(b[2])|uint64(b[3])|uint64(b[4])|uint64(b[5])|uint64(b[6])|uint64(b[7]))&0x80 != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

var replacement = []byte("\uFFFD")

// decode appends the UTF-8 text of src to dst. bad is the offset of the
// first byte that does not decode, -1 if none. golang.org/x/text writes
// U+FFFD for what it cannot decode; only when U+FFFD shows up is the field
// decoded again character by character to tell a real U+FFFD from a failure.
func (e *csvEncoding) decode(dst, src []byte) (out []byte, bad int) {
	if isASCII(src) {
		return append(dst, src...), -1
	}
	n := len(dst)
	if need := n + 4*len(src) + 16; cap(dst) < need {
		d := make([]byte, n, need)
		copy(d, dst)
		dst = d
	}
	e.dec.Reset()
	nDst, _, err := e.dec.Transform(dst[n:cap(dst)], src, true)
	out = dst[:n+nDst]
	if err == nil && !bytes.Contains(out[n:], replacement) {
		return out, -1
	}
	return e.decodeChars(dst[:n], src, false)
}

// decodeChars decodes one character at a time. With lenient it goes on
// past bytes that do not decode and shows them as \xNN.
func (e *csvEncoding) decodeChars(dst, src []byte, lenient bool) ([]byte, int) {
	bad := -1
	var buf [16]byte
	for i := 0; i < len(src); {
		n := e.charLen(src[i:])
		ch := src[i : i+n]
		e.dec.Reset()
		w, _, err := e.dec.Transform(buf[:], ch, true)
		ok := err == nil && w > 0 && (!bytes.Contains(buf[:w], replacement) || bytes.Equal(ch, e.fffd))
		if !ok {
			// Lead byte without a valid trail: only the lead byte is bad.
			n, ch = 1, src[i:i+1]
			if bad < 0 {
				bad = i
			}
			if !lenient {
				return dst, bad
			}
			dst = fmt.Appendf(dst, `\x%02x`, ch[0])
		} else {
			dst = append(dst, buf[:w]...)
		}
		i += n
	}
	return dst, bad
}

// charLen is the length of the character that b starts with.
func (e *csvEncoding) charLen(b []byte) int {
	c := b[0]
	if e.seg == segSingle || c < 0x81 || c == 0xFF || len(b) < 2 {
		return 1
	}
	if e.seg == segGB18030 && b[1] >= '0' && b[1] <= '9' && len(b) >= 4 {
		return 4
	}
	return 2
}

// text decodes a value for a header or a reject; when it does not decode,
// the bytes at fault show as \xNN and ok is false.
func (e *csvEncoding) text(b []byte) (string, bool) {
	out, bad := e.decode(e.scratch[:0], b)
	if bad < 0 {
		e.scratch = out
		return string(out), true
	}
	out, _ = e.decodeChars(e.scratch[:0], b, true)
	e.scratch = out
	return string(out), false
}

// decodeRecord replaces the raw fields of a record by their UTF-8 text, or
// returns the reject of the first field that does not decode. Fields over
// the sink's limit stay as they are.
func (e *csvEncoding) decodeRecord(rec *fieldSink, names []string, line int64, comma []byte) *commonv1.Reject {
	for k := range rec.cols {
		c := &rec.cols[k]
		v := c.value()
		if isASCII(v) || rec.bigLen(k) > 0 {
			// A field too large to keep is left out of the row: only its
			// start is here, which may end inside a character.
			continue
		}
		out, bad := e.decode(e.scratch[:0], v)
		e.scratch = out
		if bad >= 0 {
			shown, _ := e.text(v)
			raw, _ := e.text(rec.joinBytes(comma))
			return &commonv1.Reject{Rule: "encoding", Column: names[k],
				Reason: fmt.Sprintf("line %d: column %s: byte %d (0x%02x) is not valid %s in %s", line, names[k], bad+1, v[bad], e.name, cut(shown)),
				Raw:    cut(raw)}
		}
		c.n = c.start
		c.add(out)
	}
	return nil
}

// transcode replaces a UTF-16 file by its UTF-8 copy, cached in svc when
// there is one, else made for this open only.
func (cf *csvFile) transcode(svc *Service) error {
	if cf.spec.utf16 == notUTF16 {
		return nil
	}
	st, err := cf.f.Stat()
	if err != nil || st.IsDir() {
		return nil // stat reports it
	}
	order := cf.spec.utf16
	var bom [2]byte
	if n, _ := cf.f.ReadAt(bom[:], 0); n == 2 {
		switch {
		case bom == [2]byte{0xFF, 0xFE} && order != utf16BE:
			order = utf16LE
		case bom == [2]byte{0xFE, 0xFF} && order != utf16LE:
			order = utf16BE
		}
	}
	if order == utf16BOM {
		if st.Size() == 0 {
			order = utf16LE // nothing to decide; init reports the empty file
		} else {
			return invalid("source.csv.encoding", "%s has no byte order mark; give utf-16le or utf-16be", cf.spec.path)
		}
	}
	write := func(path string) error { return transcodeUTF16(cf.f, path, order == utf16BE) }
	var path string
	if svc != nil {
		c, err := svc.kindCache("csv.utf16", func() io.Closer { return &csvTempFiles{} })
		if err != nil {
			return err
		}
		// The resolved path: one copy per file, whatever path named it.
		key := fmt.Sprintf("%s\x00%d\x00%d\x00%d", cf.f.Name(), st.Size(), st.ModTime().UnixNano(), order)
		if path, err = c.(*csvTempFiles).get(key, write); err != nil {
			return err
		}
	} else {
		tf, err := os.CreateTemp("", "cutover-csv-*.csv")
		if err != nil {
			return fmt.Errorf("transcode: %w", err)
		}
		path = tf.Name()
		tf.Close()
		cf.tmp = path
		if err := write(path); err != nil {
			return err
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("transcode: %w", err)
	}
	cf.f.Close()
	cf.f = f
	return nil
}

// transcodeUTF16 writes the UTF-8 form of a UTF-16 file. A byte order mark
// becomes the UTF-8 one, which init skips. A lone surrogate is written in
// its generalized UTF-8 form and an odd last byte as itself: both are
// invalid UTF-8, so their rows are quarantined, never silently replaced.
func transcodeUTF16(src io.ReaderAt, path string, be bool) error {
	out, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("transcode: %w", err)
	}
	defer out.Close()
	w := bufio.NewWriterSize(out, 256<<10)
	r := bufio.NewReaderSize(io.NewSectionReader(src, 0, 1<<62), 256<<10)
	unit := func() (uint16, int, error) {
		var b [2]byte
		n, err := io.ReadFull(r, b[:])
		if n < 2 {
			return uint16(b[0]), n, err
		}
		if be {
			return uint16(b[0])<<8 | uint16(b[1]), 2, nil
		}
		return uint16(b[1])<<8 | uint16(b[0]), 2, nil
	}
	var buf [4]byte
	var pending int32 = -1 // a high surrogate waiting for its pair
	flushLone := func(u uint16) {
		// WTF-8: the 3-byte form of a surrogate code point.
		w.Write([]byte{0xED, byte(0x80 | (u>>6)&0x3F), byte(0x80 | u&0x3F)})
	}
	for {
		u, n, err := unit()
		if n < 2 {
			if pending >= 0 {
				flushLone(uint16(pending))
			}
			if n == 1 {
				w.WriteByte(byte(u))
			}
			if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
				return fmt.Errorf("transcode: %w", err)
			}
			break
		}
		if pending >= 0 {
			if utf16.IsSurrogate(rune(u)) && u >= 0xDC00 {
				w.Write(utf8.AppendRune(buf[:0], utf16.DecodeRune(rune(pending), rune(u))))
				pending = -1
				continue
			}
			flushLone(uint16(pending))
			pending = -1
		}
		switch {
		case u >= 0xD800 && u < 0xDC00:
			pending = int32(u)
		case u >= 0xDC00 && u < 0xE000:
			flushLone(u)
		case u < utf8.RuneSelf:
			w.WriteByte(byte(u))
		default:
			w.Write(utf8.AppendRune(buf[:0], rune(u)))
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("transcode: %w", err)
	}
	return out.Close()
}

// parseDialect is parse for a dialect with another quote, an escape or
// trimmed spaces. It keeps parse's rules otherwise (line ends, blank lines,
// syntax errors and their positions), so with the default dialect it reads
// exactly what parse reads, which FuzzCSVDialectDefault checks.
func (sc *scanner) parseDialect(out *fieldSink) (st scanStatus, more bool) {
	d := sc.dialect
	q, esc, noQuote := d.quote, d.escape, d.noQuote
	data := sc.b[sc.pos:sc.end]
	atEOF := sc.eof
	comma := sc.comma
	// Spaces trimmed: space and tab, unless one is the delimiter.
	sp1, sp2 := byte(' '), byte('\t')
	if len(comma) == 1 && comma[0] == '\t' {
		sp2 = ' '
	} else if len(comma) == 1 && comma[0] == ' ' {
		sp1 = '\t'
	}
	isSpace := func(c byte) bool { return d.trim && (c == sp1 || c == sp2) }
	var nls int64
	p := 0
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
	ln := sc.recLine
	ls := p
	ce, next, hasNL, _ := lineAt(data, p, atEOF)
	i := p
	syntax := func(line, col int64, kind error) (scanStatus, bool) {
		if hasNL {
			nls++
		}
		sc.used, sc.nls = next, nls
		sc.errLine, sc.errCol, sc.errKind = line, col, kind
		return scanSyntax, false
	}
	quoteByte := []byte{q}
fields:
	for {
		for i < ce && isSpace(data[i]) {
			i++
		}
		if noQuote || i == ce || data[i] != q {
			// Unquoted field.
			fe := ce
			if j := bytes.Index(data[i:ce], comma); j >= 0 {
				fe = i + j
			}
			if k := bytes.IndexByte(data[i:fe], q); k >= 0 && !noQuote {
				return syntax(ln, int64(i+k-ls+1), d.errBare)
			}
			ve := fe
			for ve > i && isSpace(data[ve-1]) {
				ve--
			}
			out.add(data[i:ve])
			out.end()
			if fe == ce {
				break fields
			}
			i = fe + len(comma)
			continue
		}
		// Quoted field.
		out.markQuoted()
		i++
		for {
			k := -1
			if esc == 0 {
				k = bytes.IndexByte(data[i:ce], q)
			} else if f := findByte2(data, i, ce, q, esc); f < ce {
				k = f - i
			}
			if k >= 0 {
				out.add(data[i : i+k])
				i += k
				if data[i] == esc {
					if i+1 < ce && (data[i+1] == q || data[i+1] == esc) {
						out.add(data[i+1 : i+2])
						i += 2
					} else {
						out.add(data[i : i+1])
						i++
					}
					continue
				}
				i++
				if i < ce && data[i] == q {
					out.add(quoteByte)
					i++
					continue
				}
				j := i
				for j < ce && isSpace(data[j]) {
					j++
				}
				switch {
				case bytes.HasPrefix(data[j:ce], comma):
					out.end()
					i = j + len(comma)
					continue fields
				case j == ce:
					out.end()
					break fields
				default:
					return syntax(ln, int64(i-ls), d.errQuote)
				}
			}
			if i == ce && !hasNL {
				return syntax(ln, int64(i-ls+1), d.errQuote)
			}
			out.add(data[i:ce])
			endCol := int64(ce - ls + 1)
			if !hasNL {
				return syntax(ln, endCol, d.errQuote)
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
				return syntax(ln, endCol, d.errQuote)
			}
			ln++
			ls, i = p, p
		}
	}
	if hasNL {
		nls++
	}
	sc.used, sc.nls = next, nls
	sc.rec = data[recStart:next]
	return scanRecord, false
}

// formatOffset renders a byte offset for KeyRange.upper.
func formatOffset(off int64) string { return strconv.FormatInt(off, 10) }
