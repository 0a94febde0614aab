package auth

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// A token file holds one token per line: "<name> <role> sha256:<hex>", where
// the hex is the SHA-256 of the bearer token. Blank lines and lines starting
// with # are ignored. The file never holds a token itself, so reading it
// (or a backup of it) grants nothing.

const hashPrefix = "sha256:"

// HashToken is the form a token is stored in.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hashPrefix + hex.EncodeToString(sum[:])
}

// NewToken returns a random bearer token (256 bits, URL-safe).
func NewToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return "cut_" + base64.RawURLEncoding.EncodeToString(b)
}

// TokenLine is the token file line granting role to name for token.
func TokenLine(name string, role Role, token string) string {
	return fmt.Sprintf("%s %s %s", name, role, HashToken(token))
}

type tokenEntry struct {
	name string
	role Role
	hash [sha256.Size]byte
}

// Tokens checks bearer tokens against a token file, read again when the file
// changes (so a revoked token stops working without a restart).
type Tokens struct {
	path string

	mu      sync.Mutex
	entries []tokenEntry
	stamp   string
	checked time.Time
}

// LoadTokens reads the token file at path; a malformed line is an error
// naming its line number.
func LoadTokens(path string) (*Tokens, error) {
	t := &Tokens{path: path}
	if err := t.reload(); err != nil {
		return nil, err
	}
	return t, nil
}

// StaticTokens holds tokens given in memory (the embedded stack's own).
func StaticTokens(lines ...string) (*Tokens, error) {
	entries, err := parseTokens([]byte(strings.Join(lines, "\n")), "tokens")
	if err != nil {
		return nil, err
	}
	return &Tokens{entries: entries}, nil
}

func (t *Tokens) reload() error {
	st, err := os.Stat(t.path)
	if err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	stamp := fmt.Sprint(st.ModTime().UnixNano(), st.Size())
	if stamp == t.stamp {
		return nil
	}
	b, err := os.ReadFile(t.path)
	if err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	entries, err := parseTokens(b, t.path)
	if err != nil {
		return err
	}
	t.entries, t.stamp = entries, stamp
	return nil
}

func parseTokens(b []byte, name string) ([]tokenEntry, error) {
	var out []tokenEntry
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, fmt.Errorf("%s line %d: want \"<name> <role> sha256:<hex>\"", name, n)
		}
		role, err := ParseRole(f[1])
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", name, n, err)
		}
		raw, err := hex.DecodeString(strings.TrimPrefix(f[2], hashPrefix))
		if !strings.HasPrefix(f[2], hashPrefix) || err != nil || len(raw) != sha256.Size {
			return nil, fmt.Errorf("%s line %d: the token must be stored as sha256:<64 hex digits> (cutover token prints the line)", name, n)
		}
		e := tokenEntry{name: f[0], role: role}
		copy(e.hash[:], raw)
		out = append(out, e)
	}
	return out, sc.Err()
}

// Lookup returns the identity a bearer token grants. Every entry is compared
// in constant time and none is skipped, so timing tells nothing about which
// entry matched or how much of a hash did.
func (t *Tokens) Lookup(token string) (Identity, bool) {
	if t == nil || token == "" {
		return Identity{}, false
	}
	t.mu.Lock()
	if t.path != "" && time.Since(t.checked) > time.Second {
		t.checked = time.Now()
		_ = t.reload() // a file caught mid-write keeps the previous entries
	}
	entries := t.entries
	t.mu.Unlock()
	sum := sha256.Sum256([]byte(token))
	var found Identity
	ok := 0
	for _, e := range entries {
		if subtle.ConstantTimeCompare(sum[:], e.hash[:]) == 1 {
			found, ok = Identity{Name: e.name, Role: e.role}, 1
		}
	}
	return found, ok == 1
}
