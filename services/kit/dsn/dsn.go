// Package dsn redacts credentials from connection strings before they reach
// a log line, span attribute, API response or report.
package dsn

import (
	"net/url"
	"regexp"
	"strings"
)

const mask = "xxxxx"

var kvPassword = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// Redact replaces the password of a URL or key=value DSN with a mask.
func Redact(s string) string {
	if s == "" {
		return s
	}
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			// Unparseable: hide everything between scheme and host.
			if i := strings.Index(s, "://"); i >= 0 {
				if j := strings.LastIndex(s, "@"); j > i {
					return s[:i+3] + mask + s[j:]
				}
			}
			return s
		}
		if u.User != nil {
			if _, has := u.User.Password(); has {
				u.User = url.UserPassword(u.User.Username(), mask)
			}
		}
		q := u.Query()
		changed := false
		for k := range q {
			if strings.EqualFold(k, "password") || strings.EqualFold(k, "sslpassword") {
				q.Set(k, mask)
				changed = true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	// go-sql-driver form: user:password@tcp(host:3306)/db?params. The
	// password may itself hold '@', so the last '@' before the address ends it.
	if at := lastAtBeforeAddress(s); at > 0 {
		if colon := strings.IndexByte(s[:at], ':'); colon >= 0 {
			return s[:colon+1] + mask + s[at:]
		}
		return s
	}
	return kvPassword.ReplaceAllString(s, "${1}"+mask)
}

func lastAtBeforeAddress(s string) int {
	end := len(s)
	if i := strings.Index(s, "@tcp("); i >= 0 {
		return i
	}
	if i := strings.Index(s, "@unix("); i >= 0 {
		return i
	}
	if i := strings.LastIndex(s, "/"); i >= 0 {
		end = i
	}
	if strings.Contains(s[:end], "=") {
		return -1 // key=value form
	}
	return strings.LastIndex(s[:end], "@")
}
