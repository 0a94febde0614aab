package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/kit/jobreport"
)

// DefaultMaxBodyBytes bounds a request body when Options.MaxBodyBytes is 0.
// A job spec is a few KiB; 4 MiB leaves room for large mappings.
const DefaultMaxBodyBytes = 4 << 20

// guard is what a browser needs from the gateway before any route sees a
// request: the Host must be one of ours (DNS rebinding), /v1/ refuses
// other sites' pages (Origin, Sec-Fetch-Site) unless configured for CORS,
// a body must be JSON (a cross-site form or no-cors fetch cannot send
// that) and bounded, and every response carries the security headers.
type guard struct {
	next     http.Handler
	hosts    []hostPort
	origins  map[string]bool
	maxBody  int64
	tooLarge string
}

// hostPort is an allowed Host: a name (lower case, no brackets or trailing
// dot) and a port, or any port when port is "".
type hostPort struct{ host, port string }

// newGuard checks opts and wraps next.
func newGuard(opts Options, next http.Handler) (*guard, error) {
	g := &guard{next: next, origins: map[string]bool{}, maxBody: opts.MaxBodyBytes}
	switch {
	case g.maxBody < 0:
		return nil, fmt.Errorf("gateway: max body bytes %d is negative", g.maxBody)
	case g.maxBody == 0:
		g.maxBody = DefaultMaxBodyBytes
	}
	g.tooLarge = fmt.Sprintf("request body exceeds %d bytes", g.maxBody)
	for _, h := range opts.AllowedHosts {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		hp, ok := parseHost(h)
		if !ok || strings.ContainsAny(h, "/@ ") {
			return nil, fmt.Errorf("gateway: allowed host %q is not a host or host:port", h)
		}
		g.hosts = append(g.hosts, hp)
	}
	if len(g.hosts) == 0 {
		// Loopback only, on any port, and the listen address's own host
		// when it names one (0.0.0.0 and :: name no host a client uses).
		g.hosts = []hostPort{{host: "localhost"}, {host: "127.0.0.1"}, {host: "::1"}}
		if h, _, err := net.SplitHostPort(opts.Addr); err == nil && h != "" {
			if ip := net.ParseIP(h); ip == nil || !ip.IsUnspecified() {
				hp, _ := parseHost(h)
				g.hosts = append(g.hosts, hostPort{host: hp.host})
			}
		}
	}
	for _, o := range opts.AllowedOrigins {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		norm, ok := normOrigin(o)
		if !ok {
			return nil, fmt.Errorf("gateway: allowed origin %q is not scheme://host[:port]", o)
		}
		g.origins[norm] = true
	}
	return g, nil
}

// parseHost splits a Host header or configured host into a normalised name
// and port: "Example.COM.:80" → example.com, 80; "[::1]:8080" → ::1, 8080.
func parseHost(s string) (hostPort, bool) {
	if s == "" {
		return hostPort{}, false
	}
	host, port := s, ""
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
		if _, err := strconv.ParseUint(p, 10, 16); err != nil {
			return hostPort{}, false
		}
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		host = s[1 : len(s)-1]
	} else if strings.Count(s, ":") == 1 {
		return hostPort{}, false // "host:" or a bad port
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "" {
		return hostPort{}, false
	}
	return hostPort{host: host, port: port}, true
}

// normOrigin is scheme://host[:port] in lower case, or false when o is not
// an origin (a path, user info, query or other scheme).
func normOrigin(o string) (string, bool) {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", false
	}
	return u.Scheme + "://" + strings.ToLower(u.Host), true
}

func (g *guard) hostAllowed(h string) bool {
	hp, ok := parseHost(h)
	if !ok {
		return false
	}
	for _, a := range g.hosts {
		if a.host == hp.host && (a.port == "" || a.port == hp.port) {
			return true
		}
	}
	return false
}

// sameOrigin: the page that sent the request was served by this host.
// The scheme is not compared: behind a TLS-terminating proxy the request
// arrives as http, and whatever answers on this host and port is us.
func sameOrigin(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}

