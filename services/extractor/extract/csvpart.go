package extract

import (
	"bytes"
	"context"
	"fmt"
	"io"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
)

// maxPlanScan caps the bytes a plan scans for record boundaries. A
// boundary is only certain after reading the file from its start (a quoted
// field may hold newlines), so a larger file gets its chunk boundaries in
// its first maxPlanScan bytes and the last chunk takes the rest.
var maxPlanScan int64 = 4 << 30

// chunks splits the data into up to n byte ranges of about equal size that
// start on record boundaries. It runs the scanner itself over the file,
// without keeping any field, so a boundary is exactly where a sequential
// read ends a record: the ranges read together what one read reads.
// Range k is {lower: "<offset>:<line>" (empty for the first), upper: the
// offset where range k+1 starts (empty for the last)}.
func (cf *csvFile) chunks(ctx context.Context, n int) ([]*commonv1.KeyRange, error) {
	data := cf.size - cf.dataStart
	ranges := []*commonv1.KeyRange{{}}
	if data <= 0 {
		return ranges, nil
	}
	if r, ok, err := cf.lineChunks(ctx, n); err != nil || ok {
		return r, err
	}
	target := func(k int) int64 { return cf.dataStart + data*int64(k)/int64(n) }
	k := 1
	sc := cf.scanner(cf.dataStart, cf.dataLine, 1<<20)
	defer sc.release()
	sink := fieldSink{discard: true}
	end := cf.dataStart + maxPlanScan
	for recs := 0; k < n; recs++ {
		off, line := sc.offset(), sc.line
		if off >= end {
			break
		}
		if recs&4095 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		st, err := sc.next(&sink)
		sink.clear()
		if err != nil {
			return nil, fmt.Errorf("source.csv.path: read %s: %w", cf.spec.path, err)
		}
		if st == scanEOF {
			break
		}
		// off is before a record, so no range is empty.
		if off > cf.dataStart && off >= target(k) {
			ranges[len(ranges)-1].Upper = formatOffset(off)
			ranges = append(ranges, &commonv1.KeyRange{Lower: formatCursor(off, line)})
			for k < n && target(k) <= off {
				k++
			}
		}
	}
	return ranges, nil
}

// lineChunks is chunks for a file whose bytes before its last boundary hold
// no quote, in the default dialect (or any quote, with no_quoting) and
// UTF-8: there a record is a line, and a line number is a count of
// newlines, so the plan counts bytes instead of parsing, about a hundred times faster. A boundary
// follows a record's line, never a blank one: blank lines are read with
// the record after them. ok is false when a quote comes first; chunks then
// scans as before.
func (cf *csvFile) lineChunks(ctx context.Context, n int) (ranges []*commonv1.KeyRange, ok bool, err error) {
	// Without quoting (no_quoting) every record is a line whatever it holds.
	noQuote := cf.spec.dialect != nil && cf.spec.dialect.noQuote
	if cf.spec.dialect != nil && !noQuote || cf.spec.enc != nil {
		return nil, false, nil
	}
	data := cf.size - cf.dataStart
	end := min(cf.size, cf.dataStart+maxPlanScan)
	ranges = []*commonv1.KeyRange{{}}
	buf := make([]byte, 4<<20)
	off, line := cf.dataStart, cf.dataLine // next byte to read, its line
	prev := [2]byte{'\n', '\n'}            // the two bytes before off; the header ends a line
	for k := 1; k < n; k++ {
		target := cf.dataStart + data*int64(k)/int64(n)
		found := false
		for !found {
			if err := ctx.Err(); err != nil {
				return nil, false, err
			}
			if off >= end {
				return ranges, true, nil
			}
			m, err := cf.f.ReadAt(buf[:min(int64(len(buf)), end-off)], off)
			if err != nil && err != io.EOF {
				return nil, false, fmt.Errorf("source.csv.path: read %s: %w", cf.spec.path, err)
			}
			if m == 0 {
				return ranges, true, nil
			}
			b := buf[:m]
			at := func(i int) byte { // b[i], or the bytes before b
				if i >= 0 {
					return b[i]
				}
				return prev[2+i]
			}
			from := int(max(min(target-1-off, int64(m)), 0))
			for from < m {
				i := bytes.IndexByte(b[from:], '\n')
				if i < 0 {
					break
				}
				nl := from + i
				if p := at(nl - 1); p != '\n' && (p != '\r' || at(nl-2) != '\n') {
					b, found = b[:nl+1], true
					break
				}
				from = nl + 1 // a blank line: it goes with the record after it
			}
			if !noQuote && bytes.IndexByte(b, '"') >= 0 {
				return nil, false, nil
			}
			line += int64(bytes.Count(b, newlineByte))
			prev = [2]byte{at(len(b) - 2), at(len(b) - 1)}
			off += int64(len(b))
		}
		// A record almost always starts right there: a small read says so.
		if more, err := cf.recordAfter(off, buf[:4<<10]); err != nil || !more {
			return ranges, err == nil, err // only blank lines left
		}
		ranges[len(ranges)-1].Upper = formatOffset(off)
		ranges = append(ranges, &commonv1.KeyRange{Lower: formatCursor(off, line)})
		// Several targets may fall in one long line.
		for k+1 < n && cf.dataStart+data*int64(k+1)/int64(n) <= off {
			k++
		}
	}
	return ranges, true, nil
}

// recordAfter reports whether anything but line ends follows off.
func (cf *csvFile) recordAfter(off int64, buf []byte) (bool, error) {
	for off < cf.size {
		m, err := cf.f.ReadAt(buf[:min(int64(len(buf)), cf.size-off)], off)
		if err != nil && err != io.EOF {
			return false, fmt.Errorf("source.csv.path: read %s: %w", cf.spec.path, err)
		}
		if m == 0 {
			return false, nil
		}
		if len(bytes.Trim(buf[:m], "\r\n")) > 0 {
			return true, nil
		}
		off += int64(m)
	}
	return false, nil
}
