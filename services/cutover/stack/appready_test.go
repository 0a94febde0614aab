package stack_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/cutover/internal/testenv"
	"github.com/cutover/cutover/services/kit/mysqltest"
	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"
)

// targetIndexes lists the target schema's indexes (primary keys and unique
// constraints included) as "table(col, col) primary|unique|plain", sorted.
func targetIndexes(db *testenv.DB, schema string) []string {
	return db.Strings(`SELECT t.relname || '(' || array_to_string(array(SELECT a.attname FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(n, o)
			JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n ORDER BY k.o), ', ') || ') ' ||
			CASE WHEN i.indisprimary THEN 'primary' WHEN i.indisunique THEN 'unique' ELSE 'plain' END
		FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
		WHERE n.nspname = $1 ORDER BY 1`, schema)
}

func runCreateTablesJob(t *testing.T, jobs orchestratorv1.JobServiceClient, spec *commonv1.JobSpec, rows int64) *orchestratorv1.Job {
	t.Helper()
	created, err := jobs.CreateJob(context.Background(), &orchestratorv1.CreateJobRequest{Spec: spec})
	if err != nil {
		t.Fatalf("CreateJob: %v", err)
	}
	job := testenv.WaitJob(t, jobs, created.Job.Id, time.Minute)
	if job.State != orchestratorv1.JobState_JOB_STATE_SUCCEEDED || job.Counts.Loaded != rows {
		t.Fatalf("job %s %s %+v", job.State, job.Error, job.Counts)
	}
	return job
}

