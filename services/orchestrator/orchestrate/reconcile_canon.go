package orchestrate

import (
	"encoding/hex"
	"math"
	"strconv"
	"strings"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"github.com/cutover/cutover/services/kit/calendar"
)

// Reconcile compares values as text: the target side is col::text under a
// fixed session (reconcileSession), the source side renders the transformed
// batch value exactly as PostgreSQL would print it after storing it. A pair
// (batch type, target type) without such a rendering is left out of the
// comparison and named in the result.

// reconcileSession pins every setting that changes a value's text form.
var reconcileSession = map[string]string{
	"TimeZone":           "UTC",
	"DateStyle":          "ISO, YMD",
	"IntervalStyle":      "postgres",
	"extra_float_digits": "1",
	"bytea_output":       "hex",
	// The digest query groups by 4096 buckets the planner cannot foresee;
	// with the default work_mem it sorts on disk instead of hashing.
	"work_mem": "64MB",
}

// renderFn appends the canonical text of non-NULL row i of c.
type renderFn func(dst []byte, c *commonv1.Column, i int) []byte

// targetCol is a target column as the catalog describes it.
type targetCol struct {
	name    string
	typname string // base type (through one domain), "" when not built in
	typmod  int32
	pgType  string // format_type, for messages
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
		scale := -1
		if tc.typmod >= 4 {
			scale = int((tc.typmod - 4) & 0xffff)
		}
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

// canonNumeric renders a decimal literal as numeric_out prints the stored
// value: exponent applied, no leading zeros, the display scale kept (or set
// to the column's scale, rounding half away from zero as numeric does).
// Text that is not a decimal is appended unchanged.
func canonNumeric(dst, s []byte, scale int) []byte {
	str := string(s)
	switch strings.ToLower(strings.TrimLeft(str, "+")) {
	case "nan":
		return append(dst, "NaN"...)
	case "infinity", "inf":
		return append(dst, "Infinity"...)
	case "-infinity", "-inf":
		return append(dst, "-Infinity"...)
	}
	i, neg := 0, false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	var digits []byte
	point, seenPoint, any := 0, false, false
	for ; i < len(s); i++ {
		switch ch := s[i]; {
		case ch >= '0' && ch <= '9':
			digits = append(digits, ch)
			any = true
			if !seenPoint {
				point++
			}
		case ch == '.' && !seenPoint:
			seenPoint = true
		default:
			goto exp
		}
	}
exp:
	if !any {
		return append(dst, s...)
	}
	if i < len(s) {
		if s[i] != 'e' && s[i] != 'E' {
			return append(dst, s...)
		}
		e, err := strconv.Atoi(string(s[i+1:]))
		if err != nil || e > 100000 || e < -100000 {
			return append(dst, s...)
		}
		point += e
	}
	dscale := max(len(digits)-point, 0)
	if scale >= 0 {
		// Round at scale digits after the point, half away from zero.
		keep := point + scale
		if keep < len(digits) {
			up := keep >= 0 && digits[keep] >= '5'
			if keep < 0 {
				digits, point = digits[:0], 0
				keep = 0
			} else {
				digits = digits[:keep]
			}
			if up {
				k := len(digits) - 1
				for ; k >= 0 && digits[k] == '9'; k-- {
					digits[k] = '0'
				}
				if k >= 0 {
					digits[k]++
				} else {
					digits = append([]byte{'1'}, digits...)
					point++
				}
			}
		}
		dscale = scale
	}
	// Integer part.
	var out []byte
	if point <= 0 {
		out = append(out, '0')
	} else {
		for k := 0; k < point; k++ {
			if k < len(digits) {
				out = append(out, digits[k])
			} else {
				out = append(out, '0')
			}
		}
		for len(out) > 1 && out[0] == '0' {
			out = out[1:]
		}
	}
	if dscale > 0 {
		out = append(out, '.')
		for k := point; k < point+dscale; k++ {
			if k >= 0 && k < len(digits) {
				out = append(out, digits[k])
			} else {
				out = append(out, '0')
			}
		}
	}
	if neg && strings.Trim(string(out), "0.") != "" {
		dst = append(dst, '-')
	}
	return append(dst, out...)
}

// toFloat4 is the float4 the loader stores for a FLOAT64 value: the value
// as PostgreSQL's float4in reads its shortest decimal form.
func toFloat4(x float64) float64 {
	if f := float32(x); float64(f) == x || math.IsNaN(x) {
		return float64(f)
	}
	g, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'g', -1, 64), 32)
	return g
}

