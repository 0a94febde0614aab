package extract

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"github.com/cutover/cutover/services/kit/fsroot"
	"github.com/cutover/cutover/services/kit/mysqltest"
	"github.com/cutover/cutover/services/kit/pgtest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

func TestMain(m *testing.M) {
	code := pgtest.Run(m)
	mysqltest.Cleanup() // a throwaway MariaDB, if newMySQLDB started one
	os.Exit(code)
}

// row is one extracted row in a form tests compare easily.
type row struct {
	ref    string
	vals   []string // "<NULL>" for NULL
	reject string   // "rule|column|reason|raw" of the row's reject, if any
}

const null = "<NULL>"

// notInRoots is the one message for a file path that cannot be used.
const notInRoots = "is not a readable file inside the configured file roots"

// newService is a service whose file roots are the test's temporary
// directories and testdata.
func newService(t testing.TB) *Service {
	return newServiceWith(t, Options{FileRoots: fileRoots(t)})
}

func newServiceWith(t testing.TB, opts Options) *Service {
	t.Helper()
	s, err := NewWithOptions(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// fileRoots are the directory every t.TempDir() is made in (a subtest's
// too, which is not below its parent's) and testdata. The tests of the
// roots themselves (files_test.go) use narrower ones.
func fileRoots(t testing.TB) []string {
	t.Helper()
	td, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	return []string{os.TempDir(), td}
}

// testRoots is fileRoots for the readers below the service.
func testRoots(t testing.TB) *fsroot.Roots {
	t.Helper()
	r, err := fsroot.New(fileRoots(t))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// dirRoots makes the directory of path the one root.
func dirRoots(t testing.TB, path string) *fsroot.Roots {
	t.Helper()
	r, err := fsroot.New([]string{filepath.Dir(path)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func writeFile(t testing.TB, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "in.csv")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func csvSource(c *commonv1.CsvSource) *commonv1.SourceSpec {
	return &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Csv{Csv: c}}
}

func pgSource(dsn, schema, table string) *commonv1.SourceSpec {
	return &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Postgres{Postgres: &commonv1.PostgresSource{Dsn: dsn, Schema: schema, Table: table}}}
}

// rowsOf flattens a batch, checking that it is well formed and marshals.
// unchangedText stands for a value a change left out (Column.unchanged).
const unchangedText = "<unchanged>"

func rowsOf(t testing.TB, b *commonv1.Batch) []row {
	t.Helper()
	if err := batch.Check(b); err != nil {
		t.Fatalf("malformed batch: %v", err)
	}
	if _, err := proto.Marshal(b); err != nil {
		t.Fatalf("batch does not marshal: %v", err)
	}
	out := make([]row, b.GetNumRows())
	for i := range out {
		out[i].ref = batch.SourceRef(b, i)
		for _, c := range b.GetColumns() {
			v, ok := batch.Text(c, i)
			switch {
			case batch.IsUnchanged(c, i):
				v = unchangedText
			case !ok:
				v = null
			}
			out[i].vals = append(out[i].vals, v)
		}
	}
	for _, r := range b.GetRejects() {
		if r.GetStage() != stageExtract {
			t.Errorf("reject stage %q, want extract", r.GetStage())
		}
		out[r.GetRow()].reject = strings.Join([]string{r.GetRule(), r.GetColumn(), r.GetReason(), r.GetRaw()}, "|")
	}
	return out
}

// readAll reads a partition from the start until done and returns its rows
// and the cursors each batch started at.
func readAll(t testing.TB, s *Service, src *commonv1.SourceSpec, kr *commonv1.KeyRange, size int) ([]row, []string) {
	t.Helper()
	var rows []row
	var cursors []string
	cursor := ""
	for i := 0; ; i++ {
		if i > 100000 {
			t.Fatal("no end after 100000 batches")
		}
		resp, err := s.ReadBatch(context.Background(), &extractorv1.ReadBatchRequest{
			Source: src, Range: kr, Cursor: cursor, BatchSize: int32(size),
			JobId: "job", PartitionId: "p1", Seq: int64(i), Table: "orders",
		})
		if err != nil {
			t.Fatalf("ReadBatch(cursor %q): %v", cursor, err)
		}
		b := resp.GetBatch()
		if b.GetFirstKey() != cursor || b.GetJobId() != "job" || b.GetPartitionId() != "p1" || b.GetSeq() != int64(i) || b.GetTable() != "orders" {
			t.Fatalf("batch header not passed through: first_key %q job %q partition %q seq %d table %q",
				b.GetFirstKey(), b.GetJobId(), b.GetPartitionId(), b.GetSeq(), b.GetTable())
		}
		if int(b.GetNumRows()) > size {
			t.Fatalf("batch has %d rows, batch size %d", b.GetNumRows(), size)
		}
		cursors = append(cursors, cursor)
		rows = append(rows, rowsOf(t, b)...)
		if resp.GetDone() {
			return rows, cursors
		}
		if b.GetNumRows() == 0 {
			t.Fatalf("empty batch without done at cursor %q", cursor)
		}
		cursor = b.GetLastKey()
	}
}

// wantCode asserts a gRPC code and that the message contains every part.
func wantCode(t testing.TB, err error, code codes.Code, parts ...string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code {
		t.Fatalf("got %v (%v), want %v", st.Code(), err, code)
	}
	for _, p := range parts {
		if !strings.Contains(st.Message(), p) {
			t.Errorf("message %q does not contain %q", st.Message(), p)
		}
	}
}
