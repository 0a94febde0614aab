package clean

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func fm(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestDateLayouts(t *testing.T) {
	iso := fm("formats", "YYYY-MM-DD")
	slash := fm("formats", "YYYY/M/D|YYYYMMDD")
	runCases(t, "date", []tcase{
		{name: "iso", args: iso, in: "2023-01-05", want: "2023-01-05"},
		{name: "blanks around", args: iso, in: " \u3000 2023-01-05\t", want: "2023-01-05"},
		{name: "leap day", args: iso, in: "2024-02-29", want: "2024-02-29"},
		{name: "no leap day", args: iso, in: "2023-02-29", err: true, want: `"2023-02-29" is an impossible date: day 29 does not exist in 2023-02`},
		{name: "feb 30", args: iso, in: "2023-02-30", err: true, want: `"2023-02-30" is an impossible date: day 30 does not exist in 2023-02`},
		{name: "month 13", args: iso, in: "2023-13-01", err: true, want: `"2023-13-01" is an impossible date: month 13 does not exist`},
		{name: "year 0", args: iso, in: "0000-01-01", err: true, want: `"0000-01-01" is an impossible date: year 0 is out of range 1..9999`},
		{name: "short fields", args: iso, in: "2023-1-5", err: true, want: `"2023-1-5" is not a date in any of the formats YYYY-MM-DD`},
		{name: "empty", args: iso, in: "", err: true, want: `"" is not a date in any of the formats YYYY-MM-DD`},
		{name: "whitespace only", args: iso, in: "   ", err: true, want: `"   " is not a date in any of the formats YYYY-MM-DD`},
		{name: "trailing junk", args: iso, in: "2023-01-05x", err: true, want: `"2023-01-05x" is not a date in any of the formats YYYY-MM-DD`},
		{name: "sign", args: iso, in: "-2023-01-05", err: true, want: `"-2023-01-05" is not a date in any of the formats YYYY-MM-DD`},
		{name: "one digit", args: slash, in: "2023/1/5", want: "2023-01-05"},
		{name: "two digits in M", args: slash, in: "2023/12/31", want: "2023-12-31"},
		{name: "three digits in M", args: slash, in: "2023/123/1", err: true, want: `"2023/123/1" is not a date in any of the formats YYYY/M/D, YYYYMMDD`},
		{name: "compact", args: slash, in: "20230105", want: "2023-01-05"},
		{name: "compact impossible", args: slash, in: "20230230", err: true, want: `"20230230" is an impossible date: day 30 does not exist in 2023-02`},
		{name: "time refused for out=date", args: fm("formats", "YYYY-MM-DD HH:mm"), in: "2023-01-05 14:30", err: true, want: `"2023-01-05 14:30" has a time of day; use out=timestamptz`},
		{name: "midnight fine for out=date", args: fm("formats", "YYYY-MM-DD HH:mm"), in: "2023-01-05 00:00", want: "2023-01-05"},
		{name: "quoted literal", args: fm("formats", "'D'YYYYMMDD"), in: "D20230105", want: "2023-01-05"},
		{name: "two-digit year", args: fm("formats", "DD/MM/YY", "pivot", "50"), in: "05/01/23", want: "2023-01-05"},
		{name: "two-digit year before pivot", args: fm("formats", "DD/MM/YY", "pivot", "50"), in: "05/01/87", want: "1987-01-05"},
		{name: "two-digit year at pivot", args: fm("formats", "DD/MM/YY", "pivot", "50"), in: "05/01/50", want: "1950-01-05"},
	})
}

func TestDateAmbiguity(t *testing.T) {
	both := fm("formats", "DD-MM-YYYY|MM-DD-YYYY")
	runCases(t, "date", []tcase{
		{name: "ambiguous", args: both, in: "05-01-2023", err: true, want: "ambiguous day/month: 05-01-2023 could be 2023-01-05 or 2023-05-01"},
		{name: "only dmy valid", args: both, in: "13-01-2023", want: "2023-01-13"},
		{name: "only mdy valid", args: both, in: "01-13-2023", want: "2023-01-13"},
		{name: "both read the same", args: both, in: "05-05-2023", want: "2023-05-05"},
		{name: "neither valid", args: both, in: "13-13-2023", err: true, want: `"13-13-2023" is an impossible date: month 13 does not exist`},
		{name: "prefer dmy", args: fm("formats", "DD-MM-YYYY|MM-DD-YYYY", "prefer", "dmy"), in: "05-01-2023", want: "2023-01-05"},
		{name: "prefer mdy", args: fm("formats", "DD-MM-YYYY|MM-DD-YYYY", "prefer", "mdy"), in: "05-01-2023", want: "2023-05-01"},
		{name: "prefer does not override validity", args: fm("formats", "DD-MM-YYYY|MM-DD-YYYY", "prefer", "mdy"), in: "13-01-2023", want: "2023-01-13"},
		{name: "variable widths", args: fm("formats", "D/M/YYYY|M/D/YYYY"), in: "5/1/2023", err: true, want: "ambiguous day/month: 5/1/2023 could be 2023-01-05 or 2023-05-01"},
		{name: "excel vs unix", args: fm("formats", "excel|unix"), in: "44931", err: true, want: "ambiguous date: 44931 could be 1970-01-01 or 2023-01-05"},
		{name: "compact vs unix", args: fm("formats", "YYYYMMDD|unix"), in: "20230105", err: true, want: "ambiguous date: 20230105 could be 1970-08-23 or 2023-01-05"},
	})
}

func TestDateChinese(t *testing.T) {
	cn := fm("formats", "YYYY年M月D日|YYYY-MM-DD")
	runCases(t, "date", []tcase{
		{name: "ascii digits", args: cn, in: "2023年1月5日", want: "2023-01-05"},
		{name: "full width digits", args: cn, in: "２０２３年１月５日", want: "2023-01-05"},
		{name: "full width iso", args: cn, in: "２０２３－０１－０５", want: "2023-01-05"},
		{name: "numerals", args: cn, in: "二〇二三年一月五日", want: "2023-01-05"},
		{name: "numerals with ten", args: cn, in: "二〇二三年十二月三十一日", want: "2023-12-31"},
		{name: "ling", args: cn, in: "二零二三年十月十日", want: "2023-10-10"},
		{name: "numerals impossible", args: cn, in: "二〇二三年二月三十日", err: true, want: `"二〇二三年二月三十日" is an impossible date: day 30 does not exist in 2023-02`},
		{name: "bad numeral", args: cn, in: "二〇二三年十十月一日", err: true, want: `"二〇二三年十十月一日" is not a date in any of the formats YYYY年M月D日, YYYY-MM-DD`},
		{name: "ten with zero", args: cn, in: "二〇二三年二十〇月一日", err: true, want: `"二〇二三年二十〇月一日" is not a date in any of the formats YYYY年M月D日, YYYY-MM-DD`},
		{name: "mixed", args: cn, in: "2023年十二月5日", want: "2023-12-05"},
		{name: "missing day char", args: cn, in: "2023年1月5", err: true, want: `"2023年1月5" is not a date in any of the formats YYYY年M月D日, YYYY-MM-DD`},
	})
}

func TestDateExcelUnix(t *testing.T) {
	ex := fm("formats", "excel")
	exTS := fm("formats", "excel", "out", "timestamptz")
	ux := fm("formats", "unix")
	runCases(t, "date", []tcase{
		{name: "excel", args: ex, in: "44931", want: "2023-01-05"},
		{name: "excel 1", args: ex, in: "1", want: "1900-01-01"},
		{name: "excel 59", args: ex, in: "59", want: "1900-02-28"},
		{name: "excel 60", args: ex, in: "60", err: true, want: `"60" is Excel serial 60, the day 1900-02-29 that does not exist (Excel's leap-year bug)`},
		{name: "excel 61", args: ex, in: "61", want: "1900-03-01"},
		{name: "excel 0", args: ex, in: "0", err: true, want: `"0" is Excel serial 0, which is not a date (1900-01-00)`},
		{name: "excel negative", args: ex, in: "-3", err: true, want: `"-3" is out of range for an Excel serial`},
		{name: "excel max", args: ex, in: "2958465", want: "9999-12-31"},
		{name: "excel past max", args: ex, in: "2958466", err: true, want: `"2958466" is out of range for an Excel serial`},
		{name: "excel huge", args: ex, in: "99999999999999999999", err: true, want: `"99999999999999999999" is out of range for an Excel serial`},
		{name: "excel 1904", args: fm("formats", "excel", "excel1904", "true"), in: "0", want: "1904-01-01"},
		{name: "excel 1904 same day", args: fm("formats", "excel", "excel1904", "true"), in: "43469", want: "2023-01-05"},
		{name: "excel fraction refused for date", args: ex, in: "44931.5", err: true, want: `"44931.5" has a time of day; use out=timestamptz`},
		{name: "excel .0 fine", args: ex, in: "44931.0", want: "2023-01-05"},
		{name: "excel time", args: exTS, in: "44931.5", want: "2023-01-05T12:00:00Z"},
		{name: "excel float noise", args: exTS, in: "44931.604166666664", want: "2023-01-05T14:30:00Z"},
		{name: "excel rounds to midnight", args: exTS, in: "44931.99999999999999", err: true, want: `"44931.99999999999999" is an Excel serial whose time of day rounds to 24:00`},
		{name: "excel in tz", args: fm("formats", "excel", "out", "timestamptz", "tz", "Asia/Shanghai"), in: "44931.25", want: "2023-01-05T06:00:00+08:00"},
		{name: "excel junk", args: ex, in: "44931.5.1", err: true, want: `"44931.5.1" is not a date in any of the formats excel`},
		{name: "unix", args: ux, in: "1672876800", want: "2023-01-05"},
		{name: "unix date in to_tz", args: fm("formats", "unix", "to_tz", "America/New_York"), in: "1672876800", want: "2023-01-04"},
		{name: "unix ts", args: fm("formats", "unix", "out", "timestamptz", "to_tz", "Asia/Shanghai"), in: "1672876800", want: "2023-01-05T08:00:00+08:00"},
		{name: "unix negative", args: fm("formats", "unix", "out", "timestamptz"), in: "-1", want: "1969-12-31T23:59:59Z"},
		{name: "unix ms", args: fm("formats", "unix", "out", "timestamptz", "unit", "ms"), in: "1672876800123", want: "2023-01-05T00:00:00.123Z"},
		{name: "unix negative ms", args: fm("formats", "unix", "out", "timestamptz", "unit", "ms"), in: "-1", want: "1969-12-31T23:59:59.999Z"},
		{name: "unix fraction", args: ux, in: "1672876800.5", err: true, want: `"1672876800.5" is not a date in any of the formats unix`},
		{name: "unix too big", args: ux, in: "253402300800", err: true, want: `"253402300800" is out of range for Unix time`},
		{name: "unix huge", args: ux, in: "99999999999999999999999", err: true, want: `"99999999999999999999999" is out of range for Unix time`},
	})
}

func TestDateTimestamps(t *testing.T) {
	sh := fm("formats", "YYYY-MM-DD HH:mm:ss", "out", "timestamptz", "tz", "Asia/Shanghai")
	ny := fm("formats", "YYYY-MM-DD HH:mm", "out", "timestamptz", "tz", "America/New_York")
	off := fm("formats", "YYYY-MM-DD'T'HH:mm:ss.FZ|YYYY-MM-DD'T'HH:mm:ssZ", "out", "timestamptz")
	runCases(t, "date", []tcase{
		{name: "wall in tz", args: sh, in: "2023-01-05 14:30:00", want: "2023-01-05T14:30:00+08:00"},
		{name: "to utc", args: fm("formats", "YYYY-MM-DD HH:mm:ss", "out", "timestamptz", "tz", "Asia/Shanghai", "to_tz", "UTC"), in: "2023-01-05 14:30:00", want: "2023-01-05T06:30:00Z"},
		{name: "hour 24", args: sh, in: "2023-01-05 24:00:00", err: true, want: `"2023-01-05 24:00:00" is an impossible time: hour 24 is out of range`},
		{name: "second 60", args: sh, in: "2023-01-05 23:59:60", err: true, want: `"2023-01-05 23:59:60" is an impossible time: second 60 is out of range`},
		{name: "dst gap", args: ny, in: "2023-03-12 02:30", err: true, want: `"2023-03-12 02:30" does not exist in America/New_York (skipped by a clock change)`},
		{name: "dst overlap", args: ny, in: "2023-11-05 01:30", err: true, want: `"2023-11-05 01:30" happens twice in America/New_York (clock change); use a format with an offset`},
		{name: "dst normal", args: ny, in: "2023-07-01 12:00", want: "2023-07-01T12:00:00-04:00"},
		{name: "date only is midnight", args: fm("formats", "YYYY-MM-DD", "out", "timestamptz", "tz", "Asia/Shanghai"), in: "2023-01-05", want: "2023-01-05T00:00:00+08:00"},
		{name: "offset", args: off, in: "2023-01-05T14:30:00.5+08:00", want: "2023-01-05T06:30:00.5Z"},
		{name: "offset compact", args: off, in: "2023-01-05T14:30:00-0530", want: "2023-01-05T20:00:00Z"},
		{name: "offset Z", args: off, in: "2023-01-05T14:30:00.123456Z", want: "2023-01-05T14:30:00.123456Z"},
		{name: "fraction too long", args: off, in: "2023-01-05T14:30:00.1234567Z", err: true, want: `"2023-01-05T14:30:00.1234567Z" is not a date in any of the formats YYYY-MM-DD'T'HH:mm:ss.FZ, YYYY-MM-DD'T'HH:mm:ssZ`},
		{name: "offset out of range", args: off, in: "2023-01-05T14:30:00+16:00", err: true, want: `"2023-01-05T14:30:00+16:00" is not a date in any of the formats YYYY-MM-DD'T'HH:mm:ss.FZ, YYYY-MM-DD'T'HH:mm:ssZ`},
		{name: "offset date kept for out=date", args: fm("formats", "YYYY-MM-DDZ"), in: "2023-01-05+08", want: "2023-01-05"},
		{name: "year 1 in east zone", args: fm("formats", "YYYY-MM-DD", "out", "timestamptz", "tz", "Asia/Tokyo", "to_tz", "UTC"), in: "0001-01-01", err: true, want: `"0001-01-01" is out of range 0001..9999`},
	})
}

func TestDateCompileErrors(t *testing.T) {
	compileErrs(t, "date", map[string]map[string]string{
		`date: argument "formats": is required`:                                                                          {},
		`date: argument "formats": layout "YYYY-QQ": unknown token at "QQ" (quote literal letters: 'T')`:                 {"formats": "YYYY-QQ"},
		`date: argument "formats": layout "YYYY-MM": needs a year, a month and a day`:                                    {"formats": "YYYY-MM"},
		`date: argument "formats": layout "YYYYMD": a 1-or-2-digit field is followed by a number, which cannot be split`: {"formats": "YYYYMD"},
		`date: argument "formats": layout "YYYY-MM-DD-DD": a field appears twice`:                                        {"formats": "YYYY-MM-DD-DD"},
		`date: argument "formats": layout "YYYY-MM-DD'T": unclosed quote`:                                                {"formats": "YYYY-MM-DD'T"},
		`date: argument "formats": layout "YYYY-MM-DD mm": time fields must be complete from hours down`:                 {"formats": "YYYY-MM-DD mm"},
		`date: argument "pivot": is required when a format uses YY (e.g. pivot=50: 00-49 → 20YY, 50-99 → 19YY)`:          {"formats": "DD/MM/YY"},
		`date: argument "tz": unknown IANA time zone "Mars/Base"`:                                                        {"formats": "YYYY-MM-DD", "tz": "Mars/Base"},
		`date: argument "to_tz": unknown IANA time zone "Local"`:                                                         {"formats": "YYYY-MM-DD", "to_tz": "Local"},
		`date: argument "out": want one of date|timestamptz, got "time"`:                                                 {"formats": "YYYY-MM-DD", "out": "time"},
		`date: argument "prefer": want one of dmy|mdy, got "ymd"`:                                                        {"formats": "YYYY-MM-DD", "prefer": "ymd"},
		`date: argument "zone": unknown argument (takes excel1904, formats, out, pivot, prefer, to_tz, tz, unit)`:        {"formats": "YYYY-MM-DD", "zone": "UTC"},
	})
}

func TestDateDoesNotAllocate(t *testing.T) {
	cases := []struct {
		args map[string]string
		in   string
	}{
		{fm("formats", "DD-MM-YYYY|MM-DD-YYYY|YYYY-MM-DD"), "13-01-2023"},
		{fm("formats", "YYYY年M月D日"), "２０２３年１月５日"},
		{fm("formats", "YYYY-MM-DD HH:mm:ss", "out", "timestamptz", "tz", "Asia/Shanghai"), "2023-01-05 14:30:00"},
		{fm("formats", "excel"), "44931"},
	}
	dst := make([]byte, 0, 64)
	for _, c := range cases {
		f := mustCompile(t, "date", c.args)
		in := []byte(c.in)
		if a := testing.AllocsPerRun(100, func() {
			if _, err := f.Apply(in, dst[:0]); err != nil {
				t.Fatal(err)
			}
		}); a != 0 {
			t.Errorf("date %v on %q allocates %.1f", c.args, c.in, a)
		}
	}
}

// Every day of several years, written in each layout, reads back exactly.
func TestDateRoundTripsEveryDay(t *testing.T) {
	f := mustCompile(t, "date", fm("formats", "DD.MM.YYYY"))
	g := mustCompile(t, "date", fm("formats", "YYYY年M月D日"))
	for d := time.Date(1899, 12, 1, 0, 0, 0, 0, time.UTC); d.Year() < 2101; d = d.AddDate(0, 0, 1) {
		want := d.Format("2006-01-02")
		out, err := f.Apply([]byte(d.Format("02.01.2006")), nil)
		if err != nil || string(out) != want {
			t.Fatalf("%s: %q, %v", want, out, err)
		}
		out, err = g.Apply([]byte(fmt.Sprintf("%d年%d月%d日", d.Year(), d.Month(), d.Day())), nil)
		if err != nil || string(out) != want {
			t.Fatalf("%s: %q, %v", want, out, err)
		}
	}
}

// Fuzzing: any input either fails with ErrBadValue or yields an ISO date
// or RFC 3339 timestamp that parses and reads back the same.
func FuzzDate(f *testing.F) {
	for _, s := range []string{"2023-01-05", "05-01-2023", "２０２３年１月５日", "二〇二三年十二月三十一日", "44931.5", "60", "1672876800", "05/01/23", "2023-03-12 02:30", "十十", "2023-01-05T14:30:00.5+08:00"} {
		f.Add(s)
	}
	dateF := mustCompile(f, "date", fm("formats", "YYYY-MM-DD|DD-MM-YYYY|MM-DD-YYYY|YYYY年M月D日|DD/MM/YY|excel", "pivot", "50"))
	tsF := mustCompile(f, "date", fm("formats", "YYYY-MM-DD HH:mm|YYYY-MM-DD'T'HH:mm:ss.FZ|unix|excel", "out", "timestamptz", "tz", "America/New_York"))
	iso := mustCompile(f, "date", fm("formats", "YYYY-MM-DD"))
	f.Fuzz(func(t *testing.T, s string) {
		out, err := dateF.Apply([]byte(s), nil)
		if err == nil {
			again, err := iso.Apply(out, nil)
			if err != nil || string(again) != string(out) {
				t.Fatalf("date(%q) = %q, which does not re-parse: %v", s, out, err)
			}
		} else if !errors.Is(err, ErrBadValue) {
			t.Fatalf("date(%q): %v does not wrap ErrBadValue", s, err)
		}
		out, err = tsF.Apply([]byte(s), nil)
		if err == nil {
			tm, perr := time.Parse(time.RFC3339Nano, string(out))
			if perr != nil || tm.Year() < 1 || tm.Year() > 9999 {
				t.Fatalf("timestamp(%q) = %q: %v", s, out, perr)
			}
		}
	})
}
