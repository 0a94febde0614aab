package transform

import (
	"strings"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	transformerv1 "github.com/cutover/cutover/gen/cutover/transformer/v1"
	"github.com/cutover/cutover/services/kit/batch"
)

func timeCol(pgType string, formats ...string) *commonv1.ColumnMapping {
	return &commonv1.ColumnMapping{Type: tText, PgType: pgType, Formats: formats}
}

// TestTimeAndIntervalFormats: formats decide how a time or interval
// column's text is read; the value is written as PostgreSQL reads it.
func TestTimeAndIntervalFormats(t *testing.T) {
	const tm, tmz, iv = "time without time zone", "time with time zone", "interval"
	tests := []struct {
		m        *commonv1.ColumnMapping
		in, want string // want: output text, "NULL", or a prefix of "reject <rule>: <reason>"
	}{
		// The report: MM:SS.ff is not PostgreSQL's HH:MM reading.
		{timeCol(tm, "04:05.00"), "00:05.02", "00:00:05.02"},
		{timeCol(tm, "04:05.00"), "12:30.50", "00:12:30.5"},
		{timeCol(tm, "15:04.05"), "00:05.02", "00:05:02"},
		{timeCol(tm, "15:04.05"), "23:59.59", "23:59:59"},
		{timeCol("time(3) without time zone", "15:04.05"), "07:08.09", "07:08:09"},
		{timeCol(tm, "3:04 PM", "15h04"), "9:15 PM", "21:15:00"},
		{timeCol(tm, "3:04 PM", "15h04"), "12:00 AM", "00:00:00"},
		{timeCol(tm, "3:04 PM", "15h04"), "07h45", "07:45:00"},
		{timeCol(tm, "15:04:05.000000"), "10:11:12.000001", "10:11:12.000001"},
		{timeCol(tm, "2006-01-02 15:04"), "2024-03-05 10:30", "10:30:00"}, // the date is dropped, as PostgreSQL does
		{timeCol(tm, "04:05.00"), "  00:05.02 ", "00:00:05.02"},
		// A value no format reads passes only in PostgreSQL's own form.
		{timeCol(tm, "04:05.00"), "10:30:00", "10:30:00"},
		{timeCol(tm, "04:05.00"), "10:30:00.25", "10:30:00.25"},
		{timeCol(tm, "04:05.00"), "10:30", `reject cast: column out: cannot cast "10:30" to text: matches none of the formats ["04:05.00"] (nor HH:MM:SS[.ffffff])`},
		{timeCol(tm, "04:05.00"), "61:00.00", `reject cast: column out: cannot cast "61:00.00" to text: matches none of the formats`},
		{timeCol(tm, "04:05.00"), "", "NULL"},
		{timeCol(tm, "04:05.00"), "   ", "reject cast: "},
		// time with time zone keeps the offset a layout reads.
		{timeCol(tmz, "15:04 -07:00"), "10:00 +02:00", "10:00:00+02:00"},
		{timeCol(tmz, "15:04 -07:00"), "10:00 -03:30", "10:00:00-03:30"},
		{timeCol(tmz, "15:04"), "10:00", "10:00:00"},
		{timeCol(tmz, "15:04"), "10:00:00+01", "10:00:00+01"},
		// interval: the clock fields are a duration since midnight.
		{timeCol(iv, "04:05.00"), "12:30.50", "00:12:30.5"},
		{timeCol(iv, "04:05"), "12:30", "00:12:30"}, // not 12 h 30 min
		{timeCol(iv, "15h04m"), "03h15m", "03:15:00"},
		{timeCol(iv, "05.000"), "07.125", "00:00:07.125"},
		{timeCol("interval day to second", "04:05"), "01:02", "00:01:02"},
		{timeCol(iv, "04:05"), "125:00:00", "125:00:00"},
		{timeCol(iv, "04:05"), "-0:00:05", "-0:00:05"},
		{timeCol(iv, "04:05"), "1 day", `reject cast: column out: cannot cast "1 day" to text: matches none of the formats ["04:05"] (nor [-]H:MM:SS[.ffffff])`},
		{timeCol(iv, "04:05"), "", "NULL"},
		// Without formats the text goes to PostgreSQL as it is.
		{timeCol(tm), "00:05.02", "00:05.02"},
		{timeCol(iv), "1 day", "1 day"},
		{timeCol(iv), "", ""},
	}
	for _, tc := range tests {
		got := castOne(t, tc.m, tc.in)
		if got != tc.want && !(strings.HasPrefix(tc.want, "reject ") && strings.HasPrefix(got, tc.want)) {
			t.Errorf("%s %q %q: got %q, want %q", tc.m.PgType, tc.m.Formats, tc.in, got, tc.want)
		}
	}
}

