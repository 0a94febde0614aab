package jobstore

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/kit/pgtest"
	"github.com/cutover/cutover/services/kit/sealbox"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// testBox seals what the tests' stores keep.
var testBox = sealbox.New(sealbox.NewKey())

// planted is a password no row of the control schema may hold in clear
// (trust auth ignores it, so the DSNs still connect).
const planted = "Pl4nted"

// secretSpec has a planted password in every DSN form and field it can.
func secretSpec(name string) *commonv1.JobSpec {
	return &commonv1.JobSpec{Name: name, BatchSize: 100, Parallelism: 1,
		Target: &commonv1.TargetSpec{Dsn: "postgres://postgres:" + planted + "@127.0.0.1:5432/target_db", Schema: "public"},
		Tables: []*commonv1.TableSpec{
			{Name: "orders", TargetTable: "orders", Source: &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Postgres{Postgres: &commonv1.PostgresSource{
				Dsn: "host=127.0.0.1 port=5432 user=postgres password=" + planted + " dbname=legacy", Table: "orders"}}},
				Columns: []*commonv1.ColumnMapping{{Target: "id", Source: "id"}}},
			{Name: "members", TargetTable: "members", Source: &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Mysql{Mysql: &commonv1.MysqlSource{
				Dsn: "root:" + planted + "@tcp(127.0.0.1:3306)/shop", Table: "members"}}},
				Columns: []*commonv1.ColumnMapping{{Target: "id", Source: "id"}}},
			{Name: "stores", TargetTable: "stores", Source: &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Csv{Csv: &commonv1.CsvSource{Path: "/data/stores.csv"}}},
				Columns: []*commonv1.ColumnMapping{{Target: "id", Source: "id"}}},
		}}
}

// controlText is every row of every table of the control schema as text,
// the tables found in the catalog (not a list that a new table would miss).
func controlText(t *testing.T, pool *pgxpool.Pool) map[string]string {
	t.Helper()
	ctx := context.Background()
	rows, err := pool.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'cutover_control' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, tbl := range tables {
		var text string
		q := `SELECT coalesce(string_agg(t::text, E'\n'), '') FROM ` + pgx.Identifier{"cutover_control", tbl}.Sanitize() + ` t`
		if err := pool.QueryRow(ctx, q).Scan(&text); err != nil {
			t.Fatalf("%s: %v", tbl, err)
		}
		out[tbl] = text
	}
	return out
}

// assertNoSecret fails if any row of the control schema holds s.
func assertNoSecret(t *testing.T, pool *pgxpool.Pool, s string) map[string]string {
	t.Helper()
	text := controlText(t, pool)
	for _, tbl := range []string{"jobs", "partitions", "audit"} {
		if _, ok := text[tbl]; !ok {
			t.Fatalf("control schema has no table %s: %v", tbl, text)
		}
	}
	for tbl, rows := range text {
		if strings.Contains(rows, s) {
			t.Errorf("cutover_control.%s holds %q:\n%s", tbl, s, rows)
		}
	}
	return text
}

