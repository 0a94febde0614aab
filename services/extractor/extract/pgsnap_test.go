package extract

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"
)

// pgExec runs statements on a connection of its own.
func pgExec(t testing.TB, url string, stmts ...string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func openSnap(t testing.TB, s *Service, src *commonv1.SourceSpec) string {
	t.Helper()
	resp, err := s.OpenSnapshot(context.Background(), &extractorv1.OpenSnapshotRequest{Source: src})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetSnapshot() == "" {
		t.Fatal("postgres source got no snapshot")
	}
	return resp.GetSnapshot()
}

// readJob plans n partitions in snap and reads each, in plan order, in
// batches of size; it returns the rows and the number of ranges.
func readJob(t testing.TB, s *Service, src *commonv1.SourceSpec, snap string, n, size int) ([]row, int) {
	t.Helper()
	ctx := context.Background()
	pr, err := s.PlanPartitions(ctx, &extractorv1.PlanPartitionsRequest{Source: src, Partitions: int32(n), Snapshot: snap})
	if err != nil {
		t.Fatalf("plan %d: %v", n, err)
	}
	ranges := pr.GetRanges()
	for i, r := range ranges {
		if (i == 0) != (r.GetLower() == "") || (i == len(ranges)-1) != (r.GetUpper() == "") || i > 0 && r.GetLower() != ranges[i-1].GetUpper() {
			t.Fatalf("ranges not contiguous with open ends: %v", ranges)
		}
	}
	var out []row
	for _, r := range ranges {
		cursor := ""
		for i := 0; ; i++ {
			if i > 100000 {
				t.Fatal("read does not end")
			}
			resp, err := s.ReadBatch(ctx, &extractorv1.ReadBatchRequest{Source: src, Range: r, Cursor: cursor, BatchSize: int32(size), Snapshot: snap})
			if err != nil {
				t.Fatalf("read %v at %q: %v", r, cursor, err)
			}
			b := resp.GetBatch()
			if int(b.GetNumRows()) > size || !resp.GetDone() && b.GetNumRows() == 0 {
				t.Fatalf("batch of %d rows, size %d, done %v", b.GetNumRows(), size, resp.GetDone())
			}
			out = append(out, rowsOf(t, b)...)
			if resp.GetDone() {
				break
			}
			cursor = b.GetLastKey()
		}
	}
	return out, len(ranges)
}

func rowVals(rows []row) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = strings.Join(r.vals, "|")
	}
	return out
}

func sortedVals(rows []row) []string {
	v := rowVals(rows)
	sort.Strings(v)
	return v
}

