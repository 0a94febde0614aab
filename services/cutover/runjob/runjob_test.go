package runjob

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover/cutover/services/cutover/internal/testenv"
	"github.com/cutover/cutover/services/kit/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const csv = "id,v\n1,a\n2,b\n3,\n"

func writeSpec(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadSpec(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("CUTOVER_TEST_DSN", `postgres://u:p"w@h/db`)
	jsonSpec := writeSpec(t, dir, "a.json", `{"name":"x","tables":[{"name":"t","target_table":"t",
		"source":{"csv":{"path":"data/in.csv"}},"columns":[{"target":"id","source":"id"}],
		"rules":[{"column":"id","regex":{"pattern":"^[0-9]+$"}}]}],"target":{"dsn":"${CUTOVER_TEST_DSN}"}}`)
	spec, err := LoadSpec(jsonSpec)
	if err != nil {
		t.Fatal(err)
	}
	if got := spec.Tables[0].Source.GetCsv().Path; got != filepath.Join(dir, "data/in.csv") {
		t.Errorf("relative path resolved to %q", got)
	}
	// Every file source is relative to the spec; absolute paths stay.
	files := writeSpec(t, dir, "f.json", `{"tables":[{"name":"j","source":{"jsonl":{"path":"o.jsonl"}}},
		{"name":"x","source":{"xlsx":{"path":"c.xlsx"}}},{"name":"s","source":{"sqlite":{"path":"/abs/db.sqlite"}}}]}`)
	fs, err := LoadSpec(files)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ got, want string }{
		{fs.Tables[0].Source.GetJsonl().Path, filepath.Join(dir, "o.jsonl")},
		{fs.Tables[1].Source.GetXlsx().Path, filepath.Join(dir, "c.xlsx")},
		{fs.Tables[2].Source.GetSqlite().Path, "/abs/db.sqlite"},
	} {
		if tc.got != tc.want {
			t.Errorf("file path resolved to %q, want %q", tc.got, tc.want)
		}
	}
	if spec.Target.Dsn != `postgres://u:p"w@h/db` {
		t.Errorf("env substitution gave %q", spec.Target.Dsn)
	}
	if got := spec.Tables[0].Rules[0].GetRegex().Pattern; got != "^[0-9]+$" {
		t.Errorf("a $ in a regex was touched: %q", got)
	}
	yamlSpec := writeSpec(t, dir, "b.yaml", "name: demo\ntables:\n  - name: t\n    target_table: t\n    source: {csv: {path: /abs.csv}}\n    columns: [{target: id, source: id}]\n")
	if spec, err = LoadSpec(yamlSpec); err != nil || spec.Name != "demo" || spec.Tables[0].Source.GetCsv().Path != "/abs.csv" {
		t.Fatalf("yaml spec: %v %v", spec, err)
	}
	for name, body := range map[string]string{
		"unset.json":   `{"target":{"dsn":"${CUTOVER_SURELY_UNSET_VAR}"}}`,
		"unknown.json": `{"tabels":[]}`,
		"broken.json":  `{"name":`,
	} {
		if _, err := LoadSpec(writeSpec(t, dir, name, body)); err == nil {
			t.Errorf("%s: no error", name)
		} else if name == "unset.json" && !strings.Contains(err.Error(), "CUTOVER_SURELY_UNSET_VAR") {
			t.Errorf("%s: error %v does not name the variable", name, err)
		}
	}
}

