package transform

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/cutover/cutover/services/kit/calendar"
)

// The parsers below read straight from []byte and return static errors on
// failure, so a successful parse never allocates: they run once per value.

var (
	errIntSyntax   = errors.New("not an integer")
	errIntRange    = errors.New("out of range for bigint")
	errFloatSyntax = errors.New("not a number")
	errFloatRange  = errors.New("out of range for double precision")
	errBoolSyntax  = errors.New("not a boolean (want true/false, t/f, yes/no, y/n, 1/0)")
	errNumSyntax   = errors.New("not a decimal number")
	errNumRange    = errors.New("out of range for numeric")
	errTSSyntax    = errors.New("not a timestamp (want YYYY-MM-DD[ HH:MM:SS[.ffffff][zone]] or a configured format)")
	errDateSyntax  = errors.New("not a date (want YYYY-MM-DD or a configured format)")
	errYear        = errors.New("year out of range 0001..9999")
	errMonth       = errors.New("month out of range")
	errDay         = errors.New("day does not exist in that month")
	errHour        = errors.New("hour out of range")
	errMinute      = errors.New("minute out of range")
	errSecond      = errors.New("second out of range")
	errZone        = errors.New("time zone offset out of range")
)

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// parseInt accepts optional surrounding spaces, an optional sign and decimal
// digits, with exact overflow detection.
func parseInt(b []byte) (int64, error) {
	b = trimSpace(b)
	neg := false
	if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
		neg = b[0] == '-'
		b = b[1:]
	}
	if len(b) == 0 {
		return 0, errIntSyntax
	}
	limit := uint64(1<<63 - 1)
	if neg {
		limit++
	}
	var u uint64
	overflow := false
	for _, c := range b {
		if !isDigit(c) {
			return 0, errIntSyntax
		}
		d := uint64(c - '0')
		if overflow || u > (limit-d)/10 {
			overflow = true // keep scanning: syntax errors win over range
			continue
		}
		u = u*10 + d
	}
	if overflow {
		return 0, errIntRange
	}
	if neg {
		return int64(-u), nil //nolint:gosec // -(1<<63) wraps to MinInt64 as intended
	}
	return int64(u), nil
}

// parseFloat follows strconv (including NaN, Inf, Infinity in any case).
func parseFloat(b []byte) (float64, error) {
	b = trimSpace(b)
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && ne.Err == strconv.ErrRange {
			return 0, errFloatRange
		}
		return 0, errFloatSyntax
	}
	return f, nil
}

// parseBool accepts true/false/t/f/1/0/yes/no/y/n in any case.
func parseBool(b []byte) (bool, error) {
	b = trimSpace(b)
	if len(b) == 0 || len(b) > 5 {
		return false, errBoolSyntax
	}
	var low [5]byte
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		low[i] = c
	}
	switch string(low[:len(b)]) {
	case "true", "t", "1", "yes", "y":
		return true, nil
	case "false", "f", "0", "no", "n":
		return false, nil
	}
	return false, errBoolSyntax
}

// PostgreSQL's numeric limits: digits before and after the decimal point.
const (
	maxNumIntDigits  = 131072
	maxNumFracDigits = 16383
	maxExp           = 1 << 30
)

// numErr is a numeric(p,s) constraint failure; it is only built on the
// failure path.
type numErr struct{ msg string }

func (e *numErr) Error() string { return e.msg }

