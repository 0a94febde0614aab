// Command testcount reads the output of `go test -json` (any number of
// modules, one after another; lines that are not JSON pass through) and
// prints what a person needs from it: one line per package, the output of
// every failed test, every skipped test with its reason. It closes with
//
//	tests: N passed, K failed, M skipped
//
// counting top-level tests (subtests are counted on the line before). It
// exits non-zero when a test or a package failed, and, with CI=true, when a
// test was skipped for a missing database (its message carries the kit's
// "[cutover-missing-db]") or skipped without being listed in -allowed-skips.
//
// Built and run by `make test`: GOWORK=off go build -o bin/testcount .ci/testcount.go
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// missingDB is the start of the kit's skip message for a test that had no
// database server (pgtest.MissingServer, mysqltest.MissingServer).
const missingDB = "[cutover-missing-db]"

type event struct {
	Action     string
	Package    string
	ImportPath string // build-output, build-fail
	Test       string
	Elapsed    float64
	Output     string
}

type test struct {
	out []string
}

type pkg struct {
	out     []string // output outside any test
	running map[string]*test
	counts  counts
}

type counts struct{ passed, failed, skipped int }

type skip struct {
	pkg, test, reason string
}

type tally struct {
	w              io.Writer
	pkgs           map[string]*pkg
	top, sub       counts
	pkgOK, pkgFail int
	skips          []skip
	failedPkgs     []string
}

func main() {
	countsFile := flag.String("counts", "", "also write the closing line to this file")
	allowedFile := flag.String("allowed-skips", "", "tests that may skip under CI=true: lines of <package> <test> <why>")
	flag.Parse()
	ci := os.Getenv("CI") == "true"

	t := &tally{w: os.Stdout, pkgs: map[string]*pkg{}}
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		t.line(sc.Text())
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(os.Stderr, "testcount: reading go test output: %v\n", err)
		os.Exit(2)
	}
	t.unfinished()

	bad := t.top.failed > 0 || t.sub.failed > 0 || t.pkgFail > 0
	if ci && len(t.skips) > 0 {
		allowed, err := readAllowed(*allowedFile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "testcount: %v\n", err)
			os.Exit(2)
		}
		for _, s := range t.skips {
			switch {
			case strings.Contains(s.reason, missingDB):
				fmt.Fprintf(t.w, "CI: %s %s skipped for a missing database: %s\n", s.pkg, s.test, s.reason)
				bad = true
			case !allowed[s.pkg+" "+s.test]:
				fmt.Fprintf(t.w, "CI: %s %s skipped and is not in %s: %s\n", s.pkg, s.test, *allowedFile, s.reason)
				bad = true
			}
		}
	}

	fmt.Fprintf(t.w, "packages: %d ok, %d failed; subtests: %d passed, %d failed, %d skipped\n",
		t.pkgOK, t.pkgFail, t.sub.passed, t.sub.failed, t.sub.skipped)
	if len(t.failedPkgs) > 0 {
		fmt.Fprintf(t.w, "failed packages: %s\n", strings.Join(t.failedPkgs, " "))
	}
	closing := fmt.Sprintf("tests: %d passed, %d failed, %d skipped", t.top.passed, t.top.failed, t.top.skipped)
	fmt.Fprintln(t.w, closing)
	if *countsFile != "" {
		if err := os.WriteFile(*countsFile, []byte(closing+"\n"), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "testcount: %v\n", err)
			os.Exit(2)
		}
	}
	if bad {
		os.Exit(1)
	}
}

func (t *tally) pkg(name string) *pkg {
	p := t.pkgs[name]
	if p == nil {
		p = &pkg{running: map[string]*test{}}
		t.pkgs[name] = p
	}
	return p
}

func (t *tally) line(l string) {
	var e event
	if !strings.HasPrefix(l, "{") || json.Unmarshal([]byte(l), &e) != nil || e.Action == "" {
		fmt.Fprintln(t.w, l)
		return
	}
	switch e.Action {
	case "build-output":
		fmt.Fprint(t.w, e.Output)
		return
	case "build-fail", "start":
		return
	}
	p := t.pkg(e.Package)
	if e.Test == "" {
		t.pkgEvent(e, p)
		return
	}
	tt := p.running[e.Test]
	if tt == nil {
		tt = &test{}
		p.running[e.Test] = tt
	}
	switch e.Action {
	case "output":
		tt.out = append(tt.out, e.Output)
	case "pass":
		delete(p.running, e.Test)
		t.count(p, e.Test, func(c *counts) { c.passed++ })
	case "fail":
		delete(p.running, e.Test)
		t.count(p, e.Test, func(c *counts) { c.failed++ })
		t.print(tt.out)
	case "skip":
		delete(p.running, e.Test)
		t.count(p, e.Test, func(c *counts) { c.skipped++ })
		reason := skipReason(tt.out)
		t.skips = append(t.skips, skip{pkg: e.Package, test: e.Test, reason: reason})
		fmt.Fprintf(t.w, "    --- SKIP: %s %s: %s\n", short(e.Package), e.Test, reason)
	}
}

