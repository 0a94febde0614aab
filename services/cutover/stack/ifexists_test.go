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
)

// ifExistsCSV: the first load; ifExistsCSV2 overlaps it in ids 3..4 and
// changes them, and adds 5..6.
const (
	ifExistsCSV = `id,customer,amount,status,day,note
1,10,12.50,new,2023-01-05,one
2,11,7.00,paid,2023-01-06,two
3,12,3.00,new,2023-01-07,three
4,13,4.00,paid,2023-01-08,four
`
	ifExistsCSV2 = `id,customer,amount,status,day,note
3,22,33.00,paid,2023-02-07,three b
4,23,44.00,new,2023-02-08,four b
5,24,55.00,new,2023-02-09,five
6,25,66.00,paid,2023-02-10,six
`
)

func ordersSum(db *testenv.DB) string {
	return db.Strings(`SELECT count(*)::text || ':' || coalesce(md5(string_agg(t::text, ',' ORDER BY id)), '') FROM orders t`)[0]
}

func ids(db *testenv.DB) string {
	return strings.Join(db.Strings(`SELECT id::text FROM orders ORDER BY id`), ",")
}

func withIfExists(spec *commonv1.JobSpec, m commonv1.IfExists) *commonv1.JobSpec {
	spec.Target = &commonv1.TargetSpec{IfExists: m}
	return spec
}

// TestIfExistsFailIsTheDefault: a rerun into a table that holds the rows
// is refused at CreateJob with FAILED_PRECONDITION naming the table and
// its row count, nothing is written; ValidateSpec reports it as a problem
// of the table; append keeps loading next to the rows (today's behaviour:
// the taken keys are quarantined).
func TestIfExistsFailIsTheDefault(t *testing.T) {
	db := testenv.NewDB(t)
	db.Exec(ordersDDL)
	st, jobs := startStack(t, db)
	ctx := context.Background()
	csv := testenv.WriteFile(t, "orders.csv", ifExistsCSV)
	runJob(t, jobs, ordersSpec(csv))
	before := ordersSum(db)
	ledger := db.Int(`SELECT count(*) FROM cutover.ledger`)

	_, err := jobs.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: ordersSpec(csv)})
	if status.Code(err) != codes.FailedPrecondition ||
		!strings.Contains(err.Error(), "target table public.orders already holds 4 rows; set target.if_exists to append, truncate or upsert") {
		t.Fatalf("rerun CreateJob: %v, want FailedPrecondition naming public.orders and 4 rows", err)
	}
	// Explicitly fail: the same.
	if _, err := jobs.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: withIfExists(ordersSpec(csv), commonv1.IfExists_IF_EXISTS_FAIL)}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("if_exists fail: %v", err)
	}
	if got := ordersSum(db); got != before {
		t.Fatalf("refused job changed the table: %s, was %s", got, before)
	}
	if got := db.Int(`SELECT count(*) FROM cutover.ledger`); got != ledger {
		t.Fatalf("refused job wrote %d ledger rows", got-ledger)
	}
	if n := db.Int(`SELECT count(*) FROM cutover_control.jobs`); n != 1 {
		t.Fatalf("%d jobs stored, want only the first", n)
	}

	conn, err := st.Conn()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	v := orchestratorv1.NewValidationServiceClient(conn)
	res, err := v.ValidateSpec(ctx, &orchestratorv1.ValidateSpecRequest{Spec: ordersSpec(csv)})
	if err != nil {
		t.Fatal(err)
	}
	if res.GetOk() || len(res.GetTables()) != 1 || len(res.GetTables()[0].GetProblems()) != 1 {
		t.Fatalf("ValidateSpec: %v", res)
	}
	if p := res.GetTables()[0].GetProblems()[0]; p.GetTable() != "orders" || p.GetField() != "target.if_exists" ||
		!strings.Contains(p.GetMessage(), "public.orders already holds 4 rows") {
		t.Errorf("problem = %v", p)
	}
	res, err = v.ValidateSpec(ctx, &orchestratorv1.ValidateSpecRequest{Spec: withIfExists(ordersSpec(csv), commonv1.IfExists_IF_EXISTS_APPEND)})
	if err != nil || !res.GetOk() {
		t.Fatalf("ValidateSpec append: %v %v", res, err)
	}

	// Append: today's behaviour, the rows already there are quarantined.
	job := runJob(t, jobs, withIfExists(ordersSpec(testenv.WriteFile(t, "orders2.csv", ifExistsCSV2)), commonv1.IfExists_IF_EXISTS_APPEND))
	if c := job.Counts; c.Extracted != 4 || c.Loaded != 2 || c.Quarantined != 2 {
		t.Fatalf("append counts = %v, want 2 loaded, 2 quarantined", c)
	}
	if got := ids(db); got != "1,2,3,4,5,6" {
		t.Fatalf("ids after append = %s", got)
	}
	if got := db.Strings(`SELECT note FROM orders WHERE id = 3`)[0]; got != "three" {
		t.Errorf("append changed row 3: %q", got)
	}
	if n := db.Int(`SELECT count(*) FROM cutover.quarantine WHERE job_id = $1 AND rule = 'target_constraint'`, job.Id); n != 2 {
		t.Errorf("%d target_constraint rows, want 2", n)
	}
}

