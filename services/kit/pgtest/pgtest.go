// Package pgtest gives each test its own PostgreSQL database on a real
// server: CUTOVER_TEST_PG_URL when set, else the local server on
// 127.0.0.1:5432 when it answers, else a throwaway cluster started from the
// installed PostgreSQL binaries. When none of these can be had the test is
// skipped with a message that starts with MissingServer; with CI=true it
// fails instead.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

var (
	once      sync.Once
	serverURL string
	serverErr error
	cluster   *Cluster

	logicalOnce    sync.Once
	logicalURL     string
	logicalErr     error
	logicalCluster *Cluster
)

// ServerURL returns the URL of the PostgreSQL server tests use.
func ServerURL() (string, error) {
	once.Do(func() {
		if u := os.Getenv("CUTOVER_TEST_PG_URL"); u != "" {
			serverURL = u
			return
		}
		local := "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
		if ping(local) == nil {
			serverURL = local
			return
		}
		cluster, serverErr = StartCluster(filepath.Join(os.TempDir(), "cutover-pgtest-"+randHex(4)))
		if serverErr == nil {
			serverURL = cluster.URL
		}
	})
	return serverURL, serverErr
}

// Main runs the tests, stops a throwaway cluster afterwards and exits.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run is Main without the exit, for a TestMain with more to clean up.
func Run(m *testing.M) int {
	code := m.Run()
	if cluster != nil {
		cluster.Stop()
	}
	if logicalCluster != nil {
		logicalCluster.Stop()
	}
	return code
}

// MissingServer starts the skip message of a test that had no server; the
// test tally of `make test` (.ci/testcount) fails a CI run that has one.
// mysqltest uses the same words.
const MissingServer = "[cutover-missing-db]"

// NewDatabase creates a fresh database for t and drops it when t ends.
// It returns the database's URL.
func NewDatabase(t testing.TB) string {
	t.Helper()
	base, err := ServerURL()
	return newDatabaseOn(t, base, err)
}

// LogicalSettings are the server settings of a cluster that logical
// replication tests start. Logical decoding reads only flushed WAL, so
// commits are synchronous: a change is readable when its COMMIT returns.
var LogicalSettings = []string{"wal_level=logical", "max_replication_slots=40", "max_wal_senders=40", "synchronous_commit=on"}

// LogicalServerURL returns a server with wal_level=logical:
// CUTOVER_TEST_PG_LOGICAL_URL when set, else the server ServerURL gives
// when it has wal_level=logical, else a throwaway cluster started with
// LogicalSettings (the server setting needs a restart, which a shared
// server cannot take).
func LogicalServerURL() (string, error) {
	logicalOnce.Do(func() {
		if u := os.Getenv("CUTOVER_TEST_PG_LOGICAL_URL"); u != "" {
			logicalURL = u
			return
		}
		if u, err := ServerURL(); err == nil && walLevel(u) == "logical" {
			logicalURL = u
			return
		}
		logicalCluster, logicalErr = StartCluster(filepath.Join(os.TempDir(), "cutover-pgtest-logical-"+randHex(4)), LogicalSettings...)
		if logicalErr == nil {
			logicalURL = logicalCluster.URL
		}
	})
	return logicalURL, logicalErr
}

// NewLogicalDatabase is NewDatabase on the LogicalServerURL server.
func NewLogicalDatabase(t testing.TB) string {
	t.Helper()
	base, err := LogicalServerURL()
	return newDatabaseOn(t, base, err)
}

func walLevel(u string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, u)
	if err != nil {
		return ""
	}
	defer c.Close(ctx)
	var level string
	_ = c.QueryRow(ctx, "SHOW wal_level").Scan(&level)
	return level
}

func newDatabaseOn(t testing.TB, base string, err error) string {
	t.Helper()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no PostgreSQL server for tests and no throwaway cluster (CI=true: a failure, not a skip): %v", err)
		}
		t.Skipf("%s no PostgreSQL server for tests and no throwaway cluster: %v", MissingServer, err)
	}
	name := "cutover_t_" + randHex(6)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to test server: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop test database: %v", err)
			return
		}
		defer c.Close(ctx)
		// A replication slot keeps its database from being dropped.
		_, _ = c.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active", name)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database: %v", err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse server url: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

func ping(u string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, u)
	if err != nil {
		return err
	}
	return c.Close(ctx)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Cluster is a throwaway PostgreSQL cluster.
type Cluster struct {
	Dir string
	URL string
	bin string
	as  string // run as this user when we are root
}

// StartCluster initialises and starts a cluster in dir on a free port,
// with extra server settings ("name=value") if given. initdb refuses to
// run as root, so as root it runs as user postgres.
func StartCluster(dir string, settings ...string) (*Cluster, error) {
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	if len(bins) == 0 {
		return nil, fmt.Errorf("no PostgreSQL binaries under /usr/lib/postgresql/*/bin")
	}
	sort.Slice(bins, func(i, j int) bool { return version(bins[i]) > version(bins[j]) })
	c := &Cluster{Dir: dir, bin: bins[0]}
	if os.Geteuid() == 0 {
		c.as = "postgres"
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cluster dir: %w", err)
	}
	if c.as != "" {
		u, err := user.Lookup(c.as)
		if err != nil {
			return nil, fmt.Errorf("running as root needs a %s user: %w", c.as, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, fmt.Errorf("chown cluster dir: %w", err)
		}
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if out, err := c.run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		return nil, fmt.Errorf("initdb: %w: %s", err, out)
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off", port, dir)
	for _, kv := range settings {
		opts += " -c " + kv
	}
	if out, err := c.run("pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "start"); err != nil {
		return nil, fmt.Errorf("pg_ctl start: %w: %s", err, out)
	}
	c.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	return c, nil
}

// Stop stops the cluster and removes its directory.
func (c *Cluster) Stop() {
	_, _ = c.run("pg_ctl", "-D", filepath.Join(c.Dir, "data"), "-m", "immediate", "-w", "stop")
	_ = os.RemoveAll(c.Dir)
}

func (c *Cluster) run(tool string, args ...string) ([]byte, error) {
	path := filepath.Join(c.bin, tool)
	var cmd *exec.Cmd
	if c.as != "" {
		cmd = exec.Command("runuser", append([]string{"-u", c.as, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = c.Dir
	return cmd.CombinedOutput()
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
