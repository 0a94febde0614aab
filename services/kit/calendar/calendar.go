// Package calendar is proleptic Gregorian day arithmetic without time.Time
// (Howard Hinnant's days_from_civil and civil_from_days), for the hot paths
// that turn dates into the wire's day numbers and back.
package calendar

// Integer is the integer types callers keep years, months and days in.
type Integer interface{ ~int | ~int64 }

// IsLeap reports whether y is a leap year (astronomical numbering).
func IsLeap[T Integer](y T) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

// DaysIn is the number of days in month m (1-12) of year y.
func DaysIn[T Integer](y, m T) T {
	switch m {
	case 2:
		if IsLeap(y) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// Days is the number of days from 1970-01-01 to y-m-d. It does not check
// the date: callers validate month and day first.
func Days[T Integer](y, m, d T) int64 {
	yy, mm, dd := int64(y), int64(m), int64(d)
	if mm <= 2 {
		yy--
	}
	era := yy / 400
	if yy < 0 && yy%400 != 0 {
		era-- // floor division
	}
	yoe := yy - era*400
	mp := (mm + 9) % 12
	doy := (153*mp+2)/5 + dd - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// Civil is the date days after 1970-01-01, for |days| below 2^62.
func Civil(days int64) (y, m, d int64) {
	z := days + 719468
	era := z
	if era < 0 {
		era -= 146096 // floor division
	}
	era /= 146097
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	if mp < 10 {
		m = mp + 3
	} else {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}
