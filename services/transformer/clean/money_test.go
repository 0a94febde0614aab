package clean

import (
	"math/big"
	"strings"
	"testing"
)

func TestScale(t *testing.T) {
	fen := fm("by", "-2")
	runCases(t, "scale", []tcase{
		{name: "fen to yuan", args: fen, in: "1250", want: "12.50"},
		{name: "small", args: fen, in: "5", want: "0.05"},
		{name: "negative", args: fen, in: "-5", want: "-0.05"},
		{name: "zero keeps scale", args: fen, in: "0", want: "0.00"},
		{name: "minus zero", args: fen, in: "-0", want: "0.00"},
		{name: "plus and zeros", args: fen, in: " +007 ", want: "0.07"},
		{name: "decimal input", args: fen, in: "1250.5", want: "12.505"},
		{name: "exponent", args: fen, in: "1.5e3", want: "15"},
		{name: "up", args: fm("by", "2"), in: "12.5", want: "1250"},
		{name: "up integer", args: fm("by", "3"), in: "12", want: "12000"},
		{name: "leading dot", args: fen, in: ".5", want: "0.005"},
		{name: "trailing dot", args: fen, in: "5.", want: "0.05"},
		{name: "big exact", args: fen, in: "123456789012345678901234567890", want: "1234567890123456789012345678.90"},
		{name: "group separator", args: fen, in: "1,234", err: true, want: `"1,234" is not a decimal number`},
		{name: "empty", args: fen, in: "", err: true, want: `"" is not a decimal number`},
		{name: "whitespace only", args: fen, in: "  ", err: true, want: `"  " is not a decimal number`},
		{name: "full width digits", args: fen, in: "１２", err: true, want: `"１２" is not a decimal number`},
		{name: "float specials", args: fen, in: "NaN", err: true, want: `"NaN" is not a decimal number`},
		{name: "double sign", args: fen, in: "--1", err: true, want: `"--1" is not a decimal number`},
		{name: "bare exponent", args: fen, in: "1e", err: true, want: `"1e" is not a decimal number`},
		{name: "huge exponent", args: fen, in: "1e999999999", err: true, want: `"1e999999999" is out of range for numeric`},
		{name: "tiny exponent", args: fen, in: "1e-999999999", err: true, want: `"1e-999999999" is out of range for numeric`},
		{name: "zero huge exponent", args: fen, in: "0e999999999", want: "0"},
		{name: "max digits", args: fm("by", "-2", "max_digits", "6"), in: "1234567", err: true, want: `"1234567" has 7 digits, more than max_digits 6 (result 12345.67)`},
		{name: "max digits fits", args: fm("by", "-2", "max_digits", "6"), in: "123456", want: "1234.56"},
	})
	compileErrs(t, "scale", map[string]map[string]string{
		`scale: argument "by": is required`:                                {},
		`scale: argument "by": want an integer in -1000..1000, got "-2.5"`: {"by": "-2.5"},
	})
}

