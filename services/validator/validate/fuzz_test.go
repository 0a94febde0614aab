package validate

import (
	"math/big"
	"strings"
	"testing"
	"unicode/utf8"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"google.golang.org/protobuf/proto"
)

// FuzzDecimalCompare checks the allocation-free decimal comparison against
// math/big on any pair the plain parser accepts.
func FuzzDecimalCompare(f *testing.F) {
	for _, p := range [][2]string{{"0", "-0"}, {"1.50", "1.5"}, {"-0.001", "0"}, {"0010", "9.99"}, {".5", "0.50"}, {"-12", "-3"}, {"5.", "abc"}} {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		da, oka := parseDec([]byte(a))
		db, okb := parseDec([]byte(b))
		if !oka || !okb {
			return
		}
		ra, ok1 := new(big.Rat).SetString(strings.TrimSpace(a))
		rb, ok2 := new(big.Rat).SetString(strings.TrimSpace(b))
		if !ok1 || !ok2 {
			if strings.HasPrefix(strings.TrimSpace(a), "+") || strings.HasPrefix(strings.TrimSpace(b), "+") ||
				strings.HasSuffix(strings.TrimSpace(a), ".") || strings.HasSuffix(strings.TrimSpace(b), ".") {
				return // big.Rat refuses a few spellings the parser allows
			}
			t.Fatalf("parseDec accepted %q / %q that math/big refuses", a, b)
		}
		got, want := sign(cmpDec(da, db)), ra.Cmp(rb)
		if got != want {
			t.Fatalf("cmpDec(%q, %q) = %d, math/big says %d", a, b, got, want)
		}
	})
}

func sign(c int) int {
	switch {
	case c < 0:
		return -1
	case c > 0:
		return 1
	}
	return 0
}

// FuzzBound checks that an accepted numeric bound keeps its exact value in
// the plain form used on the hot path.
func FuzzBound(f *testing.F) {
	for _, s := range []string{"1e4", "-1.5E-3", "0", ".5", "1/3", "0x10", "1e99999", "12.500"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := parseBound(s, tNum)
		if err != nil || !b.set {
			return
		}
		var plain []byte
		if b.d.neg {
			plain = append(plain, '-')
		}
		plain = append(append(append(plain, '0'), b.d.ip...), '.')
		plain = append(append(plain, b.d.fp...), '0')
		back, ok := new(big.Rat).SetString(string(plain))
		if !ok || back.Cmp(b.rat) != 0 {
			t.Fatalf("bound %q: plain form %q differs from %v", s, plain, b.rat)
		}
	})
}

// FuzzExprAndLength runs any expression that compiles and a length rule
// over hostile text: no panic, and every reason and raw value is a valid
// proto string.
func FuzzExprAndLength(f *testing.F) {
	for _, s := range [][2]string{
		{`int(name) > 0`, "12"}, {`name.size() < 3`, "\xff\xfe"}, {`row["name"] == "a\u0000"`, "a\x00"},
		{`int(name) / 0 == 1`, "7"}, {`name.matches("[")`, "x"}, {`double(name) > 1.0`, "NaN"},
		{`timestamp(name) > timestamp("2020-01-01T00:00:00Z")`, "2024-13-01"}, {`[1,2,3].exists(x, x == n)`, "3"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, src, v string) {
		in := &commonv1.Batch{NumRows: 2, Columns: []*commonv1.Column{
			bytesCol("name", tText, &v, nil), intCol("n", tInt, ip(3), nil),
		}}
		c, err := Compile([]*commonv1.Rule{expr("name", src), warn(length("name", 1, 5))})
		if err != nil {
			return
		}
		out, err := c.Apply(in)
		if err != nil {
			return // e.g. a type error with the batch's types
		}
		for _, r := range out.GetRejects() {
			if !utf8.ValidString(r.Reason) || !utf8.ValidString(r.Raw) || strings.IndexByte(r.Raw, 0) >= 0 {
				t.Fatalf("reject %q / %q is not a valid proto string", r.Reason, r.Raw)
			}
		}
		if _, err := proto.Marshal(out); err != nil {
			t.Fatalf("marshal: %v", err)
		}
	})
}
