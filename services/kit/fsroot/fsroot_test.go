package fsroot

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tree is a root with files, links in and out, a sibling whose name starts
// with the root's, and a secret outside.
type tree struct {
	base, root, rootX, secret, rootLink string
}

const secretText = "root:$6$secret"

func newTree(t testing.TB) tree {
	t.Helper()
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tr := tree{base: base, root: filepath.Join(base, "root"), rootX: filepath.Join(base, "rootX"),
		secret: filepath.Join(base, "outside", "secret.txt"), rootLink: filepath.Join(base, "rootlink")}
	for _, d := range []string{tr.root, tr.rootX, filepath.Join(base, "outside"), filepath.Join(tr.root, "sub"), filepath.Join(tr.root, "dir")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(tr.root, "a.csv"), "inside a")
	write(filepath.Join(tr.root, "sub", "b.csv"), "inside b")
	write(filepath.Join(tr.rootX, "x.csv"), "sibling")
	write(tr.secret, secretText)
	links := map[string]string{
		filepath.Join(tr.root, "link-out"):      tr.secret,
		filepath.Join(tr.root, "link-rel-out"):  "../outside/secret.txt",
		filepath.Join(tr.root, "linkdir-out"):   filepath.Join(base, "outside"),
		filepath.Join(tr.root, "link-in"):       "sub/b.csv",
		filepath.Join(tr.root, "link-abs-in"):   filepath.Join(tr.root, "a.csv"),
		filepath.Join(tr.root, "link-sibling"):  filepath.Join(tr.rootX, "x.csv"),
		filepath.Join(tr.root, "link-dangling"): filepath.Join(tr.root, "gone.csv"),
		filepath.Join(tr.root, "link-loop"):     "link-loop",
		tr.rootLink:                             tr.root,
	}
	for at, to := range links {
		if err := os.Symlink(to, at); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(tr.root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	return tr
}

func mustNew(t testing.TB, dirs ...string) *Roots {
	t.Helper()
	r, err := New(dirs)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestOpen(t *testing.T) {
	tr := newTree(t)
	r := mustNew(t, tr.root)
	tests := []struct {
		name, path string
		want       string // content; "" = refused
	}{
		{"relative", "a.csv", "inside a"},
		{"relative in subdir", "sub/b.csv", "inside b"},
		{"absolute inside", filepath.Join(tr.root, "a.csv"), "inside a"},
		{"dot dot that stays inside", "sub/../a.csv", "inside a"},
		{"symlink inside to inside", "link-in", "inside b"},
		{"absolute symlink to inside", "link-abs-in", "inside a"},
		{"through the root given as a symlink", filepath.Join(tr.rootLink, "a.csv"), "inside a"},
		{"absolute outside", tr.secret, ""},
		{"etc passwd", "/etc/passwd", ""},
		{"dot dot escape", "../outside/secret.txt", ""},
		{"deep dot dot escape", "../../../../../../../../etc/passwd", ""},
		{"absolute dot dot escape", filepath.Join(tr.root, "..", "outside", "secret.txt"), ""},
		{"symlink inside to outside", "link-out", ""},
		{"relative symlink inside to outside", "link-rel-out", ""},
		{"through a directory symlink to outside", "linkdir-out/secret.txt", ""},
		{"prefix trick sibling", filepath.Join(tr.rootX, "x.csv"), ""},
		{"prefix trick relative", "../rootX/x.csv", ""},
		{"symlink to prefix sibling", "link-sibling", ""},
		{"nonexistent", "nope.csv", ""},
		{"nonexistent outside", "/nonexistent/nope.csv", ""},
		{"dangling symlink", "link-dangling", ""},
		{"symlink loop", "link-loop", ""},
		{"directory", "dir", ""},
		{"the root itself", ".", ""},
		{"the root absolute", tr.root, ""},
		{"fifo", "fifo", ""},
		{"empty", "", ""},
		{"nul byte", "a.csv\x00/../../etc/passwd", ""},
		{"proc self", "/proc/self/root/etc/passwd", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan struct{})
			var f *os.File
			var err error
			go func() { f, err = r.Open(tt.path); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Open blocked")
			}
			if tt.want == "" {
				if err == nil {
					f.Close()
					t.Fatalf("Open(%q) = %s, want refused", tt.path, f.Name())
				}
				wantRefused(t, err, tt.path)
				return
			}
			if err != nil {
				t.Fatalf("Open(%q): %v", tt.path, err)
			}
			defer f.Close()
			b := make([]byte, 64)
			n, _ := f.Read(b)
			if string(b[:n]) != tt.want {
				t.Fatalf("Open(%q) read %q, want %q", tt.path, b[:n], tt.want)
			}
			if !r.Contains(f.Name()) {
				t.Fatalf("Name %q is outside the roots", f.Name())
			}
			got, err := r.Resolve(tt.path)
			if err != nil || got != f.Name() {
				t.Fatalf("Resolve(%q) = %q, %v; Open gave %q", tt.path, got, err, f.Name())
			}
		})
	}
}

// wantRefused checks the one message: nothing but the caller's input
// differs between a missing file, a directory and a path outside.
func wantRefused(t *testing.T, err error, path string) {
	t.Helper()
	var re *RefusedError
	if !errors.As(err, &re) || re.Path != path {
		t.Fatalf("got %v (%T), want a RefusedError for %q", err, err, path)
	}
	want := "source path " + strconv.Quote(path) + " is not a readable file inside the configured file roots"
	if err.Error() != want {
		t.Fatalf("message %q, want %q", err.Error(), want)
	}
}

// TestRefusalsReadTheSame: existence, kind and place of a file give the
// same text once the echoed input is taken out.
func TestRefusalsReadTheSame(t *testing.T) {
	tr := newTree(t)
	r := mustNew(t, tr.root)
	var first string
	for _, p := range []string{"nope.csv", "dir", tr.secret, "/etc/passwd", "/etc/shadow", "/nonexistent", "fifo", "link-out", "../rootX/x.csv"} {
		_, err := r.Open(p)
		if err == nil {
			t.Fatalf("Open(%q) succeeded", p)
		}
		msg := strings.Replace(err.Error(), strconv.Quote(p), "X", 1)
		if first == "" {
			first = msg
		}
		if msg != first {
			t.Errorf("Open(%q): %q differs from %q", p, msg, first)
		}
		if _, err2 := r.Resolve(p); err2 == nil || err2.Error() != err.Error() {
			t.Errorf("Resolve(%q) = %v, Open said %v", p, err2, err)
		}
	}
}

func TestUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads every file")
	}
	tr := newTree(t)
	p := filepath.Join(tr.root, "locked.csv")
	if err := os.WriteFile(p, []byte("x"), 0o000); err != nil {
		t.Fatal(err)
	}
	_, err := mustNew(t, tr.root).Open("locked.csv")
	wantRefused(t, err, "locked.csv")
}

