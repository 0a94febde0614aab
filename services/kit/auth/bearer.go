package auth

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Bearer is a per-call credential sending a user's token; gRPC refuses to
// send it over a connection without transport security.
type Bearer string

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (b Bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials.
func (Bearer) RequireTransportSecurity() bool { return true }

// Development token files in a TLS directory made by `cutover certs`.
const (
	TokensFileName     = "tokens"
	AdminTokenFileName = "admin.token"
)

// WriteDevTokens makes, when dir has none yet, a token file granting admin
// to a new random token, and that token in admin.token (0600) for the
// clients of a development stack (cutoverctl, curl, grpcurl).
func WriteDevTokens(dir string) error {
	tf, af := filepath.Join(dir, TokensFileName), filepath.Join(dir, AdminTokenFileName)
	if _, err := os.Stat(tf); err == nil {
		return nil
	}
	tok := NewToken()
	if err := os.WriteFile(af, []byte(tok+"\n"), 0o600); err != nil {
		return err
	}
	body := "# <name> <role> sha256:<hex of the token's SHA-256>; add lines with `cutover token`\n" + TokenLine("dev-admin", RoleAdmin, tok) + "\n"
	return os.WriteFile(tf, []byte(body), 0o600)
}

// ReadTokenFile reads a bearer token from a file (one line).
func ReadTokenFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("token file %s is empty", path)
	}
	return tok, nil
}
