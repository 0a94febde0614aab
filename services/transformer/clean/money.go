package clean

import (
	"errors"
	"fmt"
	"math/big"
	"math/bits"
	"slices"
	"strconv"
	"strings"

	"github.com/cutover/cutover/services/kit/calendar"
)

// Money functions work on decimal text with exact digit arithmetic (no
// float64 anywhere). Input: [+-]digits[.digits][e[+-]digits], surrounded by
// blanks at most; no group separators (strip them with another step).
// Output: canonical decimal, no '+', no leading zeros, never "-0".
//
//	scale   by=N (required, -1000..1000): multiply by 10^N exactly; the
//	        digits are kept ("1250" by=-2 → "12.50", "12.5" by=2 → "1250")
//	round   places=P (default 0), mode=half_up (default) | half_even |
//	        half_down | up | down | ceiling | floor; output has P decimals
//	convert to=CUR, rates="USD:2023-01-01:7.05|USD:2023-07-01:7.21|...",
//	        from=CUR (fixed) or absent (currency read from the input),
//	        places=2, mode=half_up. Input is "AMOUNT@YYYY-MM-DD" with from,
//	        "AMOUNT CUR@YYYY-MM-DD" without: the lead builds it from the
//	        amount, currency and date columns. The rate in force is the one
//	        with the latest effective date <= the date; 1 CUR = rate TO.
//
// All three take max_digits=N: a result with more than N digits (integer
// plus decimals, as numeric(N,s) counts them) is an error, not a wrap.
func init() {
	register("scale", newScale)
	register("round", newRound)
	register("convert", newConvert)
}

// PostgreSQL numeric limits: beyond them no target column could hold it.
const (
	maxIntDigits  = 131072
	maxFracDigits = 16383
	maxExponent   = 1 << 20
)

var errDecSyntax = errors.New("is not a decimal number")

// dec is a decimal read in place: digits d1 then d2 (the input's integer
// and fraction digits, never copied) with the point after position point.
type dec struct {
	neg    bool
	d1, d2 []byte
	point  int
}

func (x *dec) nd() int { return len(x.d1) + len(x.d2) }

func (x *dec) digit(k int) byte {
	switch {
	case k < 0 || k >= x.nd():
		return '0'
	case k < len(x.d1):
		return x.d1[k]
	}
	return x.d2[k-len(x.d1)]
}

func (x *dec) firstNonzero() int {
	for k := range x.nd() {
		if x.digit(k) != '0' {
			return k
		}
	}
	return x.nd()
}

func parseDec(b []byte) (dec, error) {
	var x dec
	b = trimBlank(b)
	if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
		x.neg = b[0] == '-'
		b = b[1:]
	}
	i := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	x.d1 = b[:i]
	if i < len(b) && b[i] == '.' {
		j := i + 1
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		x.d2 = b[i+1 : j]
		i = j
	}
	if x.nd() == 0 {
		return x, errDecSyntax
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
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if exp < maxExponent {
				exp = exp*10 + int(b[i]-'0')
			}
			i++
		}
		if i == start {
			return x, errDecSyntax
		}
		if eneg {
			exp = -exp
		}
	}
	if i != len(b) {
		return x, errDecSyntax
	}
	x.point = len(x.d1) + exp
	return x, nil
}

type roundMode uint8

const (
	halfUp roundMode = iota
	halfEven
	halfDown
	up
	down
	ceiling
	floor
)

var modeNames = []string{"half_up", "half_even", "half_down", "up", "down", "ceiling", "floor"}

func modeArg(a *Args) (roundMode, error) {
	m, err := a.OneOf("mode", "half_up", modeNames...)
	return roundMode(slices.Index(modeNames, m)), err
}

func maxDigitsArg(a *Args) (int, error) { return a.Int("max_digits", 0, 1, 1000) }

type rangeError struct{ msg string }

func (e *rangeError) Error() string { return e.msg }

var errDecRange = &rangeError{"is out of range for numeric"}

