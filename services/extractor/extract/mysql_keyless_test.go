package extract

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"strconv"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// keylessAudit is a MariaDB table without primary key shaped like an audit
// log: many identical rows, NULLs, values that a case-insensitive, padding
// collation calls equal ('Ann', 'ann', 'ann '), and notes that share their
// first 1500 bytes, past the server's max_sort_length (1024). The rows go
// in shuffled, so the table's storage order is not the read order.
func keylessAudit(t *testing.T) (dsn string, rows int) {
	t.Helper()
	type base struct{ at, who, note, amount, qty, raw string }
	long := strings.Repeat("x", 1500)
	var bases []base
	for i := range 40 {
		bases = append(bases, base{
			at:     fmt.Sprintf("'2024-01-%02d 10:%02d:00'", 1+i%5, i%3),
			who:    []string{"'Ann'", "'ann'", "'ann '", "'Bob'", "NULL", "'Zoë'"}[i%6],
			note:   []string{"'login'", "'LOGIN'", "NULL", "'" + long + "a'", "'" + long + "b'", "''"}[(i/2)%6],
			amount: []string{"1.50", "-2.00", "NULL", "0.00"}[i%4],
			qty:    strconv.Itoa(i % 7),
			raw:    []string{"x'00'", "x'0000'", "NULL", "x'41'", "x''"}[i%5],
		})
	}
	var values []string
	for i, b := range bases {
		for range i%4 + 1 { // 1 to 4 identical copies
			values = append(values, fmt.Sprintf("(%s, %s, %s, %s, %s, %s)", b.at, b.who, b.note, b.amount, b.qty, b.raw))
		}
	}
	// A row of NULLs, three times.
	values = append(values, "(NULL, NULL, NULL, NULL, NULL, NULL)", "(NULL, NULL, NULL, NULL, NULL, NULL)", "(NULL, NULL, NULL, NULL, NULL, NULL)")
	rnd := rand.New(rand.NewSource(7))
	rnd.Shuffle(len(values), func(i, j int) { values[i], values[j] = values[j], values[i] })
	dsn = newMySQLDB(t,
		`CREATE TABLE audit (at datetime NULL, who varchar(20) NULL, note text NULL, amount decimal(10,2) NULL, qty int NULL, raw varbinary(8) NULL)
		 CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci`,
		"INSERT INTO audit VALUES "+strings.Join(values, ", "))
	return dsn, len(values)
}

