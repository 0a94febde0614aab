package orchestrate

import (
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/cutover/cutover/services/kit/stage"
	"github.com/cutover/cutover/services/orchestrator/stages"
	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestRetryBackoff(t *testing.T) {
	tests := []struct {
		attempts int
		u        float64
		want     time.Duration
	}{
		{0, 0, 50 * time.Millisecond},
		{0, 0.999999, 100 * time.Millisecond},
		{1, 0, 100 * time.Millisecond},
		{3, 0.5, 600 * time.Millisecond},
		{5, 0, 1600 * time.Millisecond},
		{6, 0, 2500 * time.Millisecond},
		{60, 0.999999, 5 * time.Second},
		{-1, 0, 50 * time.Millisecond},
	}
	for _, tt := range tests {
		got := stages.Backoff(tt.attempts, tt.u)
		if d := got - tt.want; d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("retryBackoff(%d, %v) = %s, want %s", tt.attempts, tt.u, got, tt.want)
		}
	}
}

// Transient faults (a stage down, a reset connection, a stalled peer, a
// PostgreSQL restart or deadlock) are retried; refusals are not.
func TestRetryableTransient(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"unavailable", stages.Classify("loader", status.Error(codes.Unavailable, "connection reset by peer")), true},
		{"deadline", stages.Classify("extractor", status.Error(codes.DeadlineExceeded, "context deadline exceeded")), true},
		{"aborted", stages.Classify("loader", status.Error(codes.Aborted, "deadlock detected (SQLSTATE 40P01)")), true},
		{"internal", stages.Classify("loader", status.Error(codes.Internal, "terminating connection due to administrator command (SQLSTATE 57P01)")), true},
		{"pg restart in the store", fmt.Errorf("record progress: %w", &pgconn.PgError{Code: "57P01"}), true},
		{"batch timeout", fmt.Errorf("%w: loader: batch 3 not acknowledged within the batch timeout 2m0s", ErrStage), true},
		{"invalid argument", stages.Classify("transformer", status.Error(codes.InvalidArgument, "columns[0]: bad")), false},
		{"failed precondition", stages.Classify("loader", status.Error(codes.FailedPrecondition, "table seq missing")), false},
		{"unbalanced", fmt.Errorf("%w: batch 1", ErrUnbalanced), false},
		{"cancelled", fmt.Errorf("%w: job x", ErrCancelled), false},
		{"bad spec", errors.Join(ErrInvalidSpec, errors.New("x")), false},
		{"fenced", stages.Classify("loader", stage.FencedStatus("job x, partition p: epoch 1 is older than 2", nil)), false},
	}
	for _, tt := range tests {
		if got := retryable(tt.err); got != tt.want {
			t.Errorf("%s: retryable(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}

// A loader's fenced refusal is the lease lost to another claim, told apart
// from a refusal of the work (which fails the job).
func TestFencedIsLeaseLost(t *testing.T) {
	fenced := stages.Classify("loader", stage.FencedStatus("job x, partition p: epoch 1 is older than 2", nil))
	if !leaseLost(fenced) || errors.Is(fenced, ErrStageFatal) {
		t.Errorf("fenced refusal classified as %v", fenced)
	}
	refused := stages.Classify("loader", status.Error(codes.FailedPrecondition, "job x, partition p: epoch 1 is older than 2"))
	if leaseLost(refused) || !errors.Is(refused, ErrStageFatal) {
		t.Errorf("plain refusal classified as %v", refused)
	}
}

// TestControlStoreOutageIsUnavailable: a call that fails because the
// control database dropped the connection is Unavailable (retry), not
// Internal.
func TestControlStoreOutageIsUnavailable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want codes.Code
	}{
		{fmt.Errorf("get job x: %w", io.ErrUnexpectedEOF), codes.Unavailable},
		{fmt.Errorf("get job x: %w", &pgconn.PgError{Code: "57P01"}), codes.Unavailable},
		{fmt.Errorf("get job x: %w", &pgconn.PgError{Code: "23505"}), codes.Internal},
		{fmt.Errorf("%w: %q", ErrJobNotFound, "x"), codes.NotFound},
	} {
		if got := status.Code(toStatus(tc.err)); got != tc.want {
			t.Errorf("toStatus(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}
