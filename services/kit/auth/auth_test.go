package auth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestTokenFile(t *testing.T) {
	tok := NewToken()
	cases := []struct {
		name, body, wantErr string
	}{
		{"good", "# comment\n\n" + TokenLine("ana", RoleOperator, tok) + "\n", ""},
		{"plain token stored", "ana operator " + tok + "\n", "line 1: the token must be stored as sha256"},
		{"short hash", "ana operator sha256:abcd\n", "line 1: the token must be stored as sha256"},
		{"unknown role", "# x\nana root " + HashToken(tok) + "\n", `line 2: unknown role "root"`},
		{"service role not grantable", "ana service " + HashToken(tok) + "\n", `unknown role "service"`},
		{"missing field", "ana " + HashToken(tok) + "\n", "line 1: want"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "tokens")
			if err := os.WriteFile(p, []byte(c.body), 0o600); err != nil {
				t.Fatal(err)
			}
			tk, err := LoadTokens(p)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("want error containing %q, got %v", c.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if id, ok := tk.Lookup(tok); !ok || id != (Identity{Name: "ana", Role: RoleOperator}) {
				t.Fatalf("lookup: %v %v", id, ok)
			}
			for _, bad := range []string{"", tok + "x", tok[:len(tok)-1], HashToken(tok)} {
				if _, ok := tk.Lookup(bad); ok {
					t.Fatalf("token %q accepted", bad)
				}
			}
		})
	}
}

// TestTokenFileReload: a token removed from the file stops working without
// a restart.
func TestTokenFileReload(t *testing.T) {
	a, b := NewToken(), NewToken()
	p := filepath.Join(t.TempDir(), "tokens")
	write := func(lines ...string) {
		if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(TokenLine("a", RoleAdmin, a), TokenLine("b", RoleViewer, b))
	tk, err := LoadTokens(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tk.Lookup(b); !ok {
		t.Fatal("b refused")
	}
	write(TokenLine("a", RoleAdmin, a))
	// The file is checked at most once a second; the size changed, so the
	// next check sees it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := tk.Lookup(b); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("revoked token still accepted after 5s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, ok := tk.Lookup(a); !ok {
		t.Fatal("a refused after reload")
	}
}

func TestPolicyIsClosedByDefault(t *testing.T) {
	cases := []struct {
		policy Policy
		method string
		id     Identity
		want   bool
	}{
		{OrchestratorPolicy(), "/cutover.orchestrator.v1.JobService/CreateJob", Identity{"o", RoleOperator}, true},
		{OrchestratorPolicy(), "/cutover.orchestrator.v1.JobService/CreateJob", Identity{"c", RoleCI}, false},
		{OrchestratorPolicy(), "/cutover.orchestrator.v1.JobService/DeleteJob", Identity{"o", RoleOperator}, false},
		{OrchestratorPolicy(), "/cutover.orchestrator.v1.JobService/DeleteJob", Identity{"a", RoleAdmin}, true},
		{OrchestratorPolicy(), "/cutover.orchestrator.v1.JobService/ListAuditEvents", Identity{"v", RoleViewer}, false},
		{OrchestratorPolicy(), "/cutover.orchestrator.v1.ValidationService/Reconcile", Identity{"c", RoleCI}, true},
		{OrchestratorPolicy(), "/cutover.orchestrator.v1.ValidationService/Reconcile", Identity{"v", RoleViewer}, false},
		{OrchestratorPolicy(), "/cutover.orchestrator.v1.JobService/GetJob", Identity{"gateway", RoleService}, false},
		{OrchestratorPolicy(), "/cutover.orchestrator.v1.JobService/SomethingNew", Identity{"a", RoleAdmin}, false},
		{StagePolicy("loader"), "/cutover.loader.v1.LoaderService/Load", Identity{"orchestrator", RoleService}, true},
		{StagePolicy("loader"), "/cutover.loader.v1.LoaderService/Load", Identity{"validator", RoleService}, false},
		{StagePolicy("loader"), "/cutover.loader.v1.LoaderService/Load", Identity{"a", RoleAdmin}, false},
		{StagePolicy("extractor"), "/cutover.extractor.v1.ExtractorService/ReadKeys", Identity{"loader", RoleService}, true},
		{StagePolicy("extractor"), "/cutover.extractor.v1.ExtractorService/ReadKeys", Identity{"gateway", RoleService}, false},
		{StagePolicy("transformer"), "/cutover.transformer.v1.TransformerService/Pull", Identity{"validator", RoleService}, true},
		{StagePolicy("validator"), "/cutover.validator.v1.ValidatorService/Pull", Identity{"loader", RoleService}, true},
		{StagePolicy("validator"), "/cutover.extractor.v1.ExtractorService/ReadKeys", Identity{"orchestrator", RoleService}, false},
	}
	for _, c := range cases {
		r, ok := c.policy.rule(c.method)
		if got := ok && r.allows(c.id); got != c.want {
			t.Errorf("%s by %v: allowed=%v, want %v", c.method, c.id, got, c.want)
		}
	}
}
