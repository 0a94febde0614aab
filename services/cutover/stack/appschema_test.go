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

// targetKeys lists the target schema's indexes and what each is, as
// "table(col, col) primary|unique constraint|unique|plain", sorted.
func targetKeys(db *testenv.DB, schema string) []string {
	return db.Strings(`SELECT t.relname || '(' || array_to_string(array(SELECT a.attname FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(n, o)
			JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n ORDER BY k.o), ', ') || ') ' ||
			CASE (SELECT c.contype FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid AND c.contype IN ('p', 'u'))
				WHEN 'p' THEN 'primary' WHEN 'u' THEN 'unique constraint'
				ELSE CASE WHEN i.indisunique THEN 'unique' ELSE 'plain' END END
		FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
		WHERE n.nspname = $1 ORDER BY 1`, schema)
}

// mySnake is how the test expects identifier_case SNAKE to spell the
// source's names (written out, not computed by the product).
var mySnake = map[string]string{
	"CustomerAccounts": "customer_accounts", "CustomerID": "customer_id", "EmailAddress": "email_address", "FullName": "full_name",
	"Status": "status", "Tags": "tags", "CreditLimit": "credit_limit", "CreatedAt": "created_at", "UpdatedAt": "updated_at",
	"BirthDate": "birth_date", "Notes": "notes", "Orders": "orders", "OrderID": "order_id", "PlacedOn": "placed_on",
	"Total": "total", "Channel": "channel", "AuditLog": "audit_log", "Event": "event", "At": "at",
}

func snakeAll(list string) string {
	parts := strings.Split(list, ", ")
	for i, p := range parts {
		if s, ok := mySnake[p]; ok {
			parts[i] = s
		} else {
			parts[i] = "?" + p
		}
	}
	return strings.Join(parts, ", ")
}

