package extract

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// fileKind builds a source of one file kind for a path.
type fileKind struct {
	name, file string
	src        func(path string) *commonv1.SourceSpec
}

// rootFixture is a root holding a valid file of every kind, the same files
// outside the root, and links and directories to try to escape with.
type rootFixture struct {
	root, outside string
	kinds         []fileKind
}

func newRootFixture(t *testing.T) rootFixture {
	t.Helper()
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fx := rootFixture{root: filepath.Join(base, "root"), outside: filepath.Join(base, "outside")}
	for _, d := range []string{fx.root, fx.outside, filepath.Join(fx.root, "dir"), base + "/rootX"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"orders.csv":   writeFile(t, "id,name\n1,a\n2,b\n"),
		"orders.jsonl": writeJSONL(t, "{\"id\": 1}\n{\"id\": 2}\n"),
		"book.xlsx":    xlsxBook(t, false, map[string][][]any{"S": {{"id"}, {1}, {2}}}, "S"),
		"legacy.db":    sqliteDB(t, `CREATE TABLE orders (id INTEGER PRIMARY KEY)`, `INSERT INTO orders VALUES (1), (2)`),
	}
	for name, from := range files {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		// The same valid file inside, outside, and in a sibling whose name
		// starts with the root's: only the place may decide.
		for _, dir := range []string{fx.root, fx.outside, base + "/rootX"} {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Symlink(filepath.Join(fx.outside, name), filepath.Join(fx.root, "out-"+name)); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(name, filepath.Join(fx.root, "in-"+name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(fx.outside, filepath.Join(fx.root, "outdir")); err != nil {
		t.Fatal(err)
	}
	fx.kinds = []fileKind{
		{"csv", "orders.csv", func(p string) *commonv1.SourceSpec { return csvSource(&commonv1.CsvSource{Path: p}) }},
		{"jsonl", "orders.jsonl", func(p string) *commonv1.SourceSpec { return jsonlSource(p) }},
		{"xlsx", "book.xlsx", func(p string) *commonv1.SourceSpec { return xlsxSource(p, "", 0) }},
		{"sqlite", "legacy.db", func(p string) *commonv1.SourceSpec { return sqliteSource(p, "orders") }},
	}
	return fx
}

// call runs one of the RPCs that open a source.
func callRPC(s *Service, rpc string, src *commonv1.SourceSpec) error {
	ctx := context.Background()
	var err error
	switch rpc {
	case "DescribeSource":
		_, err = s.DescribeSource(ctx, &extractorv1.DescribeSourceRequest{Source: src})
	case "PlanPartitions":
		_, err = s.PlanPartitions(ctx, &extractorv1.PlanPartitionsRequest{Source: src, Partitions: 2})
	case "ReadBatch":
		_, err = s.ReadBatch(ctx, &extractorv1.ReadBatchRequest{Source: src, BatchSize: 10})
	default:
		panic(rpc)
	}
	return err
}

var fileRPCs = []string{"DescribeSource", "PlanPartitions", "ReadBatch"}

// TestFileSourcesConfinedToRoots: through every RPC that opens a source,
// each file kind reads inside the roots and is refused anywhere else, with
// one message whatever the reason.
func TestFileSourcesConfinedToRoots(t *testing.T) {
	fx := newRootFixture(t)
	s := newServiceWith(t, Options{FileRoots: []string{fx.root}})
	for _, k := range fx.kinds {
		allowed := []string{
			k.file,                         // relative to the first root
			filepath.Join(fx.root, k.file), // absolute
			"in-" + k.file,                 // symlink to a file inside
			"dir/../" + k.file,             // dot dot that stays inside
			filepath.Join(fx.root, "outdir", "..", k.file), // lexically inside
		}
		refused := []string{
			filepath.Join(fx.outside, k.file),            // absolute outside
			"../outside/" + k.file,                       // ../ escape
			"../../../../../../../../../../etc/passwd",   // the classic
			"/etc/passwd",                                //
			"/etc/shadow",                                //
			"/proc/self/environ",                         //
			"out-" + k.file,                              // symlink inside pointing outside
			"outdir/" + k.file,                           // through a directory symlink
			filepath.Join(fx.root+"X", k.file),           // prefix trick: rootX is not root
			"../rootX/" + k.file,                         //
			"missing-" + k.file,                          // does not exist
			filepath.Join(fx.outside, "missing-"+k.file), // does not exist, outside
			"dir",                // a directory
			".",                  // the root itself
			"file:" + k.file,     // no URI meaning
			k.file + "?mode=rwc", // no URI parameters
			filepath.Join(fx.root, k.file) + "\x00.csv", // NUL
		}
		for _, rpc := range fileRPCs {
			for _, p := range allowed {
				if err := callRPC(s, rpc, k.src(p)); err != nil {
					t.Errorf("%s %s %q: %v", k.name, rpc, p, err)
				}
			}
			for _, p := range refused {
				err := callRPC(s, rpc, k.src(p))
				want := "invalid argument: source." + k.name + ".path: source path " + strconv.Quote(p) +
					" is not a readable file inside the configured file roots"
				if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument || st.Message() != want {
					t.Errorf("%s %s %q:\n got %v\nwant InvalidArgument %q", k.name, rpc, p, err, want)
				}
			}
		}
	}
	// SQLite would have created the missing database; nothing was made.
	if _, err := os.Stat(filepath.Join(fx.root, "missing-legacy.db")); !os.IsNotExist(err) {
		t.Errorf("a refused SQLite path was created: %v", err)
	}
}

// TestFileSourcesDisabled: with no roots, no file source is opened, not
// even one that exists.
func TestFileSourcesDisabled(t *testing.T) {
	fx := newRootFixture(t)
	for _, s := range []*Service{New(), newServiceWith(t, Options{})} {
		for _, k := range fx.kinds {
			for _, rpc := range fileRPCs {
				for _, p := range []string{filepath.Join(fx.root, k.file), "/etc/passwd", "nope"} {
					err := callRPC(s, rpc, k.src(p))
					want := "failed precondition: source." + k.name + ".path: file sources are disabled on this extractor: set CUTOVER_FILE_ROOTS"
					if st, _ := status.FromError(err); st.Code() != codes.FailedPrecondition || st.Message() != want {
						t.Errorf("%s %s %q: got %v, want %q", k.name, rpc, p, err, want)
					}
				}
			}
		}
		s.Close()
	}
}

// TestSQLiteNameIsNotAURI: a file name holding URI syntax is only a name:
// it opens that file, read-only, and adds no parameter.
func TestSQLiteNameIsNotAURI(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(sqliteDB(t, `CREATE TABLE weird (id INTEGER PRIMARY KEY, v TEXT)`, `INSERT INTO weird VALUES (7, 'x')`))
	if err != nil {
		t.Fatal(err)
	}
	name := "a?mode=rwc&vfs=memdb#x%41.db"
	if err := os.WriteFile(filepath.Join(root, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
	s := newServiceWith(t, Options{FileRoots: []string{root}})
	rows, _ := readAll(t, s, sqliteSource(name, "weird"), nil, 10)
	if len(rows) != 1 || rows[0].vals[0] != "7" {
		t.Fatalf("got %q", rows)
	}
	// The query part of a name that is not a file is not read as one.
	err = callRPC(s, "DescribeSource", sqliteSource("a?mode=rwc", "weird"))
	wantCode(t, err, codes.InvalidArgument, notInRoots)
	if _, err := os.Stat(filepath.Join(root, "a")); !os.IsNotExist(err) {
		t.Fatalf("SQLite created a file: %v", err)
	}
	entries, _ := os.ReadDir(root)
	if len(entries) != 1 {
		t.Fatalf("the root holds %d entries after reading, want the one file", len(entries))
	}
}

// TestSQLiteErrorsInsideRoots: inside the roots, a file that is not a
// database may say so.
func TestSQLiteErrorsInsideRoots(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, "text.db")
	if err := os.WriteFile(p, []byte(strings.Repeat("not a database ", 100)), 0o644); err != nil {
		t.Fatal(err)
	}
	s := newServiceWith(t, Options{FileRoots: []string{root}})
	wantCode(t, callRPC(s, "DescribeSource", sqliteSource("text.db", "t")), codes.FailedPrecondition, "not a database")
	// The same content outside reads as any other refusal.
	wantCode(t, callRPC(s, "DescribeSource", sqliteSource(writeFile(t, strings.Repeat("x", 2000)), "t")), codes.InvalidArgument, notInRoots)
}

func TestNewWithOptions(t *testing.T) {
	root := t.TempDir()
	for _, tt := range []struct {
		opts Options
		part string // "" = no error
	}{
		{Options{}, ""},
		{Options{FileRoots: []string{root}, SourceHosts: []string{"db1", "db2:5432", "[::1]:3306", "*:5432", "db3:*", "*"}}, ""},
		{Options{FileRoots: []string{filepath.Join(root, "nope")}}, "CUTOVER_FILE_ROOTS"},
		{Options{FileRoots: []string{root, ""}}, "CUTOVER_FILE_ROOTS"},
		{Options{SourceHosts: []string{"a:b:c"}}, "CUTOVER_SOURCE_HOSTS"},
		{Options{SourceHosts: []string{"db:99999"}}, "CUTOVER_SOURCE_HOSTS"},
		{Options{SourceHosts: []string{"*.corp"}}, "CUTOVER_SOURCE_HOSTS"},
		{Options{SourceHosts: []string{""}}, "CUTOVER_SOURCE_HOSTS"},
	} {
		s, err := NewWithOptions(tt.opts)
		if tt.part == "" {
			if err != nil {
				t.Errorf("NewWithOptions(%+v): %v", tt.opts, err)
			} else {
				s.Close()
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.part) {
			t.Errorf("NewWithOptions(%+v) = %v, want an error naming %s", tt.opts, err, tt.part)
		}
	}
	if err := func() error {
		_, err := NewWithOptions(Options{FileRoots: []string{filepath.Join(root, "nope")}})
		return err
	}(); !strings.Contains(err.Error(), "nope") {
		t.Errorf("a missing root is not named: %v", err)
	}
}

func TestParseOptions(t *testing.T) {
	for _, tt := range []struct {
		roots, hosts string
		want         Options
	}{
		{"", "", Options{}},
		{"/a", "h", Options{FileRoots: []string{"/a"}, SourceHosts: []string{"h"}}},
		{"/a:/b", "h1, h2:5432", Options{FileRoots: []string{"/a", "/b"}, SourceHosts: []string{"h1", "h2:5432"}}},
		{"/a::/b:", " h1,,h2 ,", Options{FileRoots: []string{"/a", "/b"}, SourceHosts: []string{"h1", "h2"}}},
		{":", ",", Options{}},
	} {
		got := ParseOptions(tt.roots, tt.hosts)
		if strings.Join(got.FileRoots, "|") != strings.Join(tt.want.FileRoots, "|") || strings.Join(got.SourceHosts, "|") != strings.Join(tt.want.SourceHosts, "|") {
			t.Errorf("ParseOptions(%q, %q) = %+v, want %+v", tt.roots, tt.hosts, got, tt.want)
		}
	}
}
