// Package stack runs all six services in one process on loopback: the same
// gRPC servers and clients as separate processes, just sharing a process.
package stack

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/cutover/cutover/services/extractor/extract"
	"github.com/cutover/cutover/services/gateway/gateway"
	"github.com/cutover/cutover/services/kit/auth"
	"github.com/cutover/cutover/services/kit/config"
	"github.com/cutover/cutover/services/kit/pki"
	"github.com/cutover/cutover/services/kit/server"
	"github.com/cutover/cutover/services/loader/load"
	"github.com/cutover/cutover/services/orchestrator/orchestrate"
	"github.com/cutover/cutover/services/orchestrator/stages"
	"github.com/cutover/cutover/services/transformer/transform"
	"github.com/cutover/cutover/services/validator/validate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
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
	Grace        time.Duration
	// TLSDir holds the CA, certificates and token file (made on first use,
	// as by `cutover certs`), so clients outside the process can verify the
	// stack and present a token. Empty: a CA in memory, gone with the stack.
	TLSDir string
	// Tokens are extra token file lines ("name role sha256:hex") accepted
	// besides the stack's own admin token (tests of roles).
	Tokens []string
	// FileRoots confine file sources (CSV, JSONL, XLSX, SQLite) to these
	// directories; none: file sources are refused.
	FileRoots []string
	// SourceHosts, when set, are the only source hosts the extractor dials.
	SourceHosts []string
	// Gateway holds the REST settings (allowed hosts and origins, body
	// limit); its Addr is the gateway's bound address.
	Gateway gateway.Options
}

// Stack is a running embedded stack.
type Stack struct {
	// Addrs holds the addresses actually bound.
	Addrs Addrs
	// Token is an admin bearer token the stack accepts (from TLSDir's
	// admin.token, or made for this stack).
	Token string
	// CA verifies the stack's servers, the gateway's HTTPS included.
	CA *x509.CertPool

	secFor func(service string) *server.Security

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
	if err := s.setupSecurity(cfg); err != nil {
		return nil, err
	}
	if cfg.TLSDir != "" && cfg.Orchestrator.SecretKeyFile == "" {
		cfg.Orchestrator.SecretKeyFile = filepath.Join(cfg.TLSDir, server.SecretKeyFileName)
	}
	ext, err := extract.NewWithOptions(extract.Options{FileRoots: cfg.FileRoots, SourceHosts: cfg.SourceHosts})
	if err != nil {
		return nil, err
	}
	services := []struct {
		name string
		addr string
		out  *string
		svc  server.Service
	}{
		{"extractor", cfg.Addrs.Extractor, &s.Addrs.Extractor, ext},
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
		Validator: s.Addrs.Validator, Loader: s.Addrs.Loader}.Dial(s.secFor("orchestrator").DialOptions()...)
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
	gwSec := s.secFor("gateway")
	conn, err := server.Dial(s.Addrs.Orchestrator, gwSec.DialOptions()...)
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, conn.Close)
	lis, err := net.Listen("tcp", cfg.Addrs.Gateway)
	if err != nil {
		return nil, fmt.Errorf("gateway: listen on %s: %w", cfg.Addrs.Gateway, err)
	}
	s.Addrs.Gateway = lis.Addr().String()
	gwOpts := cfg.Gateway
	gwOpts.Addr = s.Addrs.Gateway
	h, err := gateway.NewHandler(runCtx, conn, gwOpts)
	if err != nil {
		lis.Close()
		return nil, err
	}
	lis = tls.NewListener(lis, gwSec.TLS.HTTPS())
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
	srv := server.NewSecure(name, s.secFor(name), svc)
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

// Conn dials the embedded orchestrator as the stack's admin.
func (s *Stack) Conn() (*grpc.ClientConn, error) { return s.ConnAs(s.Token) }

// ConnAs dials the embedded orchestrator with a bearer token ("" sends
// none) over TLS verified against the stack's CA.
func (s *Stack) ConnAs(token string) (*grpc.ClientConn, error) {
	opts := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: s.CA, MinVersion: tls.VersionTLS12}))}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(auth.Bearer(token)))
	}
	return server.Dial(s.Addrs.Orchestrator, opts...)
}

// HTTPClient is a client for the gateway's HTTPS, trusting the stack's CA.
func (s *Stack) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.CA, MinVersion: tls.VersionTLS12}}}
}

// GatewayURL is the gateway's base URL.
func (s *Stack) GatewayURL() string { return "https://" + s.Addrs.Gateway }

// services are the identities given a certificate.
var services = auth.ServiceNames

// setupSecurity gives every service its certificate: from cfg.TLSDir (made
// there on first use) or from a CA made in memory for this stack.
func (s *Stack) setupSecurity(cfg Config) error {
	if cfg.TLSDir != "" {
		if err := server.WriteDevDir(cfg.TLSDir, services); err != nil {
			return fmt.Errorf("tls dir: %w", err)
		}
		tok, err := auth.ReadTokenFile(filepath.Join(cfg.TLSDir, auth.AdminTokenFileName))
		if err != nil {
			return err
		}
		tokens, err := auth.LoadTokens(filepath.Join(cfg.TLSDir, auth.TokensFileName))
		if err != nil {
			return err
		}
		secs := map[string]*server.Security{}
		for _, name := range services {
			src, err := pki.Load(pki.DirFiles(cfg.TLSDir, name))
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			secs[name] = &server.Security{Service: name, TLS: src, Tokens: tokens}
		}
		if len(cfg.Tokens) > 0 {
			return errors.New("stack: Tokens are for an in-memory CA; with TLSDir add them to its tokens file")
		}
		s.Token, s.CA, s.secFor = tok, secs["gateway"].TLS.Pool(), func(n string) *server.Security { return secs[n] }
		return nil
	}
	dev, err := server.NewDevSecurity(services...)
	if err != nil {
		return err
	}
	s.Token = auth.NewToken()
	tokens, err := auth.StaticTokens(append([]string{auth.TokenLine("stack-admin", auth.RoleAdmin, s.Token)}, cfg.Tokens...)...)
	if err != nil {
		return err
	}
	secs := map[string]*server.Security{}
	for _, name := range services {
		secs[name] = dev.For(name, tokens)
	}
	s.CA, s.secFor = dev.CA.Pool(), func(n string) *server.Security { return secs[n] }
	return nil
}

type noClose struct{ *orchestrate.Service }

func (noClose) Close() error { return nil }
