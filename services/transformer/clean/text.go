package clean

import (
	"bytes"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Text functions. Invalid UTF-8 bytes are copied through unchanged (they are
// not letters or spaces); the transformer's text cast rejects them later.

func init() {
	register("trim", newTrim)
	register("lower", func(*Args) (Func, error) { return caseFunc(unicode.ToLower), nil })
	register("upper", func(*Args) (Func, error) { return caseFunc(unicode.ToUpper), nil })
	register("title", func(*Args) (Func, error) { return titleFunc{}, nil })
	register("fold_space", func(*Args) (Func, error) { return foldSpace{}, nil })
	register("halfwidth", func(*Args) (Func, error) { return halfwidth{}, nil })
	register("normalize", newNormalize)
	register("max_length", newMaxLength)
	register("empty_to_null", newEmptyToNull)
}

// isBlank is Unicode White_Space plus the zero-width space and the BOM,
// which legacy exports leave around values and nobody means.
func isBlank(r rune) bool {
	return unicode.IsSpace(r) || r == '\u200b' || r == '\ufeff'
}

// trim removes leading and trailing blanks, or the runes of chars.
type trim struct{ chars []rune }

func newTrim(a *Args) (Func, error) {
	t := trim{}
	if a.Has("chars") {
		s, err := a.Required("chars")
		if err != nil {
			return nil, err
		}
		if !utf8.ValidString(s) {
			return nil, a.Errorf("chars", "is not valid UTF-8")
		}
		t.chars = []rune(s)
	}
	return t, nil
}

func (t trim) cut(r rune) bool {
	if t.chars == nil {
		return isBlank(r)
	}
	for _, c := range t.chars {
		if c == r {
			return true
		}
	}
	return false
}

func (t trim) Apply(in, dst []byte) ([]byte, error) {
	for len(in) > 0 {
		r, n := utf8.DecodeRune(in)
		if (r == utf8.RuneError && n == 1) || !t.cut(r) {
			break
		}
		in = in[n:]
	}
	for len(in) > 0 {
		r, n := utf8.DecodeLastRune(in)
		if (r == utf8.RuneError && n == 1) || !t.cut(r) {
			break
		}
		in = in[:len(in)-n]
	}
	return append(dst, in...), nil
}

// caseFunc maps every rune (lower, upper).
type caseFunc func(rune) rune

func (f caseFunc) Apply(in, dst []byte) ([]byte, error) {
	for i := 0; i < len(in); {
		c := in[i]
		if c < utf8.RuneSelf {
			dst = append(dst, byte(f(rune(c))))
			i++
			continue
		}
		r, n := utf8.DecodeRune(in[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, c)
		} else {
			dst = utf8.AppendRune(dst, f(r))
		}
		i += n
	}
	return dst, nil
}

// titleFunc title-cases the first letter of each word and lower-cases the
// rest. A word starts at a letter not preceded by a letter, digit, mark or
// apostrophe: "mary-jane o'neil 3rd" → "Mary-Jane O'neil 3rd".
type titleFunc struct{}

func (titleFunc) Apply(in, dst []byte) ([]byte, error) {
	inWord := false
	for i := 0; i < len(in); {
		r, n := utf8.DecodeRune(in[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, in[i])
			inWord = false
			i++
			continue
		}
		i += n
		switch {
		case unicode.IsLetter(r):
			if inWord {
				r = unicode.ToLower(r)
			} else {
				r = unicode.ToTitle(r)
			}
			inWord = true
		case unicode.IsDigit(r) || unicode.IsMark(r) || r == '\'' || r == '’':
			inWord = inWord || unicode.IsDigit(r)
		default:
			inWord = false
		}
		dst = utf8.AppendRune(dst, r)
	}
	return dst, nil
}

// foldSpace collapses each run of Unicode whitespace to one ASCII space and
// trims both ends.
type foldSpace struct{}

func (foldSpace) Apply(in, dst []byte) ([]byte, error) {
	pending := false
	start := len(dst)
	for i := 0; i < len(in); {
		c := in[i]
		var r rune
		n := 1
		if c < utf8.RuneSelf {
			r = rune(c)
		} else {
			r, n = utf8.DecodeRune(in[i:])
		}
		if unicode.IsSpace(r) {
			pending = len(dst) > start
		} else {
			if pending {
				dst = append(dst, ' ')
				pending = false
			}
			dst = append(dst, in[i:i+n]...)
		}
		i += n
	}
	return dst, nil
}

// halfwidth maps full-width ASCII forms U+FF01–U+FF5E and the ideographic
// space U+3000 to ASCII; CJK and everything else is left alone.
type halfwidth struct{}

func (halfwidth) Apply(in, dst []byte) ([]byte, error) {
	for i := 0; i < len(in); {
		c := in[i]
		if c < utf8.RuneSelf {
			dst = append(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(in[i:])
		switch {
		case r >= 0xFF01 && r <= 0xFF5E:
			dst = append(dst, byte(r-0xFEE0))
		case r == 0x3000:
			dst = append(dst, ' ')
		default:
			dst = append(dst, in[i:i+n]...)
		}
		i += n
	}
	return dst, nil
}

type normalize struct{ form norm.Form }

func newNormalize(a *Args) (Func, error) {
	f, err := a.OneOf("form", "NFC", "NFC", "NFD", "NFKC", "NFKD")
	if err != nil {
		return nil, err
	}
	forms := map[string]norm.Form{"NFC": norm.NFC, "NFD": norm.NFD, "NFKC": norm.NFKC, "NFKD": norm.NFKD}
	return normalize{forms[f]}, nil
}

func (n normalize) Apply(in, dst []byte) ([]byte, error) {
	if n.form.IsNormal(in) {
		return append(dst, in...), nil
	}
	return n.form.Append(dst, in...), nil
}

// maxLength counts code points, as PostgreSQL's varchar(n) does.
type maxLength struct {
	n        int
	truncate bool
}

func newMaxLength(a *Args) (Func, error) {
	if _, err := a.Required("n"); err != nil {
		return nil, err
	}
	n, err := a.Int("n", 0, 1, 10485760)
	if err != nil {
		return nil, err
	}
	tr, err := a.Bool("truncate", false)
	if err != nil {
		return nil, err
	}
	return maxLength{n, tr}, nil
}

func (m maxLength) Apply(in, dst []byte) ([]byte, error) {
	if len(in) <= m.n {
		return append(dst, in...), nil
	}
	count := utf8.RuneCount(in)
	if count <= m.n {
		return append(dst, in...), nil
	}
	if !m.truncate {
		return dst, badValue("%s is %d characters long, more than %d", quoteValue(in), count, m.n)
	}
	cut, k := 0, 0
	for k < m.n {
		_, size := utf8.DecodeRune(in[cut:])
		cut += size
		k++
	}
	return append(dst, in[:cut]...), nil
}

// emptyToNull returns ErrNull for "", for blank values when blank=true, and
// for the placeholders listed in also ("N/A|-"), compared exactly or with
// Unicode case folding when ci=true.
type emptyToNull struct {
	blank bool
	also  [][]byte
	ci    bool
}

func newEmptyToNull(a *Args) (Func, error) {
	var e emptyToNull
	var err error
	if e.blank, err = a.Bool("blank", false); err != nil {
		return nil, err
	}
	if e.ci, err = a.Bool("ci", false); err != nil {
		return nil, err
	}
	if a.Has("also") {
		s, err := a.Required("also")
		if err != nil {
			return nil, err
		}
		for _, v := range SplitList(s, '|') {
			if v == "" {
				return nil, a.Errorf("also", "has an empty entry")
			}
			e.also = append(e.also, []byte(v))
		}
	}
	return e, nil
}

func (e emptyToNull) Apply(in, dst []byte) ([]byte, error) {
	if len(in) == 0 {
		return dst, ErrNull
	}
	if e.blank && len(bytes.TrimFunc(in, isBlank)) == 0 {
		return dst, ErrNull
	}
	for _, v := range e.also {
		if bytes.Equal(in, v) || (e.ci && bytes.EqualFold(in, v)) {
			return dst, ErrNull
		}
	}
	return append(dst, in...), nil
}
