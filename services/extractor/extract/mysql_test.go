package extract

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// One column of every type family; rows hold the edge values.
const myTypesDDL = "CREATE TABLE types (" +
	"id int PRIMARY KEY, b tinyint(1), ti tinyint, tiu tinyint unsigned, si smallint, siu smallint unsigned," +
	"mi mediumint, miu mediumint unsigned, i int, iu int unsigned, bi bigint, biu bigint unsigned," +
	"d65 decimal(65,30), d12 decimal(12,2), f float, dbl double," +
	"d date, dt datetime(6), dt0 datetime, ts timestamp(3) NULL DEFAULT NULL, tm time(6), yr year," +
	"c char(5), vc varchar(50) CHARACTER SET utf8mb4, l1 varchar(20) CHARACTER SET latin1, tx text," +
	"e enum('a','b c'), st set('x','y','z'), bit1 bit(1), bit12 bit(12)," +
	"bin binary(4), vb varbinary(10), bl blob, j json, g geometry" +
	") ENGINE=InnoDB"

var myTypesRows = []string{
	`INSERT INTO types VALUES (1, 1, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295,
	  9223372036854775807, 18446744073709551615,
	  99999999999999999999999999999999999.999999999999999999999999999999, 9999999999.99, 1.2345678, -0e0,
	  '2024-02-29', '2024-02-29 23:59:59.999999', '1000-01-01 00:00:00', '2038-01-19 03:14:07.999', '838:59:59.000000', 2155,
	  'ab', 'héllo 😀 emoji', 'é ß', '', 'b c', 'x,z', b'1', b'101000000001',
	  X'00FF', X'00FF', X'FF00', '{"a": [1, 2.5, "x"], "b": null}', ST_GeomFromText('POINT(1 2)'))`,
	`INSERT INTO types VALUES (2, 0, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0,
	  -9223372036854775808, 0,
	  -99999999999999999999999999999999999.999999999999999999999999999999, -0.01, 0.1, 1.7976931348623157e308,
	  '1000-01-01', '1000-01-01 00:00:00.000001', '9999-12-31 23:59:59', '1970-01-01 00:00:01.000', '-838:59:59.000000', 1901,
	  '', '', '', NULL, 'a', '', b'0', b'0',
	  X'FFFFFFFF', X'', X'00', '[]', NULL)`,
	`INSERT INTO types (id) VALUES (3)`,
	`INSERT INTO types (id, d, dt, dt0, ts) VALUES (4, '0000-00-00', '0000-00-00 00:00:00', '2020-00-15 10:00:00', '0000-00-00 00:00:00')`,
	`INSERT INTO types (id, d, b) VALUES (5, '2020-05-00', 2)`,
}

// myCols is the column order of types.
var myCols = []string{"id", "b", "ti", "tiu", "si", "siu", "mi", "miu", "i", "iu", "bi", "biu", "d65", "d12", "f", "dbl",
	"d", "dt", "dt0", "ts", "tm", "yr", "c", "vc", "l1", "tx", "e", "st", "bit1", "bit12", "bin", "vb", "bl", "j", "g"}

