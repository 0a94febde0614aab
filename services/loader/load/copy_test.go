package load

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"github.com/cutover/cutover/services/kit/batch"
)

// decodeCopy is a reference decoder for COPY text format as PostgreSQL
// reads it: rows end at an unescaped newline, fields at an unescaped tab,
// \N alone is NULL. It returns nil for a NULL field.
func decodeCopy(data []byte) ([][]*string, error) {
	var rows [][]*string
	for len(data) > 0 {
		nl := bytes.IndexByte(data, '\n')
		if nl < 0 {
			return nil, errors.New("last line not terminated")
		}
		line := data[:nl]
		data = data[nl+1:]
		var row []*string
		for _, f := range bytes.Split(line, []byte{'\t'}) {
			if string(f) == `\N` {
				row = append(row, nil)
				continue
			}
			var sb strings.Builder
			for i := 0; i < len(f); i++ {
				if f[i] != '\\' {
					sb.WriteByte(f[i])
					continue
				}
				i++
				if i == len(f) {
					return nil, errors.New("dangling backslash")
				}
				switch f[i] {
				case '\\':
					sb.WriteByte('\\')
				case 't':
					sb.WriteByte('\t')
				case 'n':
					sb.WriteByte('\n')
				case 'r':
					sb.WriteByte('\r')
				default:
					return nil, fmt.Errorf("unexpected escape \\%c", f[i])
				}
			}
			s := sb.String()
			row = append(row, &s)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func FuzzEncodeCopy(f *testing.F) {
	for _, s := range []string{"", "plain", "a\tb", "line\nbreak\r\n", `back\slash`, `\N`, `\.`, "quote'\"", "emoji 🦫", "\x00\xff"} {
		f.Add(s, "x")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		c1 := batch.NewBuilder("a", commonv1.ColumnType_COLUMN_TYPE_TEXT, 3)
		c2 := batch.NewBuilder("b", commonv1.ColumnType_COLUMN_TYPE_NUMERIC, 3)
		c1.AppendString(a)
		c2.AppendString(b)
		c1.AppendNull()
		c2.AppendString(a)
		c1.AppendString(b + a)
		c2.AppendNull()
		bt := &commonv1.Batch{NumRows: 3, Columns: []*commonv1.Column{c1.Column(), c2.Column()}}
		var e encoder
		e.encode(bt, nil)
		rows, err := decodeCopy(e.buf)
		if err != nil {
			t.Fatalf("decode %q: %v", e.buf, err)
		}
		want := [][]*string{{&a, &b}, {nil, &a}, {ptr(b + a), nil}}
		if got, exp := render(rows), render(want); got != exp {
			t.Fatalf("round trip of %q, %q:\n got %s\nwant %s", a, b, got, exp)
		}
		if len(e.lines) != 3 || e.ends[2] != len(e.buf) {
			t.Fatalf("line bookkeeping: lines %v ends %v len %d", e.lines, e.ends, len(e.buf))
		}
	})
}

// FuzzTimestamp checks the hand-written calendar against package time for
// every year time formats the RFC 3339 way.
func FuzzTimestamp(f *testing.F) {
	for _, us := range []int64{0, -1, 1, 86400e6 - 1, -86400e6, 1700000000123456, -14182940000000, 253402300799999999, -62135596800000000} {
		f.Add(us)
	}
	f.Fuzz(func(t *testing.T, us int64) {
		tm := time.UnixMicro(us).UTC()
		if tm.Year() < 1 || tm.Year() > 9999 {
			return
		}
		got := string(appendTimestamp(nil, us))
		if want := tm.Format("2006-01-02T15:04:05.000000Z"); got != want {
			t.Fatalf("appendTimestamp(%d) = %s, want %s", us, got, want)
		}
		days := us / microsPerDay
		if got, want := string(appendDate(nil, days)), time.Unix(days*86400, 0).UTC().Format("2006-01-02"); got != want {
			t.Fatalf("appendDate(%d) = %s, want %s", days, got, want)
		}
	})
}

func ptr(s string) *string { return &s }

func render(rows [][]*string) string {
	var sb strings.Builder
	for _, r := range rows {
		sb.WriteByte('[')
		for _, v := range r {
			if v == nil {
				sb.WriteString("NULL ")
			} else {
				fmt.Fprintf(&sb, "%q ", *v)
			}
		}
		sb.WriteByte(']')
	}
	return sb.String()
}

func TestAppendValue(t *testing.T) {
	tests := []struct {
		name string
		typ  commonv1.ColumnType
		val  any
		want string
	}{
		{"null", commonv1.ColumnType_COLUMN_TYPE_INT64, nil, `\N`},
		{"int min", commonv1.ColumnType_COLUMN_TYPE_INT64, int64(math.MinInt64), "-9223372036854775808"},
		{"float", commonv1.ColumnType_COLUMN_TYPE_FLOAT64, 0.1, "0.1"},
		{"float big", commonv1.ColumnType_COLUMN_TYPE_FLOAT64, 1e300, "1e+300"},
		{"nan", commonv1.ColumnType_COLUMN_TYPE_FLOAT64, math.NaN(), "NaN"},
		{"inf", commonv1.ColumnType_COLUMN_TYPE_FLOAT64, math.Inf(1), "Infinity"},
		{"-inf", commonv1.ColumnType_COLUMN_TYPE_FLOAT64, math.Inf(-1), "-Infinity"},
		{"true", commonv1.ColumnType_COLUMN_TYPE_BOOL, true, "t"},
		{"false", commonv1.ColumnType_COLUMN_TYPE_BOOL, false, "f"},
		{"epoch", commonv1.ColumnType_COLUMN_TYPE_TIMESTAMPTZ, int64(0), "1970-01-01T00:00:00.000000Z"},
		{"pre-1970 micros", commonv1.ColumnType_COLUMN_TYPE_TIMESTAMPTZ, int64(-1), "1969-12-31T23:59:59.999999Z"},
		{"ts infinity", commonv1.ColumnType_COLUMN_TYPE_TIMESTAMPTZ, int64(math.MaxInt64), "infinity"},
		{"ts BC", commonv1.ColumnType_COLUMN_TYPE_TIMESTAMPTZ, time.Date(-45, 12, 31, 1, 2, 3, 4000, time.UTC).UnixMicro(), "0046-12-31T01:02:03.000004Z BC"},
		{"date", commonv1.ColumnType_COLUMN_TYPE_DATE, int64(-25567), "1900-01-01"},
		{"date year 1", commonv1.ColumnType_COLUMN_TYPE_DATE, int64(-719162), "0001-01-01"},
		{"date 1 BC", commonv1.ColumnType_COLUMN_TYPE_DATE, int64(-719163), "0001-12-31 BC"},
		{"date 5 digits", commonv1.ColumnType_COLUMN_TYPE_DATE, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC).Unix() / 86400, "10000-01-01"},
		{"bytes", commonv1.ColumnType_COLUMN_TYPE_BYTES, []byte{0, '\\', 0xff}, `\\x005cff`},
		{"text", commonv1.ColumnType_COLUMN_TYPE_TEXT, "a\tb\nc\rd\\e'f", `a\tb\nc\rd\\e'f`},
		{"numeric", commonv1.ColumnType_COLUMN_TYPE_NUMERIC, "-12.50", "-12.50"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mkBatch(0, col{"c", tt.typ, []any{tt.val}})
			if got := string(appendValue(nil, b.Columns[0], 0)); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEncodeSkipsRejectedAndDoesNotAllocate(t *testing.T) {
	b := ordersBatch(1000)
	var skip []byte
	skip = batch.SetBit(skip, 3)
	skip = batch.SetBit(skip, 999)
	var e encoder
	e.encode(b, skip)
	if len(e.lines) != 998 || e.lines[3] != 4 {
		t.Fatalf("lines: %d, line 3 is row %d", len(e.lines), e.lines[3])
	}
	rows, err := decodeCopy(e.span(3, 4))
	if err != nil || len(rows) != 1 || *rows[0][0] != "5" {
		t.Fatalf("span(3,4) = %q (%v)", e.span(3, 4), err)
	}
	if a := testing.AllocsPerRun(10, func() { e.encode(b, skip) }); a != 0 {
		t.Fatalf("encode of a warm encoder allocates %v times per batch", a)
	}
}

// ordersBatch is an orders-shaped batch: 9 columns, about 100 bytes a row.
func ordersBatch(n int) *commonv1.Batch {
	id := batch.NewBuilder("id", commonv1.ColumnType_COLUMN_TYPE_INT64, n)
	cust := batch.NewBuilder("customer", commonv1.ColumnType_COLUMN_TYPE_TEXT, n)
	amount := batch.NewBuilder("amount", commonv1.ColumnType_COLUMN_TYPE_NUMERIC, n)
	qty := batch.NewBuilder("qty", commonv1.ColumnType_COLUMN_TYPE_INT64, n)
	price := batch.NewBuilder("price", commonv1.ColumnType_COLUMN_TYPE_FLOAT64, n)
	created := batch.NewBuilder("created_at", commonv1.ColumnType_COLUMN_TYPE_TIMESTAMPTZ, n)
	ship := batch.NewBuilder("ship_date", commonv1.ColumnType_COLUMN_TYPE_DATE, n)
	note := batch.NewBuilder("note", commonv1.ColumnType_COLUMN_TYPE_TEXT, n)
	paid := batch.NewBuilder("paid", commonv1.ColumnType_COLUMN_TYPE_BOOL, n)
	refs := batch.NewBuilder("ref", commonv1.ColumnType_COLUMN_TYPE_TEXT, n)
	var scratch []byte
	for i := range n {
		id.AppendInt(int64(i + 1))
		scratch = fmt.Appendf(scratch[:0], "customer-%06d@example.com", i%5000)
		cust.AppendBytes(scratch)
		scratch = fmt.Appendf(scratch[:0], "%d.%02d", i%100000, i%100)
		amount.AppendBytes(scratch)
		qty.AppendInt(int64(i % 17))
		price.AppendFloat(float64(i%1000) / 8)
		created.AppendInt(1700000000000000 + int64(i)*1000003)
		ship.AppendInt(19000 + int64(i%400))
		if i%10 == 0 {
			note.AppendNull()
		} else {
			scratch = fmt.Appendf(scratch[:0], "leave at door\tring twice #%d", i)
			note.AppendBytes(scratch)
		}
		paid.AppendBool(i%3 == 0)
		scratch = fmt.Appendf(scratch[:0], "line %d", i+2)
		refs.AppendBytes(scratch)
	}
	cols := []*commonv1.Column{id.Column(), cust.Column(), amount.Column(), qty.Column(), price.Column(), created.Column(), ship.Column(), note.Column(), paid.Column()}
	return &commonv1.Batch{JobId: "bench", PartitionId: "p", Table: "orders", Source: "orders.csv", NumRows: int32(n), Columns: cols, SourceRefs: refs.Column()}
}

func BenchmarkEncodeCopy(b *testing.B) {
	bt := ordersBatch(10000)
	var e encoder
	e.encode(bt, nil)
	b.SetBytes(int64(len(e.buf)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		e.encode(bt, nil)
	}
}
