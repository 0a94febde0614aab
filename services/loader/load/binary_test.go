package load

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"github.com/jackc/pgx/v5"
)

// bothPathsDDL creates the same table in schemas "txt" and "bin", so the
// text and the binary loads see identical names in PostgreSQL's messages.
func bothPathsDDL(table string) []string {
	var ddl []string
	for _, schema := range []string{"txt", "bin"} {
		ddl = append(ddl, "CREATE SCHEMA IF NOT EXISTS "+schema, fmt.Sprintf(table, schema))
	}
	return ddl
}

// loadBoth loads batches once with text COPY into txt and once with binary
// COPY where possible into bin, and returns the counters of each run.
func (e *env) loadBoth(t *testing.T, table string, batches ...*commonv1.Batch) (text, bin [2]int64) {
	t.Helper()
	for _, schema := range []string{"txt", "bin"} {
		e.svc.textOnly.Store(schema == "txt")
		b0, t0 := e.svc.binaryBatches.Load(), e.svc.textBatches.Load()
		cfg := &loaderv1.LoadConfig{Target: &commonv1.TargetSpec{Dsn: e.dsn, Schema: schema}, Table: table, JobId: "job-" + schema, PartitionId: "p"}
		if _, err := e.load(t, cfg, batches...); err != nil {
			t.Fatalf("%s load: %v", schema, err)
		}
		c := [2]int64{e.svc.textBatches.Load() - t0, e.svc.binaryBatches.Load() - b0}
		if schema == "txt" {
			text = c
		} else {
			bin = c
		}
	}
	e.svc.textOnly.Store(false)
	return text, bin
}

