package stack_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/cutover/internal/testenv"
	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// rollbackSums checksums every target table (rows and content).
func rollbackSums(db *testenv.DB, tables ...string) map[string]string {
	out := map[string]string{}
	for _, tbl := range tables {
		out[tbl] = db.Strings(`SELECT count(*)::text || ':' || coalesce(md5(string_agg(t::text, E'\n' ORDER BY t::text)), '') FROM ` + tbl + ` t`)[0]
	}
	return out
}

func sameSums(t *testing.T, label string, got, want map[string]string) {
	t.Helper()
	for tbl, w := range want {
		if got[tbl] != w {
			t.Errorf("%s: %s = %s, want %s", label, tbl, got[tbl], w)
		}
	}
}

func cols(names ...string) []*commonv1.ColumnMapping {
	var out []*commonv1.ColumnMapping
	for _, n := range names {
		out = append(out, &commonv1.ColumnMapping{Target: n, Source: n})
	}
	return out
}

// crmTarget fills the target with 100 customers and 200 orders; the source
// has customers 91..130 (91..100 renamed) and orders 181..260 (181..200
// changed, the rest new and some of them of new customers).
func crmTarget(t *testing.T) (src, db *testenv.DB) {
	src, db = testenv.NewDB(t), testenv.NewDB(t)
	db.Exec(`CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL, email text UNIQUE)`,
		`CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers(id), amount numeric(10,2))`,
		`INSERT INTO customers SELECT g, 'customer ' || g, 'c' || g || '@x' FROM generate_series(1, 100) g`,
		`INSERT INTO orders SELECT g, 1 + g % 100, g * 1.25 FROM generate_series(1, 200) g`)
	src.Exec(`CREATE TABLE customers (id bigint PRIMARY KEY, name text, email text)`,
		`CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint, amount numeric(10,2))`,
		`INSERT INTO customers SELECT g, 'renamed ' || g, 'c' || g || '@x' FROM generate_series(91, 130) g`,
		`INSERT INTO orders SELECT g, 91 + g % 40, g * 2 FROM generate_series(181, 260) g`)
	return src, db
}

func upsertSpec(src *testenv.DB) *commonv1.JobSpec {
	up := commonv1.WriteMode_WRITE_MODE_UPSERT
	// One partition at a time, customers first: orders of new customers
	// find them.
	return &commonv1.JobSpec{Name: "upsert crm", BatchSize: 16, Parallelism: 1,
		Tables: []*commonv1.TableSpec{
			{Name: "customers", TargetTable: "customers", Source: pgTable(src.URL, "public", "customers"), WriteMode: up, Columns: cols("id", "name", "email")},
			{Name: "orders", TargetTable: "orders", Source: pgTable(src.URL, "public", "orders"), WriteMode: up, Columns: cols("id", "customer_id", "amount")},
		}}
}