// TestMariaDBTargetTakesInserts: after create_tables from MariaDB the
// application can insert without naming the key (AUTO_INCREMENT goes on
// past the loaded ids), defaults and CURRENT_TIMESTAMP apply, ON UPDATE
// CURRENT_TIMESTAMP bumps on update, and the indexes and unique keys are
// those of the source. The expected values come from the source: the same
// insert is made there.
func TestMariaDBTargetTakesInserts(t *testing.T) {
	mdsn := mysqltest.NewDatabase(t)
	my, err := sql.Open("mysql", mdsn)
	if err != nil {
		t.Fatal(err)
	}
	defer my.Close()
	ctx := context.Background()
	for _, q := range []string{
		`CREATE TABLE customers (id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY, email VARCHAR(80) NOT NULL,
			name VARCHAR(40) NOT NULL DEFAULT 'it''s \\ new', credit DECIMAL(8,2) NOT NULL DEFAULT 12.50, tier INT DEFAULT -1,
			created DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
			updated TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
			city VARCHAR(20), token VARCHAR(36) DEFAULT (uuid()),
			UNIQUE KEY email_uq (email), KEY by_name (name), KEY by_city_created (city, created))`,
		`CREATE TABLE notes (id BIGINT AUTO_INCREMENT PRIMARY KEY, customer_id INT UNSIGNED NOT NULL, body TEXT,
			pinned TINYINT(1) NOT NULL DEFAULT 0, KEY by_customer (customer_id))`,
		`INSERT INTO customers (id, email, name, credit, city, created, updated) VALUES
			(1, 'a@x', 'Ann', 1, 'Oslo', '2020-01-01', '2020-01-01'), (5, 'b@x', 'Bo', 2, NULL, '2020-01-01', '2020-01-01'),
			(42, 'c@x', 'Cy', 3, 'Rome', '2020-01-01', '2020-01-01')`,
		`INSERT INTO notes (id, customer_id, body) VALUES (7, 1, 'hello'), (900, 42, 'bye')`,
	} {
		if _, err := my.ExecContext(ctx, q); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	// The source's indexes, before anything is inserted anywhere.
	var want []string
	rows, err := my.QueryContext(ctx, `SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX SEPARATOR ', ')
		FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() GROUP BY TABLE_NAME, INDEX_NAME, NON_UNIQUE`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var table, index, cols string
		var nonUnique int
		if err := rows.Scan(&table, &index, &nonUnique, &cols); err != nil {
			t.Fatal(err)
		}
		kind := map[bool]string{true: "plain", false: "unique"}[nonUnique == 1]
		if index == "PRIMARY" {
			kind = "primary"
		}
		want = append(want, fmt.Sprintf("%s(%s) %s", table, cols, kind))
	}
	rows.Close()
	sort.Strings(want)

	db := testenv.NewDB(t)
	_, jobs := startStack(t, db)
	pg, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close(ctx)
	source := func(table string) *commonv1.SourceSpec {
		return &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Mysql{Mysql: &commonv1.MysqlSource{Dsn: mdsn, Table: table}}}
	}
	job := runCreateTablesJob(t, jobs, &commonv1.JobSpec{Name: "app ready", Target: &commonv1.TargetSpec{Schema: "app", CreateTables: true},
		Tables: []*commonv1.TableSpec{
			{Name: "customers", TargetTable: "customers", Source: source("customers")},
			{Name: "notes", TargetTable: "notes", Source: source("notes")},
		}}, 5)

	if got := targetIndexes(db, "app"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("target indexes:\n%s\nsource indexes:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := db.Int(`SELECT count(*) FROM pg_constraint WHERE connamespace = 'app'::regnamespace AND contype = 'p'`); n != 2 {
		t.Errorf("%d primary keys, want 2", n)
	}

	// The same insert, naming no key, on both sides.
	var srcID int64
	var srcName, srcCredit string
	var srcTier int
	if err := my.QueryRowContext(ctx, `INSERT INTO customers (email) VALUES ('new@x') RETURNING id, name, CAST(credit AS CHAR), tier`).
		Scan(&srcID, &srcName, &srcCredit, &srcTier); err != nil {
		t.Fatal(err)
	}
	var id int64
	var name, credit string
	var tier int
	var created, updated time.Time
	if err := pg.QueryRow(ctx, `INSERT INTO app.customers (email) VALUES ('new@x') RETURNING id, name, credit::text, tier, created, updated`).
		Scan(&id, &name, &credit, &tier, &created, &updated); err != nil {
		t.Fatalf("insert without a key: %v", err)
	}
	if id != srcID || id != 43 || name != srcName || credit != srcCredit || tier != srcTier {
		t.Errorf("target row: id %d name %q credit %s tier %d; source gave id %d name %q credit %s tier %d",
			id, name, credit, tier, srcID, srcName, srcCredit, srcTier)
	}
	if time.Since(created) > 24*time.Hour || time.Since(updated) > time.Minute {
		t.Errorf("CURRENT_TIMESTAMP defaults: created %v updated %v", created, updated)
	}
	var srcNote int64
	if err := my.QueryRowContext(ctx, `INSERT INTO notes (customer_id) VALUES (1) RETURNING id`).Scan(&srcNote); err != nil {
		t.Fatal(err)
	}
	var note int64
	var pinned bool
	if err := pg.QueryRow(ctx, `INSERT INTO app.notes (customer_id) VALUES (1) RETURNING id, pinned`).Scan(&note, &pinned); err != nil {
		t.Fatalf("insert a note without a key: %v", err)
	}
	if note != srcNote || note != 901 || pinned {
		t.Errorf("note id %d pinned %v, source gave id %d", note, pinned, srcNote)
	}
	// The unique key holds.
	if _, err := pg.Exec(ctx, `INSERT INTO app.customers (email) VALUES ('a@x')`); err == nil || !strings.Contains(err.Error(), "23505") {
		t.Errorf("duplicate email: %v, want a unique violation", err)
	}
	// ON UPDATE CURRENT_TIMESTAMP.
	db.Exec(`UPDATE app.customers SET city = 'Bern' WHERE id = 5`)
	if n := db.Int(`SELECT count(*) FROM app.customers WHERE id = 5 AND updated > now() - interval '1 minute'`); n != 1 {
		t.Errorf("updated not bumped by an update")
	}
	if n := db.Int(`SELECT count(*) FROM app.customers WHERE id IN (1, 42) AND updated = '2020-01-01'`); n != 2 {
		t.Errorf("rows not updated changed their updated column")
	}
	rep, err := jobs.GetJobReport(ctx, &orchestratorv1.GetJobReportRequest{Id: job.Id})
	if err != nil {
		t.Fatal(err)
	}
	ddl := strings.Join(rep.Report.Ddl, "\n")
	for _, w := range []string{`"id" bigint GENERATED BY DEFAULT AS IDENTITY NOT NULL`, `DEFAULT E'it''s \\ new'`, `BEFORE UPDATE ON "app"."customers"`,
		`SELECT setval(pg_get_serial_sequence(E'"app"."customers"', E'id')`, `-- not carried over: default of "app"."customers"."token": uuid()`} {
		if !strings.Contains(ddl, w) {
			t.Errorf("report DDL lacks %q:\n%s", w, ddl)
		}
	}
}

// TestSQLiteTargetTakesInserts: the same for SQLite: INTEGER PRIMARY KEY
// becomes an identity, UNIQUE constraints and CREATE INDEX indexes carry
// over, defaults apply.
func TestSQLiteTargetTakesInserts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shop.db")
	lite, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	ctx := context.Background()
	for _, q := range []string{
		`CREATE TABLE products (id INTEGER PRIMARY KEY, sku TEXT NOT NULL UNIQUE, name TEXT NOT NULL DEFAULT 'un''named',
			qty INTEGER NOT NULL DEFAULT 0, price DECIMAL(8,2) DEFAULT 1.25, added DATETIME DEFAULT CURRENT_TIMESTAMP, category TEXT,
			UNIQUE (name, category))`,
		`CREATE INDEX products_category ON products (category, qty)`,
		`CREATE INDEX products_added ON products (added)`,
		`INSERT INTO products (id, sku, name, category, added) VALUES (1, 'a', 'tea', 'drinks', '2020-01-01 00:00:00'),
			(2, 'b', 'cup', 'ware', '2020-01-01 00:00:00'), (10, 'c', 'pot', 'ware', '2020-01-01 00:00:00')`,
	} {
		if _, err := lite.ExecContext(ctx, q); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	var want []string
	rows, err := lite.QueryContext(ctx, `SELECT l.origin, l."unique", (SELECT group_concat(name, ', ') FROM (SELECT name FROM pragma_index_info(l.name) ORDER BY seqno))
		FROM pragma_index_list('products') l`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var origin, cols string
		var unique bool
		if err := rows.Scan(&origin, &unique, &cols); err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprintf("products(%s) %s", cols, map[bool]string{true: "unique", false: "plain"}[unique]))
	}
	rows.Close()
	want = append(want, "products(id) primary") // the rowid: no index in pragma_index_list
	sort.Strings(want)

	db := testenv.NewDB(t)
	_, jobs := startStack(t, db)
	pg, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close(ctx)
	runCreateTablesJob(t, jobs, &commonv1.JobSpec{Name: "shop", Target: &commonv1.TargetSpec{Schema: "shop", CreateTables: true},
		Tables: []*commonv1.TableSpec{{Name: "products", TargetTable: "products",
			Source: &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Sqlite{Sqlite: &commonv1.SqliteSource{Path: path, Table: "products"}}}}}}, 3)

	if got := targetIndexes(db, "shop"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("target indexes:\n%s\nsource indexes:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var srcID int64
	var srcName, srcPrice string
	var srcQty int
	if err := lite.QueryRowContext(ctx, `INSERT INTO products (sku) VALUES ('new') RETURNING id, name, qty, CAST(price AS TEXT)`).
		Scan(&srcID, &srcName, &srcQty, &srcPrice); err != nil {
		t.Fatal(err)
	}
	var id int64
	var name, price string
	var qty int
	var added time.Time
	if err := pg.QueryRow(ctx, `INSERT INTO shop.products (sku) VALUES ('new') RETURNING id, name, qty, price::text, added`).
		Scan(&id, &name, &qty, &price, &added); err != nil {
		t.Fatalf("insert without a key: %v", err)
	}
	if id != srcID || id != 11 || name != srcName || qty != srcQty || price != srcPrice {
		t.Errorf("target row: id %d name %q qty %d price %s; source gave id %d name %q qty %d price %s", id, name, qty, price, srcID, srcName, srcQty, srcPrice)
	}
	if time.Since(added) > 24*time.Hour {
		t.Errorf("added default: %v", added)
	}
	if _, err := pg.Exec(ctx, `INSERT INTO shop.products (sku) VALUES ('a')`); err == nil || !strings.Contains(err.Error(), "23505") {
		t.Errorf("duplicate sku: %v, want a unique violation", err)
	}
}
