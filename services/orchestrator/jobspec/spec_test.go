package jobspec

import (
	"errors"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

func TestRedactedSpecHidesPasswords(t *testing.T) {
	spec := &commonv1.JobSpec{
		Target: &commonv1.TargetSpec{Dsn: "postgres://u:hunter2@h/db"},
		Tables: []*commonv1.TableSpec{{Source: &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Postgres{
			Postgres: &commonv1.PostgresSource{Dsn: "host=h password=hunter2 dbname=x"}}}},
			{Source: &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Mysql{Mysql: &commonv1.MysqlSource{Dsn: "root:hunter2@tcp(myhost:3306)/shop"}}}}},
	}
	b, _ := protojson.Marshal(Redacted(spec))
	if strings.Contains(string(b), "hunter2") {
		t.Fatalf("redacted spec leaks: %s", b)
	}
	// Only the passwords go: hosts and users stay readable.
	for _, want := range []string{"postgres://u:", "@h/db", "host=h", "tcp(myhost:3306)"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("redacted spec lost %q: %s", want, b)
		}
	}
	if !strings.Contains(spec.Target.Dsn, "hunter2") {
		t.Fatal("redacted changed the original spec")
	}
}

func TestFillTargetTypes(t *testing.T) {
	cols := []*loaderv1.TargetColumn{
		{Name: "id", Type: commonv1.ColumnType_COLUMN_TYPE_INT64, NotNull: true},
		{Name: "amount", Type: commonv1.ColumnType_COLUMN_TYPE_NUMERIC, Precision: 12, Scale: 2},
		{Name: "code", Type: commonv1.ColumnType_COLUMN_TYPE_TEXT, MaxLength: 5},
		{Name: "created", Type: commonv1.ColumnType_COLUMN_TYPE_TIMESTAMPTZ, NotNull: true, HasDefault: true},
	}
	tbl := &commonv1.TableSpec{TargetTable: "t", Columns: []*commonv1.ColumnMapping{
		{Target: "id", Source: "a"}, {Target: "amount", Source: "b"}, {Target: "code", Source: "c", Type: commonv1.ColumnType_COLUMN_TYPE_TEXT}}}
	if err := FillTargetTypes("tables[0]", tbl, cols, "public"); err != nil {
		t.Fatal(err)
	}
	m := tbl.Columns
	if m[0].Type != commonv1.ColumnType_COLUMN_TYPE_INT64 || !m[0].NotNull || m[1].Precision != 12 || m[1].Scale != 2 || m[2].MaxLength != 5 {
		t.Fatalf("filled mappings: %v", m)
	}
	bad := &commonv1.TableSpec{TargetTable: "t", Columns: []*commonv1.ColumnMapping{{Target: "idd", Source: "a"}}}
	err := FillTargetTypes("tables[3]", bad, cols, "public")
	if !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), "tables[3].columns[0].target") || !strings.Contains(err.Error(), "idd") {
		t.Fatalf("unknown target column: %v", err)
	}
	missing := &commonv1.TableSpec{TargetTable: "t", Columns: []*commonv1.ColumnMapping{{Target: "amount", Source: "a"}}}
	if err := FillTargetTypes("tables[0]", missing, cols, "public"); !errors.Is(err, ErrTargetMismatch) || !strings.Contains(err.Error(), `"id"`) {
		t.Fatalf("unmapped NOT NULL column: %v", err)
	}
}

// Normalize fills the job-wide defaults and refuses what is out of bounds,
// naming the field.
func TestNormalize(t *testing.T) {
	table := []*commonv1.TableSpec{{Name: "t", TargetTable: "t"}}
	for _, tc := range []struct {
		name          string
		spec          *commonv1.JobSpec
		defaultTarget string
		field         string // "" when the spec passes
	}{
		{"defaults", &commonv1.JobSpec{Tables: table}, "postgres://d", ""},
		{"no spec", nil, "postgres://d", "spec"},
		{"no tables", &commonv1.JobSpec{}, "postgres://d", "tables"},
		{"no target anywhere", &commonv1.JobSpec{Tables: table}, "", "target.dsn"},
		{"batch too big", &commonv1.JobSpec{Tables: table, BatchSize: maxBatchSize + 1}, "x", "batch_size"},
		{"batch bytes too small", &commonv1.JobSpec{Tables: table, BatchBytes: 100}, "x", "batch_bytes"},
		{"batch bytes over the message limit", &commonv1.JobSpec{Tables: table, BatchBytes: maxBatchBytes + 1}, "x", "batch_bytes"},
		{"negative parallelism", &commonv1.JobSpec{Tables: table, Parallelism: -1}, "x", "parallelism"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Normalize(tc.spec, tc.defaultTarget)
			if tc.field != "" {
				if !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), ": "+tc.field+":") {
					t.Fatalf("want a refusal naming %s, got %v", tc.field, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.BatchSize != defaultBatchSize || got.BatchBytes != defaultBatchBytes || got.Parallelism != defaultParallelism || got.Target.GetSchema() != "public" {
				t.Fatalf("defaults not filled: %v", got)
			}
			if tc.spec.BatchSize != 0 {
				t.Fatal("Normalize changed its input")
			}
		})
	}
}

// TableDefaults names the table field at fault and fills what a table may
// leave out.
func TestTableDefaults(t *testing.T) {
	csv := &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Csv{Csv: &commonv1.CsvSource{Path: "a.csv"}}}
	for _, tc := range []struct {
		name  string
		table *commonv1.TableSpec
		field string
	}{
		{"name from target", &commonv1.TableSpec{TargetTable: "orders", Source: csv}, ""},
		{"no name, no target", &commonv1.TableSpec{Source: csv}, "tables[0].name"},
		{"duplicate", &commonv1.TableSpec{Name: "seen", TargetTable: "x", Source: csv}, "tables[0].name"},
		{"too many partitions", &commonv1.TableSpec{Name: "p", TargetTable: "p", Partitions: maxPartitions + 1, Source: csv}, "tables[0].partitions"},
		{"empty filter", &commonv1.TableSpec{Name: "f", TargetTable: "f", Source: csv, Filters: []*commonv1.RowFilter{{When: " "}}}, "tables[0].filters[0].when"},
		{"no source", &commonv1.TableSpec{Name: "s", TargetTable: "s"}, "tables[0].source"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := TableDefaults("tables[0]", tc.table, map[string]bool{"seen": true})
			if tc.field != "" {
				if !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), tc.field) {
					t.Fatalf("want a refusal naming %s, got %v", tc.field, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.table.Name != "orders" || tc.table.Partitions != 1 || tc.table.System != "orders" {
				t.Fatalf("defaults not filled: %v", tc.table)
			}
		})
	}
}
