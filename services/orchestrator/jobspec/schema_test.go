package jobspec

import (
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
)

// TestZeroDatesNullDropsNotNull: with zero_dates NULL a NOT NULL
// date/datetime/timestamp column is created NULLable (and says why); other
// NOT NULL columns, and every column under the default policy, keep it.
func TestZeroDatesNullDropsNotNull(t *testing.T) {
	cols := []*commonv1.SourceColumn{
		{Name: "id", SourceType: "int", PgType: "integer"},
		{Name: "d", SourceType: "date", PgType: "date"},
		{Name: "dt", SourceType: "datetime(6)", PgType: "timestamp(6)"},
		{Name: "ts", SourceType: "timestamp", PgType: "timestamptz(0)"},
		{Name: "maybe", SourceType: "datetime", PgType: "timestamp(0)", Nullable: true},
		{Name: "tm", SourceType: "time", PgType: "interval"},
	}
	for _, policy := range []commonv1.ZeroDatePolicy{commonv1.ZeroDatePolicy_ZERO_DATE_POLICY_NULL, commonv1.ZeroDatePolicy_ZERO_DATE_POLICY_QUARANTINE} {
		spec := &commonv1.JobSpec{Tables: []*commonv1.TableSpec{{TargetTable: "t",
			Source:  &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Mysql{Mysql: &commonv1.MysqlSource{Table: "t", ZeroDates: policy}}},
			Columns: IdentityMapping(cols)}}}
		defs, err := TableDefinitions(spec, []*extractorv1.DescribeSourceResponse{{Columns: cols}})
		if err != nil {
			t.Fatal(err)
		}
		dropped := policy == commonv1.ZeroDatePolicy_ZERO_DATE_POLICY_NULL
		want := map[string]bool{"id": true, "d": !dropped, "dt": !dropped, "ts": !dropped, "maybe": false, "tm": true}
		for _, c := range defs[0].GetColumns() {
			if c.GetNotNull() != want[c.GetName()] {
				t.Errorf("%s: column %s NOT NULL %v, want %v", policy, c.GetName(), c.GetNotNull(), want[c.GetName()])
			}
			if (c.GetNotNullDropped() != "") != (dropped && (c.GetName() == "d" || c.GetName() == "dt" || c.GetName() == "ts")) {
				t.Errorf("%s: column %s not_null_dropped %q", policy, c.GetName(), c.GetNotNullDropped())
			}
		}
	}
}
