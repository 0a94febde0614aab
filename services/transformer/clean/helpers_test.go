package clean

import (
	"errors"
	"testing"
)

// tcase is one value through one compiled function: want is the output, or
// the exact error text when err is set ("NULL" expects ErrNull).
type tcase struct {
	name string
	args map[string]string
	in   string
	want string
	err  bool
}

func runCases(t *testing.T, fn string, cases []tcase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := Compile(fn, c.args)
			if err != nil {
				t.Fatalf("compile %s %v: %v", fn, c.args, err)
			}
			prefix := []byte("keep:")
			out, err := f.Apply([]byte(c.in), prefix)
			switch {
			case c.want == "NULL" && c.err:
				if err != ErrNull {
					t.Fatalf("%s(%q) = %q, %v; want ErrNull", fn, c.in, out, err)
				}
			case c.err:
				if err == nil {
					t.Fatalf("%s(%q) = %q; want error %q", fn, c.in, out, c.want)
				}
				if err.Error() != c.want {
					t.Fatalf("%s(%q) error\n got: %s\nwant: %s", fn, c.in, err, c.want)
				}
				if !errors.Is(err, ErrBadValue) {
					t.Fatalf("%s(%q): %v does not wrap ErrBadValue", fn, c.in, err)
				}
				if string(out) != "keep:" {
					t.Fatalf("%s(%q) on error returned %q, want dst unchanged", fn, c.in, out)
				}
			case err != nil:
				t.Fatalf("%s(%q): %v; want %q", fn, c.in, err, c.want)
			case string(out) != "keep:"+c.want:
				t.Fatalf("%s(%q) = %q; want %q", fn, c.in, out[len(prefix):], c.want)
			}
		})
	}
}

// compileErrs checks that bad arguments fail at compile time with exactly
// the given message.
func compileErrs(t *testing.T, fn string, cases map[string]map[string]string) {
	t.Helper()
	for want, args := range cases {
		_, err := Compile(fn, args)
		if err == nil || err.Error() != want {
			t.Errorf("Compile(%s, %v) = %v;\nwant %s", fn, args, err, want)
		} else if !errors.Is(err, ErrBadArgument) {
			t.Errorf("Compile(%s, %v): %v does not wrap ErrBadArgument", fn, args, err)
		}
	}
}

func mustCompile(tb testing.TB, fn string, args map[string]string) Func {
	tb.Helper()
	f, err := Compile(fn, args)
	if err != nil {
		tb.Fatal(err)
	}
	return f
}
