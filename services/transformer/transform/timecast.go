package transform

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"github.com/cutover/cutover/services/kit/calendar"
)

// What a target column's PostgreSQL type (ColumnMapping.pg_type) means for
// the time casts. The wire carries time and interval as text and both
// timestamp kinds as micros, so the type name tells them apart.
type pgKind uint8

const (
	kindOther    pgKind = iota
	kindTSZone          // timestamptz: zone-less values are read in the time zone
	kindTSWall          // timestamp without time zone: the wall time is kept
	kindTime            // time without time zone
	kindTimeZone        // time with time zone
	kindInterval        // interval
)

var typmod = regexp.MustCompile(`\([0-9, ]*\)`)

// kindOf reads format_type's spelling ("timestamp(3) without time zone",
// "time with time zone", "interval day to second").
func kindOf(m *commonv1.ColumnMapping) pgKind {
	t := strings.ToLower(strings.TrimSpace(typmod.ReplaceAllString(m.GetPgType(), "")))
	t = strings.Join(strings.Fields(t), " ")
	switch {
	case m.GetType() == tTS && (t == "timestamp" || t == "timestamp without time zone"):
		return kindTSWall
	case m.GetType() == tTS:
		return kindTSZone
	case m.GetType() != tText:
		return kindOther
	case t == "time" || t == "time without time zone":
		return kindTime
	case t == "timetz" || t == "time with time zone":
		return kindTimeZone
	case t == "interval" || strings.HasPrefix(t, "interval "):
		return kindInterval
	}
	return kindOther
}

// Fields a Go layout reads, found by rendering the reference time changed
// in one field at a time (the date changes keep the weekday).
type fieldSet uint8

const (
	fYear fieldSet = 1 << iota
	fMonth
	fDay
	fHour
	fMinute
	fSecond
	fFrac
	fZone

	fDate  = fYear | fMonth | fDay
	fClock = fHour | fMinute | fSecond | fFrac
)

var (
	refZone = time.FixedZone("AAA", -7*3600)
	refTime = time.Date(2006, 1, 2, 15, 4, 5, 123456789, refZone)
	// Each differs from refTime in one field only; 2034-01-02 and
	// 2006-10-02 are Mondays too.
	refVariants = []struct {
		f fieldSet
		t time.Time
	}{
		{fYear, time.Date(2034, 1, 2, 15, 4, 5, 123456789, refZone)},
		{fMonth, time.Date(2006, 10, 2, 15, 4, 5, 123456789, refZone)},
		{fDay, time.Date(2006, 1, 9, 15, 4, 5, 123456789, refZone)},
		{fHour, time.Date(2006, 1, 2, 16, 4, 5, 123456789, refZone)},
		{fMinute, time.Date(2006, 1, 2, 15, 7, 5, 123456789, refZone)},
		{fSecond, time.Date(2006, 1, 2, 15, 4, 8, 123456789, refZone)},
		{fFrac, time.Date(2006, 1, 2, 15, 4, 5, 987654321, refZone)},
		{fZone, time.Date(2006, 1, 2, 15, 4, 5, 123456789, time.FixedZone("BBB", 3*3600))},
	}
)

func layoutFields(layout string) fieldSet {
	ref := refTime.Format(layout)
	var fs fieldSet
	for _, v := range refVariants {
		if v.t.Format(layout) != ref {
			fs |= v.f
		}
	}
	return fs
}

// layout is one of a mapping's formats with the fields it reads.
type layout struct {
	s      string
	fields fieldSet
}

// timePlan is how a column casts time values beyond the built-in shapes.
type timePlan struct {
	kind    pgKind
	layouts []layout
	// loc reads zone-less values cast to a timestamptz column (nil: UTC,
	// or a column that keeps wall times).
	loc *time.Location
	// rec notes which rows each layout parses (dry runs; nil otherwise).
	rec *formatRecorder
}

