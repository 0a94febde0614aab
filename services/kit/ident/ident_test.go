package ident

import (
	"regexp"
	"testing"
)

// TestGolden pins the derivation: ids already loaded into targets depend on
// it, so these values must never change. They were checked against an
// independent SHA-256 implementation (Python hashlib).
func TestGolden(t *testing.T) {
	tests := []struct {
		system, entity, old string
		i64                 int64
		uuid                string
	}{
		{"pos-a", "order", "17", 2960196715566837831, "52297675-4147-808e-a9d6-c11cc82e79ef"},
		{"pos-b", "order", "17", 4985813791956846791, "8a625674-a3a9-818f-a4ae-322e47fbdba4"},
		{"pos-a", "customer", "17", 8924089961951341520, "f7b17913-bb7a-87a1-a04c-396f9802071f"},
		{"", "", "", 8903033755107287071, "f71bdc0f-58f6-803f-a4d9-e754ebf40133"},
		{"crm", "member", "M-0001", 1793494418757125094, "31c78b57-d154-87cc-a5a6-f42d9ce94f0a"},
		{"a", "bc", "x", 7482638028459923199, "cfaf5748-ca5d-8dfe-87ce-cc47dcc2c9fc"},
		{"ab", "c", "x", 5985752612819116235, "a6235493-30e6-8196-a43f-ab792ac77b9c"},
		{"pos-a", "order", "订单-42", 9107065307280533978, "fcc5974a-957a-83b5-9640-bab0c88a6b0c"},
	}
	for _, tt := range tests {
		if got := Int64(tt.system, tt.entity, tt.old); got != tt.i64 {
			t.Errorf("Int64(%q, %q, %q) = %d, want %d", tt.system, tt.entity, tt.old, got, tt.i64)
		}
		if got := UUID(tt.system, tt.entity, tt.old); got != tt.uuid {
			t.Errorf("UUID(%q, %q, %q) = %s, want %s", tt.system, tt.entity, tt.old, got, tt.uuid)
		}
	}
}

var uuidShape = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestDistinct: changing any one part, or moving a character across a
// separator, gives another id; every id is positive and every UUID is a
// well-formed version-8 RFC 4122 UUID.
func TestDistinct(t *testing.T) {
	inputs := [][3]string{
		{"pos-a", "order", "1"}, {"pos-b", "order", "1"}, {"pos-a", "customer", "1"}, {"pos-a", "order", "2"},
		{"a", "bc", ""}, {"ab", "c", ""}, {"a", "b", "c"}, {"", "ab", "c"}, {"", "a", "bc"}, {"abc", "", ""},
		{"pos-a", "order", "01"}, {"pos-a", "order", " 1"}, {"", "", ""},
	}
	seenI := map[int64][3]string{}
	seenU := map[string][3]string{}
	for _, in := range inputs {
		i, u := Int64(in[0], in[1], in[2]), UUID(in[0], in[1], in[2])
		if i <= 0 {
			t.Errorf("Int64%q = %d, want positive", in, i)
		}
		if !uuidShape.MatchString(u) {
			t.Errorf("UUID%q = %s, not a lower-case version-8 RFC 4122 UUID", in, u)
		}
		if prev, dup := seenI[i]; dup {
			t.Errorf("Int64%q = Int64%q = %d", in, prev, i)
		}
		if prev, dup := seenU[u]; dup {
			t.Errorf("UUID%q = UUID%q = %s", in, prev, u)
		}
		seenI[i], seenU[u] = in, in
		if Int64(in[0], in[1], in[2]) != i || UUID(in[0], in[1], in[2]) != u {
			t.Errorf("%q: not deterministic", in)
		}
	}
}

func BenchmarkInt64(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Int64("pos-a", "order", "123456")
	}
}
