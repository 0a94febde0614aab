package e2e

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// TestMakeRunFromPrivateHome: `make run` works for a new user whose fresh
// clone sits in a mode-700 directory, as one in root's home does. Without
// CUTOVER_PG_URL the demo starts its throwaway PostgreSQL, which, run as
// root, runs as user postgres and cannot reach such a checkout; pg.sh must
// put it elsewhere, and `make clean` must stop and remove it. As another
// user the clone is reachable and the test checks the ordinary path.
//
// The clone is of the committed state: CUTOVER_MAKERUN_SRC names another
// repository (or a clone with a work-in-progress commit) to clone instead.
func TestMakeRunFromPrivateHome(t *testing.T) {
	src := os.Getenv("CUTOVER_MAKERUN_SRC")
	if src == "" {
		out, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
		if err != nil {
			t.Fatalf("git rev-parse --show-toplevel: %v", err)
		}
		src = strings.TrimSpace(string(out))
	}
	base := t.TempDir()
	home := filepath.Join(base, "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{base, home} { // whatever the umask
		if err := os.Chmod(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	repo := filepath.Join(home, "cutover")
	if out, err := exec.Command("git", "clone", "-q", src, repo).CombinedOutput(); err != nil {
		t.Fatalf("git clone %s: %v\n%s", src, err, out)
	}

	// A new user's environment: none of the CUTOVER_ settings (so no
	// CUTOVER_PG_URL), no make state from a `make test` around us, no PWD
	// of this directory. Stripped binaries link in far less time; the
	// scripts are what is tested, not the symbols.
	var env []string
	goflags := "'-ldflags=-s -w'"
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "CUTOVER_"), k == "MAKEFLAGS", k == "MFLAGS", k == "MAKELEVEL", k == "PWD", k == "OLDPWD":
		case k == "GOFLAGS":
			goflags = v + " " + goflags
		default:
			env = append(env, kv)
		}
	}
	env = append(env, "GOFLAGS="+goflags)
	run := func(ctx context.Context, name string, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir, cmd.Env = repo, env
		cmd.WaitDelay = 10 * time.Second
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	// The cluster's place and port, read after the run, for the checks
	// that `make clean` stopped and removed it.
	var away, port string
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		// The demo's pos-a database is made on the MariaDB server the
		// demo found, which may be the machine's: the test drops it, as
		// a test drops what it creates (a user keeps it to look at).
		if dsn, err := run(ctx, "deploy/local/mariadb.sh"); err == nil {
			if cfg, err := mysql.ParseDSN(strings.TrimSpace(dsn)); err == nil {
				if db, err := sql.Open("mysql", cfg.FormatDSN()); err == nil {
					if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS cutover_merge_pos_a"); err != nil {
						t.Errorf("drop the demo's MariaDB database: %v", err)
					}
					db.Close()
				}
			}
		}
		if out, err := run(ctx, "make", "clean"); err != nil {
			t.Errorf("make clean: %v\n%s", err, out)
		}
		if port != "" {
			if c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second); err == nil {
				c.Close()
				t.Errorf("after make clean, PostgreSQL still answers on port %s", port)
			}
		}
		if _, err := os.Stat(away); away != "" && err == nil {
			t.Errorf("after make clean, %s is still there", away)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	out, err := run(ctx, "make", "run")
	t.Logf("make run: %s", time.Since(start).Round(time.Second))
	if err != nil {
		t.Fatalf("make run in %s: %v\n%s", repo, err, out)
	}
	if pg, err := run(ctx, "deploy/local/pg.sh"); err == nil {
		// postgres://postgres@127.0.0.1:<port>/postgres?sslmode=disable
		if _, rest, ok := strings.Cut(strings.TrimSpace(pg), "@127.0.0.1:"); ok {
			port, _, _ = strings.Cut(rest, "/")
		}
	} else {
		t.Errorf("deploy/local/pg.sh after make run: %v\n%s", err, pg)
	}
	if os.Geteuid() == 0 {
		a, err := run(ctx, "bash", "-c", ". deploy/local/env.sh && away_dir pg")
		if err != nil {
			t.Fatalf("away_dir: %v\n%s", err, a)
		}
		away = strings.TrimSpace(a)
		if _, err := os.Stat(filepath.Join(away, "data", "PG_VERSION")); err != nil {
			t.Errorf("run as root from a mode-700 checkout, the cluster is not in %s: %v", away, err)
		}
	}

	// The job's report against examples/merge/expected.md, written from
	// what the demo data planted: per table spec, extracted, loaded,
	// quarantined, filtered and merged away.
	want := expectedMergeCounts(t, filepath.Join(repo, "examples", "merge", "expected.md"))
	got := map[string][]string{}
	for _, line := range strings.Split(out, "\n") {
		// TABLE SOURCE… TARGET EXTRACTED LOADED QUARANTINED FILTERED MERGED BATCHES;
		// psql's tables later in the output have | between columns.
		f := strings.Fields(line)
		if len(f) < 9 || strings.Contains(line, "|") {
			continue
		}
		if _, ok := want[f[0]]; ok && got[f[0]] == nil {
			got[f[0]] = f[len(f)-6 : len(f)-1]
		}
	}
	var sum [5]int
	for table, w := range want {
		if g := strings.Join(got[table], " "); g != strings.Join(w, " ") {
			t.Errorf("report row %s: extracted loaded quarantined filtered merged = %q, expected.md says %q", table, g, strings.Join(w, " "))
		}
		for i, v := range w {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("expected.md, %s: %q is not a count", table, v)
			}
			sum[i] += n
		}
	}
	accounting := fmt.Sprintf("accounting: extracted %d = loaded %d + quarantined %d + filtered %d + merged away %d: balanced\n",
		sum[0], sum[1], sum[2], sum[3], sum[4])
	for _, s := range []string{": SUCCEEDED\n", accounting} {
		if !strings.Contains(out, s) {
			t.Errorf("make run output has no %q", s)
		}
	}
	if t.Failed() {
		t.Logf("make run output:\n%s", out)
	}
}

// expectedMergeCounts reads the "Per table spec" table of the merge demo's
// expected.md: table spec -> extracted, loaded, quarantined, filtered,
// merged_away.
func expectedMergeCounts(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows := map[string][]string{}
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			in = line == "## Per table spec"
			continue
		}
		// | table spec | system | source | target | extracted | loaded | quarantined | filtered | merged_away |
		cells := strings.Split(strings.Trim(line, "| "), "|")
		if !in || len(cells) != 9 || strings.HasPrefix(cells[0], "table spec") || strings.HasPrefix(cells[0], "---") {
			continue
		}
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows[cells[0]] = cells[4:9]
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 6 {
		t.Fatalf("%s: want 6 table specs in its Per table spec table, found %d: %v", path, len(rows), rows)
	}
	return rows
}
