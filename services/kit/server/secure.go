package server

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cutover/cutover/services/kit/auth"
	"github.com/cutover/cutover/services/kit/config"
	"github.com/cutover/cutover/services/kit/pki"
	"github.com/cutover/cutover/services/kit/sealbox"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// Security is what one service needs on the mesh: its certificate (mTLS on
// every link), the user tokens it accepts and where audited calls go.
type Security struct {
	Service string
	// Dir is the TLS directory the certificate came from ("" for files
	// named one by one); it may also hold the development secret key.
	Dir    string
	TLS    *pki.Source
	Tokens *auth.Tokens
	Audit  func(context.Context, auth.Event)
}

// ServerOptions are the credentials and the auth interceptors (which also
// recover panics) for the service's gRPC server.
func (s *Security) ServerOptions() []grpc.ServerOption {
	g := &auth.Guard{Policy: auth.PolicyFor(s.Service), Tokens: s.Tokens, Audit: s.Audit}
	return append([]grpc.ServerOption{grpc.Creds(credentials.NewTLS(s.TLS.Server()))}, g.ServerOptions()...)
}

// DialOptions make calls to other services over mTLS with this service's
// certificate.
func (s *Security) DialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(s.TLS.Client()))}
}

// Dialer is implemented by services that call other services (stages pull
// from their upstream); they are handed the process's dial options.
type Dialer interface{ UseDialOptions(opts ...grpc.DialOption) }

// Auditor is implemented by a service that stores audited calls.
type Auditor interface {
	AuditEvent(ctx context.Context, ev auth.Event)
}

// SecurityFlags are the TLS and token settings every service binary takes.
type SecurityFlags struct {
	dir, ca, cert, key, tokens *string
}

// AddSecurityFlags registers --tls-dir, --tls-ca, --tls-cert, --tls-key and
// --tokens-file (env CUTOVER_TLS_DIR and so on).
func AddSecurityFlags(fs *flag.FlagSet) *SecurityFlags {
	return &SecurityFlags{
		dir:    config.String(fs, "tls-dir", "", "directory made by `cutover certs` holding ca.pem, <service>.pem, <service>-key.pem and tokens"),
		ca:     config.String(fs, "tls-ca", "", "CA bundle peers are verified against (overrides --tls-dir)"),
		cert:   config.String(fs, "tls-cert", "", "this service's certificate, reloaded when it changes"),
		key:    config.String(fs, "tls-key", "", "this service's key"),
		tokens: config.String(fs, "tokens-file", "", "file of hashed bearer tokens and roles (default <tls-dir>/tokens)"),
	}
}

// Dir is the --tls-dir value.
func (f *SecurityFlags) Dir() string { return *f.dir }

// Build loads the named service's certificate and the token file. There is
// no plaintext mode: a service without a certificate does not start.
func (f *SecurityFlags) Build(service string) (*Security, error) {
	files := pki.Files{CA: *f.ca, Cert: *f.cert, Key: *f.key}
	if *f.dir != "" {
		d := pki.DirFiles(*f.dir, service)
		files = pki.Files{CA: or(files.CA, d.CA), Cert: or(files.Cert, d.Cert), Key: or(files.Key, d.Key)}
	}
	if files.CA == "" || files.Cert == "" || files.Key == "" {
		return nil, errors.New("TLS is required: set CUTOVER_TLS_DIR (make one with `cutover certs --dir DIR`) or CUTOVER_TLS_CA, CUTOVER_TLS_CERT and CUTOVER_TLS_KEY")
	}
	src, err := pki.Load(files)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", service, err)
	}
	sec := &Security{Service: service, TLS: src, Dir: *f.dir}
	tokens := *f.tokens
	if tokens == "" && *f.dir != "" {
		if p := filepath.Join(*f.dir, auth.TokensFileName); fileExists(p) {
			tokens = p
		}
	}
	if tokens != "" {
		if sec.Tokens, err = auth.LoadTokens(tokens); err != nil {
			return nil, err
		}
	}
	return sec, nil
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// SecretKeyFileName is the development key sealing DSN secrets in the
// control schema, kept in the TLS directory.
const SecretKeyFileName = "secret.key"

// WriteDevDir makes (or completes) a development TLS directory: a CA and a
// certificate per service, an admin token and a secret key.
func WriteDevDir(dir string, services []string, hosts ...string) error {
	if err := pki.WriteDir(dir, services, hosts...); err != nil {
		return err
	}
	if err := auth.WriteDevTokens(dir); err != nil {
		return err
	}
	return sealbox.WriteKeyFile(filepath.Join(dir, SecretKeyFileName))
}

// DevSecretKeyFile is the secret key in the TLS directory, "" when there
// is no directory or no key in it.
func (s *Security) DevSecretKeyFile() string {
	if s.Dir == "" {
		return ""
	}
	if p := filepath.Join(s.Dir, SecretKeyFileName); fileExists(p) {
		return p
	}
	return ""
}

// DevSecurity is an in-memory PKI for a stack in one process: one CA and a
// certificate per service, so every link is mTLS with real identities.
type DevSecurity struct {
	CA    *pki.CA
	certs map[string]*pki.Issued
}

// NewDevSecurity makes a CA and certificates for services.
func NewDevSecurity(services ...string) (*DevSecurity, error) {
	ca, err := pki.NewCA("cutover embedded CA")
	if err != nil {
		return nil, err
	}
	d := &DevSecurity{CA: ca, certs: map[string]*pki.Issued{}}
	for _, s := range services {
		if d.certs[s], err = ca.Issue(s); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// For is the named service's security, accepting tokens.
func (d *DevSecurity) For(service string, tokens *auth.Tokens) *Security {
	return &Security{Service: service, TLS: pki.Memory(d.CA, d.certs[service]), Tokens: tokens}
}

// ClientOptions dial a stack whose TLS directory is dir as its development
// admin: the CA from ca.pem, the token from admin.token.
func ClientOptions(dir string) ([]grpc.DialOption, error) {
	roots, err := pki.RootsOnly(filepath.Join(dir, "ca.pem"))
	if err != nil {
		return nil, err
	}
	tok, err := auth.ReadTokenFile(filepath.Join(dir, auth.AdminTokenFileName))
	if err != nil {
		return nil, err
	}
	return []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(roots.Client())), grpc.WithPerRPCCredentials(auth.Bearer(tok))}, nil
}
