package server

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// A list target spreads calls over every replica, and when one stops the
// calls go on to the others.
func TestListTargetRoundRobin(t *testing.T) {
	type replica struct {
		calls atomic.Int64
		stop  context.CancelFunc
		done  chan error
	}
	var rs []*replica
	var addrs []string
	for i := 0; i < 2; i++ {
		r := &replica{done: make(chan error, 1)}
		srv := New("test", grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			r.calls.Add(1)
			return h(ctx, req)
		}))
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, lis.Addr().String())
		ctx, cancel := context.WithCancel(context.Background())
		r.stop = cancel
		go func() { r.done <- srv.Serve(ctx, lis, time.Second) }()
		rs = append(rs, r)
	}
	cc, err := Dial(ListScheme + ":///" + strings.Join(addrs, ","))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	hc := healthpb.NewHealthClient(cc)
	call := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
			cancel()
			if err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
		}
	}
	call(40)
	for i, r := range rs {
		if r.calls.Load() == 0 {
			t.Errorf("replica %d took none of 40 calls", i)
		}
	}
	rs[0].stop()
	<-rs[0].done
	before := rs[1].calls.Load()
	call(20)
	if got := rs[1].calls.Load() - before; got != 20 {
		t.Errorf("after replica 0 stopped, replica 1 took %d of 20 calls", got)
	}
	rs[1].stop()
	<-rs[1].done
	if _, err := Dial(ListScheme + ":///127.0.0.1"); err == nil || !strings.Contains(err.Error(), "not host:port") {
		t.Errorf("a list entry without a port: %v", err)
	}
}
