package extract

// The encoding/csv based reader the scanner in csv.go replaced, kept as the
// reference that FuzzCSVDifferential compares the scanner against.

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"github.com/cutover/cutover/services/kit/batch"
)

func refOpenCSV(s *commonv1.CsvSource) (*csvFile, error) {
	sp, err := parseCSVSpec(s)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(sp.path)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("%w: source.csv.path: file %s does not exist", ErrNotFound, sp.path)
		case errors.Is(err, fs.ErrPermission):
			return nil, fmt.Errorf("%w: source.csv.path: no permission to read %s", ErrPrecondition, sp.path)
		}
		return nil, fmt.Errorf("source.csv.path: open %s: %w", sp.path, err)
	}
	cf := &csvFile{spec: sp, f: f}
	if err := cf.refInit(); err != nil {
		f.Close()
		return nil, err
	}
	return cf, nil
}

// init skips a UTF-8 BOM and reads the header line.
func (cf *csvFile) refInit() error {
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
	if !cf.spec.header {
		cf.names = cf.spec.columns
		return nil
	}
	rd := newRefRecordReader(cf, cf.dataStart, cf.dataLine)
	defer rd.release()
	rec, err := rd.r.Read()
	if err == io.EOF {
		return fmt.Errorf("%w: source.csv.path: %s is empty, expected a header line", ErrPrecondition, cf.spec.path)
	}
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("%w: source.csv.path: %s: header: %s", ErrPrecondition, cf.spec.path, rd.parseErrorText(pe))
	}
	if err != nil {
		return fmt.Errorf("source.csv.path: read %s: %w", cf.spec.path, err)
	}
	names := make([]string, len(rec))
	seen := make(map[string]bool, len(rec))
	for i, name := range rec {
		if !utf8.ValidString(name) {
			return fmt.Errorf("%w: source.csv.path: %s: header column %d is not valid UTF-8: %s", ErrPrecondition, cf.spec.path, i+1, escapeInvalid(name))
		}
		if name == "" {
			// A trailing delimiter in the header is common; name the column
			// by position rather than refusing the file.
			name = "column_" + strconv.Itoa(i+1)
		}
		if seen[name] {
			return fmt.Errorf("%w: source.csv.path: %s: header has column %q twice", ErrPrecondition, cf.spec.path, name)
		}
		seen[name] = true
		names[i] = name
	}
	if len(cf.spec.columns) > 0 {
		if len(cf.spec.columns) != len(names) {
			return fmt.Errorf("%w: source.csv.columns: %d names given, header of %s has %d columns", ErrPrecondition, len(cf.spec.columns), cf.spec.path, len(names))
		}
		names = cf.spec.columns
	}
	cf.names = names
	cf.dataStart += rd.r.InputOffset()
	cf.dataLine += rd.lr.lines
	return nil
}

// refLineReader hands the csv.Reader at most one line per Read. The
// csv.Reader's own bufio buffer is then empty whenever a record ends, so the
// newlines counted here are exactly those before csv.Reader.InputOffset,
// which gives the line number a cursor needs.
type refLineReader struct {
	br      *bufio.Reader
	pending []byte
	lines   int64
}

func (l *refLineReader) Read(p []byte) (int, error) {
	if len(l.pending) == 0 {
		line, err := l.br.ReadSlice('\n')
		if len(line) == 0 {
			if err == nil || err == bufio.ErrBufferFull {
				err = io.ErrNoProgress
			}
			return 0, err
		}
		l.pending = line
	}
	n := copy(p, l.pending)
	l.pending = l.pending[n:]
	if n > 0 && p[n-1] == '\n' {
		l.lines++
	}
	return n, nil
}

var refBufPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 256<<10) }}

// refRecordReader reads records from a byte offset of a CSV file.
type refRecordReader struct {
	r     *csv.Reader
	lr    *refLineReader
	start int64 // absolute offset where the reader started
	line  int64 // line number at start
}

func newRefRecordReader(cf *csvFile, off, line int64) *refRecordReader {
	br := refBufPool.Get().(*bufio.Reader)
	br.Reset(io.NewSectionReader(cf.f, off, cf.size-off))
	lr := &refLineReader{br: br}
	r := csv.NewReader(lr)
	r.Comma = cf.spec.comma
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	return &refRecordReader{r: r, lr: lr, start: off, line: line}
}

func (rd *refRecordReader) release() {
	rd.lr.br.Reset(nil)
	refBufPool.Put(rd.lr.br)
	rd.lr.br = nil
}

// offset is the absolute offset of the next record.
func (rd *refRecordReader) offset() int64 { return rd.start + rd.r.InputOffset() }

// nextLine is the line number at offset().
func (rd *refRecordReader) nextLine() int64 { return rd.line + rd.lr.lines }

// absLine turns a line number relative to the reader into a file line.
func (rd *refRecordReader) absLine(rel int) int64 { return rd.line + int64(rel) - 1 }

// parseErrorText renders a csv.ParseError with file line numbers.
func (rd *refRecordReader) parseErrorText(pe *csv.ParseError) string {
	c := *pe
	c.StartLine = int(rd.absLine(pe.StartLine))
	c.Line = int(rd.absLine(pe.Line))
	return c.Error()
}

// refEstimateRows scales the average size of the first records to the file.
func (cf *csvFile) refEstimateRows() (int64, error) {
	rd := newRefRecordReader(cf, cf.dataStart, cf.dataLine)
	defer rd.release()
	var n int64
	for n < 1000 && rd.r.InputOffset() < 1<<20 {
		_, err := rd.r.Read()
		if err == io.EOF {
			return n, nil
		}
		var pe *csv.ParseError
		if err != nil && !errors.As(err, &pe) {
			return 0, fmt.Errorf("source.csv.path: read %s: %w", cf.spec.path, err)
		}
		n++
	}
	if n == 0 || rd.r.InputOffset() == 0 {
		return n, nil
	}
	return (cf.size - cf.dataStart) * n / rd.r.InputOffset(), nil
}

