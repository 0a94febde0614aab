package load

import (
	"context"
	"encoding/hex"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

const (
	tText    = commonv1.ColumnType_COLUMN_TYPE_TEXT
	tInt     = commonv1.ColumnType_COLUMN_TYPE_INT64
	tFloat   = commonv1.ColumnType_COLUMN_TYPE_FLOAT64
	tBool    = commonv1.ColumnType_COLUMN_TYPE_BOOL
	tNumeric = commonv1.ColumnType_COLUMN_TYPE_NUMERIC
	tTS      = commonv1.ColumnType_COLUMN_TYPE_TIMESTAMPTZ
	tDate    = commonv1.ColumnType_COLUMN_TYPE_DATE
	tBytes   = commonv1.ColumnType_COLUMN_TYPE_BYTES
)

func micros(y int, m time.Month, d, h, mi, s, us int) int64 {
	return time.Date(y, m, d, h, mi, s, us*1000, time.UTC).UnixMicro()
}

func days(y int, m time.Month, d int) int64 {
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
}

func s(v string) *string { return &v }

func TestLoadEveryType(t *testing.T) {
	e := newEnv(t, `CREATE TABLE every (
		id int8 PRIMARY KEY, small int2, i4 int4, f8 float8, f4 float4, amount numeric(20,4), flag bool,
		at timestamptz, local_at timestamp, day date, blob bytea, body text, code varchar(50))`)
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	weird := "tab\there\nnewline\\back 'q' \"dq\" 🦫 \r end"
	cols := []struct {
		c    col
		want []*string // PostgreSQL's text rendering in UTC, nil = NULL
	}{
		{col{"id", tInt, []any{int64(math.MinInt64), 1, 2, int64(math.MaxInt64)}},
			[]*string{s("-9223372036854775808"), s("1"), s("2"), s("9223372036854775807")}},
		{col{"small", tInt, []any{-32768, 32767, nil, 0}}, []*string{s("-32768"), s("32767"), nil, s("0")}},
		{col{"i4", tInt, []any{math.MinInt32, math.MaxInt32, nil, 42}}, []*string{s("-2147483648"), s("2147483647"), nil, s("42")}},
		{col{"f8", tFloat, []any{0.1, math.NaN(), nil, -1e300}}, []*string{s("0.1"), s("NaN"), nil, s("-1e+300")}},
		{col{"f4", tFloat, []any{1.5, math.Inf(1), nil, math.Inf(-1)}}, []*string{s("1.5"), s("Infinity"), nil, s("-Infinity")}},
		{col{"amount", tNumeric, []any{"12345.6789", "-0.0001", nil, "9999999999999999.9999"}},
			[]*string{s("12345.6789"), s("-0.0001"), nil, s("9999999999999999.9999")}},
		{col{"flag", tBool, []any{true, false, nil, true}}, []*string{s("true"), s("false"), nil, s("true")}},
		{col{"at", tTS, []any{micros(2024, 2, 29, 13, 14, 15, 123456), micros(1969, 7, 20, 20, 17, 40, 1), nil, micros(-100, 3, 1, 0, 0, 0, 0)}},
			[]*string{s("2024-02-29 13:14:15.123456+00"), s("1969-07-20 20:17:40.000001+00"), nil, s("0101-03-01 00:00:00+00 BC")}},
		{col{"local_at", tTS, []any{micros(2024, 2, 29, 13, 14, 15, 123456), micros(1969, 7, 20, 20, 17, 40, 1), nil, micros(-100, 3, 1, 0, 0, 0, 0)}},
			[]*string{s("2024-02-29 13:14:15.123456"), s("1969-07-20 20:17:40.000001"), nil, s("0101-03-01 00:00:00 BC")}},
		{col{"day", tDate, []any{days(1969, 7, 20), days(1900, 1, 1), nil, days(2000, 2, 29)}},
			[]*string{s("1969-07-20"), s("1900-01-01"), nil, s("2000-02-29")}},
		{col{"blob", tBytes, []any{[]byte{0, 1, '\\', 0xff}, []byte{}, nil, all}},
			[]*string{s(`\x00015cff`), s(`\x`), nil, s(`\x` + hex.EncodeToString(all))}},
		{col{"body", tText, []any{weird, "", nil, `\N \. \\`}}, []*string{s(weird), s(""), nil, s(`\N \. \\`)}},
		{col{"code", tText, []any{"ABC", `\N`, nil, "ünïcödé"}}, []*string{s("ABC"), s(`\N`), nil, s("ünïcödé")}},
	}
	var in []col
	var names []string
	for _, c := range cols {
		in = append(in, c.c)
		names = append(names, pgx.Identifier{c.c.name}.Sanitize()+"::text")
	}
	b := mkBatch(1, in...)
	resp, err := e.load(t, e.config("every", "job-types", "p0"), b)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp) != 1 || resp[0].Skipped || resp[0].Counts.Loaded != 4 || resp[0].Counts.Extracted != 4 {
		t.Fatalf("responses: %v", resp)
	}
	ctx := context.Background()
	if _, err := e.db.Exec(ctx, "SET TimeZone = 'UTC'"); err != nil {
		t.Fatal(err)
	}
	rows, err := e.db.Query(ctx, "SELECT "+strings.Join(names, ", ")+" FROM every ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]*string, error) {
		vals := make([]*string, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		return vals, r.Scan(ptrs...)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("%d rows in target, want 4", len(got))
	}
	for r := range 4 {
		for k, c := range cols {
			g, w := got[r][k], c.want[r]
			if (g == nil) != (w == nil) || (g != nil && *g != *w) {
				t.Errorf("row %d column %s: got %s, want %s", r, c.c.name, show(g), show(w))
			}
		}
	}
	var blob []byte
	if err := e.db.QueryRow(ctx, "SELECT blob FROM every WHERE id = $1", int64(math.MaxInt64)).Scan(&blob); err != nil || string(blob) != string(all) {
		t.Fatalf("bytea round trip: %x (%v)", blob, err)
	}
}

func show(p *string) string {
	if p == nil {
		return "NULL"
	}
	return fmt.Sprintf("%q", *p)
}

const itemsDDL = `CREATE TABLE items (id int8 PRIMARY KEY, name varchar(5), qty int4 CHECK (qty >= 0))`

func itemsBatch(seq int64, ids []any, names []any, qtys []any) *commonv1.Batch {
	return mkBatch(seq, col{"id", tInt, ids}, col{"name", tText, names}, col{"qty", tInt, qtys})
}

func TestSameBatchTwiceIsSkipped(t *testing.T) {
	e := newEnv(t, itemsDDL)
	b := itemsBatch(7, []any{1, 2, 3}, []any{"a", "b", "c"}, []any{1, 2, 3})
	cfg := e.config("items", "job-1", "p0")
	resp, err := e.load(t, cfg, b, proto.Clone(b).(*commonv1.Batch))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp) != 2 || resp[0].Skipped || !resp[1].Skipped || resp[0].Seq != 7 || resp[1].Seq != 7 {
		t.Fatalf("responses: %v", resp)
	}
	if !proto.Equal(resp[0].Counts, resp[1].Counts) || resp[1].Counts.Loaded != 3 {
		t.Fatalf("skipped counts %v differ from committed %v", resp[1].Counts, resp[0].Counts)
	}
	// A new stream (a retried partition) is skipped as well.
	resp, err = e.load(t, cfg, b)
	if err != nil || len(resp) != 1 || !resp[0].Skipped || resp[0].Counts.Loaded != 3 {
		t.Fatalf("new stream: %v, %v", resp, err)
	}
	if n := e.count(t, "SELECT count(*) FROM items"); n != 3 {
		t.Fatalf("target holds %d rows, want 3", n)
	}
	if n := e.count(t, "SELECT count(*) FROM cutover.ledger"); n != 1 {
		t.Fatalf("ledger holds %d rows, want 1", n)
	}
	// The same seq under another partition is a different batch.
	b2 := itemsBatch(7, []any{4}, []any{"d"}, []any{4})
	resp, err = e.load(t, e.config("items", "job-1", "p1"), b2)
	if err != nil || len(resp) != 1 || resp[0].Skipped {
		t.Fatalf("other partition: %v, %v", resp, err)
	}
}

