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
	config.DurationVar(fs, &c.Retention, "retention", 0, "delete ended jobs (their control rows and the target's bookkeeping of them, as DeleteJob) this long after they ended; 0 keeps them")
	config.DurationVar(fs, &c.AuditRetention, "audit-retention", defaultAuditRetention, "delete audit entries older than this; 0 keeps them")
	config.DurationVar(fs, &c.SnapshotHold, "snapshot-hold", defaultSnapshotHold, "how long a failed or cancelled job keeps its PostgreSQL source snapshots for a resume (they hold back VACUUM on the source); 0 keeps them until the job is deleted")
	config.StringVar(fs, &c.SecretKeyFile, "secret-key-file", "", "file with the key sealing DSN secrets in the control schema: 32 raw bytes, 64 hex characters or base64 of 32 bytes; "+
		"every replica needs the same; empty: a random key for this process only, so its jobs cannot be resumed by another process")
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
