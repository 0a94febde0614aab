package mysqltest

import (
	"database/sql"
	"os"
	"path/filepath"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(Run(m)) }

func TestNewDatabase(t *testing.T) {
	dsn := NewDatabase(t)
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var name string
	if err := db.QueryRow("SELECT DATABASE()").Scan(&name); err != nil || name == "" {
		t.Fatalf("DATABASE() = %q, %v", name, err)
	}
}

// TestThrowawayServer starts MariaDB from the installed binaries, as a
// machine without a running server would.
func TestThrowawayServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a MariaDB server")
	}
	s, err := Start(filepath.Join(os.TempDir(), "cutover-mysqltest-"+randHex(4)))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer s.Stop()
	db, err := sql.Open("mysql", s.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var one int
	if err := db.QueryRow("SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 = %d, %v", one, err)
	}
}
