package checksum

import (
	"crypto/md5"
	"encoding/hex"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestHashHelpers(t *testing.T) {
	// md5 of "a" from RFC 1321's test suite.
	if got := MD5Hex("a"); got != "0cc175b9c0f1b6a831c399e269772661" {
		t.Fatalf("MD5Hex(a) = %s", got)
	}
	sum := md5.Sum([]byte("Zoë"))
	if got := MD5Hex("Zoë"); got != hex.EncodeToString(sum[:]) {
		t.Fatalf("MD5Hex is not md5 of the UTF-8 bytes: %s", got)
	}
	for _, c := range []struct {
		in   string
		want int64
	}{{"00000000", 0}, {"ffffffff", 4294967295}, {"0cc175b9", 214005177}, {"xyz", -1}, {"123456789", -1}} {
		if got := Hex32(c.in); got != c.want {
			t.Errorf("Hex32(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}

// TestCanonRefuses: what has no canonical text says why, naming what it
// is; the rest render in every dialect.
func TestCanonRefuses(t *testing.T) {
	for _, c := range []struct {
		d    Dialect
		col  Column
		want string
	}{
		{MySQL, Column{Name: "p", Kind: Decimal, Class: ClassFloat}, "floating-point"},
		{Postgres, Column{Name: "j", Kind: Text, Class: ClassBytes}, "binary string"},
		{SQLite, Column{Name: "t", Kind: TimestampTZ, Class: ClassDateTime, Zone: "Europe/Berlin"}, "no time zone rules"},
		{MySQL, Column{Name: "t", Kind: TimestampTZ, Class: ClassDateTime, Zone: "Europe/Berlin"}, ""},
		{Postgres, Column{Name: "n", Kind: Decimal, Class: ClassDecimal}, ""},
		{SQLite, Column{Name: "d", Kind: Date, Class: ClassText}, ""},
	} {
		_, err := c.d.Canon(c.col)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s %+v: %v", c.d, c.col, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s %+v: %v, want %q", c.d, c.col, err, c.want)
		}
	}
	if _, err := KindOf("float8"); err == nil || !strings.Contains(err.Error(), "floating-point") {
		t.Errorf("KindOf(float8) = %v", err)
	}
}
