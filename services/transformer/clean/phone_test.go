package clean

import (
	"errors"
	"testing"
)

// mustCompileB compiles or fails the test (B suffix: the package's other
// families have their own helpers).
func mustCompileB(tb testing.TB, name string, args map[string]string) Func {
	tb.Helper()
	f, err := Compile(name, args)
	if err != nil {
		tb.Fatalf("Compile(%s, %v): %v", name, args, err)
	}
	return f
}

// cleanCaseB is one value through one compiled function: want is the output,
// or wantErr the exact error text (then the output must be dst unchanged).
type cleanCaseB struct {
	in, want, wantErr string
}

func runCasesB(t *testing.T, f Func, cases []cleanCaseB) {
	t.Helper()
	for _, c := range cases {
		pre := []byte("pre|")
		out, err := f.Apply([]byte(c.in), pre)
		if c.wantErr != "" {
			if err == nil || err.Error() != c.wantErr {
				t.Errorf("%q: err = %v, want %q (out %q)", c.in, err, c.wantErr, out)
				continue
			}
			if !errors.Is(err, ErrBadValue) {
				t.Errorf("%q: %v does not wrap ErrBadValue", c.in, err)
			}
			if string(out) != "pre|" {
				t.Errorf("%q: failed Apply changed dst to %q", c.in, out)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: unexpected error %v", c.in, err)
			continue
		}
		if string(out) != "pre|"+c.want {
			t.Errorf("%q: got %q, want %q", c.in, out[len(pre):], c.want)
		}
	}
}

func TestPhoneCompileErrors(t *testing.T) {
	for _, c := range []struct {
		args    map[string]string
		wantErr string
	}{
		{map[string]string{"region": "XX"}, `phone: argument "region": unknown region "XX" (want an ISO 3166 code such as CN, US, DE)`},
		{map[string]string{"region": "CN", "type": "fax"}, `phone: argument "type": want one of any|mobile, got "fax"`},
		{map[string]string{"regoin": "CN"}, `phone: argument "regoin": unknown argument (takes region, type)`},
	} {
		_, err := Compile("phone", c.args)
		if err == nil || err.Error() != c.wantErr || !errors.Is(err, ErrBadArgument) {
			t.Errorf("%v: err = %v, want %q wrapping ErrBadArgument", c.args, err, c.wantErr)
		}
	}
	// Region is case-insensitive.
	if _, err := Compile("phone", map[string]string{"region": "cn"}); err != nil {
		t.Errorf("region cn: %v", err)
	}
}

func TestPhoneCN(t *testing.T) {
	runCasesB(t, mustCompileB(t, "phone", map[string]string{"region": "CN"}), []cleanCaseB{
		{in: "+86 138-1234-5678", want: "+8613812345678"},
		{in: "0086 13812345678", want: "+8613812345678"},
		{in: "(010) 6552 9988", want: "+861065529988"},
		{in: "010-6552-9988", want: "+861065529988"},
		{in: "138 1234 5678", want: "+8613812345678"},
		{in: "138.1234.5678", want: "+8613812345678"},
		{in: "  13812345678\t", want: "+8613812345678"},
		{in: "１３８１２３４５６７８", want: "+8613812345678"},       // full-width digits
		{in: "＋８６ １３８－１２３４－５６７８", want: "+8613812345678"}, // full-width + and -
		{in: "138１２３４5678", want: "+8613812345678"},       // mixed widths
		{in: "+1 (202) 555-0123", want: "+12025550123"},   // explicit country code wins
		{in: "+49 30 12345678", want: "+493012345678"},    // a German number in a CN column
		{in: "+8613812345678", want: "+8613812345678"},    // already E.164
		{in: "", wantErr: "empty phone number"},           //
		{in: " \u3000 ", wantErr: "empty phone number"},   // ideographic space only
		{in: "+", wantErr: `invalid phone number "+": not a number (no digits)`},
		{in: "--", wantErr: `invalid phone number "--": not a number (no digits)`},
		{in: "abc", wantErr: `invalid phone number "abc": 'a' is not a phone number character`},
		{in: "138 1234 5678 ext 12", wantErr: `invalid phone number "138 1234 5678 ext 12": 'e' is not a phone number character`},
		{in: "138-1234-567x", wantErr: `invalid phone number "138-1234-567x": 'x' is not a phone number character`},
		{in: "12345", wantErr: `invalid phone number "12345": wrong length for CN (a local number without its area code?)`},
		{in: "0001", wantErr: `invalid phone number "0001": too short for CN`},
		{in: "138123456789999", wantErr: `invalid phone number "138123456789999": too long for CN`},
		{in: "+999 1234567", wantErr: `invalid phone number "+999 1234567": unknown country code`},
		{in: "00 86 138", wantErr: `invalid phone number "00 86 138": too short for CN`},
		{in: "+86 000 0000 0000", wantErr: `invalid phone number "+86 000 0000 0000": not a valid number for CN`},
		{in: "+1 138 1234 5678", wantErr: `invalid phone number "+1 138 1234 5678": not a valid number for US`},
	})
}

func TestPhoneWrongRegion(t *testing.T) {
	// A Chinese mobile written without +86 in a US column is not guessed
	// into China: it is invalid for the US.
	runCasesB(t, mustCompileB(t, "phone", map[string]string{"region": "US"}), []cleanCaseB{
		{in: "(202) 555-0123", want: "+12025550123"},
		{in: "1-202-555-0123", want: "+12025550123"},
		{in: "011 86 138 1234 5678", want: "+8613812345678"}, // US international prefix
		{in: "138 1234 5678", wantErr: `invalid phone number "138 1234 5678": not a valid number for US`},
		{in: "0086 13812345678", wantErr: `invalid phone number "0086 13812345678": too long for US`},
	})
	runCasesB(t, mustCompileB(t, "phone", map[string]string{"region": "DE"}), []cleanCaseB{
		{in: "030 12345678", want: "+493012345678"},
		{in: "0171 1234567", want: "+491711234567"},
	})
	// No region: only numbers with their country code are accepted.
	runCasesB(t, mustCompileB(t, "phone", nil), []cleanCaseB{
		{in: "+86 138 1234 5678", want: "+8613812345678"},
		{in: "138 1234 5678", wantErr: `invalid phone number "138 1234 5678": no country code (write it as +<code>… or set the region argument)`},
		{in: "+999 1234567", wantErr: `invalid phone number "+999 1234567": unknown country code`},
	})
}

func TestPhoneMobileOnly(t *testing.T) {
	runCasesB(t, mustCompileB(t, "phone", map[string]string{"region": "CN", "type": "mobile"}), []cleanCaseB{
		{in: "138 1234 5678", want: "+8613812345678"},
		{in: "(010) 6552 9988", wantErr: `invalid phone number "(010) 6552 9988": not a mobile number`},
	})
}

func FuzzPhone(f *testing.F) {
	for _, s := range []string{"+86 138-1234-5678", "0086 13812345678", "(010) 6552 9988", "１３８１２３４５６７８", "", "+", "12345", "+1 202 555 0123", "011 86 10 1234 5678"} {
		f.Add(s)
	}
	fns := []Func{
		mustCompileB(f, "phone", map[string]string{"region": "CN"}),
		mustCompileB(f, "phone", map[string]string{"region": "US", "type": "mobile"}),
		mustCompileB(f, "phone", nil),
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, fn := range fns {
			out, err := fn.Apply([]byte(s), nil)
			if err != nil {
				if !errors.Is(err, ErrBadValue) {
					t.Fatalf("%q: error %v does not wrap ErrBadValue", s, err)
				}
				continue
			}
			if len(out) < 2 || out[0] != '+' {
				t.Fatalf("%q: output %q is not E.164", s, out)
			}
			again, err := fn.Apply(out, nil)
			if err != nil || string(again) != string(out) {
				t.Fatalf("%q -> %q does not re-normalise to itself: %q, %v", s, out, again, err)
			}
		}
	})
}

func BenchmarkPhone(b *testing.B) {
	f := mustCompileB(b, "phone", map[string]string{"region": "CN"})
	in := []byte("+86 138-1234-5678")
	dst := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, err = f.Apply(in, dst[:0]); err != nil {
			b.Fatal(err)
		}
	}
}
