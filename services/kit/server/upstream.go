package server

import (
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

// Upstreams are a stage's connections to the stages it pulls batches from,
// one per address, opened on first use: the orchestrator names the upstream
// in every partition's request, so a stage learns its peers from the work
// it is given rather than from its own configuration.
type Upstreams struct {
	// Options are added to every dial: the process's mTLS credentials
	// (left empty only by tests that serve stages without TLS).
	Options []grpc.DialOption

	mu     sync.Mutex
	conns  map[string]*grpc.ClientConn
	closed bool
}

// Conn returns the connection to addr, dialing it on first use.
func (u *Upstreams) Conn(addr string) (*grpc.ClientConn, error) {
	if addr == "" {
		return nil, fmt.Errorf("no upstream address given")
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return nil, fmt.Errorf("shutting down")
	}
	if cc, ok := u.conns[addr]; ok {
		return cc, nil
	}
	cc, err := Dial(addr, append(PeerOptions(), u.Options...)...)
	if err != nil {
		return nil, err
	}
	if u.conns == nil {
		u.conns = map[string]*grpc.ClientConn{}
	}
	u.conns[addr] = cc
	return cc, nil
}

// Close closes every connection; later calls to Conn fail.
func (u *Upstreams) Close() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.closed = true
	for addr, cc := range u.conns {
		_ = cc.Close()
		delete(u.conns, addr)
	}
	return nil
}

// PeerOptions are the dial options for calls between services: a restarted
// peer is waited for rather than failed at once (every call carries its own
// deadline), and reconnects back off to at most 2s (gRPC's default is
// 120s), so a restarted stage or a healed link is used again within seconds.
func PeerOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithDefaultCallOptions(grpc.WaitForReady(true)),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.Config{
			BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second}, MinConnectTimeout: 5 * time.Second}),
	}
}
