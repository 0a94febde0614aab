package transform

import (
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	transformerv1 "github.com/cutover/cutover/gen/cutover/transformer/v1"
)

// TestSetAsTextArray: a MySQL SET's text becomes a text[] literal whose
// members read back as themselves; the default too; a non-text type with
// TEXT_ARRAY is refused naming the field.
func TestSetAsTextArray(t *testing.T) {
	m := &commonv1.ColumnMapping{Type: tText, SetAs: commonv1.SetAs_SET_AS_TEXT_ARRAY}
	for in, want := range map[string]string{
		"a,b": `{"a","b"}`, "": `{}`, "late payer": `{"late payer"}`, `q"t,b\s`: `{"q\"t","b\\s"}`, "NULL": `{"NULL"}`, "ü,€": `{"ü","€"}`,
	} {
		if got := castOne(t, m, in); got != want {
			t.Errorf("set %q: %s, want %s", in, got, want)
		}
	}
	plain := &commonv1.ColumnMapping{Type: tText}
	if got := castOne(t, plain, "a,b"); got != "a,b" {
		t.Errorf("set as text: %s", got)
	}
	def := "x,y"
	md := &commonv1.ColumnMapping{Target: "out", Source: "v", Type: tText, SetAs: commonv1.SetAs_SET_AS_TEXT_ARRAY, Default: &def}
	out, err := Apply(&transformerv1.TransformConfig{Columns: []*commonv1.ColumnMapping{md}}, textBatch(nil))
	if err != nil || string(out.Columns[0].Data) != `{"x","y"}` {
		t.Errorf("default: %v %q", err, out.GetColumns()[0].GetData())
	}
	bad := &commonv1.ColumnMapping{Target: "out", Source: "v", Type: tInt, SetAs: commonv1.SetAs_SET_AS_TEXT_ARRAY}
	if _, err := Apply(&transformerv1.TransformConfig{Columns: []*commonv1.ColumnMapping{bad}}, textBatch()); err == nil || !strings.Contains(err.Error(), "columns[0].set_as") {
		t.Errorf("TEXT_ARRAY into bigint: %v", err)
	}
}
