package extract

import (
	"context"
	"database/sql"
	"fmt"

	"strconv"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"github.com/cutover/cutover/services/kit/mysqltest"
	"google.golang.org/grpc/codes"
)

// binlogDB is a new database, with stmts run, on a throwaway MariaDB that
// writes a row-based binary log.
func binlogDB(t *testing.T, stmts ...string) string {
	t.Helper()
	dsn := mysqltest.NewBinlogDatabase(t)
	mysqlExec(t, dsn, stmts...)
	return dsn
}

// seenChange is one change as the test reads it: op, key and the row's
// values as the batch holds them.
type seenChange struct {
	op   byte
	ref  string
	vals string
}

// readBinlog reads every change after pos in batches of size; it checks
// that positions only move forward (MariaDB GTID sequence numbers).
func readBinlog(t *testing.T, s *Service, src *commonv1.SourceSpec, sync *commonv1.SyncSpec, pos string, size int32) ([]seenChange, string) {
	t.Helper()
	var out []seenChange
	for range 1000 {
		resp, err := s.ReadChanges(context.Background(), &extractorv1.ReadChangesRequest{Source: src, Sync: sync, Position: pos, BatchSize: size, JobId: "job-b", Table: "items"})
		if err != nil {
			t.Fatalf("ReadChanges(%s): %v", pos, err)
		}
		b := resp.GetBatch()
		if seqOf(t, b.GetPosition()) < seqOf(t, pos) {
			t.Fatalf("position moved back: %s → %s", pos, b.GetPosition())
		}
		if b.GetNumRows() == 0 && b.GetPosition() == pos {
			if resp.GetLagRows() != 0 {
				t.Fatalf("no change read, lag %d", resp.GetLagRows())
			}
			return out, pos
		}
		if len(b.GetOps()) != int(b.GetNumRows()) {
			t.Fatalf("%d ops for %d rows", len(b.GetOps()), b.GetNumRows())
		}
		if b.GetNumRows() > 0 && seqOf(t, b.GetPosition()) <= seqOf(t, pos) {
			t.Fatalf("a batch of changes did not move the position: %s → %s", pos, b.GetPosition())
		}
		rows := rowsOf(t, b)
		for i, r := range rows {
			c := seenChange{op: b.GetOps()[i], ref: batch.SourceRef(b, i)}
			if c.op == 'u' {
				c.vals = strings.Join(r.vals, "|")
			}
			out = append(out, c)
		}
		pos = b.GetPosition()
	}
	t.Fatal("no end of changes")
	return nil, ""
}

// seqOf is the sequence number of a mariadb:0-1-N position (0 for none).
func seqOf(t *testing.T, pos string) int64 {
	t.Helper()
	set := strings.TrimPrefix(pos, "mariadb:")
	if set == "" {
		return 0
	}
	i := strings.LastIndexByte(set, '-')
	n, err := strconv.ParseInt(set[i+1:], 10, 64)
	if err != nil || strings.Contains(set, ",") {
		t.Fatalf("position %q: not one domain's GTID", pos)
	}
	return n
}