func TestSeveralRoots(t *testing.T) {
	tr := newTree(t)
	r := mustNew(t, tr.root, tr.rootX)
	for _, p := range []string{"a.csv", filepath.Join(tr.rootX, "x.csv"), "link-sibling"} {
		if _, err := r.Resolve(p); err != nil {
			t.Errorf("Resolve(%q): %v", p, err)
		}
	}
	// Relative paths are anchored at the first root only.
	if _, err := r.Resolve("x.csv"); err == nil {
		t.Error("x.csv resolved against the second root")
	}
	if _, err := r.Resolve(tr.secret); err == nil {
		t.Error("secret resolved")
	}
}

func TestNew(t *testing.T) {
	tr := newTree(t)
	r := mustNew(t, tr.rootLink)
	if got := r.Dirs(); len(got) != 1 || got[0] != tr.root {
		t.Fatalf("Dirs() = %q, want the resolved %q", got, tr.root)
	}
	// A relative root is made absolute.
	wd, _ := os.Getwd()
	if err := os.Chdir(tr.base); err != nil {
		t.Fatal(err)
	}
	r2, err := New([]string{"root"})
	os.Chdir(wd)
	if err != nil || r2.Dirs()[0] != tr.root {
		t.Fatalf("New(root) = %v, %v", r2.Dirs(), err)
	}
	for _, tt := range []struct{ dir, part string }{
		{filepath.Join(tr.base, "missing"), "missing"},
		{filepath.Join(tr.root, "a.csv"), "not a directory"},
		{"", "empty"},
	} {
		_, err := New([]string{tr.root, tt.dir})
		if err == nil || !strings.Contains(err.Error(), tt.part) {
			t.Errorf("New(%q) = %v, want an error naming %q", tt.dir, err, tt.part)
		}
	}
}

