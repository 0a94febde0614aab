package reconcile

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"github.com/jackc/pgx/v5"
)

// TestCanonicalTextMatchesPostgres stores values in real PostgreSQL columns
// of every type the loader writes and checks that the Go rendering of the
// batch value is exactly col::text under the reconcile session, on a
// database whose own settings print values otherwise.
func TestCanonicalTextMatchesPostgres(t *testing.T) {
	ctx := context.Background()
	pool, tgt := testTarget(t)
	us := func(s string) int64 {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm.UnixMicro()
	}
	days := func(s string) int64 {
		tm, err := time.Parse("2006-01-02", s)
		if err != nil {
			t.Fatal(err)
		}
		return tm.Unix() / 86400
	}
	type value struct {
		param any // what the loader's COPY would mean, as a query parameter
		col   *commonv1.Column
	}
	ints := func(v ...int64) []value {
		var out []value
		for _, x := range v {
			b := batch.NewBuilder("v", commonv1.ColumnType_COLUMN_TYPE_INT64, 1)
			b.AppendInt(x)
			out = append(out, value{x, b.Column()})
		}
		return out
	}
	floats := func(v ...float64) []value {
		var out []value
		for _, x := range v {
			b := batch.NewBuilder("v", commonv1.ColumnType_COLUMN_TYPE_FLOAT64, 1)
			b.AppendFloat(x)
			// The loader's text COPY form; its binary form means the same.
			out = append(out, value{string(pgFloat(nil, x, 64)), b.Column()})
		}
		return out
	}
	texts := func(t commonv1.ColumnType, v ...string) []value {
		var out []value
		for _, x := range v {
			b := batch.NewBuilder("v", t, 1)
			b.AppendString(x)
			var p any = x
			if t == commonv1.ColumnType_COLUMN_TYPE_BYTES {
				p = []byte(x)
			}
			out = append(out, value{p, b.Column()})
		}
		return out
	}
	stamps := func(v ...int64) []value {
		var out []value
		for _, x := range v {
			b := batch.NewBuilder("v", commonv1.ColumnType_COLUMN_TYPE_TIMESTAMPTZ, 1)
			b.AppendInt(x)
			p := any(time.UnixMicro(x).UTC())
			switch x {
			case math.MaxInt64:
				p = "infinity"
			case math.MinInt64:
				p = "-infinity"
			}
			out = append(out, value{p, b.Column()})
		}
		return out
	}
	dates := func(v ...int64) []value {
		var out []value
		for _, x := range v {
			b := batch.NewBuilder("v", commonv1.ColumnType_COLUMN_TYPE_DATE, 1)
			b.AppendInt(x)
			out = append(out, value{string(pgDate(nil, x)), b.Column()})
		}
		return out
	}
	bools := func() []value {
		var out []value
		for _, x := range []bool{true, false} {
			b := batch.NewBuilder("v", commonv1.ColumnType_COLUMN_TYPE_BOOL, 1)
			b.AppendBool(x)
			out = append(out, value{x, b.Column()})
		}
		return out
	}
	num := commonv1.ColumnType_COLUMN_TYPE_NUMERIC
	txt := commonv1.ColumnType_COLUMN_TYPE_TEXT
	numerics := []string{"0", "1", "-1", "12.50", "0.001", "-0.00", "1e3", "1.50e1", "1.5e-3", "00012.3400", "123456789012345678901234567890.123",
		"NaN", "Infinity", "-Infinity", ".5", "-.5", "9.995", "0.005", "-0.005", "99.99"}
	tests := []struct {
		pgType string
		values []value
	}{
		{"smallint", ints(0, -32768, 32767)},
		{"integer", ints(0, math.MinInt32, math.MaxInt32)},
		{"bigint", ints(0, 1, -1, math.MinInt64, math.MaxInt64)},
		{"numeric", texts(num, numerics...)},
		{"numeric(12,2)", texts(num, "0", "1", "-1", "12.5", "0.001", "-0.00", "1e3", "9.995", "0.005", "-0.005", "99.99", "1234567890.12")},
		{"numeric(10,0)", texts(num, "0", "1.5", "-1.5", "2.49", "123")},
		{"numeric(5,3)", ints(0, 1, -12, 99)},
		{"double precision", floats(0, math.Copysign(0, -1), 1, -1, 0.1, 1.0/3, 1e14, 1e15, 123456789012345.6, 1e-4, 1e-5, 0.00012345, 1e300, -2.5e-300,
			math.MaxFloat64, math.SmallestNonzeroFloat64, math.Inf(1), math.Inf(-1), math.NaN(), 100, 1234567.125)},
		{"real", floats(0, 1, 0.1, 1.0/3, 123456, 1234567, 1e-4, 1e-5, 3.4e38, 1e-45, 16777217, 0.30000001192092896, math.Inf(1), math.NaN())},
		{"boolean", bools()},
		{"timestamptz", stamps(0, us("2023-01-05T10:00:00Z"), us("2023-01-05T10:00:00.5Z"), us("2023-01-05T10:00:00.000001Z"), us("2023-12-31T23:59:59.999999Z"),
			us("1969-12-31T23:59:59.123Z"), us("0044-03-15T12:00:00Z"), us("9999-12-31T23:59:59Z"), math.MaxInt64, math.MinInt64,
			-62198755200000000 /* 0001-01-01 BC */)},
		{"timestamp", stamps(0, us("2023-01-05T10:00:00.25Z"), us("1900-02-28T01:02:03Z"), math.MaxInt64)},
		{"timestamptz(0)", stamps(us("2023-01-05T10:00:00.5Z"), us("2023-01-05T10:00:00.499999Z"), us("1969-12-31T23:59:59.5Z"), us("1999-12-31T23:59:59.5Z"))},
		{"timestamp(3)", stamps(us("2023-01-05T10:00:00.1235Z"), us("2023-01-05T10:00:00.1234Z"), us("1960-01-05T10:00:00.0005Z"))},
		{"date", dates(0, days("2023-02-28"), days("2024-02-29"), days("0001-01-01"), days("1899-12-31"), days("9999-12-31"), -719893 /* 0001-12-31 BC */, math.MaxInt64, math.MinInt64)},
		{"text", texts(txt, "", "plain", "tab\there", "line\nbreak", `back\slash`, "引号 'quote' \"double\"", "~", "3:abc")},
		{"varchar(20)", texts(txt, "", "short", "trailing  ")},
		{"char(6)", texts(txt, "ab", "ab  ", "abcdef", "")},
		{"name", texts(txt, "some_name")},
		{"json", texts(txt, `{"b": 1,  "a": [1, 2]}`, `"x"`, `null`)},
		{"uuid", texts(txt, "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", "{a0eebc99-9c0b4ef8-bb6d6bb9bd380a11}", "a0eebc999c0b4ef8bb6d6bb9bd380a11")},
		{"bytea", texts(commonv1.ColumnType_COLUMN_TYPE_BYTES, "", "abc", "\x00\xff\n")},
		{"text from int", func() []value {
			v := ints(42, -7)
			for k := range v {
				v[k].param = fmt.Sprint(v[k].param) // the loader's text COPY form
			}
			return v
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.pgType, func(t *testing.T) {
			pgType := strings.TrimSuffix(tt.pgType, " from int")
			ct := tt.values[0].col.GetType()
			table := "canon_" + strings.NewReplacer(" ", "_", "(", "_", ")", "", ",", "_").Replace(tt.pgType)
			if _, err := pool.Exec(ctx, fmt.Sprintf(`CREATE TABLE %s (k int, v %s)`, table, pgType)); err != nil {
				t.Fatal(err)
			}
			var tc targetCol
			if err := pool.QueryRow(ctx, `SELECT t.typname::text, format_type(a.atttypid, a.atttypmod), a.atttypmod
				FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid WHERE a.attrelid = $1::regclass AND a.attname = 'v'`, table).Scan(&tc.typname, &tc.pgType, &tc.typmod); err != nil {
				t.Fatal(err)
			}
			fn, reason := renderer(ct, tc)
			if fn == nil {
				t.Fatalf("no rendering for %s: %s", tt.pgType, reason)
			}
			for k, v := range tt.values {
				if _, err := pool.Exec(ctx, fmt.Sprintf(`INSERT INTO %s VALUES ($1, $2)`, table), k, v.param); err != nil {
					t.Fatalf("insert %v: %v", v.param, err)
				}
				var want string
				if err := tgt.query(ctx, "read", fmt.Sprintf(`SELECT v::text FROM %s WHERE k = $1`, table), []any{k},
					func(rows pgx.Rows) error { return rows.Scan(&want) }); err != nil {
					t.Fatal(err)
				}
				if got := string(fn(nil, v.col, 0)); got != want {
					t.Errorf("%s value %d (%v): Go %q, PostgreSQL %q", tt.pgType, k, v.param, got, want)
				}
			}
		})
	}
}

// TestUncomparableTypesAreNamed: types whose text PostgreSQL rewrites in
// ways Go does not reproduce are left out with a reason.
func TestUncomparableTypesAreNamed(t *testing.T) {
	tests := []struct {
		ct     commonv1.ColumnType
		tc     targetCol
		reason string
	}{
		{commonv1.ColumnType_COLUMN_TYPE_TEXT, targetCol{typname: "jsonb", pgType: "jsonb"}, "jsonb from text"},
		{commonv1.ColumnType_COLUMN_TYPE_TEXT, targetCol{typname: "", pgType: "integer[]"}, "integer[] from text"},
		{commonv1.ColumnType_COLUMN_TYPE_TEXT, targetCol{typname: "int8", pgType: "bigint"}, "bigint from text"},
		{commonv1.ColumnType_COLUMN_TYPE_TEXT, targetCol{typname: "interval", pgType: "interval"}, "interval from text"},
	}
	for _, tt := range tests {
		fn, reason := renderer(tt.ct, tt.tc)
		if fn != nil || reason != tt.reason {
			t.Errorf("%s: reason %q, want %q", tt.tc.pgType, reason, tt.reason)
		}
	}
}
