package extract

import (
	"context"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	"github.com/cutover/cutover/services/kit/pgtest"
	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"
)

// newDB returns a fresh database with the given statements applied.
func newDB(t *testing.T, stmts ...string) string {
	t.Helper()
	url := pgtest.NewDatabase(t)
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
	return url
}

const typesDDL = `CREATE DOMAIN qty AS int4;
CREATE TABLE types (
  id int8 PRIMARY KEY,
  i2 int2, i4 int4 NOT NULL, q qty,
  f4 float4, f8 float8,
  n numeric(12,2),
  b bool,
  ts timestamptz, tsn timestamp,
  d date,
  by bytea,
  t text, vc varchar(20), u uuid, j jsonb
)`

func TestDescribePG(t *testing.T) {
	url := newDB(t, typesDDL, `ANALYZE types`)
	s := newService(t)
	resp, err := s.DescribeSource(context.Background(), &extractorv1.DescribeSourceRequest{Source: pgSource(url, "", "types")})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"id bigint INT64 false", "i2 smallint INT64 true", "i4 integer INT64 false", "q qty INT64 true",
		"f4 real FLOAT64 true", "f8 double precision FLOAT64 true", "n numeric(12,2) NUMERIC true", "b boolean BOOL true",
		"ts timestamp with time zone TIMESTAMPTZ true", "tsn timestamp without time zone TIMESTAMPTZ true",
		"d date DATE true", "by bytea BYTES true", "t text TEXT true", "vc character varying(20) TEXT true",
		"u uuid TEXT true", "j jsonb TEXT true",
	}
	var got []string
	for _, c := range resp.GetColumns() {
		got = append(got, fmt.Sprintf("%s %s %s %v", c.GetName(), c.GetSourceType(), strings.TrimPrefix(c.GetType().String(), "COLUMN_TYPE_"), c.GetNullable()))
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("columns\n got %q\nwant %q", got, want)
	}
	if !reflect.DeepEqual(resp.GetPrimaryKey(), []string{"id"}) {
		t.Errorf("primary key %v, want [id]", resp.GetPrimaryKey())
	}
	if resp.GetEstimatedRows() != 0 {
		t.Errorf("estimated rows %d for an empty table", resp.GetEstimatedRows())
	}
}