func mutating(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

func (g *guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	// Other sites' pages may not embed our responses with <script>,
	// <img> and the like (CORS reads are governed by CORS alone).
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	// API answers are data: nothing in them may run or load anything.
	// The dashboard and the report pages set their own policy.
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")

	// Probes address the pod or host by IP.
	if r.URL.Path != "/healthz" && !g.hostAllowed(r.Host) {
		writeError(w, http.StatusMisdirectedRequest, 3, fmt.Sprintf("host %q is not served here: allow it with --gateway-hosts (CUTOVER_GATEWAY_HOSTS)", r.Host))
		return
	}
	if strings.HasPrefix(r.URL.Path, "/v1/") {
		if !g.v1(w, r) {
			return
		}
	}
	if r.Body != nil && r.Body != http.NoBody && !g.readBody(w, r) {
		return
	}
	g.next.ServeHTTP(w, r)
}

// v1 applies the cross-site rules of the API; false when it answered.
func (g *guard) v1(w http.ResponseWriter, r *http.Request) bool {
	h := w.Header()
	origin := r.Header.Get("Origin")
	allowed := origin != "" && g.origins[strings.ToLower(origin)]
	if len(g.origins) > 0 {
		// Answers differ by Origin: caches must keep them apart.
		h.Add("Vary", "Origin")
	}
	if origin != "" && !allowed && !sameOrigin(origin, r) {
		writeError(w, http.StatusForbidden, 7, fmt.Sprintf("origin %q may not call this API: allow it with --gateway-origins (CUTOVER_GATEWAY_ORIGINS)", origin))
		return false
	}
	if allowed {
		h.Set("Access-Control-Allow-Origin", origin)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return false
		}
	}
	// A browser that does not send Origin on a cross-site write (older
	// ones, some redirects) still says where the request came from.
	if mutating(r.Method) && !allowed && r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		writeError(w, http.StatusForbidden, 7, "cross-site requests may not change anything")
		return false
	}
	// Every write must be JSON: a form or a no-cors fetch can only send
	// text/plain, form or multipart types. A request without a body needs
	// no type, but one that states a type must state JSON.
	ct := r.Header.Get("Content-Type")
	if mutating(r.Method) && (ct != "" || hasBody(r)) {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			got := "no Content-Type"
			if ct != "" {
				got = fmt.Sprintf("Content-Type %q", ct)
			}
			writeError(w, http.StatusUnsupportedMediaType, 3, "request body must be JSON with Content-Type: application/json, got "+got)
			return false
		}
	}
	return true
}

func hasBody(r *http.Request) bool {
	// -1: chunked or unknown length; a body may follow.
	return r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody
}

// readBody reads the body whole, up to the limit, so an oversized one is a
// 413 here and never a 400 or 500 from a decoder that hit the limit
// halfway. Content-Length is refused up front; MaxBytesReader stops a
// chunked body at the limit and makes the server close the connection.
func (g *guard) readBody(w http.ResponseWriter, r *http.Request) bool {
	if r.ContentLength > g.maxBody {
		writeError(w, http.StatusRequestEntityTooLarge, 3, g.tooLarge)
		return false
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, 3, g.tooLarge)
		} else {
			writeError(w, http.StatusBadRequest, 3, "read request body: "+err.Error())
		}
		return false
	}
	_ = r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.ContentLength = int64(len(b))
	r.Header.Set("Content-Length", strconv.Itoa(len(b)))
	r.TransferEncoding = nil
	return true
}

// writeError answers with the JSON error shape grpc-gateway uses.
func writeError(w http.ResponseWriter, httpStatus, code int, msg string) {
	b, _ := json.Marshal(struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{code, msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(httpStatus)
	_, _ = w.Write(append(b, '\n'))
}

// dashboardCSP allows the dashboard exactly its own inline script and
// style (by hash, so an injected one would not run) and fetches to this
// origin; nothing else loads, nothing may frame it, no form goes anywhere.
// The dashboard opens a job's HTML report as a blob: page, which inherits
// this policy, so the report's one constant style sheet is allowed too.
var dashboardCSP = func() string {
	styles := inlineHashes(dashboard, "style")
	var report bytes.Buffer
	if err := jobreport.HTML(&report, &orchestratorv1.JobReport{}); err == nil && bytes.Contains(report.Bytes(), []byte("<style>")) {
		styles += " " + inlineHashes(report.Bytes(), "style")
	}
	return fmt.Sprintf("default-src 'none'; script-src %s; style-src %s; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
		inlineHashes(dashboard, "script"), styles)
}()

// inlineHashes is the CSP source list of the SHA-256 of each inline
// <tag> element's text in page, or 'none' when it has none.
func inlineHashes(page []byte, tag string) string {
	re := regexp.MustCompile(`(?s)<` + tag + `>(.*?)</` + tag + `>`)
	var srcs []string
	for _, m := range re.FindAllSubmatch(page, -1) {
		sum := sha256.Sum256(m[1])
		srcs = append(srcs, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
	}
	if len(srcs) == 0 {
		return "'none'"
	}
	return strings.Join(srcs, " ")
}
