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
	return kvPassword.ReplaceAllString(s, "${1}"+mask)
}
