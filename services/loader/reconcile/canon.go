package reconcile

import (
	"encoding/hex"
	"strconv"
	"strings"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"github.com/cutover/cutover/services/kit/batch"
)

// A reconciliation compares values as text: the target side is col::text
// under a fixed session (reconcileSession, session.go), the source side
// renders the validated batch value exactly as PostgreSQL would print it
// after the loader stored it. A pair
// (batch type, target type) without such a rendering is left out of the
// comparison and named in the result.

// renderFn appends the canonical text of non-NULL row i of c.
type renderFn func(dst []byte, c *commonv1.Column, i int) []byte

// targetCol is a target column as the catalog describes it.
type targetCol struct {
	name    string
	typname string // base type (through one domain), "" when not built in
	typmod  int32
	pgType  string // format_type, for messages
	notNull bool
}

// scale is a numeric column's declared scale, -1 when unconstrained
// (typmod is (precision << 16 | scale) + 4).
func (tc targetCol) scale() int {
	if tc.typmod < 4 {
		return -1
	}
	return int((tc.typmod - 4) & 0xffff)
}

// renderer returns how to render a batch column of type t stored into
// target column tc, or why that cannot be done identically.
func renderer(t commonv1.ColumnType, tc targetCol) (renderFn, string) {
	no := func() (renderFn, string) {
		return nil, tc.pgType + " from " + strings.ToLower(strings.TrimPrefix(t.String(), "COLUMN_TYPE_"))
	}
	switch tc.typname {
	case "int2", "int4", "int8":
		if t == commonv1.ColumnType_COLUMN_TYPE_INT64 {
			return renderInt, ""
		}
	case "numeric":
		scale := tc.scale()
		if t == commonv1.ColumnType_COLUMN_TYPE_NUMERIC || t == commonv1.ColumnType_COLUMN_TYPE_INT64 {
			return func(dst []byte, c *commonv1.Column, i int) []byte {
				if c.GetType() == commonv1.ColumnType_COLUMN_TYPE_INT64 {
					return canonNumeric(dst, strconv.AppendInt(nil, c.Ints[i], 10), scale)
				}
				return canonNumeric(dst, batch.Bytes(c, i), scale)
			}, ""
		}
	case "float8":
		if t == commonv1.ColumnType_COLUMN_TYPE_FLOAT64 {
			return func(dst []byte, c *commonv1.Column, i int) []byte { return pgFloat(dst, c.Floats[i], 64) }, ""
		}
	case "float4":
		if t == commonv1.ColumnType_COLUMN_TYPE_FLOAT64 {
			return func(dst []byte, c *commonv1.Column, i int) []byte { return pgFloat(dst, toFloat4(c.Floats[i]), 32) }, ""
		}
	case "bool":
		if t == commonv1.ColumnType_COLUMN_TYPE_BOOL {
			return renderBool, ""
		}
	case "timestamptz", "timestamp":
		if t == commonv1.ColumnType_COLUMN_TYPE_TIMESTAMPTZ {
			zone := tc.typname == "timestamptz"
			prec := int(tc.typmod) // -1: full precision
			return func(dst []byte, c *commonv1.Column, i int) []byte {
				return pgTimestamp(dst, c.Ints[i], prec, zone)
			}, ""
		}
	case "date":
		if t == commonv1.ColumnType_COLUMN_TYPE_DATE {
			return func(dst []byte, c *commonv1.Column, i int) []byte { return pgDate(dst, c.Ints[i]) }, ""
		}
	case "text", "varchar", "name", "json":
		// json keeps its input text as it is; jsonb does not.
		switch t {
		case commonv1.ColumnType_COLUMN_TYPE_TEXT, commonv1.ColumnType_COLUMN_TYPE_NUMERIC:
			return renderRaw, ""
		case commonv1.ColumnType_COLUMN_TYPE_INT64:
			return renderInt, ""
		}
	case "bpchar":
		if t == commonv1.ColumnType_COLUMN_TYPE_TEXT {
			// char(n)::text drops the padding blanks.
			return func(dst []byte, c *commonv1.Column, i int) []byte {
				return append(dst, strings.TrimRight(string(batch.Bytes(c, i)), " ")...)
			}, ""
		}
	case "uuid":
		if t == commonv1.ColumnType_COLUMN_TYPE_TEXT {
			return func(dst []byte, c *commonv1.Column, i int) []byte { return canonUUID(dst, batch.Bytes(c, i)) }, ""
		}
	case "bytea":
		if t == commonv1.ColumnType_COLUMN_TYPE_BYTES {
			return func(dst []byte, c *commonv1.Column, i int) []byte {
				return hex.AppendEncode(append(dst, '\\', 'x'), batch.Bytes(c, i))
			}, ""
		}
	}
	return no()
}

func renderInt(dst []byte, c *commonv1.Column, i int) []byte {
	return strconv.AppendInt(dst, c.Ints[i], 10)
}

func renderRaw(dst []byte, c *commonv1.Column, i int) []byte {
	return append(dst, batch.Bytes(c, i)...)
}

func renderBool(dst []byte, c *commonv1.Column, i int) []byte {
	// bool::text spells the words, unlike boolout's t/f.
	if batch.Bit(c.Bools, i) {
		return append(dst, "true"...)
	}
	return append(dst, "false"...)
}

// canonUUID renders uuid input text as uuid_out prints it: lower case,
// 8-4-4-4-12. Input uuid_in would refuse is appended unchanged.
func canonUUID(dst, s []byte) []byte {
	v := s
	if len(v) >= 2 && v[0] == '{' && v[len(v)-1] == '}' {
		v = v[1 : len(v)-1]
	}
	var hx [32]byte
	n := 0
	for k, ch := range v {
		switch {
		case ch == '-' && n > 0 && n%4 == 0 && k+1 < len(v) && v[k+1] != '-':
			continue
		case n < 32 && (ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'f'):
			hx[n] = ch
		case n < 32 && ch >= 'A' && ch <= 'F':
			hx[n] = ch + ('a' - 'A')
		default:
			return append(dst, s...)
		}
		n++
	}
	if n != 32 {
		return append(dst, s...)
	}
	dst = append(dst, hx[0:8]...)
	dst = append(dst, '-')
	dst = append(dst, hx[8:12]...)
	dst = append(dst, '-')
	dst = append(dst, hx[12:16]...)
	dst = append(dst, '-')
	dst = append(dst, hx[16:20]...)
	dst = append(dst, '-')
	return append(dst, hx[20:32]...)
}