// TestExitCodes: 0 when the job succeeds, 1 when it fails, 2 for a bad
// spec or usage, with the report on stdout.
func TestExitCodes(t *testing.T) {
	db := testenv.NewDB(t)
	db.Exec(`CREATE TABLE t (id bigint PRIMARY KEY, v text)`,
		`CREATE TABLE broken (id bigint PRIMARY KEY, v text)`,
		`CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'target refuses writes'; END $$`,
		`CREATE TRIGGER refuse BEFORE INSERT ON broken FOR EACH ROW EXECUTE FUNCTION refuse()`)
	t.Setenv("CUTOVER_CONTROL_URL", db.URL)
	t.Setenv("CUTOVER_TARGET_URL", db.URL)
	t.Setenv("CUTOVER_MAX_ATTEMPTS", "1")
	t.Setenv("CUTOVER_TRACE_FILE", filepath.Join(t.TempDir(), "traces.jsonl"))
	dir := t.TempDir()
	writeSpec(t, dir, "in.csv", csv)
	spec := func(table, col string) string {
		return `{"name":"x","tables":[{"name":"t","target_table":"` + table + `","source":{"csv":{"path":"in.csv"}},
			"columns":[{"target":"id","source":"id"},{"target":"v","source":"` + col + `"}]}]}`
	}
	reports := t.TempDir()
	withReports := func(name string, args ...string) []string {
		return append(args, "--report-md", filepath.Join(reports, name+".md"), "--report-html", filepath.Join(reports, name+".html"))
	}
	tests := []struct {
		name string
		args []string
		code int
		out  string
		// Text both rendered reports must hold, when they were asked for.
		report []string
		errOut string
	}{
		{"ok", withReports("ok", "--spec", writeSpec(t, dir, "ok.json", spec("t", "v"))), ExitOK, "balanced",
			[]string{"✅", "SUCCEEDED", "balanced", "Volume per table"}, " job SUCCEEDED: partitions 1/1, extracted 3, loaded 3, quarantined 0\n"},
		{"job fails", withReports("fail", "--spec", writeSpec(t, dir, "fail.json", spec("broken", "v"))), ExitFailed, "FAILED",
			[]string{"❌", "FAILED", "target refuses writes"}, " table t: partitions 0/1, "},
		{"unknown column", []string{"--spec", writeSpec(t, dir, "bad.json", spec("t", "vv"))}, ExitBadSpec, "", nil, ""},
		{"no spec flag", nil, ExitBadSpec, "", nil, ""},
		{"missing file", []string{"--spec", filepath.Join(dir, "none.json")}, ExitBadSpec, "", nil, ""},
		// Table t holds the first case's rows: this run replaces them.
		{"report not writable", []string{"--spec", writeSpec(t, dir, "again.json", strings.Replace(spec("t", "v"), `{"name":"x",`, `{"name":"x","target":{"if_exists":"IF_EXISTS_TRUNCATE"},`, 1)),
			"--report-md", filepath.Join(dir, "no", "such", "dir.md")},
			ExitFailed, "balanced", nil, "dir.md"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := Main(context.Background(), tt.args, &out, &errOut)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out.String(), errOut.String())
			}
			if !strings.Contains(out.String(), tt.out) {
				t.Fatalf("stdout lacks %q:\n%s", tt.out, out.String())
			}
			if tt.code == ExitBadSpec && errOut.Len() == 0 {
				t.Fatal("no message on stderr")
			}
			// Progress: a line per table, then the job's state (plain,
			// stderr being no terminal here).
			if !strings.Contains(errOut.String(), tt.errOut) {
				t.Fatalf("stderr lacks %q:\n%s", tt.errOut, errOut.String())
			}
			if tt.report == nil {
				return
			}
			for i, ext := range []string{".md", ".html"} {
				path := tt.args[len(tt.args)-3+2*i]
				if filepath.Ext(path) != ext {
					t.Fatalf("test bug: %s is not the %s report", path, ext)
				}
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				for _, w := range append(tt.report, "Trace") {
					if !strings.Contains(string(b), w) {
						t.Errorf("%s lacks %q:\n%s", filepath.Base(path), w, b)
					}
				}
			}
			if html, _ := os.ReadFile(tt.args[len(tt.args)-1]); !strings.HasPrefix(string(html), "<!DOCTYPE html>") {
				t.Errorf("the HTML report is not a page: %.100s", html)
			}
		})
	}
}
