// Command gateway serves the REST API in front of the orchestrator.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cutover/cutover/services/gateway/gateway"
	"github.com/cutover/cutover/services/kit/config"
	"github.com/cutover/cutover/services/kit/metrics"
	"github.com/cutover/cutover/services/kit/server"
	"github.com/cutover/cutover/services/kit/telemetry"
)

func main() {
	fs := flag.NewFlagSet("gateway", flag.ExitOnError)
	addr := config.String(fs, "gateway-addr", config.GatewayAddr, "REST listen address")
	orch := config.String(fs, "orchestrator-addr", config.OrchestratorAddr, "orchestrator gRPC address")
	hosts := config.String(fs, "gateway-hosts", "", "Host names answered, comma separated, each host or host:port (empty: localhost, 127.0.0.1, [::1] and the listen host)")
	origins := config.String(fs, "gateway-origins", "", "other sites' origins allowed to call /v1/ with CORS, comma separated scheme://host[:port] (empty: none)")
	maxBody := config.String(fs, "gateway-max-body", strconv.Itoa(gateway.DefaultMaxBodyBytes), "largest request body in bytes")
	grace := config.Duration(fs, "grace", 10*time.Second, "graceful shutdown deadline")
	traceFile := config.String(fs, "trace-file", "", "JSON-lines span file when OTLP is not configured")
	metricsAddr := config.String(fs, "metrics-addr", "", "serve Prometheus metrics at /metrics on this address (empty: off)")
	secFlags := server.AddSecurityFlags(fs)
	_ = fs.Parse(os.Args[1:])
	if err := server.SetupLogging("gateway"); err != nil {
		slog.Error("exit", "err", err)
		os.Exit(2)
	}
	sec, err := secFlags.Build("gateway")
	if err != nil {
		slog.Error("exit", "err", err)
		os.Exit(2)
	}
	// Parsed here, not with config.Int: a bad value must stop the start.
	limit, err := strconv.ParseInt(strings.TrimSpace(*maxBody), 10, 64)
	if err != nil || limit <= 0 {
		slog.Error("exit", "err", fmt.Sprintf("--gateway-max-body (%s) %q is not a positive number of bytes", config.EnvName("gateway-max-body"), *maxBody))
		os.Exit(2)
	}
	opts := gateway.Options{Addr: *addr, AllowedHosts: config.List(*hosts, ","), AllowedOrigins: config.List(*origins, ","), MaxBodyBytes: limit}
	if err := run(*addr, *orch, sec, opts, *traceFile, *metricsAddr, *grace); err != nil {
		slog.Error("exit", "err", err)
		os.Exit(1)
	}
}

// run serves HTTPS with the gateway's certificate and calls the
// orchestrator over mTLS as the gateway, forwarding each caller's token.
func run(addr, orch string, sec *server.Security, opts gateway.Options, traceFile, metricsAddr string, grace time.Duration) error {
	ctx, stop := server.SignalContext()
	defer stop()
	tel, err := telemetry.Setup(ctx, "cutover-gateway", traceFile)
	if err != nil {
		return err
	}
	defer tel.Shutdown(context.Background())
	mp, err := metrics.Setup(ctx, "cutover-gateway")
	if err != nil {
		return err
	}
	defer mp.Shutdown(context.Background())
	if err := mp.Serve(ctx, metricsAddr); err != nil {
		return err
	}
	conn, err := server.Dial(orch, sec.DialOptions()...)
	if err != nil {
		return err
	}
	defer conn.Close()
	h, err := gateway.NewHandler(ctx, conn, opts)
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	return gateway.ServeListener(ctx, tls.NewListener(lis, sec.TLS.HTTPS()), h, grace)
}