// readCSV reads up to size records starting at cursor. Every record becomes
// exactly one row; records that cannot be used are NULL rows with a reject.
func refReadCSV(s *commonv1.CsvSource, cursor string, size int) (*commonv1.Batch, bool, error) {
	cf, err := refOpenCSV(s)
	if err != nil {
		return nil, false, err
	}
	defer cf.Close()
	off, line := cf.dataStart, cf.dataLine
	if cursor != "" {
		if off, line, err = parseCursor(cursor); err != nil {
			return nil, false, err
		}
		if off < cf.dataStart || off > cf.size {
			return nil, false, invalid("cursor", "offset %d is outside the data of %s (%d..%d)", off, cf.spec.path, cf.dataStart, cf.size)
		}
	}
	rd := newRefRecordReader(cf, off, line)
	defer rd.release()

	ncol := len(cf.names)
	capRows := min(size, 1<<14)
	cols := make([]*batch.Builder, ncol)
	for i, n := range cf.names {
		cols[i] = batch.NewBuilder(n, textType, capRows)
	}
	refs := batch.NewBuilder("source_ref", textType, capRows)
	b := &commonv1.Batch{Source: cf.spec.path}
	var (
		comma    = string(cf.spec.comma)
		null     = cf.spec.null
		hasNull  = null != ""
		refBuf   = make([]byte, 0, 32)
		rows     int
		eof      bool
		prevOff  = off
		nullsRow = func() {
			for _, c := range cols {
				c.AppendNull()
			}
		}
	)
	for rows < size {
		rec, err := rd.r.Read()
		if err == io.EOF {
			eof = true
			break
		}
		var pe *csv.ParseError
		if err != nil {
			if pe = refAsParseError(err); pe == nil {
				return nil, false, fmt.Errorf("source.csv.path: read %s: %w", cf.spec.path, err)
			}
		}
		var recLine int64
		if pe != nil {
			recLine = rd.absLine(pe.StartLine)
		} else {
			l, _ := rd.r.FieldPos(0)
			recLine = rd.absLine(l)
		}
		switch {
		case pe != nil:
			nullsRow()
			b.Rejects = append(b.Rejects, &commonv1.Reject{
				Row: int32(rows), Stage: stageExtract, Rule: "csv_syntax",
				Reason: rd.parseErrorText(pe),
				Raw:    cf.rawRecord(prevOff, rd.offset()),
			})
		case len(rec) != ncol:
			nullsRow()
			b.Rejects = append(b.Rejects, &commonv1.Reject{
				Row: int32(rows), Stage: stageExtract, Rule: "ragged_row",
				Reason: fmt.Sprintf("line %d: %d fields, expected %d", recLine, len(rec), ncol),
				Raw:    cut(escapeInvalid(strings.Join(rec, comma))),
			})
		default:
			bad := -1
			for i, f := range rec {
				if !utf8.ValidString(f) {
					bad = i
					break
				}
			}
			if bad >= 0 {
				nullsRow()
				b.Rejects = append(b.Rejects, &commonv1.Reject{
					Row: int32(rows), Stage: stageExtract, Rule: "encoding", Column: cf.names[bad],
					Reason: fmt.Sprintf("line %d: column %s: invalid UTF-8 in %s", recLine, cf.names[bad], cut(escapeInvalid(rec[bad]))),
					Raw:    cut(escapeInvalid(strings.Join(rec, comma))),
				})
				break
			}
			for i, f := range rec {
				if hasNull && f == null {
					cols[i].AppendNull()
				} else {
					cols[i].AppendString(f)
				}
			}
		}
		refBuf = strconv.AppendInt(append(refBuf[:0], "line "...), recLine, 10)
		refs.AppendBytes(refBuf)
		rows++
		prevOff = rd.offset()
		if rows == presizeAfter && size > 2*presizeAfter {
			refPresize(cols, rows, size, cf.size-off)
		}
	}
	next := rd.offset()
	b.NumRows = int32(rows)
	b.Columns = make([]*commonv1.Column, ncol)
	for i, c := range cols {
		b.Columns[i] = c.Column()
	}
	b.SourceRefs = refs.Column()
	b.LastKey = formatCursor(next, rd.nextLine())
	return b, eof || next >= cf.size, nil
}

// refAsParseError is separate so that its escaping variable costs an
// allocation only when there is an error, not for every record.
func refAsParseError(err error) *csv.ParseError {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return pe
	}
	return nil
}

// rawRecord returns the source bytes of a record for a reject, without the
// blank lines before it and its line end, cut to maxRaw.
func (cf *csvFile) rawRecord(from, to int64) string {
	if to-from > maxRaw {
		to = from + maxRaw
	}
	buf := make([]byte, to-from)
	n, _ := cf.f.ReadAt(buf, from)
	return escapeInvalid(string(bytes.Trim(buf[:n], "\r\n")))
}

// refPresize grows each column's data buffer once to what the batch will
// need at the average width seen so far.
func refPresize(cols []*batch.Builder, rows, size int, remaining int64) {
	for _, b := range cols {
		c := b.Column()
		want := int64(len(c.Data)) * int64(size) / int64(rows) * 9 / 8
		want = min(want, remaining)
		if want > int64(cap(c.Data)) {
			d := make([]byte, len(c.Data), want)
			copy(d, c.Data)
			c.Data = d
		}
	}
}
