package transform

import (
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	transformerv1 "github.com/cutover/cutover/gen/cutover/transformer/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"google.golang.org/protobuf/proto"
)

// textBatch builds a batch of one TEXT column "v"; a nil entry is NULL.
func textBatch(vals ...*string) *commonv1.Batch {
	b := batch.NewBuilder("v", tText, len(vals))
	for _, v := range vals {
		if v == nil {
			b.AppendNull()
		} else {
			b.AppendString(*v)
		}
	}
	return &commonv1.Batch{NumRows: int32(len(vals)), Columns: []*commonv1.Column{b.Column()}}
}

// castOne pushes one text value through Apply and returns the output text,
// "NULL", or the reject reason prefixed with "reject ".
func castOne(t *testing.T, m *commonv1.ColumnMapping, in string) string {
	t.Helper()
	m = proto.Clone(m).(*commonv1.ColumnMapping)
	m.Target, m.Source = "out", "v"
	out, err := Apply(&transformerv1.TransformConfig{Columns: []*commonv1.ColumnMapping{m}}, textBatch(&in))
	if err != nil {
		t.Fatalf("Apply(%q): %v", in, err)
	}
	if err := batch.Check(out); err != nil {
		t.Fatalf("Apply(%q) built a malformed batch: %v", in, err)
	}
	if len(out.Rejects) > 0 {
		r := out.Rejects[0]
		if !batch.IsNull(out.Columns[0], 0) {
			t.Errorf("Apply(%q): rejected slot is not NULL", in)
		}
		if r.Stage != "transform" || r.Column != "out" || r.Raw != batch.SafeRaw([]byte(in)) {
			t.Errorf("Apply(%q): reject %+v lacks stage/column/raw", in, r)
		}
		return "reject " + r.Rule + ": " + r.Reason
	}
	s, ok := batch.Text(out.Columns[0], 0)
	if !ok {
		return "NULL"
	}
	return s
}

func typ(t commonv1.ColumnType) *commonv1.ColumnMapping { return &commonv1.ColumnMapping{Type: t} }

func numeric(p, s int32) *commonv1.ColumnMapping {
	return &commonv1.ColumnMapping{Type: tNum, Precision: p, Scale: s}
}