// appendRounded writes x rounded to places decimals with mode. It fails
// only when the result exceeds PostgreSQL's numeric or maxDigits (if > 0).
func appendRounded(dst []byte, x *dec, places int, mode roundMode, maxDigits int) ([]byte, error) {
	nd := x.nd()
	first := x.firstNonzero()
	if first < nd && first < x.point && x.point-first > maxIntDigits {
		return dst, errDecRange
	}
	cut := x.point + places // digits k < cut are kept
	var r byte
	sticky := false
	if cut < nd {
		from := cut + 1
		if cut >= 0 {
			r = x.digit(cut) - '0'
		} else {
			from = 0
		}
		for k := max(from, first); k < nd; k++ {
			if x.digit(k) != '0' {
				sticky = true
				break
			}
		}
	}
	var inc bool
	switch mode {
	case halfUp:
		inc = r >= 5
	case halfDown:
		inc = r > 5 || (r == 5 && sticky)
	case halfEven:
		inc = r > 5 || (r == 5 && (sticky || (x.digit(cut-1)-'0')%2 == 1))
	case up:
		inc = r != 0 || sticky
	case down:
	case ceiling:
		inc = !x.neg && (r != 0 || sticky)
	case floor:
		inc = x.neg && (r != 0 || sticky)
	}
	start := len(dst)
	intDigits := 0
	if first < x.point && first < nd {
		for k := first; k < x.point; k++ {
			dst = append(dst, x.digit(k))
		}
		intDigits = x.point - first
	} else {
		dst = append(dst, '0')
	}
	if places > 0 {
		dst = append(dst, '.')
		for k := x.point; k < cut; k++ {
			dst = append(dst, x.digit(k))
		}
	}
	if inc {
		i := len(dst) - 1
		for ; i >= start; i-- {
			if dst[i] == '.' {
				continue
			}
			if dst[i] == '9' {
				dst[i] = '0'
				continue
			}
			dst[i]++
			break
		}
		if i < start {
			dst = append(dst, 0)
			copy(dst[start+1:], dst[start:])
			dst[start] = '1'
			intDigits++
		} else if intDigits == 0 && dst[start] != '0' {
			intDigits = 1 // 0.96 → 1.0
		}
	}
	if intDigits > maxIntDigits {
		return dst[:start], errDecRange
	}
	if maxDigits > 0 && intDigits+places > maxDigits {
		s := string(dst[start:])
		return dst[:start], &rangeError{fmt.Sprintf("has %d digits, more than max_digits %d (result %s)", intDigits+places, maxDigits, s)}
	}
	zero := true
	for _, c := range dst[start:] {
		if c != '0' && c != '.' {
			zero = false
			break
		}
	}
	if x.neg && !zero {
		dst = append(dst, 0)
		copy(dst[start+1:], dst[start:])
		dst[start] = '-'
	}
	return dst, nil
}

func decError(in []byte, err error) error {
	return badValue("%s %v", quoteValue(in), err)
}

type scaleFunc struct{ by, maxDigits int }

func newScale(a *Args) (Func, error) {
	if _, err := a.Required("by"); err != nil {
		return nil, err
	}
	by, err := a.Int("by", 0, -1000, 1000)
	if err != nil {
		return nil, err
	}
	md, err := maxDigitsArg(a)
	return scaleFunc{by, md}, err
}

func (s scaleFunc) Apply(in, dst []byte) ([]byte, error) {
	x, err := parseDec(in)
	if err != nil {
		return dst, decError(in, err)
	}
	x.point += s.by
	places := max(x.nd()-x.point, 0)
	if places > maxFracDigits {
		return dst, decError(in, errDecRange)
	}
	out, err := appendRounded(dst, &x, places, down, s.maxDigits)
	if err != nil {
		return dst, decError(in, err)
	}
	return out, nil
}

type roundFunc struct {
	places    int
	mode      roundMode
	maxDigits int
}

func newRound(a *Args) (Func, error) {
	p, err := a.Int("places", 0, 0, maxFracDigits)
	if err != nil {
		return nil, err
	}
	m, err := modeArg(a)
	if err != nil {
		return nil, err
	}
	md, err := maxDigitsArg(a)
	return roundFunc{p, m, md}, err
}

func (f roundFunc) Apply(in, dst []byte) ([]byte, error) {
	x, err := parseDec(in)
	if err != nil {
		return dst, decError(in, err)
	}
	out, err := appendRounded(dst, &x, f.places, f.mode, f.maxDigits)
	if err != nil {
		return dst, decError(in, err)
	}
	return out, nil
}

// rate is 1 unit of a currency in the target currency from day on.
type rate struct {
	day    int64 // days since 1970-01-01
	text   string
	coef   []byte // digits without leading zeros
	scale  int
	u64    uint64 // coef when it has at most 19 digits
	small  bool
	bigInt *big.Int
}

type convertFunc struct {
	to        string
	from      string // "" when the input names the currency
	rates     map[string][]rate
	have      string
	places    int
	mode      roundMode
	maxDigits int
}

func upperASCII(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' {
			return r - 32
		}
		return r
	}, s)
}

