package stack_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/cutover/internal/testenv"
	"github.com/cutover/cutover/services/cutover/stack"
	"github.com/cutover/cutover/services/kit/mysqltest"
	"github.com/cutover/cutover/services/kit/pgtest"
	"github.com/cutover/cutover/services/kit/telemetry"
	"github.com/cutover/cutover/services/orchestrator/orchestrate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestMain(m *testing.M) {
	// Spans go to a file, as in a local run, so reports carry trace ids.
	dir, _ := os.MkdirTemp("", "cutover-stack-test")
	tel, err := telemetry.Setup(context.Background(), "cutover-test", filepath.Join(dir, "traces.jsonl"))
	if err != nil {
		panic(err)
	}
	traceSink = tel.Sink
	code := pgtest.Run(m)
	mysqltest.Cleanup()
	_ = tel.Shutdown(context.Background())
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

var traceSink string

// startStack runs the embedded stack against a fresh target database that
// also holds the control schema.
func startStack(t *testing.T, target *testenv.DB) (*stack.Stack, orchestratorv1.JobServiceClient) {
	t.Helper()
	return startStackWith(t, target, nil)
}

// startStackWith is startStack with the configuration changed by mod first.
func startStackWith(t *testing.T, target *testenv.DB, mod func(*stack.Config)) (*stack.Stack, orchestratorv1.JobServiceClient) {
	t.Helper()
	cfg := stack.Config{
		Addrs:        stack.EphemeralAddrs(),
		Orchestrator: orchestrate.Config{ControlURL: target.URL, DefaultTarget: target.URL, Workers: 2, Poll: 20 * time.Millisecond, TraceSink: traceSink},
		Grace:        5 * time.Second,
		FileRoots:    testenv.FileRoots(t),
	}
	if mod != nil {
		mod(&cfg)
	}
	st, err := stack.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close stack: %v", err)
		}
	})
	conn, err := st.Conn()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return st, orchestratorv1.NewJobServiceClient(conn)
}

const ordersDDL = `CREATE TABLE orders (
	id bigint PRIMARY KEY, customer_id bigint NOT NULL, amount numeric(12,2), status text NOT NULL,
	ordered_on date, note varchar(10), source text NOT NULL)`

// badCSV has one row of each kind of bad input among good ones.
const badCSV = `id,customer,amount,status,day,note
1,10,12.50,new,2023-01-05,ok
2,11,7,paid,2023-01-06,
3,12,abc,new,2023-01-07,non-number
4,13,1.00,new,2023-02-30,bad date
5,14,3.00,new
6,15,4.00,zzz,2023-01-08,bad status
7,16,5.00,paid,2023-01-09,"a, ""b"""
8,17,6.00,paid,2023-01-10,far too long a note
9,18,7.00,paid,2023-01-11,x,extra
10,19,-1.00,paid,2023-01-12,negative
`

func ordersSpec(csvPath string) *commonv1.JobSpec {
	return &commonv1.JobSpec{
		Name: "orders", BatchSize: 3,
		Tables: []*commonv1.TableSpec{{
			Name: "orders", TargetTable: "orders",
			Source: &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Csv{Csv: &commonv1.CsvSource{Path: csvPath}}},
			Columns: []*commonv1.ColumnMapping{
				{Target: "id", Source: "id"}, {Target: "customer_id", Source: "customer"}, {Target: "amount", Source: "amount"},
				{Target: "status", Source: "status"}, {Target: "ordered_on", Source: "day"}, {Target: "note", Source: "note"},
				{Target: "source", Default: proto("legacy")},
			},
			Rules: []*commonv1.Rule{
				{Column: "status", Kind: &commonv1.Rule_OneOf{OneOf: &commonv1.OneOfRule{Values: []string{"new", "paid"}}}},
				{Column: "amount", Kind: &commonv1.Rule_Range{Range: &commonv1.RangeRule{Min: "0"}}},
			},
		}},
	}
}

func proto(s string) *string { return &s }

