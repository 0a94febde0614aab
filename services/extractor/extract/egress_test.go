package extract

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	"github.com/go-sql-driver/mysql"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestHostAllowList(t *testing.T) {
	list, err := parseSourceHosts([]string{"db.corp", "pg.corp:5432", "10.0.0.7:3306", "[::1]:5433", "*:6432", "any.corp:*", "DB2.Corp."})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		host, port string
		want       bool
	}{
		{"db.corp", "5432", true},
		{"DB.CORP", "1", true},
		{"db.corp.", "5432", true},
		{"db2.corp", "5432", true},
		{"pg.corp", "5432", true},
		{"pg.corp", "5433", false},
		{"10.0.0.7", "3306", true},
		{"10.0.0.7", "22", false},
		{"::1", "5433", true},
		{"0:0::1", "5433", true},
		{"::1", "5432", false},
		{"anything", "6432", true},
		{"any.corp", "22", true},
		{"db.corp.evil", "5432", false},
		{"evil.db.corp", "5432", false},
		{"127.0.0.1", "5432", false},
		{"localhost", "5432", false},
	} {
		if got := list.allows(tt.host, tt.port); got != tt.want {
			t.Errorf("allows(%s, %s) = %v, want %v", tt.host, tt.port, got, tt.want)
		}
	}
	if !hostAllowList(nil).allows("anything", "1") {
		t.Error("an empty list refuses")
	}
	all, _ := parseSourceHosts([]string{"*"})
	if !all.allows("x", "1") || all.checkSocket("f", "/tmp") == nil {
		t.Error(`"*" must allow every TCP host and still no socket`)
	}
	for _, bad := range []string{"", " ", "a:b:c", "h:0", "h:65536", "h:x", "*.corp", "db*", "u@h", "/tmp/sock", "[::1", ":5432"} {
		if _, err := parseSourceHosts([]string{bad}); err == nil {
			t.Errorf("parseSourceHosts(%q) accepted", bad)
		}
	}
}

// countingListener counts the connections made to it, to prove a refused
// host was never dialled.
func countingListener(t *testing.T) (string, *atomic.Int32) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int32
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { lis.Close() })
	return lis.Addr().String(), &n
}

// TestSourceHostsRefusedBeforeConnecting: a source off the list is refused
// with one message and no connection is made, for PostgreSQL (fallback
// hosts and logical replication too) and MySQL.
func TestSourceHostsRefusedBeforeConnecting(t *testing.T) {
	addr, dialled := countingListener(t)
	host, port, _ := net.SplitHostPort(addr)
	s := newServiceWith(t, Options{SourceHosts: []string{"db.corp:5432", host + ":1"}})
	ctx := context.Background()
	refusal := func(hp string) string {
		return `source host "` + hp + `" is not in the extractor's allowed source hosts (CUTOVER_SOURCE_HOSTS)`
	}
	logical := &commonv1.SyncSpec{Kind: &commonv1.SyncSpec_Logical{Logical: &commonv1.LogicalSync{}}}
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"postgres", func() error {
			_, err := s.DescribeSource(ctx, &extractorv1.DescribeSourceRequest{Source: pgSource("postgres://u:pw@"+addr+"/db?sslmode=disable", "", "t")})
			return err
		}, refusal(addr)},
		{"postgres key=value", func() error {
			_, err := s.ReadBatch(ctx, &extractorv1.ReadBatchRequest{Source: pgSource("host="+host+" port="+port+" user=u password=pw dbname=db", "", "t")})
			return err
		}, refusal(addr)},
		{"postgres fallback host", func() error {
			_, err := s.PlanPartitions(ctx, &extractorv1.PlanPartitionsRequest{Source: pgSource("postgres://u:pw@db.corp:5432,"+addr+"/db", "", "t")})
			return err
		}, refusal(addr)},
		{"postgres unix socket", func() error {
			_, err := s.DescribeSource(ctx, &extractorv1.DescribeSourceRequest{Source: pgSource("host=/var/run/postgresql user=u dbname=db", "", "t")})
			return err
		}, refusal("/var/run/postgresql")},
		{"postgres logical snapshot", func() error {
			_, err := s.OpenSnapshot(ctx, &extractorv1.OpenSnapshotRequest{Source: pgSource("postgres://u:pw@"+addr+"/db", "", "t"), Sync: logical, JobId: "j", Table: "t"})
			return err
		}, refusal(addr)},
		{"postgres logical changes", func() error {
			_, err := s.ReadChanges(ctx, &extractorv1.ReadChangesRequest{Source: pgSource("postgres://u:pw@"+addr+"/db", "", "t"), Sync: logical, JobId: "j", Table: "t"})
			return err
		}, refusal(addr)},
		{"postgres drop slot", func() error {
			_, err := s.DropSlot(ctx, &extractorv1.DropSlotRequest{Source: pgSource("postgres://u:pw@"+addr+"/db", "", "t"), Sync: logical, JobId: "j", Table: "t"})
			return err
		}, refusal(addr)},
		{"mysql", func() error {
			_, err := s.DescribeSource(ctx, &extractorv1.DescribeSourceRequest{Source: mysqlSource("u:pw@tcp("+addr+")/db", "t")})
			return err
		}, refusal(addr)},
		{"mysql url", func() error {
			_, err := s.ReadBatch(ctx, &extractorv1.ReadBatchRequest{Source: mysqlSource("mysql://u:pw@"+addr+"/db", "t")})
			return err
		}, refusal(addr)},
		{"mysql default port", func() error {
			_, err := s.DescribeSource(ctx, &extractorv1.DescribeSourceRequest{Source: mysqlSource("u:pw@tcp("+host+")/db", "t")})
			return err
		}, refusal(host + ":3306")},
		{"mysql unix socket", func() error {
			_, err := s.DescribeSource(ctx, &extractorv1.DescribeSourceRequest{Source: mysqlSource("u:pw@unix(/run/mysqld/mysqld.sock)/db", "t")})
			return err
		}, refusal("/run/mysqld/mysqld.sock")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			st, _ := status.FromError(err)
			if st.Code() != codes.InvalidArgument || !strings.HasSuffix(st.Message(), tt.want) {
				t.Fatalf("got %v, want InvalidArgument ending %q", err, tt.want)
			}
			if strings.Contains(st.Message(), "pw") {
				t.Fatalf("message shows the password: %q", st.Message())
			}
		})
	}
	time.Sleep(50 * time.Millisecond) // let a stray dial be counted
	if n := dialled.Load(); n != 0 {
		t.Fatalf("%d connections made to refused hosts", n)
	}
}

