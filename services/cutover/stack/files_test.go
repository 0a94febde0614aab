package stack_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/cutover/internal/testenv"
	"golang.org/x/text/encoding/simplifiedchinese"
	_ "modernc.org/sqlite"
)

// TestFileSourcesEndToEnd: a SQLite file with mismatched dynamic types, a
// GBK-encoded CSV export with broken rows and a JSON Lines file with nested
// fields migrate together; good rows load exactly, bad ones are
// quarantined with their line or key and a reason.
func TestFileSourcesEndToEnd(t *testing.T) {
	dir := t.TempDir()
	// SQLite: declared types that the stored values do not always honour.
	litePath := filepath.Join(dir, "pos.db")
	lite, err := sql.Open("sqlite", litePath)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE items (id INTEGER PRIMARY KEY, qty INTEGER, price DECIMAL(8,2), sold DATE, name TEXT)`,
		`INSERT INTO items VALUES (1, 3, 9.99, '2024-01-05', 'tea'), (2, 'three', 1.50, '2024-01-06', 'cup'),
			(3, 2, 12.345, '2024-01-07', 'pot'), (4, 1, 5, '2024-02-30', 'lid'), (5, 7, '0.10', '2024-01-08', x'ff')`,
	} {
		if _, err := lite.Exec(q); err != nil {
			t.Fatalf("%.50s: %v", q, err)
		}
	}
	lite.Close()
	// GBK CSV: one undecodable byte sequence and one ragged row.
	gbk, err := simplifiedchinese.GBK.NewEncoder().String("id,name,city\n1,张三,北京市朝阳区\n2,李四,上海市\n3,王五\n4,赵六,广州市\n")
	if err != nil {
		t.Fatal(err)
	}
	gbk = strings.Replace(gbk, "4,", "4,\x81", 1) // a lone GBK lead byte before 赵六
	csvPath := filepath.Join(dir, "members.csv")
	if err := os.WriteFile(csvPath, []byte(gbk), 0o644); err != nil {
		t.Fatal(err)
	}
	jsonlPath := filepath.Join(dir, "orders.jsonl")
	if err := os.WriteFile(jsonlPath, []byte(`{"no": "A-1", "total": 12.50, "customer": {"phone": "138"}, "items": [{"sku": "T1"}]}
{"no": "A-2", "total": 3, "customer": {"phone": null}, "items": []}
{"no": "A-3", "total": "oops"
{"no": "A-4", "total": 1e3, "customer": {}, "items": [{"sku": "P9"}, {"sku": "Q1"}]}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	db := testenv.NewDB(t)
	db.Exec(`CREATE TABLE members (id int PRIMARY KEY, name text NOT NULL, city text)`,
		`CREATE TABLE orders (no text PRIMARY KEY, total numeric(10,2), phone text, first_sku text)`)
	_, jobs := startStack(t, db)
	spec := &commonv1.JobSpec{Name: "files", BatchSize: 2, Target: &commonv1.TargetSpec{CreateTables: true}, Tables: []*commonv1.TableSpec{
		{Name: "items", TargetTable: "items", Source: &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Sqlite{Sqlite: &commonv1.SqliteSource{Path: litePath, Table: "items"}}}},
		{Name: "members", TargetTable: "members", Partitions: 2,
			Source:  &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Csv{Csv: &commonv1.CsvSource{Path: csvPath, Encoding: "gbk"}}},
			Columns: []*commonv1.ColumnMapping{{Target: "id", Source: "id"}, {Target: "name", Source: "name"}, {Target: "city", Source: "city"}}},
		{Name: "orders", TargetTable: "orders", Partitions: 3,
			Source: &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Jsonl{Jsonl: &commonv1.JsonlSource{Path: jsonlPath, Fields: []*commonv1.JsonField{
				{Name: "no"}, {Name: "total"}, {Name: "phone", Path: "customer.phone"}, {Name: "sku", Path: "items.0.sku"}}}}},
			Columns: []*commonv1.ColumnMapping{{Target: "no", Source: "no"}, {Target: "total", Source: "total"}, {Target: "phone", Source: "phone"}, {Target: "first_sku", Source: "sku"}}},
	}}
	created, err := jobs.CreateJob(context.Background(), &orchestratorv1.CreateJobRequest{Spec: spec})
	if err != nil {
		t.Fatalf("CreateJob: %v", err)
	}
	job := testenv.WaitJob(t, jobs, created.Job.Id, time.Minute)
	if job.State != orchestratorv1.JobState_JOB_STATE_SUCCEEDED {
		t.Fatalf("job %s: %s", job.State, job.Error)
	}
	if c := job.Counts; c.Extracted != 13 || c.Loaded != 6 || c.Quarantined != 7 {
		t.Fatalf("counts %+v, want 13 = 6 + 7", c)
	}
	check := func(query, want string) {
		t.Helper()
		if got := strings.Join(db.Strings(query), "|"); got != want {
			t.Errorf("%s:\n got %s\nwant %s", query, got, want)
		}
	}
	check(`SELECT concat_ws(',', id, qty, price, sold, name) FROM items ORDER BY id`, "1,3,9.99,2024-01-05,tea")
	check(`SELECT concat_ws(',', id, name, city) FROM members ORDER BY id`, "1,张三,北京市朝阳区|2,李四,上海市")
	check(`SELECT concat_ws(',', no, total, phone, first_sku) FROM orders ORDER BY no`, "A-1,12.50,138,T1|A-2,3.00|A-4,1000.00,P9")
	check(`SELECT table_name || ' ' || source_ref || ' ' || rule FROM cutover.quarantine ORDER BY table_name, source_ref`,
		"items id=2 type_mismatch|items id=3 type_mismatch|items id=4 type_mismatch|items id=5 type_mismatch|members line 4 ragged_row|members line 5 encoding|orders line 3 json_syntax")
}
