package transform

import (
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"
)

func FuzzParseInt(f *testing.F) {
	for _, s := range []string{"0", "-0", "+12", " 42 ", "9223372036854775807", "-9223372036854775808", "9223372036854775808", "1e3", "", "-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseInt([]byte(s))
		want, werr := strconv.ParseInt(strings.Trim(s, " \t\n\r\v\f"), 10, 64)
		if (err == nil) != (werr == nil) {
			t.Fatalf("parseInt(%q) = %d, %v; strconv says %d, %v", s, v, err, want, werr)
		}
		if err != nil {
			return
		}
		if v != want {
			t.Fatalf("parseInt(%q) = %d, want %d", s, v, want)
		}
		if back, err := parseInt(strconv.AppendInt(nil, v, 10)); err != nil || back != v {
			t.Fatalf("round trip of %d = %d, %v", v, back, err)
		}
	})
}

func FuzzNumeric(f *testing.F) {
	for _, s := range []string{"0", "-0", "12.50", ".5", "5.", "+001.10", "1e3", "1.5E-3", "-0e10", "1e999999999999", "12,x", ".", "NaN", "-inf", "Infinity"} {
		f.Add(s, 0, 0)
		f.Add(s, 12, 2)
	}
	f.Fuzz(func(t *testing.T, s string, prec, scale int) {
		prec, scale = prec%40, scale%40
		if prec < 0 || scale < 0 || scale > prec {
			prec, scale = 0, 0
		}
		if len(s) > 64 {
			return // keep exponents small enough to compare with math/big quickly
		}
		out, err := appendNumeric(nil, []byte(s), prec, scale)
		if err != nil {
			return
		}
		// Canonical output is a fixed point of the parser.
		again, err := appendNumeric(nil, out, prec, scale)
		if err != nil || string(again) != string(out) {
			t.Fatalf("%q → %q → %q, %v", s, out, again, err)
		}
		if strings.HasPrefix(string(out), "+") || strings.HasPrefix(string(out), "-0") && strings.Trim(string(out), "-0.") == "" {
			t.Fatalf("%q → %q is not canonical", s, out)
		}
		// Same value as the input, exactly.
		in, ok1 := new(big.Rat).SetString(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), "+")))
		got, ok2 := new(big.Rat).SetString(string(out))
		if ok1 && ok2 && in.Cmp(got) != 0 {
			t.Fatalf("%q → %q changes the value", s, out)
		}
	})
}

func FuzzTimestamp(f *testing.F) {
	for _, s := range []string{"2024-03-01", "2024-03-01T12:34:56Z", "2024-03-01 12:34:56.123456+02:00", "2023-02-30", "2024-03-01 12:34:56 -0130", "1970-01-01T00:00:00.9999999Z", "2024-03-01 12:34"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		us, err := parseTimestamp([]byte(s))
		if err != nil {
			return
		}
		// Accepted values round-trip through RFC 3339.
		txt := time.UnixMicro(us).UTC().Format("2006-01-02T15:04:05.999999Z07:00")
		back, err := parseTimestamp([]byte(txt))
		if err != nil || back != us {
			t.Fatalf("%q → %d → %q → %d, %v", s, us, txt, back, err)
		}
		// Where Go's RFC 3339 parser also accepts the input, it agrees.
		if tt, err := time.Parse(time.RFC3339Nano, s); err == nil && len(s) >= 20 && strings.Count(s, ".") == 0 && tt.UnixMicro() != us {
			t.Fatalf("%q: %d, time.Parse says %d", s, us, tt.UnixMicro())
		}
	})
}

func FuzzDate(f *testing.F) {
	for _, s := range []string{"2024-03-01", "0001-01-01", "9999-12-31", "2023-02-29", " 2024-02-29 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseDate([]byte(s))
		if err != nil {
			return
		}
		txt := time.Unix(d*86400, 0).UTC().Format("2006-01-02")
		if back, err := parseDate([]byte(txt)); err != nil || back != d || txt != strings.TrimSpace(s) {
			t.Fatalf("%q → %d → %q → %d, %v", s, d, txt, back, err)
		}
	})
}