func validCode(s string) bool {
	if s == "" || len(s) > 16 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// parseISODate reads exactly YYYY-MM-DD.
func parseISODate(b []byte) (int64, bool) {
	if len(b) != 10 || b[4] != '-' || b[7] != '-' {
		return 0, false
	}
	y, e1, ok1 := digitsAt(b, 0, 4, 4)
	m, e2, ok2 := digitsAt(b, 5, 2, 2)
	d, e3, ok3 := digitsAt(b, 8, 2, 2)
	if !ok1 || !ok2 || !ok3 || e1 != 4 || e2 != 7 || e3 != 10 || y < 1 || m < 1 || m > 12 || d < 1 || d > calendar.DaysIn(y, m) {
		return 0, false
	}
	return calendar.Days(y, m, d), true
}

func newConvert(a *Args) (Func, error) {
	f := &convertFunc{rates: map[string][]rate{}}
	to, err := a.Required("to")
	if err != nil {
		return nil, err
	}
	if f.to = upperASCII(strings.TrimSpace(to)); !validCode(f.to) {
		return nil, a.Errorf("to", "%q is not a currency code", to)
	}
	if a.Has("from") {
		from := a.String("from", "")
		if f.from = upperASCII(strings.TrimSpace(from)); !validCode(f.from) {
			return nil, a.Errorf("from", "%q is not a currency code", from)
		}
	}
	table, err := a.Required("rates")
	if err != nil {
		return nil, err
	}
	for _, e := range SplitList(table, '|') {
		parts := strings.Split(strings.TrimSpace(e), ":")
		if len(parts) != 3 {
			return nil, a.Errorf("rates", "entry %q: want CUR:YYYY-MM-DD:rate", e)
		}
		cur := upperASCII(parts[0])
		if !validCode(cur) {
			return nil, a.Errorf("rates", "entry %q: %q is not a currency code", e, parts[0])
		}
		day, ok := parseISODate([]byte(parts[1]))
		if !ok {
			return nil, a.Errorf("rates", "entry %q: %q is not a date YYYY-MM-DD", e, parts[1])
		}
		r, err := parseRate(parts[2])
		if err != nil {
			return nil, a.Errorf("rates", "entry %q: %v", e, err)
		}
		r.day = day
		for _, old := range f.rates[cur] {
			if old.day == day {
				return nil, a.Errorf("rates", "%s has two rates on %s", cur, parts[1])
			}
		}
		f.rates[cur] = append(f.rates[cur], r)
	}
	var have []string
	for cur, rs := range f.rates {
		slices.SortFunc(rs, func(x, y rate) int { return int(x.day - y.day) })
		have = append(have, cur)
	}
	slices.Sort(have)
	f.have = strings.Join(have, ", ")
	if f.from != "" && f.from != f.to && f.rates[f.from] == nil {
		return nil, a.Errorf("rates", "has no rate for from=%s", f.from)
	}
	if f.places, err = a.Int("places", 2, 0, 1000); err != nil {
		return nil, err
	}
	if f.mode, err = modeArg(a); err != nil {
		return nil, err
	}
	if f.maxDigits, err = maxDigitsArg(a); err != nil {
		return nil, err
	}
	return f, nil
}

func parseRate(s string) (rate, error) {
	x, err := parseDec([]byte(s))
	if err != nil || x.neg || len(s) > 64 || x.point > 40 || x.point < -40 {
		return rate{}, fmt.Errorf("rate %q is not a decimal number", s)
	}
	coef, scale := coefficient(nil, &x)
	if len(coef) == 1 && coef[0] == '0' {
		return rate{}, fmt.Errorf("rate %q is zero", s)
	}
	r := rate{text: s, coef: coef, scale: scale}
	if len(coef) <= 19 {
		r.u64, _ = strconv.ParseUint(string(coef), 10, 64)
		r.small = true
	}
	r.bigInt, _ = new(big.Int).SetString(string(coef), 10)
	return r, nil
}

// coefficient appends x's digits as an integer without leading zeros and
// returns its scale: x = coef × 10^-scale, scale >= 0.
func coefficient(dst []byte, x *dec) ([]byte, int) {
	first := x.firstNonzero()
	end := max(x.nd(), x.point)
	start := len(dst)
	for k := first; k < end; k++ {
		dst = append(dst, x.digit(k))
	}
	if len(dst) == start {
		dst = append(dst, '0')
	}
	return dst, max(x.nd()-x.point, 0)
}

func (f *convertFunc) Apply(in, dst []byte) ([]byte, error) {
	s := trimBlank(in)
	at := -1
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '@' {
			at = i
			break
		}
	}
	if at < 0 {
		return dst, badValue("%s: want AMOUNT%s@YYYY-MM-DD", quoteValue(in), map[bool]string{true: "", false: " CUR"}[f.from != ""])
	}
	day, ok := parseISODate(trimBlank(s[at+1:]))
	if !ok {
		return dst, badValue("%s: %s is not a date YYYY-MM-DD", quoteValue(in), quoteValue(trimBlank(s[at+1:])))
	}
	amt := trimBlank(s[:at])
	var cur string // fixed from
	var curBuf [16]byte
	var curB []byte // from the input, upper-cased
	if f.from == "" {
		sp := len(amt) - 1
		for sp >= 0 && amt[sp] != ' ' && amt[sp] != '\t' {
			sp--
		}
		if sp < 0 {
			return dst, badValue("%s: want AMOUNT CUR@YYYY-MM-DD", quoteValue(in))
		}
		code := amt[sp+1:]
		amt = trimBlank(amt[:sp])
		if len(code) > len(curBuf) {
			return dst, badValue("%s: %s is not a currency code", quoteValue(in), quoteValue(code))
		}
		curB = curBuf[:0]
		for _, c := range code {
			if c >= 'a' && c <= 'z' {
				c -= 32
			}
			curB = append(curB, c)
		}
	} else {
		cur = f.from
	}
	x, err := parseDec(amt)
	if err != nil {
		return dst, decError(amt, err)
	}
	rs := f.rates[cur]
	if curB != nil {
		if string(curB) == f.to {
			rs = nil
		} else if rs = f.rates[string(curB)]; rs == nil {
			return dst, badValue("%s: no rates for currency %s (have: %s)", quoteValue(in), quoteValue(curB), f.have)
		}
	} else if cur == f.to {
		rs = nil
	}
	if rs == nil { // same currency: only rounded
		out, err := appendRounded(dst, &x, f.places, f.mode, f.maxDigits)
		if err != nil {
			return dst, decError(amt, err)
		}
		return out, nil
	}
	if curB == nil {
		curB = append(curBuf[:0], cur...)
	}
	return f.apply(dst, in, &x, rs, curB, day)
}

