package load

import "encoding/binary"

// PostgreSQL numeric binary format: int16 ndigits, int16 weight, uint16 sign,
// uint16 dscale, then ndigits base-10000 digits, most significant first; the
// value is Σ digit[k]·10000^(weight-k).
const (
	numericPos  = 0x0000
	numericNeg  = 0x4000
	numericNaN  = 0xC000
	numericPInf = 0xD000
	numericNInf = 0xF000

	// Limits within which the binary form means exactly what PostgreSQL's
	// numeric_in would make of the text (exponents beyond ±1000 are a
	// syntax error there, dscale is a 14-bit field); anything outside
	// goes through text COPY so PostgreSQL decides as before.
	numericMaxExp    = 1000
	numericMaxDscale = 0x3FFF
	numericMaxWeight = 32000
)

// decimal is a parsed numeric literal: significant digit k is s[lo+k], or
// the byte after it once that reaches the point at s[dot], and the
// decimal point sits after point significant digits (point may be
// negative or exceed the digit count).
type decimal struct {
	sign          uint16
	lo, dot       int
	ndig, point   int
	dscale        int
	special, zero bool
}

// digit returns significant digit k (0 <= k < ndig).
func (d *decimal) digit(s []byte, k int) byte {
	p := d.lo + k
	if p >= d.dot {
		p++
	}
	return s[p] - '0'
}

// parseNumeric parses the decimal text a NUMERIC column carries:
// [+-]digits[.digits][e[+-]digits], NaN or [+-]Infinity (any case). It
// reports false for anything else (including surrounding blanks), which
// then loads as text; it never allocates.
func parseNumeric(s []byte) (decimal, bool) {
	d := decimal{sign: numericPos, dot: len(s) + 1}
	i := 0
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	if i < len(s) && (s[i] < '0' || s[i] > '9') && s[i] != '.' {
		switch {
		case !neg && i == 0 && equalFold(s, "nan"):
			d.sign, d.special = numericNaN, true
		case equalFold(s[i:], "infinity"): // PostgreSQL 15 takes no "inf" here
			d.sign, d.special = numericPInf, true
			if neg {
				d.sign = numericNInf
			}
		default:
			return d, false
		}
		return d, true
	}
	start := i
	intDigits, fracDigits := 0, 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
		intDigits++
	}
	if i < len(s) && s[i] == '.' {
		d.dot = i
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			fracDigits++
		}
	}
	if intDigits+fracDigits == 0 {
		return d, false
	}
	exp := 0
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		eneg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			eneg = s[i] == '-'
			i++
		}
		if i == len(s) {
			return d, false
		}
		for ; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return d, false
			}
			exp = exp*10 + int(s[i]-'0')
			if exp > numericMaxExp {
				return d, false
			}
		}
		if eneg {
			exp = -exp
		}
	}
	if i != len(s) {
		return d, false
	}
	d.dscale = max(0, fracDigits-exp)
	if d.dscale > numericMaxDscale {
		return d, false
	}
	// Strip leading zeros (each moves the point left) and trailing zeros.
	d.lo = start
	d.ndig = intDigits + fracDigits
	d.point = intDigits + exp
	for d.ndig > 0 && d.digit(s, 0) == 0 {
		d.lo++ // digit() still skips the point: lo counts digits from start
		d.ndig--
		d.point--
	}
	for d.ndig > 0 && d.digit(s, d.ndig-1) == 0 {
		d.ndig--
	}
	if d.ndig == 0 {
		d.zero = true // -0 is 0: PostgreSQL has no negative zero
		return d, true
	}
	if neg {
		d.sign = numericNeg
	}
	if w := floorDiv(d.point-1, 4); w > numericMaxWeight || w < -numericMaxWeight {
		return d, false
	}
	return d, true
}

func floorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// equalFold reports whether s is lower (ASCII letters only) in any case.
func equalFold(s []byte, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := range s {
		if s[i]|0x20 != lower[i] {
			return false
		}
	}
	return true
}

// appendNumeric appends the binary numeric of a parsed literal (without
// the length word).
func appendNumeric(dst, s []byte, d *decimal) []byte {
	if d.special || d.zero {
		dscale := d.dscale
		if d.special {
			dscale = 0
		}
		dst = binary.BigEndian.AppendUint16(dst, 0)
		dst = binary.BigEndian.AppendUint16(dst, 0)
		dst = binary.BigEndian.AppendUint16(dst, d.sign)
		return binary.BigEndian.AppendUint16(dst, uint16(dscale))
	}
	// Align the digits so that the point falls on a group boundary.
	weight := floorDiv(d.point-1, 4)
	pad := (weight+1)*4 - d.point // zeros in front of the first digit
	ngroups := (pad + d.ndig + 3) / 4
	dst = binary.BigEndian.AppendUint16(dst, uint16(ngroups))
	dst = binary.BigEndian.AppendUint16(dst, uint16(int16(weight)))
	dst = binary.BigEndian.AppendUint16(dst, d.sign)
	dst = binary.BigEndian.AppendUint16(dst, uint16(d.dscale))
	k := -pad
	for range ngroups {
		var g uint16
		for range 4 {
			g *= 10
			if k >= 0 && k < d.ndig {
				g += uint16(d.digit(s, k))
			}
			k++
		}
		dst = binary.BigEndian.AppendUint16(dst, g)
	}
	return dst
}