func TestConcurrentLoadersCommitOnce(t *testing.T) {
	// No primary key: only the ledger can stop a second copy of the rows.
	e := newEnv(t, `CREATE TABLE events (id int8, name text)`)
	b := mkBatch(1, col{"id", tInt, []any{1, 2, 3, 4}}, col{"name", tText, []any{"a", "b", "c", "d"}})
	const n = 6
	var wg sync.WaitGroup
	resps := make([][]*loaderv1.LoadResponse, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			resps[i], errs[i] = e.load(t, e.config("events", "job-c", "p0"), proto.Clone(b).(*commonv1.Batch))
		})
	}
	wg.Wait()
	committed := 0
	for i := range n {
		if errs[i] != nil || len(resps[i]) != 1 {
			t.Fatalf("loader %d: %v, %v", i, resps[i], errs[i])
		}
		if !resps[i][0].Skipped {
			committed++
		}
		if resps[i][0].Counts.Loaded != 4 {
			t.Fatalf("loader %d counts %v", i, resps[i][0].Counts)
		}
	}
	if committed != 1 {
		t.Fatalf("%d loaders committed the batch, want 1", committed)
	}
	if c := e.count(t, "SELECT count(*) FROM events"); c != 4 {
		t.Fatalf("target holds %d rows, want 4", c)
	}
}