func TestCasts(t *testing.T) {
	tsFmt := &commonv1.ColumnMapping{Type: tTS, Formats: []string{"02/01/2006 15:04", "Jan 2 2006"}}
	dateFmt := &commonv1.ColumnMapping{Type: tDate, Formats: []string{"02.01.2006"}}
	tests := []struct {
		m    *commonv1.ColumnMapping
		in   string
		want string // output text, "NULL", or a prefix of "reject <rule>: <reason>"
	}{
		// bigint
		{typ(tInt), "42", "42"},
		{typ(tInt), "  -42 ", "-42"},
		{typ(tInt), "+7", "7"},
		{typ(tInt), "007", "7"},
		{typ(tInt), "", "NULL"}, // empty text is NULL for a typed target
		{typ(tInt), "   ", `reject cast: column out: cannot cast "   " to bigint: not an integer`},
		{typ(tInt), "9223372036854775807", "9223372036854775807"},
		{typ(tInt), "-9223372036854775808", "-9223372036854775808"},
		{typ(tInt), "9223372036854775808", `reject cast: column out: cannot cast "9223372036854775808" to bigint: out of range for bigint`},
		{typ(tInt), "-9223372036854775809", "reject cast: column out: cannot cast \"-9223372036854775809\" to bigint: out of range"},
		{typ(tInt), "99999999999999999999999999x", "reject cast: column out: cannot cast \"99999999999999999999999999x\" to bigint: not an integer"},
		{typ(tInt), "1.0", "reject cast"},
		{typ(tInt), "1e3", "reject cast"},
		{typ(tInt), "-", "reject cast"},
		{typ(tInt), "1 2", "reject cast"},
		{typ(tInt), "١٢", "reject cast"}, // Arabic-Indic digits are not ASCII digits
		// double precision
		{typ(tFloat), "1.5", "1.5"},
		{typ(tFloat), " -2e3 ", "-2000"},
		{typ(tFloat), "NaN", "NaN"},
		{typ(tFloat), "Infinity", "Infinity"},
		{typ(tFloat), "-inf", "-Infinity"},
		{typ(tFloat), "1e400", "reject cast: column out: cannot cast \"1e400\" to double precision: out of range"},
		{typ(tFloat), "1,5", "reject cast"},
		// boolean
		{typ(tBool), "TRUE", "true"},
		{typ(tBool), " y ", "true"},
		{typ(tBool), "1", "true"},
		{typ(tBool), "No", "false"},
		{typ(tBool), "f", "false"},
		{typ(tBool), "0", "false"},
		{typ(tBool), "yess", "reject cast"},
		{typ(tBool), "2", "reject cast"},
		{typ(tBool), "truefalse", "reject cast"},
		// numeric
		{typ(tNum), "12.50", "12.50"},
		{typ(tNum), "+0012.5", "12.5"},
		{typ(tNum), "-0", "0"},
		{typ(tNum), "-0.000", "0.000"},
		{typ(tNum), ".5", "0.5"},
		{typ(tNum), "5.", "5"},
		{typ(tNum), "-.5", "-0.5"},
		{typ(tNum), "1.5e3", "1500"},
		{typ(tNum), "15E-1", "1.5"},
		{typ(tNum), "1.50e1", "15.0"},
		{typ(tNum), "1e-3", "0.001"},
		{typ(tNum), "0e5", "0"},
		{typ(tNum), "123456789012345678901234567890.123456789", "123456789012345678901234567890.123456789"},
		{typ(tNum), ".", "reject cast"},
		{typ(tNum), "1e", "reject cast"},
		{typ(tNum), "1.2.3", "reject cast"},
		{typ(tNum), "12,x", "reject cast: column out: cannot cast \"12,x\" to numeric: not a decimal number"},
		{typ(tNum), "NaN", "NaN"},
		{typ(tNum), " nan ", "NaN"},
		{typ(tNum), "-Infinity", "-Infinity"},
		{typ(tNum), "infinity", "Infinity"},
		{numeric(12, 2), "NaN", "NaN"},
		{numeric(12, 2), "Infinity", "reject cast"},
		{typ(tNum), "nanx", "reject cast"},
		{typ(tNum), "1e999999999999", "reject cast: column out: cannot cast \"1e999999999999\" to numeric: out of range for numeric"},
		{typ(tNum), "1e-20000", "reject cast"},
		{numeric(12, 2), "12.5", "12.50"},
		{numeric(12, 2), "12.500", "12.50"},
		{numeric(12, 2), "-0.00", "0.00"},
		{numeric(12, 2), "0001234567890.12", "1234567890.12"},
		{numeric(12, 2), "12345678901.5", "reject cast: column out: cannot cast \"12345678901.5\" to numeric(12,2): has 11 integer digits, exceeds numeric(12,2)"},
		{numeric(12, 2), "1.255", "reject cast: column out: cannot cast \"1.255\" to numeric(12,2): would be rounded to 2 decimal places"},
		{numeric(12, 2), "1.25e-1", "reject cast"},
		{numeric(12, 2), "1.2e1", "12.00"},
		{numeric(12, 2), "12,x", `reject cast: column out: cannot cast "12,x" to numeric(12,2): not a decimal number`},
		{numeric(3, 0), "999", "999"},
		{numeric(3, 0), "1000", "reject cast"},
		{numeric(2, 2), "0.99", "0.99"},
		{numeric(2, 2), "1.00", "reject cast"},
		// timestamptz
		{typ(tTS), "2024-03-01T12:34:56Z", "2024-03-01T12:34:56Z"},
		{typ(tTS), "2024-03-01T12:34:56.123456+02:00", "2024-03-01T10:34:56.123456Z"},
		{typ(tTS), "2024-03-01 12:34:56", "2024-03-01T12:34:56Z"},
		{typ(tTS), "2024-03-01 12:34:56.5-0130", "2024-03-01T14:04:56.5Z"},
		{typ(tTS), "2024-03-01 12:34:56+00", "2024-03-01T12:34:56Z"},
		{typ(tTS), "2024-03-01 12:34:56 +05:30", "2024-03-01T07:04:56Z"},
		{typ(tTS), "2024-03-01 12:34", "2024-03-01T12:34:00Z"},
		{typ(tTS), "2024-03-01T23:59:59.9999995Z", "2024-03-02T00:00:00Z"},
		{typ(tTS), " 2024-03-01 ", "2024-03-01T00:00:00Z"},
		{typ(tTS), "1969-12-31T23:59:59.999999Z", "1969-12-31T23:59:59.999999Z"},
		{typ(tTS), "2024-02-29 00:00:00", "2024-02-29T00:00:00Z"},
		{typ(tTS), "2023-02-29 00:00:00", "reject cast: column out: cannot cast \"2023-02-29 00:00:00\" to timestamptz: day does not exist in that month"},
		{typ(tTS), "2023-02-30", "reject cast: column out: cannot cast \"2023-02-30\" to timestamptz: day does not exist"},
		{typ(tTS), "2023-13-01", "reject cast: column out: cannot cast \"2023-13-01\" to timestamptz: month out of range"},
		{typ(tTS), "0000-01-01", "reject cast"},
		{typ(tTS), "0001-01-01 00:00+10", "reject cast: column out: cannot cast \"0001-01-01 00:00+10\" to timestamptz: year out of range"},
		{typ(tTS), "9999-12-31 23:00-01:30", "reject cast"},
		{typ(tTS), "2023-01-01 24:00:00", "reject cast"},
		{typ(tTS), "2023-01-01 23:60:00", "reject cast"},
		{typ(tTS), "2023-01-01 23:59:60", "reject cast"},
		{typ(tTS), "2023-01-01T10:00:00+16:00", "reject cast"},
		{typ(tTS), "2023-01-01T10:00:00+05:", "reject cast"},
		{typ(tTS), "2023-01-01T10:00:00.Z", "reject cast"},
		{typ(tTS), "2023-01-01T10:00:00 ", "2023-01-01T10:00:00Z"},
		{typ(tTS), "2023-01-01X10:00:00", "reject cast"},
		{typ(tTS), "yesterday", "reject cast: column out: cannot cast \"yesterday\" to timestamptz: not a timestamp"},
		{tsFmt, "01/03/2024 12:34", "2024-03-01T12:34:00Z"},
		{tsFmt, "Mar 1 2024", "2024-03-01T00:00:00Z"},
		{tsFmt, "2024-03-01 12:34:56Z", "2024-03-01T12:34:56Z"}, // built-in shapes still work
		{tsFmt, "31/02/2024 12:34", "reject cast"},
		{tsFmt, "nope", "reject cast: column out: cannot cast \"nope\" to timestamptz: not a timestamp"},
		// date
		{typ(tDate), "2024-03-01", "2024-03-01"},
		{typ(tDate), "1900-01-01", "1900-01-01"},
		{typ(tDate), "2023-02-30", "reject cast: column out: cannot cast \"2023-02-30\" to date: day does not exist in that month"},
		{typ(tDate), "2024-03-01 10:00", "reject cast"},
		{typ(tDate), "20240301", "reject cast"},
		{dateFmt, "01.03.2024", "2024-03-01"},
		{dateFmt, "30.02.2024", "reject cast"},
		// text
		{typ(tText), "héllo", "héllo"},
		{typ(tText), "", ""}, // empty text stays empty text
		{&commonv1.ColumnMapping{Type: tText, MaxLength: 3}, "héé", "héé"},
		{&commonv1.ColumnMapping{Type: tText, MaxLength: 3}, "héél", "reject cast: column out: cannot cast \"héél\" to varchar(3): longer than 3 characters"},
		{typ(tText), "a\x00b", "reject cast: column out: cannot cast \"a\\x00b\" to text: contains a NUL byte"},
		{typ(tText), "a\xffb", "reject cast: column out: cannot cast \"a\\xffb\" to text: is not valid UTF-8"},
		// bytea
		{typ(tBytes), `\x6869`, "hi"},
		{typ(tBytes), `\X6869`, "hi"},
		{typ(tBytes), "raw", "raw"},
		{typ(tBytes), `\x686`, `reject cast: column out: cannot cast "\\x686" to bytea: invalid hex`},
		{typ(tBytes), `\xzz`, "reject cast"},
	}
	for _, tt := range tests {
		got := castOne(t, tt.m, tt.in)
		if !strings.HasPrefix(got, tt.want) || (!strings.HasPrefix(tt.want, "reject") && got != tt.want) {
			t.Errorf("cast %q to %s = %q, want %q", tt.in, typeName(tt.m), got, tt.want)
		}
	}
}

