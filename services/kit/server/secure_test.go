package server

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/kit/auth"
	"github.com/cutover/cutover/services/kit/pki"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

type jobs struct {
	orchestratorv1.UnimplementedJobServiceServer
	orchestratorv1.UnimplementedValidationServiceServer
}

func (jobs) CreateJob(context.Context, *orchestratorv1.CreateJobRequest) (*orchestratorv1.CreateJobResponse, error) {
	return &orchestratorv1.CreateJobResponse{Job: &orchestratorv1.Job{Id: "j1"}}, nil
}
func (jobs) GetJob(_ context.Context, r *orchestratorv1.GetJobRequest) (*orchestratorv1.GetJobResponse, error) {
	if r.GetId() == "panic" {
		var m map[string]int
		m["boom"]++ // a nil-map write: a real runtime panic
	}
	return &orchestratorv1.GetJobResponse{Job: &orchestratorv1.Job{Id: r.GetId()}}, nil
}
func (jobs) CancelJob(context.Context, *orchestratorv1.CancelJobRequest) (*orchestratorv1.CancelJobResponse, error) {
	return &orchestratorv1.CancelJobResponse{}, nil
}
func (jobs) DryRun(context.Context, *orchestratorv1.DryRunRequest) (*orchestratorv1.DryRunResponse, error) {
	return &orchestratorv1.DryRunResponse{}, nil
}

type extractor struct {
	extractorv1.UnimplementedExtractorServiceServer
}

func (extractor) DescribeSource(context.Context, *extractorv1.DescribeSourceRequest) (*extractorv1.DescribeSourceResponse, error) {
	return &extractorv1.DescribeSourceResponse{}, nil
}

type mesh struct {
	dev          *DevSecurity
	orch, ext    string
	tokens       map[auth.Role]string
	mu           sync.Mutex
	audited      []auth.Event
	foreignCA    *pki.CA
	foreignIssue *pki.Issued
}

func startMesh(t *testing.T) *mesh {
	t.Helper()
	dev, err := NewDevSecurity(auth.ServiceNames...)
	if err != nil {
		t.Fatal(err)
	}
	m := &mesh{dev: dev, tokens: map[auth.Role]string{}}
	var lines []string
	for _, r := range []auth.Role{auth.RoleAdmin, auth.RoleOperator, auth.RoleCI, auth.RoleViewer} {
		m.tokens[r] = auth.NewToken()
		lines = append(lines, auth.TokenLine("user-"+string(r), r, m.tokens[r]))
	}
	tokens, err := auth.StaticTokens(lines...)
	if err != nil {
		t.Fatal(err)
	}
	serve := func(name string, register func(*grpc.Server)) string {
		sec := dev.For(name, tokens)
		sec.Audit = func(_ context.Context, ev auth.Event) { m.mu.Lock(); m.audited = append(m.audited, ev); m.mu.Unlock() }
		srv := New(name, sec.ServerOptions()...)
		register(srv.GRPC)
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = srv.Serve(ctx, lis, time.Second); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
		return lis.Addr().String()
	}
	m.orch = serve("orchestrator", func(g *grpc.Server) {
		orchestratorv1.RegisterJobServiceServer(g, jobs{})
		orchestratorv1.RegisterValidationServiceServer(g, jobs{})
	})
	m.ext = serve("extractor", func(g *grpc.Server) { extractorv1.RegisterExtractorServiceServer(g, extractor{}) })
	if m.foreignCA, err = pki.NewCA("someone else"); err != nil {
		t.Fatal(err)
	}
	if m.foreignIssue, err = m.foreignCA.Issue("orchestrator"); err != nil {
		t.Fatal(err)
	}
	return m
}

// caller is who dials: a service certificate, a user token over TLS, or a
// certificate from another CA.
type caller struct {
	name    string
	service string    // service certificate of ours
	role    auth.Role // user token of this role
	token   string    // literal token (wrong ones)
	foreign bool
}