// TestBadInputIsQuarantinedAndTheRestLoads: wrong column counts, a
// non-number, an impossible date, a too-long value and rule failures are
// quarantined with their reasons; every other row loads; counts balance.
func TestBadInputIsQuarantinedAndTheRestLoads(t *testing.T) {
	db := testenv.NewDB(t)
	db.Exec(ordersDDL)
	_, jobs := startStack(t, db)
	created, err := jobs.CreateJob(context.Background(), &orchestratorv1.CreateJobRequest{Spec: ordersSpec(testenv.WriteFile(t, "orders.csv", badCSV))})
	if err != nil {
		t.Fatalf("CreateJob: %v", err)
	}
	job := testenv.WaitJob(t, jobs, created.Job.Id, time.Minute)
	if job.State != orchestratorv1.JobState_JOB_STATE_SUCCEEDED {
		t.Fatalf("job %s: %s", job.State, job.Error)
	}
	if c := job.Counts; c.Extracted != 10 || c.Loaded != 3 || c.Quarantined != 7 {
		t.Fatalf("counts = %+v, want extracted 10 = loaded 3 + quarantined 7", c)
	}
	if got := db.Strings(`SELECT id::text FROM orders ORDER BY id`); strings.Join(got, ",") != "1,2,7" {
		t.Fatalf("loaded ids = %v, want 1,2,7", got)
	}
	if got := db.Strings(`SELECT note FROM orders WHERE id = 7`); got[0] != `a, "b"` {
		t.Fatalf("note of 7 = %q", got[0])
	}
	want := map[string]string{ // source ref → rule and a word the reason must hold
		"line 4":  "cast amount",
		"line 5":  "cast ordered_on",
		"line 6":  "ragged_row 4",
		"line 7":  "one_of zzz",
		"line 9":  "cast note",
		"line 10": "ragged_row 7",
		"line 11": "range amount",
	}
	rows := db.Strings(`SELECT source_ref || '|' || rule || '|' || reason || '|' || raw FROM cutover.quarantine WHERE job_id = $1 ORDER BY id`, job.Id)
	if len(rows) != len(want) {
		t.Fatalf("quarantine has %d rows, want %d: %v", len(rows), len(want), rows)
	}
	for _, r := range rows {
		parts := strings.SplitN(r, "|", 4)
		w, ok := want[parts[0]]
		if !ok {
			t.Errorf("unexpected quarantined row %q", r)
			continue
		}
		rule, word, _ := strings.Cut(w, " ")
		if parts[1] != rule || !strings.Contains(parts[2], word) || parts[3] == "" {
			t.Errorf("%s: rule %q reason %q raw %q; want rule %s and a reason naming %s", parts[0], parts[1], parts[2], parts[3], rule, word)
		}
	}
	rep, err := jobs.GetJobReport(context.Background(), &orchestratorv1.GetJobReportRequest{Id: job.Id})
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Report
	if !r.Balanced || r.TraceId == "" || r.TraceSink == "" || len(r.Tables) != 1 {
		t.Fatalf("report: %+v", r)
	}
	byRule := map[string]int64{}
	for _, rr := range r.Tables[0].Rejects {
		byRule[rr.Rule] = rr.Count
		if len(rr.Examples) == 0 || rr.Examples[0].Reason == "" {
			t.Errorf("rule %s has no example with a reason", rr.Rule)
		}
	}
	if byRule["cast"] != 3 || byRule["ragged_row"] != 2 || byRule["one_of"] != 1 || byRule["range"] != 1 {
		t.Fatalf("rejects by rule = %v", byRule)
	}
	if n := db.Int(`SELECT count(*) FROM cutover.ledger WHERE job_id = $1`, job.Id); n != 4 {
		t.Fatalf("ledger has %d batches, want 4 (10 rows in batches of 3)", n)
	}
}