// pgFloat renders a float as float8out/float4out print it with
// extra_float_digits > 0: the shortest exact digits, in fixed notation for
// decimal exponents -4 up to 14 (float4: 5), else d.ddde±XX.
func pgFloat(dst []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case math.IsInf(f, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(f, -1):
		return append(dst, "-Infinity"...)
	case f == 0:
		if math.Signbit(f) {
			return append(dst, "-0"...)
		}
		return append(dst, '0')
	}
	var buf [40]byte
	e := strconv.AppendFloat(buf[:0], f, 'e', -1, bits)
	k := strings.LastIndexByte(string(e), 'e')
	exp, _ := strconv.Atoi(string(e[k+1:]))
	limit := 15
	if bits == 32 {
		limit = 6
	}
	if exp >= -4 && exp < limit {
		return strconv.AppendFloat(dst, f, 'f', -1, bits)
	}
	return append(dst, e...)
}

const (
	microsPerDay  = 86400 * 1000000
	pgEpochMicros = 946684800 * 1000000 // 2000-01-01 in Unix micros
)

// pgTimestamp renders micros since 1970 as timestamptz_out (TimeZone UTC,
// DateStyle ISO) or timestamp_out prints them, after the rounding a
// timestamp(p) column applies.
func pgTimestamp(dst []byte, us int64, prec int, zone bool) []byte {
	switch us {
	case math.MaxInt64:
		return append(dst, "infinity"...)
	case math.MinInt64:
		return append(dst, "-infinity"...)
	}
	if prec >= 0 && prec < 6 {
		// AdjustTimestampForTypmod works on PostgreSQL's epoch.
		scale := int64(math.Pow10(6 - prec))
		off := scale / 2
		t := us - pgEpochMicros
		if t >= 0 {
			t = (t + off) / scale * scale
		} else {
			t = -((-t + off) / scale * scale)
		}
		us = t + pgEpochMicros
	}
	days, rem := us/microsPerDay, us%microsPerDay
	if rem < 0 {
		days--
		rem += microsPerDay
	}
	dst, bc := appendYMD(dst, days)
	secs := rem / 1000000
	dst = append(dst, ' ')
	dst = append2(dst, secs/3600)
	dst = append(dst, ':')
	dst = append2(dst, secs/60%60)
	dst = append(dst, ':')
	dst = append2(dst, secs%60)
	if frac := rem % 1000000; frac != 0 {
		dst = append(dst, '.')
		n := 6
		for frac%10 == 0 {
			frac /= 10
			n--
		}
		s := strconv.FormatInt(frac, 10)
		for k := len(s); k < n; k++ {
			dst = append(dst, '0')
		}
		dst = append(dst, s...)
	}
	if zone {
		dst = append(dst, "+00"...)
	}
	if bc {
		dst = append(dst, " BC"...)
	}
	return dst
}

// pgDate renders days since 1970-01-01 as date_out prints them.
func pgDate(dst []byte, days int64) []byte {
	switch days {
	case math.MaxInt64:
		return append(dst, "infinity"...)
	case math.MinInt64:
		return append(dst, "-infinity"...)
	}
	dst, bc := appendYMD(dst, days)
	if bc {
		dst = append(dst, " BC"...)
	}
	return dst
}

// appendYMD writes a proleptic Gregorian date (year 0 is 1 BC) with the
// year padded to four digits, as PostgreSQL does.
func appendYMD(dst []byte, days int64) ([]byte, bool) {
	y, m, d := calendar.Civil(days)
	bc := y <= 0
	if bc {
		y = 1 - y
	}
	s := strconv.FormatInt(y, 10)
	for k := len(s); k < 4; k++ {
		dst = append(dst, '0')
	}
	dst = append(dst, s...)
	dst = append(dst, '-')
	dst = append2(dst, m)
	dst = append(dst, '-')
	dst = append2(dst, d)
	return dst, bc
}

func append2(dst []byte, v int64) []byte { return append(dst, byte('0'+v/10), byte('0'+v%10)) }

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
