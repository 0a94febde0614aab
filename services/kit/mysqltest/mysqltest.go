// Package mysqltest gives each test its own MySQL/MariaDB database on a real
// server: CUTOVER_TEST_MYSQL_DSN when set, else root on 127.0.0.1:3306 when
// it answers, else a throwaway MariaDB started from the installed binaries.
// When none of these can be had the test is skipped with a message that
// starts with MissingServer; with CI=true it fails instead.
package mysqltest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

var (
	once      sync.Once
	serverDSN string
	serverErr error
	server    *Server
)

// ServerDSN returns the go-sql-driver DSN (no database) tests use.
func ServerDSN() (string, error) {
	once.Do(func() {
		if d := os.Getenv("CUTOVER_TEST_MYSQL_DSN"); d != "" {
			serverDSN = d
			return
		}
		local := "root@tcp(127.0.0.1:3306)/"
		if ping(local) == nil {
			serverDSN = local
			return
		}
		server, serverErr = Start(filepath.Join(os.TempDir(), "cutover-mysqltest-"+randHex(4)))
		if serverErr == nil {
			serverDSN = server.DSN
		}
	})
	return serverDSN, serverErr
}

// Run runs the tests and stops a throwaway server afterwards.
func Run(m *testing.M) int {
	code := m.Run()
	Cleanup()
	return code
}

// Cleanup stops the throwaway server, if one was started; for a TestMain
// that runs the tests itself.
func Cleanup() {
	if server != nil {
		server.Stop()
		server = nil
	}
	if binlogServer != nil {
		binlogServer.Stop()
		binlogServer = nil
	}
}

// MissingServer starts the skip message of a test that had no server; the
// test tally of `make test` (.ci/testcount) fails a CI run that has one.
// pgtest uses the same words.
const MissingServer = "[cutover-missing-db]"

// NewDatabase creates a fresh database for t, dropped when t ends, and
// returns a DSN that selects it.
func NewDatabase(t testing.TB) string {
	t.Helper()
	base, err := ServerDSN()
	return newDatabase(t, base, err)
}

var (
	binlogOnce   sync.Once
	binlogServer *Server
	binlogErr    error
)

// NewBinlogDatabase is NewDatabase on a throwaway MariaDB with a row-based
// binary log (StartBinlog), started once per test binary and stopped by
// Cleanup: the shared server at 3306 may run without one.
func NewBinlogDatabase(t testing.TB) string {
	t.Helper()
	binlogOnce.Do(func() {
		binlogServer, binlogErr = StartBinlog(filepath.Join(os.TempDir(), "cutover-binlog-"+randHex(4)))
	})
	dsn := ""
	if binlogServer != nil {
		dsn = binlogServer.DSN
	}
	return newDatabase(t, dsn, binlogErr)
}

func newDatabase(t testing.TB, base string, err error) string {
	t.Helper()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no MySQL/MariaDB server for tests and no throwaway mariadbd (CI=true: a failure, not a skip): %v", err)
		}
		t.Skipf("%s no MySQL/MariaDB server for tests and no throwaway mariadbd: %v", MissingServer, err)
	}
	name := "cutover_t_" + randHex(6)
	db, err := sql.Open("mysql", base)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("mysql", base)
		if err != nil {
			return
		}
		defer db.Close()
		if _, err := db.Exec("DROP DATABASE IF EXISTS `" + name + "`"); err != nil {
			t.Errorf("drop test database: %v", err)
		}
	})
	cfg, err := mysql.ParseDSN(base)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DBName = name
	return cfg.FormatDSN()
}

func ping(dsn string) error {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return db.PingContext(ctx)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Server is a throwaway MariaDB server.
type Server struct {
	Dir string
	DSN string
	cmd *exec.Cmd
}

// Start initialises a data directory in dir and starts mariadbd on a free
// loopback port (as user mysql when we are root), without a binary log.
func Start(dir string) (*Server, error) { return start(dir, "--skip-log-bin") }

// StartBinlog is Start with a row-based binary log of full row images, as
// a source followed by its binlog needs.
func StartBinlog(dir string) (*Server, error) {
	return start(dir, "--log-bin=mariadb-bin", "--binlog-format=ROW", "--binlog-row-image=FULL", "--server-id=1")
}

func start(dir string, logArgs ...string) (*Server, error) {
	bin, err := exec.LookPath("mariadbd")
	if err != nil {
		if _, e := os.Stat("/usr/sbin/mariadbd"); e == nil {
			bin = "/usr/sbin/mariadbd"
		} else {
			return nil, fmt.Errorf("no mariadbd binary: %w", err)
		}
	}
	install, err := exec.LookPath("mariadb-install-db")
	if err != nil {
		return nil, fmt.Errorf("no mariadb-install-db: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, err
	}
	runAs := []string{}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("mysql")
		if err != nil {
			return nil, fmt.Errorf("running as root needs a mysql user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		_ = filepath.Walk(dir, func(p string, _ os.FileInfo, _ error) error { return os.Chown(p, uid, gid) })
		runAs = []string{"--user=mysql"}
	}
	if out, err := exec.Command(install, append([]string{"--no-defaults", "--datadir=" + filepath.Join(dir, "data"),
		"--auth-root-authentication-method=normal", "--skip-test-db"}, runAs...)...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mariadb-install-db: %w: %s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	args := append([]string{"--no-defaults", "--datadir=" + filepath.Join(dir, "data"), "--bind-address=127.0.0.1",
		"--port=" + strconv.Itoa(port), "--socket=" + filepath.Join(dir, "mysqld.sock"),
		"--innodb-flush-log-at-trx-commit=2", "--log-error=" + filepath.Join(dir, "error.log")}, append(logArgs, runAs...)...)
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start mariadbd: %w", err)
	}
	s := &Server{Dir: dir, DSN: fmt.Sprintf("root@tcp(127.0.0.1:%d)/", port), cmd: cmd}
	for i := 0; i < 300; i++ {
		if ping(s.DSN) == nil {
			return s, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
	s.Stop()
	return nil, fmt.Errorf("mariadbd did not answer on port %d: %s", port, strings.TrimSpace(string(log)))
}

// Stop stops the server and removes its directory.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = s.cmd.Process.Kill()
			<-done
		}
	}
	_ = os.RemoveAll(s.Dir)
}
