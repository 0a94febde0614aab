package clean

import (
	"bytes"
	"fmt"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// email checks an address's syntax and writes it in one canonical form:
// surrounding space trimmed, full-width ASCII (common in CJK exports) folded
// to ASCII, the domain lowercased and, when it is Unicode, IDNA-encoded
// (punycode, "xn--…") so it compares byte-for-byte with what mail systems
// store.
//
// Arguments:
//   - lower_local (default false): also lowercase the local part. RFC 5321
//     makes the local part case-sensitive, so this is the spec author's call.
//   - gmail_dots (default false): for gmail.com and googlemail.com drop dots
//     and a "+tag" from the local part, which Gmail ignores (for dedupe).
//
// Checked: exactly one @, a local part of 1..64 bytes of dot-atom text
// (RFC 5322 atext, or UTF-8 per RFC 6531) with no leading, trailing or double
// dot, and a domain name of at most 253 bytes with at least one dot, labels of
// 1..63 letters, digits or inner hyphens and a non-numeric top-level label.
// Quoted local parts and address literals ("[1.2.3.4]") are refused: they
// are legal but in a legacy export they are far likelier to be garbage.
type emailFunc struct {
	lowerLocal bool
	gmailDots  bool
}

func init() { register("email", compileEmail) }

func compileEmail(a *Args) (Func, error) {
	f := &emailFunc{}
	var err error
	if f.lowerLocal, err = a.Bool("lower_local", false); err != nil {
		return nil, err
	}
	if f.gmailDots, err = a.Bool("gmail_dots", false); err != nil {
		return nil, err
	}
	return f, nil
}

// atext is RFC 5322's set of characters allowed in a dot-atom, besides '.'.
var atext = func() (t [128]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "!#$%&'*+-/=?^_`{|}~" {
		t[c] = true
	}
	return t
}()

func (f *emailFunc) Apply(in, dst []byte) ([]byte, error) {
	start := len(dst)
	// Fold widths and trim straight into dst; the checks below then work on
	// the folded copy, so no per-value allocation on the ASCII path.
	raw := trimSpace(in)
	dst = appendFoldWidth(dst, raw)
	s := dst[start:]
	fail := func(format string, v ...any) ([]byte, error) {
		return dst[:start], badValue(format, v...)
	}
	if len(s) == 0 {
		return fail("empty email address")
	}
	at := bytes.IndexByte(s, '@')
	switch {
	case at < 0:
		return fail("invalid email %s: no @", quoteValue(raw))
	case bytes.IndexByte(s[at+1:], '@') >= 0:
		return fail("invalid email %s: more than one @", quoteValue(raw))
	}
	local, domain := s[:at], s[at+1:]
	if msg := checkLocal(local); msg != "" {
		return fail("invalid email %s: local part %s", quoteValue(raw), msg)
	}
	// Rebuild the domain after the local part; we keep the folded local part
	// in place and rewrite from the @ on.
	var ascii string
	isASCII := true
	for _, c := range domain {
		if c >= utf8.RuneSelf {
			isASCII = false
			break
		}
	}
	if !isASCII {
		if !utf8.Valid(domain) {
			return fail("invalid email %s: domain is not valid UTF-8", quoteValue(raw))
		}
		d, err := idna.Lookup.ToASCII(string(domain))
		if err != nil {
			return fail("invalid email %s: domain %s is not a valid internationalised name", quoteValue(raw), quoteValue(domain))
		}
		ascii = d
	}
	if f.gmailDots || f.lowerLocal || !isASCII {
		// Paths that change length or need the original domain: rebuild in a
		// second region of dst, then move it down.
		mid := len(dst)
		dst = f.appendLocal(dst, local, isGmail(domain, ascii))
		if len(dst) == mid {
			return dst[:start], badValue("invalid email %s: local part is empty once the +tag is removed", quoteValue(raw))
		}
		dst = append(dst, '@')
		if isASCII {
			dst = appendLowerASCII(dst, domain)
		} else {
			dst = append(dst, ascii...)
		}
		n := copy(dst[start:], dst[mid:])
		dst = dst[:start+n]
	} else {
		lowerASCIIInPlace(domain)
	}
	d := dst[start+bytes.IndexByte(dst[start:], '@')+1:]
	if msg := checkDomain(d); msg != "" {
		return dst[:start], badValue("invalid email %s: domain %s", quoteValue(raw), msg)
	}
	return dst, nil
}

func isGmail(domain []byte, ascii string) bool {
	if ascii != "" {
		return false
	}
	return asciiEqualFold(domain, "gmail.com") || asciiEqualFold(domain, "googlemail.com")
}

// appendLocal writes the local part, lowercased and/or with Gmail's dots and
// +tag removed as configured.
func (f *emailFunc) appendLocal(dst, local []byte, gmail bool) []byte {
	if f.gmailDots && gmail {
		if i := bytes.IndexByte(local, '+'); i >= 0 {
			local = local[:i]
		}
	}
	for i := 0; i < len(local); {
		c := local[i]
		if c < utf8.RuneSelf {
			i++
			if c == '.' && f.gmailDots && gmail {
				continue
			}
			if f.lowerLocal && 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
			continue
		}
		r, n := utf8.DecodeRune(local[i:])
		i += n
		if f.lowerLocal {
			r = unicode.ToLower(r)
		}
		dst = utf8.AppendRune(dst, r)
	}
	return dst
}

// checkLocal returns why local is not a dot-atom local part, or "".
func checkLocal(local []byte) string {
	switch {
	case len(local) == 0:
		return "is empty"
	case len(local) > 64:
		return "is longer than 64 bytes"
	case local[0] == '.' || local[len(local)-1] == '.':
		return "starts or ends with a dot"
	case bytes.Contains(local, []byte("..")):
		return "has two dots in a row"
	}
	for i := 0; i < len(local); {
		c := local[i]
		if c < utf8.RuneSelf {
			if c != '.' && !atext[c] {
				if c == '"' {
					return "is quoted (not supported)"
				}
				return "contains " + quoteRune(rune(c))
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(local[i:])
		if r == utf8.RuneError && n == 1 {
			return "is not valid UTF-8"
		}
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r) {
			return "contains " + quoteRune(r)
		}
		i += n
	}
	return ""
}

// checkDomain returns why d (ASCII, lowercased) is not a host name, or "".
func checkDomain(d []byte) string {
	if len(d) == 0 {
		return "is empty"
	}
	if d[0] == '[' {
		return "is an address literal (not supported)"
	}
	if len(d) > 253 {
		return "is longer than 253 bytes"
	}
	if d[len(d)-1] == '.' {
		return "ends with a dot"
	}
	if bytes.IndexByte(d, '.') < 0 {
		return "has no dot"
	}
	labelStart, digitsOnly := 0, true
	for i := 0; i <= len(d); i++ {
		if i < len(d) && d[i] != '.' {
			c := d[i]
			switch {
			case 'a' <= c && c <= 'z':
				digitsOnly = false
			case '0' <= c && c <= '9':
			case c == '-':
				digitsOnly = false
			default:
				return "contains " + quoteRune(rune(c))
			}
			continue
		}
		label := d[labelStart:i]
		switch {
		case len(label) == 0:
			return "has an empty label"
		case len(label) > 63:
			return "has a label longer than 63 bytes"
		case label[0] == '-' || label[len(label)-1] == '-':
			return "has a label starting or ending with a hyphen"
		}
		if i == len(d) && digitsOnly {
			return "has a numeric top-level label"
		}
		labelStart, digitsOnly = i+1, true
	}
	return ""
}

func quoteRune(r rune) string {
	if r == ' ' {
		return "a space"
	}
	if unicode.IsSpace(r) || unicode.IsControl(r) || !unicode.IsPrint(r) {
		return fmt.Sprintf("U+%04X", r)
	}
	return "'" + string(r) + "'"
}

func lowerASCIIInPlace(b []byte) {
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
}

func appendLowerASCII(dst, b []byte) []byte {
	for _, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// trimSpace trims Unicode white space (including the ideographic space
// U+3000 of CJK exports) without allocating.
func trimSpace(b []byte) []byte {
	return bytes.TrimFunc(b, unicode.IsSpace)
}

// appendFoldWidth appends b with full-width ASCII forms (U+FF01..U+FF5E) and
// the ideographic space folded to their ASCII twins; other text is copied.
func appendFoldWidth(dst, b []byte) []byte {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			dst = append(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		switch {
		case r >= 0xFF01 && r <= 0xFF5E:
			dst = append(dst, byte(r-0xFF01+'!'))
		case r == 0x3000:
			dst = append(dst, ' ')
		default:
			dst = append(dst, b[i:i+n]...)
		}
		i += n
	}
	return dst
}