// TestBinlogReadChanges follows a table through its binary log: every
// insert, update, key move and delete in commit order, whatever the ids'
// order, each once across batch boundaries, other tables' transactions
// passed over; the values rendered from row images are the ones the full
// load reads from the same rows.
func TestBinlogReadChanges(t *testing.T) {
	dsn := binlogDB(t,
		"CREATE TABLE items (id int PRIMARY KEY, v varchar(20), n decimal(10,2), f float, d datetime(3), e enum('a','b'), "+
			"st set('x','y','z'), u int unsigned, mi mediumint unsigned, bt bit(3), bl blob, c char(5), tm time, ok tinyint(1), big bigint unsigned, ts timestamp(6) NULL)",
		"CREATE TABLE other (id int PRIMARY KEY)")
	s := newService(t)
	src := mysqlSource(dsn, "items")
	sync := &commonv1.SyncSpec{Kind: &commonv1.SyncSpec_Binlog{Binlog: &commonv1.BinlogSync{}}}
	resp, err := s.ReadChanges(context.Background(), &extractorv1.ReadChangesRequest{Source: src, Sync: sync, JobId: "job-b", Table: "items"})
	if err != nil {
		t.Fatal(err)
	}
	start := resp.GetBatch().GetPosition()
	if !strings.HasPrefix(start, "mariadb:") || resp.GetBatch().GetNumRows() != 0 {
		t.Fatalf("start %q with %d rows", start, resp.GetBatch().GetNumRows())
	}
	// The writes, and what they must read as: op and key, in commit order.
	row := func(id int) string {
		return fmt.Sprintf("(%d, 'v%d', %d.25, %d.5, '2024-01-02 03:04:05.%03d', 'b', 'x,z', 4294967295, 16777215, b'101', x'00ff%02x', 'ab', '-12:30:00.5', 1, 18446744073709551615, '2024-06-01 12:00:00.000001')", id, id, id, id, id, id)
	}
	mysqlExec(t, dsn,
		"START TRANSACTION", "INSERT INTO items VALUES "+row(3)+", "+row(1)+", "+row(2), "COMMIT",
		"INSERT INTO other VALUES (1)",
		"INSERT INTO items VALUES "+row(100),
		"INSERT INTO items VALUES "+row(50), // after 100: out of id order
		"UPDATE items SET v = 'changed', e = NULL WHERE id = 2",
		"UPDATE items SET id = 7 WHERE id = 3", // a key move
		"DELETE FROM items WHERE id = 1",
		"INSERT INTO other VALUES (2)",
		"START TRANSACTION", "INSERT INTO items (id) VALUES (8)", "UPDATE items SET v = 'late' WHERE id = 8", "COMMIT",
	)
	want := []string{"u id=3", "u id=1", "u id=2", "u id=100", "u id=50", "u id=2", "d id=3", "u id=7", "d id=1", "u id=8", "u id=8"}
	for _, size := range []int32{1, 2, 100} {
		t.Run(fmt.Sprintf("batch %d", size), func(t *testing.T) {
			got, end := readBinlog(t, s, src, sync, start, size)
			var ops []string
			for _, c := range got {
				ops = append(ops, string(c.op)+" "+c.ref)
			}
			if strings.Join(ops, ", ") != strings.Join(want, ", ") {
				t.Fatalf("changes\n got %v\nwant %v", ops, want)
			}
			// Applied in order from the empty table, the changes leave the
			// rows the full load reads now, value for value.
			state := map[string]string{}
			for _, c := range got {
				if c.op == 'd' {
					delete(state, c.ref)
				} else {
					state[c.ref] = c.vals
				}
			}
			full, _ := readAll(t, s, src, &commonv1.KeyRange{}, 100)
			if len(full) != len(state) {
				t.Fatalf("changes leave %d rows, the table has %d", len(state), len(full))
			}
			for _, r := range full {
				if got := state[r.ref]; got != strings.Join(r.vals, "|") {
					t.Errorf("row %s\nfrom the binlog %s\n   full load  %s", r.ref, got, strings.Join(r.vals, "|"))
				}
			}
			if seqOf(t, end) <= seqOf(t, start) {
				t.Fatalf("end %s not after start %s", end, start)
			}
		})
	}
}

// A server without a row-based binary log, and a column whose binlog form
// is not rendered, are refused with what to change.
func TestBinlogRefusals(t *testing.T) {
	s := newService(t)
	sync := &commonv1.SyncSpec{Kind: &commonv1.SyncSpec_Binlog{Binlog: &commonv1.BinlogSync{}}}
	plain := newMySQLDB(t, "CREATE TABLE items (id int PRIMARY KEY)")
	var logBin int
	db, err := sql.Open("mysql", plain)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow("SELECT @@log_bin").Scan(&logBin); err != nil {
		t.Fatal(err)
	}
	if logBin == 0 {
		_, err := s.ReadChanges(context.Background(), &extractorv1.ReadChangesRequest{Source: mysqlSource(plain, "items"), Sync: sync, JobId: "j", Table: "items"})
		wantCode(t, err, codes.FailedPrecondition, "log_bin")
	}
	dsn := binlogDB(t, "CREATE TABLE shapes (id int PRIMARY KEY, g geometry)")
	_, err = s.ReadChanges(context.Background(), &extractorv1.ReadChangesRequest{Source: mysqlSource(dsn, "shapes"), Sync: sync, JobId: "j", Table: "shapes"})
	wantCode(t, err, codes.FailedPrecondition, "column g", "watermark")
	ok := binlogDB(t, "CREATE TABLE items (id int PRIMARY KEY)")
	_, err = s.ReadChanges(context.Background(), &extractorv1.ReadChangesRequest{Source: mysqlSource(ok, "items"), Sync: sync, Position: "oracle:1", JobId: "j", Table: "items"})
	wantCode(t, err, codes.InvalidArgument, "position")
}

