// Command orchestrator runs the migration API and drives jobs.
package main

import (
	"context"
	"flag"

	"github.com/cutover/cutover/services/kit/config"
	"github.com/cutover/cutover/services/kit/server"
	"github.com/cutover/cutover/services/orchestrator/orchestrate"
	"github.com/cutover/cutover/services/orchestrator/stages"
)

func main() {
	var cfg orchestrate.Config
	var stages stages.Addrs
	server.Main("orchestrator", config.OrchestratorAddr, func(fs *flag.FlagSet) {
		stages.Flags(fs)
		cfg.Flags(fs)
	}, func(ctx context.Context) (server.Service, error) {
		sec := server.SecurityFrom(ctx)
		// A development TLS directory holds the key sealing DSN secrets.
		if cfg.SecretKeyFile == "" {
			cfg.SecretKeyFile = sec.DevSecretKeyFile()
		}
		clients, closeClients, err := stages.Dial(sec.DialOptions()...)
		if err != nil {
			return nil, err
		}
		cfg.Clients = clients
		if t := server.TelemetryFrom(ctx); t != nil {
			cfg.TraceSink = t.Sink
		}
		svc, err := orchestrate.New(ctx, cfg)
		if err != nil {
			closeClients()
			return nil, err
		}
		return orchestrate.WithCloser(svc, closeClients), nil
	})
}
