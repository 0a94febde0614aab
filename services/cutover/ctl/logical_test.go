package ctl

import (
	"context"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/cutover/internal/testenv"
	"github.com/cutover/cutover/services/kit/pgtest"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TestFollowLogicalToastAndColumns follows a PostgreSQL table through the
// streaming replication protocol, without REPLICA IDENTITY FULL:
//   - an update that leaves a large (TOASTed) value alone does not log it,
//     and the target keeps the value (checksum equal to the source's);
//     readiness counts the values the target kept;
//   - a nullable column added on the source is carried: the target table
//     gets it, the mapping copies it, rows changed before it hold NULL;
//   - a dropped column stops the follower with a reason naming the column
//     and its definition, which readiness shows; the job keeps following.
func TestFollowLogicalToastAndColumns(t *testing.T) {
	url := pgtest.NewLogicalDatabase(t)
	ctx := context.Background()
	src, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	exec := func(qs ...string) {
		t.Helper()
		for _, q := range qs {
			if _, err := src.Exec(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
	// md5 text does not compress: the big values are stored out of line.
	exec(`CREATE TABLE docs (id int PRIMARY KEY, title text NOT NULL, body text)`,
		`INSERT INTO docs SELECT i, 'doc ' || i, (SELECT string_agg(md5((g * i)::text), '') FROM generate_series(1, 1500) g) FROM generate_series(1, 20) i`)
	db := testenv.NewDB(t)
	db.Exec(`CREATE TABLE docs (id int PRIMARY KEY, title text NOT NULL, body text)`)
	st := startStack(t, db)
	jobs := jobClient(t, st.Addrs.Orchestrator)
	id := createJob(t, jobs, &commonv1.JobSpec{Name: "follow docs", Tables: []*commonv1.TableSpec{{
		Name: "docs", TargetTable: "docs",
		Source:  &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Postgres{Postgres: &commonv1.PostgresSource{Dsn: url, Table: "docs"}}},
		Columns: []*commonv1.ColumnMapping{{Target: "id", Source: "id"}, {Target: "title", Source: "title"}, {Target: "body", Source: "body"}},
		Sync:    &commonv1.SyncSpec{PollMs: 50, Kind: &commonv1.SyncSpec_Logical{Logical: &commonv1.LogicalSync{}}},
	}}})
	waitState(t, jobs, id, orchestratorv1.JobState_JOB_STATE_FOLLOWING)
	// The full load's snapshot is closed once it is in: held while the job
	// follows, it would keep VACUUM back and every ALTER below waiting.
	waitUntil(t, "the full load's snapshot to be closed", func() bool {
		var open int
		if err := src.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'`).Scan(&open); err != nil {
			t.Fatal(err)
		}
		return open == 0
	})
	sum := func(q func(string, ...any) []string, cols string) string {
		return strings.Join(q(`SELECT md5(string_agg(concat_ws('|', `+cols+`), ',' ORDER BY id)) FROM docs`), "")
	}
	srcSum := func(cols string) string {
		var s string
		if err := src.QueryRow(ctx, `SELECT md5(string_agg(concat_ws('|', `+cols+`), ',' ORDER BY id)) FROM docs`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	readiness := func() *orchestratorv1.GetReadinessResponse {
		r, err := jobs.GetReadiness(ctx, &orchestratorv1.GetReadinessRequest{Id: id})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	// Updates that leave body alone, in transactions of their own.
	exec(`UPDATE docs SET title = title || ' (edited)' WHERE id <= 10`, `UPDATE docs SET title = 'renamed' WHERE id = 3`)
	want := srcSum("id, title, body")
	waitUntil(t, "the target to equal the source after updates that leave the large values out", func() bool {
		return sum(db.Strings, "id, title, body") == want
	})
	var kept int64
	waitUntil(t, "readiness to count the values the target kept", func() bool {
		r := readiness()
		if len(r.GetTables()) == 1 {
			kept = r.GetTables()[0].GetKeptValues()
		}
		return kept >= 10
	})
	if kept != 11 {
		t.Errorf("kept values %d, want 11 (one per updated row)", kept)
	}

	// An added nullable column is carried.
	exec(`UPDATE docs SET title = 'before the column' WHERE id = 20`, `ALTER TABLE docs ADD COLUMN tags text`,
		`INSERT INTO docs VALUES (21, 'new', 'short body', 'a,b')`, `UPDATE docs SET tags = 'x' WHERE id = 2`)
	want = srcSum("id, title, body, tags")
	waitUntil(t, "the added column to reach the target", func() bool {
		if db.Int(`SELECT count(*) FROM information_schema.columns WHERE table_name = 'docs' AND column_name = 'tags'`) == 0 {
			return false
		}
		return sum(db.Strings, "id, title, body, tags") == want
	})

	// A dropped column stops the follower naming it.
	exec(`ALTER TABLE docs DROP COLUMN title`, `UPDATE docs SET tags = 'y' WHERE id = 4`)
	var reasons string
	waitUntil(t, "readiness to say why the follower stopped", func() bool {
		reasons = strings.Join(readiness().GetReasons(), "; ")
		// A read that met the drop half way names the column alone; the
		// next read compares the table with the job's columns in full.
		return strings.Contains(reasons, "stopped") && strings.Contains(reasons, "now has")
	})
	for _, part := range []string{"column title text", "no longer in the table", "id integer, body text, tags text"} {
		if !strings.Contains(reasons, part) {
			t.Errorf("readiness %q does not say %q", reasons, part)
		}
	}
	if s := readiness().GetState(); s != orchestratorv1.JobState_JOB_STATE_FOLLOWING {
		t.Errorf("job %s after the stop, want it still following", s)
	}
}

// TestFollowLogicalTruncate: with on_truncate APPLY a TRUNCATE of a table
// followed by logical replication empties the target of the rows it
// removed, and rows written after it (in its own transaction too) arrive;
// the position past it is in the ledger, so the slot is never confirmed
// beyond what the ledger holds. When only another table changes, the slot
// moves past its WAL too, through the ledger.
func TestFollowLogicalTruncate(t *testing.T) {
	url := pgtest.NewLogicalDatabase(t)
	ctx := context.Background()
	src, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	exec := func(qs ...string) {
		t.Helper()
		for _, q := range qs {
			if _, err := src.Exec(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
	exec(`CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)`, `INSERT INTO items VALUES (1, 'a'), (2, 'b'), (3, 'c')`)
	db := testenv.NewDB(t)
	db.Exec(`CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)`)
	st := startStack(t, db)
	jobs := jobClient(t, st.Addrs.Orchestrator)
	id := createJob(t, jobs, &commonv1.JobSpec{Name: "follow items", Tables: []*commonv1.TableSpec{{
		Name: "items", TargetTable: "items",
		Source:  &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Postgres{Postgres: &commonv1.PostgresSource{Dsn: url, Table: "items"}}},
		Columns: []*commonv1.ColumnMapping{{Target: "id", Source: "id"}, {Target: "name", Source: "name"}},
		Sync: &commonv1.SyncSpec{PollMs: 50, OnTruncate: commonv1.TruncatePolicy_TRUNCATE_POLICY_APPLY,
			Kind: &commonv1.SyncSpec_Logical{Logical: &commonv1.LogicalSync{}}},
	}}})
	waitState(t, jobs, id, orchestratorv1.JobState_JOB_STATE_FOLLOWING)
	exec(`UPDATE items SET name = 'b2' WHERE id = 2`, `TRUNCATE items`, `INSERT INTO items VALUES (2, 'new b'), (9, 'i')`)
	rows := func() string { return strings.Join(db.Strings(`SELECT id || ' ' || name FROM items ORDER BY id`), "|") }
	waitUntil(t, "the target to hold the source's rows after the TRUNCATE", func() bool { return rows() == "2 new b|9 i" })
	exec(`BEGIN; INSERT INTO items VALUES (10, 'j'); TRUNCATE items; INSERT INTO items VALUES (11, 'k'); COMMIT`)
	waitUntil(t, "the rows written after a TRUNCATE in its transaction", func() bool { return rows() == "11 k" })
	var confirmed string
	if err := src.QueryRow(ctx, `SELECT confirmed_flush_lsn::text FROM pg_replication_slots`).Scan(&confirmed); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the ledger to hold the slot's confirmed position", func() bool {
		return db.Int(`SELECT count(*) FROM cutover.ledger WHERE job_id = $1 AND position::pg_lsn >= $2::pg_lsn`, id, confirmed) > 0
	})
	// Only another table changes: the slot moves past its WAL, never past
	// the ledger.
	exec(`CREATE TABLE other (id int, pad text)`, `INSERT INTO other SELECT g, repeat('x', 200) FROM generate_series(1, 100000) g`)
	slotAt := func() string {
		var at string
		if err := src.QueryRow(ctx, `SELECT confirmed_flush_lsn::text FROM pg_replication_slots`).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at
	}
	waitUntil(t, "the slot to move past another table's 20 MB of WAL", func() bool {
		var moved bool
		if err := src.QueryRow(ctx, `SELECT $1::pg_lsn - $2::pg_lsn >= 16 * 1024 * 1024`, slotAt(), confirmed).Scan(&moved); err != nil {
			t.Fatal(err)
		}
		return moved
	})
	if n := db.Int(`SELECT count(*) FROM cutover.ledger WHERE job_id = $1 AND position::pg_lsn >= $2::pg_lsn`, id, slotAt()); n == 0 {
		t.Errorf("the slot is confirmed at %s, past every position in the ledger", slotAt())
	}
	r, err := jobs.GetReadiness(ctx, &orchestratorv1.GetReadinessRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	for _, reason := range r.GetReasons() {
		if strings.Contains(reason, "stopped") {
			t.Fatalf("readiness after the TRUNCATE: %q", reason)
		}
	}
}
