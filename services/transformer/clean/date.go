package clean

import (
	"fmt"
	"math/bits"
	"strings"
	"time"
	_ "time/tzdata" // zones must resolve in minimal containers too
	"unicode/utf8"

	"github.com/cutover/cutover/services/kit/calendar"
)

// date parses a value with an ordered list of formats and writes an ISO date
// (out=date, "2023-01-05") or an RFC 3339 timestamp with offset
// (out=timestamptz, "2023-01-05T14:30:00+08:00").
//
// Arguments:
//
//	formats   required, '|'-separated; each is "excel", "unix" or a layout
//	out       date (default) | timestamptz
//	tz        IANA zone of wall-clock input (default UTC)
//	to_tz     zone of timestamptz output (default tz)
//	prefer    dmy | mdy: settles day/month ambiguity between formats
//	pivot     0..99, required when a layout uses YY: YY < pivot is 20YY, else 19YY
//	excel1904 true: Excel serials count from 1904-01-01 (Mac workbooks)
//	unit      s (default) | ms for unix
//
// Layout tokens (case-sensitive): YYYY 4-digit year, YY 2-digit year,
// MM/DD/HH 2 digits, M/D/H 1 or 2 digits, mm minutes, ss seconds, F 1-6
// fraction digits, Z offset (Z, +08, +0800, +08:00). Other ASCII letters
// must be quoted ('T'); anything else (-, /, space, 年, 月, 日) is literal.
// A 1-or-2-digit token may not be followed directly by another number.
//
// Every format is tried. If readings that succeed differ, the value is
// ambiguous and an error, unless prefer picks the day-first or month-first
// formats and those agree. Before matching, full-width forms and U+3000 are
// made ASCII and Chinese numerals are read: 二〇二三年一月五日, 十二月, 三十一日.
// out=date refuses a value with a time of day rather than drop it; for unix
// input the date is the one in to_tz.
func init() { register("date", newDate) }

type tokKind uint8

const (
	tLit tokKind = iota
	tYear4
	tYear2
	tMonth2
	tMonth
	tDay2
	tDay
	tHour2
	tHour
	tMin
	tSec
	tFrac
	tZone
)

type tok struct {
	kind tokKind
	lit  string
}

type layout struct {
	src   string
	toks  []tok
	excel bool
	unix  bool
	order byte // 'd' day before month, 'm' month before day, 0 neither
}

type dateFunc struct {
	layouts   []layout
	ts        bool
	loc, out  *time.Location
	prefer    byte
	pivot     int
	excel1904 bool
	ms        bool
}

var tokNames = []struct {
	name string
	kind tokKind
}{
	{"YYYY", tYear4}, {"YY", tYear2}, {"MM", tMonth2}, {"M", tMonth},
	{"DD", tDay2}, {"D", tDay}, {"HH", tHour2}, {"H", tHour},
	{"mm", tMin}, {"ss", tSec}, {"F", tFrac}, {"Z", tZone},
}

func isNumTok(k tokKind) bool { return k != tLit && k != tZone }

