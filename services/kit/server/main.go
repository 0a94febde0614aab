package server

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	_ "net/http/pprof" // registered on the default mux, served only by ServePprof
	"os"
	"time"

	"github.com/cutover/cutover/services/kit/config"
	"github.com/cutover/cutover/services/kit/metrics"
	"github.com/cutover/cutover/services/kit/telemetry"
	"google.golang.org/grpc"
)

// Service is what a stage package hands to Main: gRPC handlers to register
// and resources to release after the server stopped.
type Service interface {
	Register(g *grpc.Server)
	Close() error
}

// Main is the whole main() of a single-service binary: flags and CUTOVER_*
// env, logging, tracing, serve, and graceful shutdown on SIGTERM. The listen
// flag is "<name>-addr" (env CUTOVER_<NAME>_ADDR), the same name the
// orchestrator dials, so one environment configures both sides. addFlags may
// register more flags; build runs after parsing.
func Main(name, defaultAddr string, addFlags func(fs *flag.FlagSet), build func(ctx context.Context) (Service, error)) {
	fs := flag.NewFlagSet(name, flag.ExitOnError)
	addr := config.String(fs, name+"-addr", defaultAddr, "gRPC listen address")
	grace := config.Duration(fs, "grace", 10*time.Second, "graceful shutdown deadline")
	traceFile := config.String(fs, "trace-file", "", "JSON-lines span file when OTLP is not configured")
	pprofAddr := config.String(fs, "pprof-addr", "", "serve net/http/pprof on this address (empty: off)")
	metricsAddr := config.String(fs, "metrics-addr", "", "serve Prometheus metrics at /metrics on this address (empty: off)")
	secFlags := AddSecurityFlags(fs)
	if addFlags != nil {
		addFlags(fs)
	}
	_ = fs.Parse(os.Args[1:])
	if err := SetupLogging(name); err != nil {
		slog.Error("exit", "err", err)
		os.Exit(2)
	}
	sec, err := secFlags.Build(name)
	if err != nil {
		slog.Error("exit", "err", err)
		os.Exit(2)
	}
	ServePprof(*pprofAddr)
	if err := run(name, *addr, *grace, *traceFile, *metricsAddr, sec, build); err != nil {
		slog.Error("exit", "err", err)
		os.Exit(1)
	}
}

func run(name, addr string, grace time.Duration, traceFile, metricsAddr string, sec *Security, build func(ctx context.Context) (Service, error)) error {
	ctx, stop := SignalContext()
	defer stop()
	tel, err := telemetry.Setup(ctx, "cutover-"+name, traceFile)
	if err != nil {
		return err
	}
	// Before the server is built: its gRPC metrics record into this.
	mp, err := metrics.Setup(ctx, "cutover-"+name)
	if err != nil {
		return err
	}
	defer mp.Shutdown(context.Background()) //nolint:errcheck // nothing to flush: Prometheus pulls
	if err := mp.Serve(ctx, metricsAddr); err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tel.Shutdown(sctx)
	}()
	svc, err := build(context.WithValue(context.WithValue(ctx, telemetryKey{}, tel), securityKey{}, sec))
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer svc.Close()
	srv := NewSecure(name, sec, svc)
	lis, err := Listen(addr)
	if err != nil {
		return err
	}
	return srv.Serve(ctx, lis, grace)
}

type telemetryKey struct{}

type securityKey struct{}

// SecurityFrom returns the process's security inside Main's build step (the
// orchestrator dials the stages with it).
func SecurityFrom(ctx context.Context) *Security {
	s, _ := ctx.Value(securityKey{}).(*Security)
	return s
}

// NewSecure builds the named service's server with sec's credentials and
// interceptors and registers svc, handing it the dial options for its peers
// and taking its audit store when it has one.
func NewSecure(name string, sec *Security, svc Service) *Server {
	if d, ok := svc.(Dialer); ok {
		d.UseDialOptions(sec.DialOptions()...)
	}
	if a, ok := svc.(Auditor); ok && sec.Audit == nil {
		sec.Audit = a.AuditEvent
	}
	srv := New(name, sec.ServerOptions()...)
	svc.Register(srv.GRPC)
	return srv
}

// TelemetryFrom returns the process's telemetry inside Main's build step.
func TelemetryFrom(ctx context.Context) *telemetry.Telemetry {
	t, _ := ctx.Value(telemetryKey{}).(*telemetry.Telemetry)
	return t
}

// ServePprof serves the Go profiler on addr (loopback only, for operators
// finding the slow stage); empty addr leaves it off.
func ServePprof(addr string) {
	if addr == "" {
		return
	}
	go func() {
		if err := http.ListenAndServe(addr, nil); err != nil {
			slog.Warn("pprof", "err", err)
		}
	}()
}