func TestReadPGTypes(t *testing.T) {
	url := newDB(t, typesDDL, `INSERT INTO types VALUES
	  (1, -32768, 2147483647, 7, 144.968, -2.25e300, 12.50, true,
	   '2024-01-02 03:04:05.123456+02', '2024-01-02 03:04:05.123456', '1969-12-31', '\x00ff10',
	   'héllo', 'v', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2]}'),
	  (2, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
	  (3, 0, 0, 0, 'NaN', '-Infinity', -0.01, false, 'infinity', '-infinity', 'infinity', '', '', '', NULL, 'null')`)
	s := newService(t)
	rows, _ := readAll(t, s, pgSource(url, "public", "types"), nil, 2)
	micros := time.Date(2024, 1, 2, 1, 4, 5, 123456000, time.UTC).UnixMicro()
	wall := time.Date(2024, 1, 2, 3, 4, 5, 123456000, time.UTC).UnixMicro()
	want := []row{
		// real arrives as the shortest decimal of its float32 (not 144.96800231933594).
		{ref: "id=1", vals: []string{"1", "-32768", "2147483647", "7", "144.968", "-2.25e+300", "12.50", "true",
			"2024-01-02T01:04:05.123456Z", "2024-01-02T03:04:05.123456Z", "1969-12-31", "\x00\xff\x10",
			"héllo", "v", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", `{"a": [1, 2]}`}},
		{ref: "id=2", vals: []string{"2", null, "0", null, null, null, null, null, null, null, null, null, null, null, null, null}},
		{ref: "id=3", vals: []string{"3", "0", "0", "0", "NaN", "-Infinity", "-0.01", "false", null, null, null, "", "", "", null, "null"},
			reject: "infinity|d|column d: date value infinity has no microsecond or day number|infinity"},
	}
	if len(rows) != len(want) {
		t.Fatalf("got %d rows, want %d", len(rows), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(rows[i].vals, want[i].vals) || rows[i].ref != want[i].ref {
			t.Errorf("row %d:\n got %q %q\nwant %q %q", i, rows[i].ref, rows[i].vals, want[i].ref, want[i].vals)
		}
	}
	// Row 3 has three infinities; rowsOf keeps the last reject of a row.
	if rows[2].reject != want[2].reject {
		t.Errorf("row 3 reject %q, want %q", rows[2].reject, want[2].reject)
	}
	resp, err := s.ReadBatch(context.Background(), &extractorv1.ReadBatchRequest{Source: pgSource(url, "", "types"), BatchSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	b := resp.GetBatch()
	if !resp.GetDone() || b.GetSource() != "public.types" || b.GetLastKey() != "3" {
		t.Errorf("done %v source %q last key %q", resp.GetDone(), b.GetSource(), b.GetLastKey())
	}
	var rules []string
	for _, r := range b.GetRejects() {
		rules = append(rules, fmt.Sprintf("%d %s %s %s", r.GetRow(), r.GetRule(), r.GetColumn(), r.GetRaw()))
	}
	if want := []string{"2 infinity ts infinity", "2 infinity tsn -infinity", "2 infinity d infinity"}; !reflect.DeepEqual(rules, want) {
		t.Errorf("rejects %q, want %q", rules, want)
	}
	// Exact wire values, not only their text forms.
	cols := map[string]*commonv1.Column{}
	for _, c := range b.GetColumns() {
		cols[c.GetName()] = c
	}
	if got := cols["ts"].GetInts()[0]; got != micros {
		t.Errorf("ts micros %d, want %d", got, micros)
	}
	if got := cols["tsn"].GetInts()[0]; got != wall {
		t.Errorf("timestamp wall time micros %d, want %d", got, wall)
	}
	if got := cols["d"].GetInts()[0]; got != -1 {
		t.Errorf("1969-12-31 is day %d, want -1", got)
	}
}

func TestPlanAndReadPartitions(t *testing.T) {
	url := newDB(t,
		`CREATE TABLE orders (id int4 PRIMARY KEY, note text)`,
		`INSERT INTO orders SELECT g, 'n' || g FROM generate_series(1, 1000) g`,
		`CREATE TABLE empty (id int8 PRIMARY KEY)`,
		`CREATE TABLE codes (code text PRIMARY KEY, v int)`,
		`INSERT INTO codes VALUES ('b', 2), ('a', 1), ('c''x', 3), ('B', 4)`,
		`CREATE SCHEMA "Sales"`,
		`CREATE TABLE "Sales"."Order Items" ("Item Id" int8 PRIMARY KEY, "select" text)`,
		`INSERT INTO "Sales"."Order Items" SELECT g, 's' FROM generate_series(-5, 5) g`,
	)
	s := newService(t)
	plan := func(src *commonv1.SourceSpec, n int32) []*commonv1.KeyRange {
		t.Helper()
		resp, err := s.PlanPartitions(context.Background(), &extractorv1.PlanPartitionsRequest{Source: src, Partitions: n})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetRanges()
	}
	tests := []struct {
		name       string
		src        *commonv1.SourceSpec
		partitions int32
		ranges     []string
		refs       []string // nil: ids 1..1000
	}{
		{"four ranges", pgSource(url, "", "orders"), 4, []string{"(,250]", "(250,500]", "(500,750]", "(750,]"}, nil},
		{"three uneven ranges", pgSource(url, "", "orders"), 3, []string{"(,333]", "(333,666]", "(666,]"}, nil},
		{"one range", pgSource(url, "", "orders"), 1, []string{"(,]"}, nil},
		{"empty table", pgSource(url, "", "empty"), 4, []string{"(,]"}, []string{}},
		// Text keys split at sampled keys, in the column's collation: the
		// bounds depend on it, so only their number is checked.
		{"text key", pgSource(url, "", "codes"), 4, nil, []string{"code=B", "code=a", "code=b", "code=c'x"}},
		{"more partitions than keys, quoted names", pgSource(url, "Sales", "Order Items"), 20, []string{
			"(,-5]", "(-5,-4]", "(-4,-3]", "(-3,-2]", "(-2,-1]", "(-1,0]", "(0,1]", "(1,2]", "(2,3]", "(3,4]", "(4,]"},
			[]string{"Item Id=-5", "Item Id=-4", "Item Id=-3", "Item Id=-2", "Item Id=-1", "Item Id=0", "Item Id=1", "Item Id=2", "Item Id=3", "Item Id=4", "Item Id=5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ranges := plan(tt.src, tt.partitions)
			var got []string
			for _, r := range ranges {
				got = append(got, "("+r.GetLower()+","+r.GetUpper()+"]")
			}
			if tt.ranges == nil {
				if len(got) != int(tt.partitions) {
					t.Fatalf("ranges %q, want %d", got, tt.partitions)
				}
			} else if !reflect.DeepEqual(got, tt.ranges) {
				t.Fatalf("ranges %q, want %q", got, tt.ranges)
			}
			refs := []string{}
			for _, r := range ranges {
				rows, _ := readAll(t, s, tt.src, r, 7)
				for _, row := range rows {
					refs = append(refs, row.ref)
				}
			}
			want := tt.refs
			if want == nil {
				for i := 1; i <= 1000; i++ {
					want = append(want, "id="+strconv.Itoa(i))
				}
			}
			// Text keys come back in the column's collation order; compare
			// as sets for them, exactly for integer keys.
			if tt.name == "text key" {
				if len(refs) != len(want) || !sameSet(refs, want) {
					t.Fatalf("refs %q, want %q", refs, want)
				}
				return
			}
			if !reflect.DeepEqual(refs, want) {
				t.Fatalf("read %d rows (first %q), want %d rows exactly once in key order", len(refs), refs[:min(5, len(refs))], len(want))
			}
		})
	}
}

func sameSet(a, b []string) bool {
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		m[x]--
	}
	for _, v := range m {
		if v != 0 {
			return false
		}
	}
	return true
}

func TestReadPGCursorDeterminism(t *testing.T) {
	url := newDB(t,
		`CREATE TABLE orders (id int8 PRIMARY KEY, amount numeric(10,2))`,
		`INSERT INTO orders SELECT g * 3, g / 7.0 FROM generate_series(1, 50) g`,
	)
	s := newService(t)
	src := pgSource(url, "", "orders")
	want, _ := readAll(t, s, src, nil, 1000)
	got, cursors := readAll(t, s, src, nil, 4)
	if len(want) != 50 || !reflect.DeepEqual(got, want) {
		t.Fatalf("batch size 4 gives %d rows, batch size 1000 gives %d; they differ", len(got), len(want))
	}
	for i, c := range cursors {
		resp, err := s.ReadBatch(context.Background(), &extractorv1.ReadBatchRequest{Source: src, Cursor: c, BatchSize: 4})
		if err != nil {
			t.Fatal(err)
		}
		if r := rowsOf(t, resp.GetBatch()); !reflect.DeepEqual(r, want[i*4:min(i*4+4, 50)]) {
			t.Fatalf("cursor %q: got %q", c, r)
		}
	}
}

func TestPGErrors(t *testing.T) {
	url := newDB(t,
		`CREATE TABLE nokey (a int)`,
		`CREATE TABLE twokeys (a int, b int, PRIMARY KEY (a, b))`,
		`CREATE TABLE ok (id int PRIMARY KEY)`,
	)
	const secret = "s3cr3t-pw"
	unreachable := "postgres://someone:" + secret + "@127.0.0.1:1/db?sslmode=disable&connect_timeout=5"
	tests := []struct {
		name  string
		src   *commonv1.SourceSpec
		kr    *commonv1.KeyRange
		code  codes.Code
		parts []string
		read  bool // only ReadBatch applies
	}{
		{"missing table", pgSource(url, "", "nope"), nil, codes.NotFound, []string{"public.nope"}, false},
		{"missing schema", pgSource(url, "other", "ok"), nil, codes.NotFound, []string{"other.ok"}, false},
		{"no primary key, no snapshot", pgSource(url, "", "nokey"), nil, codes.FailedPrecondition, []string{"public.nokey", "primary key", "snapshot"}, true},
		{"bad composite cursor", pgSource(url, "", "twokeys"), &commonv1.KeyRange{Lower: "1"}, codes.InvalidArgument, []string{"range.lower", "JSON array of 2"}, true},
		{"no dsn", pgSource("", "", "ok"), nil, codes.InvalidArgument, []string{"source.postgres.dsn"}, false},
		{"no table", pgSource(url, "", ""), nil, codes.InvalidArgument, []string{"source.postgres.table"}, false},
		{"bad dsn", pgSource("postgres://x:"+secret+"@[bad", "", "ok"), nil, codes.InvalidArgument, []string{"source.postgres.dsn"}, false},
		{"unreachable", pgSource(unreachable, "", "ok"), nil, codes.Unavailable, nil, false},
		{"bad range bound", pgSource(url, "", "ok"), &commonv1.KeyRange{Lower: "abc"}, codes.InvalidArgument, []string{"abc"}, true},
	}
	s := newService(t)
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.ReadBatch(ctx, &extractorv1.ReadBatchRequest{Source: tt.src, Range: tt.kr, BatchSize: 10})
			wantCode(t, err, tt.code, tt.parts...)
			errs := []error{err}
			if !tt.read {
				_, err = s.DescribeSource(ctx, &extractorv1.DescribeSourceRequest{Source: tt.src})
				wantCode(t, err, tt.code, tt.parts...)
				errs = append(errs, err)
			}
			if tt.code != codes.InvalidArgument || !tt.read {
				_, err = s.PlanPartitions(ctx, &extractorv1.PlanPartitionsRequest{Source: tt.src, Partitions: 2})
				wantCode(t, err, tt.code, tt.parts...)
				errs = append(errs, err)
			}
			for _, e := range errs {
				if strings.Contains(e.Error(), secret) {
					t.Errorf("error leaks the password: %v", e)
				}
			}
		})
	}
}

// A table never analyzed still gets a row estimate (the planner's, from its
// size): a progress bar needs one. An empty one gets 0.
func TestDescribeEstimateWithoutStatistics(t *testing.T) {
	s := newService(t)
	url := pgtest.NewDatabase(t)
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, q := range []string{`CREATE TABLE est (id bigint PRIMARY KEY, label text)`,
		`INSERT INTO est SELECT g, 'row ' || g FROM generate_series(1, 20000) g`} {
		if _, err := conn.Exec(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := s.DescribeSource(context.Background(), &extractorv1.DescribeSourceRequest{Source: pgSource(url, "public", "est")})
	if err != nil {
		t.Fatal(err)
	}
	// Within a factor of 2 of the 20,000 rows written (the planner
	// guesses the row width from the column types).
	if n := resp.GetEstimatedRows(); n < 10000 || n > 40000 {
		t.Errorf("estimated rows %d for 20000 rows never analyzed", n)
	}
}
