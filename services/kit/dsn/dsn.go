// Package dsn redacts credentials from connection strings before they reach
// a log line, span attribute, API response or report, and scrubs them from
// messages (driver errors) that may quote a DSN or its password.
package dsn

import (
	"net/url"
	"regexp"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

const mask = "xxxxx"

var (
	// A URL DSN: scheme://… (postgres://, mysql://, …).
	urlPrefix = regexp.MustCompile(`^\s*[A-Za-z][A-Za-z0-9+.-]*://`)
	// A libpq key=value DSN starts with a keyword and '='.
	kvPrefix = regexp.MustCompile(`^\s*[A-Za-z_][A-Za-z0-9_]*\s*=`)
	// go-sql-driver's "@net(address)" marks its form even when the
	// password makes the start look like a URL (user "root", password
	// "//x" reads "root://x@tcp(…)").
	netAddr = regexp.MustCompile(`@[A-Za-z][A-Za-z0-9]*\(`)
	// libpq key=value password (and sslpassword). A quoted value runs to
	// its closing quote (backslash escapes it) or, unterminated, to the
	// end; anything glued after the closing quote is hidden too. An
	// unquoted value runs to the next unescaped blank.
	kvPassword = regexp.MustCompile(`(?i)password\s*=\s*('(?:[^'\\]|\\[\s\S])*(?:'\S*|\\?$)|(?:\\[\s\S]|[^\s\\])*\\?)`)
	// A password in a URL query: ?password=…, &sslpassword=….
	queryPassword = regexp.MustCompile(`(?i)[?&;][a-z_]*password=([^&#]*)`)
)

// span is a byte range [from, to) of a DSN to hide.
type span struct{ from, to int }

// Redact replaces the password of a URL, libpq key=value or go-sql-driver
// DSN with a mask and leaves the rest as written. When the form is
// ambiguous (an unescaped '@', '/', '?' or '#' in a URL password, a
// password that itself looks like another form), it hides more rather
// than less: a DSN that does not parse may still be someone's password.
func Redact(s string) string {
	return apply(s, spans(s))
}

// Password returns the password of a DSN as its driver would read it
// (percent-decoded in a URL, unquoted in key=value), and whether it has one.
func Password(s string) (string, bool) {
	switch {
	case netAddr.MatchString(s) && !kvPrefix.MatchString(s), !urlPrefix.MatchString(s) && !kvPrefix.MatchString(s):
		if sp, ok := mysqlSpan(s); ok {
			return s[sp.from:sp.to], true
		}
		return "", false
	case urlPrefix.MatchString(s):
		if u, err := url.Parse(strings.TrimSpace(s)); err == nil {
			if p, ok := u.User.Password(); ok {
				return p, true
			}
			for k, v := range u.Query() {
				if strings.EqualFold(k, "password") && len(v) > 0 {
					return v[0], true
				}
			}
			return "", false
		}
		// Unparseable: what Redact hides, after the user.
		for _, sp := range urlSpans(s) {
			raw := s[sp.from:sp.to]
			if _, p, ok := strings.Cut(raw, ":"); ok {
				raw = p
			}
			if p, err := url.PathUnescape(raw); err == nil {
				return p, true
			}
			return raw, true
		}
		return "", false
	default:
		m := kvPassword.FindStringSubmatch(s)
		if m == nil {
			return "", false
		}
		return unquoteKV(m[1]), true
	}
}

// spans finds the password in every reading of s that applies.
func spans(s string) []span {
	var out []span
	isURL := urlPrefix.MatchString(s)
	isKV := !isURL && kvPrefix.MatchString(s)
	if isURL {
		out = append(out, urlSpans(s)...)
	}
	if isKV {
		for _, m := range kvPassword.FindAllStringSubmatchIndex(s, -1) {
			out = append(out, span{m[2], m[3]})
		}
	}
	if (!isURL && !isKV) || netAddr.MatchString(s) {
		if sp, ok := mysqlSpan(s); ok {
			out = append(out, sp)
		}
	}
	return out
}

// urlSpans finds the password of scheme://user:password@host/…?password=….
func urlSpans(s string) []span {
	start := strings.Index(s, "://") + 3
	rest := s[start:]
	authEnd := len(rest)
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authEnd = i
	}
	var out []span
	_, err := url.Parse(strings.TrimSpace(s))
	if lastAt := strings.LastIndexByte(rest, '@'); lastAt >= authEnd || (err != nil && lastAt >= 0) {
		// An '@' past the authority: the password may hold a raw '/',
		// '?' or '#' (or the URL does not parse at all). Hide everything
		// up to the last '@' if it could hold a user:password pair.
		if strings.IndexByte(rest[:lastAt], ':') >= 0 {
			out = append(out, span{start, start + lastAt})
		}
	} else if lastAt >= 0 {
		// url.Parse's reading: userinfo ends at the last '@' of the
		// authority, the password starts after its first ':'.
		if c := strings.IndexByte(rest[:lastAt], ':'); c >= 0 {
			out = append(out, span{start + c + 1, start + lastAt})
		}
	}
	if q := strings.IndexByte(rest, '?'); q >= 0 {
		for _, m := range queryPassword.FindAllStringSubmatchIndex(rest[q:], -1) {
			out = append(out, span{start + q + m[2], start + q + m[3]})
		}
	}
	return out
}

// mysqlSpan finds the password of user:password@net(addr)/db?params the
// way go-sql-driver reads it: up to the last '@' before the last '/', from
// the first ':'. The password may hold '@', ':' and '/' itself.
func mysqlSpan(s string) (span, bool) {
	head := s
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		head = s[:i]
	}
	at := strings.LastIndexByte(head, '@')
	if at < 0 {
		return span{}, false
	}
	c := strings.IndexByte(s[:at], ':')
	if c < 0 {
		return span{}, false
	}
	return span{c + 1, at}, true
}

// apply replaces the union of spans in s with one mask each.
func apply(s string, sp []span) string {
	if len(sp) == 0 {
		return s
	}
	sort.Slice(sp, func(i, j int) bool { return sp[i].from < sp[j].from })
	var b strings.Builder
	last := 0
	for i := 0; i < len(sp); {
		from, to := sp[i].from, sp[i].to
		for i++; i < len(sp) && sp[i].from <= to; i++ {
			to = max(to, sp[i].to)
		}
		if from < last {
			from = last
		}
		if to <= from {
			// An empty password ("u:@h") shows as written.
			continue
		}
		b.WriteString(s[last:from])
		b.WriteString(mask)
		last = to
	}
	b.WriteString(s[last:])
	return b.String()
}

// unquoteKV reads a libpq value: quoted or not, a backslash escapes the
// next character.
func unquoteKV(v string) string {
	if strings.HasPrefix(v, "'") {
		v = v[1:]
		if i := closingQuote(v); i >= 0 {
			v = v[:i]
		}
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

func closingQuote(v string) int {
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '\\':
			i++
		case '\'':
			return i
		}
	}
	return -1
}

// Scrub hides credentials in a message, such as a driver's error text:
// each of dsns where it is quoted whole, any URL, go-sql-driver or
// password=… credentials, and each DSN's password wherever it stands
// alone (see RedactSecret).
func Scrub(msg string, dsns ...string) string {
	for _, d := range dsns {
		if d != "" {
			msg = strings.ReplaceAll(msg, d, Redact(d))
		}
	}
	msg = scrubShapes(msg)
	for _, d := range dsns {
		if p, ok := Password(d); ok {
			msg = redactBare(msg, p)
		}
	}
	return msg
}

// RedactSecret hides a known password in a message, such as a driver's
// error text. Credentials in DSN shapes (scheme://user:secret@,
// user:secret@tcp(…), password=secret, :secret@) are hidden whatever the
// secret's length. The secret standing alone is replaced only when it is
// long enough not to be part of ordinary words: from 4 characters where
// it is not glued to letters or digits, from 8 anywhere. So a password "e"
// leaves "failed to connect" as it is. Its percent-encoded forms count too.
func RedactSecret(msg, secret string) string {
	msg = scrubShapes(msg)
	if secret == "" {
		return msg
	}
	msg = strings.ReplaceAll(msg, ":"+secret+"@", ":"+mask+"@")
	return redactBare(msg, secret)
}

