package extract

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"

	"github.com/cutover/cutover/services/kit/dsn"
	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
)

// hostRule is one entry of the source host allow-list; "*" matches any
// host or any port, "" (no port given) any port.
type hostRule struct{ host, port string }

// hostAllowList says which database hosts sources may name. Empty allows
// any host, unix sockets included; otherwise only TCP to listed hosts.
type hostAllowList []hostRule

// parseSourceHosts reads entries "host", "host:port", "[v6]:port", with
// "*" for a whole host or port (no partial patterns such as "*.corp").
func parseSourceHosts(entries []string) (hostAllowList, error) {
	var out hostAllowList
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			return nil, errors.New("empty entry")
		}
		if e == "*" {
			out = append(out, hostRule{host: "*", port: "*"})
			continue
		}
		host, port := e, ""
		if h, p, err := net.SplitHostPort(e); err == nil {
			host, port = h, p
		} else if strings.HasPrefix(e, "[") && strings.HasSuffix(e, "]") {
			host = e[1 : len(e)-1]
		} else if strings.Contains(e, ":") && net.ParseIP(e) == nil {
			return nil, fmt.Errorf("entry %q is not host, host:port or [ipv6]:port", e)
		}
		if host == "" || strings.ContainsAny(host, "/@ \t") || host != "*" && strings.Contains(host, "*") {
			return nil, fmt.Errorf("entry %q: bad host", e)
		}
		if port != "" && port != "*" {
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				return nil, fmt.Errorf("entry %q: bad port", e)
			}
		}
		out = append(out, hostRule{host: normHost(host), port: port})
	}
	return out, nil
}

// normHost makes equal names compare equal: case and a final dot of DNS
// names, the textual forms of one IP address. Names are not resolved.
func normHost(h string) string {
	if ip := net.ParseIP(h); ip != nil {
		return ip.String()
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// allows reports whether a TCP connection to host:port may be made.
func (a hostAllowList) allows(host string, port string) bool {
	if len(a) == 0 {
		return true
	}
	h := normHost(host)
	for _, r := range a {
		if (r.host == "*" || r.host == h) && (r.port == "" || r.port == "*" || r.port == port) {
			return true
		}
	}
	return false
}

// checkTCP refuses a host:port off the list before any connection.
func (a hostAllowList) checkTCP(field, host, port string) error {
	if a.allows(host, port) {
		return nil
	}
	return refusedHost(field, net.JoinHostPort(host, port))
}

// checkSocket refuses a unix socket unless the list is empty: a listed
// host says nothing about the local sockets.
func (a hostAllowList) checkSocket(field, path string) error {
	if len(a) == 0 {
		return nil
	}
	return refusedHost(field, path)
}

func refusedHost(field, hp string) error {
	return invalid(field, "source host %q is not in the extractor's allowed source hosts (CUTOVER_SOURCE_HOSTS)", hp)
}

// checkPG applies the list to every host pgx may dial, fallbacks included.
func (a hostAllowList) checkPG(cfg *pgconn.Config) error {
	const field = "source.postgres.dsn"
	hosts := []*pgconn.FallbackConfig{{Host: cfg.Host, Port: cfg.Port}}
	hosts = append(hosts, cfg.Fallbacks...)
	for _, h := range hosts {
		var err error
		if strings.HasPrefix(h.Host, "/") {
			err = a.checkSocket(field, h.Host)
		} else {
			err = a.checkTCP(field, h.Host, strconv.Itoa(int(h.Port)))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// checkMySQL applies the list to the driver's address.
func (a hostAllowList) checkMySQL(cfg *mysql.Config) error {
	const field = "source.mysql.dsn"
	switch cfg.Net {
	case "tcp", "tcp4", "tcp6":
		host, port, err := net.SplitHostPort(cfg.Addr)
		if err != nil {
			// The driver adds the default port; anything else is not an address.
			return invalid(field, "%s", mysqlDSNHelp)
		}
		return a.checkTCP(field, host, port)
	case "unix":
		return a.checkSocket(field, cfg.Addr)
	}
	// Dialers registered under other names: only when any host is allowed.
	if len(a) == 0 {
		return nil
	}
	return refusedHost(field, cfg.Net+"("+cfg.Addr+")")
}

// connectFailed is the one answer for a source that cannot be connected
// to. Refused, timed out, unresolvable, or answered by something that does
// not speak the protocol all read the same, so the extractor cannot be
// used to scan a network; the cause goes to the log for operators.
// Authentication failures, told by the server itself, may say so.
func connectFailed(kind, source, rawDSN, password string, cause error) error {
	auth := false
	var pe *pgconn.PgError
	var me *mysql.MySQLError
	switch {
	case errors.As(cause, &pe):
		auth = pe.Code == "28P01" || pe.Code == "28000"
	case errors.As(cause, &me):
		auth = me.Number == 1045
	}
	slog.Warn("cannot connect to source", "kind", kind, "source", source,
		"dsn", dsn.Redact(rawDSN), "authentication_failed", auth, "err", scrub(cause.Error(), password))
	if auth {
		return fmt.Errorf("%w: cannot connect to source %s: authentication failed", ErrPrecondition, source)
	}
	return fmt.Errorf("%w: cannot connect to source %s", ErrUnavailable, source)
}

// myConnectError marks a failure to open a MySQL connection (dial,
// handshake, TLS, authentication) apart from failures of an open one.
type myConnectError struct{ err error }

func (e *myConnectError) Error() string { return e.err.Error() }
func (e *myConnectError) Unwrap() error { return e.err }