// count counts a top-level test in the totals and its package, a subtest
// in the subtest totals only.
func (t *tally) count(p *pkg, name string, f func(*counts)) {
	if strings.Contains(name, "/") {
		f(&t.sub)
		return
	}
	f(&t.top)
	f(&p.counts)
}

func (t *tally) pkgEvent(e event, p *pkg) {
	switch e.Action {
	case "output":
		p.out = append(p.out, e.Output)
	case "pass":
		t.pkgOK++
		fmt.Fprintf(t.w, "ok   %s\t%s\t(%s)\n", e.Package, dur(e.Elapsed), pkgCounts(p.counts))
		delete(t.pkgs, e.Package)
	case "skip": // no test files
		fmt.Fprintf(t.w, "?    %s\t[no test files]\n", e.Package)
		delete(t.pkgs, e.Package)
	case "fail":
		t.failPkg(e.Package, p, e.Elapsed)
	}
}

// failPkg reports a failed package: the tests it left running (a panic or
// a timeout ends the binary under them) count as failed.
func (t *tally) failPkg(name string, p *pkg, elapsed float64) {
	t.pkgFail++
	t.failedPkgs = append(t.failedPkgs, name)
	var left []string
	for n := range p.running {
		left = append(left, n)
	}
	sort.Strings(left)
	for _, n := range left {
		t.count(p, n, func(c *counts) { c.failed++ })
		fmt.Fprintf(t.w, "--- FAIL: %s (did not finish)\n", n)
		t.print(p.running[n].out)
	}
	var out []string
	for _, l := range p.out { // go test's own PASS/FAIL lines: ours follows
		if s := strings.TrimSpace(l); s != "PASS" && s != "FAIL" && !strings.HasPrefix(l, "FAIL\t") {
			out = append(out, l)
		}
	}
	t.print(out)
	fmt.Fprintf(t.w, "FAIL %s\t%s\t(%s)\n", name, dur(elapsed), pkgCounts(p.counts))
	delete(t.pkgs, name)
}

// unfinished fails packages whose stream ended without a result.
func (t *tally) unfinished() {
	var names []string
	for n := range t.pkgs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(t.w, "%s: the output ended before the package's result\n", n)
		t.failPkg(n, t.pkgs[n], 0)
	}
}

// print writes a test's output without the === RUN/PAUSE/CONT framing.
func (t *tally) print(out []string) {
	for _, l := range out {
		if strings.HasPrefix(strings.TrimSpace(l), "=== ") {
			continue
		}
		fmt.Fprint(t.w, l)
	}
}

// skipReason is what a skipped test logged after its --- SKIP line (where
// go test puts t.Skip's message), else all it logged.
func skipReason(out []string) string {
	var after, all []string
	seen := false
	for _, l := range out {
		s := strings.TrimSpace(l)
		switch {
		case s == "" || strings.HasPrefix(s, "=== "):
		case strings.HasPrefix(s, "--- SKIP"):
			seen = true
		case seen:
			after = append(after, s)
		default:
			all = append(all, s)
		}
	}
	if len(after) == 0 {
		after = all
	}
	if len(after) == 0 {
		return "(no reason given)"
	}
	return strings.Join(after, " ")
}

func readAllowed(path string) (map[string]bool, error) {
	allowed := map[string]bool{}
	if path == "" {
		return allowed, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("allowed skips: %w", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		allowed[f[0]+" "+f[1]] = true
	}
	return allowed, nil
}

func pkgCounts(c counts) string {
	s := fmt.Sprintf("%d passed", c.passed)
	if c.failed > 0 {
		s += fmt.Sprintf(", %d failed", c.failed)
	}
	if c.skipped > 0 {
		s += fmt.Sprintf(", %d skipped", c.skipped)
	}
	return s
}

func short(p string) string { return strings.TrimPrefix(p, "github.com/cutover/cutover/") }

func dur(sec float64) string {
	return (time.Duration(sec*1000) * time.Millisecond).String()
}
