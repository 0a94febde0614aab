package stage

import (
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A fenced refusal is told from any other FailedPrecondition by its
// ErrorInfo, through wrapping and through a stage's UpstreamError.
func TestIsFenced(t *testing.T) {
	fenced := FencedStatus("job j, partition p: epoch 1 is older than 2", map[string]string{"epoch": "1", "current_epoch": "2"})
	for _, c := range []struct {
		err  error
		want bool
	}{
		{fenced, true},
		{fmt.Errorf("batch seq 3: %w", fenced), true},
		{&UpstreamError{Stage: "loader", Err: fenced}, true},
		{status.Error(codes.FailedPrecondition, "job j, partition p: epoch 1 is older than 2"), false},
		{errors.New("fenced"), false},
		{nil, false},
	} {
		if got := IsFenced(c.err); got != c.want {
			t.Errorf("IsFenced(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