// keylessSourceMultiset is the table's rows with their counts, by the
// source's own SQL: grouped on the bytes of each row as text, so rows
// the collation calls equal stay apart.
func keylessSourceMultiset(t *testing.T, dsn string) map[string]int {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT CAST(CONCAT_WS('|',
		IFNULL(DATE_FORMAT(at, '%Y-%m-%dT%H:%i:%sZ'), '<NULL>'), IFNULL(who, '<NULL>'), IFNULL(note, '<NULL>'),
		IFNULL(CAST(amount AS CHAR), '<NULL>'), IFNULL(CAST(qty AS CHAR), '<NULL>'), IFNULL(HEX(raw), '<NULL>')) AS BINARY) AS k, COUNT(*)
		FROM audit GROUP BY k`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			t.Fatal(err)
		}
		out[k] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// keylessRowKey is row i of b in keylessSourceMultiset's form.
func keylessRowKey(b *commonv1.Batch, i int) string {
	parts := make([]string, len(b.GetColumns()))
	for k, c := range b.GetColumns() {
		v, ok := batch.Text(c, i)
		switch {
		case !ok:
			v = null
		case c.GetType() == commonv1.ColumnType_COLUMN_TYPE_BYTES:
			v = strings.ToUpper(hex.EncodeToString([]byte(v)))
		}
		parts[k] = v
	}
	return strings.Join(parts, "|")
}

// multiset counts the rows of batches in keylessRowKey form.
func multiset(bs []*commonv1.Batch) map[string]int {
	out := map[string]int{}
	for _, b := range bs {
		for i := range int(b.GetNumRows()) {
			out[keylessRowKey(b, i)]++
		}
	}
	return out
}

// passStream is StreamBatches' stream: it keeps what is sent and, with
// cutAfter > 0, fails the send after that many batches, as a stage
// downstream that goes away.
type passStream struct {
	grpc.ServerStream
	ctx      context.Context
	got      []*commonv1.Batch
	cutAfter int
}

var errCut = errors.New("downstream went away")

func (p *passStream) Context() context.Context { return p.ctx }

func (p *passStream) Send(m *extractorv1.StreamBatchesResponse) error {
	if p.cutAfter > 0 && len(p.got) == p.cutAfter {
		return errCut
	}
	p.got = append(p.got, m.GetBatch())
	return nil
}

// streamPartition streams a partition from cursor at seq.
func streamPartition(t *testing.T, s *Service, src *commonv1.SourceSpec, cursor string, seq int64, size int32, bytes int64, cutAfter int) ([]*commonv1.Batch, error) {
	t.Helper()
	st := &passStream{ctx: context.Background(), cutAfter: cutAfter}
	err := s.StreamBatches(&extractorv1.StreamBatchesRequest{Read: &extractorv1.ReadBatchRequest{
		Source: src, Cursor: cursor, Seq: seq, BatchSize: size, BatchBytes: bytes, JobId: "job", PartitionId: "p0", Table: "audit"}}, st)
	return st.got, err
}

// batchesByReadBatch reads a partition one ReadBatch at a time.
func batchesByReadBatch(t *testing.T, s *Service, src *commonv1.SourceSpec, size int32, bytes int64) []*commonv1.Batch {
	t.Helper()
	var out []*commonv1.Batch
	cursor := ""
	for seq := int64(0); ; seq++ {
		resp, err := s.ReadBatch(context.Background(), &extractorv1.ReadBatchRequest{Source: src, Cursor: cursor, Seq: seq, BatchSize: size, BatchBytes: bytes,
			JobId: "job", PartitionId: "p0", Table: "audit"})
		if err != nil {
			t.Fatalf("ReadBatch at %q: %v", cursor, err)
		}
		b := resp.GetBatch()
		if b.GetNumRows() > 0 {
			out = append(out, b)
		}
		if resp.GetDone() || b.GetNumRows() == 0 {
			return out
		}
		cursor = b.GetLastKey()
	}
}

// batchShape is a batch without its span bookkeeping: what must be equal
// between two reads of the same partition.
func batchShape(t *testing.T, b *commonv1.Batch) string {
	t.Helper()
	var sb strings.Builder
	fmt.Fprintf(&sb, "seq %d first %q last %q rows %d rejects %d:", b.GetSeq(), b.GetFirstKey(), b.GetLastKey(), b.GetNumRows(), len(b.GetRejects()))
	for i, r := range rowsOf(t, b) {
		fmt.Fprintf(&sb, "\n  %s %q", r.ref, keylessRowKey(b, i))
	}
	return sb.String()
}

func shapes(t *testing.T, bs []*commonv1.Batch) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = batchShape(t, b)
	}
	return out
}

// TestMySQLKeylessExact: a MariaDB table without primary key, full of
// identical rows, is planned as one partition and read in one ordered
// pass; the rows read are exactly the source's multiset (by the source's
// own SQL), whether streamed or read batch by batch, in batches cut by
// rows or by bytes; the two ways cut the same batches, with the same
// cursors and source references ("row N", N counting through the pass).
func TestMySQLKeylessExact(t *testing.T) {
	dsn, n := keylessAudit(t)
	want := keylessSourceMultiset(t, dsn)
	s := newService(t)
	src := mysqlSource(dsn, "audit")
	ctx := context.Background()

	d, err := s.DescribeSource(ctx, &extractorv1.DescribeSourceRequest{Source: src})
	if err != nil || len(d.GetPrimaryKey()) != 0 {
		t.Fatalf("describe: %v, %v", d, err)
	}
	p, err := s.PlanPartitions(ctx, &extractorv1.PlanPartitionsRequest{Source: src, Partitions: 4})
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	if len(p.GetRanges()) != 1 || p.GetRanges()[0].GetLower() != "" || p.GetRanges()[0].GetUpper() != "" {
		t.Fatalf("plan of a keyless table: %v, want one whole range", p.GetRanges())
	}

	var first []string
	for _, lim := range []struct {
		size  int32
		bytes int64
	}{{7, 0}, {1, 0}, {1000, 0}, {1000, 4 << 10}} {
		t.Run(fmt.Sprintf("size %d bytes %d", lim.size, lim.bytes), func(t *testing.T) {
			streamed, err := streamPartition(t, s, src, "", 0, lim.size, lim.bytes, 0)
			if err != nil {
				t.Fatalf("stream: %v", err)
			}
			if got := multiset(streamed); !reflect.DeepEqual(got, want) {
				t.Fatalf("streamed rows differ from the source's multiset:\n got %v\nwant %v", got, want)
			}
			total := 0
			for i, b := range streamed {
				total += int(b.GetNumRows())
				if i > 0 && b.GetFirstKey() != streamed[i-1].GetLastKey() {
					t.Fatalf("batch %d starts at %q, batch %d ended at %q", i, b.GetFirstKey(), i-1, streamed[i-1].GetLastKey())
				}
			}
			if total != n || streamed[len(streamed)-1].GetLastKey() != strconv.Itoa(n) {
				t.Fatalf("streamed %d rows ending at %q, want %d", total, streamed[len(streamed)-1].GetLastKey(), n)
			}
			if lim.bytes > 0 && len(streamed) < 3 {
				t.Fatalf("a 4 KiB limit cut %d batches only", len(streamed))
			}
			one := shapes(t, batchesByReadBatch(t, s, src, lim.size, lim.bytes))
			if got := shapes(t, streamed); !reflect.DeepEqual(got, one) {
				t.Fatalf("streamed batches differ from ReadBatch's:\n got %s\nwant %s", strings.Join(got, "\n"), strings.Join(one, "\n"))
			}
			// The pass order is the same in every read.
			var refs []string
			for _, b := range streamed {
				for _, r := range rowsOf(t, b) {
					refs = append(refs, r.ref+" "+strings.Join(r.vals, "|"))
				}
			}
			if first == nil {
				first = refs
			} else if !reflect.DeepEqual(refs, first) {
				t.Fatalf("the pass order changed between reads")
			}
			if refs[0][:6] != "row 1 " || !strings.HasPrefix(refs[n-1], "row "+strconv.Itoa(n)+" ") {
				t.Fatalf("refs %q … %q", refs[0], refs[n-1])
			}
		})
	}
}

// TestMySQLKeylessResume: a streamed pass cut after two batches (a stage
// downstream gone) is resumed, as the orchestrator does, from the last
// batch the loader acknowledged: a new pass in a new transaction that
// skips to the cursor. Every row is read exactly once and the batches are
// those of an uninterrupted read, with the same seqs, cursors and refs; a
// ReadBatch from a cursor in the middle reads the same batch as the pass.
// The cut pass leaves no connection behind that would break the next read.
func TestMySQLKeylessResume(t *testing.T) {
	dsn, n := keylessAudit(t)
	want := keylessSourceMultiset(t, dsn)
	s := newService(t)
	src := mysqlSource(dsn, "audit")
	whole, err := streamPartition(t, s, src, "", 0, 9, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for round := range 3 { // the pool's connections get reused after a cut
		cut, err := streamPartition(t, s, src, "", 0, 9, 0, 2)
		if !errors.Is(err, errCut) || len(cut) != 2 {
			t.Fatalf("cut stream: %d batches, %v", len(cut), err)
		}
		rest, err := streamPartition(t, s, src, cut[1].GetLastKey(), 2, 9, 0, 0)
		if err != nil {
			t.Fatalf("round %d: resume at %q: %v", round, cut[1].GetLastKey(), err)
		}
		got := append(cut, rest...)
		if g := multiset(got); !reflect.DeepEqual(g, want) {
			t.Fatalf("cut and resumed: rows differ from the source's multiset:\n got %v\nwant %v", g, want)
		}
		if g, w := shapes(t, got), shapes(t, whole); !reflect.DeepEqual(g, w) {
			t.Fatalf("cut and resumed batches differ from one pass:\n got %s\nwant %s", strings.Join(g, "\n"), strings.Join(w, "\n"))
		}
	}
	// One batch from the middle, on its own.
	resp, err := s.ReadBatch(context.Background(), &extractorv1.ReadBatchRequest{Source: src, Cursor: whole[3].GetFirstKey(), Seq: 3, BatchSize: 9,
		JobId: "job", PartitionId: "p0", Table: "audit"})
	if err != nil {
		t.Fatal(err)
	}
	if g, w := batchShape(t, resp.GetBatch()), batchShape(t, whole[3]); g != w {
		t.Fatalf("ReadBatch from the middle:\n got %s\nwant %s", g, w)
	}
	// Past the end: an empty batch, done.
	resp, err = s.ReadBatch(context.Background(), &extractorv1.ReadBatchRequest{Source: src, Cursor: strconv.Itoa(n), BatchSize: 9})
	if err != nil || resp.GetBatch().GetNumRows() != 0 || !resp.GetDone() {
		t.Fatalf("read at the end: %v, %v", resp, err)
	}
}

// TestMySQLKeylessRefusals: a keyless table is one partition with an empty
// range and a row-count cursor; following its changes needs a key.
func TestMySQLKeylessRefusals(t *testing.T) {
	dsn := newMySQLDB(t, "CREATE TABLE nokey (v int, at datetime)", "INSERT INTO nokey VALUES (1, NOW()), (1, NOW())")
	dbName := myDBName(t, dsn)
	s := newService(t)
	src := mysqlSource(dsn, "nokey")
	ctx := context.Background()
	_, err := s.ReadBatch(ctx, &extractorv1.ReadBatchRequest{Source: src, Range: &commonv1.KeyRange{Lower: "5"}})
	wantCode(t, err, codes.InvalidArgument, "range", dbName+".nokey has no primary key")
	_, err = s.ReadBatch(ctx, &extractorv1.ReadBatchRequest{Source: src, Cursor: "[1]"})
	wantCode(t, err, codes.InvalidArgument, "cursor", "row count")
	_, err = streamPartition(t, s, src, "-1", 0, 10, 0, 0)
	wantCode(t, err, codes.InvalidArgument, "cursor", "row count")
	_, err = s.ReadChanges(ctx, &extractorv1.ReadChangesRequest{Source: src, Sync: &commonv1.SyncSpec{Kind: &commonv1.SyncSpec_Watermark{Watermark: &commonv1.WatermarkSync{Column: "at"}}}})
	wantCode(t, err, codes.FailedPrecondition, dbName+".nokey has no primary key", "following its changes needs one")
}

// TestMySQLPassSortKeys: what each column type sorts by in a keyless pass.
func TestMySQLPassSortKeys(t *testing.T) {
	cols := []myCol{
		{name: "id", dataType: "int", colType: "int(11)"},
		{name: "name", dataType: "varchar", colType: "varchar(20)", precision: 20},
		{name: "big", dataType: "varchar", colType: "varchar(300)", precision: 300},
		{name: "body", dataType: "longtext", colType: "longtext"},
		{name: "img", dataType: "blob", colType: "blob"},
		{name: "code", dataType: "binary", colType: "binary(16)", precision: 16},
		{name: "state", dataType: "enum", colType: "enum('a','b')"},
		{name: "doc", dataType: "json", colType: "json"},
		{name: "d", dataType: "time", colType: "time"},
	}
	for i := range cols {
		mapMySQL(&cols[i], nil)
	}
	got := myPassOrder(&myTable{cols: cols}, 1024)
	want := "`id`, CAST(`name` AS BINARY), CAST(`big` AS BINARY), SHA2(CAST(`big` AS BINARY), 256), " +
		"CAST(`body` AS BINARY), SHA2(CAST(`body` AS BINARY), 256), `img`, SHA2(`img`, 256), `code`, `state`, " +
		"CAST(CAST(`doc` AS CHAR CHARACTER SET utf8mb4) AS BINARY), SHA2(CAST(CAST(`doc` AS CHAR CHARACTER SET utf8mb4) AS BINARY), 256), `d`"
	if got != want {
		t.Errorf("order\n got %s\nwant %s", got, want)
	}
}
