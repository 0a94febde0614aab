package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/kit/server"
	"google.golang.org/grpc"
)

// TestStaticRoutesAndToken checks what the gateway serves on its own: the
// OpenAPI document, health, the dashboard, and 401 on /v1/ without a bearer
// token (its validity is the orchestrator's to check, tested in
// services/cutover/stack).
// The job routes themselves are exercised end to end in services/cutover.
func TestStaticRoutesAndToken(t *testing.T) {
	cc, err := server.Dial("127.0.0.1:1") // never called by these routes
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	h, err := NewHandler(context.Background(), cc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	tests := []struct {
		path, auth string
		code       int
		body       string
	}{
		{"/openapi.json", "", 200, `"/v1/jobs/{id}:cancel"`},
		{"/healthz", "", 200, "ok"},
		{"/", "", 200, "cutover jobs"},
		{"/v1/jobs", "", 401, "bearer token"},
		{"/v1/jobs/j1/report.md", "", 401, "bearer token"},
		{"/v1/jobs/j1/report.html", "Basic eDp5", 401, "bearer token"},
		// With a token, the orchestrator is asked; it is down: Unavailable.
		{"/v1/jobs/j1/report.md", "Bearer s3", 503, ""},
		{"/v1/jobs/j1/report.html", "Bearer s3", 503, ""},
		{"/nothing-here", "", 404, ""},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest("GET", srv.URL+tt.path, nil)
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tt.code || !strings.Contains(string(b), tt.body) {
			t.Errorf("GET %s (%q) = %d %.100s; want %d containing %q", tt.path, tt.auth, res.StatusCode, b, tt.code, tt.body)
		}
	}
}

// fakeJobs is an orchestrator on loopback that counts the writes that
// reach it.
type fakeJobs struct {
	orchestratorv1.UnimplementedJobServiceServer
	creates, cancels atomic.Int32
}

func (f *fakeJobs) CreateJob(_ context.Context, req *orchestratorv1.CreateJobRequest) (*orchestratorv1.CreateJobResponse, error) {
	f.creates.Add(1)
	return &orchestratorv1.CreateJobResponse{Job: &orchestratorv1.Job{Id: "j1", Name: req.GetSpec().GetName()}}, nil
}

func (f *fakeJobs) CancelJob(context.Context, *orchestratorv1.CancelJobRequest) (*orchestratorv1.CancelJobResponse, error) {
	f.cancels.Add(1)
	return &orchestratorv1.CancelJobResponse{}, nil
}

func (f *fakeJobs) ListJobs(context.Context, *orchestratorv1.ListJobsRequest) (*orchestratorv1.ListJobsResponse, error) {
	return &orchestratorv1.ListJobsResponse{Jobs: []*orchestratorv1.Job{{Id: "j1", Name: "a"}}}, nil
}

// startGateway serves the gateway with opts in front of a fake
// orchestrator, both on loopback.
func startGateway(t *testing.T, opts Options) (*httptest.Server, *fakeJobs) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	jobs := &fakeJobs{}
	gs := grpc.NewServer()
	orchestratorv1.RegisterJobServiceServer(gs, jobs)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	cc, err := server.Dial(lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	h, err := NewHandler(context.Background(), cc, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, jobs
}

type call struct {
	method, path, ctype, host, origin, fetchSite string
	body                                         io.Reader
	header                                       map[string]string
}

func (c call) do(t *testing.T, srv *httptest.Server) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(c.method, srv.URL+c.path, c.body)
	if err != nil {
		t.Fatal(err)
	}
	if c.ctype != "" {
		req.Header.Set("Content-Type", c.ctype)
	}
	// Any token: the fake orchestrator does not check it (the real one
	// does, tested in services/cutover/stack).
	req.Header.Set("Authorization", "Bearer t")
	if c.host != "" {
		req.Host = c.host
	}
	if c.origin != "" {
		req.Header.Set("Origin", c.origin)
	}
	if c.fetchSite != "" {
		req.Header.Set("Sec-Fetch-Site", c.fetchSite)
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", c.method, c.path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// TestBrowserGuard: method × content type × Host × Origin → status, and
// whether the write reached the orchestrator.
func TestBrowserGuard(t *testing.T) {
	srv, jobs := startGateway(t, Options{})
	self := srv.URL // http://127.0.0.1:port
	port := srv.URL[strings.LastIndexByte(srv.URL, ':')+1:]
	const spec = `{"name":"a"}`
	body := func() io.Reader { return strings.NewReader(spec) }
	tests := []struct {
		name    string
		c       call
		code    int
		created bool
		msg     string // in the JSON error
	}{
		{"json", call{method: "POST", path: "/v1/jobs", ctype: "application/json", body: body()}, 200, true, ""},
		{"json charset", call{method: "POST", path: "/v1/jobs", ctype: "application/json; charset=utf-8", body: body()}, 200, true, ""},
		{"json upper", call{method: "POST", path: "/v1/jobs", ctype: "Application/JSON", body: body()}, 200, true, ""},
		{"text/plain", call{method: "POST", path: "/v1/jobs", ctype: "text/plain", body: body()}, 415, false, `got Content-Type \"text/plain\"`},
		{"text/plain charset", call{method: "POST", path: "/v1/jobs", ctype: "text/plain;charset=UTF-8", body: body()}, 415, false, "application/json"},
		{"form", call{method: "POST", path: "/v1/jobs", ctype: "application/x-www-form-urlencoded", body: body()}, 415, false, "x-www-form-urlencoded"},
		{"multipart", call{method: "POST", path: "/v1/jobs", ctype: "multipart/form-data; boundary=x", body: body()}, 415, false, "multipart"},
		{"no type", call{method: "POST", path: "/v1/jobs", body: body()}, 415, false, "no Content-Type"},
		{"json-ish", call{method: "POST", path: "/v1/jobs", ctype: "application/json-patch+json", body: body()}, 415, false, "json-patch"},
		{"bad type", call{method: "POST", path: "/v1/jobs", ctype: "application/json; =", body: body()}, 415, false, ""},
		{"cancel no body", call{method: "POST", path: "/v1/jobs/j1:cancel"}, 200, false, ""},
		{"cancel text/plain empty", call{method: "POST", path: "/v1/jobs/j1:cancel", ctype: "text/plain"}, 415, false, ""},
		{"get", call{method: "GET", path: "/v1/jobs"}, 200, false, ""},

		{"foreign host dashboard", call{method: "GET", path: "/", host: "evil.example"}, 421, false, `host \"evil.example\" is not served here`},
		{"foreign host api", call{method: "GET", path: "/v1/jobs", host: "evil.example:" + port}, 421, false, "--gateway-hosts"},
		{"foreign host openapi", call{method: "GET", path: "/openapi.json", host: "evil.example"}, 421, false, ""},
		{"foreign host post", call{method: "POST", path: "/v1/jobs", ctype: "application/json", host: "evil.example", body: body()}, 421, false, ""},
		{"lookalike host", call{method: "GET", path: "/", host: "localhost.evil.example"}, 421, false, ""},
		{"no host", call{method: "GET", path: "/", host: " "}, 421, false, ""},
		{"healthz any host", call{method: "GET", path: "/healthz", host: "10.1.2.3:8080"}, 200, false, ""},
		{"localhost", call{method: "GET", path: "/", host: "localhost:" + port}, 200, false, ""},
		{"LOCALHOST.", call{method: "GET", path: "/", host: "LOCALHOST.:" + port}, 200, false, ""},
		{"ipv6 loopback", call{method: "GET", path: "/v1/jobs", host: "[::1]:" + port}, 200, false, ""},

		{"cross-site post", call{method: "POST", path: "/v1/jobs", ctype: "application/json", origin: "https://evil.example", body: body()}, 403, false, `origin \"https://evil.example\"`},
		{"cross-site text/plain", call{method: "POST", path: "/v1/jobs", ctype: "text/plain", origin: "https://evil.example", body: body()}, 403, false, ""},
		{"cross-site get", call{method: "GET", path: "/v1/jobs", origin: "https://evil.example"}, 403, false, ""},
		{"null origin", call{method: "POST", path: "/v1/jobs/j1:cancel", origin: "null"}, 403, false, ""},
		{"other port", call{method: "POST", path: "/v1/jobs", ctype: "application/json", origin: "http://127.0.0.1:1", body: body()}, 403, false, ""},
		{"same origin post", call{method: "POST", path: "/v1/jobs", ctype: "application/json", origin: self, body: body()}, 200, true, ""},
		{"same origin https", call{method: "POST", path: "/v1/jobs", ctype: "application/json", origin: strings.Replace(self, "http:", "https:", 1), body: body()}, 200, true, ""},
		{"sec-fetch cross-site", call{method: "POST", path: "/v1/jobs", ctype: "application/json", fetchSite: "cross-site", body: body()}, 403, false, "cross-site"},
		{"sec-fetch cross-site get", call{method: "GET", path: "/v1/jobs", fetchSite: "cross-site"}, 200, false, ""},
		{"sec-fetch same-origin", call{method: "POST", path: "/v1/jobs", ctype: "application/json", fetchSite: "same-origin", origin: self, body: body()}, 200, true, ""},
		{"preflight not configured", call{method: "OPTIONS", path: "/v1/jobs", origin: "https://evil.example",
			header: map[string]string{"Access-Control-Request-Method": "POST"}}, 403, false, ""},
		// Outside /v1/ reading is harmless: another site cannot read the
		// answer without CORS.
		{"cross-site dashboard", call{method: "GET", path: "/", origin: "https://evil.example"}, 200, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := jobs.creates.Load()
			res, got := tt.c.do(t, srv)
			if res.StatusCode != tt.code {
				t.Fatalf("%s %s = %d %s, want %d", tt.c.method, tt.c.path, res.StatusCode, got, tt.code)
			}
			if created := jobs.creates.Load() > before; created != tt.created {
				t.Errorf("CreateJob called: %v, want %v", created, tt.created)
			}
			if tt.code >= 400 {
				var e struct {
					Code    int    `json:"code"`
					Message string `json:"message"`
				}
				if err := json.Unmarshal([]byte(got), &e); err != nil || e.Message == "" || res.Header.Get("Content-Type") != "application/json" {
					t.Errorf("error body %q (%s) is not {code, message} JSON", got, res.Header.Get("Content-Type"))
				}
				if !strings.Contains(got, tt.msg) {
					t.Errorf("error %s lacks %q", got, tt.msg)
				}
			}
			for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"} {
				if res.Header.Get(k) != v {
					t.Errorf("%s: %q, want %q", k, res.Header.Get(k), v)
				}
			}
			// No CORS unless configured.
			for k := range res.Header {
				if strings.HasPrefix(k, "Access-Control-") {
					t.Errorf("CORS header %s: %s without configured origins", k, res.Header.Get(k))
				}
			}
		})
	}
}

// TestCORS: a configured origin may call /v1/ and gets CORS headers,
// preflight included; no other does.
func TestCORS(t *testing.T) {
	const ops = "https://ops.example.com"
	srv, jobs := startGateway(t, Options{AllowedOrigins: []string{ops + "/", "http://localhost:3000"}})
	preflight := map[string]string{"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type, authorization"}
	tests := []struct {
		name string
		c    call
		code int
		acao string
	}{
		{"preflight", call{method: "OPTIONS", path: "/v1/jobs", origin: ops, header: preflight}, 204, ops},
		{"preflight other", call{method: "OPTIONS", path: "/v1/jobs", origin: "https://evil.example", header: preflight}, 403, ""},
		{"post", call{method: "POST", path: "/v1/jobs", ctype: "application/json", origin: ops, fetchSite: "cross-site", body: strings.NewReader(`{}`)}, 200, ops},
		{"get", call{method: "GET", path: "/v1/jobs", origin: "http://localhost:3000"}, 200, "http://localhost:3000"},
		{"post other", call{method: "POST", path: "/v1/jobs", ctype: "application/json", origin: "https://evil.example", body: strings.NewReader(`{}`)}, 403, ""},
		{"text/plain still refused", call{method: "POST", path: "/v1/jobs", ctype: "text/plain", origin: ops, body: strings.NewReader(`{}`)}, 415, ops},
		{"no origin", call{method: "GET", path: "/v1/jobs"}, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, got := tt.c.do(t, srv)
			if res.StatusCode != tt.code {
				t.Fatalf("%s %s = %d %s, want %d", tt.c.method, tt.c.path, res.StatusCode, got, tt.code)
			}
			if a := res.Header.Get("Access-Control-Allow-Origin"); a != tt.acao {
				t.Errorf("Access-Control-Allow-Origin %q, want %q", a, tt.acao)
			}
			if tt.acao == "" && res.Header.Get("Access-Control-Allow-Headers") != "" {
				t.Error("CORS headers for an origin that is not allowed")
			}
			if !strings.Contains(strings.Join(res.Header.Values("Vary"), ","), "Origin") {
				t.Errorf("Vary %q lacks Origin", res.Header.Values("Vary"))
			}
			if tt.name == "preflight" {
				if h := res.Header.Get("Access-Control-Allow-Headers"); h != "Authorization, Content-Type" {
					t.Errorf("Access-Control-Allow-Headers %q", h)
				}
				if m := res.Header.Get("Access-Control-Allow-Methods"); !strings.Contains(m, "POST") {
					t.Errorf("Access-Control-Allow-Methods %q", m)
				}
				if res.Header.Get("Access-Control-Allow-Credentials") != "" {
					t.Error("credentials allowed: the API takes bearer tokens, not cookies")
				}
			}
		})
	}
	if n := jobs.creates.Load(); n != 1 {
		t.Errorf("CreateJob called %d times, want 1 (the allowed origin's)", n)
	}
}

