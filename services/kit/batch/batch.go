// Package batch builds and reads the columnar Batch of the wire contract.
// Values are packed per column (one int/float slice or one byte buffer with
// offsets), so encoding and decoding a batch does not allocate per value.
package batch

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
)

// ErrMalformed is returned for a batch whose vectors do not line up.
var ErrMalformed = errors.New("malformed batch")

// Bit reports whether bit i of a bitmap is set; a short bitmap reads as 0.
func Bit(bm []byte, i int) bool {
	j := i >> 3
	return j < len(bm) && bm[j]&(1<<(uint(i)&7)) != 0
}

// SetBit sets bit i, growing the bitmap as needed.
func SetBit(bm []byte, i int) []byte {
	j := i >> 3
	for len(bm) <= j {
		bm = append(bm, 0)
	}
	bm[j] |= 1 << (uint(i) & 7)
	return bm
}

// Builder appends values to one column.
type Builder struct {
	c *commonv1.Column
	n int
}

// NewBuilder starts a column of the given type with room for capacity rows.
func NewBuilder(name string, t commonv1.ColumnType, capacity int) *Builder {
	c := &commonv1.Column{Name: name, Type: t}
	switch Storage(t) {
	case StorageInts:
		c.Ints = make([]int64, 0, capacity)
	case StorageFloats:
		c.Floats = make([]float64, 0, capacity)
	case StorageBytes:
		c.Offsets = make([]uint32, 1, capacity+1)
	}
	return &Builder{c: c}
}

// Len is the number of rows appended so far.
func (b *Builder) Len() int { return b.n }

// AppendNull appends a NULL slot.
func (b *Builder) AppendNull() {
	b.c.Nulls = SetBit(b.c.Nulls, b.n)
	switch Storage(b.c.Type) {
	case StorageInts:
		b.c.Ints = append(b.c.Ints, 0)
	case StorageFloats:
		b.c.Floats = append(b.c.Floats, 0)
	case StorageBytes:
		b.c.Offsets = append(b.c.Offsets, uint32(len(b.c.Data)))
	}
	b.n++
}

// UnchangedRead returns the columns of b that leave a value out on some
// row (Column.unchanged) and that reads says a computation uses: a value
// computed from one cannot be known on that row. Nil for most batches.
func UnchangedRead(b *commonv1.Batch, reads func(name string) bool) []*commonv1.Column {
	if !HasUnchanged(b) {
		return nil
	}
	var out []*commonv1.Column
	for _, c := range b.GetColumns() {
		if len(c.GetUnchanged()) > 0 && reads(c.GetName()) {
			out = append(out, c)
		}
	}
	return out
}

// FirstUnchanged returns the first of cols whose row i a change left out,
// nil when none.
func FirstUnchanged(cols []*commonv1.Column, i int) *commonv1.Column {
	for _, c := range cols {
		if IsUnchanged(c, i) {
			return c
		}
	}
	return nil
}

// AppendUnchanged appends a value the change left out (Column.unchanged):
// a NULL slot marked unchanged.
func (b *Builder) AppendUnchanged() {
	b.c.Unchanged = SetBit(b.c.Unchanged, b.n)
	b.AppendNull()
}

// AppendBytes appends a TEXT, NUMERIC or BYTES value.
func (b *Builder) AppendBytes(v []byte) {
	b.c.Data = append(b.c.Data, v...)
	b.c.Offsets = append(b.c.Offsets, uint32(len(b.c.Data)))
	b.n++
}

// AppendString appends a TEXT, NUMERIC or BYTES value.
func (b *Builder) AppendString(v string) {
	b.c.Data = append(b.c.Data, v...)
	b.c.Offsets = append(b.c.Offsets, uint32(len(b.c.Data)))
	b.n++
}

// AppendInt appends an INT64, TIMESTAMPTZ or DATE value.
func (b *Builder) AppendInt(v int64) {
	b.c.Ints = append(b.c.Ints, v)
	b.n++
}

// AppendFloat appends a FLOAT64 value.
func (b *Builder) AppendFloat(v float64) {
	b.c.Floats = append(b.c.Floats, v)
	b.n++
}

// AppendBool appends a BOOL value.
func (b *Builder) AppendBool(v bool) {
	if v {
		b.c.Bools = SetBit(b.c.Bools, b.n)
	}
	b.n++
}

// Column returns the built column.
func (b *Builder) Column() *commonv1.Column { return b.c }

// StorageKind says which vector holds a type's values.
type StorageKind int

// Storage kinds.
const (
	StorageBytes StorageKind = iota
	StorageInts
	StorageFloats
	StorageBools
)

