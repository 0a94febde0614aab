package clean

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTrim(t *testing.T) {
	runCases(t, "trim", []tcase{
		{name: "empty", in: "", want: ""},
		{name: "blank only", in: " \t\r\n\u3000\u00a0\u200b\ufeff", want: ""},
		{name: "both ends", in: "\ufeff  a b \u3000", want: "a b"},
		{name: "inner kept", in: "a \u3000 b", want: "a \u3000 b"},
		{name: "invalid utf8 kept", in: " \xff a \xfe ", want: "\xff a \xfe"},
		{name: "chars", args: map[string]string{"chars": "*-"}, in: "**-a*b--", want: "a*b"},
		{name: "chars leave spaces", args: map[string]string{"chars": "0"}, in: " 00120", want: " 0012"},
		{name: "chars unicode", args: map[string]string{"chars": "【】"}, in: "【北京】", want: "北京"},
	})
	compileErrs(t, "trim", map[string]map[string]string{
		`trim: argument "chars": is required`:        {"chars": ""},
		`trim: argument "chars": is not valid UTF-8`: {"chars": "\xff"},
	})
}

func TestCase(t *testing.T) {
	runCases(t, "lower", []tcase{
		{name: "empty", in: "", want: ""},
		{name: "ascii", in: "ABC-def 12", want: "abc-def 12"},
		{name: "unicode", in: "ÉCOLE ΣΟΦΊΑ İ", want: "école σοφία i"},
		{name: "full width", in: "ＡＢＣ", want: "ａｂｃ"},
		{name: "cjk untouched", in: "北京ABC", want: "北京abc"},
		{name: "invalid utf8 kept", in: "A\xffB", want: "a\xffb"},
	})
	runCases(t, "upper", []tcase{
		{name: "ascii", in: "abc-DEF", want: "ABC-DEF"},
		{name: "unicode", in: "straße ǆ", want: "STRAßE Ǆ"},
		{name: "whitespace only", in: " \t", want: " \t"},
	})
}

func TestTitle(t *testing.T) {
	runCases(t, "title", []tcase{
		{name: "empty", in: "", want: ""},
		{name: "words", in: "mary-jane o'NEIL 3rd street", want: "Mary-Jane O'neil 3rd Street"},
		{name: "accents", in: "ÉCOLE NORMALE supérieure", want: "École Normale Supérieure"},
		{name: "digraph titlecase", in: "ǆemal", want: "ǅemal"},
		{name: "combining mark stays in word", in: "e\u0301COLE", want: "E\u0301cole"},
		{name: "cjk", in: "张三 zhang", want: "张三 Zhang"},
		{name: "invalid utf8 splits words", in: "ab\xffcd", want: "Ab\xffCd"},
	})
}

func TestFoldSpace(t *testing.T) {
	runCases(t, "fold_space", []tcase{
		{name: "empty", in: "", want: ""},
		{name: "whitespace only", in: " \t\n\u3000\u00a0 ", want: ""},
		{name: "runs", in: "  a \t\r\n b\u3000\u3000c\u2028d  ", want: "a b c d"},
		{name: "no change", in: "a b", want: "a b"},
		{name: "zero width space is not space", in: "a\u200bb", want: "a\u200bb"},
		{name: "invalid utf8 kept", in: "a \xff  b", want: "a \xff b"},
	})
}

func TestHalfwidth(t *testing.T) {
	runCases(t, "halfwidth", []tcase{
		{name: "empty", in: "", want: ""},
		{name: "digits letters", in: "ＡＢＣ１２３ａｂｃ", want: "ABC123abc"},
		{name: "punctuation and space", in: "！＃（）＠～\u3000", want: "!#()@~ "},
		{name: "mixed widths", in: "電話：０１０－１２３４", want: "電話:010-1234"},
		{name: "cjk and kana alone", in: "北京、カタカナ。ｶﾀｶﾅ", want: "北京、カタカナ。ｶﾀｶﾅ"},
		{name: "edges of range", in: "\uff00\uff01\uff5e\uff5f", want: "\uff00!~\uff5f"},
		{name: "invalid utf8 kept", in: "\xffＡ", want: "\xffA"},
	})
}

func TestNormalize(t *testing.T) {
	runCases(t, "normalize", []tcase{
		{name: "empty", in: "", want: ""},
		{name: "nfc default", in: "e\u0301", want: "é"},
		{name: "nfd", args: map[string]string{"form": "NFD"}, in: "é", want: "e\u0301"},
		{name: "nfkc full width and ligature", args: map[string]string{"form": "NFKC"}, in: "ＡＢ１ ﬁ ①", want: "AB1 fi 1"},
		{name: "nfkd", args: map[string]string{"form": "NFKD"}, in: "ｶﾞ", want: "カ\u3099"},
		{name: "already normal", in: "北京 abc", want: "北京 abc"},
	})
}

