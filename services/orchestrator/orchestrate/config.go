package orchestrate

import (
	"flag"
	"time"

	"github.com/cutover/cutover/services/kit/config"
	"github.com/cutover/cutover/services/kit/server"
)

// Flags registers the replica's settings (env CUTOVER_*).
func (c *Config) Flags(fs *flag.FlagSet) {
	config.StringVar(fs, &c.ControlURL, "control-url", "", "PostgreSQL URL of the control schema")
	config.StringVar(fs, &c.DefaultTarget, "target-url", "", "default target PostgreSQL URL")
	config.IntVar(fs, &c.Workers, "workers", 4, "partitions run at once by this replica")
	config.DurationVar(fs, &c.Lease, "lease", 30*time.Second, "partition lease")
	config.IntVar(fs, &c.MaxAttempts, "max-attempts", 5, "tries per partition before the job fails")
	config.DurationVar(fs, &c.BatchTimeout, "batch-timeout", 2*time.Minute, "longest wait for one batch before the attempt fails and is retried")
}

type closer struct {
	*Service
	extra func()
}

func (c closer) Close() error {
	err := c.Service.Close()
	c.extra()
	return err
}

// WithCloser returns the service with extra cleanup run after Close.
func WithCloser(s *Service, extra func()) server.Service { return closer{s, extra} }
