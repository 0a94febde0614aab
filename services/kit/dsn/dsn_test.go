package dsn

import (
	"net/url"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"postgres://u:s3cret@h:5432/db", "postgres://u:xxxxx@h:5432/db"},
		{"postgres://u@h/db", "postgres://u@h/db"},
		{"postgres://u:@h/db", "postgres://u:@h/db"},
		{"postgres://h/db?password=s3cret&sslmode=disable", "postgres://h/db?password=xxxxx&sslmode=disable"},
		{"postgres://u:s3cret@h/db?sslpassword=s3cret&sslmode=require", "postgres://u:xxxxx@h/db?sslpassword=xxxxx&sslmode=require"},
		{"host=h user=u password=s3cret dbname=d", "host=h user=u password=xxxxx dbname=d"},
		{"host=h password='s3 cret' dbname=d", "host=h password=xxxxx dbname=d"},
		{"host=h password = s3cret dbname=d", "host=h password = xxxxx dbname=d"},
		// libpq: a backslash escapes the next character, quoted or not.
		{`host=h password=s3\ cret dbname=d`, "host=h password=xxxxx dbname=d"},
		{`host=h password='it\'s s3cret' dbname=d`, "host=h password=xxxxx dbname=d"},
		// Unterminated quote: the rest may all be password.
		{"host=h password='s3 cret dbname=d", "host=h password=xxxxx"},
		{"postgres://u:s3cret@h:bad port/db", "postgres://xxxxx@h:bad port/db"},
		// Percent-encoded, as url.UserPassword writes it.
		{"postgres://u:p%40ss%3Aw%2Frd%3F@h/db", "postgres://u:xxxxx@h/db"},
		// Raw '@' in the password: url.Parse splits at the last one.
		{"postgres://u:s3c@ret@h/db", "postgres://u:xxxxx@h/db"},
		// Raw '/', '?' or '#': the authority ends early, so everything up
		// to the last '@' is hidden.
		{"postgres://u:s3c/ret@h/db", "postgres://xxxxx@h/db"},
		{"postgres://u:12?34@h/db", "postgres://xxxxx@h/db"},
		{"postgres://u:12#34@h/db", "postgres://xxxxx@h/db"},
		// An '@' later in the URL with no ':' before it is no password.
		{"postgres://u@h/db?application_name=a@b", "postgres://u@h/db?application_name=a@b"},
		{"postgres://u:s3cret@/db?host=/tmp", "postgres://u:xxxxx@/db?host=/tmp"},
		{"root:s3cret@tcp(127.0.0.1:3306)/legacy?parseTime=true", "root:xxxxx@tcp(127.0.0.1:3306)/legacy?parseTime=true"},
		{"root:s3c@ret@tcp(h)/db", "root:xxxxx@tcp(h)/db"},
		{"root:s3c@tcp(ret@tcp(h)/db", "root:xxxxx@tcp(h)/db"},
		{"root:s3c/ret@tcp(h)/db", "root:xxxxx@tcp(h)/db"},
		{"root:s3c=ret@tcp(h)/db", "root:xxxxx@tcp(h)/db"},
		// Password "//s3cret" makes it look like a URL with scheme root.
		{"root://s3cret@tcp(h:3306)/db", "root:xxxxx@tcp(h:3306)/db"},
		{"root:s3cret@unix(/run/mysqld.sock)/db", "root:xxxxx@unix(/run/mysqld.sock)/db"},
		{"root@tcp(127.0.0.1:3306)/legacy", "root@tcp(127.0.0.1:3306)/legacy"},
		{"root:s3cret@/legacy", "root:xxxxx@/legacy"},
		{"host=h password='s3c@tcp(ret' dbname=d", "host=h password=xxxxx dbname=d"},
		{"mysql://root:s3cret@127.0.0.1:3306/legacy", "mysql://root:xxxxx@127.0.0.1:3306/legacy"},
		// Not DSNs with a password.
		{"/var/lib/legacy.db", "/var/lib/legacy.db"},
		{"file:legacy.db?mode=ro", "file:legacy.db?mode=ro"},
	}
	for _, tt := range tests {
		got := Redact(tt.in)
		if got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
		for _, leak := range []string{"s3cret", "s3c", "ret@h", "34"} {
			if strings.Contains(got, leak) && !strings.Contains(tt.want, leak) {
				t.Errorf("Redact(%q) leaks %q: %q", tt.in, leak, got)
			}
		}
		if again := Redact(got); again != got {
			t.Errorf("Redact(Redact(%q)) = %q, want it unchanged %q", tt.in, again, got)
		}
	}
}

