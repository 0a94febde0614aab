package extract

import (
	"context"
	"database/sql"
	"fmt"
	"math/big"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// sqliteDB creates a database file from statements and returns its path.
func sqliteDB(t testing.TB, stmts ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "legacy.db")
	db, err := sql.Open("sqlite", p)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	return p
}

func sqliteSource(path, table string) *commonv1.SourceSpec {
	return &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Sqlite{Sqlite: &commonv1.SqliteSource{Path: path, Table: table}}}
}

const sqliteSchema = `CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL)`

const sqliteOrders = `CREATE TABLE orders (
	id INTEGER PRIMARY KEY,
	customer_id INT REFERENCES customers,
	qty INTEGER,
	price REAL,
	name VARCHAR(20),
	data BLOB,
	anything,
	amount DECIMAL(10,2),
	flag BOOLEAN,
	born DATE,
	seen DATETIME,
	misc NUMERIC
)`

func TestSQLiteDescribe(t *testing.T) {
	p := sqliteDB(t, sqliteSchema, sqliteOrders,
		`INSERT INTO customers VALUES (1, 'a')`,
		`INSERT INTO orders (id, customer_id) VALUES (1, 1), (2, 1), (3, NULL)`,
		`CREATE TABLE lines (order_id INTEGER NOT NULL, line INTEGER NOT NULL, sku TEXT, PRIMARY KEY (order_id, line),
			FOREIGN KEY (order_id) REFERENCES orders (id)) WITHOUT ROWID`)
	s := newService(t)
	resp, err := s.DescribeSource(context.Background(), &extractorv1.DescribeSourceRequest{Source: sqliteSource(p, "orders")})
	if err != nil {
		t.Fatal(err)
	}
	type col struct {
		name, src string
		typ       commonv1.ColumnType
		pg        string
		nullable  bool
	}
	var got []col
	for _, c := range resp.GetColumns() {
		got = append(got, col{c.GetName(), c.GetSourceType(), c.GetType(), c.GetPgType(), c.GetNullable()})
	}
	const (
		i64  = commonv1.ColumnType_COLUMN_TYPE_INT64
		f64  = commonv1.ColumnType_COLUMN_TYPE_FLOAT64
		txt  = commonv1.ColumnType_COLUMN_TYPE_TEXT
		byt  = commonv1.ColumnType_COLUMN_TYPE_BYTES
		num  = commonv1.ColumnType_COLUMN_TYPE_NUMERIC
		boo  = commonv1.ColumnType_COLUMN_TYPE_BOOL
		date = commonv1.ColumnType_COLUMN_TYPE_DATE
		ts   = commonv1.ColumnType_COLUMN_TYPE_TIMESTAMPTZ
	)
	want := []col{
		{"id", "INTEGER", i64, "bigint", true},
		{"customer_id", "INT", i64, "bigint", true},
		{"qty", "INTEGER", i64, "bigint", true},
		{"price", "REAL", f64, "double precision", true},
		{"name", "VARCHAR(20)", txt, "text", true},
		{"data", "BLOB", byt, "bytea", true},
		{"anything", "", byt, "bytea", true},
		{"amount", "DECIMAL(10,2)", num, "numeric(10,2)", true},
		{"flag", "BOOLEAN", boo, "boolean", true},
		{"born", "DATE", date, "date", true},
		{"seen", "DATETIME", ts, "timestamp", true},
		{"misc", "NUMERIC", num, "numeric", true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("columns\n got %v\nwant %v", got, want)
	}
	if pk := resp.GetPrimaryKey(); !reflect.DeepEqual(pk, []string{"id"}) {
		t.Errorf("primary key %v", pk)
	}
	if resp.GetEstimatedRows() != 3 {
		t.Errorf("estimated rows %d, want 3", resp.GetEstimatedRows())
	}
	wantFK := &commonv1.ForeignKey{Name: "orders_fk0", Columns: []string{"customer_id"}, ReferencedTable: "customers", ReferencedColumns: []string{"id"}}
	if len(resp.GetForeignKeys()) != 1 || !proto.Equal(resp.GetForeignKeys()[0], wantFK) {
		t.Errorf("foreign keys %v, want %v", resp.GetForeignKeys(), wantFK)
	}

	resp, err = s.DescribeSource(context.Background(), &extractorv1.DescribeSourceRequest{Source: sqliteSource(p, "LINES")})
	if err != nil {
		t.Fatal(err)
	}
	if pk := resp.GetPrimaryKey(); !reflect.DeepEqual(pk, []string{"order_id", "line"}) {
		t.Errorf("primary key %v", pk)
	}
	if c := resp.GetColumns()[2]; c.GetName() != "sku" || !c.GetNullable() || resp.GetColumns()[0].GetNullable() {
		t.Errorf("nullability: %v", resp.GetColumns())
	}
	if fks := resp.GetForeignKeys(); len(fks) != 1 || fks[0].GetReferencedColumns()[0] != "id" || fks[0].GetReferencedTable() != "orders" {
		t.Errorf("foreign keys %v", fks)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		decl        string
		want        sqlClass
		prec, scale int
	}{
		{"INTEGER", sqlInteger, 0, 0}, {"bigint unsigned", sqlInteger, 0, 0}, {"POINT", sqlInteger, 0, 0},
		{"NVARCHAR(10)", sqlText, 0, 0}, {"clob", sqlText, 0, 0}, {"", sqlBlob, 0, 0}, {"blob", sqlBlob, 0, 0},
		{"FLOAT", sqlReal, 0, 0}, {"double precision", sqlReal, 0, 0}, {"money", sqlNumeric, 0, 0},
		{"decimal(12, 3)", sqlNumeric, 12, 3}, {"NUMERIC(5)", sqlNumeric, 5, 0}, {"numeric(2,5)", sqlNumeric, 0, 0},
		{"boolean", sqlBool, 0, 0}, {"Date", sqlDate, 0, 0}, {"timestamp", sqlTimestamp, 0, 0}, {"DATETIME", sqlTimestamp, 0, 0},
	}
	for _, tc := range tests {
		c, p, s := classify(tc.decl)
		if c != tc.want || p != tc.prec || s != tc.scale {
			t.Errorf("classify(%q) = %v %d %d, want %v %d %d", tc.decl, c, p, s, tc.want, tc.prec, tc.scale)
		}
	}
}

func TestSQLiteRead(t *testing.T) {
	const cols = `id, qty, price, name, data, anything, amount, flag, born, seen`
	tests := []struct {
		name   string
		insert string // values for cols
		want   []string
		reject string // "rule|column|reason fragment"
	}{
		{"good", `1, 3, 2.5, 'ä', x'00ff', 'free', '12.50', 1, '2024-02-29', '2024-01-02 03:04:05.123'`,
			[]string{"1", "3", "2.5", "ä", "\x00\xff", "free", "12.5", "true", "2024-02-29", "2024-01-02T03:04:05.123Z"}, ""},
		{"lossless", `2, NULL, 3, NULL, 'text', x'01', 7, 0, '2024-01-01 00:00:00', '2024-01-02'`,
			[]string{"2", null, "3", null, "text", "\x01", "7", "false", "2024-01-01", "2024-01-02T00:00:00Z"}, ""},
		{"decimal text, stored as real by NUMERIC affinity", `3, NULL, NULL, NULL, NULL, NULL, '0012.50', NULL, NULL, '2024-01-02T03:04'`,
			[]string{"3", null, null, null, null, null, "12.5", null, null, "2024-01-02T03:04:00Z"}, ""},
		{"text in integer", `10, 'abc', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL`, nil,
			`type_mismatch|qty|column qty: declared INTEGER, storage class text, value "abc"`},
		{"real in integer", `11, 1.5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL`, nil,
			`type_mismatch|qty|column qty: declared INTEGER, storage class real, value "1.5"`},
		{"huge real in integer", `12, 1e20, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL`, nil,
			`type_mismatch|qty|storage class real, value "1e+20"`},
		{"text in real", `13, NULL, 'n/a', NULL, NULL, NULL, NULL, NULL, NULL, NULL`, nil,
			`type_mismatch|price|column price: declared REAL, storage class text, value "n/a"`},
		{"blob in text", `14, NULL, NULL, x'41', NULL, NULL, NULL, NULL, NULL, NULL`, nil,
			`type_mismatch|name|column name: declared VARCHAR(20), storage class blob, value "x'41'"`},
		{"integer in blob", `15, NULL, NULL, NULL, 5, NULL, NULL, NULL, NULL, NULL`, nil,
			`type_mismatch|data|declared BLOB, storage class integer, value "5"`},
		{"untyped integer", `16, NULL, NULL, NULL, NULL, 5, NULL, NULL, NULL, NULL`, nil,
			`type_mismatch|anything|column anything: no declared type, storage class integer`},
		{"decimal not a number", `17, NULL, NULL, NULL, NULL, NULL, '12,x', NULL, NULL, NULL`, nil,
			`type_mismatch|amount|column amount: declared DECIMAL(10,2), storage class text, value "12,x": not a decimal number`},
		{"decimal scale", `18, NULL, NULL, NULL, NULL, NULL, 1.125, NULL, NULL, NULL`, nil,
			`type_mismatch|amount|value "1.125": more than 2 fraction digits`},
		{"decimal precision", `19, NULL, NULL, NULL, NULL, NULL, 123456789, NULL, NULL, NULL`, nil,
			`type_mismatch|amount|more than 8 integer digits`},
		{"bool 2", `20, NULL, NULL, NULL, NULL, NULL, NULL, 2, NULL, NULL`, nil,
			`type_mismatch|flag|column flag: declared BOOLEAN, storage class integer, value "2"`},
		{"bool text", `21, NULL, NULL, NULL, NULL, NULL, NULL, 'yes', NULL, NULL`, nil,
			`type_mismatch|flag|storage class text, value "yes"`},
		{"impossible date", `22, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '2023-02-29', NULL`, nil,
			`type_mismatch|born|column born: declared DATE, storage class text, value "2023-02-29": not a valid`},
		{"date with time", `23, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '2023-02-28 10:00:00', NULL`, nil,
			`type_mismatch|born|cannot keep the time of day`},
		{"integer date", `24, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 20240101, NULL`, nil,
			`type_mismatch|born|storage class integer, value "20240101"`},
		{"date format", `25, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '02/01/2024'`, nil,
			`type_mismatch|seen|column seen: declared DATETIME, storage class text, value "02/01/2024"`},
		{"zone offset", `26, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '2024-01-02 03:04:05+02:00'`, nil,
			`type_mismatch|seen|`},
		{"invalid utf-8", `27, NULL, NULL, CAST(x'61ff' AS TEXT), NULL, NULL, NULL, NULL, NULL, NULL`, nil,
			`encoding|name|column name: invalid UTF-8 in "a\\xff"`},
	}
	stmts := []string{sqliteOrders}
	for _, tc := range tests {
		stmts = append(stmts, "INSERT INTO orders ("+cols+") VALUES ("+tc.insert+")")
	}
	p := sqliteDB(t, stmts...)
	s := newService(t)
	rows, _ := readAll(t, s, sqliteSource(p, "orders"), nil, 7)
	if len(rows) != len(tests) {
		t.Fatalf("%d rows, want %d", len(rows), len(tests))
	}
	// Columns: id customer_id qty price name data anything amount flag born seen misc.
	pick := []int{0, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for i, tc := range tests {
		r := rows[i]
		id := strings.SplitN(tc.insert, ",", 2)[0]
		if r.ref != "id="+id {
			t.Errorf("%s: ref %q, want id=%s", tc.name, r.ref, id)
		}
		if tc.reject == "" {
			if r.reject != "" {
				t.Errorf("%s: unexpected reject %s", tc.name, r.reject)
			}
			var got []string
			for _, k := range pick {
				got = append(got, r.vals[k])
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
			}
			continue
		}
		parts := strings.SplitN(tc.reject, "|", 3)
		if !strings.HasPrefix(r.reject, parts[0]+"|"+parts[1]+"|") || !strings.Contains(r.reject, parts[2]) {
			t.Errorf("%s: reject %q, want %q", tc.name, r.reject, tc.reject)
		}
		// The bad value is NULL in its slot; the key still loads.
		col := map[string]int{"qty": 2, "price": 3, "name": 4, "data": 5, "anything": 6, "amount": 7, "flag": 8, "born": 9, "seen": 10}[parts[1]]
		if r.vals[col] != null || r.vals[0] != id {
			t.Errorf("%s: values %q", tc.name, r.vals)
		}
	}
}

func TestSQLiteKeyset(t *testing.T) {
	stmts := []string{
		`CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)`,
		`CREATE TABLE nokey (v TEXT)`,
		`CREATE TABLE codes (code TEXT PRIMARY KEY, v INTEGER) WITHOUT ROWID`,
		`CREATE TABLE shadow (rowid TEXT, v TEXT)`,
	}
	for i := 1; i <= 50; i++ {
		id := []string{"1", "2", "3", "5", "8", "13", "21", "34", "55", "89"}[i%10]
		stmts = append(stmts,
			"INSERT INTO t VALUES ("+id+"0"+itoa(i)+", 'v"+itoa(i)+"')",
			"INSERT INTO nokey VALUES ('n"+itoa(i)+"')",
			"INSERT INTO codes VALUES ('c"+itoa(1000+i)+"', "+itoa(i)+")",
		)
	}
	stmts = append(stmts, `DELETE FROM nokey WHERE rowid % 7 = 0`, `INSERT INTO shadow VALUES ('x', 'y')`)
	p := sqliteDB(t, stmts...)
	s := newService(t)
	for _, tc := range []struct {
		table, refPrefix string
		rows             int
		splits           bool
	}{
		{"t", "id=", 50, true}, {"nokey", "rowid=", 43, true}, {"codes", "code=", 50, false}, {"shadow", "rowid=", 1, false},
	} {
		t.Run(tc.table, func(t *testing.T) {
			src := sqliteSource(p, tc.table)
			whole, cursors := readAll(t, s, src, nil, 1000)
			if len(whole) != tc.rows || len(cursors) != 1 {
				t.Fatalf("%d rows in %d batches", len(whole), len(cursors))
			}
			for i, r := range whole {
				if !strings.HasPrefix(r.ref, tc.refPrefix) || (i > 0 && whole[i-1].ref == r.ref) {
					t.Fatalf("ref %q", r.ref)
				}
			}
			plan, err := s.PlanPartitions(context.Background(), &extractorv1.PlanPartitionsRequest{Source: src, Partitions: 4})
			if err != nil {
				t.Fatal(err)
			}
			if got := len(plan.GetRanges()); (got > 1) != tc.splits {
				t.Fatalf("%d ranges", got)
			}
			var parts []row
			for _, kr := range plan.GetRanges() {
				rs, _ := readAll(t, s, src, kr, 3)
				parts = append(parts, rs...)
			}
			if !reflect.DeepEqual(parts, whole) {
				t.Errorf("partitioned read differs from the whole read")
			}
			// Same cursor, same batch.
			_, cursors = readAll(t, s, src, nil, 7)
			c := cursors[len(cursors)/2]
			a, err1 := s.ReadBatch(context.Background(), &extractorv1.ReadBatchRequest{Source: src, Cursor: c, BatchSize: 7})
			b, err2 := s.ReadBatch(context.Background(), &extractorv1.ReadBatchRequest{Source: src, Cursor: c, BatchSize: 7})
			if err1 != nil || err2 != nil || !proto.Equal(a, b) {
				t.Errorf("cursor %q not deterministic: %v %v", c, err1, err2)
			}
		})
	}
}

func itoa(i int) string { return big.NewInt(int64(i)).String() }

func TestSQLiteErrors(t *testing.T) {
	p := sqliteDB(t, `CREATE TABLE pair (a INT, b INT, PRIMARY KEY (a, b)) WITHOUT ROWID`, `CREATE VIEW v AS SELECT 1 AS x`)
	notDB := writeFile(t, "this is not a database, just text that is long enough to have a header..........................................")
	s := newService(t)
	ctx := context.Background()
	missing := filepath.Join(t.TempDir(), "nope.db")
	_, err := s.DescribeSource(ctx, &extractorv1.DescribeSourceRequest{Source: sqliteSource(missing, "t")})
	wantCode(t, err, codes.InvalidArgument, "source.sqlite.path", "nope.db", notInRoots)
	_, err = s.DescribeSource(ctx, &extractorv1.DescribeSourceRequest{Source: sqliteSource(p, "orders")})
	wantCode(t, err, codes.NotFound, "source.sqlite.table", "orders")
	_, err = s.ReadBatch(ctx, &extractorv1.ReadBatchRequest{Source: sqliteSource(p, "v")})
	wantCode(t, err, codes.FailedPrecondition, "view")
	_, err = s.ReadBatch(ctx, &extractorv1.ReadBatchRequest{Source: sqliteSource(p, "pair"), Cursor: "x"})
	wantCode(t, err, codes.InvalidArgument, "cursor", "a key of 2 columns")
	_, err = s.ReadBatch(ctx, &extractorv1.ReadBatchRequest{Source: sqliteSource(p, "pair"), Cursor: `["1"]`})
	wantCode(t, err, codes.InvalidArgument, "cursor", "a key of 2 columns")
	_, err = s.DescribeSource(ctx, &extractorv1.DescribeSourceRequest{Source: sqliteSource("", "t")})
	wantCode(t, err, codes.InvalidArgument, "source.sqlite.path")
	_, err = s.DescribeSource(ctx, &extractorv1.DescribeSourceRequest{Source: sqliteSource(p, "")})
	wantCode(t, err, codes.InvalidArgument, "source.sqlite.table")
	_, err = s.DescribeSource(ctx, &extractorv1.DescribeSourceRequest{Source: sqliteSource(notDB, "t")})
	wantCode(t, err, codes.FailedPrecondition, "source.sqlite.path")
	q := sqliteDB(t, `CREATE TABLE t (id INTEGER PRIMARY KEY)`)
	_, err = s.ReadBatch(ctx, &extractorv1.ReadBatchRequest{Source: sqliteSource(q, "t"), Cursor: "abc"})
	wantCode(t, err, codes.InvalidArgument, "cursor")
	// A missing file is never created by looking at it.
	if m, _ := filepath.Glob(missing); len(m) != 0 {
		t.Errorf("describe created %s", missing)
	}
}

func TestParseSQLiteTime(t *testing.T) {
	tests := []struct {
		in     string
		ok     bool
		layout string
	}{
		{"2024-02-29", true, "2006-01-02"},
		{"1999-12-31 23:59:59", true, "2006-01-02 15:04:05"},
		{"1999-12-31T23:59:59.5", true, "2006-01-02T15:04:05.999999"},
		{"2000-01-01 00:00:00.000001Z", true, "2006-01-02 15:04:05.999999Z"},
		{"2000-01-01 12:30", true, "2006-01-02 15:04"},
		{"0001-01-01", true, "2006-01-02"},
		{"2023-02-29", false, ""}, {"2024-13-01", false, ""}, {"2024-01-01 24:00:00", false, ""},
		{"2024-01-01 10:00:00.1234567", false, ""}, {"2024-1-01", false, ""}, {"2024-01-01 ", false, ""},
		{"2024-01-01 10:00:00+01:00", false, ""}, {"", false, ""}, {"20240101", false, ""},
	}
	for _, tc := range tests {
		d, us, ok := parseSQLiteTime(tc.in)
		if ok != tc.ok {
			t.Errorf("%q: ok %v", tc.in, ok)
			continue
		}
		if ok {
			want, err := time.Parse(tc.layout, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := time.UnixMicro(d*86_400_000_000 + us).UTC(); !got.Equal(want) {
				t.Errorf("%q: %v, want %v", tc.in, got, want)
			}
		}
	}
}

func FuzzParseSQLiteTime(f *testing.F) {
	for _, s := range []string{"2024-02-29", "1999-12-31 23:59:59.123456", "2023-02-29", "2000-01-01T00:00Z", "0000-01-01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, us, ok := parseSQLiteTime(s)
		if !ok {
			return
		}
		if us < 0 || us >= 86_400_000_000 {
			t.Fatalf("%q: micros %d", s, us)
		}
		// Whatever is accepted formats back to the same calendar text.
		got := time.UnixMicro(d*86_400_000_000 + us).UTC()
		if got.Format("2006-01-02") != s[:10] {
			t.Fatalf("%q read as %v", s, got)
		}
		if len(s) > 10 {
			if hm := got.Format("15:04"); hm != s[11:16] {
				t.Fatalf("%q read as %v", s, got)
			}
		}
	})
}

var decimalSyntax = regexp.MustCompile(`^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$`)

func FuzzAppendDecimal(f *testing.F) {
	for _, s := range []string{"12.50", "-0", "+1e3", ".5", "5.", "0012.500", "1e-5", "abc", "1e", "-.0e+2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := appendDecimal([]byte("prefix"), []byte(s))
		if !strings.HasPrefix(string(out), "prefix") {
			t.Fatalf("%q: destination prefix lost: %q", s, out)
		}
		syntax := decimalSyntax.MatchString(s)
		if err != nil {
			if syntax && !strings.Contains(err.Error(), "exponent") {
				t.Fatalf("%q refused (%v) but is a decimal literal", s, err)
			}
			return
		}
		if !syntax {
			t.Fatalf("%q accepted as %q but is not a decimal literal", s, out)
		}
		want, ok := new(big.Rat).SetString(s)
		if !ok {
			t.Fatalf("%q: big.Rat refuses it", s)
		}
		d := string(out[len("prefix"):])
		got, ok := new(big.Rat).SetString(d)
		if !ok || got.Cmp(want) != 0 {
			t.Fatalf("%q became %q, a different value", s, d)
		}
		if strings.ContainsAny(d, "+eE") || strings.HasPrefix(d, "-0") && got.Sign() == 0 || (len(d) > 1 && d[0] == '0' && d[1] != '.') {
			t.Fatalf("%q: %q is not canonical", s, d)
		}
	})
}

// TestSQLiteCompositeKey: a WITHOUT ROWID table keyed by two columns is
// read in key order, a batch at a time, by the whole key as a row value;
// each row once, references naming both columns, every cursor giving the
// same batch again. Expected rows come from the statements that made them.
func TestSQLiteCompositeKey(t *testing.T) {
	var stmts []string
	stmts = append(stmts, `CREATE TABLE stock (store TEXT, sku INTEGER, qty INTEGER, PRIMARY KEY (store, sku)) WITHOUT ROWID`)
	var want []string
	for _, store := range []string{"b", "a", "c"} {
		for sku := 9; sku >= 1; sku-- {
			stmts = append(stmts, fmt.Sprintf("INSERT INTO stock VALUES ('%s', %d, %d)", store, sku, sku*10))
		}
	}
	for _, store := range []string{"a", "b", "c"} {
		for sku := 1; sku <= 9; sku++ {
			want = append(want, fmt.Sprintf("store=%s,sku=%d %d", store, sku, sku*10))
		}
	}
	src := sqliteSource(sqliteDB(t, stmts...), "stock")
	s := newService(t)
	ctx := context.Background()
	d, err := s.DescribeSource(ctx, &extractorv1.DescribeSourceRequest{Source: src})
	if err != nil || strings.Join(d.GetPrimaryKey(), ",") != "store,sku" {
		t.Fatalf("describe: %v %v", d.GetPrimaryKey(), err)
	}
	var got []string
	cursor := ""
	for i := 0; i < 20; i++ {
		r, err := s.ReadBatch(ctx, &extractorv1.ReadBatchRequest{Source: src, Cursor: cursor, BatchSize: 4})
		if err != nil {
			t.Fatalf("cursor %q: %v", cursor, err)
		}
		again, err := s.ReadBatch(ctx, &extractorv1.ReadBatchRequest{Source: src, Cursor: cursor, BatchSize: 4})
		if err != nil || !proto.Equal(r, again) {
			t.Fatalf("cursor %q is not deterministic: %v", cursor, err)
		}
		b := r.GetBatch()
		for _, row := range rowsOf(t, b) {
			got = append(got, row.ref+" "+row.vals[2])
		}
		cursor = b.GetLastKey()
		if r.GetDone() {
			break
		}
	}
	if strings.Join(got, ";") != strings.Join(want, ";") {
		t.Fatalf("rows:\n got %v\nwant %v", got, want)
	}
	if cursor != `["c","9"]` {
		t.Errorf("last cursor %s, want [\"c\",\"9\"]", cursor)
	}
}