// TestSourceHostsAllowed: listed hosts are read as before.
func TestSourceHostsAllowed(t *testing.T) {
	pgURL := newDB(t, `CREATE TABLE t (id int PRIMARY KEY)`, `INSERT INTO t VALUES (1)`)
	u, err := url.Parse(pgURL)
	if err != nil {
		t.Fatal(err)
	}
	myDSN := newMySQLDB(t, `CREATE TABLE t (id int PRIMARY KEY)`, `INSERT INTO t VALUES (1)`)
	cfg, err := mysql.ParseDSN(myDSN)
	if err != nil {
		t.Fatal(err)
	}
	s := newServiceWith(t, Options{SourceHosts: []string{u.Host, cfg.Addr}})
	for _, src := range []*commonv1.SourceSpec{pgSource(pgURL, "", "t"), mysqlSource(myDSN, "t")} {
		if rows, _ := readAll(t, s, src, nil, 10); len(rows) != 1 {
			t.Fatalf("got %q", rows)
		}
	}
}

// listener serves each connection with fn until the test ends.
func listener(t *testing.T, fn func(net.Conn)) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				fn(c)
			}()
		}
	}()
	t.Cleanup(func() {
		lis.Close()
		wg.Wait()
	})
	return lis.Addr().String()
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

// captureLog sends slog to a buffer for the test.
func captureLog(t *testing.T) *syncBuffer {
	t.Helper()
	var buf syncBuffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })
	return &buf
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestConnectErrorsReadTheSame: a closed port, a port that speaks
// something else, one that hangs up, one that never answers and a name
// that does not resolve all give the caller the same answer, so the
// extractor cannot be used as a port scanner; the log keeps the cause.
func TestConnectErrorsReadTheSame(t *testing.T) {
	const pw = "Sup3r-Secret-pw"
	logs := captureLog(t)
	garbage := listener(t, func(c net.Conn) {
		c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\nSSH-2.0-OpenSSH_9.6\r\n\xff\x00\x13garbage"))
	})
	hangup := listener(t, func(c net.Conn) {})
	silent := listener(t, func(c net.Conn) {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		c.Read(make([]byte, 1)) // never answers; the client times out first
	})
	targets := map[string]string{
		"closed port":  closedPort(t),
		"garbage":      garbage,
		"hangs up":     hangup,
		"never speaks": silent,
		"no such host": "no-such-host.invalid:5432",
	}
	sources := []struct {
		kind, want string
		src        func(addr string) *commonv1.SourceSpec
	}{
		{"postgres", "source unavailable: cannot connect to source public.orders", func(addr string) *commonv1.SourceSpec {
			return pgSource("postgres://app:"+pw+"@"+addr+"/legacy?connect_timeout=1", "", "orders")
		}},
		{"mysql", "source unavailable: cannot connect to source legacy.orders", func(addr string) *commonv1.SourceSpec {
			return mysqlSource("app:"+pw+"@tcp("+addr+")/legacy?timeout=1s&readTimeout=1s", "orders")
		}},
	}
	s := newService(t)
	ctx := context.Background()
	for _, src := range sources {
		for name, addr := range targets {
			for _, rpc := range []string{"DescribeSource", "PlanPartitions", "ReadBatch"} {
				err := callRPC(s, rpc, src.src(addr))
				st, _ := status.FromError(err)
				if st.Code() != codes.Unavailable || st.Message() != src.want {
					t.Errorf("%s %s %s: got %v, want Unavailable %q", src.kind, name, rpc, err, src.want)
				}
			}
		}
		// A snapshot connects on its own connection: the same answer.
		if src.kind == "postgres" {
			_, err := s.OpenSnapshot(ctx, &extractorv1.OpenSnapshotRequest{Source: src.src(garbage)})
			if st, _ := status.FromError(err); st.Code() != codes.Unavailable || st.Message() != src.want {
				t.Errorf("postgres OpenSnapshot: got %v", err)
			}
		}
	}
	log := logs.String()
	if strings.Contains(log, pw) {
		t.Fatalf("the log shows the password:\n%s", log)
	}
	for _, part := range []string{"cannot connect to source", "refused", "xxxxx", "kind=postgres", "kind=mysql"} {
		if !strings.Contains(log, part) {
			t.Errorf("the log does not say %q for operators:\n%s", part, log)
		}
	}
}

// TestMySQLConfigTakesAwayLocalFiles: allowAllFiles in a DSN would let the
// source server read any file of this host (LOAD DATA LOCAL INFILE).
func TestMySQLConfigTakesAwayLocalFiles(t *testing.T) {
	s := New()
	defer s.Close()
	for _, d := range []string{"u:p@tcp(h:3306)/db?allowAllFiles=true", "mysql://u:p@h/db?allowAllFiles=true"} {
		cfg, err := s.mysqlConfig(d, "+00:00", time.UTC)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.AllowAllFiles {
			t.Errorf("%s: allowAllFiles kept", d)
		}
	}
}
