package extract

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"github.com/go-sql-driver/mysql"
)

// mysqlBaseDSN is the server tests create their databases on.
func mysqlBaseDSN() string {
	if v := os.Getenv("CUTOVER_TEST_MYSQL_DSN"); v != "" {
		return v
	}
	return "root@tcp(127.0.0.1:3306)/"
}

// newMySQLDB creates a database for one test, applies stmts (with an empty
// sql_mode, so zero dates can be stored) and drops it at cleanup. It returns
// the driver DSN of the new database. Without a server it skips, except
// under CI=true where a missing server is a failure.
func newMySQLDB(t testing.TB, stmts ...string) string {
	t.Helper()
	cfg, err := mysql.ParseDSN(mysqlBaseDSN())
	if err != nil {
		t.Fatalf("CUTOVER_TEST_MYSQL_DSN: cannot parse")
	}
	cfg.DBName = ""
	cfg.Timeout = 3 * time.Second
	cfg.MultiStatements = false
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := admin.PingContext(ctx); err != nil {
		admin.Close()
		if os.Getenv("CI") == "true" {
			t.Fatalf("no MySQL/MariaDB server at %s: %v", cfg.Addr, err)
		}
		t.Skipf("no MySQL/MariaDB server at %s: %v", cfg.Addr, err)
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	name := "cutover_t_" + hex.EncodeToString(rnd[:])
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4"); err != nil {
		admin.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
		admin.Close()
	})
	cfg.DBName = name
	dsn := cfg.FormatDSN()
	mysqlExec(t, dsn, stmts...)
	return dsn
}

// mysqlExec runs statements on one connection with an empty sql_mode.
func mysqlExec(t testing.TB, dsn string, stmts ...string) {
	t.Helper()
	if len(stmts) == 0 {
		return
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, s := range append([]string{"SET sql_mode = ''", "SET time_zone = '+00:00'", "SET NAMES utf8mb4"}, stmts...) {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func mysqlSource(dsn, table string) *commonv1.SourceSpec {
	return &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Mysql{Mysql: &commonv1.MysqlSource{Dsn: dsn, Table: table}}}
}

func mysqlSpec(m *commonv1.MysqlSource) *commonv1.SourceSpec {
	return &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Mysql{Mysql: m}}
}

// myDBName is the database a test DSN names.
func myDBName(t testing.TB, dsn string) string {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.DBName
}
