package gateway

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cutover/cutover/services/kit/server"
)

// TestStaticRoutesAndToken checks what the gateway serves on its own: the
// OpenAPI document, health, the dashboard, and the bearer token on /v1/.
// The job routes themselves are exercised end to end in services/cutover.
func TestStaticRoutesAndToken(t *testing.T) {
	cc, err := server.Dial("127.0.0.1:1") // never called by these routes
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	h, err := NewHandler(context.Background(), cc, Options{Token: "s3"})
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
		{"/v1/jobs", "Bearer nope", 401, "bearer token"},
		{"/v1/jobs/j1/report.md", "", 401, "bearer token"},
		{"/v1/jobs/j1/report.html", "Bearer nope", 401, "bearer token"},
		// Past the token, the orchestrator is down: a gRPC Unavailable.
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
