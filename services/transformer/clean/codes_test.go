package clean

import (
	"strings"
	"testing"
)

func TestMap(t *testing.T) {
	tbl := fm("table", "M=male|F=female|U=")
	ci := fm("table", "M=male|F=female|Kelvin=k", "ci", "true")
	def := fm("table", "A=active", "default", "other")
	runCases(t, "map", []tcase{
		{name: "hit", args: tbl, in: "M", want: "male"},
		{name: "maps to empty", args: tbl, in: "U", want: ""},
		{name: "case sensitive", args: tbl, in: "m", err: true, want: `unknown code "m" (known: F, M, U)`},
		{name: "empty", args: tbl, in: "", err: true, want: `unknown code "" (known: F, M, U)`},
		{name: "whitespace not trimmed", args: tbl, in: " M", err: true, want: `unknown code " M" (known: F, M, U)`},
		{name: "ci", args: ci, in: "f", want: "female"},
		{name: "ci kelvin sign", args: ci, in: "\u212aELVIN", want: "k"},
		{name: "ci unknown", args: ci, in: "x", err: true, want: `unknown code "x" (known: F, Kelvin, M)`},
		{name: "default", args: def, in: "Z", want: "other"},
		{name: "default not used on hit", args: def, in: "A", want: "active"},
		{name: "escaped separators", args: fm("table", `a\|b=x\=y|c=d`), in: "a|b", want: "x=y"},
		{name: "full width not folded", args: tbl, in: "Ｍ", err: true, want: `unknown code "Ｍ" (known: F, M, U)`},
		{name: "unicode codes", args: fm("table", "男=M|女=F"), in: "女", want: "F"},
	})
	many := make([]string, 30)
	for i := range many {
		many[i] = string(rune('a'+i%26)) + strings.Repeat("x", i/26) + "=1"
	}
	runCases(t, "map", []tcase{{name: "known list cut", args: fm("table", strings.Join(many, "|")), in: "?", err: true,
		want: `unknown code "?" (known: a, ax, b, bx, c, cx, d, dx, e, f, g, h, i, j, k, l, m, n, o, p, … 10 more)`}})
	compileErrs(t, "map", map[string]map[string]string{
		`map: argument "table": is required`:                 {},
		`map: argument "table": entry "a": want old=new`:     {"table": "a"},
		`map: argument "table": entry "a=b=c": want old=new`: {"table": "a=b=c"},
		`map: argument "table": code "a" is listed twice`:    {"table": "A=1|a=2", "ci": "true"},
		`map: argument "ci": want true or false, got "sure"`: {"table": "a=1", "ci": "sure"},
	})
}

func TestEnum(t *testing.T) {
	cs := fm("values", "active|inactive|banned")
	ci := fm("values", "active|inactive|banned", "ci", "true")
	runCases(t, "enum", []tcase{
		{name: "hit", args: cs, in: "active", want: "active"},
		{name: "case sensitive", args: cs, in: "Active", err: true, want: `"Active" is not one of: active, inactive, banned`},
		{name: "ci canonical spelling", args: ci, in: "ACTIVE", want: "active"},
		{name: "empty", args: ci, in: "", err: true, want: `"" is not one of: active, inactive, banned`},
		{name: "hostile long", args: ci, in: strings.Repeat("A", 200), err: true, want: `"` + strings.Repeat("A", 64) + `"… is not one of: active, inactive, banned`},
		{name: "invalid utf8", args: ci, in: "act\xffive", err: true, want: `"act\xffive" is not one of: active, inactive, banned`},
	})
	compileErrs(t, "enum", map[string]map[string]string{
		`enum: argument "values": is required`:            {},
		`enum: argument "values": "Paid" is listed twice`: {"values": "paid|Paid", "ci": "true"},
	})
}

func TestCodesDoNotAllocate(t *testing.T) {
	m := mustCompile(t, "map", fm("table", "M=male|F=female", "ci", "true"))
	e := mustCompile(t, "enum", fm("values", "new|paid|shipped", "ci", "true"))
	in1, in2 := []byte("f"), []byte("PAID")
	dst := make([]byte, 0, 32)
	if a := testing.AllocsPerRun(100, func() {
		_, _ = m.Apply(in1, dst[:0])
		_, _ = e.Apply(in2, dst[:0])
	}); a != 0 {
		t.Fatalf("allocates %.1f", a)
	}
}

func FuzzCodes(f *testing.F) {
	f.Add("M")
	f.Add("\u212a")
	f.Add("ß")
	m := mustCompile(f, "map", fm("table", "M=male|K=kay|SS=double|ß=eszett", "ci", "true"))
	f.Fuzz(func(t *testing.T, s string) {
		out, err := m.Apply([]byte(s), nil)
		if err == nil {
			// A hit means the input folds to a listed code.
			found := false
			for _, k := range []string{"M", "K", "SS", "ß"} {
				found = found || strings.EqualFold(s, k)
			}
			if !found {
				t.Fatalf("map(%q) = %q but %q matches no code under case folding", s, out, s)
			}
		}
	})
}
