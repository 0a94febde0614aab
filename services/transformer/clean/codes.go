package clean

import (
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Code functions compare the whole value as given (chain trim first).
//
//	map   table="old=new|old2=new2" (required; '\' escapes '|', '=' and
//	      '\'), ci=true compares with Unicode case folding, default=V is
//	      the output for codes not in the table (absent: they are errors)
//	enum  values="a|b|c" (required), ci=true; with ci the output is the
//	      listed spelling ("ACTIVE" → "active")
func init() {
	register("map", newMap)
	register("enum", newEnum)
}

// foldKey appends s with every rune replaced by the smallest rune of its
// case-folding orbit, so that K, k and the Kelvin sign share one key.
func foldKey(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 'a' && c <= 'z' { // an ASCII orbit's smallest is the upper case
				c -= 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, s[i])
			i++
			continue
		}
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		dst = utf8.AppendRune(dst, m)
		i += n
	}
	return dst
}

// codeTable maps a (folded) code to its output.
type codeTable struct {
	m     map[string]string
	ci    bool
	known string // the listed codes, for error messages
}

func (t *codeTable) lookup(in []byte) (string, bool) {
	if !t.ci {
		v, ok := t.m[string(in)]
		return v, ok
	}
	var buf [64]byte
	v, ok := t.m[string(foldKey(buf[:0], in))]
	return v, ok
}

func knownList(codes []string) string {
	const show = 20
	var b strings.Builder
	for k, c := range codes {
		if k == show {
			b.WriteString(", … " + strconv.Itoa(len(codes)-show) + " more")
			break
		}
		if k > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c)
	}
	return b.String()
}

type mapFunc struct {
	codeTable
	def    string
	hasDef bool
}

func newMap(a *Args) (Func, error) {
	f := &mapFunc{codeTable: codeTable{m: map[string]string{}}}
	table, err := a.Required("table")
	if err != nil {
		return nil, err
	}
	if f.ci, err = a.Bool("ci", false); err != nil {
		return nil, err
	}
	var codes []string
	for _, e := range SplitList(table, '|') {
		kv := SplitList(e, '=')
		if len(kv) != 2 {
			return nil, a.Errorf("table", "entry %q: want old=new", e)
		}
		key := kv[0]
		if f.ci {
			key = string(foldKey(nil, []byte(key)))
		}
		if _, dup := f.m[key]; dup {
			return nil, a.Errorf("table", "code %q is listed twice", kv[0])
		}
		f.m[key] = kv[1]
		codes = append(codes, kv[0])
	}
	slices.Sort(codes)
	f.known = knownList(codes)
	if a.Has("default") {
		f.def, f.hasDef = a.String("default", ""), true
	}
	return f, nil
}

func (f *mapFunc) Apply(in, dst []byte) ([]byte, error) {
	if v, ok := f.lookup(in); ok {
		return append(dst, v...), nil
	}
	if f.hasDef {
		return append(dst, f.def...), nil
	}
	return dst, badValue("unknown code %s (known: %s)", quoteValue(in), f.known)
}

type enumFunc struct{ codeTable }

func newEnum(a *Args) (Func, error) {
	f := &enumFunc{codeTable{m: map[string]string{}}}
	list, err := a.Required("values")
	if err != nil {
		return nil, err
	}
	if f.ci, err = a.Bool("ci", false); err != nil {
		return nil, err
	}
	values := SplitList(list, '|')
	for _, v := range values {
		key := v
		if f.ci {
			key = string(foldKey(nil, []byte(v)))
		}
		if _, dup := f.m[key]; dup {
			return nil, a.Errorf("values", "%q is listed twice", v)
		}
		f.m[key] = v
	}
	f.known = knownList(values)
	return f, nil
}

func (f *enumFunc) Apply(in, dst []byte) ([]byte, error) {
	if v, ok := f.lookup(in); ok {
		return append(dst, v...), nil
	}
	return dst, badValue("%s is not one of: %s", quoteValue(in), f.known)
}
