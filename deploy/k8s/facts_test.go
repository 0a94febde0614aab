package k8s

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/cutover/cutover/services/kit/auth"
	"github.com/cutover/cutover/services/kit/config"
	"github.com/cutover/cutover/services/kit/pki"
)

// The six services deployed, each its own binary (services/<name>/cmd/<name>).
var serviceNames = []string{"extractor", "transformer", "validator", "loader", "orchestrator", "gateway"}

// public are the services meant to be reached from outside the cluster's
// cutover pods: the gateway is the REST front door (DESIGN.md, Services),
// every other port answers only its peers.
var public = map[string]bool{"gateway": true}

// facts is what the service binaries and their source say, gathered once.
type facts struct {
	repo string
	// bin holds the built binaries (removed by TestMain).
	bin string
	// env is, per binary, every CUTOVER_* variable it reads: its flags as
	// its own -h lists them ("(env CUTOVER_X)", kit/config).
	env map[string]map[string]bool
	// grpcServices is, per binary, the gRPC services it registers (health
	// reports each by name): the ServiceName of gen/cutover/<name>/v1.
	grpcServices map[string][]string
	// callers is, per service, who calls it: the services its auth policy
	// admits (a stage learns its upstream from the request, so only the
	// policy knows that the validator calls the transformer) and the
	// binaries that read its address variable (the orchestrator, the gateway).
	callers map[string][]string
	// certs is a development certificate per service, as `cutover certs`
	// issues it: the names a peer may dial it by.
	certs map[string]*x509.Certificate
	// src is the non-test Go source of each service, to find HTTP routes.
	src map[string]string
}

var (
	binDir    string // for TestMain to remove
	factsOnce sync.Once
	factsVal  *facts
	factsErr  error
)

// gather builds the binaries once for the whole test run.
func gather(t *testing.T) *facts {
	t.Helper()
	factsOnce.Do(func() { factsVal, factsErr = newFacts() })
	if factsErr != nil {
		t.Fatal(factsErr)
	}
	return factsVal
}

func newFacts() (*facts, error) {
	repo, err := filepath.Abs("../..")
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(repo, "services", "kit", "go.mod")); err != nil {
		return nil, fmt.Errorf("not in the cutover repository: %w", err)
	}
	f := &facts{repo: repo, env: map[string]map[string]bool{}, grpcServices: map[string][]string{},
		callers: map[string][]string{}, certs: map[string]*x509.Certificate{}, src: map[string]string{}}
	bin, err := os.MkdirTemp("", "cutover-k8s-bin-")
	if err != nil {
		return nil, err
	}
	binDir = bin
	f.bin = bin
	// One go build per module, one after the other: the machine may be
	// busy, and the build cache makes all but the first quick.
	for _, s := range serviceNames {
		cmd := exec.Command("go", "build", "-o", filepath.Join(bin, s), "./cmd/"+s)
		cmd.Dir = filepath.Join(repo, "services", s)
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build %s: %v\n%s", s, err, out)
		}
		if f.env[s], err = helpEnv(filepath.Join(bin, s)); err != nil {
			return nil, fmt.Errorf("%s -h: %w", s, err)
		}
	}
	if err := f.readSource(); err != nil {
		return nil, err
	}
	ca, err := pki.NewCA("render test CA")
	if err != nil {
		return nil, err
	}
	for _, s := range serviceNames {
		is, err := ca.Issue(s)
		if err != nil {
			return nil, err
		}
		if f.certs[s], err = x509.ParseCertificate(is.TLS.Certificate[0]); err != nil {
			return nil, err
		}
	}
	// Callers by policy: the rules of the service's own RPCs (not health,
	// open to all, nor reflection, open to every identity).
	for _, s := range serviceNames {
		if s == "gateway" {
			continue // not a gRPC server: no policy
		}
		set := map[string]bool{}
		for method, rule := range auth.PolicyFor(s) {
			if strings.HasPrefix(method, "/cutover.") {
				for _, c := range rule.Services {
					set[c] = true
				}
			}
		}
		for c := range set {
			f.callers[s] = append(f.callers[s], c)
		}
	}
	// Callers by configuration: a binary that reads CUTOVER_<S>_ADDR dials S.
	for _, b := range serviceNames {
		for _, s := range serviceNames {
			if b != s && f.env[b][addrEnv(s)] && !contains(f.callers[s], b) {
				f.callers[s] = append(f.callers[s], b)
			}
		}
	}
	for s := range f.callers {
		sort.Strings(f.callers[s])
	}
	return f, nil
}

// addrEnv is a service's address variable: its listen address, and the
// address its callers dial (kit/server.Main: flag "<name>-addr").
func addrEnv(service string) string { return config.EnvName(service + "-addr") }

var (
	flagLine = regexp.MustCompile(`^  -([a-z0-9][a-z0-9.-]*)`)
	envNote  = regexp.MustCompile(`\(env (CUTOVER_[A-Z0-9_]+)\)`)
)

// helpEnv runs a binary with -h and returns the environment variables its
// flags say they read. Each must be the flag's name as kit/config maps it:
// if that mapping and the text ever part, the test says so.
func helpEnv(bin string) (map[string]bool, error) {
	cmd := exec.Command(bin, "-h")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + os.TempDir()} // no CUTOVER_* from the caller
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%v\n%s", err, out.String())
	}
	env := map[string]bool{}
	var flagName string
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		line := sc.Text()
		if m := flagLine.FindStringSubmatch(line); m != nil {
			flagName = m[1]
		}
		for _, m := range envNote.FindAllStringSubmatch(line, -1) {
			if want := config.EnvName(flagName); m[1] != want {
				return nil, fmt.Errorf("flag -%s says it reads %s, kit/config maps it to %s", flagName, m[1], want)
			}
			env[m[1]] = true
		}
	}
	if len(env) == 0 {
		return nil, fmt.Errorf("no (env CUTOVER_…) flag in its usage:\n%s", out.String())
	}
	return env, nil
}

var serviceNameDecl = regexp.MustCompile(`ServiceName:\s+"([^"]+)"`)

// readSource reads the gRPC service names from the generated code and each
// service's own Go source (for HTTP routes).
func (f *facts) readSource() error {
	for _, s := range serviceNames {
		files, _ := filepath.Glob(filepath.Join(f.repo, "gen", "cutover", s, "v1", "*_grpc.pb.go"))
		for _, p := range files {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for _, m := range serviceNameDecl.FindAllSubmatch(b, -1) {
				f.grpcServices[s] = append(f.grpcServices[s], string(m[1]))
			}
		}
		var src strings.Builder
		err := filepath.WalkDir(filepath.Join(f.repo, "services", s), func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return err
			}
			b, err := os.ReadFile(p)
			src.Write(b)
			return err
		})
		if err != nil {
			return err
		}
		f.src[s] = src.String()
	}
	return nil
}

// servesHTTPGet says whether service s registers GET path (net/http
// patterns: "GET /healthz").
func (f *facts) servesHTTPGet(s, path string) bool {
	return strings.Contains(f.src[s], `"GET `+path+`"`)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
