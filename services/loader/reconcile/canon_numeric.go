package reconcile

import (
	"math"
	"strconv"
	"strings"
)

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
