package clean

import (
	"errors"
	"strings"
	"testing"
)

func TestEmailCompileErrors(t *testing.T) {
	for _, c := range []struct {
		args    map[string]string
		wantErr string
	}{
		{map[string]string{"lower_local": "maybe"}, `email: argument "lower_local": want true or false, got "maybe"`},
		{map[string]string{"gmail_dots": ""}, `email: argument "gmail_dots": want true or false, got ""`},
		{map[string]string{"lowercase": "true"}, `email: argument "lowercase": unknown argument (takes gmail_dots, lower_local)`},
	} {
		_, err := Compile("email", c.args)
		if err == nil || err.Error() != c.wantErr || !errors.Is(err, ErrBadArgument) {
			t.Errorf("%v: err = %v, want %q wrapping ErrBadArgument", c.args, err, c.wantErr)
		}
	}
}

func TestEmailDefault(t *testing.T) {
	long := strings.Repeat("a", 65)
	runCasesB(t, mustCompileB(t, "email", nil), []cleanCaseB{
		{in: " John.Doe@Example.COM ", want: "John.Doe@example.com"}, // local part case kept
		{in: "ｊｏｈｎ＠ｅｘａｍｐｌｅ．ｃｏｍ", want: "john@example.com"},           // full-width
		{in: "john＠example.com", want: "john@example.com"},           // mixed widths
		{in: "J.O.Hn+news@GMail.com", want: "J.O.Hn+news@gmail.com"}, // gmail_dots off
		{in: "o'brien+x_y-z@sub.example.co.uk", want: "o'brien+x_y-z@sub.example.co.uk"},
		{in: "a@bücher.DE", want: "a@xn--bcher-kva.de"},
		{in: "用户@例え.jp", want: "用户@xn--r8jz45g.jp"},
		{in: "a@xn--bcher-kva.de", want: "a@xn--bcher-kva.de"},
		{in: strings.Repeat("a", 64) + "@x.io", want: strings.Repeat("a", 64) + "@x.io"},
		{in: "", wantErr: "empty email address"},
		{in: " \t\u3000", wantErr: "empty email address"},
		{in: "john.example.com", wantErr: `invalid email "john.example.com": no @`},
		{in: "a@@b.com", wantErr: `invalid email "a@@b.com": more than one @`},
		{in: "a@b@c.com", wantErr: `invalid email "a@b@c.com": more than one @`},
		{in: "@b.com", wantErr: `invalid email "@b.com": local part is empty`},
		{in: long + "@x.io", wantErr: `invalid email "` + long[:64] + `"…: local part is longer than 64 bytes`}, // value cut in the message
		{in: "a b@c.com", wantErr: `invalid email "a b@c.com": local part contains a space`},
		{in: "a@c .com", wantErr: `invalid email "a@c .com": domain contains a space`},
		{in: "a..b@c.com", wantErr: `invalid email "a..b@c.com": local part has two dots in a row`},
		{in: ".a@c.com", wantErr: `invalid email ".a@c.com": local part starts or ends with a dot`},
		{in: "a.@c.com", wantErr: `invalid email "a.@c.com": local part starts or ends with a dot`},
		{in: `"q"@c.com`, wantErr: `invalid email "\"q\"@c.com": local part is quoted (not supported)`},
		{in: "a(b)@c.com", wantErr: `invalid email "a(b)@c.com": local part contains '('`},
		{in: "a\x00@c.com", wantErr: `invalid email "a\x00@c.com": local part contains U+0000`},
		{in: "a\xff@c.com", wantErr: `invalid email "a\xff@c.com": local part is not valid UTF-8`},
		{in: "a@", wantErr: `invalid email "a@": domain is empty`},
		{in: "a@b", wantErr: `invalid email "a@b": domain has no dot`},
		{in: "a@c..com", wantErr: `invalid email "a@c..com": domain has an empty label`},
		{in: "a@.c.com", wantErr: `invalid email "a@.c.com": domain has an empty label`},
		{in: "a@c.com.", wantErr: `invalid email "a@c.com.": domain ends with a dot`},
		{in: "a@-c.com", wantErr: `invalid email "a@-c.com": domain has a label starting or ending with a hyphen`},
		{in: "a@c_d.com", wantErr: `invalid email "a@c_d.com": domain contains '_'`},
		{in: "a@1.2.3.4", wantErr: `invalid email "a@1.2.3.4": domain has a numeric top-level label`},
		{in: "a@[1.2.3.4]", wantErr: `invalid email "a@[1.2.3.4]": domain is an address literal (not supported)`},
		{in: "a@" + strings.Repeat("x", 64) + ".com", wantErr: `invalid email "a@` + strings.Repeat("x", 62) + `"…: domain has a label longer than 63 bytes`},
		{in: "a@\xff.com", wantErr: `invalid email "a@\xff.com": domain is not valid UTF-8`},
		{in: "a@ex\u200bample.com", want: "a@example.com"},                                                                // UTS 46 drops zero-width space
		{in: "a@\u05d0a.com", wantErr: `invalid email "a@אa.com": domain "אa.com" is not a valid internationalised name`}, // bidi rule
		{in: "a@ü-.com", wantErr: `invalid email "a@ü-.com": domain "ü-.com" is not a valid internationalised name`},
	})
}

func TestEmailOptions(t *testing.T) {
	runCasesB(t, mustCompileB(t, "email", map[string]string{"lower_local": "true"}), []cleanCaseB{
		{in: " John.Doe@Example.COM ", want: "john.doe@example.com"},
		{in: "ÄBC@bücher.de", want: "äbc@xn--bcher-kva.de"},
		{in: "J.O.Hn+news@GMail.com", want: "j.o.hn+news@gmail.com"},
	})
	runCasesB(t, mustCompileB(t, "email", map[string]string{"gmail_dots": "true"}), []cleanCaseB{
		{in: "J.O.Hn+news@GMail.com", want: "JOHn@gmail.com"},
		{in: "j.o.hn+a+b@googlemail.com", want: "john@googlemail.com"},
		{in: "j.o.hn+news@example.com", want: "j.o.hn+news@example.com"}, // other domains untouched
		{in: "+news@gmail.com", wantErr: `invalid email "+news@gmail.com": local part is empty once the +tag is removed`},
	})
}

func FuzzEmail(f *testing.F) {
	for _, s := range []string{"John.Doe@Example.COM", "ｊｏｈｎ＠ｅｘａｍｐｌｅ．ｃｏｍ", "a@bücher.de", "j.o+x@gmail.com", "", "@", "a@b", "\"q\"@c.com"} {
		f.Add(s)
	}
	fns := []Func{
		mustCompileB(f, "email", nil),
		mustCompileB(f, "email", map[string]string{"lower_local": "true", "gmail_dots": "true"}),
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, fn := range fns {
			out, err := fn.Apply([]byte(s), []byte("x"))
			if err != nil {
				if !errors.Is(err, ErrBadValue) || string(out) != "x" {
					t.Fatalf("%q: error %v (dst %q)", s, err, out)
				}
				continue
			}
			out = out[1:]
			again, err := fn.Apply(out, nil)
			if err != nil || string(again) != string(out) {
				t.Fatalf("%q -> %q does not re-normalise to itself: %q, %v", s, out, again, err)
			}
		}
	})
}

func BenchmarkEmail(b *testing.B) {
	f := mustCompileB(b, "email", map[string]string{"lower_local": "true"})
	in := []byte("  John.Doe+Orders@Example.COM ")
	dst := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, err = f.Apply(in, dst[:0]); err != nil {
			b.Fatal(err)
		}
	}
}