func TestNoRoots(t *testing.T) {
	tr := newTree(t)
	for _, r := range []*Roots{nil, {}, mustNew(t)} {
		if _, err := r.Open(filepath.Join(tr.root, "a.csv")); !errors.Is(err, ErrNoRoots) {
			t.Errorf("Open with no roots: %v, want ErrNoRoots", err)
		}
		if _, err := r.Resolve("a.csv"); !errors.Is(err, ErrNoRoots) {
			t.Errorf("Resolve with no roots: %v, want ErrNoRoots", err)
		}
		if !r.Empty() || r.Contains("/etc/passwd") {
			t.Error("empty roots contain something")
		}
	}
}

func TestContains(t *testing.T) {
	r := &Roots{dirs: []string{"/data", "/"}}
	r1 := &Roots{dirs: []string{"/data"}}
	for _, tt := range []struct {
		r    *Roots
		p    string
		want bool
	}{
		{r1, "/data/a", true},
		{r1, "/data/a/b", true},
		{r1, "/data", false},
		{r1, "/data2/a", false},
		{r1, "/dat", false},
		{r1, "/etc/passwd", false},
		{r, "/etc/passwd", true}, // "/" as a root holds everything
	} {
		if got := tt.r.Contains(tt.p); got != tt.want {
			t.Errorf("%v.Contains(%q) = %v, want %v", tt.r.dirs, tt.p, got, tt.want)
		}
	}
}

// FuzzRootsResolve: whatever the path, a resolved path is a regular file
// strictly inside the root and never the secret outside it.
func FuzzRootsResolve(f *testing.F) {
	tr := newTree(f)
	r := mustNew(f, tr.rootLink)
	for _, s := range []string{"a.csv", "sub/b.csv", "link-in", "link-out", "link-rel-out", "linkdir-out/secret.txt",
		"../outside/secret.txt", "../rootX/x.csv", "/etc/passwd", tr.secret, "sub/../../root/a.csv", "./sub/./../a.csv",
		"link-loop", "dir/../link-in", "//" + tr.root + "//a.csv", "sub/b.csv/..", "\x00", "a.csv/", "fifo", "..", "/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		got, err := r.Resolve(p)
		if err != nil {
			var re *RefusedError
			if !errors.As(err, &re) || re.Path != p {
				t.Fatalf("Resolve(%q): %v, want a RefusedError", p, err)
			}
			return
		}
		if !strings.HasPrefix(got, tr.root+string(filepath.Separator)) {
			t.Fatalf("Resolve(%q) = %q, outside %q", p, got, tr.root)
		}
		if real, err := filepath.EvalSymlinks(got); err != nil || real != got {
			t.Fatalf("Resolve(%q) = %q, which resolves to %q (%v)", p, got, real, err)
		}
		st, err := os.Lstat(got)
		if err != nil || !st.Mode().IsRegular() {
			t.Fatalf("Resolve(%q) = %q, not a regular file", p, got)
		}
		b, err := os.ReadFile(got)
		if err != nil || string(b) == secretText || !strings.HasPrefix(string(b), "inside") {
			t.Fatalf("Resolve(%q) = %q, holding %q", p, got, b)
		}
	})
}
