package load

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"unsafe"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"github.com/cutover/cutover/services/kit/batch"
)

// Binary COPY spares PostgreSQL the parsing of timestamps, numerics and
// floats, which dominates its CPU in text COPY. It is used only where the
// binary value means exactly what the text would: each batch column type
// maps to a set of target base types below; any other target type (uuid,
// arrays, enums, composite domains, …) sends the stream through text COPY.

// binKind is how one batch column is written in binary COPY.
type binKind uint8

const (
	binNone binKind = iota // no exact binary encoding: use text COPY
	binInt2
	binInt4
	binInt8
	binFloat4
	binFloat8
	binBool
	binTimestamp // timestamptz and timestamp: int64 µs since 2000-01-01
	binDate      // int32 days since 2000-01-01
	binNumeric
	binRaw   // text, varchar, bpchar, json, bytea: the bytes as they are
	binName  // name: raw, but PostgreSQL refuses what namein would truncate
	binJSONB // version byte 1, then the JSON text
)

// binKindOf maps a batch column type and a target base type name.
func binKindOf(t commonv1.ColumnType, typname string) binKind {
	switch t {
	case commonv1.ColumnType_COLUMN_TYPE_INT64:
		switch typname {
		case "int2":
			return binInt2
		case "int4":
			return binInt4
		case "int8":
			return binInt8
		}
	case commonv1.ColumnType_COLUMN_TYPE_FLOAT64:
		switch typname {
		case "float4":
			return binFloat4
		case "float8":
			return binFloat8
		}
	case commonv1.ColumnType_COLUMN_TYPE_BOOL:
		if typname == "bool" {
			return binBool
		}
	case commonv1.ColumnType_COLUMN_TYPE_TIMESTAMPTZ:
		if typname == "timestamptz" || typname == "timestamp" {
			return binTimestamp
		}
	case commonv1.ColumnType_COLUMN_TYPE_DATE:
		if typname == "date" {
			return binDate
		}
	case commonv1.ColumnType_COLUMN_TYPE_NUMERIC:
		if typname == "numeric" {
			return binNumeric
		}
	case commonv1.ColumnType_COLUMN_TYPE_TEXT:
		switch typname {
		case "text", "varchar", "bpchar", "json":
			return binRaw
		case "name":
			return binName
		case "jsonb":
			return binJSONB
		}
	case commonv1.ColumnType_COLUMN_TYPE_BYTES:
		if typname == "bytea" {
			return binRaw
		}
	}
	return binNone
}

// targetTypesSQL gives each column's base type name when it is a built-in
// base type, directly or through one domain (whose receive function checks
// the domain's constraints and typmod), else the empty string.
const targetTypesSQL = `
SELECT a.attname,
       CASE WHEN bt.typtype = 'b' AND bt.typnamespace = 'pg_catalog'::regnamespace THEN bt.typname::text ELSE '' END
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
  AND c.relkind IN ('r', 'p', 'v', 'm', 'f')`

// targetTypes returns column name → base type name of a table, empty when
// the table does not exist (text COPY then reports that as before).
func (t *target) targetTypes(ctx context.Context, schema, table string) (map[string]string, error) {
	rows, err := t.pool.Query(ctx, targetTypesSQL, schema, table)
	if err != nil {
		return nil, t.dbErr("read column types of "+schema+"."+table, err)
	}
	defer rows.Close()
	types := map[string]string{}
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			return nil, t.dbErr("read column types of "+schema+"."+table, err)
		}
		types[name] = typ
	}
	if err := rows.Err(); err != nil {
		return nil, t.dbErr("read column types of "+schema+"."+table, err)
	}
	return types, nil
}

// binPlan returns the binary kind of each batch column, or nil when any
// column has none.
func binPlan(cols []*commonv1.Column, types map[string]string, kinds []binKind) []binKind {
	kinds = kinds[:0]
	for _, c := range cols {
		k := binKindOf(c.GetType(), types[c.GetName()])
		if k == binNone {
			return nil
		}
		kinds = append(kinds, k)
	}
	return kinds
}

const (
	pgEpochMicros = 946684800 * 1000000 // 2000-01-01 in µs since 1970
	pgEpochDays   = 10957               // 2000-01-01 in days since 1970
	// Values no PostgreSQL timestamp/date can hold and that are not its
	// ±infinity: PostgreSQL then reports "out of range" for the row.
	badTimestamp = math.MinInt64 + 1
	badDate      = math.MinInt32 + 1
)

var copyBinaryHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// binEncoder writes batch rows in COPY binary format. Its buffers are
// reused from batch to batch.
type binEncoder struct {
	kinds   []binKind
	lines   []int32 // batch rows to send, in order
	bad     []byte  // rows refused before sending (bitmap)
	rejects []*commonv1.Reject
	scratch []byte
	rd      binReader
}

// prepare checks the batch before a binary COPY: rows whose value the
// target type cannot hold (int2/int4/float4 range) are set aside as
// target_constraint rejects with the reason PostgreSQL would give; a value
// whose binary form could differ from what PostgreSQL makes of its text
// (a numeric literal outside the simple grammar, an overlong name) makes
// the whole batch go through text COPY (false). lines gets the rows to send.
func (e *binEncoder) prepare(b *commonv1.Batch, skip []byte) bool {
	n := int(b.GetNumRows())
	e.rejects = e.rejects[:0]
	e.bad = slices.Grow(e.bad[:0], (n+7)/8)[:(n+7)/8]
	clear(e.bad)
	for k, c := range b.GetColumns() {
		kind := e.kinds[k]
		switch kind {
		case binInt2, binInt4, binFloat4, binNumeric, binName:
		default:
			continue
		}
		for i := range n {
			if batch.Bit(skip, i) || batch.Bit(e.bad, i) || batch.IsNull(c, i) {
				continue
			}
			switch kind {
			case binInt2, binInt4:
				v := c.Ints[i]
				name, lo, hi := "smallint", int64(math.MinInt16), int64(math.MaxInt16)
				if kind == binInt4 {
					name, lo, hi = "integer", math.MinInt32, math.MaxInt32
				}
				if v < lo || v > hi {
					e.reject(b, c, i, fmt.Sprintf(`column %s: value "%d" is out of range for type %s`, c.GetName(), v, name))
				}
			case binFloat4:
				if _, ok := e.float4(c.Floats[i]); !ok {
					e.reject(b, c, i, fmt.Sprintf(`column %s: "%s" is out of range for type real`, c.GetName(), appendFloat(nil, c.Floats[i])))
				}
			case binNumeric:
				if _, ok := parseNumeric(batch.Bytes(c, i)); !ok {
					return false
				}
			case binName:
				if len(batch.Bytes(c, i)) >= 64 { // NAMEDATALEN
					return false
				}
			}
		}
	}
	slices.SortFunc(e.rejects, func(a, b *commonv1.Reject) int { return int(a.Row - b.Row) })
	e.lines = e.lines[:0]
	for i := range n {
		if !batch.Bit(skip, i) && !batch.Bit(e.bad, i) {
			e.lines = append(e.lines, int32(i))
		}
	}
	return true
}

func (e *binEncoder) reject(b *commonv1.Batch, c *commonv1.Column, row int, reason string) {
	e.bad[row>>3] |= 1 << (uint(row) & 7)
	e.rejects = append(e.rejects, &commonv1.Reject{
		Row:    int32(row),
		Stage:  "load",
		Rule:   "target_constraint",
		Column: c.GetName(),
		Reason: reason,
		Raw:    batch.RowText(b, row),
	})
}

// float4 converts as PostgreSQL's float4in would convert the text COPY
// sends (shortest float64 text, then correctly rounded to float32), so both
// paths store the same real; ok is false where float4in reports out of
// range (overflow, or underflow to zero).
func (e *binEncoder) float4(x float64) (float32, bool) {
	f := float32(x)
	if float64(f) == x || math.IsNaN(x) {
		return f, true
	}
	e.scratch = strconv.AppendFloat(e.scratch[:0], x, 'g', -1, 64)
	g, _ := strconv.ParseFloat(unsafe.String(&e.scratch[0], len(e.scratch)), 32)
	f = float32(g)
	return f, f != 0 && !math.IsInf(g, 0)
}