func TestRound(t *testing.T) {
	p2 := func(mode string) map[string]string { return fm("places", "2", "mode", mode) }
	runCases(t, "round", []tcase{
		{name: "half_up", args: p2("half_up"), in: "1.005", want: "1.01"},
		{name: "half_up default", args: fm("places", "2"), in: "1.004999", want: "1.00"},
		{name: "half_up negative", args: p2("half_up"), in: "-1.005", want: "-1.01"},
		{name: "half_even down", args: p2("half_even"), in: "1.005", want: "1.00"},
		{name: "half_even up", args: p2("half_even"), in: "1.015", want: "1.02"},
		{name: "half_even sticky", args: p2("half_even"), in: "1.00501", want: "1.01"},
		{name: "half_down", args: p2("half_down"), in: "1.005", want: "1.00"},
		{name: "half_down sticky", args: p2("half_down"), in: "1.0051", want: "1.01"},
		{name: "up", args: p2("up"), in: "1.001", want: "1.01"},
		{name: "up negative", args: p2("up"), in: "-1.001", want: "-1.01"},
		{name: "down", args: p2("down"), in: "1.009", want: "1.00"},
		{name: "ceiling negative", args: p2("ceiling"), in: "-1.001", want: "-1.00"},
		{name: "ceiling positive", args: p2("ceiling"), in: "1.001", want: "1.01"},
		{name: "floor negative", args: p2("floor"), in: "-1.001", want: "-1.01"},
		{name: "floor positive", args: p2("floor"), in: "1.009", want: "1.00"},
		{name: "carry", args: p2("half_up"), in: "9.995", want: "10.00"},
		{name: "carry from zero", args: p2("half_up"), in: "0.995", want: "1.00"},
		{name: "carry to new digit places 0", args: fm("mode", "up"), in: "999.1", want: "1000"},
		{name: "negative to zero", args: p2("half_up"), in: "-0.004", want: "0.00"},
		{name: "pads places", args: p2("half_up"), in: "12", want: "12.00"},
		{name: "half_even 0.5", args: fm("mode", "half_even"), in: "0.5", want: "0"},
		{name: "half_even 2.5", args: fm("mode", "half_even"), in: "2.5", want: "2"},
		{name: "half_even 3.5", args: fm("mode", "half_even"), in: "3.5", want: "4"},
		{name: "half_up -2.5", args: fm("mode", "half_up"), in: "-2.5", want: "-3"},
		{name: "tiny up", args: p2("up"), in: "1e-9", want: "0.01"},
		{name: "tiny half_up", args: p2("half_up"), in: "1e-9", want: "0.00"},
		{name: "exponent", args: p2("half_up"), in: "1.23456E2", want: "123.46"},
		{name: "max digits after carry", args: fm("places", "2", "max_digits", "5"), in: "999.995", err: true, want: `"999.995" has 6 digits, more than max_digits 5 (result 1000.00)`},
		{name: "not a number", args: p2("half_up"), in: "12.x", err: true, want: `"12.x" is not a decimal number`},
		{name: "two dots", args: p2("half_up"), in: "1.2.3", err: true, want: `"1.2.3" is not a decimal number`},
	})
	compileErrs(t, "round", map[string]map[string]string{
		`round: argument "mode": want one of half_up|half_even|half_down|up|down|ceiling|floor, got "bankers"`: {"mode": "bankers"},
		`round: argument "places": want an integer in 0..16383, got "-1"`:                                      {"places": "-1"},
		`round: argument "max_digits": want an integer in 1..1000, got "0"`:                                    {"max_digits": "0"},
	})
}

const testRates = "USD:2023-01-01:7.0|USD:2023-07-01:7.2|EUR:2023-01-01:7.5|JPY:2023-01-01:0.0512345"

