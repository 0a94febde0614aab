package extract

import (
	"strconv"
	"strings"
)

// The text forms pgoutput writes (a value's type output in the walsender's
// session, see streamSettings) and WAL positions.

// lsn is a WAL position.
type lsn uint64

// String is PostgreSQL's text form of a pg_lsn, e.g. "0/16B3748".
func (l lsn) String() string {
	return strconv.FormatUint(uint64(l)>>32, 16) + "/" + strconv.FormatUint(uint64(l)&0xffffffff, 16)
}

// parseLSN reads the text form of a pg_lsn ("16/B374D848"); upper and
// lower case hex digits are both accepted, as PostgreSQL does.
func parseLSN(s string) (lsn, bool) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok || len(hi) == 0 || len(hi) > 8 || len(lo) == 0 || len(lo) > 8 {
		return 0, false
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return lsn(h<<32 | l), true
}

// ---- text values ----

// parseISODate reads "YYYY-MM-DD" with an optional " BC" (DateStyle ISO)
// into days since 1970-01-01; inf is +1/-1 for ±infinity.
func parseISODate(s string) (days int64, inf int, ok bool) {
	switch s {
	case "infinity":
		return 0, 1, true
	case "-infinity":
		return 0, -1, true
	}
	s, bc := strings.CutSuffix(s, " BC")
	y, m, d, ok := splitDate(s)
	if !ok {
		return 0, 0, false
	}
	if bc {
		y = 1 - y // 1 BC is year 0
	}
	return daysFromCivil(y, m, d), 0, true
}

// parseISOTimestamp reads a timestamp (withTZ false, taken as UTC, as the
// full load takes it) or timestamptz in DateStyle ISO, e.g.
// "2024-01-02 03:04:05.25+05:30" or "0044-03-15 12:00:00+05:53:28 BC",
// into µs since the Unix epoch.
func parseISOTimestamp(s string, withTZ bool) (us int64, inf int, ok bool) {
	switch s {
	case "infinity":
		return 0, 1, true
	case "-infinity":
		return 0, -1, true
	}
	s, bc := strings.CutSuffix(s, " BC")
	date, clock, found := strings.Cut(s, " ")
	if !found {
		return 0, 0, false
	}
	y, mo, d, ok := splitDate(date)
	if !ok {
		return 0, 0, false
	}
	if bc {
		y = 1 - y
	}
	var offset int64 // seconds east of UTC
	if withTZ {
		i := strings.LastIndexAny(clock, "+-")
		if i < 0 {
			return 0, 0, false
		}
		sign := int64(1)
		if clock[i] == '-' {
			sign = -1
		}
		var secs int64
		for k, part := range strings.Split(clock[i+1:], ":") {
			v, ok := digits(part, 2, 2)
			if !ok || k > 2 {
				return 0, 0, false
			}
			secs += v * [3]int64{3600, 60, 1}[k]
		}
		offset = sign * secs
		clock = clock[:i]
	}
	hms, frac, hasFrac := strings.Cut(clock, ".")
	parts := strings.Split(hms, ":")
	if len(parts) != 3 {
		return 0, 0, false
	}
	h, ok1 := digits(parts[0], 2, 2)
	mi, ok2 := digits(parts[1], 2, 2)
	sec, ok3 := digits(parts[2], 2, 2)
	if !ok1 || !ok2 || !ok3 || h > 24 || mi > 59 || sec > 60 {
		return 0, 0, false
	}
	var micros int64
	if hasFrac {
		f, ok := digits(frac, 1, 6)
		if !ok {
			return 0, 0, false
		}
		for n := len(frac); n < 6; n++ {
			f *= 10
		}
		micros = f
	}
	secsOfDay := h*3600 + mi*60 + sec - offset
	return daysFromCivil(y, mo, d)*86_400_000_000 + secsOfDay*1_000_000 + micros, 0, true
}

// splitDate reads "Y-MM-DD" with a year of at least 4 digits.
func splitDate(s string) (y, m, d int64, ok bool) {
	parts := strings.Split(s, "-")
	if len(parts) != 3 {
		return 0, 0, 0, false
	}
	y, ok1 := digits(parts[0], 4, 7)
	m, ok2 := digits(parts[1], 2, 2)
	d, ok3 := digits(parts[2], 2, 2)
	if !ok1 || !ok2 || !ok3 || m < 1 || m > 12 || d < 1 || d > 31 {
		return 0, 0, 0, false
	}
	return y, m, d, true
}

// digits reads between lo and hi decimal digits.
func digits(s string, lo, hi int) (int64, bool) {
	if len(s) < lo || len(s) > hi {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, true
}

// daysFromCivil is the number of days from 1970-01-01 to a date of the
// proleptic Gregorian calendar (astronomical years: 0 is 1 BC), after
// Howard Hinnant's days_from_civil.
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// decodeBytea reads bytea's text output, hex ("\x0aff") or escape format.
func decodeBytea(v []byte) ([]byte, bool) {
	if len(v) >= 2 && v[0] == '\\' && v[1] == 'x' {
		h := v[2:]
		if len(h)%2 != 0 {
			return nil, false
		}
		out := make([]byte, len(h)/2)
		for i := range out {
			hi, ok1 := unhex(h[2*i])
			lo, ok2 := unhex(h[2*i+1])
			if !ok1 || !ok2 {
				return nil, false
			}
			out[i] = hi<<4 | lo
		}
		return out, true
	}
	out := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		if v[i] != '\\' {
			out = append(out, v[i])
			continue
		}
		switch {
		case i+1 < len(v) && v[i+1] == '\\':
			out = append(out, '\\')
			i++
		case i+3 < len(v) && isOct(v[i+1]) && isOct(v[i+2]) && isOct(v[i+3]) && v[i+1] <= '3':
			out = append(out, (v[i+1]-'0')<<6|(v[i+2]-'0')<<3|(v[i+3]-'0'))
			i += 3
		default:
			return nil, false
		}
	}
	return out, true
}

func isOct(c byte) bool { return c >= '0' && c <= '7' }

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