// appendNumeric parses `[+-]digits[.digits][e[+-]digits]` (also ".5", "5.")
// and appends the canonical form to dst: no '+', no leading zeros, "-0" is
// "0", the exponent applied and the display scale kept as PostgreSQL does
// ("1.50" stays "1.50"). With prec > 0 the value must fit numeric(prec,scale)
// without rounding, and the output has exactly scale fraction digits.
func appendNumeric(dst, b []byte, prec, scale int) ([]byte, error) {
	b = trimSpace(b)
	// PostgreSQL numeric also holds NaN (any typmod) and ±Infinity (only
	// unconstrained); spelled as PostgreSQL prints them, any case.
	if special, ok := numericSpecial(b); ok {
		if special != "NaN" && prec > 0 {
			return dst, &numErr{fmt.Sprintf("%s does not fit numeric(%d,%d)", special, prec, scale)}
		}
		return append(dst, special...), nil
	}
	neg := false
	if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
		neg = b[0] == '-'
		b = b[1:]
	}
	i := 0
	for i < len(b) && isDigit(b[i]) {
		i++
	}
	ip := b[:i]
	var fp []byte
	if i < len(b) && b[i] == '.' {
		j := i + 1
		for j < len(b) && isDigit(b[j]) {
			j++
		}
		fp = b[i+1 : j]
		i = j
	}
	if len(ip)+len(fp) == 0 {
		return dst, errNumSyntax
	}
	exp := 0
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		eneg := false
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			eneg = b[i] == '-'
			i++
		}
		start := i
		for i < len(b) && isDigit(b[i]) {
			if exp < maxExp {
				exp = exp*10 + int(b[i]-'0')
			}
			i++
		}
		if i == start {
			return dst, errNumSyntax
		}
		if eneg {
			exp = -exp
		}
	}
	if i != len(b) {
		return dst, errNumSyntax
	}
	// The digits D = ip+fp with the decimal point after position point.
	nd := len(ip) + len(fp)
	digit := func(k int) byte {
		switch {
		case k < 0 || k >= nd:
			return '0'
		case k < len(ip):
			return ip[k]
		default:
			return fp[k-len(ip)]
		}
	}
	point := len(ip) + exp
	first := nd // first non-zero digit
	for k := 0; k < nd; k++ {
		if digit(k) != '0' {
			first = k
			break
		}
	}
	if first == nd {
		neg = false // -0 is 0
	}
	intDigits := 0
	if first < nd && first < point {
		intDigits = point - first
	}
	dscale := max(nd-point, 0)
	if intDigits > maxNumIntDigits {
		return dst, errNumRange
	}
	outScale := dscale
	if prec > 0 {
		if intDigits > prec-scale {
			return dst, &numErr{"has " + strconv.Itoa(intDigits) + " integer digits, exceeds numeric(" + strconv.Itoa(prec) + "," + strconv.Itoa(scale) + ")"}
		}
		for k := max(point+scale, 0); k < nd; k++ {
			if digit(k) != '0' {
				return dst, &numErr{"would be rounded to " + strconv.Itoa(scale) + " decimal places"}
			}
		}
		outScale = scale
	} else if dscale > maxNumFracDigits {
		return dst, errNumRange
	}
	if neg {
		dst = append(dst, '-')
	}
	if intDigits == 0 {
		dst = append(dst, '0')
	} else {
		for k := first; k < point; k++ {
			dst = append(dst, digit(k))
		}
	}
	if outScale > 0 {
		dst = append(dst, '.')
		for k := point; k < point+outScale; k++ {
			dst = append(dst, digit(k))
		}
	}
	return dst, nil
}

func num2(b []byte) (int, bool) {
	if len(b) < 2 || !isDigit(b[0]) || !isDigit(b[1]) {
		return 0, false
	}
	return int(b[0]-'0')*10 + int(b[1]-'0'), true
}

// parseYMD reads "YYYY-MM-DD" at the start of b and returns the days since
// the epoch; syntax is the error used when the shape does not match.
func parseYMD(b []byte, syntax error) (int64, error) {
	if len(b) < 10 || b[4] != '-' || b[7] != '-' {
		return 0, syntax
	}
	y1, ok1 := num2(b[0:2])
	y2, ok2 := num2(b[2:4])
	m, ok3 := num2(b[5:7])
	d, ok4 := num2(b[8:10])
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return 0, syntax
	}
	y := y1*100 + y2
	switch {
	case y == 0:
		return 0, errYear
	case m < 1 || m > 12:
		return 0, errMonth
	case d < 1 || d > calendar.DaysIn(y, m):
		return 0, errDay
	}
	return calendar.Days(y, m, d), nil
}

// parseDate reads "YYYY-MM-DD" (surrounding spaces allowed).
func parseDate(b []byte) (int64, error) {
	b = trimSpace(b)
	if len(b) != 10 {
		return 0, errDateSyntax
	}
	return parseYMD(b, errDateSyntax)
}

const (
	usPerSec = 1_000_000
	usPerDay = 86_400 * usPerSec
)

