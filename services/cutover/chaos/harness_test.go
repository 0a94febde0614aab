package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/cutover/cutover/services/kit/pgtest"
	"github.com/cutover/cutover/services/kit/server"
)

// cluster is a throwaway PostgreSQL cluster the suite may restart; the
// machine's shared server must never be restarted by a test.
type cluster struct {
	*pgtest.Cluster
	bin string
	as  string
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	if len(bins) == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("chaos needs PostgreSQL binaries under /usr/lib/postgresql/*/bin (make deps)")
		}
		t.Skip("no PostgreSQL binaries under /usr/lib/postgresql/*/bin")
	}
	sort.Slice(bins, func(i, j int) bool { return pgVersion(bins[i]) > pgVersion(bins[j]) })
	// wal_level=logical: the cluster is also the logical follower's source.
	pc, err := pgtest.StartCluster(filepath.Join(os.TempDir(), fmt.Sprintf("cutover-chaos-%d", os.Getpid())), pgtest.LogicalSettings...)
	if err != nil {
		t.Fatalf("start throwaway cluster: %v", err)
	}
	t.Cleanup(pc.Stop)
	c := &cluster{Cluster: pc, bin: bins[0]}
	if os.Geteuid() == 0 {
		c.as = "postgres" // as StartCluster does: initdb and pg_ctl refuse root
	}
	return c
}

func pgVersion(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// restart is `pg_ctl restart -m immediate`: every backend dies at once,
// as in a crash, and the server comes back through recovery.
func (c *cluster) restart() error {
	args := []string{"-D", filepath.Join(c.Dir, "data"), "-l", filepath.Join(c.Dir, "log"), "-m", "immediate", "-w", "-t", "60", "restart"}
	path := filepath.Join(c.bin, "pg_ctl")
	cmd := exec.Command(path, args...)
	if c.as != "" {
		cmd = exec.Command("runuser", append([]string{"-u", c.as, "--", path}, args...)...)
	}
	cmd.Dir = c.Dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctl restart: %w: %s", err, out)
	}
	return nil
}

// database creates a database on the cluster and returns its URL.
func (c *cluster) database(t *testing.T, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.URL)
	if err != nil {
		t.Fatalf("connect to chaos cluster: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	u, _ := url.Parse(c.URL)
	u.Path = "/" + name
	return u.String()
}

// service is one service binary running as its own process.
type service struct {
	name, bin, addr string
	env             []string
	logPath         string
	cmd             *exec.Cmd
	done            chan struct{}
}

func (s *service) start() error {
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s log: %w", s.name, err)
	}
	cmd := exec.Command(s.bin)
	cmd.Env = s.env
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", s.name, err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); logf.Close(); close(done) }(s.done)
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("%s exited at start; see %s", s.name, s.logPath)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not listen on %s within 30s", s.name, s.addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill9 sends SIGKILL and reaps the process.
func (s *service) kill9() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
	s.cmd = nil
}

// pause stops the process (SIGSTOP) for d, then lets it go on (SIGCONT):
// it wakes believing it still holds what it held.
func (s *service) pause(d time.Duration) {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGSTOP)
	time.Sleep(d)
	_ = s.cmd.Process.Signal(syscall.SIGCONT)
}

// stop asks the process to end (SIGTERM), then kills it.
func (s *service) stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
		<-s.done
	}
	s.cmd = nil
}

// stack is the six services as processes. Every link goes through a
// toxiproxy proxy, so a network fault hits one link: orchestrator and
// stages → each stage (the data plane pulls through the same addresses),
// loader → target PostgreSQL ("target"), orchestrator → control PostgreSQL
// ("control"), extractor → MariaDB source ("source"), client → gateway
// ("gateway").
type stack struct {
	t        *testing.T
	dir      string
	tls      string
	services map[string]*service
	proxies  map[string]*toxiproxy.Proxy
	ts       *toxiproxy.ApiServer
	jobAddr  string
	// restURL is the gateway through its proxy.
	restURL string
}

// link puts a proxy named name in front of real and returns the address
// to use instead.
func (st *stack) link(name, real string) string {
	st.t.Helper()
	proxied := freeAddr(st.t)
	p := toxiproxy.NewProxy(st.ts, name, proxied, real)
	if err := st.ts.Collection.Add(p, true); err != nil {
		st.t.Fatalf("proxy for %s: %v", name, err)
	}
	st.proxies[name] = p
	return proxied
}

// viaLink rewrites a PostgreSQL URL to pass through the named proxy
// (made on first use).
func (st *stack) viaLink(name, pgURL string) string {
	st.t.Helper()
	u, err := url.Parse(pgURL)
	if err != nil {
		st.t.Fatal(err)
	}
	p, ok := st.proxies[name]
	if !ok {
		st.link(name, u.Host)
		p = st.proxies[name]
	}
	u.Host = p.Listen
	return u.String()
}

var stages = []string{"extractor", "transformer", "validator", "loader"}

