package reconcile

import (
	"math"
	"strconv"

	"github.com/cutover/cutover/services/kit/calendar"
)

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