func TestPassword(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"postgres://u:p%40ss%3Aw%2Frd@h/db", "p@ss:w/rd", true},
		{"postgres://h/db?password=a%26b", "a&b", true},
		{"postgres://u@h/db", "", false},
		{"postgres://u:s3cret@h:bad port/db", "s3cret", true},
		{`host=h password='it\'s' dbname=d`, "it's", true},
		{`host=h password=a\ b dbname=d`, "a b", true},
		{"host=h dbname=d", "", false},
		{"host=h password='a@tcp(b' dbname=d", "a@tcp(b", true},
		{"root:s3c@ret@tcp(h)/db", "s3c@ret", true},
		{"root://x@tcp(h)/db", "//x", true},
		{"root@tcp(h)/db", "", false},
	}
	for _, tt := range tests {
		got, ok := Password(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Password(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestRedactSecret(t *testing.T) {
	tests := []struct{ msg, secret, want string }{
		// The finding: a one-letter password must not touch prose.
		{"failed to connect", "e", "failed to connect"},
		{"failed to connect", "", "failed to connect"},
		{`password authentication failed for user "app"`, "pass", `password authentication failed for user "app"`},
		{"unknown host abcdef", "abcd", "unknown host abcdef"},
		// In DSN shapes, any length.
		{"connect postgres://app:e@h/db: refused", "e", "connect postgres://app:xxxxx@h/db: refused"},
		{"cannot parse host=h password=e dbname=d", "e", "cannot parse host=h password=xxxxx dbname=d"},
		{"dial root:e@tcp(h:3306)/db: refused", "e", "dial root:xxxxx@tcp(h:3306)/db: refused"},
		{"bad userinfo app:e@", "e", "bad userinfo app:xxxxx@"},
		// Standing alone: from 4 characters when not inside a word.
		{`wrong password "hunter2" given`, "hunter2", `wrong password "xxxxx" given`},
		{"abcd. abcd,abcd", "abcd", "xxxxx. xxxxx,xxxxx"},
		// From 8, anywhere.
		{"xs3cretpasswordx", "s3cretpassword", "xxxxxxx"},
		// Percent-encoded forms and passwords with @ : / ?.
		{"near p%40ss%3A1 in dsn", "p@ss:1", "near xxxxx in dsn"},
		{"url postgres://u:a@b/c?d@h/db: bad", "a@b/c?d", "url postgres://xxxxx@h/db: bad"},
		{"url postgres://u:a%40b%2Fc%3Fd@h/db: bad", "a@b/c?d", "url postgres://u:xxxxx@h/db: bad"},
		{`dsn "root:p@ss/w:rd@tcp(h)/db"`, "p@ss/w:rd", `dsn "root:xxxxx@tcp(h)/db"`},
		{"query ?password=s3cret&sslmode=disable", "s3cret", "query ?password=xxxxx&sslmode=disable"},
		// A URL's query password ends at '&'.
		{"postgres://h/db?password=e&sslmode=disable", "e", "postgres://h/db?password=xxxxx&sslmode=disable"},
	}
	for _, tt := range tests {
		if got := RedactSecret(tt.msg, tt.secret); got != tt.want {
			t.Errorf("RedactSecret(%q, %q) = %q, want %q", tt.msg, tt.secret, got, tt.want)
		}
	}
}

func TestScrub(t *testing.T) {
	const pg = "postgres://app:s3cr@t@db:5432/shop"
	const my = "root:e@tcp(db:3306)/legacy"
	tests := []struct {
		msg  string
		dsns []string
		want string
	}{
		{"failed to connect to " + pg + ": timeout", []string{pg}, "failed to connect to postgres://app:xxxxx@db:5432/shop: timeout"},
		{"failed to connect", []string{my}, "failed to connect"},
		{"open " + my + ": refused", []string{my}, "open root:xxxxx@tcp(db:3306)/legacy: refused"},
		{"server said s3cr@t", []string{pg}, "server said xxxxx"},
		{"failed to connect", nil, "failed to connect"},
		// Credentials in DSN shapes go even when the DSN is not given.
		{"open mysql://u:pw@h/db", nil, "open mysql://u:xxxxx@h/db"},
		{`config: password="a b" host=x`, nil, `config: password=xxxxx host=x`},
		{"config: PWD=abc;", nil, "config: PWD=xxxxx"},
	}
	for _, tt := range tests {
		if got := Scrub(tt.msg, tt.dsns...); got != tt.want {
			t.Errorf("Scrub(%q, %q) = %q, want %q", tt.msg, tt.dsns, got, tt.want)
		}
	}
}

// FuzzRedact: a DSN in any of the forms cutover accepts, with any password
// of 4 or more printable characters, never shows that password (raw or in
// the encoding the form uses) after Redact, beyond what the DSN without a
// password already says.
func FuzzRedact(f *testing.F) {
	for i, p := range []string{"s3cret", "p@ss:w/rd?", "a b'c\\d", "//x@tcp(", "12#34", "%zz!", "password=", "汉字密码"} {
		f.Add(uint8(i), p)
	}
	f.Fuzz(func(t *testing.T, form uint8, pw string) {
		if !utf8.ValidString(pw) || utf8.RuneCountInString(pw) < 4 {
			t.Skip()
		}
		for _, r := range pw {
			if !unicode.IsPrint(r) {
				t.Skip()
			}
		}
		build, encode := fuzzForm(form)
		in := build(encode(pw))
		out := Redact(in)
		// Where the mask stands nothing can match across it.
		seen := strings.ReplaceAll(out, mask, "\x00")
		bare := build("")
		for _, leak := range []string{pw, encode(pw)} {
			if strings.Contains(seen, leak) && !strings.Contains(bare, leak) {
				t.Fatalf("Redact(%q) = %q shows the password %q", in, out, leak)
			}
		}
	})
}

// fuzzForm returns how a DSN of one form is built around an encoded
// password, and that encoding.
func fuzzForm(form uint8) (build func(string) string, encode func(string) string) {
	raw := func(s string) string { return s }
	userinfo := func(s string) string { return strings.TrimPrefix(url.UserPassword("", s).String(), ":") }
	switch form % 6 {
	case 0:
		return func(p string) string { return "postgres://app:" + p + "@db.internal:5432/shop?sslmode=disable" }, userinfo
	case 1:
		return func(p string) string {
			return "postgres://app@db.internal:5432/shop?password=" + p + "&sslmode=disable"
		}, url.QueryEscape
	case 2:
		// libpq quoting: backslash before ' and \.
		quote := func(s string) string {
			return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
		}
		return func(p string) string { return "host=db.internal port=5432 user=app password=" + p + " dbname=shop" }, quote
	case 3:
		// go-sql-driver takes the password raw.
		return func(p string) string { return "app:" + p + "@tcp(db.internal:3306)/shop?parseTime=true" }, raw
	case 4:
		// Written by hand without escaping: not valid, still secret.
		return func(p string) string { return "postgres://app:" + p + "@db.internal:5432/shop" }, raw
	default:
		return func(p string) string { return "mysql://app:" + p + "@db.internal:3306/shop" }, userinfo
	}
}
