package validation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"github.com/cutover/cutover/services/orchestrator/jobspec"
	"github.com/cutover/cutover/services/orchestrator/stages"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A spec error becomes a problem of the table and column its field names;
// an outage is no problem of the spec and is returned.
func TestProblemsNameTableAndColumn(t *testing.T) {
	spec := &commonv1.JobSpec{Tables: []*commonv1.TableSpec{
		{Name: "orders", Columns: []*commonv1.ColumnMapping{{Target: "id"}}},
		{Name: "members", Columns: []*commonv1.ColumnMapping{{Target: "id"}, {Target: "email"}}, Rules: []*commonv1.Rule{{Column: "phone"}}},
	}}
	for _, tc := range []struct {
		name                      string
		i                         int
		err                       error
		table, field, column, msg string
		returned                  bool
	}{
		{"column of the second table", -1, jobspec.Invalid("tables[1].columns[1].target", "unknown column %q", "emial"), "members", "tables[1].columns[1].target", "email", `unknown column "emial"`, false},
		{"rule", -1, jobspec.Invalid("tables[1].rules[0].column", "no such column"), "members", "tables[1].rules[0].column", "phone", "no such column", false},
		{"target mismatch", 0, fmt.Errorf("%w: tables[0].columns: target column %q is NOT NULL", jobspec.ErrTargetMismatch, "x"), "orders", "tables[0].columns", "", `target column "x" is NOT NULL`, false},
		{"job field", -1, jobspec.Invalid("batch_size", "must be between 1 and 200000, got 0"), "", "batch_size", "", "must be between 1 and 200000, got 0", false},
		{"outage", 0, fmt.Errorf("%w: extractor: Unavailable: refused", stages.ErrStage), "", "", "", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &checked{ok: []bool{true, true}, tables: []*orchestratorv1.TableCheck{{Table: "orders", Ok: true}, {Table: "members", Ok: true}}}
			err := c.add(spec, tc.i, tc.err)
			if tc.returned {
				if !errors.Is(err, stages.ErrStage) || c.allOK() == false {
					t.Fatalf("want the outage returned and no problem, got %v, ok=%v", err, c.allOK())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var p *orchestratorv1.Problem
			if tc.table == "" {
				if len(c.problems) != 1 {
					t.Fatalf("job problems: %v", c.problems)
				}
				p = c.problems[0]
			} else {
				k := map[string]int{"orders": 0, "members": 1}[tc.table]
				if c.ok[k] || len(c.tables[k].Problems) != 1 {
					t.Fatalf("table %s: ok=%v problems %v", tc.table, c.ok[k], c.tables[k].Problems)
				}
				p = c.tables[k].Problems[0]
			}
			if p.GetTable() != tc.table || p.GetField() != tc.field || p.GetColumn() != tc.column || p.GetMessage() != tc.msg {
				t.Fatalf("problem %+v; want table %q field %q column %q message %q", p, tc.table, tc.field, tc.column, tc.msg)
			}
			if c.allOK() {
				t.Fatal("a spec with a problem is ok")
			}
		})
	}
}

// A dry run counts what would happen to each row: filtered rows once per
// reason, quarantined and warned rows by rule, with examples.
func TestTallyDryRun(t *testing.T) {
	bld := batch.NewBuilder("id", commonv1.ColumnType_COLUMN_TYPE_INT64, 4)
	refs := batch.NewBuilder("source_ref", commonv1.ColumnType_COLUMN_TYPE_TEXT, 4)
	for i := range 4 {
		bld.AppendInt(int64(i))
		refs.AppendString(fmt.Sprintf("line %d", i+2))
	}
	b := &commonv1.Batch{NumRows: 4, Columns: []*commonv1.Column{bld.Column()}, SourceRefs: refs.Column(), Rejects: []*commonv1.Reject{
		{Row: 0, Stage: "filter", Rule: "filter", Reason: "test rows"},
		{Row: 1, Stage: "transform", Rule: "cast", Column: "id", Reason: "not a number", Raw: "x"},
		{Row: 1, Stage: "validate", Rule: "range", Column: "id", Reason: "too big"},
		{Row: 2, Stage: "validate", Rule: "regex", Column: "id", Reason: "odd", Warning: true},
	}}
	dt := &orchestratorv1.DryRunTable{Counts: &commonv1.Counts{}}
	byRule, byReason := map[string]*orchestratorv1.RuleOutcome{}, map[string]*orchestratorv1.FilterCount{}
	tallyDryRun(b, 5, dt, byRule, byReason)
	c := dt.GetCounts()
	if c.GetExtracted() != 4 || c.GetFiltered() != 1 || c.GetQuarantined() != 1 || c.GetWarned() != 1 || c.GetLoaded() != 2 {
		t.Fatalf("counts %v; want extracted 4, filtered 1, quarantined 1, warned 1, loaded 2", c)
	}
	if byReason["test rows"].GetCount() != 1 || byRule["error\x00cast"].GetRows() != 1 || byRule["warn\x00regex"].GetRows() != 1 {
		t.Fatalf("by reason %v, by rule %v", byReason, byRule)
	}
	if ex := byRule["error\x00cast"].GetExamples(); len(ex) != 1 || ex[0].GetSourceRef() != "line 3" || ex[0].GetRaw() != "x" {
		t.Fatalf("examples %v", ex)
	}
}

// A spec aimed at one of the product's own schemas, or past a size bound,
// is refused outright by ValidateSpec and DryRun (an error, which the edge
// maps to InvalidArgument), before any stage is asked: the checker here
// has no stage clients at all.
func TestGuardRefusesBeforeAnyStage(t *testing.T) {
	v := NewServer(&Checker{DefaultTarget: "postgres://target/db"})
	csv := &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Csv{Csv: &commonv1.CsvSource{Path: "/x.csv"}}}
	for _, tc := range []struct {
		spec  *commonv1.JobSpec
		field string
	}{
		{&commonv1.JobSpec{Target: &commonv1.TargetSpec{Schema: "cutover"}, Tables: []*commonv1.TableSpec{{TargetTable: "lineage", Source: csv}}}, "target.schema"},
		{&commonv1.JobSpec{Tables: []*commonv1.TableSpec{{TargetTable: "cutover_control.jobs", Source: csv}}}, "tables[0].target_table"},
		{&commonv1.JobSpec{Name: strings.Repeat("n", 1000), Tables: []*commonv1.TableSpec{{TargetTable: "t", Source: csv}}}, "name"},
	} {
		_, err := v.ValidateSpec(context.Background(), &orchestratorv1.ValidateSpecRequest{Spec: tc.spec})
		if !errors.Is(err, jobspec.ErrInvalidSpec) || !strings.Contains(err.Error(), tc.field+": ") {
			t.Errorf("ValidateSpec: %v, want an invalid spec naming %s", err, tc.field)
		}
		_, err = v.DryRun(context.Background(), &orchestratorv1.DryRunRequest{Spec: tc.spec})
		if !errors.Is(err, jobspec.ErrInvalidSpec) || !strings.Contains(err.Error(), tc.field+": ") {
			t.Errorf("DryRun: %v, want an invalid spec naming %s", err, tc.field)
		}
	}
}