// TestCastLongValueReason checks that a huge value is cut in the reason but
// kept whole in raw.
func TestCastLongValueReason(t *testing.T) {
	in := strings.Repeat("x", 1000)
	m := &commonv1.ColumnMapping{Target: "out", Source: "v", Type: tText, MaxLength: 10}
	out, err := Apply(&transformerv1.TransformConfig{Columns: []*commonv1.ColumnMapping{m}}, textBatch(&in))
	if err != nil {
		t.Fatal(err)
	}
	r := out.Rejects[0]
	if len(r.Reason) > 200 || !strings.Contains(r.Reason, "…") || r.Raw != in {
		t.Errorf("reason %d bytes %q, raw %d bytes", len(r.Reason), r.Reason, len(r.Raw))
	}
}

// typedBatch holds one row per typed column.
func typedBatch() *commonv1.Batch {
	cols := []*commonv1.Column{
		{Name: "i", Type: tInt, Ints: []int64{-12}},
		{Name: "f", Type: tFloat, Floats: []float64{1e6}},
		{Name: "fx", Type: tFloat, Floats: []float64{1.5}},
		{Name: "b", Type: tBool, Bools: []byte{1}},
		{Name: "n", Type: tNum, Data: []byte("12.5"), Offsets: []uint32{0, 4}},
		{Name: "ts", Type: tTS, Ints: []int64{1_709_296_496_000_001}},
		{Name: "d", Type: tDate, Ints: []int64{-1}},
		{Name: "by", Type: tBytes, Data: []byte("\xff\x00"), Offsets: []uint32{0, 2}},
	}
	return &commonv1.Batch{NumRows: 1, Columns: cols}
}

