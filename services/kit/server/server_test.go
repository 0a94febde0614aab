package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestServeHealthAndGracefulStop: health answers SERVING while up, and
// cancelling the context stops the server without leaking goroutines.
func TestServeHealthAndGracefulStop(t *testing.T) {
	srv := New("test")
	lis, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis, 2*time.Second) }()

	cc, err := Dial(lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	hc := healthpb.NewHealthClient(cc)
	cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer ccancel()
	res, err := hc.Check(cctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	if err != nil || res.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v", res, err)
	}
	cc.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := Listen(lis.Addr().String()); err != nil {
		t.Fatalf("port still held after stop: %v", err)
	}
}

func TestListenNamesTheAddress(t *testing.T) {
	_, err := Listen("256.0.0.1:1")
	if err == nil || !strings.Contains(err.Error(), "256.0.0.1:1") {
		t.Fatalf("Listen error %v does not name the address", err)
	}
}