// myWantTypes lists every row's expected wire values; a missing column is NULL.
func myWantTypes(zeroNull bool) []map[string]string {
	rows := []map[string]string{
		{"id": "1", "b": "true", "ti": "127", "tiu": "255", "si": "32767", "siu": "65535", "mi": "8388607", "miu": "16777215",
			"i": "2147483647", "iu": "4294967295", "bi": "9223372036854775807", "biu": "18446744073709551615",
			"d65": "99999999999999999999999999999999999.999999999999999999999999999999", "d12": "9999999999.99",
			// float arrives as the shortest decimal of its float32 value.
			"f": "1.2345678", "dbl": "0", // MariaDB stores -0 as 0; see TestMySQLDecodeNegativeZero
			"d": "2024-02-29", "dt": "2024-02-29T23:59:59.999999Z", "dt0": "1000-01-01T00:00:00Z", "ts": "2038-01-19T03:14:07.999Z",
			"tm": "838:59:59.000000", "yr": "2155", "c": "ab", "vc": "héllo 😀 emoji", "l1": "é ß", "tx": "", "e": "b c", "st": "x,z",
			"bit1": "true", "bit12": "101000000001", "bin": "\x00\xff\x00\x00", "vb": "\x00\xff", "bl": "\xff\x00",
			"j": `{"a": [1, 2.5, "x"], "b": null}`, "g": "POINT(1 2)"},
		{"id": "2", "b": "false", "ti": "-128", "tiu": "0", "si": "-32768", "siu": "0", "mi": "-8388608", "miu": "0",
			"i": "-2147483648", "iu": "0", "bi": "-9223372036854775808", "biu": "0",
			"d65": "-99999999999999999999999999999999999.999999999999999999999999999999", "d12": "-0.01",
			"f": "0.1", "dbl": "1.7976931348623157e+308",
			"d": "1000-01-01", "dt": "1000-01-01T00:00:00.000001Z", "dt0": "9999-12-31T23:59:59Z", "ts": "1970-01-01T00:00:01Z",
			"tm": "-838:59:59.000000", "yr": "1901", "c": "", "vc": "", "l1": "", "e": "a", "st": "",
			"bit1": "false", "bit12": "000000000000", "bin": "\xff\xff\xff\xff", "vb": "", "bl": "\x00", "j": "[]"},
		{"id": "3"},
		{"id": "4"},
		{"id": "5"},
	}
	return rows
}

// readAll reads a whole source with the given request template, checking
// that batches are well formed.
func myReadAll(t *testing.T, s *Service, src *commonv1.SourceSpec, rng *commonv1.KeyRange, size int32) []*commonv1.Batch {
	t.Helper()
	var out []*commonv1.Batch
	cursor := ""
	for i := 0; ; i++ {
		resp, err := s.ReadBatch(context.Background(), &extractorv1.ReadBatchRequest{Source: src, Range: rng, Cursor: cursor, BatchSize: size})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, resp.GetBatch())
		cursor = resp.GetBatch().GetLastKey()
		if resp.GetDone() {
			return out
		}
		if i > 100000 {
			t.Fatal("read does not end")
		}
	}
}