// TestBodyLimit: an oversized body is 413 whether its length is declared
// or it is chunked, nothing is created, and the gateway answers the next
// request as usual.
func TestBodyLimit(t *testing.T) {
	srv, jobs := startGateway(t, Options{})
	big := func(n int) []byte { return []byte(`{"name":"` + strings.Repeat("a", n) + `"}`) }
	const want = `{"code":3,"message":"request body exceeds 4194304 bytes"}`

	// 50 MB with Content-Length: refused before it is read.
	res, got := call{method: "POST", path: "/v1/jobs", ctype: "application/json", body: bytes.NewReader(big(50 << 20))}.do(t, srv)
	if res.StatusCode != http.StatusRequestEntityTooLarge || strings.TrimSpace(got) != want {
		t.Fatalf("50 MB body = %d %s, want 413 %s", res.StatusCode, got, want)
	}
	// Chunked (no length): stopped at the limit.
	res, got = call{method: "POST", path: "/v1/jobs", ctype: "application/json", body: io.MultiReader(bytes.NewReader(big(8 << 20)))}.do(t, srv)
	if res.StatusCode != http.StatusRequestEntityTooLarge || strings.TrimSpace(got) != want {
		t.Fatalf("chunked 8 MB body = %d %s, want 413 %s", res.StatusCode, got, want)
	}
	if n := jobs.creates.Load(); n != 0 {
		t.Fatalf("CreateJob called %d times for refused bodies", n)
	}
	res, got = call{method: "GET", path: "/v1/jobs"}.do(t, srv)
	if res.StatusCode != http.StatusOK || !strings.Contains(got, `"id":"j1"`) {
		t.Fatalf("GET /v1/jobs after 413s = %d %s", res.StatusCode, got)
	}
	// Just under the limit, chunked: passes whole.
	under := big(4<<20 - 20)
	res, got = call{method: "POST", path: "/v1/jobs", ctype: "application/json", body: io.MultiReader(bytes.NewReader(under))}.do(t, srv)
	if res.StatusCode != http.StatusOK || !strings.Contains(got, `"id":"j1"`) {
		t.Fatalf("chunked body of %d bytes = %d %.200s", len(under), res.StatusCode, got)
	}

	small, _ := startGateway(t, Options{MaxBodyBytes: 100})
	for _, n := range []int{100 - 13, 100 - 12} { // body = n + 12 bytes
		res, got := call{method: "POST", path: "/v1/jobs", ctype: "application/json", body: bytes.NewReader(big(n))}.do(t, small)
		wantCode := http.StatusOK
		if len(big(n)) > 100 {
			wantCode = http.StatusRequestEntityTooLarge
			if !strings.Contains(got, "exceeds 100 bytes") {
				t.Errorf("message %s", got)
			}
		}
		if res.StatusCode != wantCode {
			t.Errorf("%d-byte body with a 100-byte limit = %d %s, want %d", len(big(n)), res.StatusCode, got, wantCode)
		}
	}
}