// The rendering of binlog values, type by type, against the texts the
// full load's casts read (MySQL's own spelling).
func TestBinlogText(t *testing.T) {
	col := func(dataType, colType string, kind myKind, unsigned bool) *myCol {
		c := &myCol{name: "c", dataType: dataType, colType: colType, kind: kind, unsigned: unsigned}
		if dataType == "bit" {
			c.bits = 3
		}
		return c
	}
	for _, tc := range []struct {
		name string
		c    *myCol
		v    any
		want string
	}{
		{"tinyint unsigned", col("tinyint", "tinyint(3) unsigned", myInt, true), int8(-1), "255"},
		{"smallint", col("smallint", "smallint(6)", myInt, false), int16(-5), "-5"},
		{"mediumint unsigned", col("mediumint", "mediumint(8) unsigned", myInt, true), int32(-1), "16777215"},
		{"int unsigned", col("int", "int(10) unsigned", myInt, true), int32(-1), "4294967295"},
		{"bigint unsigned", col("bigint", "bigint(20) unsigned", myNumeric, true), int64(-1), "18446744073709551615"},
		{"decimal", col("decimal", "decimal(10,2)", myNumeric, false), "-12.50", "-12.50"},
		{"float", col("float", "float", myFloat32, false), float32(144.968), "144.968"},
		{"double", col("double", "double", myFloat64, false), 0.1, "0.1"},
		{"enum", col("enum", "enum('a','it''s')", myText, false), int64(2), "it's"},
		{"enum empty", col("enum", "enum('a')", myText, false), int64(0), ""},
		{"set", col("set", "set('x','y','z')", myText, false), int64(5), "x,z"},
		{"char", col("char", "char(5)", myText, false), "ab   ", "ab"},
		{"bit", col("bit", "bit(3)", myBits, false), int64(5), "\x05"},
		{"year", col("year", "year(4)", myInt, false), 2024, "2024"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := binlogText(tc.c, tc.v)
			if err != nil || string(got) != tc.want {
				t.Fatalf("binlogText(%v) = %q, %v; want %q", tc.v, got, err, tc.want)
			}
		})
	}
	latin := &myCol{name: "c", dataType: "varchar", kind: myText, charset: "latin1"}
	if got, err := binlogText(latin, "caf\xe9"); err != nil || string(got) != "café" {
		t.Fatalf("latin1: %q %v", got, err)
	}
}

// FuzzBinlogPosition: any text is a position or an InvalidArgument, never
// a panic; a position prints as a text that parses to the same set.
func FuzzBinlogPosition(f *testing.F) {
	for _, s := range []string{"mariadb:0-1-42", "mariadb:0-1-5,1-2-9", "mariadb:", "mysql:3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5:7",
		"mysql:", "oracle:1", "mariadb:x-y-z", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parseBinlogPos(s)
		if err != nil {
			wantCode(t, toStatus(err), codes.InvalidArgument, "position")
			return
		}
		again, err := parseBinlogPos(p.String())
		if err != nil || again.String() != p.String() || !again.set.Equal(p.set) {
			t.Fatalf("%q printed as %q, which parses to %v, %v", s, p.String(), again.set, err)
		}
	})
}