func parseLayout(src string) (layout, error) {
	l := layout{src: src}
	switch src {
	case "excel":
		l.excel = true
		return l, nil
	case "unix":
		l.unix = true
		return l, nil
	}
	addLit := func(s string) {
		if n := len(l.toks); n > 0 && l.toks[n-1].kind == tLit {
			l.toks[n-1].lit += s
			return
		}
		l.toks = append(l.toks, tok{kind: tLit, lit: s})
	}
	dayAt, monAt := -1, -1
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\'':
			end := strings.IndexByte(src[i+1:], '\'')
			if end < 0 {
				return l, fmt.Errorf("layout %q: unclosed quote", src)
			}
			addLit(src[i+1 : i+1+end])
			i += end + 2
			continue
		case (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'):
			found := false
			for _, tn := range tokNames {
				if strings.HasPrefix(src[i:], tn.name) {
					switch tn.kind {
					case tDay, tDay2:
						dayAt = len(l.toks)
					case tMonth, tMonth2:
						monAt = len(l.toks)
					}
					l.toks = append(l.toks, tok{kind: tn.kind})
					i += len(tn.name)
					found = true
					break
				}
			}
			if !found {
				return l, fmt.Errorf("layout %q: unknown token at %q (quote literal letters: 'T')", src, src[i:])
			}
			continue
		}
		_, n := utf8.DecodeRuneInString(src[i:])
		addLit(src[i : i+n])
		i += n
	}
	have := map[tokKind]bool{}
	for k, t := range l.toks {
		if t.kind == tLit {
			continue
		}
		group := t.kind
		switch t.kind {
		case tYear2:
			group = tYear4
		case tMonth:
			group = tMonth2
		case tDay:
			group = tDay2
		case tHour:
			group = tHour2
		}
		if have[group] {
			return l, fmt.Errorf("layout %q: a field appears twice", src)
		}
		have[group] = true
		if (t.kind == tMonth || t.kind == tDay || t.kind == tHour) && k+1 < len(l.toks) {
			next := l.toks[k+1]
			if isNumTok(next.kind) || (next.kind == tLit && next.lit[0] >= '0' && next.lit[0] <= '9') {
				return l, fmt.Errorf("layout %q: a 1-or-2-digit field is followed by a number, which cannot be split", src)
			}
		}
		if t.kind == tFrac && (k == 0 || l.toks[k-1].kind != tLit) {
			return l, fmt.Errorf("layout %q: F must follow a literal such as '.'", src)
		}
	}
	if !have[tYear4] || !have[tMonth2] || !have[tDay2] {
		return l, fmt.Errorf("layout %q: needs a year, a month and a day", src)
	}
	if (have[tMin] || have[tSec]) && !have[tHour2] || have[tSec] && !have[tMin] || have[tFrac] && !have[tSec] {
		return l, fmt.Errorf("layout %q: time fields must be complete from hours down", src)
	}
	switch {
	case dayAt < monAt:
		l.order = 'd'
	case monAt < dayAt:
		l.order = 'm'
	}
	return l, nil
}

func newDate(a *Args) (Func, error) {
	f := &dateFunc{}
	list, err := a.Required("formats")
	if err != nil {
		return nil, err
	}
	needPivot := false
	for _, s := range SplitList(list, '|') {
		l, err := parseLayout(strings.TrimSpace(s))
		if err != nil {
			return nil, a.Errorf("formats", "%v", err)
		}
		for _, t := range l.toks {
			needPivot = needPivot || t.kind == tYear2
		}
		f.layouts = append(f.layouts, l)
	}
	out, err := a.OneOf("out", "date", "date", "timestamptz")
	if err != nil {
		return nil, err
	}
	f.ts = out == "timestamptz"
	tz := a.String("tz", "UTC")
	if f.loc, err = time.LoadLocation(tz); err != nil || tz == "" || tz == "Local" {
		return nil, a.Errorf("tz", "unknown IANA time zone %q", tz)
	}
	f.out = f.loc
	if a.Has("to_tz") {
		z := a.String("to_tz", "")
		if f.out, err = time.LoadLocation(z); err != nil || z == "" || z == "Local" {
			return nil, a.Errorf("to_tz", "unknown IANA time zone %q", z)
		}
	}
	p, err := a.OneOf("prefer", "", "dmy", "mdy")
	if err != nil {
		return nil, err
	}
	if p != "" {
		f.prefer = p[0]
	}
	if a.Has("pivot") || needPivot {
		if !a.Has("pivot") {
			return nil, a.Errorf("pivot", "is required when a format uses YY (e.g. pivot=50: 00-49 → 20YY, 50-99 → 19YY)")
		}
		if f.pivot, err = a.Int("pivot", 0, 0, 100); err != nil {
			return nil, err
		}
	}
	if f.excel1904, err = a.Bool("excel1904", false); err != nil {
		return nil, err
	}
	unit, err := a.OneOf("unit", "s", "s", "ms")
	if err != nil {
		return nil, err
	}
	f.ms = unit == "ms"
	return f, nil
}

// fields is one reading of a value.
type fields struct {
	y, mo, d, h, mi, s, us int
	off                    int // seconds east of UTC when hasOff
	hasOff, hasTime        bool
}

