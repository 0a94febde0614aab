package transform

import (
	"errors"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	transformerv1 "github.com/cutover/cutover/gen/cutover/transformer/v1"
	"github.com/cutover/cutover/services/kit/batch"
)

func step(fn string, kv ...string) *commonv1.CleanStep {
	args := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		args[kv[i]] = kv[i+1]
	}
	return &commonv1.CleanStep{Function: fn, Args: args}
}

// TestCleanChains: cleaning runs on the source text before the cast; a
// value a function cannot clean is quarantined with the step's reason, and
// empty_to_null turns a value into NULL without a reject.
func TestCleanChains(t *testing.T) {
	in := &commonv1.Batch{NumRows: 4, Columns: []*commonv1.Column{
		textCol("name", sp("  ｊｏｈｎ   SMITH "), sp("Ann"), sp("   "), sp("x")),
		textCol("born", sp("2023/1/5"), sp("2023年1月5日"), sp("2023/2/30"), sp("20230105")),
		textCol("fen", sp("1999"), sp("5"), sp("1"), sp("oops")),
	}}
	cfg := &transformerv1.TransformConfig{Columns: []*commonv1.ColumnMapping{
		{Target: "name", Source: "name", Type: tText, Clean: []*commonv1.CleanStep{step("halfwidth"), step("fold_space"), step("empty_to_null"), step("title")}},
		{Target: "born", Source: "born", Type: tDate, Clean: []*commonv1.CleanStep{step("date", "formats", "YYYY/M/D|YYYY年M月D日|YYYYMMDD")}},
		{Target: "yuan", Source: "fen", Type: tNum, Precision: 12, Scale: 2, Clean: []*commonv1.CleanStep{step("scale", "by", "-2")}},
	}}
	out, err := Apply(cfg, in)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"John Smith", "Ann", "NULL", "X"},
		{"2023-01-05", "2023-01-05", "NULL", "2023-01-05"},
		{"19.99", "0.05", "0.01", "NULL"},
	}
	for c, col := range out.Columns {
		for i := 0; i < 4; i++ {
			v, ok := batch.Text(col, i)
			if !ok {
				v = "NULL"
			}
			if v != want[c][i] {
				t.Errorf("%s row %d = %q, want %q", col.Name, i, v, want[c][i])
			}
		}
	}
	if len(out.Rejects) != 2 {
		t.Fatalf("rejects = %v, want 2 (impossible date, non-number)", out.Rejects)
	}
	for _, r := range out.Rejects {
		if r.Rule != "clean" || !strings.HasPrefix(r.Reason, "column "+r.Column+": step 1 (") {
			t.Errorf("reject %+v: want rule clean and a reason naming the column and step", r)
		}
	}
}

func TestCleanChainRefusedUpFront(t *testing.T) {
	tests := []struct {
		steps []*commonv1.CleanStep
		want  string
	}{
		{[]*commonv1.CleanStep{step("trim"), step("dat")}, `tables[0].columns[0].clean: target column "name": step 2 (dat): unknown cleaning function`},
		{[]*commonv1.CleanStep{step("round", "mode", "sideways")}, `step 1 (round)`},
		{[]*commonv1.CleanStep{step("map")}, `step 1 (map)`},
	}
	for _, tt := range tests {
		err := CheckMapping(&transformerv1.CheckMappingRequest{FieldPrefix: "tables[0]",
			SourceColumns: []*commonv1.SourceColumn{{Name: "name"}},
			Columns:       []*commonv1.ColumnMapping{{Target: "name", Source: "name", Type: tText, Clean: tt.steps}}})
		if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrInvalidMapping) {
			t.Errorf("steps %v: error %v, want ErrInvalidMapping containing %q", tt.steps, err, tt.want)
		}
	}
}