// castMicros pushes one column through Apply and returns the micros of
// row 0, or the reject reason.
func castMicros(t *testing.T, m *commonv1.ColumnMapping, col *commonv1.Column) (int64, string) {
	t.Helper()
	m.Target, m.Source = "out", col.Name
	out, err := Apply(&transformerv1.TransformConfig{Columns: []*commonv1.ColumnMapping{m}}, &commonv1.Batch{NumRows: 1, Columns: []*commonv1.Column{col}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Rejects) > 0 {
		return 0, out.Rejects[0].Reason
	}
	return out.Columns[0].Ints[0], ""
}

func tzText(s string) *commonv1.Column {
	b := batch.NewBuilder("v", tText, 1)
	b.AppendString(s)
	return b.Column()
}

func tzInt(typ commonv1.ColumnType, v int64) *commonv1.Column {
	b := batch.NewBuilder("v", typ, 1)
	b.AppendInt(v)
	return b.Column()
}

// TestTimeZoneOfZonelessValues: a zone-less value cast to timestamptz is a
// wall time in the column's time zone; one with an offset, or into a
// zone-less timestamp column, is not shifted. The expected instants come
// from package time, and at DST changes from PostgreSQL's documented rule.
func TestTimeZoneOfZonelessValues(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	in := func(loc *time.Location, y int, mo time.Month, d, h, mi, s int) int64 {
		return time.Date(y, mo, d, h, mi, s, 0, loc).UnixMicro()
	}
	tz := func(pg string, formats ...string) *commonv1.ColumnMapping {
		return &commonv1.ColumnMapping{Type: tTS, PgType: pg, TimeZone: "Europe/Berlin", Formats: formats}
	}
	const withTZ, wall = "timestamp with time zone", "timestamp(3) without time zone"
	tests := []struct {
		name string
		m    *commonv1.ColumnMapping
		col  *commonv1.Column
		want int64
	}{
		{"winter text", tz(withTZ), tzText("2024-01-15 12:00:00"), in(berlin, 2024, 1, 15, 12, 0, 0)},
		{"summer text", tz(withTZ), tzText("2024-07-15 12:00:00"), in(berlin, 2024, 7, 15, 12, 0, 0)},
		{"summer text T", tz(withTZ), tzText("2024-07-15T12:00"), in(berlin, 2024, 7, 15, 12, 0, 0)},
		{"date text", tz(withTZ), tzText("2024-07-15"), in(berlin, 2024, 7, 15, 0, 0, 0)},
		{"offset kept", tz(withTZ), tzText("2024-07-15 12:00:00+00:00"), in(time.UTC, 2024, 7, 15, 12, 0, 0)},
		{"Z kept", tz(withTZ), tzText("2024-07-15T12:00:00Z"), in(time.UTC, 2024, 7, 15, 12, 0, 0)},
		{"offset -05", tz(withTZ), tzText("2024-07-15 12:00:00-05"), in(time.UTC, 2024, 7, 15, 17, 0, 0)},
		{"layout without zone", tz(withTZ, "02/01/2006 15:04"), tzText("15/07/2024 12:00"), in(berlin, 2024, 7, 15, 12, 0, 0)},
		{"layout with zone", tz(withTZ, "02/01/2006 15:04 -0700"), tzText("15/07/2024 12:00 +0000"), in(time.UTC, 2024, 7, 15, 12, 0, 0)},
		{"empty pg_type is timestamptz", &commonv1.ColumnMapping{Type: tTS, TimeZone: "Europe/Berlin"}, tzText("2024-01-15 12:00"), in(berlin, 2024, 1, 15, 12, 0, 0)},
		// PostgreSQL: in the gap the offset before the change (02:30 CET =
		// 01:30 UTC); twice, the offset after it (02:30 CET = 01:30 UTC).
		{"gap", tz(withTZ), tzText("2024-03-31 02:30:00"), in(time.UTC, 2024, 3, 31, 1, 30, 0)},
		{"twice", tz(withTZ), tzText("2024-10-27 02:30:00"), in(time.UTC, 2024, 10, 27, 1, 30, 0)},
		// Typed zone-less values (MySQL DATETIME, PostgreSQL timestamp)
		// carry their wall time as UTC micros.
		{"typed winter", tz(withTZ), tzInt(tTS, in(time.UTC, 2024, 1, 15, 12, 0, 0)), in(berlin, 2024, 1, 15, 12, 0, 0)},
		{"typed summer", tz(withTZ), tzInt(tTS, in(time.UTC, 2024, 7, 15, 12, 0, 0)), in(berlin, 2024, 7, 15, 12, 0, 0)},
		{"typed date", tz(withTZ), tzInt(tDate, in(time.UTC, 2024, 7, 15, 0, 0, 0)/usPerDay), in(berlin, 2024, 7, 15, 0, 0, 0)},
		// Into a zone-less column the wall time stays.
		{"wall text", tz(wall), tzText("2024-07-15 12:00:00"), in(time.UTC, 2024, 7, 15, 12, 0, 0)},
		{"wall typed", tz(wall), tzInt(tTS, in(time.UTC, 2024, 7, 15, 12, 0, 0)), in(time.UTC, 2024, 7, 15, 12, 0, 0)},
		{"wall layout", tz(wall, "02/01/2006 15:04"), tzText("15/07/2024 12:00"), in(time.UTC, 2024, 7, 15, 12, 0, 0)},
		// No zone: UTC, as before.
		{"no zone", &commonv1.ColumnMapping{Type: tTS, PgType: withTZ}, tzText("2024-07-15 12:00:00"), in(time.UTC, 2024, 7, 15, 12, 0, 0)},
		{"no zone typed", &commonv1.ColumnMapping{Type: tTS, PgType: withTZ}, tzInt(tTS, 42), 42},
	}
	for _, tc := range tests {
		got, reason := castMicros(t, tc.m, tc.col)
		if reason != "" || got != tc.want {
			t.Errorf("%s: got %s %s, want %s", tc.name, time.UnixMicro(got).UTC(), reason, time.UnixMicro(tc.want).UTC())
		}
	}
	// A default is read in the zone too.
	m := tz(withTZ)
	def := "2024-07-15 12:00"
	m.Default = &def
	b := batch.NewBuilder("v", tText, 1)
	b.AppendNull()
	if got, _ := castMicros(t, m, b.Column()); got != in(berlin, 2024, 7, 15, 12, 0, 0) {
		t.Errorf("default: got %s", time.UnixMicro(got).UTC())
	}
	// Shifted out of the years a timestamp holds: a reject, not a wrap.
	m = &commonv1.ColumnMapping{Type: tTS, PgType: withTZ, TimeZone: "Asia/Tokyo"}
	if _, reason := castMicros(t, m, tzText("0001-01-01 00:00:00")); !strings.Contains(reason, "year out of range") {
		t.Errorf("out of range: %q", reason)
	}
	m = &commonv1.ColumnMapping{Type: tTS, PgType: withTZ, TimeZone: "Mars/Olympus"}
	if _, err := Apply(&transformerv1.TransformConfig{Columns: []*commonv1.ColumnMapping{m}}, textBatch()); err == nil ||
		!strings.Contains(err.Error(), "columns[0].time_zone") || !strings.Contains(err.Error(), "Mars/Olympus") {
		t.Errorf("bad zone: %v", err)
	}
}

// TestFormatsRefusedUpFront: a layout that cannot read a value of the
// column's type is refused at CheckMapping, naming the column and format.
func TestFormatsRefusedUpFront(t *testing.T) {
	tests := []struct {
		m    *commonv1.ColumnMapping
		want string // "" = accepted
	}{
		{&commonv1.ColumnMapping{Type: tTS, Formats: []string{"02/01/2006 15:04", "Jan 2 2006"}}, ""},
		{&commonv1.ColumnMapping{Type: tTS, Formats: []string{"2006-002 15:04"}}, ""},
		{&commonv1.ColumnMapping{Type: tDate, Formats: []string{"02.01.2006"}}, ""},
		{timeCol("time without time zone", "04:05.00", "3:04 PM", "2006-01-02 15:04"), ""},
		{timeCol("time with time zone", "15:04 -07:00"), ""},
		{timeCol("interval", "15h04m", "05.000"), ""},
		{&commonv1.ColumnMapping{Type: tTS, Formats: []string{"15:04"}}, `format "15:04" does not read the year, the month, the day, which a timestamptz needs`},
		{&commonv1.ColumnMapping{Type: tTS, Formats: []string{"02/01 15:04"}}, `format "02/01 15:04" does not read the year`},
		{&commonv1.ColumnMapping{Type: tDate, Formats: []string{"2006-01"}}, `format "2006-01" does not read the day, which a date needs`},
		{&commonv1.ColumnMapping{Type: tDate, Formats: []string{"dd.mm.yyyy"}}, `format "dd.mm.yyyy" does not read the year, the month, the day`},
		{timeCol("time without time zone", "2006-01-02"), `format "2006-01-02" reads no hour, minute or second`},
		{timeCol("time without time zone", "HH:MM:SS"), `format "HH:MM:SS" reads no hour`},
		{timeCol("interval", "2006-01-02 15:04"), `format "2006-01-02 15:04" reads a date or a zone, which an interval cannot take`},
		{timeCol("interval", "15:04 MST"), `reads a date or a zone`},
		{timeCol("text", "15:04"), `format "15:04" cannot apply: formats are for timestamp, date, time and interval columns, and the column is text`},
		{timeCol("", "15:04"), `the column is text`},
		{&commonv1.ColumnMapping{Type: tInt, Formats: []string{"2006"}}, `the column is bigint`},
		{&commonv1.ColumnMapping{Type: tTS, Formats: []string{"2006-01-02 15:04:05.000000000000"}}, `cannot read its own rendering`},
	}
	for _, tc := range tests {
		m := tc.m
		m.Target, m.Source = "col_x", "v"
		err := CheckMapping(&transformerv1.CheckMappingRequest{Columns: []*commonv1.ColumnMapping{m},
			SourceColumns: []*commonv1.SourceColumn{{Name: "v", Type: tText}}, FieldPrefix: "tables[1]"})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q on %s: refused: %v", m.Formats, m.PgType, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) ||
			!strings.Contains(err.Error(), `tables[1].columns[0].formats[`) || !strings.Contains(err.Error(), `"col_x"`)):
			t.Errorf("%q on %s: got %v, want field, column and %q", m.Formats, m.PgType, err, tc.want)
		}
	}
}

