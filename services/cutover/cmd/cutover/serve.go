package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/cutover/cutover/services/cutover/stack"
	"github.com/cutover/cutover/services/kit/config"
	"github.com/cutover/cutover/services/kit/server"
	"github.com/cutover/cutover/services/kit/telemetry"
)

// serve runs the embedded stack on the documented ports until SIGTERM.
func serve(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("cutover", flag.ContinueOnError)
	cfg := stack.Config{Addrs: stack.DefaultAddrs()}
	config.StringVar(fs, &cfg.Addrs.Extractor, "extractor-addr", cfg.Addrs.Extractor, "extractor gRPC address")
	config.StringVar(fs, &cfg.Addrs.Transformer, "transformer-addr", cfg.Addrs.Transformer, "transformer gRPC address")
	config.StringVar(fs, &cfg.Addrs.Validator, "validator-addr", cfg.Addrs.Validator, "validator gRPC address")
	config.StringVar(fs, &cfg.Addrs.Loader, "loader-addr", cfg.Addrs.Loader, "loader gRPC address")
	config.StringVar(fs, &cfg.Addrs.Orchestrator, "orchestrator-addr", cfg.Addrs.Orchestrator, "orchestrator gRPC address")
	config.StringVar(fs, &cfg.Addrs.Gateway, "gateway-addr", cfg.Addrs.Gateway, "gateway REST address")
	config.StringVar(fs, &cfg.TLSDir, "tls-dir", config.DefaultTLSDir(), "CA, certificates and tokens, made on first use (see `cutover certs`)")
	roots := config.String(fs, "file-roots", "", "directories file sources may be read from, separated by "+string(os.PathListSeparator)+" (empty: file sources refused)")
	hosts := config.String(fs, "source-hosts", "", "comma-separated source hosts the extractor may dial (empty: any)")
	gwHosts := config.String(fs, "gateway-hosts", "", "Host names the gateway answers, comma separated (empty: localhost, 127.0.0.1, [::1] and the listen host)")
	gwOrigins := config.String(fs, "gateway-origins", "", "other sites' origins allowed to call /v1/ with CORS, comma separated (empty: none)")
	config.DurationVar(fs, &cfg.Grace, "grace", 10*time.Second, "graceful shutdown deadline")
	traceFile := config.String(fs, "trace-file", "", "JSON-lines span file when OTLP is not configured")
	cfg.Orchestrator.Flags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := server.SetupLogging("cutover"); err != nil {
		fmt.Fprintln(os.Stderr, "cutover:", err)
		return 2
	}
	cfg.FileRoots = config.List(*roots, string(os.PathListSeparator))
	cfg.SourceHosts = config.List(*hosts, ",")
	cfg.Gateway.AllowedHosts = config.List(*gwHosts, ",")
	cfg.Gateway.AllowedOrigins = config.List(*gwOrigins, ",")
	if cfg.Orchestrator.ControlURL == "" {
		fmt.Fprintln(os.Stderr, "cutover: the control database is required: set --control-url or CUTOVER_CONTROL_URL")
		return 2
	}
	tel, err := telemetry.Setup(ctx, "cutover", *traceFile)
	if err != nil {
		slog.Error("telemetry", "err", err)
		return 1
	}
	defer tel.Shutdown(context.WithoutCancel(ctx))
	cfg.Orchestrator.TraceSink = tel.Sink
	st, err := stack.Start(ctx, cfg)
	if err != nil {
		slog.Error("start", "err", err)
		return 1
	}
	slog.Info("cutover running", "gateway", st.GatewayURL(), "tls_dir", cfg.TLSDir, "orchestrator", st.Addrs.Orchestrator, "traces", tel.Sink)
	<-ctx.Done()
	if err := st.Close(); err != nil {
		slog.Error("shutdown", "err", err)
		return 1
	}
	return 0
}
