// Package server is the gRPC bootstrap every service shares: OpenTelemetry
// stats handlers, health, reflection, large-message limits and a graceful
// shutdown that falls back to a hard stop after a deadline.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
)

// MaxMessageBytes bounds one message; batches are a few MiB at most.
const MaxMessageBytes = 64 << 20

// Batches are MiB-sized: big socket buffers and flow-control windows cut
// the syscalls and stalls per batch (the defaults suit small messages).
// A window is what a stream may hold unread in the receiver, per stream:
// 16 MiB let two partitions' streams grow a stage's peak RSS with the job
// (transformer 112 → 184 MiB from 1M to 10M rows, make bench); 4 MiB holds
// three 1 MiB batches, as fast on loopback, and flat (about 100 MiB both).
const (
	ioBufferBytes = 1 << 20
	windowBytes   = 4 << 20
)

// Server is a gRPC server with health and reflection registered.
type Server struct {
	GRPC   *grpc.Server
	Health *health.Server
	name   string
}

// New builds a server for the named service. Register the service's
// handlers on s.GRPC, then call Serve.
func New(name string, opts ...grpc.ServerOption) *Server {
	opts = append([]grpc.ServerOption{
		grpc.StatsHandler(otelgrpc.NewServerHandler()),
		// Clients resolve DNS again only when a connection ends: ending
		// each after 5 minutes (its streams may finish: no grace limit)
		// lets replicas added by a scale-up take new calls.
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionAge: 5 * time.Minute}),
		grpc.MaxRecvMsgSize(MaxMessageBytes),
		grpc.MaxSendMsgSize(MaxMessageBytes),
		grpc.WriteBufferSize(ioBufferBytes),
		grpc.ReadBufferSize(ioBufferBytes),
		grpc.InitialWindowSize(windowBytes),
		grpc.InitialConnWindowSize(windowBytes),
	}, opts...)
	g := grpc.NewServer(opts...)
	h := health.NewServer()
	healthpb.RegisterHealthServer(g, h)
	reflection.Register(g)
	return &Server{GRPC: g, Health: h, name: name}
}

// Serve serves on lis until ctx ends, then stops gracefully, waiting at most
// grace before cutting open streams.
func (s *Server) Serve(ctx context.Context, lis net.Listener, grace time.Duration) error {
	for svc := range s.GRPC.GetServiceInfo() {
		s.Health.SetServingStatus(svc, healthpb.HealthCheckResponse_SERVING)
	}
	s.Health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	errc := make(chan error, 1)
	go func() { errc <- s.GRPC.Serve(lis) }()
	// "server", not "service": the process's logger already names its
	// service, and one process may serve several (cutover, tests).
	slog.Info("serving", "server", s.name, "addr", lis.Addr().String())
	select {
	case err := <-errc:
		if err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("%s: serve: %w", s.name, err)
		}
		return nil
	case <-ctx.Done():
	}
	s.Health.Shutdown()
	done := make(chan struct{})
	go func() { s.GRPC.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		slog.Warn("grace period over, stopping hard", "server", s.name)
		s.GRPC.Stop()
		<-done
	}
	<-errc
	return nil
}

// Listen opens a TCP listener, naming the address on failure.
func Listen(addr string) (net.Listener, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return lis, nil
}

// Dial connects to a service address with tracing and client-side
// round-robin, so "dns:///svc:7001" spreads over every replica.
func Dial(target string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	auth, err := listAuthority(target)
	if err != nil {
		return nil, err
	}
	opts = append(auth, opts...)
	cc, err := grpc.NewClient(target, append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes)),
		grpc.WithWriteBufferSize(ioBufferBytes),
		grpc.WithReadBufferSize(ioBufferBytes),
		grpc.WithInitialWindowSize(windowBytes),
		grpc.WithInitialConnWindowSize(windowBytes),
	}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", target, err)
	}
	return cc, nil
}

// SignalContext is cancelled on SIGTERM or SIGINT.
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// LogLevelEnv sets the least level logged: debug, info (default), warn or
// error.
const LogLevelEnv = "CUTOVER_LOG_LEVEL"

// SetupLogging sends structured JSON logs to stderr at CUTOVER_LOG_LEVEL,
// each naming the service. A level it does not know is an error.
func SetupLogging(service string) error {
	var level slog.Level
	if v := os.Getenv(LogLevelEnv); v != "" {
		if err := level.UnmarshalText([]byte(v)); err != nil {
			return fmt.Errorf("%s %q: want debug, info, warn or error", LogLevelEnv, v)
		}
	}
	slog.SetDefault(slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("service", service))
	return nil
}
