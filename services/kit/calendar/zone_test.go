package calendar

import (
	"strings"
	"testing"
	"time"
)

func TestLoadZone(t *testing.T) {
	for _, tc := range []struct{ name, err string }{
		{"", ""}, {"UTC", ""}, {"Europe/Berlin", ""}, {"America/New_York", ""}, {"Etc/GMT-2", ""},
		{"Local", "machine's zone"}, {"Europe/Berlín", "not an IANA"}, {"+02:00", "not an IANA"}, {"../etc/passwd", "not an IANA"},
	} {
		loc, err := LoadZone(tc.name)
		switch {
		case tc.err == "" && (err != nil || loc == nil):
			t.Errorf("LoadZone(%q) = %v, %v", tc.name, loc, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), tc.name)):
			t.Errorf("LoadZone(%q) error %v, want one naming the value and %q", tc.name, err, tc.err)
		}
	}
}

func wallOf(s string) int64 {
	t, err := time.Parse("2006-01-02 15:04:05.999999", s)
	if err != nil {
		panic(err)
	}
	return t.UnixMicro()
}

// TestWallInstantAtChanges: PostgreSQL's documented readings (Appendix B,
// "Handling of Invalid or Ambiguous Timestamps") and the same in other zones.
func TestWallInstantAtChanges(t *testing.T) {
	for _, tc := range []struct{ zone, wall, utc string }{
		{"America/New_York", "2018-03-11 02:30:00", "2018-03-11 07:30:00"}, // gap: EST reading, shown 03:30 EDT
		{"America/New_York", "2018-11-04 01:30:00", "2018-11-04 06:30:00"}, // twice: the EST (later) one
		{"Europe/Berlin", "2024-03-31 02:30:00", "2024-03-31 01:30:00"},
		{"Europe/Berlin", "2024-03-31 01:59:59.999999", "2024-03-31 00:59:59.999999"},
		{"Europe/Berlin", "2024-03-31 03:00:00", "2024-03-31 01:00:00"},
		{"Europe/Berlin", "2024-10-27 02:30:00", "2024-10-27 01:30:00"},
		{"Europe/Berlin", "2024-10-27 01:59:59", "2024-10-26 23:59:59"},
		{"Europe/Berlin", "2024-10-27 03:00:00", "2024-10-27 02:00:00"},
		{"Europe/Berlin", "2024-01-15 12:00:00", "2024-01-15 11:00:00"},
		{"Europe/Berlin", "2024-07-15 12:00:00", "2024-07-15 10:00:00"},
		{"Australia/Sydney", "2024-04-07 02:30:00", "2024-04-06 16:30:00"},    // twice: AEST
		{"Australia/Sydney", "2024-10-06 02:30:00", "2024-10-05 16:30:00"},    // gap: AEST reading
		{"Australia/Lord_Howe", "2024-10-06 02:15:00", "2024-10-05 15:45:00"}, // half-hour gap
		{"UTC", "2024-03-31 02:30:00", "2024-03-31 02:30:00"},
		{"Europe/Berlin", "0001-01-01 00:00:00", "0000-12-31 23:06:32"}, // LMT +0:53:28
	} {
		loc, err := LoadZone(tc.zone)
		if err != nil {
			t.Fatal(err)
		}
		want := wallOf(tc.utc)
		if tc.wall[:4] == "0001" {
			want = wallOf("0001-01-01 00:00:00") - (53*60+28)*1_000_000
		}
		if got := WallInstant(loc, wallOf(tc.wall)); got != want {
			t.Errorf("%s %s: got %s UTC, want %s", tc.zone, tc.wall, time.UnixMicro(got).UTC().Format("2006-01-02 15:04:05.999999"), tc.utc)
		}
	}
}

// TestWallInstantAgainstTime walks two years in quarter hours: a wall time
// that exists once is the instant package time finds; one that exists
// twice is the later; one in a gap is shifted forward by the gap.
func TestWallInstantAgainstTime(t *testing.T) {
	for _, zone := range []string{"Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Shanghai", "Europe/Moscow", "America/Sao_Paulo", "Australia/Lord_Howe"} {
		loc, err := LoadZone(zone)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Date(2013, 1, 1, 0, 0, 0, 0, time.UTC)
		for w := start; w.Year() < 2015; w = w.Add(15 * time.Minute) {
			wall := w.UnixMicro()
			got := WallInstant(loc, wall)
			var valid []int64
			for _, probe := range []int64{-2 * 86400, 2 * 86400} {
				_, off := time.Unix(w.Unix()+probe, 0).In(loc).Zone()
				u := wall - int64(off)*1_000_000
				if _, o := time.UnixMicro(u).In(loc).Zone(); o == off && (len(valid) == 0 || valid[0] != u) {
					valid = append(valid, u)
				}
			}
			switch len(valid) {
			case 1:
				if got != valid[0] {
					t.Fatalf("%s %s: got %d, want %d", zone, w.Format(time.DateTime), got, valid[0])
				}
			case 2:
				if got != max(valid[0], valid[1]) {
					t.Fatalf("%s %s (twice): got %d, want the later of %v", zone, w.Format(time.DateTime), got, valid)
				}
			default: // a gap: the reading with the offset before it
				_, before := time.UnixMicro(got - 6*3600*1_000_000).In(loc).Zone()
				if got != wall-int64(before)*1_000_000 {
					t.Fatalf("%s %s (gap): got %d", zone, w.Format(time.DateTime), got)
				}
			}
		}
	}
}