// Storage returns the vector used by a column type.
func Storage(t commonv1.ColumnType) StorageKind {
	switch t {
	case commonv1.ColumnType_COLUMN_TYPE_INT64, commonv1.ColumnType_COLUMN_TYPE_TIMESTAMPTZ, commonv1.ColumnType_COLUMN_TYPE_DATE:
		return StorageInts
	case commonv1.ColumnType_COLUMN_TYPE_FLOAT64:
		return StorageFloats
	case commonv1.ColumnType_COLUMN_TYPE_BOOL:
		return StorageBools
	default:
		return StorageBytes
	}
}

// IsNull reports whether row i of c is NULL.
func IsNull(c *commonv1.Column, i int) bool { return Bit(c.Nulls, i) }

// IsUnchanged reports whether row i of c is a value the change left out
// (Column.unchanged): the target keeps its own. Such a slot is NULL.
func IsUnchanged(c *commonv1.Column, i int) bool { return Bit(c.GetUnchanged(), i) }

// HasUnchanged reports whether any column of b leaves a value out.
func HasUnchanged(b *commonv1.Batch) bool {
	for _, c := range b.GetColumns() {
		if CountBits(c.GetUnchanged()) > 0 {
			return true
		}
	}
	return false
}

// Bytes returns the raw value of row i of a byte-vector column (no copy).
func Bytes(c *commonv1.Column, i int) []byte { return c.Data[c.Offsets[i]:c.Offsets[i+1]] }

// Check verifies that every vector of b has num_rows entries and that the
// offsets stay inside the data, so later stages can index without panics.
func Check(b *commonv1.Batch) error {
	n := int(b.GetNumRows())
	if n < 0 {
		return fmt.Errorf("%w: num_rows %d is negative", ErrMalformed, n)
	}
	cols := b.GetColumns()
	if b.GetSourceRefs() != nil {
		cols = append(cols[:len(cols):len(cols)], b.GetSourceRefs())
	}
	for _, c := range cols {
		if err := checkColumn(c, n); err != nil {
			return err
		}
	}
	for _, r := range b.GetRejects() {
		if r.GetRow() < 0 || int(r.GetRow()) >= n {
			return fmt.Errorf("%w: reject row %d outside 0..%d", ErrMalformed, r.GetRow(), n-1)
		}
	}
	return nil
}

func checkColumn(c *commonv1.Column, n int) error {
	if len(c.GetNulls()) > (n+7)/8 {
		return fmt.Errorf("%w: column %q null bitmap longer than %d rows", ErrMalformed, c.GetName(), n)
	}
	if u := c.GetUnchanged(); len(u) > 0 {
		if len(u) > (n+7)/8 {
			return fmt.Errorf("%w: column %q unchanged bitmap longer than %d rows", ErrMalformed, c.GetName(), n)
		}
		for i := range n {
			if Bit(u, i) && !Bit(c.GetNulls(), i) {
				return fmt.Errorf("%w: column %q row %d is marked unchanged but holds a value", ErrMalformed, c.GetName(), i)
			}
		}
	}
	switch Storage(c.GetType()) {
	case StorageInts:
		if len(c.GetInts()) != n {
			return fmt.Errorf("%w: column %q has %d ints for %d rows", ErrMalformed, c.GetName(), len(c.GetInts()), n)
		}
	case StorageFloats:
		if len(c.GetFloats()) != n {
			return fmt.Errorf("%w: column %q has %d floats for %d rows", ErrMalformed, c.GetName(), len(c.GetFloats()), n)
		}
	case StorageBools:
		if len(c.GetBools()) > (n+7)/8 {
			return fmt.Errorf("%w: column %q bool bitmap longer than %d rows", ErrMalformed, c.GetName(), n)
		}
	case StorageBytes:
		off := c.GetOffsets()
		if len(off) != n+1 {
			return fmt.Errorf("%w: column %q has %d offsets for %d rows", ErrMalformed, c.GetName(), len(off), n)
		}
		if off[0] != 0 {
			return fmt.Errorf("%w: column %q offsets do not start at 0", ErrMalformed, c.GetName())
		}
		for i := 1; i < len(off); i++ {
			if off[i] < off[i-1] {
				return fmt.Errorf("%w: column %q offsets decrease at row %d", ErrMalformed, c.GetName(), i-1)
			}
		}
		if int(off[n]) != len(c.GetData()) {
			return fmt.Errorf("%w: column %q offsets end at %d, data is %d bytes", ErrMalformed, c.GetName(), off[n], len(c.GetData()))
		}
	}
	return nil
}

// Text renders row i of c as text (the form rules and reports use);
// ok is false for NULL.
func Text(c *commonv1.Column, i int) (s string, ok bool) {
	if IsNull(c, i) {
		return "", false
	}
	return string(AppendText(nil, c, i)), true
}

// FormatMicros renders microseconds since the epoch as RFC 3339 in UTC.
func FormatMicros(us int64) string {
	return time.UnixMicro(us).UTC().Format("2006-01-02T15:04:05.999999Z07:00")
}

// FormatDays renders days since 1970-01-01 as YYYY-MM-DD.
func FormatDays(d int64) string {
	return time.Unix(d*86400, 0).UTC().Format("2006-01-02")
}