// reformats: a time or interval column with formats, whose text the
// transformer parses and writes in PostgreSQL's form.
func (tp *timePlan) reformats() bool {
	return (tp.kind == kindTime || tp.kind == kindTimeZone || tp.kind == kindInterval) && len(tp.layouts) > 0
}

// checkFormats refuses a layout that cannot read a value of the column's
// type: one without the fields the type needs, with fields it cannot take,
// or that cannot read its own rendering of the reference time.
func checkFormats(field string, m *commonv1.ColumnMapping) error {
	if len(m.GetFormats()) == 0 {
		return nil
	}
	kind := kindOf(m)
	for j, f := range m.GetFormats() {
		ff := fmt.Sprintf("%s.formats[%d]", field, j)
		bad := func(why string) error {
			return &fieldError{ff, fmt.Sprintf("target column %q: format %q %s", m.GetTarget(), f, why), ErrInvalidMapping}
		}
		fs := layoutFields(f)
		switch {
		case m.GetType() != tTS && m.GetType() != tDate && kind == kindOther:
			tn := typeName(m)
			if m.GetPgType() != "" {
				tn = m.GetPgType()
			}
			return bad(fmt.Sprintf("cannot apply: formats are for timestamp, date, time and interval columns, and the column is %s", tn))
		case (m.GetType() == tTS || m.GetType() == tDate) && fs&fDate != fDate:
			return bad(fmt.Sprintf("does not read %s, which a %s needs (Go layout: 2006, 01 or Jan, 02)", missing(fs), typeName(m)))
		case (kind == kindTime || kind == kindTimeZone || kind == kindInterval) && fs&fClock == 0:
			return bad("reads no hour, minute or second (Go layout: 15 or 03 with PM, 04, 05, .000)")
		case kind == kindInterval && fs&(fDate|fZone) != 0:
			return bad("reads a date or a zone, which an interval cannot take: use clock fields only (15, 04, 05, .000)")
		}
		if _, err := time.Parse(f, refTime.Format(f)); err != nil {
			return bad(fmt.Sprintf("cannot read its own rendering %q of the reference time: %v", refTime.Format(f), err))
		}
	}
	return nil
}

func missing(fs fieldSet) string {
	var out []string
	for _, n := range []struct {
		f    fieldSet
		name string
	}{{fYear, "the year"}, {fMonth, "the month"}, {fDay, "the day"}} {
		if fs&n.f == 0 {
			out = append(out, n.name)
		}
	}
	return strings.Join(out, ", ")
}

// newTimePlan prepares the time casts of a mapping (formats already checked).
func newTimePlan(field string, m *commonv1.ColumnMapping, report bool) (timePlan, error) {
	tp := timePlan{kind: kindOf(m)}
	for _, f := range m.GetFormats() {
		tp.layouts = append(tp.layouts, layout{s: f, fields: layoutFields(f)})
	}
	if tz := m.GetTimeZone(); tz != "" {
		loc, err := calendar.LoadZone(tz)
		if err != nil {
			return tp, &fieldError{field + ".time_zone", fmt.Sprintf("target column %q: %v", m.GetTarget(), err), ErrInvalidMapping}
		}
		if tp.kind == kindTSZone && loc != time.UTC {
			tp.loc = loc
		}
	}
	if report && len(tp.layouts) > 0 && (m.GetType() == tTS || m.GetType() == tDate || tp.reformats()) {
		tp.rec = &formatRecorder{matches: make([]*commonv1.FormatMatch, len(tp.layouts))}
	}
	return tp, nil
}

// inZone reads a zone-less timestamp (micros of its wall time) in the
// column's zone.
func (tp *timePlan) inZone(us int64) (int64, error) {
	if tp.loc == nil {
		return us, nil
	}
	us = calendar.WallInstant(tp.loc, us)
	if us < minTS || us >= maxTS {
		return 0, errYear
	}
	return us, nil
}

