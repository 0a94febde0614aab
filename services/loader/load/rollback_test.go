package load

import (
	"context"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// checksum is the content of a table as one md5 (row order free) with its
// row count.
func (e *env) checksum(t *testing.T, table string) string {
	t.Helper()
	var sum string
	var n int64
	if err := e.db.QueryRow(context.Background(),
		`SELECT coalesce(md5(string_agg(x::text, E'\n' ORDER BY x::text)), ''), count(*) FROM `+table+` x`).Scan(&sum, &n); err != nil {
		t.Fatal(err)
	}
	return sum + "/" + itoa(n)
}

func (e *env) upsertConfig(table, job, part string) *loaderv1.LoadConfig {
	c := e.config(table, job, part)
	c.WriteMode = commonv1.WriteMode_WRITE_MODE_UPSERT
	return c
}

func (e *env) rollback(t *testing.T, job string, tables ...string) *loaderv1.RollbackResponse {
	t.Helper()
	r, err := e.client.Rollback(context.Background(), &loaderv1.RollbackRequest{Target: e.target(), JobId: job, Tables: tables})
	if err != nil {
		t.Fatalf("rollback %s: %v", job, err)
	}
	return r
}

func rolled(r *loaderv1.RollbackResponse) string {
	var parts []string
	for _, tr := range r.GetTables() {
		s := tr.GetTable() + " -" + itoa(tr.GetDeleted()) + " ~" + itoa(tr.GetRestored())
		if tr.GetFromBackup() {
			s += " backup"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// TestUpsertKeepsBeforeImagesAndRollsBack: an upsert job inserts and
// updates rows of two non-empty tables (a parent and a child), updates a
// row twice and a row it inserted itself, has a bad row and a key twice in
// one batch; rolling it back gives the tables back checksum for checksum.
func TestUpsertKeepsBeforeImagesAndRollsBack(t *testing.T) {
	e := newEnv(t,
		`CREATE TABLE cust (id bigint PRIMARY KEY, name text NOT NULL, email text UNIQUE, seen int NOT NULL DEFAULT 0)`,
		`CREATE TABLE ord (id bigint PRIMARY KEY, cust_id bigint NOT NULL REFERENCES cust(id), amount numeric(10,2))`,
		`INSERT INTO cust SELECT g, 'name ' || g, 'c' || g || '@x', g FROM generate_series(1, 10) g`,
		`INSERT INTO ord SELECT g, 1 + g % 10, g * 1.5 FROM generate_series(1, 20) g`)
	before := map[string]string{"cust": e.checksum(t, "cust"), "ord": e.checksum(t, "ord")}
	text := e.svc.textOnly.Load()
	for _, textOnly := range []bool{false, true} {
		e.svc.textOnly.Store(textOnly)
		job := "job-up-" + map[bool]string{false: "bin", true: "text"}[textOnly]
		// Batch 1: 9 and 10 change, 11 and 12 are new, 12 comes twice (the
		// later row wins), one row has no name (quarantined).
		b1 := withRefs(mkBatch(1,
			col{"id", tInt, []any{9, 10, 11, 12, 12, 13}},
			col{"name", tText, []any{"new 9", "new 10", "new 11", "first 12", "new 12", nil}},
			col{"email", tText, []any{"c9@x", "changed10@x", "c11@x", "c12@x", "c12@x", "c13@x"}},
		), "r1", "r2", "r3", "r4", "r5", "r6")
		// Batch 2: 9 changes again (its first image stays), 11 (inserted
		// by the job) changes, 1 changes.
		b2 := withRefs(mkBatch(2,
			col{"id", tInt, []any{9, 11, 1}},
			col{"name", tText, []any{"again 9", "again 11", "new 1"}},
			col{"email", tText, []any{"c9@x", "c11@x", "new1@x"}},
		), "r7", "r8", "r9")
		resp, err := e.load(t, e.upsertConfig("cust", job, "p"), b1, b2)
		if err != nil {
			t.Fatal(err)
		}
		if c := resp[0].GetCounts(); c.GetLoaded() != 5 || c.GetQuarantined() != 1 {
			t.Errorf("batch 1 counts = %v", c)
		}
		if c := resp[1].GetCounts(); c.GetLoaded() != 3 || c.GetQuarantined() != 0 {
			t.Errorf("batch 2 counts = %v", c)
		}
		got := e.rows(t, `SELECT id, name, email, seen FROM cust WHERE id IN (1, 9, 10, 11, 12, 13) ORDER BY id`)
		if want := "1|new 1|new1@x|1;9|again 9|c9@x|9;10|new 10|changed10@x|10;11|again 11|c11@x|0;12|new 12|c12@x|0"; strings.Join(got, ";") != want {
			t.Errorf("cust after upsert = %v, want %s", got, want)
		}
		if got := e.rows(t, `SELECT key, row IS NULL, row->>'name' FROM cutover.before_images WHERE job_id = '`+job+`' ORDER BY key`); strings.Join(got, ";") != "id=1|false|name 1;id=10|false|name 10;id=11|true|NULL;id=12|true|NULL;id=9|false|name 9" {
			t.Errorf("before images = %v", got)
		}
		oresp, err := e.load(t, e.upsertConfig("ord", job, "po"), withRefs(mkBatch(1,
			col{"id", tInt, []any{1, 21, 22}},
			col{"cust_id", tInt, []any{12, 11, 99}}, // 99: no such customer
			col{"amount", tText, []any{"9.99", "1.00", "2.00"}},
		), "o1", "o2", "o3"))
		if err != nil {
			t.Fatal(err)
		}
		if c := oresp[0].GetCounts(); c.GetLoaded() != 2 || c.GetQuarantined() != 1 {
			t.Errorf("ord counts = %v", c)
		}
		if e.checksum(t, "cust") == before["cust"] || e.checksum(t, "ord") == before["ord"] {
			t.Fatal("the job changed nothing")
		}

		r := e.rollback(t, job, "cust", "ord")
		if got, want := rolled(r), "cust -2 ~3; ord -1 ~1"; got != want {
			t.Errorf("rollback = %s, want %s", got, want)
		}
		for table, sum := range before {
			if got := e.checksum(t, table); got != sum {
				t.Errorf("%s after rollback: %s, want %s", table, got, sum)
			}
		}
		// Once rolled back, a second call finds it done and says the same.
		if again := e.rollback(t, job, "cust", "ord"); rolled(again) != rolled(r) {
			t.Errorf("second rollback = %s", rolled(again))
		}
		for table, sum := range before {
			if got := e.checksum(t, table); got != sum {
				t.Errorf("%s after second rollback: %s, want %s", table, got, sum)
			}
		}
	}
	e.svc.textOnly.Store(text)
}

// TestBackupRestoresTablesWithoutKey: a table with no primary key is put
// back from the job's backup, duplicates and all; without a backup its
// rollback is refused.
func TestBackupRestoresTablesWithoutKey(t *testing.T) {
	e := newEnv(t,
		`CREATE TABLE logk (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, msg text, twice text GENERATED ALWAYS AS (msg || msg) STORED)`,
		`CREATE TABLE lognk (msg text, n int)`,
		`INSERT INTO logk (msg) VALUES ('a'), ('b')`,
		`INSERT INTO lognk VALUES ('a', 1), ('a', 1), ('b', NULL)`)
	before := map[string]string{"logk": e.checksum(t, "logk"), "lognk": e.checksum(t, "lognk")}
	ctx := context.Background()
	for i := 0; i < 2; i++ { // the second call finds the copies made
		r, err := e.client.BackupTables(ctx, &loaderv1.BackupTablesRequest{Target: e.target(), JobId: "job-b", Tables: []string{"logk", "lognk"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.GetRows()) != 2 || r.GetRows()[0] != 2 || r.GetRows()[1] != 3 {
			t.Fatalf("backup rows = %v", r.GetRows())
		}
	}
	if _, err := e.load(t, e.config("lognk", "job-b", "p"), withRefs(mkBatch(1,
		col{"msg", tText, []any{"a", "c"}}, col{"n", tInt, []any{1, 2}}), "r1", "r2")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.load(t, e.config("logk", "job-b", "pk"), withRefs(mkBatch(1,
		col{"id", tInt, []any{3}}, col{"msg", tText, []any{"c"}}), "r1")); err != nil {
		t.Fatal(err)
	}
	// Someone else's change the rollback undoes as well (a backup is exact).
	if _, err := e.db.Exec(ctx, `UPDATE logk SET msg = 'z' WHERE id = 1; DELETE FROM lognk WHERE msg = 'b'`); err != nil {
		t.Fatal(err)
	}

	// Without the backup the keyless table cannot be rolled back.
	_, err := e.client.Rollback(ctx, &loaderv1.RollbackRequest{Target: e.target(), JobId: "job-other", Tables: []string{"lognk"}})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "lognk") || !strings.Contains(err.Error(), "target.backup") {
		t.Errorf("rollback without backup: %v", err)
	}

	r := e.rollback(t, "job-b", "logk", "lognk")
	if got, want := rolled(r), "logk -1 ~1 backup; lognk -2 ~1 backup"; got != want {
		t.Errorf("rollback = %s, want %s", got, want)
	}
	for table, sum := range before {
		if got := e.checksum(t, table); got != sum {
			t.Errorf("%s after rollback: %s, want %s", table, got, sum)
		}
	}
}

// TestUpsertNeedsPrimaryKey: upsert into a table without a primary key is
// refused, naming the table.
func TestUpsertNeedsPrimaryKey(t *testing.T) {
	e := newEnv(t, `CREATE TABLE nk (id bigint, name text)`, `CREATE TABLE wk (id bigint PRIMARY KEY, name text)`)
	b := withRefs(mkBatch(1, col{"id", tInt, []any{1}}, col{"name", tText, []any{"x"}}), "r1")
	for _, tc := range []struct {
		name, table string
		batch       *commonv1.Batch
		want        string
	}{
		{"no primary key", "nk", b, "nk has no primary key"},
		{"key column missing", "wk", withRefs(mkBatch(1, col{"name", tText, []any{"x"}}), "r1"), `primary-key column "id"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.load(t, e.upsertConfig(tc.table, "job-nk", "p"), tc.batch)
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want InvalidArgument with %q", err, tc.want)
			}
		})
	}
}

// TestStagedUpsertRollsBack: a staged (dedupe) table upserted at finalize
// keeps before images like a direct load, and rolls back to its checksum.
func TestStagedUpsertRollsBack(t *testing.T) {
	e := newEnv(t, `CREATE TABLE sc (id bigint PRIMARY KEY, email text, city text)`,
		`INSERT INTO sc VALUES (1, 'a@x', 'Wuhan'), (2, 'b@x', 'Hefei')`)
	before := e.checksum(t, "sc")
	cfg := e.stagedConfig("sc", "sc", "s", "p")
	cfg.WriteMode = commonv1.WriteMode_WRITE_MODE_UPSERT
	b := withRefs(mkBatch(1,
		col{"id", tInt, []any{2, 3, 4}},
		col{"email", tText, []any{"b@x", "c@x", "c@x"}}, // 3 and 4 are one record
		col{"city", tText, []any{"Xi'an", nil, "Suzhou"}},
	), "r1", "r2", "r3")
	if _, err := e.load(t, cfg, b); err != nil {
		t.Fatal(err)
	}
	_, err := e.client.FinalizeStaged(context.Background(), &loaderv1.FinalizeStagedRequest{
		Target: e.target(), JobId: "job-f", TargetTable: "sc", Sources: []*loaderv1.StagedSource{{Table: "sc", System: "s"}},
		Dedupe: &commonv1.Dedupe{Keys: []*commonv1.MatchKey{{Columns: []string{"email"}}}, Policy: commonv1.SurvivorPolicy_SURVIVOR_POLICY_MOST_COMPLETE},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.rows(t, `SELECT * FROM sc ORDER BY id`); strings.Join(got, ";") != "1|a@x|Wuhan;2|b@x|Xi'an;4|c@x|Suzhou" {
		t.Errorf("sc = %v", got)
	}
	if r := e.rollback(t, "job-f", "sc"); rolled(r) != "sc -1 ~1" {
		t.Errorf("rollback = %s", rolled(r))
	}
	if got := e.checksum(t, "sc"); got != before {
		t.Errorf("sc after rollback = %s, want %s", got, before)
	}
}