// RowText renders row i of the batch as "col=value, …" for quarantine raw
// values; NULL prints as NULL. Long values are cut to keep reports readable.
func RowText(b *commonv1.Batch, i int) string {
	var sb strings.Builder
	for k, c := range b.GetColumns() {
		if k > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(c.GetName())
		sb.WriteByte('=')
		if v, ok := Text(c, i); ok {
			sb.WriteString(strconv.Quote(cutText(v, 200)))
		} else {
			sb.WriteString("NULL")
		}
	}
	return sb.String()
}

// Rejected returns a bitmap of the rows that carry at least one reject
// other than a warning: a warned row still loads.
func Rejected(b *commonv1.Batch) []byte {
	var bm []byte
	for _, r := range b.GetRejects() {
		if !r.GetWarning() {
			bm = SetBit(bm, int(r.GetRow()))
		}
	}
	return bm
}

// Warned returns a bitmap of the rows that carry at least one warning,
// whether or not another reject also rejects them.
func Warned(b *commonv1.Batch) []byte {
	var bm []byte
	for _, r := range b.GetRejects() {
		if r.GetWarning() {
			bm = SetBit(bm, int(r.GetRow()))
		}
	}
	return bm
}

// SourceRef returns the source reference of row i, or "" when absent.
func SourceRef(b *commonv1.Batch, i int) string {
	c := b.GetSourceRefs()
	if c == nil || len(c.GetOffsets()) <= i+1 {
		return ""
	}
	return string(Bytes(c, i))
}

// AppendText appends the text form of row i of c (as Text) without
// allocating; rules and casts match against it on hot paths.
func AppendText(dst []byte, c *commonv1.Column, i int) []byte {
	switch c.GetType() {
	case commonv1.ColumnType_COLUMN_TYPE_INT64:
		return strconv.AppendInt(dst, c.Ints[i], 10)
	case commonv1.ColumnType_COLUMN_TYPE_FLOAT64:
		f := c.Floats[i]
		switch {
		case math.IsInf(f, 1):
			return append(dst, "Infinity"...)
		case math.IsInf(f, -1):
			return append(dst, "-Infinity"...)
		}
		return strconv.AppendFloat(dst, f, 'g', -1, 64)
	case commonv1.ColumnType_COLUMN_TYPE_BOOL:
		return strconv.AppendBool(dst, Bit(c.Bools, i))
	case commonv1.ColumnType_COLUMN_TYPE_TIMESTAMPTZ:
		return time.UnixMicro(c.Ints[i]).UTC().AppendFormat(dst, "2006-01-02T15:04:05.999999Z07:00")
	case commonv1.ColumnType_COLUMN_TYPE_DATE:
		return time.Unix(c.Ints[i]*86400, 0).UTC().AppendFormat(dst, "2006-01-02")
	}
	return append(dst, Bytes(c, i)...)
}

// CutUTF8 is the longest prefix of s of at most n bytes that ends on a
// rune boundary: names and messages are cut here without splitting a
// character.
func CutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// A rune is at most 4 bytes: invalid text is cut at n-3 at the most.
	cut := max(n, 0)
	for cut > max(n-4, 0) && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// cutText cuts s to at most limit bytes on a rune boundary, marking the cut.
func cutText(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	return CutUTF8(s, limit) + "…"
}

// QuoteShort quotes a value for a reject reason, cut at 64 bytes (on a rune
// boundary) so reports stay readable.
func QuoteShort(v []byte) string {
	const limit = 64
	if len(v) <= limit {
		return strconv.Quote(string(v))
	}
	return strconv.Quote(CutUTF8(string(v), limit)) + "…"
}

// SafeRaw keeps a raw value as is when a proto string and a PostgreSQL text
// column can hold it (valid UTF-8, no NUL), and escapes it otherwise.
func SafeRaw(v []byte) string {
	if utf8.Valid(v) && bytes.IndexByte(v, 0) < 0 {
		return string(v)
	}
	q := strconv.Quote(string(v))
	return q[1 : len(q)-1]
}

// CountBits counts the set bits of a row bitmap.
func CountBits(bm []byte) int {
	n := 0
	for _, x := range bm {
		n += bits.OnesCount8(x)
	}
	return n
}

// ListNames renders column names for an error message, cut after 20.
func ListNames(names []string) string {
	if len(names) == 0 {
		return "no columns"
	}
	if len(names) > 20 {
		return strings.Join(names[:20], ", ") + ", ..."
	}
	return strings.Join(names, ", ")
}

// ColumnNames is ListNames of a batch's columns.
func ColumnNames(b *commonv1.Batch) string {
	names := make([]string, 0, len(b.GetColumns()))
	for _, c := range b.GetColumns() {
		names = append(names, c.GetName())
	}
	return ListNames(names)
}