// TestBinlogSchemaChange: a statement of another table passes; against
// the job's columns (ReadChangesRequest.columns) a nullable column added
// at the end is carried (NULL in rows logged before it), one added with a
// default, dropped or retyped stops naming the column and both
// definitions; without them any change of the row width stops.
func TestBinlogSchemaChange(t *testing.T) {
	s := newService(t)
	sync := &commonv1.SyncSpec{Kind: &commonv1.SyncSpec_Binlog{Binlog: &commonv1.BinlogSync{}}}
	for _, tc := range []struct {
		name    string
		unknown bool // the request carries no columns
		stmts   []string
		rows    string // carried: the rows read, until caught up
		want    []string
	}{
		{"another table's DDL passes", false, []string{"CREATE TABLE other (id int PRIMARY KEY)", "INSERT INTO items VALUES (1, 'a', 1)"}, "u id=1 1|a|1", nil},
		{"ADD COLUMN is carried", false, []string{"INSERT INTO items VALUES (1, 'a', 1)", "ALTER TABLE items ADD COLUMN w int NULL, ADD INDEX (w)",
			"INSERT INTO items VALUES (2, 'b', 2, 5)", "UPDATE items SET w = 7 WHERE id = 1"}, "u id=1 1|a|1|<NULL>,u id=2 2|b|2|5,u id=1 1|a|1|7", nil},
		{"ADD COLUMN with a default", false, []string{"ALTER TABLE items ADD COLUMN w int NOT NULL DEFAULT 3", "INSERT INTO items VALUES (1, 'a', 1, 2)"}, "",
			[]string{"column w int", "added to", "with a default or NOT NULL"}},
		{"ADD COLUMN FIRST is quoted", false, []string{"ALTER TABLE items ADD COLUMN w int NULL FIRST", "INSERT INTO items VALUES (2, 1, 'a', 1)"}, "",
			[]string{"changed while following", "ADD COLUMN w int NULL FIRST"}},
		{"DROP COLUMN names it", false, []string{"INSERT INTO items VALUES (1, 'a', 1)", "ALTER TABLE items DROP COLUMN qty"}, "",
			[]string{"column qty int", "no longer in the table", "now has id int", "v varchar(20)"}},
		{"retype names both", false, []string{"ALTER TABLE items MODIFY qty bigint"}, "",
			[]string{"column qty of", "changed type while following: int", "bigint"}},
		{"without the job's columns a width change stops", true, []string{"INSERT INTO items VALUES (1, 'a', 1)", "ALTER TABLE items DROP COLUMN qty"}, "",
			[]string{"has 3 columns, the table has 2", "changed while following"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dsn := binlogDB(t, "CREATE TABLE items (id int PRIMARY KEY, v varchar(20), qty int)")
			src := mysqlSource(dsn, "items")
			desc, err := s.DescribeSource(ctx, &extractorv1.DescribeSourceRequest{Source: src})
			if err != nil {
				t.Fatal(err)
			}
			known := desc.GetColumns()
			if tc.unknown {
				known = nil
			}
			resp, err := s.ReadChanges(ctx, &extractorv1.ReadChangesRequest{Source: src, Sync: sync, JobId: "j", Table: "items", Columns: known})
			if err != nil {
				t.Fatal(err)
			}
			mysqlExec(t, dsn, tc.stmts...)
			pos := resp.GetBatch().GetPosition()
			var got []string
			for range 10 {
				resp, err = s.ReadChanges(ctx, &extractorv1.ReadChangesRequest{Source: src, Sync: sync, Position: pos, JobId: "j", Table: "items", BatchSize: 100, Columns: known})
				if err != nil {
					break
				}
				for i, r := range rowsOf(t, resp.GetBatch()) {
					got = append(got, string(resp.GetBatch().GetOps()[i])+" "+r.ref+" "+strings.Join(r.vals, "|"))
				}
				pos = resp.GetBatch().GetPosition()
				if resp.GetLagRows() == 0 {
					break
				}
			}
			if tc.want == nil {
				if err != nil || strings.Join(got, ",") != tc.rows {
					t.Fatalf("rows %q, %v; want %q", got, err, tc.rows)
				}
				return
			}
			wantCode(t, err, codes.FailedPrecondition, tc.want...)
		})
	}
}

// TRUNCATE of the followed table: with on_truncate APPLY the rows before
// it come first, then an empty batch past it that says so, then the rows
// after it; by default it stops the follower, naming the statement.
func TestBinlogTruncate(t *testing.T) {
	s := newService(t)
	dsn := binlogDB(t, "CREATE TABLE items (id int PRIMARY KEY)")
	src := mysqlSource(dsn, "items")
	read := func(policy commonv1.TruncatePolicy, pos string) (*extractorv1.ReadChangesResponse, error) {
		sync := &commonv1.SyncSpec{OnTruncate: policy, Kind: &commonv1.SyncSpec_Binlog{Binlog: &commonv1.BinlogSync{}}}
		return s.ReadChanges(context.Background(), &extractorv1.ReadChangesRequest{Source: src, Sync: sync, Position: pos, JobId: "j", Table: "items", BatchSize: 100})
	}
	start, err := read(commonv1.TruncatePolicy_TRUNCATE_POLICY_APPLY, "")
	if err != nil {
		t.Fatal(err)
	}
	mysqlExec(t, dsn, "INSERT INTO items VALUES (1)", "TRUNCATE TABLE items", "INSERT INTO items VALUES (2)")
	pos := start.GetBatch().GetPosition()
	var got []string
	for range 3 {
		r, err := read(commonv1.TruncatePolicy_TRUNCATE_POLICY_APPLY, pos)
		if err != nil {
			t.Fatal(err)
		}
		step := fmt.Sprintf("%d rows truncated=%v", r.GetBatch().GetNumRows(), r.GetSourceTruncated())
		if seqOf(t, r.GetBatch().GetPosition()) <= seqOf(t, pos) {
			t.Fatalf("%s did not move the position %s", step, pos)
		}
		got, pos = append(got, step), r.GetBatch().GetPosition()
	}
	if want := "1 rows truncated=false, 0 rows truncated=true, 1 rows truncated=false"; strings.Join(got, ", ") != want {
		t.Fatalf("reads: %s; want %s", strings.Join(got, ", "), want)
	}
	first, err := read(commonv1.TruncatePolicy_TRUNCATE_POLICY_UNSPECIFIED, start.GetBatch().GetPosition())
	if err != nil || first.GetBatch().GetNumRows() != 1 {
		t.Fatalf("before the TRUNCATE: %v %v", first, err)
	}
	_, err = read(commonv1.TruncatePolicy_TRUNCATE_POLICY_UNSPECIFIED, first.GetBatch().GetPosition())
	wantCode(t, err, codes.FailedPrecondition, "TRUNCATE TABLE items")
}

