package stage

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// upstream yields n batches with seq 0..n-1, then end (nil) or err.
func upstream(n int, end error) Recv {
	i := 0
	return func() (*commonv1.Batch, error) {
		if i == n {
			if end == nil {
				return nil, io.EOF
			}
			return nil, end
		}
		i++
		return &commonv1.Batch{Seq: int64(i - 1), NumRows: 1}, nil
	}
}

func TestPull(t *testing.T) {
	double := func(b *commonv1.Batch) (*commonv1.Batch, error) {
		return &commonv1.Batch{Seq: b.Seq, NumRows: 2 * b.NumRows, StageMicros: b.StageMicros}, nil
	}
	failAt := func(seq int64) Func {
		return func(b *commonv1.Batch) (*commonv1.Batch, error) {
			if b.Seq == seq {
				return nil, errors.New("cannot cast")
			}
			return b, nil
		}
	}
	cases := []struct {
		name     string
		recv     Recv
		f        Func
		sendErr  error
		wantSent int
		wantErr  string
		wantCode codes.Code
	}{
		{name: "clean end", recv: upstream(3, nil), f: double, wantSent: 3},
		{name: "empty", recv: upstream(0, nil), f: double, wantSent: 0},
		{name: "upstream error keeps its code and names the stage", recv: upstream(2, status.Error(codes.Unavailable, "connection reset")),
			f: double, wantSent: 2, wantErr: "extractor: connection reset", wantCode: codes.Unavailable},
		{name: "stage error names the batch", recv: upstream(3, nil), f: failAt(1), wantSent: 1, wantErr: "batch seq 1: cannot cast", wantCode: codes.Unknown},
		{name: "downstream gone", recv: upstream(3, nil), f: double, sendErr: status.Error(codes.Canceled, "gone"), wantErr: "gone", wantCode: codes.Canceled},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var sent []*commonv1.Batch
			err := Pull(context.Background(), "transformer", "extractor", tc.recv, tc.f, func(b *commonv1.Batch) error {
				if tc.sendErr != nil {
					return tc.sendErr
				}
				sent = append(sent, b)
				return nil
			})
			if tc.wantErr == "" && err != nil {
				t.Fatalf("err %v", err)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				if got := status.Code(err); got != tc.wantCode {
					t.Fatalf("code %s, want %s", got, tc.wantCode)
				}
			}
			if len(sent) != tc.wantSent {
				t.Fatalf("sent %d batches, want %d", len(sent), tc.wantSent)
			}
			for i, b := range sent {
				if b.Seq != int64(i) {
					t.Fatalf("batch %d has seq %d: out of order", i, b.Seq)
				}
				if _, ok := b.StageMicros["transformer"]; !ok {
					t.Fatalf("batch %d carries no transformer time: %v", i, b.StageMicros)
				}
			}
		})
	}
}

// TestPrefetchEnds: after the end, every further call says so; a cancelled
// context ends a prefetch blocked on a slow downstream without a leak.
func TestPrefetchEnds(t *testing.T) {
	next := Prefetch(context.Background(), "validator", upstream(1, nil))
	if b, err := next(); err != nil || b.Seq != 0 {
		t.Fatalf("first: %v %v", b, err)
	}
	for range 3 {
		if _, err := next(); err != io.EOF {
			t.Fatalf("after the end: %v, want io.EOF", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	next = Prefetch(ctx, "validator", upstream(1000, nil))
	if _, err := next(); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := next(); !errors.Is(err, context.Canceled) {
		t.Fatalf("after cancel: %v", err)
	}
}

func TestOne(t *testing.T) {
	r := One(&commonv1.Batch{Seq: 7})
	if b, err := r(); err != nil || b.Seq != 7 {
		t.Fatalf("%v %v", b, err)
	}
	if _, err := r(); err != io.EOF {
		t.Fatalf("%v", err)
	}
}