// dump renders a table as text in UTC, ordered by id.
func (e *env) dump(t *testing.T, schema, table string) [][]*string {
	t.Helper()
	ctx := context.Background()
	if _, err := e.db.Exec(ctx, "SET TimeZone = 'UTC'; SET extra_float_digits = 1"); err != nil {
		t.Fatal(err)
	}
	var cols []string
	rows, err := e.db.Query(ctx, `SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
		schema+"."+table)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		cols = append(cols, pgx.Identifier{n}.Sanitize()+"::text")
	}
	rows, err = e.db.Query(ctx, "SELECT "+strings.Join(cols, ", ")+" FROM "+schema+"."+table+" AS t ORDER BY t.id")
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]*string, error) {
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
	return out
}

type qrow struct {
	Row         int32
	Rule, Col   string
	Reason, Raw string
}

func (e *env) quarantined(t *testing.T, job string) []qrow {
	t.Helper()
	rows, err := e.db.Query(context.Background(), `SELECT row_index, rule, column_name, reason, raw FROM cutover.quarantine WHERE job_id = $1 ORDER BY id`, job)
	if err != nil {
		t.Fatal(err)
	}
	q, err := pgx.CollectRows(rows, pgx.RowToStructByPos[qrow])
	if err != nil {
		t.Fatal(err)
	}
	return q
}

const everyBinaryDDL = `CREATE TABLE %s.every (id int8 PRIMARY KEY,
	i2 int2, i4 int4, i8 int8, f4 float4, f8 float8, flag bool, ts timestamptz, tsl timestamp, tsp timestamptz(0), day date,
	num numeric, money numeric(12,2), body text, code varchar(10), fixed char(5), nm name, doc json, docb jsonb, blob bytea,
	pos nonneg, cents cents)`

// TestBinaryMatchesText loads the same batch with text and with binary
// COPY and compares the targets value by value, and the quarantine row by
// row (same rows, columns and reasons).
func TestBinaryMatchesText(t *testing.T) {
	e := newEnv(t, append([]string{`CREATE DOMAIN nonneg AS int4 CHECK (VALUE >= 0)`, `CREATE DOMAIN cents AS numeric(8,2)`},
		bothPathsDDL(everyBinaryDDL)...)...)
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	good := []col{
		{"i2", tInt, []any{math.MinInt16, math.MaxInt16, 0, -1}},
		{"i4", tInt, []any{math.MinInt32, math.MaxInt32, 0, 7}},
		{"i8", tInt, []any{int64(math.MinInt64), int64(math.MaxInt64), 0, -1}},
		{"f4", tFloat, []any{0.1, 1.5, math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), math.MaxFloat32, 1e-45,
			16777217.0, 0.30000000000000004, 3.4028235677973366e38 * 0.9999999, 1.0000000596046448}},
		{"f8", tFloat, []any{0.1, math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), math.MaxFloat64, math.SmallestNonzeroFloat64, -1e300}},
		{"flag", tBool, []any{true, false}},
		{"ts", tTS, tsEdges()},
		{"tsl", tTS, tsEdges()},
		{"tsp", tTS, []any{micros(2024, 1, 1, 0, 0, 0, 500000), micros(1969, 12, 31, 23, 59, 59, 499999)}},
		{"day", tDate, []any{days(1969, 7, 20), days(2000, 1, 1), days(1999, 12, 31), int64(0), int64(-1), days(-44, 3, 15),
			int64(math.MaxInt64), int64(math.MinInt64), days(5874897, 12, 31), days(-4713, 11, 24)}},
		{"num", tNumeric, []any{"0", "-0", "0.000", "-0.00", "NaN", "nan", "Infinity", "-Infinity", "+infinity",
			"123456789012345678901234567890.123456789012345678901234567890", "-1.5", "1e3", "1.5E-7", "0.0001", "10000",
			"9999.9999", "-12.50", ".5", "5.", "+7", "1e-1000", "00012.3400", "-000.00100", "1.23e+20", "12345678.87654321"}},
		{"money", tNumeric, []any{"1.005", "-0.005", "9999999999.99", "NaN", "-0", "12.3456", "1e2"}},
		{"body", tText, []any{"tab\there\nnewline\\back 'q' \"dq\" 🦫 \r end", "", `\N`, `\.`, "\r\n", "ünïcödé"}},
		{"code", tText, []any{"ab", "ünïcödé", "1234567890", "trail     "}},
		{"fixed", tText, []any{"ab", "abcde", "ab        ", ""}},
		{"nm", tText, []any{"pg_catalog", "", "Mixed Case"}},
		{"doc", tText, []any{`{"a": [1, 2.50, "x\ty"], "a": 2}`, `"str"`, `null`, ` [ ] `}},
		{"docb", tText, []any{`{"b": 1, "a": [true, null, 1.50]}`, `"🦫"`, `{}`}},
		{"blob", tBytes, []any{all, []byte{}, []byte{0}, []byte(`\x`)}},
		{"pos", tInt, []any{0, 5}},
		{"cents", tNumeric, []any{"123456.78", "-0.015"}},
	}
	// Each bad value gets a row of its own; sameReason is false where
	// PostgreSQL words the refusal of the text differently (text COPY
	// checks the encoding of a whole line, so it cannot name the column).
	bad := []struct {
		col        string
		typ        commonv1.ColumnType
		val        any
		sameReason bool
	}{
		{"i2", tInt, 32768, true},
		{"i2", tInt, -32769, true},
		{"i4", tInt, int64(math.MaxInt32) + 1, true},
		{"f4", tFloat, 1e300, true},
		{"f4", tFloat, -1e-300, true},
		{"money", tNumeric, "12345678901.5", true},
		{"money", tNumeric, "Infinity", true},
		{"code", tText, "12345678901", true},
		{"fixed", tText, "abcdef", true},
		{"doc", tText, `{bad`, true},
		{"docb", tText, `[1,`, true},
		{"pos", tInt, -1, true},
		{"cents", tNumeric, "1000000", true},
		{"body", tText, "nul \x00 inside", false},
		{"ts", tTS, micros(-5000, 1, 1, 0, 0, 0, 0), true},
		{"day", tDate, days(5874898, 1, 1), true},
	}
	n := 0
	for _, c := range good {
		n = max(n, len(c.vals))
	}
	n += 1 + len(bad) // one all-NULL row
	cols := []col{{"id", tInt, nil}}
	for i := range n {
		cols[0].vals = append(cols[0].vals, i)
	}
	for _, c := range good {
		vals := make([]any, n)
		copy(vals, c.vals)
		for k, bd := range bad {
			if bd.col == c.name {
				vals[n-len(bad)+k] = bd.val
			}
		}
		cols = append(cols, col{c.name, c.typ, vals})
	}
	b := mkBatch(1, cols...)
	txt, bin := e.loadBoth(t, "every", b)
	if txt != [2]int64{1, 0} || bin != [2]int64{0, 1} {
		t.Fatalf("text run used [text binary] = %v, binary run %v", txt, bin)
	}

	gotT, gotB := e.dump(t, "txt", "every"), e.dump(t, "bin", "every")
	if len(gotB) != n-len(bad) || len(gotT) != len(gotB) {
		t.Fatalf("rows loaded: text %d, binary %d, want %d\n%v", len(gotT), len(gotB), n-len(bad), e.quarantined(t, "job-bin"))
	}
	for r := range gotT {
		for k := range gotT[r] {
			if g, w := gotB[r][k], gotT[r][k]; (g == nil) != (w == nil) || (g != nil && *g != *w) {
				t.Errorf("row %d column %s: binary %s, text %s", r, cols[k].name, show(g), show(w))
			}
		}
	}
	// Spot checks that the comparison compares something.
	want := map[[2]int]string{ // {row, column}
		{1, 2}: "2147483647", {0, 4}: "0.1", {5, 4}: "-0", {3, 11}: "0.00",
		{9, 11}: "123456789012345678901234567890.123456789012345678901234567890", {0, 12}: "1.01", {6, 7}: "infinity",
		{0, 9}: "2024-01-01 00:00:01+00", {1, 9}: "1969-12-31 23:59:59+00", {5, 10}: "0045-03-15 BC",
	}
	for at, w := range want {
		if g := gotB[at[0]][at[1]]; g == nil || *g != w {
			t.Errorf("binary row %d column %s = %s, want %q", at[0], cols[at[1]].name, show(g), w)
		}
	}

	qT, qB := e.quarantined(t, "job-txt"), e.quarantined(t, "job-bin")
	if len(qT) != len(bad) || len(qB) != len(bad) {
		t.Fatalf("quarantined: text %d, binary %d, want %d\ntext %v\nbinary %v", len(qT), len(qB), len(bad), qT, qB)
	}
	for k, bd := range bad {
		tq, bq := qT[k], qB[k]
		if tq.Row != bq.Row || tq.Row != int32(n-len(bad)+k) || bq.Col != bd.col ||
			bq.Rule != "target_constraint" || bq.Raw != tq.Raw || bq.Reason == "" {
			t.Errorf("bad %s=%v: text %+v, binary %+v", bd.col, bd.val, tq, bq)
		}
		if bd.sameReason && (tq.Reason != bq.Reason || tq.Col != bq.Col) {
			t.Errorf("bad %s=%v: reason text %q, binary %q", bd.col, bd.val, tq.Reason, bq.Reason)
		}
	}
	e.checkLedgerBalanced(t)
}

func tsEdges() []any {
	return []any{
		micros(2024, 2, 29, 13, 14, 15, 123456), int64(0), int64(-1), micros(1999, 12, 31, 23, 59, 59, 999999),
		micros(1900, 1, 1, 0, 0, 0, 1), micros(-100, 3, 1, 0, 0, 0, 5), int64(math.MaxInt64), int64(math.MinInt64),
		micros(2000, 1, 1, 0, 0, 0, 0), micros(294000, 12, 31, 23, 59, 59, 999999), micros(-4713, 11, 24, 0, 0, 0, 0),
	}
}

// TestBinaryFallsBackToText covers targets and values binary COPY cannot
// express exactly: they load through text COPY, as before.
func TestBinaryFallsBackToText(t *testing.T) {
	e := newEnv(t,
		`CREATE TABLE odd (id int8 PRIMARY KEY, u uuid, arr int4[], qty int4)`,
		`CREATE TABLE plain (id int8 PRIMARY KEY, amount numeric, nm name)`)
	b := mkBatch(1, col{"id", tInt, []any{1, 2, 3}},
		col{"u", tText, []any{"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", nil, "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A12"}},
		col{"arr", tText, []any{"{1,2,3}", "{}", nil}},
		col{"qty", tText, []any{"7", nil, " 9"}}) // TEXT into int4: PostgreSQL parses it
	b0, t0 := e.svc.binaryBatches.Load(), e.svc.textBatches.Load()
	if resp, err := e.load(t, e.config("odd", "job-odd", "p"), b); err != nil || resp[0].Counts.Loaded != 3 {
		t.Fatalf("load: %v %v", resp, err)
	}
	if e.svc.binaryBatches.Load() != b0 || e.svc.textBatches.Load() != t0+1 {
		t.Fatalf("uuid/array target did not use text COPY")
	}
	var got string
	if err := e.db.QueryRow(context.Background(), `SELECT string_agg(concat_ws('|', id, u, arr, qty), ';' ORDER BY id) FROM odd`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if want := "1|a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11|{1,2,3}|7;2|{};3|a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12|9"; got != want {
		t.Fatalf("odd = %q, want %q", got, want)
	}

	// Numerics outside the plain grammar (blanks) and names namein would
	// truncate send that batch as text; the next clean batch is binary.
	long := strings.Repeat("n", 70)
	batches := []*commonv1.Batch{
		mkBatch(1, col{"id", tInt, []any{1, 2}}, col{"amount", tNumeric, []any{" 12.5 ", "1"}}, col{"nm", tText, []any{"a", nil}}),
		mkBatch(2, col{"id", tInt, []any{3}}, col{"amount", tNumeric, []any{"2"}}, col{"nm", tText, []any{long}}),
		mkBatch(3, col{"id", tInt, []any{4}}, col{"amount", tNumeric, []any{"-3.25"}}, col{"nm", tText, []any{"b"}}),
	}
	b0, t0 = e.svc.binaryBatches.Load(), e.svc.textBatches.Load()
	if resp, err := e.load(t, e.config("plain", "job-plain", "p"), batches...); err != nil || len(resp) != 3 {
		t.Fatalf("load: %v %v", resp, err)
	}
	if e.svc.binaryBatches.Load()-b0 != 1 || e.svc.textBatches.Load()-t0 != 2 {
		t.Fatalf("binary %d, text %d batches, want 1 and 2", e.svc.binaryBatches.Load()-b0, e.svc.textBatches.Load()-t0)
	}
	if err := e.db.QueryRow(context.Background(), `SELECT string_agg(concat_ws('|', id, amount, nm), ';' ORDER BY id) FROM plain`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if want := "1|12.5|a;2|1;3|2|" + long[:63] + ";4|-3.25|b"; got != want {
		t.Fatalf("plain = %q, want %q", got, want)
	}
	e.checkLedgerBalanced(t)
}

// TestBinaryRangeRejectsAndIsolation mixes rows set aside before sending
// (int2 range) with rows PostgreSQL refuses (duplicate key) in one batch:
// both are quarantined in row order and the rest loads in binary.
func TestBinaryRangeRejectsAndIsolation(t *testing.T) {
	e := newEnv(t, `CREATE TABLE small (id int8 PRIMARY KEY, v int2)`)
	b := mkBatch(1, col{"id", tInt, []any{1, 2, 1, 3, 4, 4}}, col{"v", tInt, []any{1, 70000, 3, nil, -70000, 6}})
	withRefs(b, "a", "b", "c", "d", "e", "f")
	b.Rejects = []*commonv1.Reject{{Row: 3, Stage: "validate", Rule: "range", Column: "v", Reason: "column v: NULL", Raw: "id=3"}}
	resp, err := e.load(t, e.config("small", "job-small", "p"), b)
	if err != nil {
		t.Fatal(err)
	}
	if c := resp[0].Counts; c.Loaded != 2 || c.Quarantined != 4 || e.svc.binaryBatches.Load() != 1 {
		t.Fatalf("counts %v, binary batches %d", c, e.svc.binaryBatches.Load())
	}
	q := e.quarantined(t, "job-small")
	var got []string
	for _, r := range q {
		got = append(got, fmt.Sprintf("%d %s %s", r.Row, r.Col, r.Reason))
	}
	// Upstream rejects are stored first, then the load's in row order; row
	// 5 loads because the earlier id 4 (row 4) never reached PostgreSQL.
	want := []string{
		"3 v column v: NULL",
		`1 v column v: value "70000" is out of range for type smallint`,
		`2  duplicate key value violates unique constraint "small_pkey": Key (id)=(1) already exists.`,
		`4 v column v: value "-70000" is out of range for type smallint`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("quarantine:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := e.count(t, `SELECT count(*) FROM small WHERE (id, v) IN ((1, 1), (4, 6))`); n != 2 {
		t.Fatalf("loaded rows: %d of 2", n)
	}
	e.checkLedgerBalanced(t)
}

// decodeNumericBinary is a reference decoder of PostgreSQL's numeric
// binary format: the exact value and dscale, or the special name.
func decodeNumericBinary(b []byte) (v *big.Rat, dscale int, special string, err error) {
	if len(b) < 8 {
		return nil, 0, "", fmt.Errorf("short header %x", b)
	}
	nd, w := int(binary.BigEndian.Uint16(b)), int(int16(binary.BigEndian.Uint16(b[2:])))
	sign, ds := binary.BigEndian.Uint16(b[4:]), int(binary.BigEndian.Uint16(b[6:]))
	if len(b) != 8+2*nd {
		return nil, 0, "", fmt.Errorf("%d digits in %d bytes", nd, len(b))
	}
	switch sign {
	case numericNaN:
		return nil, 0, "NaN", nil
	case numericPInf:
		return nil, 0, "Infinity", nil
	case numericNInf:
		return nil, 0, "-Infinity", nil
	case numericPos, numericNeg:
	default:
		return nil, 0, "", fmt.Errorf("sign %x", sign)
	}
	v = new(big.Rat)
	base := big.NewRat(10000, 1)
	for k := range nd {
		d := int64(binary.BigEndian.Uint16(b[8+2*k:]))
		if d >= 10000 || ((k == 0 || k == nd-1) && d == 0) {
			return nil, 0, "", fmt.Errorf("digit %d = %d of %d", k, d, nd)
		}
		v.Mul(v, base)
		v.Add(v, big.NewRat(d, 1))
	}
	// v is the integer of all digits; scale by 10000^(w-nd+1).
	e := w - nd + 1
	p := new(big.Int).Exp(big.NewInt(10000), big.NewInt(int64(max(e, -e))), nil)
	if e >= 0 {
		v.Mul(v, new(big.Rat).SetInt(p))
	} else {
		v.Quo(v, new(big.Rat).SetInt(p))
	}
	if sign == numericNeg {
		if nd == 0 {
			return nil, 0, "", fmt.Errorf("negative zero")
		}
		v.Neg(v)
	}
	return v, ds, "", nil
}

func FuzzNumericBinary(f *testing.F) {
	for _, s := range []string{"0", "-0", "0.000", "NaN", "nan", "-NaN", "Infinity", "-infinity", "inf", "1", "-1.5", "1e3", "1E-7",
		".5", "5.", ".", "+", "-", "1e", "1e+", "0.0001", "10000", "9999.9999", "123456789012345678901234567890.0000000001",
		"1e1000", "1e-1000", "1e1001", " 1", "1_000", "0x10", "00012.3400", "1.5e-3", "12,5", "--1", "1.2.3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := parseNumeric([]byte(s))
		if !ok {
			return
		}
		enc := appendNumeric(nil, []byte(s), &d)
		v, ds, special, err := decodeNumericBinary(enc)
		if err != nil {
			t.Fatalf("%q encodes to %x: %v", s, enc, err)
		}
		if special != "" {
			if !strings.EqualFold(strings.TrimPrefix(s, "+"), special) {
				t.Fatalf("%q decodes as %s", s, special)
			}
			return
		}
		want, ok := new(big.Rat).SetString(s)
		if !ok {
			t.Fatalf("%q accepted but not a decimal", s)
		}
		if v.Cmp(want) != 0 {
			t.Fatalf("%q encodes to %x = %s", s, enc, v.RatString())
		}
		// dscale: the fraction digits written, less the exponent.
		mant, exp, _ := strings.Cut(strings.ToLower(s), "e")
		_, frac, _ := strings.Cut(mant, ".")
		e := 0
		if exp != "" {
			e, _ = strconv.Atoi(exp) // decimal: "-010" is -10
		}
		if wantDs := max(0, len(frac)-e); ds != wantDs {
			t.Fatalf("%q has dscale %d, want %d", s, ds, wantDs)
		}
		if !new(big.Rat).Mul(v, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(ds)), nil))).IsInt() {
			t.Fatalf("%q: dscale %d hides digits of %s", s, ds, v.RatString())
		}
	})
}

// TestNumericBinaryMatchesPostgres has PostgreSQL read each literal both
// as text and as our binary, and compares its renderings.
func TestNumericBinaryMatchesPostgres(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	pc := e.db.PgConn()
	for _, s := range []string{"0", "-0", "0.000", "-0.00", "NaN", "nAn", "Infinity", "-Infinity", "+INFINITY", "1", "-1.5", "1e3",
		"1.5E-7", ".5", "5.", "+7", "0.0001", "10000", "9999.9999", "99999999", "100000000", "0.00010000", "-12.50",
		"123456789012345678901234567890.123456789012345678901234567890", "1e1000", "-1e-1000", "1.23456789e-990",
		"00012.3400", "-000.00100", "1.23e+20", "0e-010", "3.14159265358979323846264338327950288419716939937510"} {
		d, ok := parseNumeric([]byte(s))
		if !ok {
			t.Errorf("%q refused", s)
			continue
		}
		enc := appendNumeric(nil, []byte(s), &d)
		rd := pc.ExecParams(ctx, "SELECT $1::numeric::text, $2::text::numeric::text", [][]byte{enc, []byte(s)},
			[]uint32{1700, 25}, []int16{1, 0}, []int16{0, 0}).Read()
		if rd.Err != nil {
			t.Errorf("%q: %v", s, rd.Err)
			continue
		}
		if bin, txt := string(rd.Rows[0][0]), string(rd.Rows[0][1]); bin != txt {
			t.Errorf("%q: binary reads as %s, text as %s", s, bin, txt)
		}
	}
	for _, s := range []string{"", " 1", "1 ", "1_000", "0x10", "inf", "-NaN", "1e1001", "1e", ".", "1.2.3", "12,5", "1e-99999999999"} {
		if _, ok := parseNumeric([]byte(s)); ok {
			t.Errorf("%q accepted", s)
		}
	}
}

// benchOrdersBatch is the bench.sh orders row: id, customer_id, order_no,
// status, amount, currency, created_at, note.
func benchOrdersBatch(seq int64, n int) *commonv1.Batch {
	id := batch.NewBuilder("id", tInt, n)
	cust := batch.NewBuilder("customer_id", tInt, n)
	no := batch.NewBuilder("order_no", tText, n)
	st := batch.NewBuilder("status", tText, n)
	amount := batch.NewBuilder("amount", tNumeric, n)
	cur := batch.NewBuilder("currency", tText, n)
	at := batch.NewBuilder("created_at", tTS, n)
	note := batch.NewBuilder("note", tText, n)
	var scratch []byte
	statuses := []string{"new", "paid", "shipped", "done", "cancelled"}
	for k := range n {
		i := int(seq)*n + k
		id.AppendInt(int64(i + 1))
		cust.AppendInt(int64(i % 50000))
		scratch = fmt.Appendf(scratch[:0], "ORD-%08d", i)
		no.AppendBytes(scratch)
		st.AppendString(statuses[i%5])
		scratch = fmt.Appendf(scratch[:0], "%d.%02d", i%100000, i%100)
		amount.AppendBytes(scratch)
		cur.AppendString([]string{"EUR", "USD", "GBP"}[i%3])
		at.AppendInt(time.Date(2023, time.Month(1+i%12), 1+i%28, i%24, i%60, i%60, 0, time.UTC).UnixMicro())
		scratch = fmt.Appendf(scratch[:0], "order note %d for customer %d", i, i%50000)
		note.AppendBytes(scratch)
	}
	cols := []*commonv1.Column{id.Column(), cust.Column(), no.Column(), st.Column(), amount.Column(), cur.Column(), at.Column(), note.Column()}
	return &commonv1.Batch{Seq: seq, Table: "orders", NumRows: int32(n), Columns: cols}
}

// BenchmarkLoadTextVsBinary loads 100,000 bench.sh orders rows (10 batches
// of 10,000) through the gRPC stream with text and with binary COPY.
func BenchmarkLoadTextVsBinary(b *testing.B) {
	e := newEnv(b, `CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint, order_no text, status text,
		amount numeric(12,2), currency text, created_at timestamptz, note text)`)
	batches := make([]*commonv1.Batch, 10)
	for i := range batches {
		batches[i] = benchOrdersBatch(int64(i), 10000)
	}
	run := 0
	for _, format := range []string{"text", "binary"} {
		b.Run(format, func(b *testing.B) {
			e.svc.textOnly.Store(format == "text")
			defer e.svc.textOnly.Store(false)
			b.SetBytes(100000 * 100)
			for b.Loop() {
				run++ // a new job each time: the ledger must not skip
				job := fmt.Sprintf("bench-%s-%d", format, run)
				resp, err := e.load(b, e.config("orders", job, "p"), batches...)
				if err != nil || len(resp) != 10 || resp[9].Counts.Loaded != 10000 || resp[9].Skipped {
					b.Fatalf("load: %v", err)
				}
				b.StopTimer()
				if _, err := e.db.Exec(context.Background(), "TRUNCATE orders"); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// encodeAll runs prepare and reads the whole binary COPY stream.
func encodeAll(e *binEncoder, b *commonv1.Batch, p []byte) int {
	if !e.prepare(b, nil) {
		panic("batch refused")
	}
	e.rd.reset(e, b, e.lines)
	total := 0
	for {
		n, err := e.rd.Read(p)
		total += n
		if err == io.EOF {
			return total
		}
	}
}

func ordersKinds(e *binEncoder, b *commonv1.Batch) {
	types := map[string]string{"id": "int8", "customer_id": "int8", "order_no": "text", "status": "text", "amount": "numeric",
		"currency": "text", "created_at": "timestamptz", "note": "text"}
	e.kinds = binPlan(b.GetColumns(), types, nil)
}

func TestBinaryEncodeDoesNotAllocate(t *testing.T) {
	b := benchOrdersBatch(0, 1000)
	var e binEncoder
	ordersKinds(&e, b)
	p := make([]byte, 65531)
	n := encodeAll(&e, b, p)
	if n < 1000*60 {
		t.Fatalf("encoded %d bytes for 1000 rows", n)
	}
	if a := testing.AllocsPerRun(10, func() { encodeAll(&e, b, p) }); a != 0 {
		t.Fatalf("binary encode of a warm encoder allocates %v times per batch", a)
	}
}

func BenchmarkEncodeBinary(b *testing.B) {
	bt := benchOrdersBatch(0, 10000)
	var e binEncoder
	ordersKinds(&e, bt)
	p := make([]byte, 65531)
	b.SetBytes(int64(encodeAll(&e, bt, p)))
	b.ReportAllocs()
	for b.Loop() {
		encodeAll(&e, bt, p)
	}
}
