// Package fsroot confines the files a caller names to directories the
// operator configured, so that a source path can never read the rest of the
// host, and answers every refusal with one message that tells nothing about
// what exists there.
package fsroot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrNoRoots is returned by Open and Resolve when no root is configured.
var ErrNoRoots = errors.New("no file roots are configured")

// RefusedError is the one answer for a path that cannot be used, whatever
// the reason (missing, a directory, unreadable, outside the roots): any
// difference would let a caller probe the host's file system.
type RefusedError struct {
	// Path is the caller's own input, the only thing the message shows.
	Path string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("source path %q is not a readable file inside the configured file roots", e.Path)
}

// Roots is a set of directories, absolute and with symlinks resolved.
// The zero value (and nil) has no roots and refuses every path.
type Roots struct {
	dirs []string
}

// New resolves each directory. A directory that does not exist or is not a
// directory is an error naming it: it is the operator's configuration.
func New(dirs []string) (*Roots, error) {
	r := &Roots{}
	for _, d := range dirs {
		if d == "" {
			return nil, errors.New("empty file root")
		}
		abs, err := filepath.Abs(d)
		if err != nil {
			return nil, fmt.Errorf("file root %q: %w", d, err)
		}
		real, err := filepath.EvalSymlinks(abs)
		if err != nil {
			return nil, fmt.Errorf("file root %q does not exist or cannot be resolved: %w", d, err)
		}
		st, err := os.Stat(real)
		if err != nil {
			return nil, fmt.Errorf("file root %q: %w", d, err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("file root %q is not a directory", d)
		}
		r.dirs = append(r.dirs, real)
	}
	return r, nil
}

// Dirs returns the resolved roots; the first one anchors relative paths.
func (r *Roots) Dirs() []string {
	if r == nil {
		return nil
	}
	return append([]string(nil), r.dirs...)
}

// Empty reports whether no root is configured.
func (r *Roots) Empty() bool { return r == nil || len(r.dirs) == 0 }

// Contains reports whether path (absolute, cleaned, symlinks resolved) lies
// strictly below one of the roots. A plain string prefix would let root
// /data admit /data2.
func (r *Roots) Contains(path string) bool {
	if r == nil {
		return false
	}
	for _, d := range r.dirs {
		prefix := d
		if !strings.HasSuffix(prefix, string(filepath.Separator)) {
			prefix += string(filepath.Separator)
		}
		if len(path) > len(prefix) && strings.HasPrefix(path, prefix) {
			return true
		}
	}
	return false
}

// resolve maps the caller's path to the real path to open: relative paths
// are taken from the first root, and every symlink is resolved before the
// containment check, so a link inside a root cannot point out of it.
func (r *Roots) resolve(path string) (string, error) {
	if r.Empty() {
		return "", ErrNoRoots
	}
	if path == "" || strings.IndexByte(path, 0) >= 0 {
		return "", &RefusedError{Path: path}
	}
	p := filepath.Clean(path)
	if !filepath.IsAbs(p) {
		p = filepath.Join(r.dirs[0], p)
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil || !filepath.IsAbs(real) || !r.Contains(real) {
		return "", &RefusedError{Path: path}
	}
	return real, nil
}

// Open opens the caller's path read-only after confining it to the roots.
// The returned file's Name is the resolved path. The file must be a
// regular file; after opening, what was opened is checked again (the
// kernel's own path of the descriptor where available), so a directory
// swapped for a symlink between the check and the open is caught.
func (r *Roots) Open(path string) (*os.File, error) {
	real, err := r.resolve(path)
	if err != nil {
		return nil, err
	}
	refused := &RefusedError{Path: path}
	f, err := openNoFollow(real)
	if err != nil {
		return nil, refused
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || !r.opened(f, real, st) {
		f.Close()
		return nil, refused
	}
	return f, nil
}

// Resolve is Open for libraries that open files by name themselves (the
// SQLite driver): it returns the resolved path of a readable regular file
// inside the roots. Only the check happens here, so a swap after it is not
// caught; prefer Open.
func (r *Roots) Resolve(path string) (string, error) {
	f, err := r.Open(path)
	if err != nil {
		return "", err
	}
	name := f.Name()
	f.Close()
	return name, nil
}

// opened checks that the open descriptor is the file that was checked.
func (r *Roots) opened(f *os.File, real string, st os.FileInfo) bool {
	if p, ok := fdPath(f); ok {
		return p == real || r.Contains(p)
	}
	// No kernel path: the resolved path must still name the same file.
	again, err := filepath.EvalSymlinks(real)
	if err != nil || again != real {
		return false
	}
	st2, err := os.Stat(real)
	return err == nil && os.SameFile(st, st2)
}
