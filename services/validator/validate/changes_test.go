package validate

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	validatorv1 "github.com/cutover/cutover/gen/cutover/validator/v1"
	"github.com/cutover/cutover/services/kit/batch"
)

// TestChangeBatchSkipsDeleteRows: rules do not judge a delete row (only its
// key matters), ops and position go through.
func TestChangeBatchSkipsDeleteRows(t *testing.T) {
	in := &commonv1.Batch{NumRows: 2, Ops: []byte("ud"), Position: "p",
		Columns: []*commonv1.Column{bytesCol("name", commonv1.ColumnType_COLUMN_TYPE_TEXT, nil, nil)}}
	out, err := Apply([]*commonv1.Rule{notNull("name")}, in)
	if err != nil {
		t.Fatal(err)
	}
	if string(out.Ops) != "ud" || out.Position != "p" {
		t.Fatalf("ops %q position %q", out.Ops, out.Position)
	}
	if len(out.Rejects) != 1 || out.Rejects[0].Row != 0 {
		t.Fatalf("rejects %v, want only row 0", out.Rejects)
	}
}

// changeCol builds a column from text forms: "NULL" is NULL and "-" a value
// the change left out (Column.unchanged).
func changeCol(name string, typ commonv1.ColumnType, vals ...string) *commonv1.Column {
	b := batch.NewBuilder(name, typ, len(vals))
	for _, v := range vals {
		switch {
		case v == "NULL":
			b.AppendNull()
		case v == "-":
			b.AppendUnchanged()
		case typ == tInt:
			x, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				panic(err)
			}
			b.AppendInt(x)
		default:
			b.AppendString(v)
		}
	}
	return b.Column()
}

// unchangedMsg matches the reason of an unchanged_value reject; its groups
// are the rule and the column named.
var unchangedMsg = regexp.MustCompile(`^rule (\S+) reads column (\S+), which is not in the change: its value was an unchanged TOASTed value, which PostgreSQL leaves out of the log; REPLICA IDENTITY FULL on the source table carries it$`)

// changeBatch: rows 1 and 2 are upserts that leave body and n out, row 3 a
// delete, row 4 an upsert whose body is NULL.
func changeBatch() *commonv1.Batch {
	return &commonv1.Batch{NumRows: 5, Ops: []byte("uuudu"), Position: "p", Columns: []*commonv1.Column{
		changeCol("id", tInt, "1", "2", "3", "4", "5"),
		changeCol("body", tText, "ok", "-", "bad", "NULL", "NULL"),
		changeCol("n", tInt, "5", "7", "-", "NULL", "9"),
		changeCol("code", tText, "a", "b", "c", "NULL", "e"),
	}}
}

// TestChangeBatchUnchanged: no column rule judges an unchanged slot (NULL on
// the wire, but not a NULL value: the target keeps its own), while a real
// NULL still fails not_null. An expression that reads an unchanged value
// fails with unchanged_value (a warning for a warn rule); one that does not
// read it is evaluated. The bits go through as they came.
func TestChangeBatchUnchanged(t *testing.T) {
	tests := []struct {
		name  string
		rules []*commonv1.Rule
		want  []string // "row rule column", plus (rule, column) named for unchanged_value, "!warn" for a warning
	}{
		{"not_null", []*commonv1.Rule{notNull("body"), notNull("n")}, []string{"4 not_null body"}},
		{"regex", []*commonv1.Rule{regex("body", "^ok$")}, []string{"2 regex body"}},
		{"range", []*commonv1.Rule{rng("n", "0", "6")}, []string{"1 range n", "4 range n"}},
		{"one_of", []*commonv1.Rule{oneOf("body", "ok")}, []string{"2 one_of body"}},
		{"length", []*commonv1.Rule{length("body", 3, 0)}, []string{"0 length body"}},
		{"expr reading the value", []*commonv1.Rule{expr("", `body != "bad"`)},
			[]string{"1 unchanged_value body (expr, body)", "2 expr "}},
		{"expr not reading it", []*commonv1.Rule{expr("", `code != "c"`)}, []string{"2 expr "}},
		{"expr reading it through row by key", []*commonv1.Rule{named("n_pos", expr("n", `row.n > 0 && row["code"] != ""`))},
			[]string{"2 unchanged_value n (n_pos, n)"}},
		{"expr reading the whole row", []*commonv1.Rule{expr("", `row.size() == 4`)},
			[]string{"1 unchanged_value body (expr, body)", "2 unchanged_value n (expr, n)"}},
		{"warn expr", []*commonv1.Rule{warn(named("body_ok", expr("", `body != "bad"`)))},
			[]string{"1 unchanged_value body (body_ok, body) !warn", "2 body_ok  !warn"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := changeBatch()
			out, err := Apply(tt.rules, in)
			if err != nil {
				t.Fatal(err)
			}
			if err := batch.Check(out); err != nil {
				t.Fatal(err)
			}
			checkChangeBits(t, out)
			var got []string
			for _, r := range out.Rejects {
				s := fmt.Sprintf("%d %s %s", r.Row, r.Rule, r.Column)
				if r.Rule == ruleUnchanged {
					if m := unchangedMsg.FindStringSubmatch(r.Reason); m != nil {
						s += fmt.Sprintf(" (%s, %s)", m[1], m[2])
					} else {
						s += " reason " + r.Reason
					}
				}
				if r.Warning {
					s += " !warn"
				}
				got = append(got, s)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("rejects\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// checkChangeBits asserts that out carries changeBatch's unchanged bits
// exactly: body row 1, n row 2, nothing else.
func checkChangeBits(t *testing.T, out *commonv1.Batch) {
	t.Helper()
	want := map[string][]byte{"body": {0b10}, "n": {0b100}}
	if len(out.Columns) != 4 {
		t.Fatalf("%d columns, want 4", len(out.Columns))
	}
	for _, c := range out.Columns {
		if !bytes.Equal(c.Unchanged, want[c.Name]) {
			t.Errorf("column %s unchanged = %08b, want %08b", c.Name, c.Unchanged, want[c.Name])
		}
	}
}

// TestChangeBatchUnchangedStream: the bits cross the Validate stream both
// ways, and a not_null rule does not fire on them.
func TestChangeBatchUnchangedStream(t *testing.T) {
	client := startServer(t)
	stream, err := client.Validate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*validatorv1.ValidateRequest{
		{Msg: &validatorv1.ValidateRequest_Config{Config: &validatorv1.ValidateConfig{Rules: []*commonv1.Rule{notNull("body"), notNull("n")}}}},
		{Msg: &validatorv1.ValidateRequest_Batch{Batch: changeBatch()}},
	} {
		if err := stream.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	out := resp.GetBatch()
	checkChangeBits(t, out)
	if string(out.Ops) != "uuudu" || len(out.Rejects) != 1 || out.Rejects[0].Row != 4 || out.Rejects[0].Rule != "not_null" {
		t.Errorf("ops %q rejects %v, want only row 4 not_null", out.Ops, out.Rejects)
	}
}