func TestRejectedRowsAreQuarantined(t *testing.T) {
	e := newEnv(t, itemsDDL)
	b := itemsBatch(3, []any{1, 2, 3, 4}, []any{"a", nil, "c", nil}, []any{1, nil, 3, 4})
	b.JobId, b.PartitionId, b.Table, b.Source = "job-q", "p0", "legacy_items", "items.csv"
	withRefs(b, "line 2", "line 3", "line 4", "line 5")
	b.Rejects = []*commonv1.Reject{
		{Row: 1, Stage: "transform", Rule: "cast", Column: "qty", Reason: `column qty: cannot cast "x" to int4`, Raw: "x"},
		{Row: 1, Stage: "validate", Rule: "not_null", Column: "name", Reason: "column name: must not be NULL", Raw: ""},
		{Row: 3, Stage: "validate", Rule: "not_null", Column: "name", Reason: "column name: must not be NULL", Raw: "\x00nul"},
	}
	resp, err := e.load(t, e.config("items", "job-q", "p0"), b)
	if err != nil {
		t.Fatal(err)
	}
	want := &commonv1.Counts{Extracted: 4, Loaded: 2, Quarantined: 2, Batches: 1}
	if len(resp) != 1 || !proto.Equal(resp[0].Counts, want) {
		t.Fatalf("responses %v, want counts %v", resp, want)
	}
	if n := e.count(t, "SELECT count(*) FROM items WHERE id IN (2, 4)"); n != 0 {
		t.Fatalf("%d rejected rows reached the target", n)
	}
	if n := e.count(t, "SELECT count(*) FROM items WHERE id IN (1, 3)"); n != 2 {
		t.Fatalf("%d good rows in the target, want 2", n)
	}
	rows, err := e.db.Query(context.Background(), `SELECT job_id, table_name, target_table, partition_id, seq, row_index, source, source_ref,
		stage, rule, column_name, reason, raw FROM cutover.quarantine ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	type qrow struct {
		Job, Table, Target, Part string
		Seq                      int64
		Row                      int32
		Source, Ref              string
		Stage, Rule, Col         string
		Reason, Raw              string
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[qrow])
	if err != nil {
		t.Fatal(err)
	}
	wantQ := []qrow{
		{"job-q", "legacy_items", "items", "p0", 3, 1, "items.csv", "line 3", "transform", "cast", "qty", `column qty: cannot cast "x" to int4`, "x"},
		{"job-q", "legacy_items", "items", "p0", 3, 1, "items.csv", "line 3", "validate", "not_null", "name", "column name: must not be NULL", ""},
		{"job-q", "legacy_items", "items", "p0", 3, 3, "items.csv", "line 5", "validate", "not_null", "name", "column name: must not be NULL", `\x00nul`},
	}
	if fmt.Sprint(got) != fmt.Sprint(wantQ) {
		t.Fatalf("quarantine:\n got %v\nwant %v", got, wantQ)
	}
	e.checkLedgerBalanced(t)
}

func TestTargetConstraintRowsAreQuarantined(t *testing.T) {
	e := newEnv(t, itemsDDL, `INSERT INTO items VALUES (1, 'old', 1)`,
		`CREATE TABLE counts (id int8 PRIMARY KEY, qty int4)`)
	b := itemsBatch(1,
		[]any{1, 2, 2, 3, 4, 5, 6},
		[]any{"dup", "ok", "again", "toolong", "neg", "fine", "gone"},
		[]any{1, 2, 2, 3, -4, 5, 6})
	withRefs(b, "r1", "r2", "r3", "r4", "r5", "r6", "r7")
	// Row 6 was already rejected upstream: counted once, never loaded.
	b.Rejects = []*commonv1.Reject{{Row: 6, Stage: "validate", Rule: "range", Column: "qty", Reason: "column qty: 6 above 5", Raw: "6"}}
	resp, err := e.load(t, e.config("items", "job-k", "p0"), b)
	if err != nil {
		t.Fatal(err)
	}
	want := &commonv1.Counts{Extracted: 7, Loaded: 2, Quarantined: 5, Batches: 1}
	if len(resp) != 1 || !proto.Equal(resp[0].Counts, want) {
		t.Fatalf("responses %v, want counts %v", resp, want)
	}
	rows, err := e.db.Query(context.Background(), "SELECT id, name FROM items ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var id int64
		var name string
		err := r.Scan(&id, &name)
		return fmt.Sprintf("%d:%s", id, name), err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(loaded, " "); got != "1:old 2:ok 5:fine" {
		t.Fatalf("target rows %q, want the pre-existing row and the first of each duplicate", got)
	}
	qrows, err := e.db.Query(context.Background(), `SELECT row_index, source_ref, stage, rule, column_name, reason, raw
		FROM cutover.quarantine WHERE stage = 'load' ORDER BY row_index`)
	if err != nil {
		t.Fatal(err)
	}
	type q struct {
		Row                   int32
		Ref, Stage, Rule, Col string
		Reason, Raw           string
	}
	got, err := pgx.CollectRows(qrows, pgx.RowToStructByPos[q])
	if err != nil {
		t.Fatal(err)
	}
	wantReason := map[int32]string{
		0: `duplicate key value violates unique constraint "items_pkey": Key (id)=(1) already exists.`,
		2: `duplicate key value violates unique constraint "items_pkey": Key (id)=(2) already exists.`,
		3: `column name: value too long for type character varying(5)`,
		4: `new row for relation "items" violates check constraint "items_qty_check"`,
	}
	if len(got) != len(wantReason) {
		t.Fatalf("load-stage quarantine rows: %v", got)
	}
	for _, g := range got {
		if g.Stage != "load" || g.Rule != "target_constraint" || g.Ref != fmt.Sprintf("r%d", g.Row+1) || !strings.HasPrefix(g.Raw, fmt.Sprintf(`id="%d"`, []int{1, 2, 2, 3, 4}[g.Row])) {
			t.Errorf("quarantine row %+v", g)
		}
		if !strings.HasPrefix(g.Reason, wantReason[g.Row]) {
			t.Errorf("row %d reason %q, want prefix %q", g.Row, g.Reason, wantReason[g.Row])
		}
	}
	if n := e.count(t, "SELECT count(*) FROM cutover.quarantine WHERE rule = 'range'"); n != 1 {
		t.Fatalf("upstream reject stored %d times", n)
	}
	e.checkLedgerBalanced(t)

	// A text value the target type refuses names the column and the value.
	b2 := mkBatch(1, col{"id", tInt, []any{1, 2, 3}}, col{"qty", tText, []any{"7", "12,x", "9"}})
	resp, err = e.load(t, e.config("counts", "job-k", "p-counts"), b2)
	if err != nil || resp[0].Counts.Loaded != 2 || resp[0].Counts.Quarantined != 1 {
		t.Fatalf("cast failure: %v, %v", resp, err)
	}
	var col, reason string
	if err := e.db.QueryRow(context.Background(), `SELECT column_name, reason FROM cutover.quarantine WHERE target_table = 'counts'`).Scan(&col, &reason); err != nil {
		t.Fatal(err)
	}
	if col != "qty" || reason != `column qty: invalid input syntax for type integer: "12,x"` {
		t.Fatalf("column %q reason %q", col, reason)
	}
	e.checkLedgerBalanced(t)
}

func TestDescribeTarget(t *testing.T) {
	e := newEnv(t, `CREATE DOMAIN money_cents AS int8 NOT NULL`,
		`CREATE SCHEMA shop`,
		`CREATE TABLE shop.orders (
			id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			email varchar(120) NOT NULL,
			country char(2),
			amount numeric(12,2) NOT NULL DEFAULT 0,
			cents money_cents,
			ratio real,
			paid boolean,
			placed_at timestamp with time zone DEFAULT now(),
			ship_date date,
			photo bytea,
			tags text[],
			note text)`,
		`ALTER TABLE shop.orders DROP COLUMN note`)
	resp, err := e.client.DescribeTarget(context.Background(), &loaderv1.DescribeTargetRequest{
		Target: &commonv1.TargetSpec{Dsn: e.dsn, Schema: "shop"}, Table: "orders"})
	if err != nil {
		t.Fatal(err)
	}
	want := []*loaderv1.TargetColumn{
		{Name: "id", PgType: "bigint", Type: tInt, NotNull: true, HasDefault: true},
		{Name: "email", PgType: "character varying(120)", Type: tText, NotNull: true, MaxLength: 120},
		{Name: "country", PgType: "character(2)", Type: tText, MaxLength: 2},
		{Name: "amount", PgType: "numeric(12,2)", Type: tNumeric, NotNull: true, HasDefault: true, Precision: 12, Scale: 2},
		{Name: "cents", PgType: "money_cents", Type: tInt, NotNull: true},
		{Name: "ratio", PgType: "real", Type: tFloat},
		{Name: "paid", PgType: "boolean", Type: tBool},
		{Name: "placed_at", PgType: "timestamp with time zone", Type: tTS, HasDefault: true},
		{Name: "ship_date", PgType: "date", Type: tDate},
		{Name: "photo", PgType: "bytea", Type: tBytes},
		{Name: "tags", PgType: "text[]", Type: tText},
	}
	if len(resp.Columns) != len(want) {
		t.Fatalf("got %d columns: %v", len(resp.Columns), resp.Columns)
	}
	for i := range want {
		if !proto.Equal(resp.Columns[i], want[i]) {
			t.Errorf("column %d:\n got %v\nwant %v", i, resp.Columns[i], want[i])
		}
	}

	_, err = e.client.DescribeTarget(context.Background(), &loaderv1.DescribeTargetRequest{Target: e.target(), Table: "missing"})
	if status.Code(err) != codes.NotFound || !strings.Contains(status.Convert(err).Message(), "public.missing") {
		t.Fatalf("missing table: %v", err)
	}
	_, err = e.client.DescribeTarget(context.Background(), &loaderv1.DescribeTargetRequest{Target: e.target()})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "table") {
		t.Fatalf("no table: %v", err)
	}
}

func TestUnreachableTargetIsUnavailableAndRedacted(t *testing.T) {
	e := newEnv(t)
	// A port nothing listens on: connection refused at once.
	dsn := "postgres://app:s3cret-pw@127.0.0.1:1/db?sslmode=disable&connect_timeout=5"
	ctx := context.Background()
	_, err := e.client.DescribeTarget(ctx, &loaderv1.DescribeTargetRequest{Target: &commonv1.TargetSpec{Dsn: dsn}, Table: "t"})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("got %v, want Unavailable", err)
	}
	if msg := err.Error(); strings.Contains(msg, "s3cret-pw") || !strings.Contains(msg, "127.0.0.1:1") {
		t.Fatalf("message must name the target without its password: %s", msg)
	}
	_, err = e.load(t, &loaderv1.LoadConfig{Target: &commonv1.TargetSpec{Dsn: dsn}, Table: "t", JobId: "j"})
	if status.Code(err) != codes.Unavailable || strings.Contains(err.Error(), "s3cret-pw") {
		t.Fatalf("load: %v", err)
	}
	_, err = e.client.GetLedger(ctx, &loaderv1.GetLedgerRequest{Target: &commonv1.TargetSpec{Dsn: "postgres://u:pw-in-url@[::1"}, JobId: "j"})
	if status.Code(err) != codes.InvalidArgument || strings.Contains(err.Error(), "pw-in-url") {
		t.Fatalf("unparseable dsn: %v", err)
	}
}

func TestLoadStreamErrors(t *testing.T) {
	e := newEnv(t, itemsDDL)
	good := itemsBatch(1, []any{1}, []any{"a"}, []any{1})
	malformed := itemsBatch(2, []any{2}, []any{"b"}, []any{2})
	malformed.NumRows = 2
	tests := []struct {
		name    string
		cfg     *loaderv1.LoadConfig
		batches []*commonv1.Batch
		code    codes.Code
		inMsg   string
		acks    int
	}{
		{"batch before config", nil, []*commonv1.Batch{good}, codes.InvalidArgument, "config", 0},
		{"no job id", e.config("items", "", "p0"), nil, codes.InvalidArgument, "config.job_id", 0},
		{"no table", e.config("", "j", "p0"), nil, codes.InvalidArgument, "config.table", 0},
		{"no dsn", &loaderv1.LoadConfig{Table: "items", JobId: "j"}, nil, codes.InvalidArgument, "target.dsn", 0},
		{"malformed batch ends the stream", e.config("items", "j-bad", "p0"), []*commonv1.Batch{good, malformed, itemsBatch(3, []any{3}, []any{"c"}, []any{3})}, codes.InvalidArgument, "malformed", 1},
		{"missing table", e.config("nope", "j", "p0"), []*commonv1.Batch{good}, codes.NotFound, "nope", 0},
		{"unknown column", e.config("items", "j-col", "p0"), []*commonv1.Batch{mkBatch(1, col{"colour", tText, []any{"red"}})}, codes.FailedPrecondition, "colour", 0},
		{"other job's batch", e.config("items", "j", "p0"), []*commonv1.Batch{func() *commonv1.Batch {
			b := proto.Clone(good).(*commonv1.Batch)
			b.JobId = "other"
			return b
		}()}, codes.InvalidArgument, "batch.job_id", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := e.load(t, tt.cfg, tt.batches...)
			if status.Code(err) != tt.code || !strings.Contains(err.Error(), tt.inMsg) {
				t.Fatalf("got %v, want %s naming %q", err, tt.code, tt.inMsg)
			}
			if len(resp) != tt.acks {
				t.Fatalf("%d acks, want %d", len(resp), tt.acks)
			}
		})
	}
	// Only the good batch of the malformed stream was committed.
	if n := e.count(t, "SELECT count(*) FROM cutover.ledger"); n != 1 {
		t.Fatalf("ledger rows %d, want 1", n)
	}
	if n := e.count(t, "SELECT count(*) FROM items"); n != 1 {
		t.Fatalf("target rows %d, want 1", n)
	}
}

func TestGetLedgerAndQuarantineSummary(t *testing.T) {
	e := newEnv(t, itemsDDL)
	reject := func(b *commonv1.Batch, row int32, rule, reason string) {
		b.Rejects = append(b.Rejects, &commonv1.Reject{Row: row, Stage: "validate", Rule: rule, Column: "qty", Reason: reason, Raw: "raw"})
	}
	b1 := itemsBatch(1, []any{1, 2, 3}, []any{"a", "b", "c"}, []any{1, 2, 3})
	b1.Table, b1.Source = "items", "src.csv"
	withRefs(b1, "l1", "l2", "l3")
	reject(b1, 0, "range", "r-first")
	reject(b1, 1, "range", "r-second")
	b2 := itemsBatch(2, []any{4, 5, 6}, []any{"d", "e", "f"}, []any{4, 5, 6})
	b2.Table, b2.Source = "items", "src.csv"
	withRefs(b2, "l4", "l5", "l6")
	reject(b2, 0, "range", "r-third")
	reject(b2, 1, "range", "r-fourth")
	reject(b2, 2, "not_null", "n-first")
	b3 := itemsBatch(1, []any{7}, []any{"g"}, []any{7})
	b3.Table = "items"
	for _, run := range []struct {
		part    string
		batches []*commonv1.Batch
	}{{"p1", []*commonv1.Batch{b1, b2}}, {"p0", []*commonv1.Batch{b3}}} {
		if _, err := e.load(t, e.config("items", "job-s", run.part), run.batches...); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	led, err := e.client.GetLedger(ctx, &loaderv1.GetLedgerRequest{Target: e.target(), JobId: "job-s"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, en := range led.Entries {
		got = append(got, fmt.Sprintf("%s/%d/%s/%d=%d+%d", en.PartitionId, en.Seq, en.LastKey, en.Counts.Extracted, en.Counts.Loaded, en.Counts.Quarantined))
	}
	if g := strings.Join(got, " "); g != "p0/1/key-1/1=1+0 p1/1/key-1/3=1+2 p1/2/key-2/3=0+3" {
		t.Fatalf("ledger %s", g)
	}
	led, err = e.client.GetLedger(ctx, &loaderv1.GetLedgerRequest{Target: e.target(), JobId: "job-s", PartitionId: "p0"})
	if err != nil || len(led.Entries) != 1 || led.Entries[0].PartitionId != "p0" {
		t.Fatalf("ledger of p0: %v, %v", led, err)
	}
	led, err = e.client.GetLedger(ctx, &loaderv1.GetLedgerRequest{Target: e.target(), JobId: "other"})
	if err != nil || len(led.Entries) != 0 {
		t.Fatalf("ledger of another job: %v, %v", led, err)
	}

	sum, err := e.client.GetQuarantineSummary(ctx, &loaderv1.GetQuarantineSummaryRequest{Target: e.target(), JobId: "job-s"})
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Groups) != 2 {
		t.Fatalf("groups: %v", sum.Groups)
	}
	nn, rg := sum.Groups[0], sum.Groups[1]
	if nn.Rule != "not_null" || nn.Count != 1 || len(nn.Examples) != 1 || nn.Examples[0].SourceRef != "l6" {
		t.Fatalf("not_null group %v", nn)
	}
	if rg.Table != "items" || rg.Rule != "range" || rg.Count != 4 || len(rg.Examples) != 3 {
		t.Fatalf("range group %v", rg)
	}
	for i, want := range []string{"r-first", "r-second", "r-third"} {
		ex := rg.Examples[i]
		if ex.Reason != want || ex.Source != "src.csv" || ex.Column != "qty" || ex.Raw != "raw" {
			t.Fatalf("example %d: %v, want reason %s", i, ex, want)
		}
	}
	sum, err = e.client.GetQuarantineSummary(ctx, &loaderv1.GetQuarantineSummaryRequest{Target: e.target(), JobId: "job-s", Examples: 1})
	if err != nil || len(sum.Groups[1].Examples) != 1 || sum.Groups[1].Count != 4 {
		t.Fatalf("one example: %v, %v", sum, err)
	}
	_, err = e.client.GetQuarantineSummary(ctx, &loaderv1.GetQuarantineSummaryRequest{Target: e.target(), JobId: "job-s", Examples: -1})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "examples") {
		t.Fatalf("negative examples: %v", err)
	}
	_, err = e.client.GetLedger(ctx, &loaderv1.GetLedgerRequest{Target: e.target()})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "job_id") {
		t.Fatalf("no job id: %v", err)
	}
	e.checkLedgerBalanced(t)
}

func TestClosedServiceIsUnavailable(t *testing.T) {
	svc := New()
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := svc.GetLedger(context.Background(), &loaderv1.GetLedgerRequest{Target: &commonv1.TargetSpec{Dsn: "postgres://x@127.0.0.1:1/db"}, JobId: "j"})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("got %v, want Unavailable", err)
	}
}

// BenchmarkLoad100k loads 100,000 orders-shaped rows (10 batches of 10,000)
// into PostgreSQL through the gRPC stream.
func BenchmarkLoad100k(b *testing.B) {
	e := newEnv(b, `CREATE TABLE orders (id int8, customer text, amount numeric(12,2), qty int4, price float8,
		created_at timestamptz, ship_date date, note text, paid bool)`)
	batches := make([]*commonv1.Batch, 10)
	for i := range batches {
		batches[i] = ordersBatch(10000)
		batches[i].Seq = int64(i)
	}
	b.SetBytes(100000 * 100)
	run := 0
	for b.Loop() {
		run++
		for _, bt := range batches {
			bt.JobId = fmt.Sprintf("bench-%d", run)
		}
		resp, err := e.load(b, e.config("orders", fmt.Sprintf("bench-%d", run), "p"), batches...)
		if err != nil || len(resp) != 10 || resp[9].Counts.Loaded != 10000 {
			b.Fatalf("load: %v", err)
		}
		b.StopTimer()
		if _, err := e.db.Exec(context.Background(), "TRUNCATE orders"); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
