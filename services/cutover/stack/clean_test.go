package stack_test

import (
	"context"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/cutover/internal/testenv"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	gproto "google.golang.org/protobuf/proto"
)

func cleanStep(fn string, kv ...string) *commonv1.CleanStep {
	args := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		args[kv[i]] = kv[i+1]
	}
	return &commonv1.CleanStep{Function: fn, Args: args}
}

// TestCleaningThroughTheStack: a member export with messy phones, dates and
// amounts in fen is cleaned on the way; values no function can clean are
// quarantined with the function's reason; an unknown function is refused
// before any data moves, naming the table and column.
func TestCleaningThroughTheStack(t *testing.T) {
	db := testenv.NewDB(t)
	db.Exec(`CREATE TABLE members (id int PRIMARY KEY, phone text, joined date, balance numeric(12,2), city text)`)
	csv := testenv.WriteFile(t, "members.csv", "id,phone,joined,balance_fen,address\n"+
		"1,138 1234 5678,2023/1/5,1999,北京市朝阳区建国路1号\n"+
		"2,+86 (139) 0000-1111,2023年2月28日,5,广东深圳南山区科技园\n"+
		"3,12345,2023/2/30,100,上海市浦东新区\n")
	_, jobs := startStack(t, db)
	spec := &commonv1.JobSpec{Name: "members", Tables: []*commonv1.TableSpec{{Name: "members", TargetTable: "members",
		Source: &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Csv{Csv: &commonv1.CsvSource{Path: csv}}},
		Columns: []*commonv1.ColumnMapping{
			{Target: "id", Source: "id"},
			{Target: "phone", Source: "phone", Clean: []*commonv1.CleanStep{cleanStep("phone", "region", "CN")}},
			{Target: "joined", Source: "joined", Clean: []*commonv1.CleanStep{cleanStep("date", "formats", "YYYY/M/D|YYYY年M月D日")}},
			{Target: "balance", Source: "balance_fen", Clean: []*commonv1.CleanStep{cleanStep("scale", "by", "-2")}},
			{Target: "city", Source: "address", Clean: []*commonv1.CleanStep{cleanStep("address_cn", "part", "city")}},
		}}}}
	ctx := context.Background()
	bad := gproto.Clone(spec).(*commonv1.JobSpec)
	bad.Tables[0].Columns[2].Clean = []*commonv1.CleanStep{cleanStep("dat", "formats", "YYYY")}
	_, err := jobs.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: bad})
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "tables[0].columns[2].clean") ||
		!strings.Contains(st.Message(), `"joined"`) || !strings.Contains(st.Message(), `unknown cleaning function`) {
		t.Fatalf("unknown function: %v", err)
	}
	created, err := jobs.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: spec})
	if err != nil {
		t.Fatalf("CreateJob: %v", err)
	}
	job := testenv.WaitJob(t, jobs, created.Job.Id, time.Minute)
	if job.State != orchestratorv1.JobState_JOB_STATE_SUCCEEDED || job.Counts.Loaded != 2 || job.Counts.Quarantined != 1 {
		t.Fatalf("job %s %s %+v", job.State, job.Error, job.Counts)
	}
	got := strings.Join(db.Strings(`SELECT concat_ws(',', id, phone, joined, balance, city) FROM members ORDER BY id`), "|")
	if got != "1,+8613812345678,2023-01-05,19.99,北京市|2,+8613900001111,2023-02-28,0.05,深圳市" {
		t.Fatalf("cleaned rows: %s", got)
	}
	reasons := db.Strings(`SELECT source_ref || ' ' || rule || ' ' || reason FROM cutover.quarantine ORDER BY id`)
	if len(reasons) != 2 || !strings.HasPrefix(reasons[0], "line 4 clean column phone: step 1 (phone)") || !strings.Contains(reasons[1], "column joined: step 1 (date)") {
		t.Fatalf("quarantined: %q", reasons)
	}
}

// TestExpressionsThroughTheStack: a CEL expression computes a column from
// the source row; one that does not compile, or names a missing column, is
// refused before any data moves.
func TestExpressionsThroughTheStack(t *testing.T) {
	db := testenv.NewDB(t)
	db.Exec(`CREATE TABLE people (id int PRIMARY KEY, full_name text, size text)`)
	csv := testenv.WriteFile(t, "people.csv", "id,first,last,orders\n1,Ann,Lee,3\n2,Bo,Chan,250\n3,Cy,,x\n")
	_, jobs := startStack(t, db)
	spec := &commonv1.JobSpec{Name: "people", Tables: []*commonv1.TableSpec{{Name: "people", TargetTable: "people",
		Source: &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Csv{Csv: &commonv1.CsvSource{Path: csv}}},
		Columns: []*commonv1.ColumnMapping{
			{Target: "id", Source: "id"},
			{Target: "full_name", Expr: `first + " " + last`},
			{Target: "size", Expr: `int(orders) > 100 ? "big" : "small"`},
		}}}}
	ctx := context.Background()
	for _, tt := range []struct{ expr, want string }{
		{`first +`, "tables[0].columns[2].expr"},
		{`int(ordrs) > 1 ? "a" : "b"`, "ordrs"},
	} {
		bad := gproto.Clone(spec).(*commonv1.JobSpec)
		bad.Tables[0].Columns[2].Expr = tt.expr
		_, err := jobs.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: bad})
		if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), tt.want) || !strings.Contains(st.Message(), "tables[0].columns[2].expr") {
			t.Errorf("expr %q: %v, want InvalidArgument naming %q", tt.expr, err, tt.want)
		}
	}
	created, err := jobs.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: spec})
	if err != nil {
		t.Fatalf("CreateJob: %v", err)
	}
	job := testenv.WaitJob(t, jobs, created.Job.Id, time.Minute)
	if job.State != orchestratorv1.JobState_JOB_STATE_SUCCEEDED || job.Counts.Loaded != 2 || job.Counts.Quarantined != 1 {
		t.Fatalf("job %s %s %+v", job.State, job.Error, job.Counts)
	}
	if got := strings.Join(db.Strings(`SELECT concat_ws(',', id, full_name, size) FROM people ORDER BY id`), "|"); got != "1,Ann Lee,small|2,Bo Chan,big" {
		t.Fatalf("rows: %s", got)
	}
	if r := db.Strings(`SELECT source_ref || ' ' || rule || ' ' || column_name FROM cutover.quarantine`); len(r) != 1 || r[0] != "line 4 expr size" {
		t.Fatalf("quarantine: %q", r)
	}
}