// TestDashboardCSP: the dashboard's policy admits exactly its own inline
// script and style, and the page uses nothing the policy would block.
func TestDashboardCSP(t *testing.T) {
	srv, _ := startGateway(t, Options{})
	res, page := call{method: "GET", path: "/"}.do(t, srv)
	if res.StatusCode != 200 {
		t.Fatalf("GET / = %d", res.StatusCode)
	}
	csp := res.Header.Get("Content-Security-Policy")
	for _, tag := range []string{"script", "style"} {
		ms := regexp.MustCompile(`(?s)<`+tag+`>(.*?)</`+tag+`>`).FindAllStringSubmatch(page, -1)
		if len(ms) == 0 {
			t.Errorf("the dashboard has no inline %s: is the test stale?", tag)
		}
		for _, m := range ms {
			sum := sha256.Sum256([]byte(m[1]))
			if h := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(csp, tag+"-src "+h) {
				t.Errorf("CSP %q does not allow the inline %s (%s)", csp, tag, h)
			}
		}
	}
	for _, d := range []string{"default-src 'none'", "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"} {
		if !strings.Contains(csp, d) {
			t.Errorf("CSP %q lacks %s", csp, d)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("CSP %q allows any inline code", csp)
	}
	// Hashes cover <script> and <style> elements only: event handler and
	// style attributes, or scripts and sheets from elsewhere, would be
	// blocked; fetches go to this origin only.
	for _, bad := range []*regexp.Regexp{regexp.MustCompile(`(?i)\son[a-z]+\s*=`), regexp.MustCompile(`(?i)\sstyle\s*=`),
		regexp.MustCompile(`(?i)<script[^>]+src`), regexp.MustCompile(`(?i)<link`), regexp.MustCompile(`fetch\('(https?:)?//`)} {
		if m := bad.FindString(page); m != "" {
			t.Errorf("the dashboard uses %q, which its CSP blocks", m)
		}
	}
	// Other responses: data only.
	res, _ = call{method: "GET", path: "/openapi.json"}.do(t, srv)
	if csp := res.Header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'none'") {
		t.Errorf("/openapi.json CSP %q", csp)
	}
}

func TestOptionsRefused(t *testing.T) {
	cc, err := server.Dial("127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	for _, opts := range []Options{
		{AllowedOrigins: []string{"ftp://x"}},
		{AllowedOrigins: []string{"https://x/path"}},
		{AllowedOrigins: []string{"*"}},
		{AllowedHosts: []string{"http://x"}},
		{AllowedHosts: []string{"x:notaport"}},
		{MaxBodyBytes: -1},
	} {
		if _, err := NewHandler(context.Background(), cc, opts); err == nil {
			t.Errorf("NewHandler(%+v) accepted", opts)
		}
	}
}

// TestAllowedHosts: configured names replace the loopback defaults; the
// listen address's host is allowed by default.
func TestAllowedHosts(t *testing.T) {
	g, err := newGuard(Options{AllowedHosts: []string{"gw.example.com", "ops.example.com:8443", "[fd00::1]"}}, http.NotFoundHandler())
	if err != nil {
		t.Fatal(err)
	}
	for h, want := range map[string]bool{"gw.example.com": true, "GW.example.com:8080": true, "ops.example.com:8443": true,
		"ops.example.com": false, "ops.example.com:443": false, "[fd00::1]:80": true, "localhost:8080": false, "evil.example": false} {
		if got := g.hostAllowed(h); got != want {
			t.Errorf("hosts %v: %q allowed %v, want %v", g.hosts, h, got, want)
		}
	}
	for addr, hosts := range map[string]map[string]bool{
		"10.0.0.5:8080":  {"10.0.0.5:8080": true, "127.0.0.1:8080": true, "10.0.0.6:8080": false},
		"0.0.0.0:8080":   {"0.0.0.0:8080": false, "localhost": true},
		"[::]:8080":      {"[::]:8080": false, "[::1]:8080": true},
		"gw.internal:80": {"gw.internal": true, "gw.internal:80": true},
		":8080":          {"localhost:8080": true},
	} {
		g, err := newGuard(Options{Addr: addr}, http.NotFoundHandler())
		if err != nil {
			t.Fatal(err)
		}
		for h, want := range hosts {
			if got := g.hostAllowed(h); got != want {
				t.Errorf("listening on %s: %q allowed %v, want %v", addr, h, got, want)
			}
		}
	}
}
