// Command gateway serves the REST API in front of the orchestrator.
package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"time"

	"github.com/cutover/cutover/services/gateway/gateway"
	"github.com/cutover/cutover/services/kit/config"
	"github.com/cutover/cutover/services/kit/server"
	"github.com/cutover/cutover/services/kit/telemetry"
)

func main() {
	fs := flag.NewFlagSet("gateway", flag.ExitOnError)
	addr := config.String(fs, "gateway-addr", config.GatewayAddr, "REST listen address")
	orch := config.String(fs, "orchestrator-addr", config.OrchestratorAddr, "orchestrator gRPC address")
	token := config.String(fs, "gateway-token", "", "bearer token required on /v1/ (empty: none)")
	grace := config.Duration(fs, "grace", 10*time.Second, "graceful shutdown deadline")
	traceFile := config.String(fs, "trace-file", "", "JSON-lines span file when OTLP is not configured")
	_ = fs.Parse(os.Args[1:])
	server.SetupLogging("gateway")
	if err := run(*addr, *orch, *token, *traceFile, *grace); err != nil {
		slog.Error("exit", "err", err)
		os.Exit(1)
	}
}

func run(addr, orch, token, traceFile string, grace time.Duration) error {
	ctx, stop := server.SignalContext()
	defer stop()
	tel, err := telemetry.Setup(ctx, "cutover-gateway", traceFile)
	if err != nil {
		return err
	}
	defer tel.Shutdown(context.Background())
	conn, err := server.Dial(orch)
	if err != nil {
		return err
	}
	defer conn.Close()
	h, err := gateway.NewHandler(ctx, conn, gateway.Options{Token: token})
	if err != nil {
		return err
	}
	return gateway.Serve(ctx, addr, h, grace)
}
