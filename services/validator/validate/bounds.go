package validate

import (
	"bytes"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
)

const (
	tText   = commonv1.ColumnType_COLUMN_TYPE_TEXT
	tInt    = commonv1.ColumnType_COLUMN_TYPE_INT64
	tFloat  = commonv1.ColumnType_COLUMN_TYPE_FLOAT64
	tBool   = commonv1.ColumnType_COLUMN_TYPE_BOOL
	tNum    = commonv1.ColumnType_COLUMN_TYPE_NUMERIC
	tTS     = commonv1.ColumnType_COLUMN_TYPE_TIMESTAMPTZ
	tDate   = commonv1.ColumnType_COLUMN_TYPE_DATE
	tBytes  = commonv1.ColumnType_COLUMN_TYPE_BYTES
	tUnspec = commonv1.ColumnType_COLUMN_TYPE_UNSPECIFIED
)

// bound is one range limit parsed in the column's type.
type bound struct {
	set  bool
	text string   // as written, for reasons
	i    int64    // INT64, TIMESTAMPTZ (micros), DATE (days)
	f    float64  // FLOAT64
	d    dec      // NUMERIC, plain decimal form
	rat  *big.Rat // NUMERIC, for values not in plain form
}

// bounds is a RangeRule ready for one column type.
type bounds struct {
	typ      commonv1.ColumnType
	min, max bound
}

// parseBounds reads min and max in type t. Errors name the field under
// field ("rules[2]"), so CheckRules and Apply report the same text.
func parseBounds(field string, r *commonv1.RangeRule, t commonv1.ColumnType) (*bounds, error) {
	switch t {
	case tInt, tFloat, tNum, tTS, tDate:
	default:
		return nil, &fieldError{field + ".range", fmt.Sprintf("needs a bigint, double precision, numeric, timestamptz or date column, not %s", typeName(t)), ErrInvalidRule}
	}
	if strings.TrimSpace(r.GetMin()) == "" && strings.TrimSpace(r.GetMax()) == "" {
		return nil, &fieldError{field + ".range", "min or max must be set", ErrInvalidRule}
	}
	b := &bounds{typ: t}
	var err error
	if b.min, err = parseBound(r.GetMin(), t); err != nil {
		return nil, &fieldError{field + ".range.min", err.Error(), ErrInvalidRule}
	}
	if b.max, err = parseBound(r.GetMax(), t); err != nil {
		return nil, &fieldError{field + ".range.max", err.Error(), ErrInvalidRule}
	}
	if b.min.set && b.max.set && b.cmp(b.min, b.max) > 0 {
		return nil, &fieldError{field + ".range", fmt.Sprintf("min %s is above max %s", r.GetMin(), r.GetMax()), ErrInvalidRule}
	}
	return b, nil
}

// Layouts accepted for timestamp bounds; no zone means UTC.
var tsLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999Z07", "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999", "2006-01-02"}

func parseBound(s string, t commonv1.ColumnType) (bound, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return bound{}, nil
	}
	b := bound{set: true, text: s}
	bad := fmt.Errorf("%q is not a valid %s", s, typeName(t))
	switch t {
	case tInt:
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return b, bad
		}
		b.i = v
	case tFloat:
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(v) {
			return b, bad
		}
		b.f = v
	case tNum:
		scale, ok := decScale(s)
		if !ok {
			return b, bad
		}
		r, ok := new(big.Rat).SetString(s)
		if !ok {
			return b, bad
		}
		b.rat = r
		d, ok := parseDec([]byte(r.FloatString(scale)))
		if !ok {
			return b, bad
		}
		b.d = d
	case tTS:
		for _, l := range tsLayouts {
			if tm, err := time.Parse(l, s); err == nil {
				b.i = tm.UnixMicro()
				return b, nil
			}
		}
		return b, bad
	case tDate:
		tm, err := time.Parse("2006-01-02", s)
		if err != nil {
			return b, bad
		}
		b.i = tm.Unix() / 86400
		if tm.Unix()%86400 < 0 {
			b.i--
		}
	}
	return b, nil
}

// decScale checks [+-]digits[.digits][e[+-]digits] (refusing the fractions
// and base prefixes big.Rat would also take) and returns the number of
// decimal places the value needs, so it can be printed exactly.
func decScale(s string) (int, bool) {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	nd, nf := 0, 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		nd++
	}
	if i < len(s) && s[i] == '.' {
		for i++; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			nf++
		}
	}
	if nd+nf == 0 {
		return 0, false
	}
	exp := 0
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		neg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			neg = s[i] == '-'
			i++
		}
		ne := 0
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			exp = exp*10 + int(s[i]-'0')
			ne++
		}
		if ne == 0 || ne > 4 { // a bound needs no more than 1e±9999
			return 0, false
		}
		if neg {
			exp = -exp
		}
	}
	return max(nf-exp, 0), i == len(s)
}

// dec is a plain decimal viewed in place: integer digits without leading
// zeros, fraction digits without trailing zeros; zero is never negative.
type dec struct {
	neg    bool
	ip, fp []byte
}

// parseDec reads [+-]digits[.digits] (surrounding spaces allowed) without
// allocating; ok is false for other shapes, which fall back to math/big.
func parseDec(b []byte) (dec, bool) {
	b = bytes.TrimSpace(b)
	var d dec
	if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
		d.neg = b[0] == '-'
		b = b[1:]
	}
	i := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	d.ip = b[:i]
	if i < len(b) && b[i] == '.' {
		j := i + 1
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		d.fp = b[i+1 : j]
		i = j
	}
	if i != len(b) || len(d.ip)+len(d.fp) == 0 {
		return dec{}, false
	}
	for len(d.ip) > 0 && d.ip[0] == '0' {
		d.ip = d.ip[1:]
	}
	for len(d.fp) > 0 && d.fp[len(d.fp)-1] == '0' {
		d.fp = d.fp[:len(d.fp)-1]
	}
	if len(d.ip) == 0 && len(d.fp) == 0 {
		d.neg = false
	}
	return d, true
}

func cmpDec(a, b dec) int {
	if a.neg != b.neg {
		if a.neg {
			return -1
		}
		return 1
	}
	c := 0
	switch {
	case len(a.ip) != len(b.ip):
		c = len(a.ip) - len(b.ip)
	default:
		if c = bytes.Compare(a.ip, b.ip); c == 0 {
			c = bytes.Compare(a.fp, b.fp)
		}
	}
	if a.neg {
		c = -c
	}
	return c
}

// cmp compares two bounds of the same type.
func (b *bounds) cmp(x, y bound) int {
	switch b.typ {
	case tFloat:
		switch {
		case x.f < y.f:
			return -1
		case x.f > y.f:
			return 1
		}
		return 0
	case tNum:
		return x.rat.Cmp(y.rat)
	}
	switch {
	case x.i < y.i:
		return -1
	case x.i > y.i:
		return 1
	}
	return 0
}

func typeName(t commonv1.ColumnType) string {
	switch t {
	case tInt:
		return "bigint"
	case tFloat:
		return "double precision"
	case tBool:
		return "boolean"
	case tNum:
		return "numeric"
	case tTS:
		return "timestamptz"
	case tDate:
		return "date"
	case tText:
		return "text"
	case tBytes:
		return "bytea"
	}
	return t.String()
}
