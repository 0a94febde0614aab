package load

import (
	"encoding/hex"
	"math"
	"strconv"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"github.com/cutover/cutover/services/kit/calendar"
)

// encoder turns a columnar batch into COPY text-format lines. Its buffers
// are reused from batch to batch, so a stream allocates only when a batch is
// larger than any before it.
type encoder struct {
	buf   []byte
	ends  []int   // ends[k] is the end offset in buf of line k
	lines []int32 // lines[k] is the batch row encoded as line k
}

// encode writes every row of b that is not set in skip (a row bitmap) as one
// line; columns are in batch order.
func (e *encoder) encode(b *commonv1.Batch, skip []byte) {
	e.buf, e.ends, e.lines = e.buf[:0], e.ends[:0], e.lines[:0]
	cols := b.GetColumns()
	for i := range int(b.GetNumRows()) {
		if batch.Bit(skip, i) {
			continue
		}
		for k, c := range cols {
			if k > 0 {
				e.buf = append(e.buf, '\t')
			}
			e.buf = appendValue(e.buf, c, i)
		}
		e.buf = append(e.buf, '\n')
		e.ends = append(e.ends, len(e.buf))
		e.lines = append(e.lines, int32(i))
	}
}

// span returns the encoded bytes of lines [lo, hi).
func (e *encoder) span(lo, hi int) []byte {
	start := 0
	if lo > 0 {
		start = e.ends[lo-1]
	}
	return e.buf[start:e.ends[hi-1]]
}

// appendValue appends row i of c in COPY text format: \N for NULL, every
// other value escaped so that it cannot end a field or a line.
func appendValue(dst []byte, c *commonv1.Column, i int) []byte {
	if batch.IsNull(c, i) {
		return append(dst, '\\', 'N')
	}
	switch c.GetType() {
	case commonv1.ColumnType_COLUMN_TYPE_INT64:
		return strconv.AppendInt(dst, c.Ints[i], 10)
	case commonv1.ColumnType_COLUMN_TYPE_FLOAT64:
		return appendFloat(dst, c.Floats[i])
	case commonv1.ColumnType_COLUMN_TYPE_BOOL:
		if batch.Bit(c.Bools, i) {
			return append(dst, 't')
		}
		return append(dst, 'f')
	case commonv1.ColumnType_COLUMN_TYPE_TIMESTAMPTZ:
		return appendTimestamp(dst, c.Ints[i])
	case commonv1.ColumnType_COLUMN_TYPE_DATE:
		return appendDate(dst, c.Ints[i])
	case commonv1.ColumnType_COLUMN_TYPE_BYTES:
		// bytea hex input \x…; the backslash itself is escaped for COPY.
		dst = append(dst, '\\', '\\', 'x')
		return hex.AppendEncode(dst, batch.Bytes(c, i))
	default: // TEXT, NUMERIC and anything unknown travel as text
		return appendEscaped(dst, batch.Bytes(c, i))
	}
}

// appendEscaped escapes the four bytes COPY text format gives meaning to.
func appendEscaped(dst, s []byte) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		var r byte
		switch s[i] {
		case '\\':
			r = '\\'
		case '\t':
			r = 't'
		case '\n':
			r = 'n'
		case '\r':
			r = 'r'
		default:
			continue
		}
		dst = append(dst, s[start:i]...)
		dst = append(dst, '\\', r)
		start = i + 1
	}
	return append(dst, s[start:]...)
}

func appendFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case math.IsInf(f, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(f, -1):
		return append(dst, "-Infinity"...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

const microsPerDay = 86400 * 1000000

// appendTimestamp writes microseconds since the epoch as RFC 3339 in UTC
// with six fractional digits. PostgreSQL stores ±infinity as the extreme
// int64 values, so those map back to infinity; years before 1 get PostgreSQL's
// BC suffix.
func appendTimestamp(dst []byte, us int64) []byte {
	switch us {
	case math.MaxInt64:
		return append(dst, "infinity"...)
	case math.MinInt64:
		return append(dst, "-infinity"...)
	}
	days, rem := us/microsPerDay, us%microsPerDay
	if rem < 0 {
		days--
		rem += microsPerDay
	}
	y, m, d := civil(days)
	dst, bc := appendYMD(dst, y, m, d)
	secs := rem / 1000000
	dst = append(dst, 'T')
	dst = append2(dst, secs/3600)
	dst = append(dst, ':')
	dst = append2(dst, secs/60%60)
	dst = append(dst, ':')
	dst = append2(dst, secs%60)
	dst = append(dst, '.')
	frac := rem % 1000000
	for div := int64(100000); div > 0; div /= 10 {
		dst = append(dst, byte('0'+frac/div%10))
	}
	dst = append(dst, 'Z')
	if bc {
		dst = append(dst, " BC"...)
	}
	return dst
}

// appendDate writes days since 1970-01-01 as YYYY-MM-DD.
func appendDate(dst []byte, days int64) []byte {
	switch days {
	case math.MaxInt64:
		return append(dst, "infinity"...)
	case math.MinInt64:
		return append(dst, "-infinity"...)
	}
	y, m, d := civil(days)
	dst, bc := appendYMD(dst, y, m, d)
	if bc {
		dst = append(dst, " BC"...)
	}
	return dst
}

// appendYMD writes a proleptic Gregorian date; astronomical year 0 is 1 BC.
func appendYMD(dst []byte, y, m, d int64) ([]byte, bool) {
	bc := y <= 0
	if bc {
		y = 1 - y
	}
	for div := int64(1000); div > 1 && y < div; div /= 10 {
		dst = append(dst, '0')
	}
	dst = strconv.AppendInt(dst, y, 10)
	dst = append(dst, '-')
	dst = append2(dst, m)
	dst = append(dst, '-')
	dst = append2(dst, d)
	return dst, bc
}

func append2(dst []byte, v int64) []byte {
	return append(dst, byte('0'+v/10), byte('0'+v%10))
}

// civil converts days since 1970-01-01 to a proleptic Gregorian date
// (Howard Hinnant's civil_from_days); exact for any int64 day count whose
// year fits, with no time.Time and no allocation.
func civil(z int64) (y, m, d int64) {
	if z > math.MaxInt64/2 || z < math.MinInt64/2 {
		// Far outside any PostgreSQL range; clamp so the arithmetic cannot
		// overflow and PostgreSQL reports the value out of range.
		z = math.MaxInt64 / 4
	}
	return calendar.Civil(z)
}