// mysqlKeys reads the source's own catalog: every index of the tables
// given (information_schema.STATISTICS), with its kind from
// TABLE_CONSTRAINTS (a unique key is a UNIQUE constraint), split into
// those PostgreSQL can have (whole-column B-tree/hash) and the others
// (prefix, full-text, spatial), by name.
func mysqlKeys(t *testing.T, my *sql.DB, tables ...string) (carried []string, other []string) {
	t.Helper()
	rows, err := my.Query(`SELECT s.TABLE_NAME, s.INDEX_NAME, MAX(s.INDEX_TYPE NOT IN ('BTREE', 'HASH') OR s.SUB_PART IS NOT NULL),
			GROUP_CONCAT(s.COLUMN_NAME ORDER BY s.SEQ_IN_INDEX SEPARATOR ', '), MIN(s.NON_UNIQUE),
			COALESCE((SELECT MAX(c.CONSTRAINT_TYPE) FROM information_schema.TABLE_CONSTRAINTS c WHERE c.TABLE_SCHEMA = s.TABLE_SCHEMA
				AND c.TABLE_NAME = s.TABLE_NAME AND c.CONSTRAINT_NAME = s.INDEX_NAME AND c.CONSTRAINT_TYPE IN ('PRIMARY KEY', 'UNIQUE')), '')
		FROM information_schema.STATISTICS s WHERE s.TABLE_SCHEMA = DATABASE()
		GROUP BY s.TABLE_SCHEMA, s.TABLE_NAME, s.INDEX_NAME`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	want := map[string]bool{}
	for _, tb := range tables {
		want[tb] = true
	}
	for rows.Next() {
		var table, index, cols, constraint string
		var untranslatable bool
		var nonUnique int
		if err := rows.Scan(&table, &index, &untranslatable, &cols, &nonUnique, &constraint); err != nil {
			t.Fatal(err)
		}
		if !want[table] {
			continue
		}
		if untranslatable {
			other = append(other, index)
			continue
		}
		kind := "plain"
		switch {
		case constraint == "PRIMARY KEY":
			kind = "primary"
		case constraint == "UNIQUE":
			kind = "unique constraint"
		case nonUnique == 0:
			kind = "unique"
		}
		carried = append(carried, fmt.Sprintf("%s(%s) %s", mySnake[table], snakeAll(cols), kind))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(carried)
	return carried, other
}

// enumLabels reads enum('a','b') or set('a','b') from a column type.
func enumLabels(colType string) []string {
	body := colType[strings.IndexByte(colType, '(')+1 : len(colType)-1]
	var out []string
	for _, p := range strings.Split(body, "','") {
		out = append(out, strings.ReplaceAll(strings.Trim(p, "'"), "''", "'"))
	}
	return out
}

// TestMySQLSchemaForTheApplication (issue 12, item 1): a MariaDB schema with
// AUTO_INCREMENT, literal and CURRENT_TIMESTAMP defaults, ON UPDATE, an
// enum, a set, unique keys, secondary, prefix and full-text indexes and NOT
// NULL zero dates migrates with create_tables, identifier_case SNAKE, enums
// as PostgreSQL enum types and sets as text[]. Then a row goes into every
// table without naming its key, and the defaults, types and the list of
// indexes and constraints are checked against the source's own catalog and
// the same insert there. The keyless table is a subtest of its own.
func TestMySQLSchemaForTheApplication(t *testing.T) {
	mdsn := mysqltest.NewDatabase(t)
	my, err := sql.Open("mysql", mdsn)
	if err != nil {
		t.Fatal(err)
	}
	defer my.Close()
	ctx := context.Background()
	conn, err := my.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"SET SESSION sql_mode = ''",
		`CREATE TABLE CustomerAccounts (CustomerID INT AUTO_INCREMENT PRIMARY KEY, EmailAddress VARCHAR(80) NOT NULL,
			FullName VARCHAR(60) NOT NULL DEFAULT 'new customer',
			Status ENUM('new','active','it''s closed') NOT NULL DEFAULT 'new',
			Tags SET('vip','b2b','late payer') NOT NULL DEFAULT 'vip,b2b',
			CreditLimit DECIMAL(8,2) NOT NULL DEFAULT 100.50,
			CreatedAt DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
			UpdatedAt TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
			BirthDate DATE NOT NULL, Notes TEXT,
			UNIQUE KEY EmailAddressKey (EmailAddress), KEY StatusCreated (Status, CreatedAt), KEY FullNamePrefix (FullName(10)),
			FULLTEXT KEY NotesText (Notes))`,
		`CREATE TABLE Orders (OrderID BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, CustomerID INT NOT NULL,
			PlacedOn DATETIME NOT NULL, Total DECIMAL(10,2) NOT NULL DEFAULT 0, Channel ENUM('web','store') DEFAULT 'web',
			KEY CustomerOrders (CustomerID), UNIQUE KEY OneOrderAtATime (CustomerID, PlacedOn))`,
		`INSERT INTO CustomerAccounts (CustomerID, EmailAddress, FullName, Status, Tags, BirthDate, CreatedAt, UpdatedAt) VALUES
			(1, 'a@x', 'Ann', 'active', 'vip,late payer', '1980-02-03', '2020-01-01', '2020-01-01'),
			(7, 'b@x', 'Bo', 'it''s closed', '', '0000-00-00', '2020-01-01', '2020-01-01'),
			(30, 'c@x', 'Cy', 'new', 'b2b', '1990-12-31', '2020-01-01', '2020-01-01')`,
		`INSERT INTO Orders (OrderID, CustomerID, PlacedOn, Total, Channel) VALUES
			(100, 1, '2024-01-02 03:04:05', 9.99, 'store'), (250, 7, '0000-00-00 00:00:00', 1, NULL)`,
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	conn.Close()
	want, other := mysqlKeys(t, my, "CustomerAccounts", "Orders")
	labels := map[string][]string{}
	for _, col := range []string{"Status", "Tags", "Channel"} {
		var ct string
		if err := my.QueryRow(`SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND COLUMN_NAME = ?`, col).Scan(&ct); err != nil {
			t.Fatal(err)
		}
		labels[col] = enumLabels(ct)
	}

	db := testenv.NewDB(t)
	_, jobs := startStack(t, db)
	pg, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close(ctx)
	source := func(table string) *commonv1.SourceSpec {
		return &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Mysql{Mysql: &commonv1.MysqlSource{Dsn: mdsn, Table: table,
			ZeroDates: commonv1.ZeroDatePolicy_ZERO_DATE_POLICY_NULL}}}
	}
	job := runCreateTablesJob(t, jobs, &commonv1.JobSpec{Name: "app schema", Target: &commonv1.TargetSpec{Schema: "app", CreateTables: true,
		IdentifierCase: commonv1.IdentifierCase_IDENTIFIER_CASE_SNAKE, EnumAs: commonv1.EnumAs_ENUM_AS_PG_ENUM, SetAs: commonv1.SetAs_SET_AS_TEXT_ARRAY},
		Tables: []*commonv1.TableSpec{
			{Name: "customers", TargetTable: "CustomerAccounts", Source: source("CustomerAccounts")},
			{Name: "orders", TargetTable: "Orders", Source: source("Orders")},
		}}, 5)

	// Indexes and constraints: the source's, by its own catalog.
	if got := targetKeys(db, "app"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("target indexes and constraints:\n%s\nsource:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	rep, err := jobs.GetJobReport(ctx, &orchestratorv1.GetJobReportRequest{Id: job.Id})
	if err != nil {
		t.Fatal(err)
	}
	ddl := strings.Join(rep.Report.Ddl, "\n")
	for _, ix := range other {
		if !strings.Contains(ddl, "-- not carried over: index "+ix+" of mysql") {
			t.Errorf("report DDL does not name the source index %s it left out:\n%s", ix, ddl)
		}
	}
	for _, w := range []string{`-- not carried over: NOT NULL of "app"."customer_accounts"."birth_date"`, `-- not carried over: NOT NULL of "app"."orders"."placed_on"`,
		`CREATE TYPE "app"."customer_accounts_status_enum" AS ENUM`, `"tags" text[] DEFAULT E'{"vip","b2b"}' NOT NULL`} {
		if !strings.Contains(ddl, w) {
			t.Errorf("report DDL lacks %q:\n%s", w, ddl)
		}
	}

	// Types: enums are enum types with the source's labels in order, the
	// set is text[], the names are snake case; under zero_dates NULL every
	// date and time column is NULLable (any of them can hold a zero date).
	for col, typ := range map[string]string{"Status": "app.customer_accounts_status_enum", "Channel": "app.orders_channel_enum"} {
		got := strings.Join(db.Strings(`SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = $1::regtype ORDER BY e.enumsortorder`, typ), "|")
		if got != strings.Join(labels[col], "|") {
			t.Errorf("%s labels %q, source %q", typ, got, labels[col])
		}
	}
	if got := strings.Join(db.Strings(`SELECT attname || ' ' || format_type(atttypid, atttypmod) || CASE WHEN attnotnull THEN ' NOT NULL' ELSE '' END
		FROM pg_attribute WHERE attrelid = 'app.customer_accounts'::regclass AND attnum > 0 ORDER BY attnum`), "|"); got !=
		"customer_id integer NOT NULL|email_address character varying(80) NOT NULL|full_name character varying(60) NOT NULL|"+
			"status app.customer_accounts_status_enum NOT NULL|tags text[] NOT NULL|credit_limit numeric(8,2) NOT NULL|"+
			"created_at timestamp(0) without time zone|updated_at timestamp(0) with time zone|birth_date date|notes text" {
		t.Errorf("customer_accounts columns: %s", got)
	}
	if got := strings.Join(db.Strings(`SELECT customer_id || ' ' || status || ' ' || tags::text || ' ' || coalesce(birth_date::text, 'NULL')
		FROM app.customer_accounts ORDER BY 1`), "|"); got != `1 active {vip,"late payer"} 1980-02-03|30 new {b2b} 1990-12-31|7 it's closed {} NULL` {
		t.Errorf("loaded customers: %s", got)
	}
	if n := db.Int(`SELECT count(*) FROM app.customer_accounts WHERE 'late payer' = ANY (tags)`); n != 1 {
		t.Errorf("%d rows tagged 'late payer', want 1", n)
	}

	// A row into every table, naming no key, on both sides.
	var srcID int64
	var srcName, srcStatus, srcTags, srcCredit string
	if err := my.QueryRowContext(ctx, `INSERT INTO CustomerAccounts (EmailAddress, BirthDate) VALUES ('new@x', '2001-01-01')
		RETURNING CustomerID, FullName, Status, Tags, CAST(CreditLimit AS CHAR)`).Scan(&srcID, &srcName, &srcStatus, &srcTags, &srcCredit); err != nil {
		t.Fatal(err)
	}
	var id int64
	var name, status, tags, credit string
	var created, updated time.Time
	if err := pg.QueryRow(ctx, `INSERT INTO app.customer_accounts (email_address, birth_date) VALUES ('new@x', '2001-01-01')
		RETURNING customer_id, full_name, status::text, array_to_string(tags, ','), credit_limit::text, created_at, updated_at`).
		Scan(&id, &name, &status, &tags, &credit, &created, &updated); err != nil {
		t.Fatalf("insert a customer without a key: %v", err)
	}
	if id != srcID || id != 31 || name != srcName || status != srcStatus || tags != srcTags || credit != srcCredit {
		t.Errorf("target customer: id %d name %q status %q tags %q credit %s; source gave %d %q %q %q %s",
			id, name, status, tags, credit, srcID, srcName, srcStatus, srcTags, srcCredit)
	}
	if time.Since(created) > 24*time.Hour || time.Since(updated) > time.Minute {
		t.Errorf("CURRENT_TIMESTAMP defaults: created %v updated %v", created, updated)
	}
	var srcOrder int64
	var srcTotal, srcChannel string
	if err := my.QueryRowContext(ctx, `INSERT INTO Orders (CustomerID, PlacedOn) VALUES (1, '2025-05-05') RETURNING OrderID, CAST(Total AS CHAR), Channel`).
		Scan(&srcOrder, &srcTotal, &srcChannel); err != nil {
		t.Fatal(err)
	}
	var order int64
	var total, channel string
	if err := pg.QueryRow(ctx, `INSERT INTO app.orders (customer_id, placed_on) VALUES (1, '2025-05-05') RETURNING order_id, total::text, channel::text`).
		Scan(&order, &total, &channel); err != nil {
		t.Fatalf("insert an order without a key: %v", err)
	}
	if order != srcOrder || order != 251 || total != srcTotal || channel != srcChannel {
		t.Errorf("target order %d total %s channel %s; source gave %d %s %s", order, total, channel, srcOrder, srcTotal, srcChannel)
	}
	// The unique keys hold, and an enum refuses what the source refuses.
	if _, err := pg.Exec(ctx, `INSERT INTO app.customer_accounts (email_address) VALUES ('a@x')`); err == nil || !strings.Contains(err.Error(), "23505") {
		t.Errorf("duplicate email: %v, want a unique violation", err)
	}
	if _, err := pg.Exec(ctx, `INSERT INTO app.orders (customer_id, placed_on) VALUES (1, '2025-05-05')`); err == nil || !strings.Contains(err.Error(), "23505") {
		t.Errorf("duplicate (customer_id, placed_on): %v, want a unique violation", err)
	}
	if _, err := pg.Exec(ctx, `INSERT INTO app.customer_accounts (email_address, status) VALUES ('z@x', 'gone')`); err == nil || !strings.Contains(err.Error(), "22P02") {
		t.Errorf("status 'gone': %v, want invalid input for the enum", err)
	}

	t.Run("keyless", func(t *testing.T) {
		if _, err := my.ExecContext(ctx, `CREATE TABLE AuditLog (Event VARCHAR(20) NOT NULL DEFAULT 'login', At DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
			KEY AtIndex (At))`); err != nil {
			t.Fatal(err)
		}
		if _, err := my.ExecContext(ctx, `INSERT INTO AuditLog (Event, At) VALUES ('logout', '2024-01-01'), ('login', '2024-01-02')`); err != nil {
			t.Fatal(err)
		}
		want, _ := mysqlKeys(t, my, "AuditLog")
		created, err := jobs.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: &commonv1.JobSpec{Name: "keyless",
			Target: &commonv1.TargetSpec{Schema: "audit", CreateTables: true, IdentifierCase: commonv1.IdentifierCase_IDENTIFIER_CASE_SNAKE},
			Tables: []*commonv1.TableSpec{{Name: "audit", TargetTable: "AuditLog", Source: source("AuditLog")}}}})
		if err != nil {
			t.Fatalf("CreateJob of a keyless MySQL table: %v", err)
		}
		job := testenv.WaitJob(t, jobs, created.Job.Id, time.Minute)
		if job.State != orchestratorv1.JobState_JOB_STATE_SUCCEEDED || job.Counts.Loaded != 2 {
			t.Fatalf("keyless job %s %s %+v", job.State, job.Error, job.Counts)
		}
		if got := targetKeys(db, "audit"); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("keyless target indexes:\n%s\nsource:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		var srcEvent, event string
		if err := my.QueryRowContext(ctx, `INSERT INTO AuditLog () VALUES () RETURNING Event`).Scan(&srcEvent); err != nil {
			t.Fatal(err)
		}
		var at time.Time
		if err := pg.QueryRow(ctx, `INSERT INTO audit.audit_log DEFAULT VALUES RETURNING event, at`).Scan(&event, &at); err != nil {
			t.Fatalf("insert into the keyless table: %v", err)
		}
		if event != srcEvent || time.Since(at) > 24*time.Hour {
			t.Errorf("keyless defaults: event %q at %v; source gave %q", event, at, srcEvent)
		}
	})
}

// TestSQLiteSchemaForTheApplication (issue 12, item 1): a SQLite schema
// with INTEGER PRIMARY KEY, UNIQUE constraints (column and table level),
// unique and plain CREATE INDEX indexes, a partial and an expression index
// migrates with create_tables and identifier_case LOWER; a row goes into
// every table without naming its key; the indexes and constraints are the
// source's by its own catalog (pragma index_list: origin u is a UNIQUE
// constraint, c a CREATE INDEX), and the untranslatable ones are named.
func TestSQLiteSchemaForTheApplication(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shop.db")
	lite, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	ctx := context.Background()
	for _, q := range []string{
		`CREATE TABLE Items (ItemID INTEGER PRIMARY KEY, SKU TEXT NOT NULL UNIQUE, Name TEXT NOT NULL DEFAULT 'unnamed',
			Shelf TEXT, Slot INTEGER NOT NULL DEFAULT 1, Added DATETIME DEFAULT CURRENT_TIMESTAMP, UNIQUE (Shelf, Slot))`,
		`CREATE UNIQUE INDEX ItemsByName ON Items (Name, Shelf)`,
		`CREATE INDEX ItemsAdded ON Items (Added)`,
		`CREATE INDEX ItemsLowerName ON Items (lower(Name))`,
		`CREATE INDEX ItemsOnShelf ON Items (Shelf) WHERE Shelf IS NOT NULL`,
		`CREATE TABLE Moves (MoveID INTEGER PRIMARY KEY, ItemID INTEGER NOT NULL, Qty INTEGER NOT NULL DEFAULT 1)`,
		`CREATE INDEX MovesItem ON Moves (ItemID)`,
		`INSERT INTO Items (ItemID, SKU, Name, Shelf, Slot, Added) VALUES (1, 'a', 'tea', 'A', 1, '2020-01-01 00:00:00'),
			(2, 'b', 'cup', 'B', 1, '2020-01-01 00:00:00'), (9, 'c', 'pot', 'B', 2, '2020-01-01 00:00:00')`,
		`INSERT INTO Moves (MoveID, ItemID, Qty) VALUES (3, 1, 5), (4, 9, 2)`,
	} {
		if _, err := lite.ExecContext(ctx, q); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	var want, other []string
	for _, table := range []string{"Items", "Moves"} {
		rows, err := lite.QueryContext(ctx, `SELECT l.name, l.origin, l."unique", l.partial,
				(SELECT count(*) FROM pragma_index_info(l.name) WHERE name IS NULL),
				coalesce((SELECT group_concat(name, ', ') FROM (SELECT name FROM pragma_index_info(l.name) ORDER BY seqno)), '')
			FROM pragma_index_list(?) l`, table)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var name, origin, cols string
			var unique, partial bool
			var exprs int
			if err := rows.Scan(&name, &origin, &unique, &partial, &exprs, &cols); err != nil {
				t.Fatal(err)
			}
			if partial || exprs > 0 {
				other = append(other, name)
				continue
			}
			kind := map[bool]string{true: "unique", false: "plain"}[unique]
			if origin == "u" {
				kind = "unique constraint"
			}
			want = append(want, fmt.Sprintf("%s(%s) %s", strings.ToLower(table), strings.ToLower(cols), kind))
		}
		rows.Close()
		// The INTEGER PRIMARY KEY is the rowid: no index in pragma_index_list.
		var pk string
		if err := lite.QueryRowContext(ctx, `SELECT name FROM pragma_table_info(?) WHERE pk = 1`, table).Scan(&pk); err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprintf("%s(%s) primary", strings.ToLower(table), strings.ToLower(pk)))
	}
	sort.Strings(want)

	db := testenv.NewDB(t)
	_, jobs := startStack(t, db)
	pg, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close(ctx)
	src := func(table string) *commonv1.SourceSpec {
		return &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Sqlite{Sqlite: &commonv1.SqliteSource{Path: path, Table: table}}}
	}
	job := runCreateTablesJob(t, jobs, &commonv1.JobSpec{Name: "shop", Target: &commonv1.TargetSpec{Schema: "shop", CreateTables: true,
		IdentifierCase: commonv1.IdentifierCase_IDENTIFIER_CASE_LOWER},
		Tables: []*commonv1.TableSpec{{Name: "items", TargetTable: "Items", Source: src("Items")}, {Name: "moves", TargetTable: "Moves", Source: src("Moves")}}}, 5)

	if got := targetKeys(db, "shop"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("target indexes and constraints:\n%s\nsource:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	rep, err := jobs.GetJobReport(ctx, &orchestratorv1.GetJobReportRequest{Id: job.Id})
	if err != nil {
		t.Fatal(err)
	}
	ddl := strings.Join(rep.Report.Ddl, "\n")
	for _, ix := range other {
		if !strings.Contains(ddl, "-- not carried over: index "+ix+" of sqlite") {
			t.Errorf("report DDL does not name the source index %s it left out:\n%s", ix, ddl)
		}
	}
	var srcID int64
	var srcName string
	var srcSlot int
	if err := lite.QueryRowContext(ctx, `INSERT INTO Items (SKU) VALUES ('new') RETURNING ItemID, Name, Slot`).Scan(&srcID, &srcName, &srcSlot); err != nil {
		t.Fatal(err)
	}
	var id int64
	var name string
	var slot int
	var added time.Time
	if err := pg.QueryRow(ctx, `INSERT INTO shop.items (sku) VALUES ('new') RETURNING itemid, name, slot, added`).Scan(&id, &name, &slot, &added); err != nil {
		t.Fatalf("insert an item without a key: %v", err)
	}
	if id != srcID || id != 10 || name != srcName || slot != srcSlot || time.Since(added) > 24*time.Hour {
		t.Errorf("target item %d %q %d %v; source gave %d %q %d", id, name, slot, added, srcID, srcName, srcSlot)
	}
	var srcMove, move int64
	var srcQty, qty int
	if err := lite.QueryRowContext(ctx, `INSERT INTO Moves (ItemID) VALUES (2) RETURNING MoveID, Qty`).Scan(&srcMove, &srcQty); err != nil {
		t.Fatal(err)
	}
	if err := pg.QueryRow(ctx, `INSERT INTO shop.moves (itemid) VALUES (2) RETURNING moveid, qty`).Scan(&move, &qty); err != nil {
		t.Fatalf("insert a move without a key: %v", err)
	}
	if move != srcMove || move != 5 || qty != srcQty {
		t.Errorf("target move %d qty %d; source gave %d %d", move, qty, srcMove, srcQty)
	}
	for _, q := range []string{`INSERT INTO shop.items (sku) VALUES ('a')`, `INSERT INTO shop.items (sku, shelf, slot) VALUES ('x', 'A', 1)`,
		`INSERT INTO shop.items (sku, name, shelf, slot) VALUES ('y', 'tea', 'A', 7)`} {
		if _, err := pg.Exec(ctx, q); err == nil || !strings.Contains(err.Error(), "23505") {
			t.Errorf("%s: %v, want a unique violation", q, err)
		}
	}
}