// parseLayouts tries the layouts in order on the value's text; zoned says
// the matching layout read an offset or zone.
func (tp *timePlan) parseLayouts(s string) (t time.Time, zoned, ok bool) {
	for _, l := range tp.layouts {
		if t, err := time.Parse(l.s, s); err == nil {
			return t, l.fields&fZone != 0, true
		}
	}
	return time.Time{}, false, false
}

var (
	canonTime     = regexp.MustCompile(`^[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?$`)
	canonTimeZone = regexp.MustCompile(`^[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([+-][0-9]{2}(:?[0-9]{2})?)?$`)
	canonInterval = regexp.MustCompile(`^-?[0-9]+:[0-9]{2}:[0-9]{2}(\.[0-9]+)?$`)
)

// appendClock casts text to a time or interval column with formats: the
// first layout that reads it decides, and the value is written as
// PostgreSQL reads it (HH:MM:SS[.f], with the offset for time with time
// zone when the layout read one). A value no layout reads passes only in
// that canonical form.
func (tp *timePlan) appendClock(dst []byte, v []byte) ([]byte, error) {
	s := strings.TrimSpace(string(v))
	t, zoned, ok := tp.parseLayouts(s)
	if !ok {
		canon, shape := canonTime, "HH:MM:SS[.ffffff]"
		switch tp.kind {
		case kindTimeZone:
			canon, shape = canonTimeZone, "HH:MM:SS[.ffffff][±HH[:MM]]"
		case kindInterval:
			canon, shape = canonInterval, "[-]H:MM:SS[.ffffff]"
		}
		if canon.MatchString(s) {
			return append(dst, s...), nil
		}
		fs := make([]string, len(tp.layouts))
		for i, l := range tp.layouts {
			fs[i] = l.s
		}
		return dst, fmt.Errorf("matches none of the formats %q (nor %s)", fs, shape)
	}
	dst = appendHMS(dst, t.Hour(), t.Minute(), t.Second(), t.Nanosecond())
	if zoned && tp.kind == kindTimeZone {
		_, off := t.Zone()
		sign := byte('+')
		if off < 0 {
			sign, off = '-', -off
		}
		dst = append(dst, sign)
		dst = append2(dst, off/3600)
		dst = append(dst, ':')
		dst = append2(dst, off/60%60)
	}
	return dst, nil
}

func appendHMS(dst []byte, h, m, s, ns int) []byte {
	dst = append2(dst, h)
	dst = append(dst, ':')
	dst = append2(dst, m)
	dst = append(dst, ':')
	dst = append2(dst, s)
	if ns > 0 {
		frac := strconv.AppendInt(nil, int64(ns)+1e9, 10)[1:] // 9 digits
		for len(frac) > 0 && frac[len(frac)-1] == '0' {
			frac = frac[:len(frac)-1]
		}
		dst = append(dst, '.')
		dst = append(dst, frac...)
	}
	return dst
}

func append2(dst []byte, n int) []byte {
	return append(dst, byte('0'+n/10%10), byte('0'+n%10))
}

// formatRecorder notes, per layout, the rows whose value it parses
// (TransformConfig.report_formats).
type formatRecorder struct {
	row     int
	matches []*commonv1.FormatMatch
}

// reset starts a batch.
func (r *formatRecorder) reset(target string, layouts []layout) {
	for j, l := range layouts {
		r.matches[j] = &commonv1.FormatMatch{Column: target, Format: l.s}
	}
}

// try notes which layouts parse v, the text of the current row.
func (tp *timePlan) try(v []byte) {
	r := tp.rec
	s := strings.TrimSpace(string(v))
	if s == "" {
		return
	}
	for j, l := range tp.layouts {
		m := r.matches[j]
		m.Tried = batch.SetBit(m.Tried, r.row)
		if _, err := time.Parse(l.s, s); err == nil {
			m.Matched = batch.SetBit(m.Matched, r.row)
		}
	}
}
