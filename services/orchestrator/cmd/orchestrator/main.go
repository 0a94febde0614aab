// Command orchestrator runs the migration API and drives jobs.
package main

import (
	"context"
	"flag"
	"os"
	"path/filepath"

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
		if cfg.SecretKeyFile == "" && sec.Dir != "" {
			if p := filepath.Join(sec.Dir, server.SecretKeyFileName); fileExists(p) {
				cfg.SecretKeyFile = p
			}
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

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }
