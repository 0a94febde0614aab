package extract

import (
	"context"
	"database/sql"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"github.com/cutover/cutover/services/kit/mysqltest"
	"github.com/go-sql-driver/mysql"
)

// newMySQLDB creates a database for one test on the kit's test server
// (mysqltest: CUTOVER_TEST_MYSQL_DSN, else 127.0.0.1:3306, else a throwaway
// mariadbd; without any it skips, or fails under CI=true), applies stmts
// (with an empty sql_mode, so zero dates can be stored) and drops it at
// cleanup. It returns the driver DSN of the new database.
func newMySQLDB(t testing.TB, stmts ...string) string {
	t.Helper()
	cfg, err := mysql.ParseDSN(mysqltest.NewDatabase(t))
	if err != nil {
		t.Fatalf("test database DSN: %v", err)
	}
	cfg.Timeout = 3 * time.Second
	cfg.MultiStatements = false
	dsn := cfg.FormatDSN()
	// The kit creates databases with utf8mb4_bin; these tests were written
	// against the charset's default collation (utf8mb4_general_ci), as most
	// legacy schemas have it.
	mysqlExec(t, dsn, append([]string{"ALTER DATABASE `" + cfg.DBName + "` CHARACTER SET utf8mb4"}, stmts...)...)
	return dsn
}

// mysqlServerDSN is the test server's DSN with the given password and
// database, for tests that need a wrong password or another database.
func mysqlServerDSN(t testing.TB, password, database string) string {
	t.Helper()
	base, err := mysqltest.ServerDSN()
	if err != nil {
		t.Fatalf("MySQL test server: %v", err)
	}
	cfg, err := mysql.ParseDSN(base)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Passwd, cfg.DBName = password, database
	return cfg.FormatDSN()
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