// TestPostgresSourceInPartitions: a legacy table split into key ranges
// arrives complete and exactly once, with typed values intact.
func TestPostgresSourceInPartitions(t *testing.T) {
	src, db := testenv.NewDB(t), testenv.NewDB(t)
	src.Exec(`CREATE SCHEMA legacy`, `CREATE TABLE legacy.items (item_id int PRIMARY KEY, label text, price numeric(10,3), at timestamp, ok boolean)`,
		`INSERT INTO legacy.items SELECT g, 'item ' || g, g * 1.5, timestamp '2020-01-01' + g * interval '1 hour', g % 2 = 0 FROM generate_series(1, 997) g`,
		`UPDATE legacy.items SET label = NULL WHERE item_id = 500`)
	db.Exec(`CREATE TABLE items (id bigint PRIMARY KEY, label text, price numeric(12,2), at timestamptz, ok boolean)`)
	_, jobs := startStack(t, db)
	spec := &commonv1.JobSpec{Name: "items", BatchSize: 50, Parallelism: 3, Tables: []*commonv1.TableSpec{{
		Name: "items", TargetTable: "items", Partitions: 5,
		Source: &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Postgres{Postgres: &commonv1.PostgresSource{Dsn: src.URL, Schema: "legacy", Table: "items"}}},
		Columns: []*commonv1.ColumnMapping{{Target: "id", Source: "item_id"}, {Target: "label", Source: "label"},
			{Target: "price", Source: "price"}, {Target: "at", Source: "at"}, {Target: "ok", Source: "ok"}},
	}}}
	created, err := jobs.CreateJob(context.Background(), &orchestratorv1.CreateJobRequest{Spec: spec})
	if err != nil {
		t.Fatalf("CreateJob: %v", err)
	}
	if created.Job.PartitionsTotal != 5 {
		t.Fatalf("partitions = %d, want 5", created.Job.PartitionsTotal)
	}
	job := testenv.WaitJob(t, jobs, created.Job.Id, time.Minute)
	if job.State != orchestratorv1.JobState_JOB_STATE_SUCCEEDED || job.Counts.Loaded != 997 || job.Counts.Quarantined != 0 {
		t.Fatalf("job %s %s counts %+v", job.State, job.Error, job.Counts)
	}
	if n := db.Int(`SELECT count(DISTINCT id) FROM items`); n != 997 {
		t.Fatalf("distinct ids = %d", n)
	}
	// price 1.5 * g has at most one decimal, so numeric(12,2) holds it exactly.
	if n := db.Int(`SELECT count(*) FROM items WHERE price <> id * 1.5 OR at <> timestamptz '2020-01-01 00:00:00+00' + id * interval '1 hour' OR ok <> (id % 2 = 0)`); n != 0 {
		t.Fatalf("%d rows differ from the source", n)
	}
	if n := db.Int(`SELECT count(*) FROM items WHERE label IS NULL`); n != 1 {
		t.Fatalf("NULL labels = %d, want 1", n)
	}
}

