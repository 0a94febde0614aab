package ctl

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"github.com/cutover/cutover/services/cutover/internal/testenv"
	"github.com/cutover/cutover/services/kit/mysqltest"
)

// TestValidateKeylessSource: two MariaDB source tables without a primary
// key pass validate and validate --dry-run for a full load (read in one
// ordered pass); followed (sync) they fail both (exit 1, JUnit written),
// each named on the source side; a keyed table with create_tables dry-runs
// although its target does not exist yet, and nothing is created.
func TestValidateKeylessSource(t *testing.T) {
	mdsn := mysqltest.NewDatabase(t)
	my, err := sql.Open("mysql", mdsn)
	if err != nil {
		t.Fatal(err)
	}
	defer my.Close()
	for _, q := range []string{
		"CREATE TABLE keyed (id int PRIMARY KEY, v varchar(10))",
		"CREATE TABLE audit_log (at datetime, what varchar(40))",
		"CREATE TABLE film_text (film_id int, title varchar(40))",
		"INSERT INTO keyed VALUES (1, 'a'), (2, 'b')",
	} {
		if _, err := my.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	src := func(table string) *commonv1.SourceSpec {
		return &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Mysql{Mysql: &commonv1.MysqlSource{Dsn: mdsn, Table: table}}}
	}
	db := testenv.NewDB(t)
	st := startStack(t, db)
	spec := &commonv1.JobSpec{Name: "keyless", Target: &commonv1.TargetSpec{Schema: "kl", CreateTables: true},
		Tables: []*commonv1.TableSpec{
			{Name: "keyed", TargetTable: "keyed", Source: src("keyed")},
			{Name: "audit_log", TargetTable: "audit_log", Source: src("audit_log")},
			{Name: "film_text", TargetTable: "film_text", Source: src("film_text")},
		}}
	for _, dry := range []bool{false, true} {
		args := []string{"validate", "--addr", st.Addrs.Orchestrator, "--spec", writeSpec(t, spec), "--junit", filepath.Join(t.TempDir(), "junit.xml")}
		if dry {
			args = append(args, "--dry-run")
		}
		runCtl(t, args...).want(t, ExitOK)
	}
	for i, col := range []string{"id", "at", "film_id"} {
		spec.Tables[i].Sync = &commonv1.SyncSpec{Kind: &commonv1.SyncSpec_Watermark{Watermark: &commonv1.WatermarkSync{Column: col}}}
	}
	path := writeSpec(t, spec)
	for _, dry := range []bool{false, true} {
		junit := filepath.Join(t.TempDir(), "junit.xml")
		args := []string{"validate", "--addr", st.Addrs.Orchestrator, "--spec", path, "--junit", junit}
		if dry {
			args = append(args, "--dry-run")
		}
		r := runCtl(t, args...)
		r.want(t, ExitFailed)
		got := readJUnit(t, junit).outcomes()
		for i, name := range []string{"audit_log", "film_text"} {
			o := got[name+"/spec"]
			if !strings.HasPrefix(o, "fail: tables["+string(rune('1'+i))+"].sync: source table ") || !strings.Contains(o, name+" has no primary key") {
				t.Errorf("dry-run=%v: %s/spec = %q (all: %v)", dry, name, o, got)
			}
		}
		if strings.Contains(r.stdout+r.stderr, "target cannot take") {
			t.Errorf("dry-run=%v: a source problem is blamed on the target:\n%s%s", dry, r.stdout, r.stderr)
		}
	}

	spec.Tables = spec.Tables[:1]
	spec.Tables[0].Sync = nil
	junit := filepath.Join(t.TempDir(), "junit.xml")
	r := runCtl(t, "validate", "--dry-run", "--addr", st.Addrs.Orchestrator, "--spec", writeSpec(t, spec), "--junit", junit)
	r.want(t, ExitOK)
	if p := readJUnit(t, junit); p.Failures != 0 {
		t.Errorf("junit: %v", p.outcomes())
	}
	if n := db.Int(`SELECT count(*) FROM information_schema.tables WHERE table_schema = 'kl'`); n != 0 {
		t.Fatalf("validation created %d tables", n)
	}
}
