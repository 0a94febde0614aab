package extract

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	"google.golang.org/grpc/codes"
)

// ordersDir is the directory of the monthly order exports in testdata:
// BOMs, CRLF and LF, quoted commas and line breaks, a ragged row, a blank
// line, and a README the pattern must not match.
func ordersDir(t testing.TB) string {
	t.Helper()
	d, err := filepath.Abs(filepath.Join("testdata", "csv", "orders"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestCSVPattern: a pattern reads every matching file in lexical order
// (01, 02, 10) as one table; each row is what a read of its file alone
// gives, its reference naming the file; a read without a range goes
// through the files one after the other, never a batch across two; a plan
// gives every file its own partitions (one each, or more by size), and the
// partitions together read exactly the same rows.
func TestCSVPattern(t *testing.T) {
	dir := ordersDir(t)
	s := newService(t)
	src := csvSource(&commonv1.CsvSource{Pattern: filepath.Join(dir, "orders-2024-*.csv")})
	ctx := context.Background()

	files := []string{"orders-2024-01.csv", "orders-2024-02.csv", "orders-2024-10.csv"}
	var want []row
	for _, f := range files {
		rows, _ := readAll(t, s, csvSource(&commonv1.CsvSource{Path: filepath.Join(dir, f)}), nil, 100)
		for _, r := range rows {
			r.ref = f + " " + r.ref
			want = append(want, r)
		}
	}
	if len(want) != 9 || want[0].ref != "orders-2024-01.csv line 2" || want[0].vals[2] != "Müller, Anna" ||
		want[2].vals[2] != "Chen\nWei" || !strings.HasPrefix(want[5].reject, "ragged_row||line 4: 4 fields") ||
		want[6].ref != "orders-2024-02.csv line 6" || want[8].ref != "orders-2024-10.csv line 3" || want[8].vals[4] != `refund "partial"` {
		t.Fatalf("the files read one by one: %q", want)
	}

	d, err := s.DescribeSource(ctx, &extractorv1.DescribeSourceRequest{Source: src})
	if err != nil || len(d.GetColumns()) != 5 || d.GetColumns()[0].GetName() != "order_id" || d.GetEstimatedRows() < 6 {
		t.Fatalf("describe: %v, %v", d, err)
	}
	for _, size := range []int{1, 2, 100} {
		got, cursors := readAll(t, s, src, nil, size)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("batches of %d:\n got %q\nwant %q", size, got, want)
		}
		if size == 100 && len(cursors) < 3 {
			t.Fatalf("batches of 100 crossed files: cursors %q", cursors)
		}
	}
	for _, n := range []int{1, 3, 4, 8, 20} {
		p, err := s.PlanPartitions(ctx, &extractorv1.PlanPartitionsRequest{Source: src, Partitions: int32(n)})
		if err != nil {
			t.Fatalf("plan %d: %v", n, err)
		}
		rs := p.GetRanges()
		if len(rs) < len(files) || n >= 8 && len(rs) <= len(files) {
			t.Fatalf("plan %d: %d ranges %v", n, len(rs), rs)
		}
		var got []row
		for i, r := range rs {
			if !strings.HasPrefix(r.GetLower(), `["orders-2024-`) || !strings.HasPrefix(r.GetUpper(), r.GetLower()[:len(`["orders-2024-01.csv"`)]) {
				t.Fatalf("plan %d: range %d %v does not name one file", n, i, r)
			}
			rows, _ := readAll(t, s, src, r, 2)
			got = append(got, rows...)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%d partitions:\n got %q\nwant %q", n, got, want)
		}
	}
}

// TestCSVPatternRefusals: a pattern matching nothing names the pattern; a
// file whose header differs is named in describe, plan and read; a match
// that is a symlink out of the roots is refused like a path, and so is a
// pattern whose directory is outside them; wildcards outside the file name,
// path and pattern together, and a cursor naming a file that no longer
// matches are refused.
func TestCSVPatternRefusals(t *testing.T) {
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	root, outside := filepath.Join(base, "root"), filepath.Join(base, "outside")
	for _, d := range []string{root, outside, filepath.Join(root, "mixed"), filepath.Join(root, "linked")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(root, "mixed", "a.csv"), "id,name\n1,x\n")
	write(filepath.Join(root, "mixed", "b.csv"), "id,full_name\n2,y\n")
	write(filepath.Join(root, "linked", "p-1.csv"), "id\n1\n")
	write(filepath.Join(outside, "secret.csv"), "id\n42\n")
	if err := os.Symlink(filepath.Join(outside, "secret.csv"), filepath.Join(root, "linked", "p-2.csv")); err != nil {
		t.Fatal(err)
	}
	s := newServiceWith(t, Options{FileRoots: []string{root}})
	ctx := context.Background()
	pat := func(p string) *commonv1.SourceSpec { return csvSource(&commonv1.CsvSource{Pattern: p}) }

	_, err = s.DescribeSource(ctx, &extractorv1.DescribeSourceRequest{Source: pat("mixed/orders-*.csv")})
	wantCode(t, err, codes.InvalidArgument, "source.csv.pattern", `pattern "mixed/orders-*.csv" matches no file`)

	mixed := pat("mixed/*.csv")
	_, err = s.DescribeSource(ctx, &extractorv1.DescribeSourceRequest{Source: mixed})
	wantCode(t, err, codes.FailedPrecondition, "source.csv.pattern", "mixed/b.csv has the header", `"full_name"`, "mixed/a.csv, the first file", "same header")
	_, err = s.PlanPartitions(ctx, &extractorv1.PlanPartitionsRequest{Source: mixed, Partitions: 2})
	wantCode(t, err, codes.FailedPrecondition, "mixed/b.csv has the header")
	_, err = s.ReadBatch(ctx, &extractorv1.ReadBatchRequest{Source: mixed, Range: &commonv1.KeyRange{Lower: `["b.csv",""]`, Upper: `["b.csv",""]`}})
	wantCode(t, err, codes.FailedPrecondition, "mixed/b.csv has the header")
	// The first file alone reads; the read stops at the second.
	resp, err := s.ReadBatch(ctx, &extractorv1.ReadBatchRequest{Source: mixed})
	if err != nil || resp.GetBatch().GetNumRows() != 1 || resp.GetDone() {
		t.Fatalf("first file: %v, %v", resp, err)
	}
	_, err = s.ReadBatch(ctx, &extractorv1.ReadBatchRequest{Source: mixed, Cursor: resp.GetBatch().GetLastKey()})
	wantCode(t, err, codes.FailedPrecondition, "mixed/b.csv has the header")

	linked := pat("linked/p-*.csv")
	for _, call := range []func() error{
		func() error {
			_, err := s.DescribeSource(ctx, &extractorv1.DescribeSourceRequest{Source: linked})
			return err
		},
		func() error {
			_, err := s.PlanPartitions(ctx, &extractorv1.PlanPartitionsRequest{Source: linked})
			return err
		},
		func() error {
			_, err := s.ReadBatch(ctx, &extractorv1.ReadBatchRequest{Source: linked, Cursor: `["p-2.csv",""]`})
			return err
		},
	} {
		err := call()
		wantCode(t, err, codes.InvalidArgument, "source.csv.pattern", `"linked/p-2.csv" `+notInRoots)
		if strings.Contains(err.Error(), "42") || strings.Contains(err.Error(), "secret") {
			t.Fatalf("the refusal tells about the file outside: %v", err)
		}
	}

	for _, tc := range []struct {
		src   *commonv1.SourceSpec
		parts []string
	}{
		{pat(filepath.Join(outside, "*.csv")), []string{"source.csv.pattern", "not a readable directory inside the configured file roots"}},
		{pat("../outside/*.csv"), []string{"source.csv.pattern", "not a readable directory"}},
		{pat("*/a.csv"), []string{"source.csv.pattern", "last path element only"}},
		{pat("mixed/[.csv"), []string{"source.csv.pattern", "last path element only"}},
		{csvSource(&commonv1.CsvSource{Pattern: "mixed/*.csv", Path: "mixed/a.csv"}), []string{"source.csv.pattern", "not both"}},
		{csvSource(&commonv1.CsvSource{}), []string{"source.csv.path", "or pattern"}},
	} {
		_, err := s.DescribeSource(ctx, &extractorv1.DescribeSourceRequest{Source: tc.src})
		wantCode(t, err, codes.InvalidArgument, tc.parts...)
	}
	_, err = s.ReadBatch(ctx, &extractorv1.ReadBatchRequest{Source: pat("mixed/a*.csv"), Cursor: `["b.csv","12:2"]`})
	wantCode(t, err, codes.FailedPrecondition, "cursor", `file "b.csv" is not among the files pattern "mixed/a*.csv" matches`)
	_, err = s.ReadBatch(ctx, &extractorv1.ReadBatchRequest{Source: pat("mixed/*.csv"), Range: &commonv1.KeyRange{Lower: `["a.csv",""]`, Upper: `["b.csv",""]`}})
	wantCode(t, err, codes.InvalidArgument, "range", "two files")
	_, err = s.ReadBatch(ctx, &extractorv1.ReadBatchRequest{Source: pat("mixed/a*.csv"), Cursor: "12:2"})
	wantCode(t, err, codes.InvalidArgument, "cursor", "position of a pattern source")
}