// TestCreateJobRefusesBadSpecs: a bad spec is refused up front with a code
// and a message naming the field; nothing is created.
func TestCreateJobRefusesBadSpecs(t *testing.T) {
	db := testenv.NewDB(t)
	db.Exec(ordersDDL)
	_, jobs := startStack(t, db)
	csv := testenv.WriteFile(t, "orders.csv", badCSV)
	tests := []struct {
		name   string
		mutate func(*commonv1.JobSpec)
		code   codes.Code
		want   []string
	}{
		{"no spec", nil, codes.InvalidArgument, []string{"spec"}},
		{"unknown source column", func(s *commonv1.JobSpec) { s.Tables[0].Columns[2].Source = "amout" }, codes.InvalidArgument, []string{"tables[0].columns[2].source", "amout"}},
		{"unknown target column", func(s *commonv1.JobSpec) { s.Tables[0].Columns[1].Target = "cust" }, codes.InvalidArgument, []string{"tables[0].columns[1].target", "cust"}},
		{"missing file", func(s *commonv1.JobSpec) { s.Tables[0].Source.GetCsv().Path = csv + ".missing" }, codes.InvalidArgument, []string{"tables[0].source", "missing"}},
		{"missing target table", func(s *commonv1.JobSpec) { s.Tables[0].TargetTable = "nope" }, codes.InvalidArgument, []string{"tables[0].target_table", "nope"}},
		{"no tables", func(s *commonv1.JobSpec) { s.Tables = nil }, codes.InvalidArgument, []string{"tables"}},
		{"bad regex", func(s *commonv1.JobSpec) {
			s.Tables[0].Rules = append(s.Tables[0].Rules, &commonv1.Rule{Column: "note", Kind: &commonv1.Rule_Regex{Regex: &commonv1.RegexRule{Pattern: "("}}})
		}, codes.InvalidArgument, []string{"tables[0].rules[2]"}},
		{"unmapped NOT NULL column", func(s *commonv1.JobSpec) { s.Tables[0].Columns = s.Tables[0].Columns[:6] }, codes.FailedPrecondition, []string{"source"}},
		{"batch size", func(s *commonv1.JobSpec) { s.BatchSize = -1 }, codes.InvalidArgument, []string{"batch_size"}},
		{"batch bytes", func(s *commonv1.JobSpec) { s.BatchBytes = 64 << 20 }, codes.InvalidArgument, []string{"batch_bytes", "50331648"}},
		// Mapping mistakes name the table by index and name, the column and the problem.
		{"unknown cleaning function", func(s *commonv1.JobSpec) {
			s.Tables[0].Columns[5].Clean = []*commonv1.CleanStep{{Function: "titlecase"}}
		}, codes.InvalidArgument, []string{`tables[0].columns[5].clean (table "orders")`, `"note"`, "titlecase"}},
		{"CEL that does not compile", func(s *commonv1.JobSpec) {
			s.Tables[0].Columns[5] = &commonv1.ColumnMapping{Target: "note", Expr: "note +"}
		},
			codes.InvalidArgument, []string{`tables[0].columns[5].expr (table "orders")`, `"note"`}},
		{"CEL naming a missing column", func(s *commonv1.JobSpec) {
			s.Tables[0].Columns[5] = &commonv1.ColumnMapping{Target: "note", Expr: "notes + 'x'"}
		},
			codes.InvalidArgument, []string{`tables[0].columns[5].expr (table "orders")`, "notes"}},
		{"missing source column", func(s *commonv1.JobSpec) { s.Tables[0].Columns[0].Source = "order_id" },
			codes.InvalidArgument, []string{`tables[0].columns[0].source (table "orders")`, "order_id"}},
		{"filter that does not compile", func(s *commonv1.JobSpec) {
			s.Tables[0].Filters = []*commonv1.RowFilter{{When: "status ==", Reason: "x"}}
		}, codes.InvalidArgument, []string{`tables[0].filters[0].when (table "orders")`}},
		{"filter that is not a bool", func(s *commonv1.JobSpec) {
			s.Tables[0].Filters = []*commonv1.RowFilter{{When: "id + 1", Reason: "x"}}
		}, codes.InvalidArgument, []string{`tables[0].filters[0].when (table "orders")`}},
		{"dedupe on a missing column", func(s *commonv1.JobSpec) {
			s.Tables[0].Dedupe = &commonv1.Dedupe{Keys: []*commonv1.MatchKey{{Columns: []string{"phone"}}}, Policy: commonv1.SurvivorPolicy_SURVIVOR_POLICY_MOST_COMPLETE}
		}, codes.InvalidArgument, []string{`tables[0].dedupe.keys[0].columns[0] (table "orders")`, `"phone"`}},
		{"dedupe without a policy", func(s *commonv1.JobSpec) {
			s.Tables[0].Dedupe = &commonv1.Dedupe{Keys: []*commonv1.MatchKey{{Columns: []string{"note"}}}}
		}, codes.InvalidArgument, []string{"tables[0].dedupe.policy"}},
		{"reference to an entity nobody gives ids", func(s *commonv1.JobSpec) {
			s.Tables[0].Columns[1].Ref = &commonv1.IdRef{Entity: "customer"}
		}, codes.InvalidArgument, []string{`tables[0].columns[1].ref.entity (table "orders")`, `"customer"`}},
		{"collision rule missing", func(s *commonv1.JobSpec) {
			s.Tables[0].Collisions = []*commonv1.KeyCollision{{Column: "note"}}
		}, codes.InvalidArgument, []string{"tables[0].collisions[0].rule"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var spec *commonv1.JobSpec
			if tt.mutate != nil {
				spec = ordersSpec(csv)
				tt.mutate(spec)
			}
			_, err := jobs.CreateJob(context.Background(), &orchestratorv1.CreateJobRequest{Spec: spec})
			st := status.Convert(err)
			if st.Code() != tt.code {
				t.Fatalf("code = %s (%s), want %s", st.Code(), st.Message(), tt.code)
			}
			for _, w := range tt.want {
				if !strings.Contains(st.Message(), w) {
					t.Errorf("message %q does not name %q", st.Message(), w)
				}
			}
		})
	}
	if n := db.Int(`SELECT count(*) FROM cutover_control.jobs`); n != 0 {
		t.Fatalf("%d jobs were created from bad specs", n)
	}
	if _, err := jobs.GetJob(context.Background(), &orchestratorv1.GetJobRequest{Id: "nope"}); status.Code(err) != codes.NotFound {
		t.Fatalf("GetJob(nope) = %v, want NotFound", err)
	}
}