// appendRow appends batch row i as one binary COPY tuple.
func (e *binEncoder) appendRow(dst []byte, b *commonv1.Batch, i int) []byte {
	cols := b.GetColumns()
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(cols)))
	for k, c := range cols {
		if batch.IsNull(c, i) {
			dst = binary.BigEndian.AppendUint32(dst, math.MaxUint32) // -1
			continue
		}
		switch e.kinds[k] {
		case binInt2:
			dst = append(dst, 0, 0, 0, 2)
			dst = binary.BigEndian.AppendUint16(dst, uint16(c.Ints[i]))
		case binInt4:
			dst = append(dst, 0, 0, 0, 4)
			dst = binary.BigEndian.AppendUint32(dst, uint32(c.Ints[i]))
		case binInt8:
			dst = append(dst, 0, 0, 0, 8)
			dst = binary.BigEndian.AppendUint64(dst, uint64(c.Ints[i]))
		case binFloat4:
			f, _ := e.float4(c.Floats[i])
			dst = append(dst, 0, 0, 0, 4)
			dst = binary.BigEndian.AppendUint32(dst, math.Float32bits(f))
		case binFloat8:
			dst = append(dst, 0, 0, 0, 8)
			dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(c.Floats[i]))
		case binBool:
			v := byte(0)
			if batch.Bit(c.Bools, i) {
				v = 1
			}
			dst = append(dst, 0, 0, 0, 1, v)
		case binTimestamp:
			dst = append(dst, 0, 0, 0, 8)
			dst = binary.BigEndian.AppendUint64(dst, uint64(pgTimestamp(c.Ints[i])))
		case binDate:
			dst = append(dst, 0, 0, 0, 4)
			dst = binary.BigEndian.AppendUint32(dst, uint32(pgDate(c.Ints[i])))
		case binNumeric:
			v := batch.Bytes(c, i)
			d, _ := parseNumeric(v) // prepare refused the batch otherwise
			at := len(dst)
			dst = append(dst, 0, 0, 0, 0)
			dst = appendNumeric(dst, v, &d)
			binary.BigEndian.PutUint32(dst[at:], uint32(len(dst)-at-4))
		case binJSONB:
			v := batch.Bytes(c, i)
			dst = binary.BigEndian.AppendUint32(dst, uint32(len(v)+1))
			dst = append(dst, 1)
			dst = append(dst, v...)
		default: // binRaw, binName
			v := batch.Bytes(c, i)
			dst = binary.BigEndian.AppendUint32(dst, uint32(len(v)))
			dst = append(dst, v...)
		}
	}
	return dst
}

// pgTimestamp converts µs since 1970 to PostgreSQL's µs since 2000,
// keeping the extreme int64 values as ±infinity.
func pgTimestamp(us int64) int64 {
	switch {
	case us == math.MaxInt64 || us == math.MinInt64:
		return us
	case us < math.MinInt64+pgEpochMicros:
		return badTimestamp
	}
	return us - pgEpochMicros
}

// pgDate converts days since 1970 to PostgreSQL's int32 days since 2000;
// the extreme int64 values are ±infinity (the extreme int32 values there).
func pgDate(days int64) int32 {
	switch days {
	case math.MaxInt64:
		return math.MaxInt32
	case math.MinInt64:
		return math.MinInt32
	}
	d := days - pgEpochDays
	if d <= math.MinInt32 || d >= math.MaxInt32 {
		return badDate
	}
	return int32(d)
}

// binChunk is how much the reader encodes ahead: about one CopyData
// message, so PostgreSQL parses one chunk while the next is encoded.
const binChunk = 60 << 10

// binReader streams rows as binary COPY data, encoding on demand into one
// reused buffer.
type binReader struct {
	e       *binEncoder
	b       *commonv1.Batch
	rows    []int32
	started bool
	done    bool
	buf     []byte
	off     int
}

func (r *binReader) reset(e *binEncoder, b *commonv1.Batch, rows []int32) {
	*r = binReader{e: e, b: b, rows: rows, buf: r.buf[:0]}
}

func (r *binReader) Read(p []byte) (int, error) {
	for r.off == len(r.buf) {
		if r.done {
			return 0, io.EOF
		}
		r.fill()
	}
	n := copy(p, r.buf[r.off:])
	r.off += n
	return n, nil
}

func (r *binReader) fill() {
	buf := r.buf[:0]
	if !r.started {
		buf = append(buf, copyBinaryHeader...)
		r.started = true
	}
	for len(buf) < binChunk && len(r.rows) > 0 {
		buf = r.e.appendRow(buf, r.b, int(r.rows[0]))
		r.rows = r.rows[1:]
	}
	if len(r.rows) == 0 {
		buf = append(buf, 0xff, 0xff) // trailer: field count -1
		r.done = true
	}
	r.buf, r.off = buf, 0
}
