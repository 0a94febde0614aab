package stage

import (
	"errors"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// InOrder hands over batches numbered from first, and tells an upstream's
// failure, a bad batch and the caller's own error apart.
func TestInOrder(t *testing.T) {
	stop := errors.New("stop")
	for _, tc := range []struct {
		name     string
		first    int64
		recv     Recv
		stopAt   int64 // f fails at this seq; -1 never
		wantSeen int
		want     func(error) bool
	}{
		{"clean end", 0, upstream(3, nil), -1, 3, func(err error) bool { return err == nil }},
		{"gap", 1, upstream(3, nil), -1, 0, func(err error) bool { return errors.Is(err, ErrBadBatch) }},
		{"malformed", 0, func() (*commonv1.Batch, error) { return &commonv1.Batch{NumRows: -1}, nil }, -1, 0,
			func(err error) bool { return errors.Is(err, ErrBadBatch) }},
		{"upstream failure", 0, upstream(2, status.Error(codes.Unavailable, "reset")), -1, 2, func(err error) bool {
			var up *UpstreamError
			return errors.As(err, &up) && up.Stage == "validator" && status.Code(err) == codes.Unavailable
		}},
		{"caller's error", 0, upstream(3, nil), 1, 1, func(err error) bool { return err == stop }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen := 0
			err := InOrder("validator", tc.first, tc.recv, func(b *commonv1.Batch) error {
				if b.GetSeq() == tc.stopAt {
					return stop
				}
				seen++
				return nil
			})
			if !tc.want(err) || seen != tc.wantSeen {
				t.Fatalf("err %v, %d batches handed over; want %d", err, seen, tc.wantSeen)
			}
		})
	}
}

func TestRefused(t *testing.T) {
	for c, want := range map[codes.Code]bool{codes.InvalidArgument: true, codes.ResourceExhausted: true, codes.NotFound: true,
		codes.Unavailable: false, codes.Internal: false, codes.DeadlineExceeded: false, codes.Aborted: false} {
		if Refused(c) != want {
			t.Errorf("Refused(%s) = %v", c, !want)
		}
	}
}