const (
	// minBare: a shorter secret is hidden only in DSN shapes.
	minBare = 4
	// minAnywhere: a secret this long is hidden even inside a word.
	minAnywhere = 8
)

var (
	urlToken = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://\S*`)
	// A go-sql-driver DSN in running text: user:…@net(…) or user:…@/db.
	mysqlToken = regexp.MustCompile(`[^\s:@/'"` + "`" + `]*:\S*@(?:[A-Za-z][A-Za-z0-9]*\(|/)\S*`)
	// password=… (also passwd, pwd, sslpassword) in running text; a
	// value in single or double quotes, or up to the next blank.
	textPassword = regexp.MustCompile(`(?i)[a-z_]*(?:password|passwd|pwd)\s*=\s*('(?:[^'\\]|\\[\s\S])*(?:'|$)|"(?:[^"\\]|\\[\s\S])*(?:"|$)|\S+)`)
)

// scrubShapes hides credentials that have the shape of a DSN. Every span
// is found in the message as given and hidden at once, so one pass cannot
// misread another's mask.
func scrubShapes(msg string) string {
	var sp, urls []span
	for _, m := range urlToken.FindAllStringIndex(msg, -1) {
		for _, s := range spans(msg[m[0]:m[1]]) {
			sp = append(sp, span{m[0] + s.from, m[0] + s.to})
		}
		urls = append(urls, span{m[0], m[1]})
	}
	for _, m := range mysqlToken.FindAllStringIndex(msg, -1) {
		if overlaps(urls, m[0], m[1]) {
			continue
		}
		if s, ok := mysqlSpan(msg[m[0]:m[1]]); ok {
			sp = append(sp, span{m[0] + s.from, m[0] + s.to})
		}
	}
	for _, m := range textPassword.FindAllStringSubmatchIndex(msg, -1) {
		// A URL's ?password= is handled with its URL.
		if overlaps(urls, m[0], m[1]) {
			continue
		}
		to := m[3]
		// After '?' or '&' it is a query parameter: it ends at '&' or '#'.
		if m[0] > 0 && strings.IndexByte("?&;", msg[m[0]-1]) >= 0 {
			if i := strings.IndexAny(msg[m[2]:to], "&#"); i >= 0 {
				to = m[2] + i
			}
		}
		sp = append(sp, span{m[2], to})
	}
	return apply(msg, sp)
}

func overlaps(list []span, from, to int) bool {
	for _, s := range list {
		if from < s.to && s.from < to {
			return true
		}
	}
	return false
}

// redactBare replaces secret and its percent-encoded forms where they stand
// alone (see RedactSecret for the length rules).
func redactBare(msg, secret string) string {
	n := utf8.RuneCountInString(secret)
	if n < minBare {
		return msg
	}
	forms := []string{secret}
	if u := strings.TrimPrefix(url.UserPassword("", secret).String(), ":"); u != secret {
		forms = append(forms, u)
	}
	for _, f := range []string{url.QueryEscape(secret), url.PathEscape(secret)} {
		if f != secret && !contains(forms, f) {
			forms = append(forms, f)
		}
	}
	for _, f := range forms {
		if n >= minAnywhere {
			msg = strings.ReplaceAll(msg, f, mask)
		} else {
			msg = replaceWord(msg, f)
		}
	}
	return msg
}

// replaceWord replaces the occurrences of f that are not glued to a letter
// or digit on a side where f itself starts or ends with one.
func replaceWord(msg, f string) string {
	first, _ := utf8.DecodeRuneInString(f)
	last, _ := utf8.DecodeLastRuneInString(f)
	var b strings.Builder
	i := 0
	for {
		j := strings.Index(msg[i:], f)
		if j < 0 {
			break
		}
		j += i
		before, _ := utf8.DecodeLastRuneInString(msg[:j])
		after, _ := utf8.DecodeRuneInString(msg[j+len(f):])
		if (j > 0 && word(first) && word(before)) || (j+len(f) < len(msg) && word(last) && word(after)) {
			b.WriteString(msg[i : j+1])
			i = j + 1
			continue
		}
		b.WriteString(msg[i:j])
		b.WriteString(mask)
		i = j + len(f)
	}
	if i == 0 {
		return msg
	}
	b.WriteString(msg[i:])
	return b.String()
}

func word(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
