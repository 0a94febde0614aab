package fsroot

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// ErrPattern is returned by Glob for a pattern it does not take.
var ErrPattern = errors.New("a file name pattern (path.Match syntax: * ? [a-z]) in the last path element only")

// Glob lists the entries of one directory whose names match the last
// element of pattern (filepath.Match syntax), in lexical order, as the
// directory part of pattern joined with each name. The directory is
// resolved as Open resolves a path (relative to the first root, symlinks
// followed) and must lie inside a root or be one; wildcards anywhere else
// are ErrPattern. A name starting with '.' matches only a pattern that
// does. Glob opens none of the matches: each one still goes through Open,
// which confines it (a symlink to outside the roots is refused there).
// A directory that cannot be used is a RefusedError naming pattern.
func (r *Roots) Glob(pattern string) ([]string, error) {
	if r.Empty() {
		return nil, ErrNoRoots
	}
	if pattern == "" || strings.IndexByte(pattern, 0) >= 0 {
		return nil, &RefusedError{Path: pattern}
	}
	dir, base := filepath.Split(pattern)
	if base == "" || strings.ContainsAny(dir, `*?[\`) {
		return nil, ErrPattern
	}
	if _, err := filepath.Match(base, ""); err != nil {
		return nil, ErrPattern
	}
	at := filepath.Clean(dir)
	if !filepath.IsAbs(at) {
		at = filepath.Join(r.dirs[0], at)
	}
	real, err := filepath.EvalSymlinks(at)
	if err != nil || !filepath.IsAbs(real) || !r.Contains(real) && !r.isRoot(real) {
		return nil, &RefusedError{Path: pattern}
	}
	entries, err := os.ReadDir(real)
	if err != nil {
		return nil, &RefusedError{Path: pattern}
	}
	var out []string
	for _, e := range entries { // sorted by name
		name := e.Name()
		if strings.HasPrefix(name, ".") && !strings.HasPrefix(base, ".") {
			continue
		}
		if ok, _ := filepath.Match(base, name); ok {
			out = append(out, dir+name)
		}
	}
	return out, nil
}

// isRoot reports whether path is one of the roots.
func (r *Roots) isRoot(path string) bool {
	for _, d := range r.dirs {
		if path == d {
			return true
		}
	}
	return false
}