// TestReportFormats: with report_formats each batch says which rows each
// format parses, whether or not an earlier shape took the value.
func TestReportFormats(t *testing.T) {
	m := &commonv1.ColumnMapping{Target: "d", Source: "v", Type: tDate, Formats: []string{"02/01/2006", "2006.01.02"}}
	iv := &commonv1.ColumnMapping{Target: "i", Source: "v", Type: tText, PgType: "interval", Formats: []string{"04:05"}}
	txt := &commonv1.ColumnMapping{Target: "t", Source: "v", Type: tText}
	vals := []string{"2024-01-05", "05/01/2024", "", "junk"}
	b := batch.NewBuilder("v", tText, len(vals))
	for _, v := range vals {
		b.AppendString(v)
	}
	in := &commonv1.Batch{NumRows: int32(len(vals)), Columns: []*commonv1.Column{b.Column()}}
	out, err := Apply(&transformerv1.TransformConfig{Columns: []*commonv1.ColumnMapping{m, iv, txt}, ReportFormats: true}, in)
	if err != nil {
		t.Fatal(err)
	}
	rows := func(bm []byte) []int {
		var r []int
		for i := range vals {
			if batch.Bit(bm, i) {
				r = append(r, i)
			}
		}
		return r
	}
	var got []string
	for _, fm := range out.FormatMatches {
		got = append(got, fmtRows(fm.Column, fm.Format, rows(fm.Tried), rows(fm.Matched)))
	}
	want := []string{
		fmtRows("d", "02/01/2006", []int{0, 1, 3}, []int{1}),
		fmtRows("d", "2006.01.02", []int{0, 1, 3}, nil),
		fmtRows("i", "04:05", []int{0, 1, 3}, nil),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("format matches:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Without the flag nothing is reported.
	out, err = Apply(&transformerv1.TransformConfig{Columns: []*commonv1.ColumnMapping{m}}, in)
	if err != nil || len(out.FormatMatches) != 0 {
		t.Errorf("unasked: %v %v", out.GetFormatMatches(), err)
	}
}

func fmtRows(col, f string, tried, matched []int) string {
	var b strings.Builder
	b.WriteString(col + " " + f + " tried")
	for _, r := range tried {
		b.WriteString(" " + string(rune('0'+r)))
	}
	b.WriteString(" matched")
	for _, r := range matched {
		b.WriteString(" " + string(rune('0'+r)))
	}
	return b.String()
}