// Every DSN of a job is sealed in the control schema, and so are DSNs in
// what else it stores; errors and audit details are scrubbed. The job
// reads back exactly as it was written.
func TestSecretsSealedAtRest(t *testing.T) {
	s, pool := open(t)
	ctx := context.Background()
	spec := secretSpec("sealed")
	orig := proto.Clone(spec).(*commonv1.JobSpec)
	cons := &loaderv1.AddConstraintsRequest{Target: proto.Clone(spec.Target).(*commonv1.TargetSpec),
		Constraints: []*loaderv1.TableConstraint{{Table: "orders", Name: "orders_pkey", Columns: []string{"id"}}}}
	j := &Job{ID: "job-sealed", Name: spec.Name, Parallelism: 1, Spec: spec, Constraints: cons}
	parts := []Partition{{ID: "orders-0000", Table: "orders", Range: &commonv1.KeyRange{}}, {ID: "members-0000", Table: "members", TableIndex: 1, Range: &commonv1.KeyRange{}}}
	if err := s.InsertJob(ctx, j, parts); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(spec, orig) {
		t.Fatal("InsertJob changed the caller's spec")
	}
	// A stage's error quoting a DSN, and an audit detail that does.
	leak := errors.New("loader: failed to connect to " + orig.Target.Dsn + " (" + orig.Tables[1].GetSource().GetMysql().GetDsn() + ")")
	claimed, _, err := s.ClaimPartition(ctx, "job-sealed", "orders-0000", "replica-1", time.Minute)
	if err != nil || claimed == nil {
		t.Fatalf("claim: %v, %v", claimed, err)
	}
	if err := s.RetryPartition(ctx, claimed, "replica-1", 0, leak); err != nil {
		t.Fatal(err)
	}
	if err := s.FailPartition(ctx, claimed, "replica-1", leak); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAudit(ctx, AuditRecord{Principal: "ci", Role: "ci", Method: "/x", JobID: j.ID, Outcome: "OK", Peer: "p", Detail: leak.Error()}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetReconciliation(ctx, j.ID, &orchestratorv1.Reconciliation{}); err != nil {
		t.Fatal(err)
	}
	rb := &loaderv1.RollbackResponse{Tables: []*loaderv1.TableRollback{{Table: "public.orders", Deleted: 3}}}
	if ok, err := s.RollBack(ctx, j.ID, rb); err != nil || !ok {
		t.Fatalf("roll back: %v %v", ok, err)
	}

	text := assertNoSecret(t, pool, planted)
	if n := strings.Count(text["jobs"], sealbox.Prefix); n < 4 {
		t.Errorf("jobs row holds %d sealed values, want the 3 DSNs of the spec and the constraints' target:\n%s", n, text["jobs"])
	}
	// Sealing every DSN whole also hides hosts and users.
	var stored string
	if err := pool.QueryRow(ctx, `SELECT spec::text FROM cutover_control.jobs WHERE id = $1`, j.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stored, "127.0.0.1") || strings.Contains(stored, "root") {
		t.Errorf("stored spec shows a host or user: %s", stored)
	}

	got, err := s.GetJob(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got.Spec, orig) {
		t.Fatalf("spec read back:\n%v\nwant\n%v", got.Spec, orig)
	}
	if !proto.Equal(got.Constraints, cons) {
		t.Fatalf("constraints read back:\n%v\nwant\n%v", got.Constraints, cons)
	}
	if out, err := s.RollbackOutcome(ctx, j.ID); err != nil || !proto.Equal(out, rb) {
		t.Fatalf("rollback outcome %v, %v", out, err)
	}
	if !strings.Contains(got.ErrText, "failed to connect to postgres://postgres:") {
		t.Errorf("the stored error lost more than the password: %q", got.ErrText)
	}
}

// A job stored before sealing began (plain DSNs in its spec) still reads;
// a spec mixing plain and sealed values too.
func TestPlainSpecStillReads(t *testing.T) {
	s, pool := open(t)
	ctx := context.Background()
	spec := secretSpec("old")
	plain, err := protojson.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO cutover_control.jobs (id, name, state, spec, parallelism) VALUES ('job-old', 'old', 'failed', $1, 1)`, plain); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetJob(ctx, "job-old")
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got.Spec, spec) {
		t.Fatalf("spec read back:\n%v\nwant\n%v", got.Spec, spec)
	}
	// Half sealed: the target sealed, the sources still plain.
	if _, err := pool.Exec(ctx, `UPDATE cutover_control.jobs SET spec = jsonb_set(spec, '{target,dsn}', to_jsonb($1::text)) WHERE id = 'job-old'`,
		testBox.Seal(spec.Target.Dsn)); err != nil {
		t.Fatal(err)
	}
	if got, err = s.GetJob(ctx, "job-old"); err != nil {
		t.Fatalf("half-sealed spec: %v", err)
	}
	if !proto.Equal(got.Spec, spec) {
		t.Fatalf("half-sealed spec read back:\n%v\nwant\n%v", got.Spec, spec)
	}
}

// A store with another key cannot read a sealed job: a clear error naming
// the job and the field, not a panic, and nothing of the secret. Listing
// (no spec) still works.
func TestWrongKeyNamesTheJob(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	if _, err := Open(ctx, url, nil); err == nil {
		t.Fatal("Open without a key succeeded")
	}
	a, err := Open(ctx, url, testBox)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	spec := secretSpec("keyed")
	if err := a.InsertJob(ctx, &Job{ID: "job-keyed", Name: "keyed", Parallelism: 1, Spec: spec}, nil); err != nil {
		t.Fatal(err)
	}
	b, err := Open(ctx, url, sealbox.New(sealbox.NewKey()))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var stored string
	if err := a.pool.QueryRow(ctx, `SELECT spec->'target'->>'dsn' FROM cutover_control.jobs`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, s *Store, why string) {
		t.Helper()
		_, err := s.GetJob(ctx, "job-keyed")
		if !errors.Is(err, ErrSealed) {
			t.Fatalf("GetJob: %v, want ErrSealed", err)
		}
		msg := err.Error()
		for _, want := range []string{"job-keyed", "target.dsn", "--secret-key-file", why} {
			if !strings.Contains(msg, want) {
				t.Errorf("error %q does not say %q", msg, want)
			}
		}
		if strings.Contains(msg, planted) || strings.Contains(msg, stored[len(sealbox.Prefix):len(sealbox.Prefix)+8]) {
			t.Errorf("error %q quotes the secret or the sealed value", msg)
		}
	}
	t.Run("another key", func(t *testing.T) { check(t, b, "another key") })
	jobs, _, err := b.ListJobs(ctx, ListQuery{Limit: 10})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("ListJobs with another key: %v, %v", jobs, err)
	}
	// A sealed value mangled in the database is refused, not guessed at.
	if _, err := a.pool.Exec(ctx, `UPDATE cutover_control.jobs SET spec = jsonb_set(spec, '{target,dsn}', to_jsonb('enc:v1:not*base64'::text))`); err != nil {
		t.Fatal(err)
	}
	stored = "enc:v1:not*base64"
	t.Run("mangled", func(t *testing.T) { check(t, a, "malformed") })
}
