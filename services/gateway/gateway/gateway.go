// Package gateway is the thin REST face of the orchestrator: grpc-gateway
// routes from the YAML mapping, the OpenAPI document, an optional bearer
// token, and a small dashboard page. It holds no business logic.
package gateway

import (
	"bytes"
	"context"
	"crypto/subtle"
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
	// Token, when set, is required as "Authorization: Bearer <token>" on /v1/.
	Token string
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
	root.Handle("/v1/", requireToken(opts.Token, mux))
	// The rendered reports are not RPCs (the OpenAPI document comes from the
	// proto), so they are routed here, more specific than /v1/ and behind
	// the same token.
	jobs := orchestratorv1.NewJobServiceClient(conn)
	root.Handle("GET /v1/jobs/{id}/report.md", requireToken(opts.Token, reportPage(jobs, "text/markdown; charset=utf-8", jobreport.Markdown)))
	root.Handle("GET /v1/jobs/{id}/report.html", requireToken(opts.Token, reportPage(jobs, "text/html; charset=utf-8", jobreport.HTML)))
	root.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openapiv2.JSON)
	})
	root.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	root.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(dashboard)
	})
	return otelhttp.NewHandler(root, "gateway"), nil
}

// reportPage serves a job's report rendered by render. Errors are short
// plain text with the HTTP status grpc-gateway gives the same gRPC code.
func reportPage(jobs orchestratorv1.JobServiceClient, contentType string, render func(io.Writer, *orchestratorv1.JobReport) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		res, err := jobs.GetJobReport(r.Context(), &orchestratorv1.GetJobReportRequest{Id: id})
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
		w.Header().Set("X-Content-Type-Options", "nosniff")
		// The page needs nothing but its inline style; if escaping ever
		// failed, the browser still runs and loads nothing.
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		_, _ = w.Write(b.Bytes())
	})
}

func requireToken(token string, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(strings.TrimSpace(r.Header.Get("Authorization")))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("WWW-Authenticate", "Bearer")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"code":16,"message":"missing or wrong bearer token"}` + "\n"))
			return
		}
		next.ServeHTTP(w, r)
	})
}