func TestCastsFromTypedInput(t *testing.T) {
	tests := []struct {
		src  string
		m    *commonv1.ColumnMapping
		want string
	}{
		{"i", typ(tInt), "-12"},
		{"i", typ(tNum), "-12"},
		{"i", numeric(5, 2), "-12.00"},
		{"i", numeric(2, 1), "reject cast: column out: cannot cast \"-12\" to numeric(2,1): has 2 integer digits"},
		{"i", typ(tText), "-12"},
		{"i", typ(tFloat), "-12"},
		{"i", typ(tBool), "reject cast"},
		{"f", typ(tInt), "1000000"},
		{"fx", typ(tInt), "reject cast: column out: cannot cast \"1.5\" to bigint: has a fractional part"},
		{"f", typ(tNum), "1000000"},
		{"fx", typ(tText), "1.5"},
		{"b", typ(tBool), "true"},
		{"b", typ(tInt), "1"},
		{"b", typ(tText), "true"},
		{"n", numeric(4, 2), "12.50"},
		{"n", typ(tInt), "reject cast"},
		{"n", typ(tFloat), "12.5"},
		{"ts", typ(tTS), "2024-03-01T12:34:56.000001Z"},
		{"ts", typ(tDate), "2024-03-01"},
		{"ts", typ(tText), "2024-03-01T12:34:56.000001Z"},
		{"d", typ(tDate), "1969-12-31"},
		{"d", typ(tTS), "1969-12-31T00:00:00Z"},
		{"d", typ(tText), "1969-12-31"},
		{"by", typ(tBytes), "\xff\x00"},
		{"by", typ(tText), "reject cast: column out: cannot cast \"\\xff\\x00\" to text: contains a NUL byte"},
	}
	for _, tt := range tests {
		m := proto.Clone(tt.m).(*commonv1.ColumnMapping)
		m.Target, m.Source = "out", tt.src
		out, err := Apply(&transformerv1.TransformConfig{Columns: []*commonv1.ColumnMapping{m}}, typedBatch())
		if err != nil {
			t.Fatalf("%s → %s: %v", tt.src, typeName(m), err)
		}
		got := "NULL"
		if len(out.Rejects) > 0 {
			got = "reject " + out.Rejects[0].Rule + ": " + out.Rejects[0].Reason
		} else if s, ok := batch.Text(out.Columns[0], 0); ok {
			got = s
		}
		if !strings.HasPrefix(got, tt.want) || (!strings.HasPrefix(tt.want, "reject") && got != tt.want) {
			t.Errorf("%s → %s = %q, want %q", tt.src, typeName(m), got, tt.want)
		}
	}
}