func TestBinlogTouches(t *testing.T) {
	r := &binlogRead{t: &myTable{db: "shop", name: "Items"}, db: "shop"}
	for _, tc := range []struct {
		schema, q string
		want      bool
	}{
		{"shop", "ALTER TABLE items ADD COLUMN w int", true},
		{"shop", "alter table `items` drop column qty", true},
		{"other", "ALTER TABLE shop.items ADD COLUMN w int", true},
		{"other", "ALTER TABLE `shop`.`items` ADD COLUMN w int", true},
		{"shop", "TRUNCATE TABLE items", true},
		{"shop", "RENAME TABLE items TO items_old", true},
		{"shop", "DROP TABLE IF EXISTS t1,items", true},
		{"other", "ALTER TABLE items ADD COLUMN w int", false},      // other.items
		{"shop", "ALTER TABLE other.items ADD COLUMN w int", false}, // another database's
		{"shop", "CREATE TABLE items_archive (id int)", false},
		{"shop", "CREATE TABLE x.items_b (id int)", false},
		{"shop", "INSERT INTO items VALUES (1)", false},
		{"shop", "ALTER TABLE orders ADD COLUMN items int", false},
		{"shop", "CREATE INDEX ix ON items (id)", false},
		{"shop", "ALTER ONLINE TABLE items ADD COLUMN w int", true},
		{"shop", "TRUNCATE items", true},
		{"shop", "CREATE TABLE IF NOT EXISTS items (id int)", true},
		{"shop", "CREATE TABLE copy LIKE items", false},
		{"shop", "RENAME TABLE a TO b, items TO items_old", true},
		{"shop", "DROP TABLE a,b", false},
	} {
		if got := r.touches(tc.schema, tc.q); got != tc.want {
			t.Errorf("touches(%s, %q) = %v, want %v", tc.schema, tc.q, got, tc.want)
		}
	}
}

// TestBinlogLag: past a full batch the rows still to come are counted.
func TestBinlogLag(t *testing.T) {
	s := newService(t)
	dsn := binlogDB(t, "CREATE TABLE items (id int PRIMARY KEY, v int)")
	src := mysqlSource(dsn, "items")
	sync := &commonv1.SyncSpec{Kind: &commonv1.SyncSpec_Binlog{Binlog: &commonv1.BinlogSync{}}}
	read := func(pos string) *extractorv1.ReadChangesResponse {
		t.Helper()
		r, err := s.ReadChanges(context.Background(), &extractorv1.ReadChangesRequest{Source: src, Sync: sync, Position: pos, JobId: "j", Table: "items", BatchSize: 10})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	pos := read("").GetBatch().GetPosition()
	var stmts []string
	for i := 1; i <= 25; i++ {
		stmts = append(stmts, fmt.Sprintf("INSERT INTO items VALUES (%d, 0)", i))
	}
	stmts = append(stmts, "UPDATE items SET v = 1 WHERE id <= 5", "CREATE TABLE other (id int)")
	mysqlExec(t, dsn, stmts...)
	var lags []int64
	for range 5 {
		r := read(pos)
		lags = append(lags, r.GetLagRows())
		pos = r.GetBatch().GetPosition()
		if r.GetBatch().GetNumRows() == 0 {
			break
		}
	}
	if got := fmt.Sprint(lags); got != "[20 10 0 0]" {
		t.Errorf("lag after each read %s, want [20 10 0 0] (30 row changes, batches of 10)", got)
	}
}