// TestCancelThenResumeLoadsEveryRowOnce: a cancelled job keeps what it
// loaded; resuming skips those batches through the ledger and finishes.
func TestCancelThenResumeLoadsEveryRowOnce(t *testing.T) {
	db := testenv.NewDB(t)
	db.Exec(`CREATE TABLE seq (id bigint PRIMARY KEY, v text)`)
	var sb strings.Builder
	sb.WriteString("id,v\n")
	const n = 60000
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&sb, "%d,value %d\n", i, i)
	}
	_, jobs := startStack(t, db)
	spec := &commonv1.JobSpec{Name: "seq", BatchSize: 500, Tables: []*commonv1.TableSpec{{
		Name: "seq", TargetTable: "seq",
		Source:  &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Csv{Csv: &commonv1.CsvSource{Path: testenv.WriteFile(t, "seq.csv", sb.String())}}},
		Columns: []*commonv1.ColumnMapping{{Target: "id", Source: "id"}, {Target: "v", Source: "v"}},
	}}}
	ctx := context.Background()
	created, err := jobs.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	id := created.Job.Id
	for db.Int(`SELECT count(*) FROM cutover.ledger WHERE job_id = $1`, id) < 3 {
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := jobs.CancelJob(ctx, &orchestratorv1.CancelJobRequest{Id: id}); err != nil {
		t.Fatalf("CancelJob: %v", err)
	}
	job := testenv.WaitJob(t, jobs, id, time.Minute)
	if job.State != orchestratorv1.JobState_JOB_STATE_CANCELLED {
		t.Fatalf("state after cancel = %s", job.State)
	}
	if _, err := jobs.CancelJob(ctx, &orchestratorv1.CancelJobRequest{Id: id}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("second cancel = %v, want FailedPrecondition", err)
	}
	if _, err := jobs.ResumeJob(ctx, &orchestratorv1.ResumeJobRequest{Id: id}); err != nil {
		t.Fatalf("ResumeJob: %v", err)
	}
	job = testenv.WaitJob(t, jobs, id, 2*time.Minute)
	if job.State != orchestratorv1.JobState_JOB_STATE_SUCCEEDED {
		t.Fatalf("state after resume = %s: %s", job.State, job.Error)
	}
	if got := db.Int(`SELECT count(*) FROM seq`); got != n {
		t.Fatalf("target has %d rows, want %d", got, n)
	}
	if got := db.Int(`SELECT count(DISTINCT id) FROM seq`); got != n {
		t.Fatalf("target has %d distinct ids, want %d", got, n)
	}
	if got := db.Int(`SELECT count(*) FROM cutover.ledger WHERE job_id = $1`, id); got != n/500 {
		t.Fatalf("ledger has %d batches, want %d", got, n/500)
	}
	if job.Counts.Extracted != n || job.Counts.Loaded != n {
		t.Fatalf("counts = %+v", job.Counts)
	}
}
