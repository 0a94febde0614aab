package fsroot

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestGlob(t *testing.T) {
	tr := newTree(t)
	r := mustNew(t, tr.root)
	for _, n := range []string{"orders-2024-02.csv", "orders-2024-01.csv", "orders-2024-10.csv", ".orders-x.csv", "orders.txt"} {
		if err := os.WriteFile(filepath.Join(tr.root, "sub", n), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(tr.secret, filepath.Join(tr.root, "sub", "orders-2024-99.csv")); err != nil {
		t.Fatal(err)
	}
	got, err := r.Glob("sub/orders-*.csv")
	want := []string{"sub/orders-2024-01.csv", "sub/orders-2024-02.csv", "sub/orders-2024-10.csv", "sub/orders-2024-99.csv"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Glob: %q, %v; want %q", got, err, want)
	}
	// A match is only a name: Open still refuses the link to outside.
	if _, err := r.Open(got[3]); err == nil {
		t.Fatal("a matched symlink to outside the roots opened")
	}
	abs, err := r.Glob(filepath.Join(tr.root, "sub", "orders-2024-0?.csv"))
	if err != nil || len(abs) != 2 || abs[0] != filepath.Join(tr.root, "sub", "orders-2024-01.csv") {
		t.Fatalf("absolute Glob: %q, %v", abs, err)
	}
	if got, err := r.Glob("*.csv"); err != nil || !reflect.DeepEqual(got, []string{"a.csv"}) {
		t.Fatalf("Glob in the root itself: %q, %v", got, err)
	}
	if got, err := r.Glob("sub/none-*.csv"); err != nil || len(got) != 0 {
		t.Fatalf("no match: %q, %v", got, err)
	}
	for _, p := range []string{"*/b.csv", "sub/[.csv", "sub/"} {
		if _, err := r.Glob(p); !errors.Is(err, ErrPattern) {
			t.Errorf("Glob(%q): %v, want ErrPattern", p, err)
		}
	}
	var refused *RefusedError
	for _, p := range []string{"../outside/*.txt", filepath.Join(tr.base, "outside", "*"), "linkdir-out/*", "nodir/*.csv", filepath.Join(tr.rootX, "*.csv")} {
		if _, err := r.Glob(p); !errors.As(err, &refused) {
			t.Errorf("Glob(%q): %v, want refused", p, err)
		}
	}
	if _, err := mustNew(t).Glob("*.csv"); !errors.Is(err, ErrNoRoots) {
		t.Errorf("no roots: %v", err)
	}
}
