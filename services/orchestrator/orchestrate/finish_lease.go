package orchestrate

import (
	"context"
	"log/slog"
	"time"
)

// finishLease is how long a claim to end a job lasts without renewal. It
// is short, so that a replica killed while ending a job (SIGKILL skips the
// release) holds the job up for seconds rather than minutes, and renewed
// while the end runs, so that long post-load DDL is never run twice at once.
func (s *Service) finishLease() time.Duration { return 3 * s.cfg.Lease }

// holdFinish renews the claim to end job id every lease until stop is
// called.
func (s *Service) holdFinish(ctx context.Context, id string) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(s.cfg.Lease)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := s.store.RenewFinish(ctx, id, s.finishLease()); err != nil && ctx.Err() == nil {
					slog.Warn("renew the claim to end the job", "job", id, "err", err)
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}
