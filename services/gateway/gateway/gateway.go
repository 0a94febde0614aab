// Package gateway is the thin REST face of the orchestrator: grpc-gateway
// routes from the YAML mapping, the OpenAPI document, an optional bearer
// token, and a small dashboard page, behind the browser-safety rules of
// guard.go. It holds no business logic.
package gateway

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"io"
	"net/http"
	"strings"

	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/gen/openapiv2"
	"github.com/cutover/cutover/services/kit/jobreport"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
)

//go:embed dashboard.html
var dashboard []byte

// Options configure the REST handler.
type Options struct {
	// Addr is the address the gateway listens on. Its host (unless it is
	// 0.0.0.0 or ::) is an allowed Host when AllowedHosts is empty.
	Addr string
	// AllowedHosts are the Host headers answered, each "host" (any port)
	// or "host:port"; others get 421, except on /healthz. Empty: localhost,
	// 127.0.0.1 and [::1] on any port, and Addr's host. This is what stops
	// DNS rebinding: a page on another name that resolves here.
	AllowedHosts []string
	// AllowedOrigins ("https://ops.example.com") are the other sites whose
	// pages may call /v1/, with CORS. Empty: none, and no CORS headers.
	AllowedOrigins []string
	// MaxBodyBytes bounds a request body (413 beyond); 0 is
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
}

// NewHandler returns the REST handler in front of the orchestrator at conn.
func NewHandler(ctx context.Context, conn *grpc.ClientConn, opts Options) (http.Handler, error) {
	mux := runtime.NewServeMux(
		// Field names as in the proto (and in error messages): snake_case.
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true},
			UnmarshalOptions: protojson.UnmarshalOptions{},
		}),
	)
	if err := orchestratorv1.RegisterJobServiceHandler(ctx, mux, conn); err != nil {
		return nil, fmt.Errorf("register job routes: %w", err)
	}
	if err := orchestratorv1.RegisterValidationServiceHandler(ctx, mux, conn); err != nil {
		return nil, fmt.Errorf("register validation routes: %w", err)
	}
	root := http.NewServeMux()
	root.Handle("/v1/", requireBearer(mux))
	// The rendered reports are not RPCs (the OpenAPI document comes from the
	// proto), so they are routed here, more specific than /v1/ and behind
	// the same token.
	jobs := orchestratorv1.NewJobServiceClient(conn)
	root.Handle("GET /v1/jobs/{id}/report.md", requireBearer(reportPage(jobs, "text/markdown; charset=utf-8", jobreport.Markdown)))
	root.Handle("GET /v1/jobs/{id}/report.html", requireBearer(reportPage(jobs, "text/html; charset=utf-8", jobreport.HTML)))
	root.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openapiv2.JSON)
	})
	root.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	root.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", dashboardCSP)
		_, _ = w.Write(dashboard)
	})
	g, err := newGuard(opts, root)
	if err != nil {
		return nil, err
	}
	// Refused requests are traced too.
	return otelhttp.NewHandler(g, "gateway"), nil
}

// reportPage serves a job's report rendered by render. Errors are short
// plain text with the HTTP status grpc-gateway gives the same gRPC code.
func reportPage(jobs orchestratorv1.JobServiceClient, contentType string, render func(io.Writer, *orchestratorv1.JobReport) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		res, err := jobs.GetJobReport(callerContext(r), &orchestratorv1.GetJobReportRequest{Id: id})
		if err != nil {
			st := status.Convert(err)
			code := runtime.HTTPStatusFromCode(st.Code())
			msg := st.Message()
			if st.Code() == codes.NotFound {
				msg = fmt.Sprintf("job %q not found", id)
			}
			http.Error(w, msg, code)
			return
		}
		// Rendered whole before the first byte, so a failure is a 500 and
		// not half a page with a 200.
		var b bytes.Buffer
		if err := render(&b, res.GetReport()); err != nil {
			http.Error(w, fmt.Sprintf("render report of job %q: %v", id, err), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", contentType)
		// The page needs nothing but its inline style; if escaping ever
		// failed, the browser still runs and loads nothing.
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
		_, _ = w.Write(b.Bytes())
	})
}

// requireBearer answers 401 at once when no bearer token is sent, before a
// body is parsed; whether the token is good and what it may do is the
// orchestrator's decision (the gateway forwards it and has no rights).
func requireBearer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("WWW-Authenticate", "Bearer")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"code":16,"message":"missing bearer token"}` + "\n"))
			return
		}
		next.ServeHTTP(w, r)
	})
}
