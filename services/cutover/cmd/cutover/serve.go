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
	config.StringVar(fs, &cfg.GatewayToken, "gateway-token", "", "bearer token required on /v1/ (empty: none)")
	config.DurationVar(fs, &cfg.Grace, "grace", 10*time.Second, "graceful shutdown deadline")
	traceFile := config.String(fs, "trace-file", "", "JSON-lines span file when OTLP is not configured")
	cfg.Orchestrator.Flags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	server.SetupLogging("cutover")
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
	slog.Info("cutover running", "gateway", "http://"+st.Addrs.Gateway, "orchestrator", st.Addrs.Orchestrator, "traces", tel.Sink)
	<-ctx.Done()
	if err := st.Close(); err != nil {
		slog.Error("shutdown", "err", err)
		return 1
	}
	return 0
}