func TestMySQLTypes(t *testing.T) {
	dsn := newMySQLDB(t, append([]string{myTypesDDL}, myTypesRows...)...)
	for _, zeroNull := range []bool{false, true} {
		t.Run(fmt.Sprintf("zero_null=%v", zeroNull), func(t *testing.T) {
			s := newService(t)
			policy := commonv1.ZeroDatePolicy_ZERO_DATE_POLICY_UNSPECIFIED
			if zeroNull {
				policy = commonv1.ZeroDatePolicy_ZERO_DATE_POLICY_NULL
			}
			src := mysqlSpec(&commonv1.MysqlSource{Dsn: dsn, Table: "types", ZeroDates: policy})
			resp, err := s.ReadBatch(context.Background(), &extractorv1.ReadBatchRequest{Source: src, BatchSize: 100})
			if err != nil {
				t.Fatal(err)
			}
			b := resp.GetBatch()
			if !resp.GetDone() || b.GetNumRows() != 5 {
				t.Fatalf("done=%v rows=%d, want done with 5 rows", resp.GetDone(), b.GetNumRows())
			}
			if b.GetSource() != myDBName(t, dsn)+".types" {
				t.Errorf("source %q", b.GetSource())
			}
			var names []string
			for _, c := range b.GetColumns() {
				names = append(names, c.GetName())
			}
			if !reflect.DeepEqual(names, myCols) {
				t.Fatalf("columns %v, want %v", names, myCols)
			}
			got := rowsOf(t, b)
			for r, want := range myWantTypes(zeroNull) {
				if got[r].ref != "id="+want["id"] {
					t.Errorf("row %d: ref %q", r, got[r].ref)
				}
				for k, col := range myCols {
					w, ok := want[col]
					if !ok {
						w = null
					}
					if got[r].vals[k] != w {
						t.Errorf("row %d column %s: got %q, want %q", r, col, got[r].vals[k], w)
					}
				}
			}
			var rejects []string
			for _, r := range b.GetRejects() {
				rejects = append(rejects, fmt.Sprintf("%d|%s|%s|%s|%s", r.GetRow(), r.GetRule(), r.GetColumn(), r.GetRaw(), r.GetReason()))
			}
			want := []string{
				`4|bool_range|b|2|column b: tinyint(1) value "2" is neither 0 nor 1, so boolean cannot hold it`,
			}
			if !zeroNull {
				want = append(want,
					`3|zero_date|d|0000-00-00|column d: date value "0000-00-00" is a zero date, which PostgreSQL cannot hold (zero_dates policy is QUARANTINE)`,
					`3|zero_date|dt|0000-00-00 00:00:00.000000|column dt: datetime(6) value "0000-00-00 00:00:00.000000" is a zero date, which PostgreSQL cannot hold (zero_dates policy is QUARANTINE)`,
					`3|zero_date|dt0|2020-00-15 10:00:00|column dt0: datetime value "2020-00-15 10:00:00" is a zero date, which PostgreSQL cannot hold (zero_dates policy is QUARANTINE)`,
					`3|zero_date|ts|0000-00-00 00:00:00.000|column ts: timestamp(3) value "0000-00-00 00:00:00.000" is a zero date, which PostgreSQL cannot hold (zero_dates policy is QUARANTINE)`,
					`4|zero_date|d|2020-05-00|column d: date value "2020-05-00" is a zero date, which PostgreSQL cannot hold (zero_dates policy is QUARANTINE)`,
				)
			}
			sort.Strings(rejects)
			sort.Strings(want)
			if !reflect.DeepEqual(rejects, want) {
				t.Errorf("rejects:\n%s\nwant:\n%s", strings.Join(rejects, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

func TestMySQLDescribe(t *testing.T) {
	dsn := newMySQLDB(t, append([]string{myTypesDDL,
		"CREATE TABLE customers (region char(2), no int, name varchar(40) NOT NULL, PRIMARY KEY (region, no))",
		"CREATE TABLE orders (id bigint unsigned AUTO_INCREMENT PRIMARY KEY, region char(2), cust int, parent bigint unsigned," +
			" CONSTRAINT fk_cust FOREIGN KEY (region, cust) REFERENCES customers (region, no)," +
			" CONSTRAINT fk_parent FOREIGN KEY (parent) REFERENCES orders (id))",
		"ANALYZE TABLE types",
	}, myTypesRows...)...)
	s := newService(t)
	resp, err := s.DescribeSource(context.Background(), &extractorv1.DescribeSourceRequest{Source: mysqlSource(dsn, "types")})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range resp.GetColumns() {
		got = append(got, fmt.Sprintf("%s|%s|%s|%s|%v", c.GetName(), c.GetSourceType(),
			strings.TrimPrefix(c.GetType().String(), "COLUMN_TYPE_"), c.GetPgType(), c.GetNullable()))
	}
	want := []string{
		"id|int(11)|INT64|integer|false",
		"b|tinyint(1)|BOOL|boolean|true",
		"ti|tinyint(4)|INT64|smallint|true",
		"tiu|tinyint(3) unsigned|INT64|smallint|true",
		"si|smallint(6)|INT64|smallint|true",
		"siu|smallint(5) unsigned|INT64|integer|true",
		"mi|mediumint(9)|INT64|integer|true",
		"miu|mediumint(8) unsigned|INT64|integer|true",
		"i|int(11)|INT64|integer|true",
		"iu|int(10) unsigned|INT64|bigint|true",
		"bi|bigint(20)|INT64|bigint|true",
		"biu|bigint(20) unsigned|NUMERIC|numeric(20,0)|true",
		"d65|decimal(65,30)|NUMERIC|numeric(65,30)|true",
		"d12|decimal(12,2)|NUMERIC|numeric(12,2)|true",
		"f|float|FLOAT64|real|true",
		"dbl|double|FLOAT64|double precision|true",
		"d|date|DATE|date|true",
		"dt|datetime(6)|TIMESTAMPTZ|timestamp(6)|true",
		"dt0|datetime|TIMESTAMPTZ|timestamp(0)|true",
		"ts|timestamp(3)|TIMESTAMPTZ|timestamptz(3)|true",
		"tm|time(6)|TEXT|interval|true",
		"yr|year(4)|INT64|smallint|true",
		"c|char(5)|TEXT|varchar(5)|true",
		"vc|varchar(50)|TEXT|varchar(50)|true",
		"l1|varchar(20)|TEXT|varchar(20)|true",
		"tx|text|TEXT|text|true",
		"e|enum('a','b c')|TEXT|text|true",
		"st|set('x','y','z')|TEXT|text|true",
		"bit1|bit(1)|BOOL|boolean|true",
		"bit12|bit(12)|TEXT|bit(12)|true",
		"bin|binary(4)|BYTES|bytea|true",
		"vb|varbinary(10)|BYTES|bytea|true",
		"bl|blob|BYTES|bytea|true",
		"j|longtext|TEXT|jsonb|true",
		"g|geometry|TEXT|text|true",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("columns:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !reflect.DeepEqual(resp.GetPrimaryKey(), []string{"id"}) {
		t.Errorf("primary key %v", resp.GetPrimaryKey())
	}
	if resp.GetEstimatedRows() != 5 {
		t.Errorf("estimated rows %d, want 5", resp.GetEstimatedRows())
	}
	if len(resp.GetForeignKeys()) != 0 {
		t.Errorf("types has foreign keys %v", resp.GetForeignKeys())
	}

	resp, err = s.DescribeSource(context.Background(), &extractorv1.DescribeSourceRequest{Source: mysqlSource(dsn, "orders")})
	if err != nil {
		t.Fatal(err)
	}
	wantFK := []*commonv1.ForeignKey{
		{Name: "fk_cust", Columns: []string{"region", "cust"}, ReferencedTable: "customers", ReferencedColumns: []string{"region", "no"}},
		{Name: "fk_parent", Columns: []string{"parent"}, ReferencedTable: "orders", ReferencedColumns: []string{"id"}},
	}
	if len(resp.GetForeignKeys()) != len(wantFK) {
		t.Fatalf("foreign keys %v", resp.GetForeignKeys())
	}
	for i, fk := range resp.GetForeignKeys() {
		if !proto.Equal(fk, wantFK[i]) {
			t.Errorf("foreign key %d: %v, want %v", i, fk, wantFK[i])
		}
	}
	resp, err = s.DescribeSource(context.Background(), &extractorv1.DescribeSourceRequest{Source: mysqlSource(dsn, "customers")})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(resp.GetPrimaryKey(), []string{"region", "no"}) {
		t.Errorf("composite primary key %v", resp.GetPrimaryKey())
	}
	if c := resp.GetColumns()[2]; c.GetNullable() || c.GetPgType() != "varchar(40)" {
		t.Errorf("name column %v", c)
	}
}

// TestMySQLPlanCoversEveryRow plans 4 ranges over sparse integer keys and
// reads each in batches of 7: every row comes back exactly once.
func TestMySQLPlanCoversEveryRow(t *testing.T) {
	for _, keyType := range []string{"int", "bigint unsigned"} {
		t.Run(keyType, func(t *testing.T) {
			var vals []string
			want := map[string]int{}
			base := int64(-500)
			if keyType != "int" {
				base = 0
			}
			for i := int64(0); i < 150; i++ {
				k := fmt.Sprint(base + i*7 + i%3)
				vals = append(vals, fmt.Sprintf("(%s, 'r%d')", k, i))
				want["id="+k] = 1
			}
			stmts := []string{"CREATE TABLE t (id " + keyType + " PRIMARY KEY, v varchar(10))", "INSERT INTO t VALUES " + strings.Join(vals, ",")}
			if keyType != "int" {
				stmts = append(stmts, "INSERT INTO t VALUES (18446744073709551615, 'max'), (18446744073709551614, 'max-1')")
				want["id=18446744073709551615"], want["id=18446744073709551614"] = 1, 1
			}
			dsn := newMySQLDB(t, stmts...)
			s := newService(t)
			src := mysqlSource(dsn, "t")
			pr, err := s.PlanPartitions(context.Background(), &extractorv1.PlanPartitionsRequest{Source: src, Partitions: 4})
			if err != nil {
				t.Fatal(err)
			}
			rs := pr.GetRanges()
			if len(rs) != 4 || rs[0].GetLower() != "" || rs[3].GetUpper() != "" {
				t.Fatalf("ranges %v, want 4 with open ends", rs)
			}
			for i := 1; i < len(rs); i++ {
				if rs[i].GetLower() != rs[i-1].GetUpper() {
					t.Fatalf("ranges not contiguous: %v", rs)
				}
			}
			got := map[string]int{}
			for _, rng := range rs {
				n := 0
				for _, b := range myReadAll(t, s, src, rng, 7) {
					for _, r := range rowsOf(t, b) {
						got[r.ref]++
						n++
					}
				}
				if n == 0 && keyType == "int" {
					t.Errorf("range %v is empty", rng)
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("rows read %d distinct, want %d, each once", len(got), len(want))
				for k, v := range got {
					if want[k] != v {
						t.Errorf("%s read %d times", k, v)
					}
				}
			}
		})
	}
}

func TestMySQLCursorDeterminism(t *testing.T) {
	dsn := newMySQLDB(t, "CREATE TABLE t (id int PRIMARY KEY, v double)",
		"INSERT INTO t VALUES (1, 0.5), (2, NULL), (5, -1), (9, 3), (10, 4)")
	s := newService(t)
	src := mysqlSource(dsn, "t")
	req := &extractorv1.ReadBatchRequest{Source: src, Cursor: "2", BatchSize: 2}
	a, err := s.ReadBatch(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.ReadBatch(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(a, b) {
		t.Error("the same cursor read twice gave different batches")
	}
	var refs []string
	for _, r := range rowsOf(t, a.GetBatch()) {
		refs = append(refs, r.ref)
	}
	if !reflect.DeepEqual(refs, []string{"id=5", "id=9"}) || a.GetBatch().GetLastKey() != "9" || a.GetDone() {
		t.Errorf("refs %v last %q done %v", refs, a.GetBatch().GetLastKey(), a.GetDone())
	}
}

// TestMySQLCompositeAndTextKeys reads tables whose keys are not integers:
// ranges at sampled keys, keyset over the whole key, every row once.
func TestMySQLCompositeAndTextKeys(t *testing.T) {
	dsn := newMySQLDB(t,
		"CREATE TABLE c (region varchar(5), no int, v int, PRIMARY KEY (region, no))",
		"INSERT INTO c VALUES ('b', 2, 1), ('a', 10, 2), ('a', 9, 3), ('b', 1, 4), ('é', 1, 5)",
		"CREATE TABLE s (code varchar(10) PRIMARY KEY)",
		"INSERT INTO s VALUES ('x'), ('Ab'), ('b'), ('zz'), ('😀')",
		"CREATE TABLE bk (k varbinary(4) PRIMARY KEY)",
		"INSERT INTO bk VALUES (X'00'), (X'FF'), (X'0001'), (X'7F')",
	)
	s := newService(t)
	cases := []struct {
		table string
		want  []string
	}{
		{"c", []string{"region=a,no=9", "region=a,no=10", "region=b,no=1", "region=b,no=2", "region=é,no=1"}},
		{"s", []string{"code=Ab", "code=b", "code=x", "code=zz", "code=😀"}},
		{"bk", []string{"k=00", "k=0001", "k=7f", "k=ff"}},
	}
	for _, tc := range cases {
		t.Run(tc.table, func(t *testing.T) {
			src := mysqlSource(dsn, tc.table)
			pr, err := s.PlanPartitions(context.Background(), &extractorv1.PlanPartitionsRequest{Source: src, Partitions: 4})
			if err != nil {
				t.Fatal(err)
			}
			if len(pr.GetRanges()) != 4 {
				t.Errorf("ranges %v, want 4", pr.GetRanges())
			}
			var refs []string
			for _, rng := range pr.GetRanges() {
				for _, b := range myReadAll(t, s, src, rng, 2) {
					for _, r := range rowsOf(t, b) {
						refs = append(refs, r.ref)
					}
				}
			}
			if !reflect.DeepEqual(refs, tc.want) {
				t.Errorf("refs %q, want %q", refs, tc.want)
			}
		})
	}
}

func TestMySQLTimeZone(t *testing.T) {
	dsn := newMySQLDB(t, "CREATE TABLE t (id int PRIMARY KEY, ts timestamp(6) NULL DEFAULT NULL, dt datetime)",
		"INSERT INTO t VALUES (1, '2024-03-10 12:00:00.5', '2024-03-10 12:00:00')")
	s := newService(t)
	for _, tz := range []string{"", "UTC", "+02:00", "-09:30"} {
		resp, err := s.ReadBatch(context.Background(), &extractorv1.ReadBatchRequest{
			Source: mysqlSpec(&commonv1.MysqlSource{Dsn: dsn, Table: "t", TimeZone: tz})})
		if err != nil {
			t.Fatalf("time_zone %q: %v", tz, err)
		}
		got := rowsOf(t, resp.GetBatch())[0].vals
		// The instant of a TIMESTAMP and the wall time of a DATETIME do not
		// depend on the session zone.
		if got[1] != "2024-03-10T12:00:00.5Z" || got[2] != "2024-03-10T12:00:00Z" {
			t.Errorf("time_zone %q: %v", tz, got)
		}
	}
	_, err := s.ReadBatch(context.Background(), &extractorv1.ReadBatchRequest{
		Source: mysqlSpec(&commonv1.MysqlSource{Dsn: dsn, Table: "t", TimeZone: "x'; DROP"})})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "source.mysql.time_zone") {
		t.Errorf("bad zone: %v", err)
	}
}

func TestMySQLErrors(t *testing.T) {
	dsn := newMySQLDB(t, "CREATE TABLE nokey (v int)", "CREATE TABLE t (id int PRIMARY KEY)")
	dbName := myDBName(t, dsn)
	s := newService(t)
	const pw = "s3cret-Pw9"
	cases := []struct {
		name string
		src  *commonv1.SourceSpec
		req  string // describe, plan or read
		code codes.Code
		msg  string
	}{
		{"missing table", mysqlSource(dsn, "nope"), "describe", codes.NotFound, dbName + ".nope"},
		{"missing table read", mysqlSource(dsn, "nope"), "read", codes.NotFound, dbName + ".nope"},
		{"missing database", mysqlSpec(&commonv1.MysqlSource{Dsn: dsn, Database: "cutover_no_such_db", Table: "t"}), "describe", codes.NotFound, "cutover_no_such_db.t"},
		{"unreachable", mysqlSource("root:"+pw+"@tcp(127.0.0.1:1)/db", "t"), "describe", codes.Unavailable, "cannot connect to source db.t"},
		{"unreachable url", mysqlSource("mysql://root:"+pw+"@127.0.0.1:1/db", "t"), "read", codes.Unavailable, "cannot connect to source db.t"},
		{"wrong password", mysqlSource(mysqlServerDSN(t, pw, dbName), "t"), "describe", codes.FailedPrecondition, "cannot connect to source " + dbName + ".t: authentication failed"},
		{"bad dsn", mysqlSource("root:"+pw+"@tcp(127.0.0.1:3306", "t"), "describe", codes.InvalidArgument, "source.mysql.dsn"},
		{"bad url", mysqlSource("mysql://root:"+pw+"@[::1/db", "t"), "describe", codes.InvalidArgument, "source.mysql.dsn"},
		{"no table", mysqlSource(dsn, ""), "describe", codes.InvalidArgument, "source.mysql.table"},
		{"no database", mysqlSource("root@tcp(127.0.0.1:3306)/", "t"), "plan", codes.InvalidArgument, "source.mysql.database"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			ctx := context.Background()
			switch tc.req {
			case "describe":
				_, err = s.DescribeSource(ctx, &extractorv1.DescribeSourceRequest{Source: tc.src})
			case "plan":
				_, err = s.PlanPartitions(ctx, &extractorv1.PlanPartitionsRequest{Source: tc.src, Partitions: 3})
			default:
				_, err = s.ReadBatch(ctx, &extractorv1.ReadBatchRequest{Source: tc.src})
			}
			if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("got %v, want %s naming %q", err, tc.code, tc.msg)
			}
			if err != nil && strings.Contains(err.Error(), pw) {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
	// Bad cursor and range values are refused naming the field.
	for field, req := range map[string]*extractorv1.ReadBatchRequest{
		"cursor":      {Source: mysqlSource(dsn, "t"), Cursor: "1; DROP"},
		"range.lower": {Source: mysqlSource(dsn, "t"), Range: &commonv1.KeyRange{Lower: "x"}},
		"range.upper": {Source: mysqlSource(dsn, "t"), Range: &commonv1.KeyRange{Upper: "1.5"}},
	} {
		_, err := s.ReadBatch(context.Background(), req)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: %v", field, err)
		}
	}
	// Close closes the pools: later reads are Unavailable.
	if _, err := s.ReadBatch(context.Background(), &extractorv1.ReadBatchRequest{Source: mysqlSource(dsn, "t")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadBatch(context.Background(), &extractorv1.ReadBatchRequest{Source: mysqlSource(dsn, "t")}); status.Code(err) != codes.Unavailable {
		t.Errorf("after Close: %v", err)
	}
}

func TestParseMySQLDSN(t *testing.T) {
	cases := []struct{ in, user, pass, addr, db string }{
		{"u:p@tcp(h:3307)/d", "u", "p", "h:3307", "d"},
		{"u:p@w@tcp(h:3307)/d?timeout=5s", "u", "p@w", "h:3307", "d"},
		{"mysql://u:p%40w@h:3307/d", "u", "p@w", "h:3307", "d"},
		{"mysql://u@h/d?readTimeout=1s", "u", "", "h:3306", "d"},
		{"mariadb://u:p@[::1]:3306/", "u", "p", "[::1]:3306", ""},
	}
	for _, tc := range cases {
		cfg, err := parseMySQLDSN(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if cfg.User != tc.user || cfg.Passwd != tc.pass || cfg.Addr != tc.addr || cfg.DBName != tc.db {
			t.Errorf("%s: got %s %s %s %s", tc.in, cfg.User, cfg.Passwd, cfg.Addr, cfg.DBName)
		}
	}
}

func TestParseMySQLDateTime(t *testing.T) {
	cases := []struct {
		in          string
		ok, zero    bool
		valid       bool
		days, micro int64
	}{
		{"1970-01-01", true, false, true, 0, 0},
		{"2024-02-29 23:59:59.999999", true, false, true, 19782, 1709251199999999},
		{"1969-12-31 23:59:59.5", true, false, true, -1, -500000},
		{"0000-00-00", true, true, false, 0, 0},
		{"0000-00-00 00:00:00.000000", true, true, false, 0, 0},
		{"2020-05-00", true, true, false, 0, 0},
		{"2023-02-29", true, false, false, 0, 0},
		{"2023-01-01 24:00:00", true, false, false, 0, 0},
		{"2023-01-01 10:00", false, false, false, 0, 0},
		{"2023-01-01 10:00:00.", false, false, false, 0, 0},
		{"2023-01-01 10:00:00.1234567", false, false, false, 0, 0},
		{"2023-1-01", false, false, false, 0, 0},
	}
	for _, tc := range cases {
		dt, ok := parseMySQLDateTime([]byte(tc.in))
		if ok != tc.ok || (ok && (dt.isZero() != tc.zero || dt.valid() != tc.valid)) {
			t.Errorf("%s: ok=%v zero=%v valid=%v", tc.in, ok, dt.isZero(), dt.valid())
			continue
		}
		if ok && tc.valid && (dt.days() != tc.days || dt.micros() != tc.micro) {
			t.Errorf("%s: days %d micros %d, want %d %d", tc.in, dt.days(), dt.micros(), tc.days, tc.micro)
		}
	}
}

func FuzzMySQLDateTime(f *testing.F) {
	for _, s := range []string{"2024-02-29 23:59:59.999999", "0000-00-00", "9999-12-31 23:59:59", "0001-01-01", "1000-01-01 00:00:00.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		dt, ok := parseMySQLDateTime([]byte(s))
		if !ok || !dt.valid() {
			return
		}
		want := time.Date(dt.year, time.Month(dt.month), dt.day, dt.hour, dt.min, dt.sec, dt.micro*1000, time.UTC)
		if dt.micros() != want.UnixMicro() {
			t.Fatalf("%q: micros %d, want %d", s, dt.micros(), want.UnixMicro())
		}
		if dt.days()*86400 != time.Date(dt.year, time.Month(dt.month), dt.day, 0, 0, 0, 0, time.UTC).Unix() {
			t.Fatalf("%q: days %d", s, dt.days())
		}
		// What parses is exactly the text MySQL would print.
		layout := "2006-01-02 15:04:05.000000"
		if len(s) == 10 {
			layout = "2006-01-02"
		} else if len(s) <= 19 {
			layout = layout[:19]
		} else {
			layout = layout[:len(s)]
		}
		if got := want.Format(layout); got != s {
			t.Fatalf("%q parsed as %s", s, got)
		}
	})
}

func FuzzParseMySQLDSN(f *testing.F) {
	for _, s := range []string{"u:p@tcp(h:1)/d", "mysql://u:p@h:1/d?x=y", "mysql://u:p@h/d", "u:p@/d", "mariadb://[::1"} {
		f.Add(s, "Secr3tPass")
	}
	f.Fuzz(func(t *testing.T, s, pw string) {
		if len(pw) < 6 {
			return
		}
		for _, dsn := range []string{s, "u:" + pw + "@" + s, "mysql://u:" + pw + "@" + s} {
			_, err := parseMySQLDSN(dsn)
			if err != nil && strings.Contains(err.Error(), pw) {
				t.Fatalf("error shows the password: %v", err)
			}
		}
	})
}

// TestMySQLDecodeNegativeZero: MariaDB normalises a stored -0 to 0, but a
// server that sends -0 gets it through with its sign.
func TestMySQLDecodeNegativeZero(t *testing.T) {
	for _, k := range []myKind{myFloat32, myFloat64} {
		bld := batch.NewBuilder("f", commonv1.ColumnType_COLUMN_TYPE_FLOAT64, 1)
		var dec myDecoder
		if rej := dec.append(bld, &myCol{name: "f", kind: k}, []byte("-0")); rej != nil {
			t.Fatal(rej)
		}
		if f := bld.Column().GetFloats()[0]; f != 0 || !math.Signbit(f) {
			t.Errorf("kind %d: %v, want -0", k, f)
		}
	}
}

func TestMySQLAppendBits(t *testing.T) {
	cases := []struct {
		v    []byte
		n    int
		want string
	}{
		{[]byte{0x0a, 0x01}, 12, "101000000001"},
		{[]byte{0x01}, 1, "1"},
		{[]byte{0x80}, 8, "10000000"},
		{[]byte{0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, 64, "00000001" + strings.Repeat("0", 56)},
		{[]byte{0x05}, 3, "101"},
	}
	for _, tc := range cases {
		if got := string(myAppendBits(nil, tc.v, tc.n)); got != tc.want {
			t.Errorf("%x/%d: %s, want %s", tc.v, tc.n, got, tc.want)
		}
	}
}

func BenchmarkMySQLRead100k(b *testing.B) {
	dsn := newMySQLDB(b, "CREATE TABLE bench (id bigint PRIMARY KEY, a int, b varchar(40), c decimal(12,2), d datetime(6), e double, f tinyint(1), g date)")
	mysqlExec(b, dsn, `INSERT INTO bench
SELECT seq, seq % 1000, CONCAT('customer-', seq, '-abcdefghij'), seq / 100, TIMESTAMP('2024-01-01') + INTERVAL seq SECOND,
       seq * 1.5, seq % 2, DATE('2020-01-01') + INTERVAL (seq % 1000) DAY
FROM seq_1_to_100000`)
	s := newService(b)
	src := mysqlSource(dsn, "bench")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rows := 0
		cursor := ""
		for {
			resp, err := s.ReadBatch(context.Background(), &extractorv1.ReadBatchRequest{Source: src, Cursor: cursor, BatchSize: 10000})
			if err != nil {
				b.Fatal(err)
			}
			rows += int(resp.GetBatch().GetNumRows())
			cursor = resp.GetBatch().GetLastKey()
			if resp.GetDone() {
				break
			}
		}
		if rows != 100000 {
			b.Fatalf("read %d rows", rows)
		}
	}
	b.ReportMetric(float64(100000*b.N)/b.Elapsed().Seconds(), "rows/s")
}
