package auth

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"github.com/cutover/cutover/services/kit/pki"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Event is one audited call.
type Event struct {
	At        time.Time
	Principal string
	Role      Role
	Method    string
	JobID     string
	Outcome   string // gRPC code name
	Peer      string
}

// Guard is the interceptor chain of one server.
type Guard struct {
	Policy Policy
	Tokens *Tokens
	// Audit receives every mutating call and every refused call; nil logs
	// them only.
	Audit func(context.Context, Event)
}

// ServerOptions are the interceptors to pass to grpc.NewServer.
func (g *Guard) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(g.unary), grpc.ChainStreamInterceptor(g.stream)}
}

func (g *Guard) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	ctx, rule, err := g.admit(ctx, info.FullMethod, req)
	if err == nil {
		resp, err = func() (resp any, err error) {
			defer recoverTo(&err, info.FullMethod)
			return handler(ctx, req)
		}()
	}
	g.audit(ctx, info.FullMethod, req, resp, rule, err)
	return resp, err
}

func (g *Guard) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	ctx, rule, err := g.admit(ss.Context(), info.FullMethod, nil)
	if err == nil {
		err = func() (err error) {
			defer recoverTo(&err, info.FullMethod)
			return handler(srv, &identityStream{ServerStream: ss, ctx: ctx})
		}()
	}
	g.audit(ctx, info.FullMethod, nil, nil, rule, err)
	return err
}

// recoverTo turns a handler panic into Internal, logged with its stack, so
// one bad request does not take the service down.
func recoverTo(err *error, method string) {
	if r := recover(); r != nil {
		slog.Error("handler panic", "method", method, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		*err = status.Errorf(codes.Internal, "internal error in %s (logged)", method)
	}
}

type identityStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *identityStream) Context() context.Context { return s.ctx }

var gatewayIdentity = Identity{Name: "gateway", Role: RoleService}

// admit names the caller and checks the method's rule. A token wins over a
// certificate: the gateway's certificate carries a user's token, and the
// call is the user's.
func (g *Guard) admit(ctx context.Context, method string, req any) (context.Context, Rule, error) {
	rule, known := g.Policy.rule(method)
	if !known {
		return ctx, rule, status.Errorf(codes.PermissionDenied, "%s has no access rule", method)
	}
	id, err := g.identify(ctx)
	if err != nil {
		if rule.Open {
			return ctx, rule, nil
		}
		return ctx, rule, err
	}
	ctx = WithIdentity(ctx, id)
	if rule.Open || rule.allows(id) {
		return ctx, rule, nil
	}
	if id == gatewayIdentity && len(rule.Roles) > 0 {
		// The gateway only carries users; without one the REST caller is
		// unauthenticated (401), not refused a right (403).
		return ctx, rule, status.Error(codes.Unauthenticated, "missing bearer token")
	}
	if id.Role == RoleService {
		return ctx, rule, status.Errorf(codes.PermissionDenied, "service %q may not call %s", id.Name, method)
	}
	return ctx, rule, status.Errorf(codes.PermissionDenied, "role %s may not call %s", id.Role, method)
}

func (g *Guard) identify(ctx context.Context) (Identity, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if vals := md.Get("authorization"); len(vals) > 0 {
		tok, ok := strings.CutPrefix(vals[0], "Bearer ")
		if !ok {
			return Identity{}, status.Error(codes.Unauthenticated, `authorization must be "Bearer <token>"`)
		}
		id, ok := g.Tokens.Lookup(strings.TrimSpace(tok))
		if !ok {
			return Identity{}, status.Error(codes.Unauthenticated, "unknown bearer token")
		}
		return id, nil
	}
	if cert := peerCert(ctx); cert != nil {
		if name := pki.ServiceName(cert); name != "" {
			return Identity{Name: name, Role: RoleService}, nil
		}
	}
	return Identity{}, status.Error(codes.Unauthenticated, "no credentials: send a bearer token or a service certificate")
}

// peerCert is the verified client certificate of the call, if any; the TLS
// handshake already refused certificates from another CA.
func peerCert(ctx context.Context) *x509.Certificate {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return nil
	}
	return ti.State.VerifiedChains[0][0]
}

// audit records mutating calls and refusals: who, role, method, job,
// outcome, time and peer (the client behind the gateway when it says so).
func (g *Guard) audit(ctx context.Context, method string, req, resp any, rule Rule, err error) {
	code := status.Code(err)
	if !rule.Mutating && code != codes.Unauthenticated && code != codes.PermissionDenied {
		return
	}
	id, _ := FromContext(ctx)
	ev := Event{At: time.Now().UTC(), Principal: id.String(), Role: id.Role, Method: method, JobID: jobID(req, resp), Outcome: code.String(), Peer: peerAddr(ctx, id)}
	slog.Info("audit", "principal", ev.Principal, "role", ev.Role, "method", ev.Method, "job", ev.JobID, "outcome", ev.Outcome, "peer", ev.Peer)
	if g.Audit != nil {
		g.Audit(context.WithoutCancel(ctx), ev)
	}
}

func peerAddr(ctx context.Context, id Identity) string {
	addr := ""
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		addr = p.Addr.String()
	}
	// Behind the gateway (authenticated by its certificate) the client's
	// address is what matters; the gateway sets it.
	if cert := peerCert(ctx); cert != nil && pki.ServiceName(cert) == "gateway" {
		md, _ := metadata.FromIncomingContext(ctx)
		if v := md.Get("x-forwarded-for"); len(v) > 0 {
			addr = v[0] + " via " + addr
		}
	}
	return addr
}

// jobID is the job a call is about: the request's "id" or "job_id", or
// for a create the response's job.id.
func jobID(req, resp any) string {
	if id := stringField(req, "id", "job_id"); id != "" {
		return id
	}
	if m, ok := resp.(proto.Message); ok && m != nil {
		r := m.ProtoReflect()
		if fd := r.Descriptor().Fields().ByName("job"); fd != nil && fd.Kind() == protoreflect.MessageKind && r.Has(fd) {
			return stringField(r.Get(fd).Message().Interface(), "id")
		}
	}
	return ""
}

func stringField(v any, names ...protoreflect.Name) string {
	m, ok := v.(proto.Message)
	if !ok || m == nil {
		return ""
	}
	r := m.ProtoReflect()
	for _, name := range names {
		if fd := r.Descriptor().Fields().ByName(name); fd != nil && fd.Kind() == protoreflect.StringKind {
			return r.Get(fd).String()
		}
	}
	return ""
}