// TestRollbackRestoresChecksums is the acceptance test of undo: an upsert
// job inserts and updates rows of two non-empty tables (a parent and its
// child), RollbackJob puts both back checksum for checksum; a second
// rollback is a no-op, also through REST.
func TestRollbackRestoresChecksums(t *testing.T) {
	src, db := crmTarget(t)
	st, jobs := startStack(t, db)
	ctx := context.Background()
	before := rollbackSums(db, "customers", "orders")

	job := runJob(t, jobs, upsertSpec(src))
	if c := job.Counts; c.Extracted != 120 || c.Loaded != 120 || c.Quarantined != 0 {
		t.Fatalf("counts = %v", c)
	}
	if got := db.Int(`SELECT count(*) FROM customers WHERE name LIKE 'renamed %'`); got != 40 {
		t.Errorf("%d customers renamed or added, want 40", got)
	}
	if got := db.Int(`SELECT count(*) FROM orders`); got != 260 {
		t.Errorf("%d orders, want 260", got)
	}
	after := rollbackSums(db, "customers", "orders")
	for tbl := range before {
		if after[tbl] == before[tbl] {
			t.Fatalf("the job did not change %s", tbl)
		}
	}

	res, err := jobs.RollbackJob(ctx, &orchestratorv1.RollbackJobRequest{Id: job.Id})
	if err != nil {
		t.Fatalf("RollbackJob: %v", err)
	}
	if res.Job.State != orchestratorv1.JobState_JOB_STATE_ROLLED_BACK {
		t.Errorf("state = %s", res.Job.State)
	}
	var got []string
	for _, tr := range res.Tables {
		got = append(got, tr.GetTable()+" deleted "+itoa(tr.GetDeleted())+" restored "+itoa(tr.GetRestored()))
	}
	if want := "customers deleted 30 restored 10;orders deleted 60 restored 20"; strings.Join(got, ";") != want {
		t.Errorf("rollback = %v, want %s", got, want)
	}
	sameSums(t, "after rollback", rollbackSums(db, "customers", "orders"), before)

	// Again, over REST: the stored outcome, nothing touched.
	code, body := httpDo(t, st, "POST", st.GatewayURL()+"/v1/jobs/"+job.Id+":rollback", `{}`, "")
	if code != http.StatusOK || !strings.Contains(body, "JOB_STATE_ROLLED_BACK") || !strings.Contains(body, `"deleted":"30"`) {
		t.Errorf("POST :rollback = %d %s", code, body)
	}
	sameSums(t, "after second rollback", rollbackSums(db, "customers", "orders"), before)

	rep, err := jobs.GetJobReport(ctx, &orchestratorv1.GetJobReportRequest{Id: job.Id})
	if err != nil || rep.Report.GetState() != orchestratorv1.JobState_JOB_STATE_ROLLED_BACK {
		t.Fatalf("report state = %v, %v", rep.GetReport().GetState(), err)
	}
	undone := map[string]string{}
	for _, tr := range rep.Report.GetRollback() {
		undone[tr.GetTable()] = itoa(tr.GetDeleted()) + "/" + itoa(tr.GetRestored())
	}
	if undone["customers"] != "30/10" || undone["orders"] != "60/20" {
		t.Errorf("report's rollback (deleted/restored) = %v", undone)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// pgxBegin opens a transaction on a connection of its own.
func pgxBegin(ctx context.Context, url string) (pgx.Tx, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	return conn.Begin(ctx)
}

// TestRollbackStates: a running job cannot be rolled back; cancelled, it
// can; a failed job can; a table without a key rolls back from its backup
// and is refused without one.
func TestRollbackStates(t *testing.T) {
	src, db := crmTarget(t)
	db.Exec(`CREATE TABLE events (customer_id bigint, what text)`,
		`INSERT INTO events SELECT g % 7, 'seen' FROM generate_series(1, 50) g`)
	src.Exec(`CREATE TABLE events (id bigint PRIMARY KEY, customer_id bigint, what text)`,
		`INSERT INTO events SELECT g, g % 5, CASE WHEN g % 10 = 0 THEN 'seen' ELSE 'bought' END FROM generate_series(1, 30) g`)
	_, jobs := startStack(t, db)
	ctx := context.Background()
	tables := []string{"customers", "orders", "events"}
	before := rollbackSums(db, tables...)

	t.Run("running, then cancelled", func(t *testing.T) {
		// A lock held here keeps the job's first batch waiting: the job is
		// running for as long as this test wants.
		lockCtx, release := context.WithCancel(ctx)
		locked := make(chan error, 1)
		unlock := make(chan struct{})
		go func() {
			tx, err := pgxBegin(lockCtx, db.URL)
			if err != nil {
				locked <- err
				return
			}
			if _, err := tx.Exec(lockCtx, `LOCK TABLE customers IN ACCESS EXCLUSIVE MODE`); err != nil {
				locked <- err
				return
			}
			locked <- nil
			<-unlock
			_ = tx.Rollback(context.Background())
			tx.Conn().Close(context.Background())
		}()
		if err := <-locked; err != nil {
			t.Fatal(err)
		}
		created, err := jobs.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: upsertSpec(src)})
		if err != nil {
			close(unlock)
			release()
			t.Fatalf("CreateJob: %v", err)
		}
		_, err = jobs.RollbackJob(ctx, &orchestratorv1.RollbackJobRequest{Id: created.Job.Id})
		if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "cancel it first") {
			t.Errorf("rollback of a running job: %v", err)
		}
		if _, err := jobs.CancelJob(ctx, &orchestratorv1.CancelJobRequest{Id: created.Job.Id}); err != nil {
			t.Fatal(err)
		}
		close(unlock)
		release()
		// The partition lets go once its stream has ended.
		deadline := time.Now().Add(time.Minute)
		for db.Int(`SELECT count(*) FROM cutover_control.partitions WHERE job_id = $1 AND state = 'running'`, created.Job.Id) > 0 {
			if time.Now().After(deadline) {
				t.Fatal("the cancelled job's partition is still running")
			}
			time.Sleep(20 * time.Millisecond)
		}
		if _, err := jobs.RollbackJob(ctx, &orchestratorv1.RollbackJobRequest{Id: created.Job.Id}); err != nil {
			t.Fatalf("rollback of a cancelled job: %v", err)
		}
		sameSums(t, "cancelled job rolled back", rollbackSums(db, tables...), before)
	})

	t.Run("failed", func(t *testing.T) {
		spec := upsertSpec(src)
		// Orders of customers the job does not load break the foreign key
		// and pass the threshold: the job fails after loading rows.
		spec.Tables = spec.Tables[1:]
		zero := int64(0)
		spec.Thresholds = []*commonv1.Threshold{{MaxRows: &zero}}
		created, err := jobs.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: spec})
		if err != nil {
			t.Fatal(err)
		}
		job := testenv.WaitJob(t, jobs, created.Job.Id, 3*time.Minute)
		if job.State != orchestratorv1.JobState_JOB_STATE_FAILED {
			t.Fatalf("job %s %s, want failed", job.State, job.Error)
		}
		if _, err := jobs.RollbackJob(ctx, &orchestratorv1.RollbackJobRequest{Id: job.Id}); err != nil {
			t.Fatalf("rollback of a failed job: %v", err)
		}
		sameSums(t, "failed job rolled back", rollbackSums(db, tables...), before)
	})

	eventsSpec := func(backup bool) *commonv1.JobSpec {
		// events holds rows on purpose: the job appends to them.
		return &commonv1.JobSpec{Name: "events", BatchSize: 8, Target: &commonv1.TargetSpec{Backup: backup, IfExists: commonv1.IfExists_IF_EXISTS_APPEND},
			Tables: []*commonv1.TableSpec{{Name: "events", TargetTable: "events", Source: pgTable(src.URL, "public", "events"), Columns: cols("customer_id", "what")}}}
	}
	t.Run("no key, backup", func(t *testing.T) {
		job := runJob(t, jobs, eventsSpec(true))
		if job.Counts.Loaded != 30 || db.Int(`SELECT count(*) FROM events`) != 80 {
			t.Fatalf("loaded %d, events %d", job.Counts.Loaded, db.Int(`SELECT count(*) FROM events`))
		}
		res, err := jobs.RollbackJob(ctx, &orchestratorv1.RollbackJobRequest{Id: job.Id})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Tables) != 1 || !res.Tables[0].GetFromBackup() || res.Tables[0].GetDeleted() != 30 {
			t.Errorf("rollback = %v", res.Tables)
		}
		sameSums(t, "rolled back from backup", rollbackSums(db, tables...), before)
	})
	t.Run("no key, no backup", func(t *testing.T) {
		job := runJob(t, jobs, eventsSpec(false))
		_, err := jobs.RollbackJob(ctx, &orchestratorv1.RollbackJobRequest{Id: job.Id})
		if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "events") || !strings.Contains(err.Error(), "target.backup") {
			t.Errorf("rollback without key or backup: %v", err)
		}
	})
	t.Run("upsert without key is refused", func(t *testing.T) {
		spec := eventsSpec(false)
		spec.Tables[0].WriteMode = commonv1.WriteMode_WRITE_MODE_UPSERT
		_, err := jobs.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: spec})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "tables[0].write_mode") {
			t.Errorf("CreateJob: %v", err)
		}
	})
}