func (m *mesh) dial(t *testing.T, addr string, c caller) *grpc.ClientConn {
	t.Helper()
	var opts []grpc.DialOption
	switch {
	case c.foreign:
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: m.dev.CA.Pool(),
			// GetClientCertificate sends the certificate even though the
			// server asks for its own CA (Certificates would send none).
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &m.foreignIssue.TLS, nil }})))
	case c.service != "":
		opts = append(opts, m.dev.For(c.service, nil).DialOptions()...)
	default:
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: m.dev.CA.Pool()})))
	}
	tok := c.token
	if c.role != "" {
		tok = m.tokens[c.role]
	}
	if tok != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(auth.Bearer(tok)))
	}
	cc, err := Dial(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// TestAccessMatrix calls every kind of method as every kind of caller and
// checks the answer against the roles in the issue: operator mutates, ci
// validates, viewer reads, stages answer only their callers.
func TestAccessMatrix(t *testing.T) {
	m := startMesh(t)
	callers := []caller{
		{name: "nobody"},
		{name: "admin", role: auth.RoleAdmin},
		{name: "operator", role: auth.RoleOperator},
		{name: "ci", role: auth.RoleCI},
		{name: "viewer", role: auth.RoleViewer},
		{name: "wrong-token", token: "cut_not-a-token"},
		{name: "orchestrator-cert", service: "orchestrator"},
		{name: "gateway-cert", service: "gateway"},
		{name: "transformer-cert", service: "transformer"},
		{name: "validator-cert", service: "validator"},
		{name: "foreign-ca", foreign: true},
	}
	type call struct {
		name string
		addr func() string
		do   func(ctx context.Context, cc *grpc.ClientConn) error
	}
	calls := []call{
		{"CreateJob", func() string { return m.orch }, func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := orchestratorv1.NewJobServiceClient(cc).CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: &commonv1.JobSpec{Name: "x"}})
			return err
		}},
		{"CancelJob", func() string { return m.orch }, func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := orchestratorv1.NewJobServiceClient(cc).CancelJob(ctx, &orchestratorv1.CancelJobRequest{Id: "j1"})
			return err
		}},
		{"GetJob", func() string { return m.orch }, func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := orchestratorv1.NewJobServiceClient(cc).GetJob(ctx, &orchestratorv1.GetJobRequest{Id: "j1"})
			return err
		}},
		{"DryRun", func() string { return m.orch }, func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := orchestratorv1.NewValidationServiceClient(cc).DryRun(ctx, &orchestratorv1.DryRunRequest{})
			return err
		}},
		{"Extractor.DescribeSource", func() string { return m.ext }, func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := extractorv1.NewExtractorServiceClient(cc).DescribeSource(ctx, &extractorv1.DescribeSourceRequest{})
			return err
		}},
		{"Health", func() string { return m.ext }, func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
			return err
		}},
	}
	// allowed[call] lists the callers that get OK; every other caller must
	// be refused (Unauthenticated, PermissionDenied, or the handshake).
	allowed := map[string][]string{
		"CreateJob":                {"admin", "operator"},
		"CancelJob":                {"admin", "operator"},
		"GetJob":                   {"admin", "operator", "ci", "viewer"},
		"DryRun":                   {"admin", "operator", "ci"},
		"Extractor.DescribeSource": {"orchestrator-cert", "transformer-cert"},
		"Health":                   {"nobody", "wrong-token", "admin", "operator", "ci", "viewer", "orchestrator-cert", "gateway-cert", "transformer-cert", "validator-cert"},
	}
	for _, c := range calls {
		for _, who := range callers {
			t.Run(c.name+"/"+who.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				err := c.do(ctx, m.dial(t, c.addr(), who))
				want := false
				for _, a := range allowed[c.name] {
					want = want || a == who.name
				}
				if want && err != nil {
					t.Fatalf("want allowed, got %v", err)
				}
				if !want {
					if err == nil {
						t.Fatal("want refused, got OK")
					}
					code := status.Code(err)
					// The gateway carries users only: alone it is no one.
					if who.foreign || who.name == "wrong-token" || who.name == "nobody" || (who.name == "gateway-cert" && c.addr() == m.orch) {
						if code != codes.Unauthenticated && code != codes.Unavailable {
							t.Fatalf("want Unauthenticated or a refused handshake, got %v", err)
						}
					} else if code != codes.PermissionDenied {
						t.Fatalf("want PermissionDenied, got %v", err)
					}
				}
			})
		}
	}
	// Mutating calls and refusals are audited with who and the job.
	m.mu.Lock()
	defer m.mu.Unlock()
	var sawCreate, sawDenied bool
	for _, ev := range m.audited {
		if ev.Method == "/cutover.orchestrator.v1.JobService/CreateJob" && ev.Outcome == "OK" && ev.Principal == "user-operator" && ev.JobID == "j1" && ev.Peer != "" {
			sawCreate = true
		}
		if ev.Method == "/cutover.orchestrator.v1.JobService/CancelJob" && ev.Outcome == "PermissionDenied" && ev.Role == auth.RoleViewer {
			sawDenied = true
		}
	}
	if !sawCreate || !sawDenied {
		t.Fatalf("audit misses the operator's create (%v) or the viewer's refused cancel (%v): %+v", sawCreate, sawDenied, m.audited)
	}
}

// TestHandlerPanicIsInternalAndServiceKeepsServing: a panicking handler is
// answered Internal and the next call on the same connection succeeds.
func TestHandlerPanicIsInternalAndServiceKeepsServing(t *testing.T) {
	m := startMesh(t)
	cc := m.dial(t, m.orch, caller{role: auth.RoleViewer})
	jc := orchestratorv1.NewJobServiceClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := jc.GetJob(ctx, &orchestratorv1.GetJobRequest{Id: "panic"})
	if status.Code(err) != codes.Internal {
		t.Fatalf("want Internal, got %v", err)
	}
	res, err := jc.GetJob(ctx, &orchestratorv1.GetJobRequest{Id: "after"})
	if err != nil || res.GetJob().GetId() != "after" {
		t.Fatalf("after a panic: %v %v", res, err)
	}
}

// TestPlaintextClientRefused: a server never speaks plaintext gRPC.
func TestPlaintextClientRefused(t *testing.T) {
	m := startMesh(t)
	cc, err := Dial(m.orch) // Dial's default is no transport security
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}); err == nil {
		t.Fatal("a plaintext call was answered")
	}
}
