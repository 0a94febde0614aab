package e2e

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/services/kit/mysqltest"
	"github.com/cutover/cutover/services/kit/pgtest"
	"github.com/cutover/cutover/services/kit/server"
	"google.golang.org/grpc"
)

var (
	repoRoot string
	binDir   string
)

// TestMain builds the six binaries once; the tests run them as separate
// processes through deploy/local, as `make bench` does.
func TestMain(m *testing.M) {
	wd, _ := os.Getwd()
	repoRoot = filepath.Clean(filepath.Join(wd, "..", "..", ".."))
	dir, err := os.MkdirTemp("", "cutover-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	for _, s := range []string{"extractor", "transformer", "validator", "loader", "orchestrator", "gateway"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, s), "./cmd/"+s)
		cmd.Dir = filepath.Join(repoRoot, "services", s)
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", s, err, out)
			os.Exit(1)
		}
	}
	code := pgtest.Run(m)
	mysqltest.Cleanup() // a throwaway MariaDB, if the sync test started one
	os.RemoveAll(dir)
	os.Exit(code)
}

// procs is a set of services running as processes on free loopback ports.
type procs struct {
	t    *testing.T
	dir  string
	env  []string
	base int
	tls  string // CUTOVER_TLS_DIR: every link is mTLS, clients present the admin token
}

func startProcs(t *testing.T, extraEnv ...string) *procs {
	t.Helper()
	p := &procs{t: t, dir: t.TempDir(), base: freeBase(t)}
	p.tls = filepath.Join(p.dir, "tls")
	// The services find their certificates, the tokens and the key
	// sealing DSN secrets here (a restarted orchestrator reads its jobs).
	if err := server.WriteDevDir(p.tls, []string{"extractor", "transformer", "validator", "loader", "orchestrator", "gateway"}); err != nil {
		t.Fatal(err)
	}
	p.env = append(os.Environ(), "CUTOVER_TLS_DIR="+p.tls, "CUTOVER_FILE_ROOTS="+os.TempDir(),
		"CUTOVER_BIN="+binDir, "CUTOVER_LOCAL_DIR="+p.dir, "CUTOVER_PORT_BASE="+strconv.Itoa(p.base),
		"CUTOVER_TRACE_FILE="+filepath.Join(p.dir, "traces.jsonl"), "OTEL_BSP_SCHEDULE_DELAY=100",
		"CUTOVER_GRACE=5s", "CUTOVER_METRICS_BASE="+strconv.Itoa(p.base+100))
	p.env = append(p.env, extraEnv...)
	p.script("start.sh")
	t.Cleanup(func() { p.script("stop.sh") })
	return p
}

func (p *procs) script(name string, args ...string) {
	p.t.Helper()
	cmd := exec.Command(filepath.Join(repoRoot, "deploy", "local", name), args...)
	cmd.Env = p.env
	if out, err := cmd.CombinedOutput(); err != nil {
		p.t.Fatalf("%s %v: %v\n%s\n%s", name, args, err, out, p.logs())
	}
}

func (p *procs) logs() string {
	var sb strings.Builder
	files, _ := filepath.Glob(filepath.Join(p.dir, "*.log"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		fmt.Fprintf(&sb, "--- %s\n%s\n", filepath.Base(f), b)
	}
	return sb.String()
}

func (p *procs) addr(offset int) string { return "127.0.0.1:" + strconv.Itoa(p.base+offset) }

func (p *procs) orchestratorAddr() string { return p.addr(5) }

// dial connects to the orchestrator as the development admin.
func (p *procs) dial() *grpc.ClientConn {
	p.t.Helper()
	opts, err := server.ClientOptions(p.tls)
	if err != nil {
		p.t.Fatal(err)
	}
	cc, err := server.Dial(p.orchestratorAddr(), opts...)
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { cc.Close() })
	return cc
}

func (p *procs) kill9(name string) {
	p.t.Helper()
	b, err := os.ReadFile(filepath.Join(p.dir, name+".pid"))
	if err != nil {
		p.t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		p.t.Fatalf("kill -9 %s (%d): %v", name, pid, err)
	}
	// The process may linger as a zombie (its parent script is gone), but
	// its sockets close at once: wait for the port, then forget the pid.
	for i := 0; i < 500; i++ {
		c, err := net.Dial("tcp", p.addr(offsets[name]))
		if err != nil {
			break
		}
		c.Close()
		time.Sleep(10 * time.Millisecond)
	}
	_ = os.Remove(filepath.Join(p.dir, name+".pid"))
}

var offsets = map[string]int{"extractor": 1, "transformer": 2, "validator": 3, "loader": 4, "orchestrator": 5, "gateway": 80}

// freeBase finds N such that N+1..N+5 and N+80 are free loopback ports.
func freeBase(t *testing.T) int {
	t.Helper()
	for try := 0; try < 50; try++ {
		base := 20000 + rand.IntN(400)*100
		ok := true
		// The services, then their /metrics (CUTOVER_METRICS_BASE = base+100).
		for _, off := range []int{1, 2, 3, 4, 5, 80, 101, 102, 103, 104, 105, 180} {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(base+off))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port range")
	return 0
}