func TestConvert(t *testing.T) {
	fixed := fm("to", "CNY", "from", "USD", "rates", testRates)
	col := fm("to", "cny", "rates", testRates)
	runCases(t, "convert", []tcase{
		{name: "fixed", args: fixed, in: "100@2023-03-01", want: "700.00"},
		{name: "effective on the day", args: fixed, in: "100@2023-07-01", want: "720.00"},
		{name: "day before", args: fixed, in: "100@2023-06-30", want: "700.00"},
		{name: "before any rate", args: fixed, in: "100@2022-12-31", err: true, want: `"100@2022-12-31": no USD rate in force on 2022-12-31 (earliest 2023-01-01)`},
		{name: "rounded", args: fixed, in: "0.333@2023-01-01", want: "2.33"},
		{name: "negative", args: fixed, in: "-0.335@2023-01-01", want: "-2.35"},
		{name: "blanks", args: fixed, in: " 100 @ 2023-03-01 ", want: "700.00"},
		{name: "currency from input", args: col, in: "100 eur@2023-05-05", want: "750.00"},
		{name: "long rate", args: col, in: "1000 JPY@2023-05-05", want: "51.23"},
		{name: "same currency only rounds", args: col, in: "100.005 CNY@2023-05-05", want: "100.01"},
		{name: "unknown currency", args: col, in: "100 GBP@2023-05-05", err: true, want: `"100 GBP@2023-05-05": no rates for currency "GBP" (have: EUR, JPY, USD)`},
		{name: "missing currency", args: col, in: "100@2023-05-05", err: true, want: `"100@2023-05-05": want AMOUNT CUR@YYYY-MM-DD`},
		{name: "missing date", args: col, in: "100 USD", err: true, want: `"100 USD": want AMOUNT CUR@YYYY-MM-DD`},
		{name: "bad date", args: fixed, in: "100@2023-02-30", err: true, want: `"100@2023-02-30": "2023-02-30" is not a date YYYY-MM-DD`},
		{name: "bad amount", args: col, in: "1,00 USD@2023-05-05", err: true, want: `"1,00" is not a decimal number`},
		{name: "empty", args: fixed, in: "", err: true, want: `"": want AMOUNT@YYYY-MM-DD`},
		{name: "big amount", args: fixed, in: "123456789012345678901234@2023-01-01", want: "864197523086419752308638.00"},
		{name: "max digits", args: fm("to", "CNY", "from", "USD", "rates", testRates, "max_digits", "8"), in: "1000000@2023-01-01", err: true, want: `"1000000@2023-01-01" converted at USD 7.0: result has 9 digits, more than max_digits 8 (result 7000000.00)`},
		{name: "places and mode", args: fm("to", "CNY", "from", "USD", "rates", testRates, "places", "0", "mode", "floor"), in: "0.99@2023-01-01", want: "6"},
	})
	compileErrs(t, "convert", map[string]map[string]string{
		`convert: argument "to": is required`:                                                        {"rates": testRates},
		`convert: argument "rates": is required`:                                                     {"to": "CNY"},
		`convert: argument "rates": entry "USD:2023-01-01": want CUR:YYYY-MM-DD:rate`:                {"to": "CNY", "rates": "USD:2023-01-01"},
		`convert: argument "rates": entry "USD:2023-02-30:7": "2023-02-30" is not a date YYYY-MM-DD`: {"to": "CNY", "rates": "USD:2023-02-30:7"},
		`convert: argument "rates": entry "USD:2023-01-01:-7": rate "-7" is not a decimal number`:    {"to": "CNY", "rates": "USD:2023-01-01:-7"},
		`convert: argument "rates": entry "USD:2023-01-01:0": rate "0" is zero`:                      {"to": "CNY", "rates": "USD:2023-01-01:0"},
		`convert: argument "rates": USD has two rates on 2023-01-01`:                                 {"to": "CNY", "rates": "USD:2023-01-01:7|usd:2023-01-01:7.1"},
		`convert: argument "rates": has no rate for from=GBP`:                                        {"to": "CNY", "from": "GBP", "rates": testRates},
		`convert: argument "to": "人民币" is not a currency code`:                                       {"to": "人民币", "rates": testRates},
	})
}

func TestMoneyDoesNotAllocate(t *testing.T) {
	cases := []struct {
		fn   string
		args map[string]string
		in   string
	}{
		{"scale", fm("by", "-2"), "123456"},
		{"round", fm("places", "2", "mode", "half_even"), "-1234.5650"},
		{"convert", fm("to", "CNY", "rates", testRates), "1234.56 usd@2023-08-01"},
	}
	dst := make([]byte, 0, 64)
	for _, c := range cases {
		f := mustCompile(t, c.fn, c.args)
		in := []byte(c.in)
		if a := testing.AllocsPerRun(100, func() {
			if _, err := f.Apply(in, dst[:0]); err != nil {
				t.Fatal(err)
			}
		}); a != 0 {
			t.Errorf("%s on %q allocates %.1f", c.fn, c.in, a)
		}
	}
}