// TestRollbackStagedUpsert: a dedupe (staged) table upserted at finalize
// rolls back to its checksum.
func TestRollbackStagedUpsert(t *testing.T) {
	src, db := crmTarget(t)
	// Two source rows of one new person (same email) merge into one.
	src.Exec(`INSERT INTO customers VALUES (131, 'twin', 'c130@x')`)
	_, jobs := startStack(t, db)
	before := rollbackSums(db, "customers", "orders")
	spec := upsertSpec(src)
	spec.Tables = spec.Tables[:1]
	spec.Tables[0].Dedupe = &commonv1.Dedupe{Keys: []*commonv1.MatchKey{{Columns: []string{"email"}}}, Policy: commonv1.SurvivorPolicy_SURVIVOR_POLICY_MOST_COMPLETE}
	job := runJob(t, jobs, spec)
	if job.Counts.MergedAway != 1 || db.Int(`SELECT count(*) FROM customers`) != 130 {
		t.Fatalf("counts %v, customers %d", job.Counts, db.Int(`SELECT count(*) FROM customers`))
	}
	if _, err := jobs.RollbackJob(context.Background(), &orchestratorv1.RollbackJobRequest{Id: job.Id}); err != nil {
		t.Fatal(err)
	}
	sameSums(t, "staged upsert rolled back", rollbackSums(db, "customers", "orders"), before)
}
