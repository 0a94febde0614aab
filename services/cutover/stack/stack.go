// Package stack runs all six services in one process on loopback: the same
// gRPC servers and clients as separate processes, just sharing a process.
package stack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/cutover/cutover/services/extractor/extract"
	"github.com/cutover/cutover/services/gateway/gateway"
	"github.com/cutover/cutover/services/kit/config"
	"github.com/cutover/cutover/services/kit/server"
	"github.com/cutover/cutover/services/loader/load"
	"github.com/cutover/cutover/services/orchestrator/orchestrate"
	"github.com/cutover/cutover/services/orchestrator/stages"
	"github.com/cutover/cutover/services/transformer/transform"
	"github.com/cutover/cutover/services/validator/validate"
	"google.golang.org/grpc"
)

// Addrs are the listen addresses; port 0 picks a free port.
type Addrs struct {
	Extractor, Transformer, Validator, Loader, Orchestrator, Gateway string
}

// DefaultAddrs are the documented fixed ports.
func DefaultAddrs() Addrs {
	return Addrs{config.ExtractorAddr, config.TransformerAddr, config.ValidatorAddr, config.LoaderAddr, config.OrchestratorAddr, config.GatewayAddr}
}

// EphemeralAddrs put every service on a free loopback port.
func EphemeralAddrs() Addrs {
	const any = "127.0.0.1:0"
	return Addrs{any, any, any, any, any, any}
}

// Config configures the embedded stack.
type Config struct {
	Addrs        Addrs
	Orchestrator orchestrate.Config
	GatewayToken string
	Grace        time.Duration
}

// Stack is a running embedded stack.
type Stack struct {
	// Addrs holds the addresses actually bound.
	Addrs Addrs

	cancel           context.CancelFunc
	stopOrchestrator func() error
	wg               sync.WaitGroup
	closers          []func() error
	mu               sync.Mutex
	serveErr         error
}

// Start starts the four stages, the orchestrator and the gateway.
func Start(ctx context.Context, cfg Config) (_ *Stack, err error) {
	if cfg.Grace <= 0 {
		cfg.Grace = 10 * time.Second
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Stack{cancel: cancel}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	services := []struct {
		name string
		addr string
		out  *string
		svc  server.Service
	}{
		{"extractor", cfg.Addrs.Extractor, &s.Addrs.Extractor, extract.New()},
		{"transformer", cfg.Addrs.Transformer, &s.Addrs.Transformer, transform.New()},
		{"validator", cfg.Addrs.Validator, &s.Addrs.Validator, validate.New()},
		{"loader", cfg.Addrs.Loader, &s.Addrs.Loader, load.New()},
	}
	for _, st := range services {
		addr, err := s.serveGRPC(runCtx, st.name, st.addr, cfg.Grace, st.svc)
		if err != nil {
			return nil, err
		}
		*st.out = addr
	}
	oc := cfg.Orchestrator
	clients, closeClients, err := stages.Addrs{Extractor: s.Addrs.Extractor, Transformer: s.Addrs.Transformer,
		Validator: s.Addrs.Validator, Loader: s.Addrs.Loader}.Dial()
	if err != nil {
		return nil, err
	}
	oc.Clients = clients
	orch, err := orchestrate.New(ctx, oc)
	if err != nil {
		closeClients()
		return nil, err
	}
	// The orchestrator's workers stop before the stages do (see Close).
	s.stopOrchestrator = orchestrate.WithCloser(orch, closeClients).Close
	if s.Addrs.Orchestrator, err = s.serveGRPC(runCtx, "orchestrator", cfg.Addrs.Orchestrator, cfg.Grace, noClose{orch}); err != nil {
		return nil, err
	}
	conn, err := server.Dial(s.Addrs.Orchestrator)
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, conn.Close)
	h, err := gateway.NewHandler(runCtx, conn, gateway.Options{Token: cfg.GatewayToken})
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", cfg.Addrs.Gateway)
	if err != nil {
		return nil, fmt.Errorf("gateway: listen on %s: %w", cfg.Addrs.Gateway, err)
	}
	s.Addrs.Gateway = lis.Addr().String()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.record(gateway.ServeListener(runCtx, lis, h, cfg.Grace))
	}()
	return s, nil
}

func (s *Stack) serveGRPC(ctx context.Context, name, addr string, grace time.Duration, svc server.Service) (string, error) {
	lis, err := server.Listen(addr)
	if err != nil {
		_ = svc.Close()
		return "", fmt.Errorf("%s: %w", name, err)
	}
	srv := server.New(name)
	svc.Register(srv.GRPC)
	// Closed after the servers stop, in reverse order of start.
	s.closers = append(s.closers, svc.Close)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.record(srv.Serve(ctx, lis, grace))
	}()
	return lis.Addr().String(), nil
}

func (s *Stack) record(err error) {
	if err == nil {
		return
	}
	s.mu.Lock()
	s.serveErr = errors.Join(s.serveErr, err)
	s.mu.Unlock()
}

// Close stops every server gracefully and releases resources.
func (s *Stack) Close() error {
	var errs []error
	if s.stopOrchestrator != nil {
		errs = append(errs, s.stopOrchestrator())
	}
	s.cancel()
	s.wg.Wait()
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	s.mu.Lock()
	errs = append(errs, s.serveErr)
	s.mu.Unlock()
	return errors.Join(errs...)
}

// Conn dials the embedded orchestrator.
func (s *Stack) Conn() (*grpc.ClientConn, error) { return server.Dial(s.Addrs.Orchestrator) }

type noClose struct{ *orchestrate.Service }

func (noClose) Close() error { return nil }