func TestMaxLength(t *testing.T) {
	n3 := map[string]string{"n": "3"}
	tr := map[string]string{"n": "3", "truncate": "true"}
	runCases(t, "max_length", []tcase{
		{name: "empty", args: n3, in: "", want: ""},
		{name: "exact runes", args: n3, in: "北京市", want: "北京市"},
		{name: "too long", args: n3, in: "北京市区", err: true, want: `"北京市区" is 4 characters long, more than 3`},
		{name: "whitespace counts", args: n3, in: "    ", err: true, want: `"    " is 4 characters long, more than 3`},
		{name: "truncate", args: tr, in: "北京市区", want: "北京市"},
		{name: "truncate ascii", args: tr, in: "abcdef", want: "abc"},
		{name: "combining marks count", args: n3, in: "e\u0301e\u0301", err: true, want: "\"e\u0301e\u0301\" is 4 characters long, more than 3"},
		{name: "huge value quoted short", args: n3, in: strings.Repeat("x", 100), err: true, want: `"` + strings.Repeat("x", 64) + `"… is 100 characters long, more than 3`},
	})
	compileErrs(t, "max_length", map[string]map[string]string{
		`max_length: argument "n": want an integer in 1..10485760, got "0"`: {"n": "0"},
	})
}

func TestMaxLengthTruncateKeepsValidUTF8(t *testing.T) {
	f := mustCompile(t, "max_length", map[string]string{"n": "2", "truncate": "true"})
	out, err := f.Apply([]byte("é北\xffx"), nil)
	if err != nil || string(out) != "é北" || !utf8.Valid(out) {
		t.Fatalf("= %q, %v", out, err)
	}
}

func TestEmptyToNull(t *testing.T) {
	blank := map[string]string{"blank": "true"}
	also := map[string]string{"also": `N/A|-|NULL`, "ci": "true"}
	runCases(t, "empty_to_null", []tcase{
		{name: "empty", in: "", want: "NULL", err: true},
		{name: "space kept by default", in: " ", want: " "},
		{name: "blank", args: blank, in: " \u3000\t", want: "NULL", err: true},
		{name: "blank keeps value", args: blank, in: " a ", want: " a "},
		{name: "placeholder", args: also, in: "n/a", want: "NULL", err: true},
		{name: "placeholder exact", args: map[string]string{"also": "N/A"}, in: "n/a", want: "n/a"},
		{name: "placeholder dash", args: also, in: "-", want: "NULL", err: true},
		{name: "value", args: also, in: "none", want: "none"},
	})
	compileErrs(t, "empty_to_null", map[string]map[string]string{
		`empty_to_null: argument "also": has an empty entry`: {"also": "a||b"},
	})
}

func TestTextFuncsDoNotAllocate(t *testing.T) {
	in := []byte("  Ｍａｒｙ-JANE  o'neil\u3000北京 ")
	dst := make([]byte, 0, 256)
	for _, name := range []string{"trim", "lower", "upper", "title", "fold_space", "halfwidth", "normalize", "empty_to_null"} {
		f := mustCompile(t, name, nil)
		if a := testing.AllocsPerRun(100, func() { _, _ = f.Apply(in, dst[:0]) }); a != 0 {
			t.Errorf("%s allocates %.1f per value", name, a)
		}
	}
}

func FuzzTextFuncs(f *testing.F) {
	for _, s := range []string{"", " a ", "ＡＢ\u3000c", "ǆ e\u0301", "\xff\xfe", "Straße"} {
		f.Add(s)
	}
	funcs := map[string]Func{}
	for _, name := range []string{"trim", "lower", "upper", "title", "fold_space", "halfwidth", "normalize"} {
		funcs[name] = mustCompile(f, name, nil)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for name, fn := range funcs {
			out, err := fn.Apply([]byte(s), nil)
			if err != nil {
				t.Fatalf("%s(%q): %v", name, s, err)
			}
			if utf8.ValidString(s) && !utf8.Valid(out) {
				t.Fatalf("%s(%q) = %q: invalid UTF-8 from valid input", name, s, out)
			}
			// Idempotent functions: applying twice changes nothing.
			if name == "trim" || name == "fold_space" || name == "halfwidth" || name == "normalize" {
				again, _ := fn.Apply(out, nil)
				if string(again) != string(out) {
					t.Fatalf("%s not idempotent on %q: %q then %q", name, s, out, again)
				}
			}
		}
	})
}