func (f *convertFunc) apply(dst, in []byte, x *dec, rs []rate, cur []byte, day int64) ([]byte, error) {
	// The latest effective date <= day.
	i, found := slices.BinarySearchFunc(rs, day, func(r rate, d int64) int {
		switch {
		case r.day < d:
			return -1
		case r.day > d:
			return 1
		}
		return 0
	})
	if !found {
		i--
	}
	if i < 0 {
		return dst, badValue("%s: no %s rate in force on %s (earliest %s)", quoteValue(in), string(cur), civil(day), civil(rs[0].day))
	}
	r := &rs[i]
	if x.point > 1000 || x.point < -1000 || x.nd() > 1000 {
		return dst, decError(in, errDecRange)
	}
	var abuf, pbuf [64]byte
	coef, ascale := coefficient(abuf[:0], x)
	var prod []byte
	if len(coef) <= 19 && r.small {
		hi, lo := bits.Mul64(digitsU64(coef), r.u64)
		prod = appendU128(pbuf[:0], hi, lo)
	} else {
		a, _ := new(big.Int).SetString(string(coef), 10)
		prod = a.Mul(a, r.bigInt).Append(pbuf[:0], 10)
	}
	p := dec{neg: x.neg, d1: prod, point: len(prod) - ascale - r.scale}
	out, err := appendRounded(dst, &p, f.places, f.mode, f.maxDigits)
	if err != nil {
		return dst, badValue("%s converted at %s %s: result %v", quoteValue(in), string(cur), r.text, err)
	}
	return out, nil
}

// digitsU64 reads at most 19 ASCII digits.
func digitsU64(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v*10 + uint64(c-'0')
	}
	return v
}

// appendU128 writes hi:lo (< 10^38) in decimal.
func appendU128(dst []byte, hi, lo uint64) []byte {
	if hi == 0 {
		return strconv.AppendUint(dst, lo, 10)
	}
	const e19 = 10_000_000_000_000_000_000
	q, rem := bits.Div64(hi%e19, lo, e19)
	dst = strconv.AppendUint(dst, q, 10)
	var b [19]byte
	for i := 18; i >= 0; i-- {
		b[i] = byte('0' + rem%10)
		rem /= 10
	}
	return append(dst, b[:]...)
}

func civil(day int64) string {
	y, m, d := calendar.Civil(day)
	return fmt.Sprintf("%04d-%02d-%02d", y, m, d)
}