// parseTimestamp reads the shapes PostgreSQL and most exports print:
// "YYYY-MM-DD", then optionally 'T' or ' ' and "HH:MM[:SS[.f…]]" and a zone
// (Z, ±hh, ±hhmm, ±hh:mm, optionally after a space). No zone gives the wall
// time as if in UTC (the cast then reads it in the column's time zone).
// The result is microseconds since the epoch; extra fraction digits round
// half up to the microsecond.
func parseTimestamp(b []byte) (int64, error) {
	us, _, err := parseTimestampZ(b)
	return us, err
}

// parseTimestampZ is parseTimestamp that also says whether the value
// carried a zone (Z or an offset); without one the result is its wall time.
func parseTimestampZ(b []byte) (us int64, zoned bool, err error) {
	b = trimSpace(b)
	days, err := parseYMD(b, errTSSyntax)
	if err != nil {
		return 0, false, err
	}
	if len(b) == 10 {
		return days * usPerDay, false, nil
	}
	if c := b[10]; c != 'T' && c != 't' && c != ' ' {
		return 0, false, errTSSyntax
	}
	b = b[11:]
	hh, ok1 := num2(b)
	if !ok1 || len(b) < 5 || b[2] != ':' {
		return 0, false, errTSSyntax
	}
	mm, ok2 := num2(b[3:])
	if !ok2 {
		return 0, false, errTSSyntax
	}
	b = b[5:]
	ss := 0
	if len(b) > 0 && b[0] == ':' {
		var ok bool
		if ss, ok = num2(b[1:]); !ok {
			return 0, false, errTSSyntax
		}
		b = b[3:]
	}
	switch {
	case hh > 23:
		return 0, false, errHour
	case mm > 59:
		return 0, false, errMinute
	case ss > 59:
		return 0, false, errSecond
	}
	var frac int64
	if len(b) > 0 && (b[0] == '.' || b[0] == ',') {
		b = b[1:]
		n := 0
		for n < len(b) && isDigit(b[n]) {
			d := int64(b[n] - '0')
			switch {
			case n < 6:
				frac = frac*10 + d
			case n == 6 && d >= 5:
				frac++
			}
			n++
		}
		if n == 0 {
			return 0, false, errTSSyntax
		}
		for k := n; k < 6; k++ {
			frac *= 10
		}
		b = b[n:]
	}
	var off int64 // seconds east of UTC
	if len(b) > 0 && b[0] == ' ' {
		b = b[1:]
		if len(b) == 0 {
			return 0, false, errTSSyntax
		}
	}
	if len(b) > 0 {
		zoned = true
		switch b[0] {
		case 'Z', 'z':
			b = b[1:]
		case '+', '-':
			sign := int64(1)
			if b[0] == '-' {
				sign = -1
			}
			b = b[1:]
			oh, ok := num2(b)
			if !ok {
				return 0, false, errTSSyntax
			}
			b = b[2:]
			om := 0
			colon := len(b) > 0 && b[0] == ':'
			if colon {
				b = b[1:]
			}
			if colon || len(b) > 0 {
				if om, ok = num2(b); !ok {
					return 0, false, errTSSyntax
				}
				b = b[2:]
			}
			if oh > 15 || om > 59 {
				return 0, false, errZone
			}
			off = sign * int64(oh*3600+om*60)
		default:
			return 0, false, errTSSyntax
		}
	}
	if len(b) != 0 {
		return 0, false, errTSSyntax
	}
	us = (days*86400+int64(hh*3600+mm*60+ss)-off)*usPerSec + frac
	if us < minTS || us >= maxTS {
		return 0, false, errYear // a zone shifted it out of 0001..9999
	}
	return us, zoned, nil
}

// Timestamps stay within years 0001..9999 in UTC, so they print as RFC 3339.
var (
	minTS = calendar.Days(1, 1, 1) * usPerDay
	maxTS = calendar.Days(10000, 1, 1) * usPerDay
)

func numericSpecial(b []byte) (string, bool) {
	switch {
	case equalFold(b, "nan"):
		return "NaN", true
	case equalFold(b, "infinity"), equalFold(b, "+infinity"), equalFold(b, "inf"), equalFold(b, "+inf"):
		return "Infinity", true
	case equalFold(b, "-infinity"), equalFold(b, "-inf"):
		return "-Infinity", true
	}
	return "", false
}

func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