func startStack(t *testing.T, binDir, controlURL string, extraEnv ...string) *stack {
	t.Helper()
	ts := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	st := &stack{t: t, dir: t.TempDir(), services: map[string]*service{}, proxies: map[string]*toxiproxy.Proxy{}, ts: ts}
	st.tls = filepath.Join(st.dir, "tls")
	// The services find their certificates, the tokens and the key
	// sealing DSN secrets here (a restarted orchestrator reads its jobs).
	if err := server.WriteDevDir(st.tls, []string{"extractor", "transformer", "validator", "loader", "orchestrator", "gateway"}); err != nil {
		t.Fatal(err)
	}
	base := append(withoutCutoverEnv(os.Environ()), "CUTOVER_TLS_DIR="+st.tls, "CUTOVER_FILE_ROOTS="+os.TempDir())
	orchEnv := append([]string{}, base...)
	for _, name := range stages {
		real := freeAddr(t)
		proxied := st.link(name, real)
		env := append(append([]string{}, base...), "CUTOVER_"+strings.ToUpper(name)+"_ADDR="+real, "CUTOVER_GRACE=1s")
		st.services[name] = &service{name: name, bin: filepath.Join(binDir, name), addr: real, env: env, logPath: filepath.Join(st.dir, name+".log")}
		orchEnv = append(orchEnv, "CUTOVER_"+strings.ToUpper(name)+"_ADDR="+proxied)
	}
	t.Cleanup(func() { _ = ts.Collection.Clear() })
	st.jobAddr = freeAddr(t)
	orchEnv = append(orchEnv, "CUTOVER_ORCHESTRATOR_ADDR="+st.jobAddr, "CUTOVER_CONTROL_URL="+st.viaLink("control", controlURL), "CUTOVER_GRACE=1s")
	orchEnv = append(orchEnv, extraEnv...)
	st.services["orchestrator"] = &service{name: "orchestrator", bin: filepath.Join(binDir, "orchestrator"), addr: st.jobAddr,
		env: orchEnv, logPath: filepath.Join(st.dir, "orchestrator.log")}
	// A second replica on the same control database: partitions go to
	// whichever claims them, and one paused past its lease is taken over.
	second := freeAddr(t)
	st.services["orchestrator2"] = &service{name: "orchestrator2", bin: filepath.Join(binDir, "orchestrator"), addr: second,
		env: append(append([]string{}, orchEnv...), "CUTOVER_ORCHESTRATOR_ADDR="+second), logPath: filepath.Join(st.dir, "orchestrator2.log")}
	gw := freeAddr(t)
	st.restURL = "https://" + st.link("gateway", gw)
	st.services["gateway"] = &service{name: "gateway", bin: filepath.Join(binDir, "gateway"), addr: gw,
		env:     append(append([]string{}, base...), "CUTOVER_GATEWAY_ADDR="+gw, "CUTOVER_ORCHESTRATOR_ADDR="+st.jobAddr, "CUTOVER_GRACE=1s"),
		logPath: filepath.Join(st.dir, "gateway.log")}
	t.Cleanup(func() {
		for _, s := range st.services {
			s.stop()
		}
	})
	for _, name := range append(append([]string{}, stages...), "orchestrator", "orchestrator2", "gateway") {
		if err := st.services[name].start(); err != nil {
			t.Fatalf("%v\n%s", err, st.logs())
		}
	}
	return st
}

// withoutCutoverEnv drops CUTOVER_* settings of the caller's shell, so the
// suite's processes see only what the suite sets.
func withoutCutoverEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "CUTOVER_") {
			out = append(out, kv)
		}
	}
	return out
}

func (st *stack) logs() string {
	var sb strings.Builder
	files, _ := filepath.Glob(filepath.Join(st.dir, "*.log"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if len(b) > 3000 {
			b = b[len(b)-3000:]
		}
		fmt.Fprintf(&sb, "--- %s\n%s\n", filepath.Base(f), b)
	}
	return sb.String()
}

// countInLogs counts lines containing s across the services' logs.
func (st *stack) countInLogs(s string) int {
	n := 0
	files, _ := filepath.Glob(filepath.Join(st.dir, "*.log"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		n += strings.Count(string(b), s)
	}
	return n
}

// freeAddr is a free port below the kernel's ephemeral range (32768 and
// up on Linux), where the ":0" listeners of the test packages running
// beside this one never land: between this check and the service's bind,
// another package's gateway once took a port picked with ":0", and the
// suite's first call met it ("missing selected ALPN property").
func freeAddr(t *testing.T) string {
	t.Helper()
	usedMu.Lock()
	defer usedMu.Unlock()
	for try := 0; try < 200; try++ {
		port := 20000 + rand.IntN(12000)
		if used[port] {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		l.Close()
		used[port] = true
		return l.Addr().String()
	}
	t.Fatal("no free port between 20000 and 31999")
	return ""
}

var (
	usedMu sync.Mutex
	used   = map[int]bool{} // ports handed out: a stopped service's may look free
)

// healProxies restarts a proxy whose listener died: Toxiproxy's accept loop
// returns for good on any accept error, after which the link refuses every
// connection — a fault of the test rig, not one the suite means to inject.
func (st *stack) healProxies() int {
	n := 0
	for _, p := range st.proxies {
		c, err := net.DialTimeout("tcp", p.Listen, 500*time.Millisecond)
		if err == nil {
			c.Close()
			continue
		}
		p.Stop()
		if err := p.Start(); err == nil {
			n++
		}
	}
	return n
}