// TestIfExistsTruncateThenRollback is the acceptance test: the rerun is
// refused; with if_exists truncate it succeeds and the table holds exactly
// the new rows; RollbackJob restores exactly the earlier ones. A second
// pass of the truncation (a resumed partition) empties nothing.
func TestIfExistsTruncateThenRollback(t *testing.T) {
	db := testenv.NewDB(t)
	db.Exec(ordersDDL)
	_, jobs := startStack(t, db)
	ctx := context.Background()
	runJob(t, jobs, ordersSpec(testenv.WriteFile(t, "orders.csv", ifExistsCSV)))
	before := ordersSum(db)

	csv2 := testenv.WriteFile(t, "orders2.csv", ifExistsCSV2)
	if _, err := jobs.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: ordersSpec(csv2)}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("rerun: %v", err)
	}
	spec := withIfExists(ordersSpec(csv2), commonv1.IfExists_IF_EXISTS_TRUNCATE)
	spec.Tables[0].Partitions = 2
	job := runJob(t, jobs, spec)
	if c := job.Counts; c.Extracted != 4 || c.Loaded != 4 || c.Quarantined != 0 {
		t.Fatalf("truncate counts = %v", c)
	}
	if got := ids(db); got != "3,4,5,6" {
		t.Fatalf("ids after truncate = %s, want only the new rows", got)
	}
	if got := db.Strings(`SELECT note FROM orders WHERE id = 3`)[0]; got != "three b" {
		t.Errorf("row 3 = %q", got)
	}
	if got := db.Strings(`SELECT rows::text || ' ' || truncated::text FROM cutover.backups WHERE job_id = $1`, job.Id); strings.Join(got, ";") != "4 true" {
		t.Errorf("backups = %v, want the 4 earlier rows, truncated", got)
	}
	after := ordersSum(db)

	res, err := jobs.RollbackJob(ctx, &orchestratorv1.RollbackJobRequest{Id: job.Id})
	if err != nil {
		t.Fatalf("RollbackJob: %v", err)
	}
	if len(res.Tables) != 1 || !res.Tables[0].GetFromBackup() {
		t.Errorf("rollback = %v", res.Tables)
	}
	if got := ordersSum(db); got != before {
		t.Fatalf("after rollback %s, want the earlier rows %s", got, before)
	}
	_ = after
}

// TestIfExistsUpsert: every table spec without a write mode upserts: the
// existing keys are updated, new ones inserted, none quarantined, and the
// rollback puts the earlier rows back.
func TestIfExistsUpsert(t *testing.T) {
	db := testenv.NewDB(t)
	db.Exec(ordersDDL)
	_, jobs := startStack(t, db)
	ctx := context.Background()
	runJob(t, jobs, ordersSpec(testenv.WriteFile(t, "orders.csv", ifExistsCSV)))
	before := ordersSum(db)

	job := runJob(t, jobs, withIfExists(ordersSpec(testenv.WriteFile(t, "orders2.csv", ifExistsCSV2)), commonv1.IfExists_IF_EXISTS_UPSERT))
	if c := job.Counts; c.Extracted != 4 || c.Loaded != 4 || c.Quarantined != 0 {
		t.Fatalf("upsert counts = %v", c)
	}
	if got := ids(db); got != "1,2,3,4,5,6" {
		t.Fatalf("ids after upsert = %s", got)
	}
	if got := db.Strings(`SELECT note || ' ' || amount::text FROM orders WHERE id IN (1, 3, 4) ORDER BY id`); strings.Join(got, ";") != "one 12.50;three b 33.00;four b 44.00" {
		t.Errorf("rows after upsert = %v", got)
	}
	if _, err := jobs.RollbackJob(ctx, &orchestratorv1.RollbackJobRequest{Id: job.Id}); err != nil {
		t.Fatalf("RollbackJob: %v", err)
	}
	if got := ordersSum(db); got != before {
		t.Fatalf("after rollback %s, want %s", got, before)
	}

	// A table spec that says insert keeps inserting (and is checked).
	spec := withIfExists(ordersSpec(testenv.WriteFile(t, "orders3.csv", ifExistsCSV2)), commonv1.IfExists_IF_EXISTS_FAIL)
	spec.Tables[0].WriteMode = commonv1.WriteMode_WRITE_MODE_UPSERT
	created, err := jobs.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: spec})
	if err != nil {
		t.Fatalf("write_mode upsert with if_exists fail: %v (upsert expects rows)", err)
	}
	if j := testenv.WaitJob(t, jobs, created.Job.Id, time.Minute); j.State != orchestratorv1.JobState_JOB_STATE_SUCCEEDED {
		t.Fatalf("job %s: %s", j.State, j.Error)
	}
}