// asciiDate copies in with full-width forms made ASCII and Chinese numerals
// read as digits; ok is false for a numeral run that is not a number.
func asciiDate(dst, in []byte) ([]byte, bool) {
	for i := 0; i < len(in); {
		c := in[i]
		if c < utf8.RuneSelf {
			dst = append(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(in[i:])
		if _, isNum := hanDigit(r); isNum || r == '十' {
			j := i
			var run [8]int // digit values, -1 for 十
			k := 0
			for j < len(in) {
				r2, n2 := utf8.DecodeRune(in[j:])
				v, isNum := hanDigit(r2)
				if r2 == '十' {
					v, isNum = -1, true
				}
				if !isNum {
					break
				}
				if k == len(run) {
					return dst, false
				}
				run[k] = v
				k++
				j += n2
			}
			var ok bool
			if dst, ok = appendHan(dst, run[:k]); !ok {
				return dst, false
			}
			i = j
			continue
		}
		switch {
		case r >= 0xFF01 && r <= 0xFF5E:
			dst = append(dst, byte(r-0xFEE0))
		case r == 0x3000:
			dst = append(dst, ' ')
		default:
			dst = append(dst, in[i:i+n]...)
		}
		i += n
	}
	return dst, true
}

func hanDigit(r rune) (int, bool) {
	switch r {
	case '〇', '零':
		return 0, true
	case '一':
		return 1, true
	case '二':
		return 2, true
	case '三':
		return 3, true
	case '四':
		return 4, true
	case '五':
		return 5, true
	case '六':
		return 6, true
	case '七':
		return 7, true
	case '八':
		return 8, true
	case '九':
		return 9, true
	}
	return 0, false
}

// appendHan writes a numeral run: digit by digit (二〇二三 → 2023), or with
// 十 as tens: 十 10, 十二 12, 二十 20, 三十一 31.
func appendHan(dst []byte, run []int) ([]byte, bool) {
	ten := -1
	for k, v := range run {
		if v == -1 {
			if ten >= 0 {
				return dst, false
			}
			ten = k
		}
	}
	if ten < 0 {
		for _, v := range run {
			dst = append(dst, byte('0'+v))
		}
		return dst, true
	}
	if ten > 1 || len(run)-ten > 2 {
		return dst, false
	}
	tens, ones := 1, 0
	if ten == 1 {
		tens = run[0]
	}
	if ten+1 < len(run) {
		ones = run[ten+1]
	}
	if tens == 0 || (ten == 1 && ten+1 < len(run) && ones == 0) {
		return dst, false // 〇十, 二十〇
	}
	return append(dst, byte('0'+tens), byte('0'+ones)), true
}

func digitsAt(s []byte, i, min, max int) (v, end int, ok bool) {
	j := i
	for j < len(s) && j-i < max && s[j] >= '0' && s[j] <= '9' {
		v = v*10 + int(s[j]-'0')
		j++
	}
	return v, j, j-i >= min
}

// match reads s with a layout; it checks shape only, not ranges.
func (l *layout) match(s []byte, pivot int) (f fields, ok bool) {
	i := 0
	for _, t := range l.toks {
		var v int
		switch t.kind {
		case tLit:
			if len(s)-i < len(t.lit) || string(s[i:i+len(t.lit)]) != t.lit {
				return f, false
			}
			i += len(t.lit)
			continue
		case tZone:
			if i < len(s) && s[i] == 'Z' {
				f.hasOff = true
				i++
				continue
			}
			if i >= len(s) || (s[i] != '+' && s[i] != '-') {
				return f, false
			}
			sign := 1
			if s[i] == '-' {
				sign = -1
			}
			hh, j, okh := digitsAt(s, i+1, 2, 2)
			if !okh {
				return f, false
			}
			mm := 0
			if j < len(s) && s[j] == ':' {
				if mm, j, okh = digitsAt(s, j+1, 2, 2); !okh {
					return f, false
				}
			} else if m2, j2, okm := digitsAt(s, j, 2, 2); okm {
				mm, j = m2, j2
			}
			if hh > 15 || mm > 59 {
				return f, false
			}
			f.off, f.hasOff, i = sign*(hh*3600+mm*60), true, j
			continue
		}
		lo, hi := 2, 2
		switch t.kind {
		case tYear4:
			lo, hi = 4, 4
		case tMonth, tDay, tHour:
			lo = 1
		case tFrac:
			lo, hi = 1, 6
		}
		var end int
		if v, end, ok = digitsAt(s, i, lo, hi); !ok {
			return f, false
		}
		if t.kind != tFrac && end < len(s) && s[end] >= '0' && s[end] <= '9' && hi == 2 && lo == 1 {
			return f, false
		}
		switch t.kind {
		case tYear4:
			f.y = v
		case tYear2:
			if v < pivot {
				f.y = 2000 + v
			} else {
				f.y = 1900 + v
			}
		case tMonth, tMonth2:
			f.mo = v
		case tDay, tDay2:
			f.d = v
		case tHour, tHour2:
			f.h, f.hasTime = v, true
		case tMin:
			f.mi = v
		case tSec:
			f.s = v
		case tFrac:
			for n := end - i; n < 6; n++ {
				v *= 10
			}
			f.us = v
		}
		i = end
	}
	return f, i == len(s)
}

// reason says why a reading is impossible; it is formatted only when it
// becomes the error, so a rejected alternative reading costs nothing.
type reason struct {
	format string
	v      [3]int
	n      int
	loc    *time.Location
}

func why(format string, v ...int) reason {
	r := reason{format: format, n: len(v)}
	copy(r.v[:], v)
	return r
}

func (r reason) none() bool { return r.format == "" }

func (r reason) String() string {
	if r.loc != nil {
		return fmt.Sprintf(r.format, r.loc)
	}
	args := make([]any, r.n)
	for i := range r.n {
		args[i] = r.v[i]
	}
	return fmt.Sprintf(r.format, args...)
}

// check returns why a reading is impossible.
func (f *fields) check() reason {
	switch {
	case f.y < 1 || f.y > 9999:
		return why("is an impossible date: year %d is out of range 1..9999", f.y)
	case f.mo < 1 || f.mo > 12:
		return why("is an impossible date: month %d does not exist", f.mo)
	case f.d < 1 || f.d > calendar.DaysIn(f.y, f.mo):
		return why("is an impossible date: day %d does not exist in %04d-%02d", f.d, f.y, f.mo)
	case f.h > 23:
		return why("is an impossible time: hour %d is out of range", f.h)
	case f.mi > 59:
		return why("is an impossible time: minute %d is out of range", f.mi)
	case f.s > 59:
		return why("is an impossible time: second %d is out of range", f.s)
	}
	return reason{}
}

// reading is one successful interpretation: key orders and compares them
// (days for out=date, unix micros for timestamptz).
type reading struct {
	key   int64
	f     fields
	t     time.Time
	order byte
}

const (
	minUnix = -62135596800 // 0001-01-01T00:00:00Z
	maxUnix = 253402300799 // 9999-12-31T23:59:59Z
)

// excelBase is the day before serial 1: 1899-12-31 (serials 1..59), and
// 1899-12-30 from serial 61 on, absorbing Excel's fictitious 1900-02-29.
var (
	excel1900Early = time.Date(1899, 12, 31, 0, 0, 0, 0, time.UTC)
	excel1900Late  = time.Date(1899, 12, 30, 0, 0, 0, 0, time.UTC)
	excel1904Base  = time.Date(1904, 1, 1, 0, 0, 0, 0, time.UTC)
)

// readNumber reads [-]digits[.digits] for excel and unix.
func readNumber(s []byte) (neg bool, ip, fp []byte, ok bool) {
	if len(s) > 0 && s[0] == '-' {
		neg, s = true, s[1:]
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	ip = s[:i]
	if i < len(s) && s[i] == '.' {
		fp = s[i+1:]
		for _, c := range fp {
			if c < '0' || c > '9' {
				return
			}
		}
	} else if i != len(s) {
		return
	}
	return neg, ip, fp, len(ip) > 0
}

// excel reads a serial; why explains a syntactically fine but impossible one.
func (d *dateFunc) excel(s []byte) (f fields, matched bool, r reason) {
	neg, ip, fp, ok := readNumber(s)
	if !ok {
		return f, false, r
	}
	if neg || len(ip) > 7 {
		return f, true, why("is out of range for an Excel serial")
	}
	serial := int(digitsU64(ip))
	var day time.Time
	switch {
	case d.excel1904:
		day = excel1904Base.AddDate(0, 0, serial)
	case serial == 0:
		return f, true, why("is Excel serial 0, which is not a date (1900-01-00)")
	case serial == 60:
		return f, true, why("is Excel serial 60, the day 1900-02-29 that does not exist (Excel's leap-year bug)")
	case serial < 60:
		day = excel1900Early.AddDate(0, 0, serial)
	default:
		day = excel1900Late.AddDate(0, 0, serial)
	}
	if day.Year() > 9999 {
		return f, true, why("is out of range for an Excel serial")
	}
	f.y, f.mo, f.d = day.Year(), int(day.Month()), day.Day()
	if len(fp) > 0 {
		if len(fp) > 18 {
			fp = fp[:18]
		}
		num := digitsU64(fp)
		den := uint64(1)
		for range fp {
			den *= 10
		}
		// micros = round(num/den * 86400e6), exactly in 128 bits.
		hi, lo := bits.Mul64(num, 86_400_000_000)
		lo, c := bits.Add64(lo, den/2, 0)
		hi += c
		us, _ := bits.Div64(hi, lo, den)
		if us >= 86_400_000_000 { // rounds up to the next midnight
			return f, true, why("is an Excel serial whose time of day rounds to 24:00")
		}
		f.h, f.mi, f.s, f.us = int(us/3_600_000_000), int(us/60_000_000%60), int(us/1_000_000%60), int(us%1_000_000)
		f.hasTime = us != 0
	}
	return f, true, r
}

func (d *dateFunc) unix(s []byte) (t time.Time, matched bool, r reason) {
	neg, ip, fp, ok := readNumber(s)
	if !ok || fp != nil {
		return t, false, r
	}
	if len(ip) > 15 {
		return t, true, why("is out of range for Unix time")
	}
	v := int64(digitsU64(ip))
	if neg {
		v = -v
	}
	sec, us := v, int64(0)
	if d.ms {
		sec, us = v/1000, v%1000*1000
		if us < 0 {
			sec, us = sec-1, us+1_000_000
		}
	}
	if sec < minUnix || sec > maxUnix {
		return t, true, why("is out of range for Unix time")
	}
	return time.Unix(sec, us*1000).UTC(), true, r
}

// wall resolves a wall-clock reading in loc, refusing times a clock change
// skipped or repeated.
func wall(f *fields, loc *time.Location) (time.Time, reason) {
	t := time.Date(f.y, time.Month(f.mo), f.d, f.h, f.mi, f.s, f.us*1000, loc)
	if loc == time.UTC {
		return t, reason{}
	}
	if t.Day() != f.d || t.Hour() != f.h || t.Minute() != f.mi {
		return t, reason{format: "does not exist in %s (skipped by a clock change)", loc: loc}
	}
	_, off := t.Zone()
	wallSec := time.Date(f.y, time.Month(f.mo), f.d, f.h, f.mi, f.s, 0, time.UTC).Unix()
	for _, probe := range [2]int64{-6 * 3600, 6 * 3600} {
		_, o := time.Unix(t.Unix()+probe, 0).In(loc).Zone()
		if o == off {
			continue
		}
		if _, uo := time.Unix(wallSec-int64(o), 0).In(loc).Zone(); uo == o {
			return t, reason{format: "happens twice in %s (clock change); use a format with an offset", loc: loc}
		}
	}
	return t, reason{}
}

// read interprets s with layout l; matched=false means the shape differs.
func (d *dateFunc) read(l *layout, s []byte) (r reading, matched bool, bad reason) {
	r.order = l.order
	var f fields
	switch {
	case l.unix:
		t, m, w := d.unix(s)
		if !m || !w.none() {
			return r, m, w
		}
		t = t.In(d.out)
		if !d.ts {
			f.y, f.mo, f.d = t.Year(), int(t.Month()), t.Day()
			r.f, r.key = f, calendar.Days(f.y, f.mo, f.d)
			return r, true, bad
		}
		r.t, r.key = t, t.UnixMicro()
		return r, true, bad
	case l.excel:
		var m bool
		if f, m, bad = d.excel(s); !m || !bad.none() {
			return r, m, bad
		}
	default:
		var ok bool
		if f, ok = l.match(s, d.pivot); !ok {
			return r, false, bad
		}
		if bad = f.check(); !bad.none() {
			return r, true, bad
		}
	}
	r.f = f
	if !d.ts {
		if f.hasTime && (f.h|f.mi|f.s|f.us) != 0 {
			return r, true, why("has a time of day; use out=timestamptz")
		}
		r.key = calendar.Days(f.y, f.mo, f.d)
		return r, true, bad
	}
	if f.hasOff {
		r.t = time.Date(f.y, time.Month(f.mo), f.d, f.h, f.mi, f.s, f.us*1000, time.FixedZone("", f.off))
	} else if r.t, bad = wall(&f, d.loc); !bad.none() {
		return r, true, bad
	}
	if u := r.t.Unix(); u < minUnix || u > maxUnix {
		return r, true, why("is out of range 0001..9999")
	}
	r.t = r.t.In(d.out)
	r.key = r.t.UnixMicro()
	return r, true, bad
}

func (d *dateFunc) format(dst []byte, r *reading) []byte {
	if d.ts {
		return r.t.AppendFormat(dst, "2006-01-02T15:04:05.999999Z07:00")
	}
	dst = appendPad(dst, r.f.y, 4)
	dst = append(dst, '-')
	dst = appendPad(dst, r.f.mo, 2)
	dst = append(dst, '-')
	return appendPad(dst, r.f.d, 2)
}

func appendPad(dst []byte, v, width int) []byte {
	var b [8]byte
	i := len(b)
	for ; v > 0 || i > len(b)-width; v /= 10 {
		i--
		b[i] = byte('0' + v%10)
	}
	return append(dst, b[i:]...)
}

func (d *dateFunc) Apply(in, dst []byte) ([]byte, error) {
	s := trimBlank(in)
	var buf [64]byte
	for _, c := range s {
		if c >= utf8.RuneSelf {
			norm, ok := asciiDate(buf[:0], s)
			if !ok {
				return dst, badValue("%s is not a date in any of the formats %s", quoteValue(in), d.formatList())
			}
			s = norm
			break
		}
	}
	var first, other, pref reading
	var n, nPref int
	prefConflict := false
	var bad reason
	for k := range d.layouts {
		r, matched, w := d.read(&d.layouts[k], s)
		if !matched {
			continue
		}
		if !w.none() {
			if bad.none() {
				bad = w
			}
			continue
		}
		switch {
		case n == 0:
			first = r
			n = 1
		case n == 1 && r.key != first.key:
			other = r
			n = 2
		}
		if d.prefer != 0 && (r.order == 0 || r.order == d.prefer) {
			if nPref == 0 {
				pref, nPref = r, 1
			} else if r.key != pref.key {
				prefConflict = true
			}
		}
	}
	switch {
	case n == 1:
		return d.format(dst, &first), nil
	case n == 2 && nPref > 0 && !prefConflict:
		return d.format(dst, &pref), nil
	case n == 2:
		a, b := first, other
		if b.key < a.key {
			a, b = b, a
		}
		kind := "date"
		if a.order != b.order && a.order != 0 && b.order != 0 {
			kind = "day/month"
		}
		as, bs := d.format(nil, &a), d.format(nil, &b)
		return dst, badValue("ambiguous %s: %s could be %s or %s", kind, trimBlank(in), as, bs)
	case !bad.none():
		return dst, badValue("%s %s", quoteValue(in), bad)
	}
	return dst, badValue("%s is not a date in any of the formats %s", quoteValue(in), d.formatList())
}

func (d *dateFunc) formatList() string {
	var b strings.Builder
	for k, l := range d.layouts {
		if k > 0 {
			b.WriteString(", ")
		}
		b.WriteString(l.src)
	}
	return b.String()
}

func trimBlank(b []byte) []byte {
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if !isBlank(r) {
			break
		}
		b = b[n:]
	}
	for len(b) > 0 {
		r, n := utf8.DecodeLastRune(b)
		if !isBlank(r) {
			break
		}
		b = b[:len(b)-n]
	}
	return b
}
