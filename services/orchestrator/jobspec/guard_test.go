package jobspec

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
)

func guardSpec(schema, table, dsn string) *commonv1.JobSpec {
	return &commonv1.JobSpec{Name: "j", Target: &commonv1.TargetSpec{Schema: schema, Dsn: dsn},
		Tables: []*commonv1.TableSpec{{Name: "t", TargetTable: table,
			Source: &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Csv{Csv: &commonv1.CsvSource{Path: "/x.csv"}}}}}}
}

// TestReservedSchemas: a reserved target schema is refused with the field
// that names it, however it is named: target.schema, a target table's
// qualifier, the target DSN's search_path or the default target's. Which
// spellings are reserved is kit/reserved's (tested there).
func TestReservedSchemas(t *testing.T) {
	for _, tc := range []struct {
		schema, table, dsn string
		field, reserved    string // "" = allowed
	}{
		{"cutover", "lineage", "", "target.schema", "cutover"},
		{`"Cutover"`, "ledger", "", "target.schema", `\"Cutover\"`},
		{"pg_catalog", "pg_class", "", "target.schema", "pg_catalog"},
		{"", "cutover.lineage", "", "tables[0].target_table", "cutover"},
		{"public", `"Cutover".ledger`, "", "tables[0].target_table", `\"Cutover\"`},
		{"public", "orders", "postgres://u@h/db?search_path=public,%22Cutover%22", "target.dsn", "cutover"},
		{"public", "orders", "host=h dbname=db options='-c search_path=cutover_control'", "target.dsn", "cutover_control"},
		// Allowed: names that only look alike.
		{"cutover_data", "orders", "", "", ""},
		{"public", `"cutover.lineage"`, "", "", ""},
		{"sales", "orders", "postgres://u@h/db?options=-csearch_path%3Dsales", "", ""},
	} {
		t.Run(tc.schema+"/"+tc.table+"/"+tc.dsn, func(t *testing.T) {
			err := Guard(guardSpec(tc.schema, tc.table, tc.dsn), "postgres://default/db")
			if tc.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			want := fmt.Sprintf(`%s: `, tc.field)
			if !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "reserved for") ||
				!strings.Contains(err.Error(), `"`+tc.reserved+`"`) {
				t.Fatalf("got %v; want an invalid spec naming %s and schema %q", err, tc.field, tc.reserved)
			}
		})
	}
	// The messages, whole: a schema as written, a search_path entry as
	// compared.
	for _, tc := range []struct{ schema, table, dsn, want string }{
		{`"Cutover"`, "x", "", `target.schema: schema "\"Cutover\"" is reserved for cutover's own bookkeeping`},
		{"", `"Cutover".ledger`, "", `tables[0].target_table: schema "\"Cutover\"" is reserved for cutover's own bookkeeping`},
		{"", "x", "postgres://u@h/db?search_path=public,%22Cutover_Stage%22",
			`target.dsn: its search_path names schema "cutover_stage", which is reserved for cutover's staging tables`},
	} {
		if err := Guard(guardSpec(tc.schema, tc.table, tc.dsn), ""); err == nil || err.Error() != ErrInvalidSpec.Error()+": "+tc.want {
			t.Errorf("got %v; want %s: %s", err, ErrInvalidSpec, tc.want)
		}
	}
	// The orchestrator's default target counts when the spec names none.
	err := Guard(guardSpec("", "orders", ""), "postgres://u@h/db?options=-csearch_path%3Dcutover")
	if !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), "default target") {
		t.Fatalf("default target with a reserved search_path: %v", err)
	}
	// Normalize refuses too: every path to a job goes through it.
	if _, err := Normalize(guardSpec("cutover", "lineage", ""), "postgres://default/db"); !errors.Is(err, ErrInvalidSpec) {
		t.Fatalf("Normalize: %v", err)
	}
}

// TestLimits: each bound refuses with the field named, and a spec at the
// bound passes.
func TestLimits(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	for _, tc := range []struct {
		name  string
		edit  func(*commonv1.JobSpec)
		field string
	}{
		{"name at the bound", func(s *commonv1.JobSpec) { s.Name = long(MaxJobNameBytes) }, ""},
		{"name", func(s *commonv1.JobSpec) { s.Name = long(MaxJobNameBytes + 1) }, "name"},
		{"huge name", func(s *commonv1.JobSpec) { s.Name = long(5 << 20) }, "spec"},
		{"schema", func(s *commonv1.JobSpec) { s.Target.Schema = long(64) }, "target.schema"},
		{"target table at the bound", func(s *commonv1.JobSpec) { s.Tables[0].TargetTable = long(63) }, ""},
		{"target table", func(s *commonv1.JobSpec) { s.Tables[0].TargetTable = long(64) }, "tables[0].target_table"},
		{"table name", func(s *commonv1.JobSpec) { s.Tables[0].Name = long(MaxNameBytes + 1) }, "tables[0].name"},
		{"target column", func(s *commonv1.JobSpec) {
			s.Tables[0].Columns = []*commonv1.ColumnMapping{{Target: "a"}, {Target: long(64)}}
		}, "tables[0].columns[1].target"},
		{"tables", func(s *commonv1.JobSpec) {
			for range MaxTables {
				s.Tables = append(s.Tables, s.Tables[0])
			}
		}, "tables"},
		{"columns", func(s *commonv1.JobSpec) {
			for i := range MaxColumns + 1 {
				s.Tables[0].Columns = append(s.Tables[0].Columns, &commonv1.ColumnMapping{Target: fmt.Sprint("c", i)})
			}
		}, "tables[0].columns"},
		{"rules", func(s *commonv1.JobSpec) {
			for range MaxRules + 1 {
				s.Tables[0].Rules = append(s.Tables[0].Rules, &commonv1.Rule{Column: "a"})
			}
		}, "tables[0].rules"},
		{"expression", func(s *commonv1.JobSpec) {
			s.Tables[0].Columns = []*commonv1.ColumnMapping{{Target: "a", Expr: long(MaxExprBytes + 1)}}
		}, "tables[0].columns[0].expr"},
		{"one_of", func(s *commonv1.JobSpec) {
			s.Tables[0].Rules = []*commonv1.Rule{{Column: "a", Kind: &commonv1.Rule_OneOf{OneOf: &commonv1.OneOfRule{Values: make([]string, MaxOneOfValues+1)}}}}
		}, "tables[0].rules[0].one_of.values"},
		{"thresholds", func(s *commonv1.JobSpec) { s.Thresholds = make([]*commonv1.Threshold, MaxThresholds+1) }, "thresholds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := guardSpec("public", "orders", "")
			tc.edit(s)
			err := Guard(s, "")
			if tc.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidSpec) || !strings.HasPrefix(err.Error(), ErrInvalidSpec.Error()+": "+tc.field+": ") {
				t.Fatalf("got %v; want an invalid spec naming %s", err, tc.field)
			}
			if len(err.Error()) > 300 {
				t.Fatalf("the refusal is %d bytes long: it echoes the value", len(err.Error()))
			}
		})
	}
}

// TestNamingTableCutsLongNames: the table name added to an error is cut
// when it is the very thing too long.
func TestNamingTableCutsLongNames(t *testing.T) {
	s := guardSpec("public", "orders", "")
	s.Tables[0].Name = strings.Repeat("é", 10000)
	err := NamingTable(s, Guard(s, ""))
	if !errors.Is(err, ErrInvalidSpec) || len(err.Error()) > 400 {
		t.Fatalf("%d bytes: %.200s", len(err.Error()), err)
	}
}