// refRound rounds v to places with mode using math/big only.
func refRound(v *big.Rat, places int, mode string) string {
	scaled := new(big.Rat).Mul(v, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(places)), nil)))
	neg := scaled.Sign() < 0
	num := new(big.Int).Abs(scaled.Num())
	den := scaled.Denom()
	q, r := new(big.Int).QuoRem(num, den, new(big.Int))
	twice := new(big.Int).Lsh(r, 1)
	cmpHalf := twice.Cmp(den)
	nonzero := r.Sign() != 0
	inc := false
	switch mode {
	case "half_up":
		inc = cmpHalf >= 0
	case "half_down":
		inc = cmpHalf > 0
	case "half_even":
		inc = cmpHalf > 0 || (cmpHalf == 0 && q.Bit(0) == 1)
	case "up":
		inc = nonzero
	case "ceiling":
		inc = !neg && nonzero
	case "floor":
		inc = neg && nonzero
	}
	if inc {
		q.Add(q, big.NewInt(1))
	}
	s := q.String()
	if places > 0 {
		if len(s) <= places {
			s = strings.Repeat("0", places-len(s)+1) + s
		}
		s = s[:len(s)-places] + "." + s[len(s)-places:]
	}
	if neg && q.Sign() != 0 {
		s = "-" + s
	}
	return s
}

// FuzzMoney checks round, scale and convert against math/big.
func FuzzMoney(f *testing.F) {
	for _, s := range []string{"1.005", "-2.5", "9.995", "0", "1e-3", "123456789012345678901234.5", ".5", "5.", "-0.0"} {
		f.Add(s, uint8(2), uint8(0), int8(-2))
	}
	rounders := map[string]map[int]Func{}
	for _, m := range modeNames {
		rounders[m] = map[int]Func{}
		for p := range 6 {
			rounders[m][p] = mustCompile(f, "round", fm("places", string(rune('0'+p)), "mode", m))
		}
	}
	conv := mustCompile(f, "convert", fm("to", "CNY", "from", "JPY", "rates", testRates, "places", "4", "mode", "half_even"))
	jpy, _ := new(big.Rat).SetString("0.0512345")
	f.Fuzz(func(t *testing.T, s string, places, mode uint8, by int8) {
		x, err := parseDec([]byte(s))
		if err != nil || x.point > 60 || x.point < -60 || len(s) > 80 {
			return
		}
		want, ok := new(big.Rat).SetString(strings.TrimSpace(s))
		if !ok {
			t.Fatalf("parseDec accepts %q, math/big does not", s)
		}
		p := int(places % 6)
		m := modeNames[int(mode)%len(modeNames)]
		out, err := rounders[m][p].Apply([]byte(s), nil)
		if err != nil {
			t.Fatalf("round(%q): %v", s, err)
		}
		if ref := refRound(want, p, m); string(out) != ref {
			t.Fatalf("round(%q, %d, %s) = %s; math/big says %s", s, p, m, out, ref)
		}
		sc, err := Compile("scale", fm("by", itoa(int(by))))
		if err != nil {
			t.Fatal(err)
		}
		out, err = sc.Apply([]byte(s), nil)
		if err != nil {
			t.Fatalf("scale(%q, %d): %v", s, by, err)
		}
		got, ok := new(big.Rat).SetString(string(out))
		exp := new(big.Rat).Mul(want, pow10(int(by)))
		if !ok || got.Cmp(exp) != 0 || strings.HasPrefix(string(out), "-0") && got.Sign() == 0 {
			t.Fatalf("scale(%q, %d) = %s; want %s", s, by, out, exp.FloatString(10))
		}
		out, err = conv.Apply([]byte(s+"@2023-05-05"), nil)
		if err != nil {
			t.Fatalf("convert(%q): %v", s, err)
		}
		if ref := refRound(new(big.Rat).Mul(want, jpy), 4, "half_even"); string(out) != ref {
			t.Fatalf("convert(%q) = %s; math/big says %s", s, out, ref)
		}
	})
}

func pow10(n int) *big.Rat {
	p := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(max(n, -n))), nil)
	if n < 0 {
		return new(big.Rat).SetFrac(big.NewInt(1), p)
	}
	return new(big.Rat).SetInt(p)
}

func itoa(n int) string { return big.NewInt(int64(n)).String() }