// TestPGSnapshotIsolatesJob changes the source after OpenSnapshot: a job
// that plans and reads in the snapshot sees the data as it was, whatever
// the partitioning, while a read without it sees the change.
func TestPGSnapshotIsolatesJob(t *testing.T) {
	url := newDB(t,
		`CREATE TABLE orders (id int8 PRIMARY KEY, note text)`,
		`INSERT INTO orders SELECT g, 'n' || g FROM generate_series(1, 500) g`,
		`CREATE TABLE codes (code text PRIMARY KEY, v int)`,
		`INSERT INTO codes SELECT 'c' || g, g FROM generate_series(1, 300) g`,
		`CREATE TABLE loose (a int, b text)`,
		`INSERT INTO loose SELECT g % 50, 'x' || (g % 7) FROM generate_series(1, 2000) g`,
	)
	s := newService(t)
	for _, table := range []string{"orders", "codes", "loose"} {
		t.Run(table, func(t *testing.T) {
			src := pgSource(url, "", table)
			snap := openSnap(t, s, src)
			before, _ := readJob(t, s, src, snap, 1, 1000)
			mutate := map[string][]string{
				"orders": {`DELETE FROM orders WHERE id % 10 = 0`, `UPDATE orders SET note = 'changed' WHERE id < 100`, `INSERT INTO orders SELECT g, 'new' FROM generate_series(501, 600) g`},
				"codes":  {`DELETE FROM codes WHERE v % 3 = 0`, `UPDATE codes SET v = -v`, `INSERT INTO codes VALUES ('a-new', 0), ('zz', 0)`},
				"loose":  {`DELETE FROM loose WHERE a = 3`, `UPDATE loose SET b = 'moved' WHERE a < 10`, `INSERT INTO loose SELECT 1, 'x1' FROM generate_series(1, 100)`},
			}[table]
			pgExec(t, url, mutate...)
			if len(before) == 0 {
				t.Fatal("nothing read")
			}
			for _, n := range []int{1, 4} {
				got, _ := readJob(t, s, src, snap, n, 37)
				if table == "loose" {
					// No key: the order is the ctid order, compare as multisets.
					if !reflect.DeepEqual(sortedVals(got), sortedVals(before)) {
						t.Fatalf("%d partitions: %d rows differ from the %d at OpenSnapshot", n, len(got), len(before))
					}
					continue
				}
				if !reflect.DeepEqual(got, before) {
					t.Fatalf("%d partitions: %d rows differ from the %d at OpenSnapshot", n, len(got), len(before))
				}
			}
			if table != "loose" {
				now, _ := readJob(t, s, src, "", 1, 1000)
				if reflect.DeepEqual(now, before) {
					t.Fatal("a read without the snapshot did not see the change either")
				}
			}
			if _, err := s.CloseSnapshot(context.Background(), &extractorv1.CloseSnapshotRequest{Source: src, Snapshot: snap}); err != nil {
				t.Fatal(err)
			}
			_, err := s.ReadBatch(context.Background(), &extractorv1.ReadBatchRequest{Source: src, Snapshot: snap, BatchSize: 10})
			wantCode(t, err, codes.FailedPrecondition, "snapshot", "lost")
			_, err = s.PlanPartitions(context.Background(), &extractorv1.PlanPartitionsRequest{Source: src, Snapshot: snap, Partitions: 2})
			wantCode(t, err, codes.FailedPrecondition, "snapshot", "lost")
			// Closing again is not an error.
			if _, err := s.CloseSnapshot(context.Background(), &extractorv1.CloseSnapshotRequest{Source: src, Snapshot: snap}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPGSnapshotLost covers ids whose exporting session is gone: another
// extractor's that stopped, and a live name with another session's id
// (exported names are reused by later sessions).
func TestPGSnapshotLost(t *testing.T) {
	url := newDB(t, `CREATE TABLE t (id int PRIMARY KEY)`, `INSERT INTO t VALUES (1)`)
	src := pgSource(url, "", "t")
	s := newService(t)
	other := New()
	gone := openSnap(t, other, src)
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	live := openSnap(t, s, src)
	sid, err := parsePGSnapshot(live)
	if err != nil {
		t.Fatal(err)
	}
	sid.start++
	forged := sid.String()
	for _, id := range []string{gone, forged} {
		_, err := s.ReadBatch(context.Background(), &extractorv1.ReadBatchRequest{Source: src, Snapshot: id})
		wantCode(t, err, codes.FailedPrecondition, "source snapshot", "lost")
	}
	resp, err := s.ReadBatch(context.Background(), &extractorv1.ReadBatchRequest{Source: src, Snapshot: live})
	if err != nil || resp.GetBatch().GetNumRows() != 1 {
		t.Fatalf("live snapshot: %v", err)
	}
}

func TestPGSnapshotErrors(t *testing.T) {
	url := newDB(t, `CREATE TABLE t (id int PRIMARY KEY)`, `CREATE TABLE loose (a int)`, `CREATE VIEW v AS SELECT a FROM loose`)
	s := newService(t)
	ctx := context.Background()
	src := pgSource(url, "", "t")
	csv := csvSource(&commonv1.CsvSource{Path: writeFile(t, "id\n1\n")})
	for _, id := range []string{"garbage", "pg:", "pg:0'; DROP TABLE t; --:1:1", "pg:00000003-0000001B-1:1:1'", "00000003-0000001B-1", "pg:00000003-0000001b-1:12:34"} {
		_, err := s.ReadBatch(ctx, &extractorv1.ReadBatchRequest{Source: src, Snapshot: id})
		wantCode(t, err, codes.InvalidArgument, "snapshot")
		_, err = s.PlanPartitions(ctx, &extractorv1.PlanPartitionsRequest{Source: src, Snapshot: id})
		wantCode(t, err, codes.InvalidArgument, "snapshot")
		_, err = s.CloseSnapshot(ctx, &extractorv1.CloseSnapshotRequest{Source: src, Snapshot: id})
		wantCode(t, err, codes.InvalidArgument, "snapshot")
	}
	// Sources without shared snapshots get none and take none.
	resp, err := s.OpenSnapshot(ctx, &extractorv1.OpenSnapshotRequest{Source: csv})
	if err != nil || resp.GetSnapshot() != "" {
		t.Fatalf("csv snapshot %q, %v", resp.GetSnapshot(), err)
	}
	snap := openSnap(t, s, src)
	_, err = s.ReadBatch(ctx, &extractorv1.ReadBatchRequest{Source: csv, Snapshot: snap})
	wantCode(t, err, codes.InvalidArgument, "snapshot")
	_, err = s.OpenSnapshot(ctx, &extractorv1.OpenSnapshotRequest{Source: pgSource(url, "", "nope")})
	wantCode(t, err, codes.NotFound, "public.nope")
	_, err = s.OpenSnapshot(ctx, &extractorv1.OpenSnapshotRequest{Source: pgSource(url, "", "")})
	wantCode(t, err, codes.InvalidArgument, "source.postgres.table")
	// No primary key: ctid needs a snapshot, and a view has no ctid.
	_, err = s.ReadBatch(ctx, &extractorv1.ReadBatchRequest{Source: pgSource(url, "", "loose")})
	wantCode(t, err, codes.FailedPrecondition, "public.loose", "snapshot")
	_, err = s.PlanPartitions(ctx, &extractorv1.PlanPartitionsRequest{Source: pgSource(url, "", "loose"), Partitions: 3})
	wantCode(t, err, codes.FailedPrecondition, "public.loose", "snapshot")
	_, err = s.ReadBatch(ctx, &extractorv1.ReadBatchRequest{Source: pgSource(url, "", "v"), Snapshot: snap})
	wantCode(t, err, codes.FailedPrecondition, "public.v", "not a plain table")
	_, err = s.ReadBatch(ctx, &extractorv1.ReadBatchRequest{Source: pgSource(url, "", "loose"), Snapshot: snap, Cursor: "(1,x)"})
	wantCode(t, err, codes.InvalidArgument, "cursor")
	// The snapshot holds its table against TRUNCATE, which is not MVCC-safe.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SET lock_timeout = '100ms'"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "TRUNCATE t"); err == nil || !strings.Contains(err.Error(), "55P03") {
		t.Fatalf("TRUNCATE under an open snapshot: %v, want a lock timeout", err)
	}
}

// TestPGSnapshotCloseReleases checks that Close ends every connection: the
// snapshots' and the pool's.
func TestPGSnapshotCloseReleases(t *testing.T) {
	url := newDB(t, `CREATE TABLE t (id int PRIMARY KEY)`, `INSERT INTO t VALUES (1), (2)`)
	src := pgSource(url, "", "t")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	backends := func() int {
		t.Helper()
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	s := New()
	var snaps []string
	for range 3 {
		snaps = append(snaps, openSnap(t, s, src))
	}
	for _, snap := range snaps {
		if rows, _ := readJob(t, s, src, snap, 2, 1); len(rows) != 2 {
			t.Fatalf("read %d rows", len(rows))
		}
	}
	if n := backends(); n < 4 {
		t.Fatalf("%d backends with 3 snapshots and a pool", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Backends exit after their client has gone: poll a bounded number of
	// times (the count, not the time, is what is checked).
	n := backends()
	for i := 0; i < 500 && n > 0; i++ {
		time.Sleep(10 * time.Millisecond)
		n = backends()
	}
	if n != 0 {
		t.Fatalf("%d backends left after Close", n)
	}
	_, err = s.OpenSnapshot(ctx, &extractorv1.OpenSnapshotRequest{Source: src})
	wantCode(t, err, codes.Unavailable)
}

// TestPGNoKeyPartitions reads a table without primary key, full of
// duplicates and holes, with 1 and 5 partitions: the same multiset of rows,
// each addressed by its ctid.
func TestPGNoKeyPartitions(t *testing.T) {
	url := newDB(t,
		`CREATE TABLE dup (a int, b text, c numeric)`,
		`INSERT INTO dup SELECT g % 13, repeat('y', g % 40), (g % 5) / 3.0 FROM generate_series(1, 5000) g`,
		`INSERT INTO dup SELECT 1, 'same', 1 FROM generate_series(1, 300)`,
		// Holes after ANALYZE: the statistics overstate the rows per
		// block, so batches need more than their first window of blocks.
		`ANALYZE dup`,
		`DELETE FROM dup WHERE a = 7 OR a < 6`,
	)
	s := newService(t)
	src := pgSource(url, "", "dup")
	snap := openSnap(t, s, src)
	want := func() []string {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		rows, err := conn.Query(ctx, `SELECT a::text || '|' || b || '|' || c::text FROM dup`)
		if err != nil {
			t.Fatal(err)
		}
		out, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(out)
		return out
	}()
	one, n1 := readJob(t, s, src, snap, 1, 500)
	five, n5 := readJob(t, s, src, snap, 5, 333)
	if n1 != 1 || n5 != 5 {
		t.Fatalf("%d and %d ranges, want 1 and 5", n1, n5)
	}
	if got := sortedVals(one); !reflect.DeepEqual(got, want) {
		t.Fatalf("1 partition: %d rows, want %d", len(got), len(want))
	}
	if got := sortedVals(five); !reflect.DeepEqual(got, want) {
		t.Fatalf("5 partitions: %d rows, want %d", len(got), len(want))
	}
	seen := map[string]bool{}
	for _, r := range five {
		if _, ok := parseTID(strings.TrimPrefix(r.ref, "ctid=")); !ok || seen[r.ref] {
			t.Fatalf("source ref %q is not a fresh ctid", r.ref)
		}
		seen[r.ref] = true
	}
	// The table is described without a key.
	d, err := s.DescribeSource(context.Background(), &extractorv1.DescribeSourceRequest{Source: src})
	if err != nil || len(d.GetPrimaryKey()) != 0 {
		t.Fatalf("primary key %v, %v", d.GetPrimaryKey(), err)
	}
}

// TestPGTextAndCompositeKeyPartitions reads a text-keyed and a
// composite-keyed table (the latter large enough to be sampled) with 1, 3
// and 16 partitions: the same rows in the same order.
func TestPGTextAndCompositeKeyPartitions(t *testing.T) {
	url := newDB(t,
		`CREATE TABLE words (w text PRIMARY KEY, n int)`,
		`INSERT INTO words SELECT md5(g::text) || CASE WHEN g % 3 = 0 THEN ' é,"x"' ELSE '' END, g FROM generate_series(1, 1000) g`,
		`INSERT INTO words VALUES ('', 0), ('A', 1), ('a', 2), ('Z''q', 3), ('[1,2]', 4)`,
		`CREATE TABLE lines (region text, no int, day date, qty int, PRIMARY KEY (region, no, day))`,
		`INSERT INTO lines SELECT 'r' || (g % 17), g % 1000, DATE '2024-01-01' + (g % 3), g FROM generate_series(1, 30000) g`,
		`ANALYZE lines`,
	)
	s := newService(t)
	for _, table := range []string{"words", "lines"} {
		t.Run(table, func(t *testing.T) {
			src := pgSource(url, "", table)
			base, _ := readJob(t, s, src, "", 1, 4000)
			if len(base) < 1000 {
				t.Fatalf("read %d rows", len(base))
			}
			for _, n := range []int{3, 16} {
				got, ranges := readJob(t, s, src, "", n, 997)
				if ranges != n {
					t.Errorf("%d partitions planned as %d ranges", n, ranges)
				}
				if !reflect.DeepEqual(got, base) {
					t.Fatalf("%d partitions: %d rows differ from the %d read in one", n, len(got), len(base))
				}
			}
		})
	}
}

// TestMySQLTextAndCompositeKeyPartitions is the same on MariaDB/MySQL.
func TestMySQLTextAndCompositeKeyPartitions(t *testing.T) {
	var words, lines []string
	for i := 1; i <= 600; i++ {
		words = append(words, fmt.Sprintf("('w%05d%s', %d)", (i*7919)%100000, []string{"", " é", ",\"q\"", "Ü"}[i%4], i))
		lines = append(lines, fmt.Sprintf("('r%d', %d, '2024-01-0%d', %d)", i%7, i%50, 1+i%3, i))
	}
	dsn := newMySQLDB(t,
		"CREATE TABLE words (w varchar(40) PRIMARY KEY, n int)",
		"INSERT INTO words VALUES "+strings.Join(words, ","),
		"CREATE TABLE item_lines (region varchar(5), no int, day date, qty int, PRIMARY KEY (region, no, day))",
		"INSERT IGNORE INTO item_lines VALUES "+strings.Join(lines, ","),
	)
	s := newService(t)
	for _, table := range []string{"words", "item_lines"} {
		t.Run(table, func(t *testing.T) {
			src := mysqlSource(dsn, table)
			base, _ := readJob(t, s, src, "", 1, 5000)
			if len(base) < 300 {
				t.Fatalf("read %d rows", len(base))
			}
			for _, n := range []int{3, 16} {
				got, ranges := readJob(t, s, src, "", n, 41)
				if ranges != n {
					t.Errorf("%d partitions planned as %d ranges", n, ranges)
				}
				if !reflect.DeepEqual(got, base) {
					t.Fatalf("%d partitions: %d rows differ from the %d read in one", n, len(got), len(base))
				}
			}
		})
	}
	// MySQL has no shared snapshots: the id is empty.
	resp, err := s.OpenSnapshot(context.Background(), &extractorv1.OpenSnapshotRequest{Source: mysqlSource(dsn, "words")})
	if err != nil || resp.GetSnapshot() != "" {
		t.Fatalf("mysql snapshot %q, %v", resp.GetSnapshot(), err)
	}
}

func FuzzParseTID(f *testing.F) {
	for _, s := range []string{"(0,0)", "(12,3)", "(4294967295,65535)", "(4294967296,1)", "(1,65536)", "(,1)", "(1,)", "(-1,2)", "(01,2)", "( 1,2)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, ok := parseTID(s)
		if !ok {
			return
		}
		if v.block < 0 || v.block > 1<<32-1 || v.off < 0 || v.off > 1<<16-1 {
			t.Fatalf("%q parsed out of range: %+v", s, v)
		}
		if back, ok := parseTID(v.String()); !ok || back != v {
			t.Fatalf("%q → %v → %v", s, v, back)
		}
	})
}

func FuzzParsePGSnapshot(f *testing.F) {
	for _, s := range []string{"pg:00000003-0000001B-1:123:1718000000123456", "pg:0000001B-1:1:-5", "pg:00000003-0000001B-1:123:1'", "pg:x", "pg:00000003-0000001B-99999999999:1:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := parsePGSnapshot(s)
		if err != nil {
			return
		}
		for _, r := range id.name {
			if !(r >= '0' && r <= '9' || r >= 'A' && r <= 'F' || r == '-') {
				t.Fatalf("%q let %q into the SQL literal", s, id.name)
			}
		}
		if back, err := parsePGSnapshot(id.String()); err != nil || back != id {
			t.Fatalf("%q → %+v → %+v, %v", s, id, back, err)
		}
	})
}

func FuzzCursorParts(f *testing.F) {
	f.Add("a", "b", 2)
	f.Add(`["x"`, "", 1)
	f.Add("é,\"", "\\", 3)
	f.Fuzz(func(t *testing.T, a, b string, n int) {
		n = 1 + (n&3)%3
		parts := [][]byte{[]byte(a), []byte(b), []byte(a + b)}[:n]
		got, ok := cursorParts(cursorText(parts), n)
		if !ok {
			t.Fatalf("%q does not parse back", cursorText(parts))
		}
		for i := range got {
			// Key texts come from UTF-8 databases; invalid bytes only
			// need to survive as some valid text.
			if utf8.Valid(parts[i]) && string(parts[i]) != got[i] {
				t.Fatalf("part %d: %q → %q", i, parts[i], got[i])
			}
		}
		// Arbitrary text either parses into n parts or is refused.
		if p, ok := cursorParts(a, n); ok && len(p) != n {
			t.Fatalf("%q parsed into %d parts, want %d", a, len(p), n)
		}
	})
}

// TestPGSnapshotClosedByAnotherReplica: behind one address, CloseSnapshot
// may reach a replica that does not hold the snapshot; it must still end.
func TestPGSnapshotClosedByAnotherReplica(t *testing.T) {
	url := newDB(t, `CREATE TABLE t (id int PRIMARY KEY)`, `INSERT INTO t VALUES (1)`)
	src := pgSource(url, "", "t")
	holder, other := newService(t), newService(t)
	id := openSnap(t, holder, src)
	if _, err := other.CloseSnapshot(context.Background(), &extractorv1.CloseSnapshotRequest{Source: src, Snapshot: id}); err != nil {
		t.Fatalf("CloseSnapshot on the other replica: %v", err)
	}
	var err error
	for i := 0; i < 50; i++ { // the terminated session goes away asynchronously
		if _, err = holder.ReadBatch(context.Background(), &extractorv1.ReadBatchRequest{Source: src, Snapshot: id}); err != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	wantCode(t, err, codes.FailedPrecondition, "source snapshot", "lost")
}
