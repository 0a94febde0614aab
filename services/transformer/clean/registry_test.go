package clean

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestCompileUnknownFunction(t *testing.T) {
	_, err := Compile("nope", nil)
	if !errors.Is(err, ErrUnknownFunction) {
		t.Fatalf("err = %v", err)
	}
	if !strings.HasPrefix(err.Error(), `unknown cleaning function "nope" (known: `) || !strings.Contains(err.Error(), "date, ") {
		t.Fatalf("message %q does not list the known functions", err)
	}
}

func TestNamesSortedAndComplete(t *testing.T) {
	names := Names()
	if !slices.IsSorted(names) {
		t.Fatalf("not sorted: %v", names)
	}
	for _, n := range []string{"trim", "lower", "upper", "title", "fold_space", "halfwidth", "normalize", "max_length", "empty_to_null", "date", "scale", "round", "convert", "map", "enum"} {
		if !slices.Contains(names, n) {
			t.Errorf("%s not registered", n)
		}
	}
}

func TestCompileArgumentErrors(t *testing.T) {
	cases := []struct {
		fn   string
		args map[string]string
		want string
	}{
		{"trim", map[string]string{"bogus": "1"}, `trim: argument "bogus": unknown argument (takes chars)`},
		{"lower", map[string]string{"x": ""}, `lower: argument "x": unknown argument (takes no arguments)`},
		{"max_length", nil, `max_length: argument "n": is required`},
		{"max_length", map[string]string{"n": "ten"}, `max_length: argument "n": want an integer in 1..10485760, got "ten"`},
		{"max_length", map[string]string{"n": "3", "truncate": "maybe"}, `max_length: argument "truncate": want true or false, got "maybe"`},
		{"normalize", map[string]string{"form": "nfc"}, `normalize: argument "form": want one of NFC|NFD|NFKC|NFKD, got "nfc"`},
	}
	for _, c := range cases {
		_, err := Compile(c.fn, c.args)
		if err == nil || err.Error() != c.want || !errors.Is(err, ErrBadArgument) {
			t.Errorf("Compile(%s, %v) = %v; want %s", c.fn, c.args, err, c.want)
		}
	}
}

func TestChain(t *testing.T) {
	c, err := CompileChain([]Step{
		{Name: "halfwidth"},
		{Name: "fold_space"},
		{Name: "empty_to_null"},
		{Name: "date", Args: map[string]string{"formats": "DD-MM-YYYY|MM-DD-YYYY|YYYY年M月D日"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ in, want string }{
		{"　２０２３年１月５日　", "2023-01-05"},
		{"13-01-2023", "2023-01-13"},
		{" \u3000 ", "NULL"},
		{"05-01-2023", "step 4 (date): ambiguous day/month: 05-01-2023 could be 2023-01-05 or 2023-05-01"},
	}
	for _, tc := range cases {
		out, err := c.Apply([]byte(tc.in), nil)
		got := string(out)
		switch {
		case err == ErrNull:
			got = "NULL"
		case err != nil:
			if !errors.Is(err, ErrBadValue) {
				t.Errorf("%q: %v does not wrap ErrBadValue", tc.in, err)
			}
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("chain(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
	if c.Len() != 4 {
		t.Fatalf("Len = %d", c.Len())
	}
	// The pooled buffers make a warm chain allocation-free.
	dst := make([]byte, 0, 64)
	in := []byte(" 2023年1月5日")
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := c.Apply(in, dst[:0]); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 && !raceEnabled {
		t.Fatalf("chain allocates %.1f per value", allocs)
	}
}

func TestChainCompileErrorNamesStep(t *testing.T) {
	_, err := CompileChain([]Step{{Name: "trim"}, {Name: "date"}})
	want := `step 2 (date): date: argument "formats": is required`
	if err == nil || err.Error() != want || !errors.Is(err, ErrBadArgument) {
		t.Fatalf("err = %v; want %s", err, want)
	}
	_, err = CompileChain([]Step{{Name: "trim"}, {Name: "dat"}})
	if !errors.Is(err, ErrUnknownFunction) || !strings.HasPrefix(err.Error(), `step 2 (dat): unknown cleaning function "dat"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestEmptyChainCopies(t *testing.T) {
	c, err := CompileChain(nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Apply([]byte("x"), []byte("a"))
	if err != nil || string(out) != "ax" {
		t.Fatalf("= %q, %v", out, err)
	}
}

func TestSplitList(t *testing.T) {
	cases := map[string][]string{
		"a|b|c":  {"a", "b", "c"},
		`a\|b|c`: {"a|b", "c"},
		`a\\|b`:  {`a\`, "b"},
		`a\b|`:   {`a\b`, ""},
		"":       {""},
		`x\`:     {`x\`},
		"||":     {"", "", ""},
		`k\=v=w`: {`k\=v=w`},
	}
	for in, want := range cases {
		if got := SplitList(in, '|'); !slices.Equal(got, want) {
			t.Errorf("SplitList(%q) = %q; want %q", in, got, want)
		}
	}
	if got := SplitList(`k\=v=w`, '='); !slices.Equal(got, []string{"k=v", "w"}) {
		t.Errorf("SplitList with '=' = %q", got)
	}
}

func TestQuoteValueCutsLongValues(t *testing.T) {
	long := strings.Repeat("é", 40) // 80 bytes
	got := quoteValue([]byte(long))
	want := `"` + strings.Repeat("é", 32) + `"…`
	if got != want {
		t.Fatalf("quoteValue = %s; want %s", got, want)
	}
	if got := quoteValue([]byte("a\x00\"")); got != `"a\x00\""` {
		t.Fatalf("quoteValue = %s", got)
	}
}
