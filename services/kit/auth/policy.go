// Package auth authenticates and authorises every gRPC call in one place:
// interceptors for unary and streaming calls that name the caller (a user by
// bearer token, a service by its mTLS certificate), check the method's rule,
// record mutating calls in the audit log and turn a handler panic into
// Internal while the service keeps serving.
package auth

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Role is what a user may do.
type Role string

// Roles, from most to least powerful. RoleService marks a cutover service
// authenticated by its certificate; it is never granted by a token.
const (
	RoleAdmin    Role = "admin"
	RoleOperator Role = "operator"
	RoleCI       Role = "ci"
	RoleViewer   Role = "viewer"
	RoleService  Role = "service"
)

// ParseRole accepts the four user roles.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleAdmin, RoleOperator, RoleCI, RoleViewer:
		return r, nil
	}
	return "", fmt.Errorf("unknown role %q (want admin, operator, ci or viewer)", s)
}

// Identity is who makes a call.
type Identity struct {
	Name string
	Role Role
}

func (id Identity) String() string {
	if id.Role == RoleService {
		return "service:" + id.Name
	}
	return id.Name
}

type identityKey struct{}

// WithIdentity returns ctx carrying id.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// FromContext is the caller of the call ctx belongs to.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}

// Rule says who may call a method.
type Rule struct {
	Roles    []Role   // user roles allowed
	Services []string // service identities allowed
	Open     bool     // anyone, even unauthenticated (health checks)
	Mutating bool     // recorded in the audit log
}

func (r Rule) allows(id Identity) bool {
	if id.Role == RoleService {
		return slices.Contains(r.Services, id.Name)
	}
	return slices.Contains(r.Roles, id.Role)
}

// Policy maps full method names ("/pkg.Service/Method") to rules; a service
// prefix ("/pkg.Service/") covers every method of it. A method with no rule
// is refused: a new RPC is closed until someone decides who may call it.
type Policy map[string]Rule

func (p Policy) rule(method string) (Rule, bool) {
	if r, ok := p[method]; ok {
		return r, true
	}
	if i := strings.LastIndexByte(method, '/'); i > 0 {
		r, ok := p[method[:i+1]]
		return r, ok
	}
	return Rule{}, false
}

var (
	readers   = []Role{RoleAdmin, RoleOperator, RoleCI, RoleViewer}
	checkers  = []Role{RoleAdmin, RoleOperator, RoleCI}
	operators = []Role{RoleAdmin, RoleOperator}
	admins    = []Role{RoleAdmin}
)

// common are the rules every server shares: health is open (probes hold no
// credentials and it tells nothing), reflection needs any identity.
func common() Policy {
	return Policy{
		"/grpc.health.v1.Health/":                    {Open: true},
		"/grpc.reflection.v1.ServerReflection/":      {Roles: readers, Services: ServiceNames},
		"/grpc.reflection.v1alpha.ServerReflection/": {Roles: readers, Services: ServiceNames},
	}
}

// ServiceNames are the identities service certificates carry.
var ServiceNames = []string{"orchestrator", "gateway", "extractor", "transformer", "validator", "loader"}

// OrchestratorPolicy: users by role. The gateway is only a transport: it
// forwards the user's token and has no rights of its own.
func OrchestratorPolicy() Policy {
	p := common()
	job := "/cutover.orchestrator.v1.JobService/"
	for _, m := range []string{"GetJob", "ListJobs", "WatchJob", "GetJobReport", "GetLineage", "ListQuarantine", "GetReadiness"} {
		p[job+m] = Rule{Roles: readers}
	}
	for _, m := range []string{"CreateJob", "CancelJob", "ResumeJob", "RollbackJob", "StopFollowing", "CutoverJob"} {
		p[job+m] = Rule{Roles: operators, Mutating: true}
	}
	p[job+"DeleteJob"] = Rule{Roles: admins, Mutating: true}
	p[job+"ListAuditEvents"] = Rule{Roles: admins}
	val := "/cutover.orchestrator.v1.ValidationService/"
	for _, m := range []string{"ValidateSpec", "DryRun", "Reconcile"} {
		p[val+m] = Rule{Roles: checkers}
	}
	return p
}

// StagePolicy: a stage answers only the orchestrator and the stages that
// pull from it, never a user (with any token) nor the gateway.
func StagePolicy(stage string) Policy {
	p := common()
	callers := map[string][]string{
		"extractor":   {"orchestrator", "transformer", "loader"},
		"transformer": {"orchestrator", "validator"},
		"validator":   {"orchestrator", "loader"},
		"loader":      {"orchestrator"},
	}[stage]
	p["/cutover."+stage+".v1."+strings.ToUpper(stage[:1])+stage[1:]+"Service/"] = Rule{Services: callers}
	return p
}

// PolicyFor is the policy of the named service.
func PolicyFor(service string) Policy {
	if service == "orchestrator" {
		return OrchestratorPolicy()
	}
	return StagePolicy(service)
}
