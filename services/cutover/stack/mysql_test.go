package stack_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/cutover/internal/testenv"
	"github.com/cutover/cutover/services/kit/mysqltest"
	_ "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
)

// fidelityColumn is one MariaDB column, with the canonical text of a value
// on each side: the two must match row by row after the migration.
type fidelityColumn struct {
	name, mysqlType, mysqlCanon, pgCanon string
}

var fidelityColumns = []fidelityColumn{
	{"b", "tinyint(1)", "CAST(%s AS CHAR)", "(%s::int)::text"},
	{"ti", "tinyint", "CAST(%s AS CHAR)", "%s::text"},
	{"tiu", "tinyint unsigned", "CAST(%s AS CHAR)", "%s::text"},
	{"siu", "smallint unsigned", "CAST(%s AS CHAR)", "%s::text"},
	{"miu", "mediumint unsigned", "CAST(%s AS CHAR)", "%s::text"},
	{"iu", "int unsigned", "CAST(%s AS CHAR)", "%s::text"},
	{"bi", "bigint", "CAST(%s AS CHAR)", "%s::text"},
	{"biu", "bigint unsigned", "CAST(%s AS CHAR)", "%s::text"},
	{"d", "decimal(65,30)", "CAST(%s AS CHAR)", "%s::text"},
	{"d2", "decimal(12,2)", "CAST(%s AS CHAR)", "%s::text"},
	{"dbl", "double", "", ""},
	{"flt", "float", "", ""},
	{"dt", "date", "DATE_FORMAT(%s, '%%Y-%%m-%%d')", "to_char(%s, 'YYYY-MM-DD')"},
	{"dtm", "datetime(6)", "DATE_FORMAT(%s, '%%Y-%%m-%%d %%H:%%i:%%s.%%f')", "to_char(%s, 'YYYY-MM-DD HH24:MI:SS.US')"},
	{"ts", "timestamp(3) NULL", "DATE_FORMAT(%s, '%%Y-%%m-%%d %%H:%%i:%%s.%%f')", "to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"},
	{"tm", "time", "CAST(%s AS CHAR)", "%s::text"},
	{"yr", "year", "CAST(%s + 0 AS CHAR)", "%s::text"},
	{"vc", "varchar(20)", "%s", "%s"},
	{"tx", "text", "%s", "%s"},
	{"l1", "varchar(20) CHARACTER SET latin1", "CONVERT(%s USING utf8mb4)", "%s"},
	{"en", "enum('red','green','blue')", "%s", "%s"},
	{"st", "set('a','b','c')", "%s", "%s"},
	{"bt", "bit(1)", "CAST(%s + 0 AS CHAR)", "(%s::int)::text"},
	{"bt12", "bit(12)", "LPAD(BIN(%s + 0), 12, '0')", "%s::text"},
	{"bl", "blob", "LOWER(HEX(%s))", "encode(%s, 'hex')"},
	{"vb", "varbinary(8)", "LOWER(HEX(%s))", "encode(%s, 'hex')"},
	{"js", "json", "", ""},
}

// fidelityRows are edge values, one row each; NULL everywhere is row 1.
var fidelityRows = []string{
	`(1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
	`(2, 1, 127, 255, 65535, 16777215, 4294967295, 9223372036854775807, 18446744073709551615,
	  99999999999999999999999999999999999.999999999999999999999999999999, 9999999999.99, 1.7976931348623157e308, 3.4028235e38,
	  '9999-12-31', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999', '838:59:59', 2155,
	  '😀 emoji', 'long 文字 text', 'Straße é', 'blue', 'a,c', b'1', b'111111111111', x'00FF10', x'FF00', '{"a": [1, 2.50, "x"], "b": null}')`,
	`(3, 0, -128, 0, 0, 0, 0, -9223372036854775808, 0,
	  -99999999999999999999999999999999999.999999999999999999999999999999, -0.01, -0.0, -1.5e-38,
	  '1000-01-01', '1000-01-01 00:00:00.000001', '1970-01-01 00:00:01.000', '-838:59:59', 1901,
	  '', '', '', 'red', '', b'0', b'000000000001', x'', x'', '[]')`,
	`(4, 0, 0, 0, 0, 0, 0, 0, 0, 0.000000000000000000000000000001, 0, 5e-324, 1.1754944e-38,
	  '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', '00:00:00.5', 0,
	  ' padded ', 'tab	and
newline', 'ÿ', 'green', 'a,b,c', b'0', b'101010101010', x'7F', x'00', '"just a string"')`,
}

// TestMariaDBTypeFidelity migrates a table with every MySQL type family
// and edge values into PostgreSQL (tables created from the source) and
// compares every value by a canonical encoding. The one difference asked
// for: zero dates become NULL (zero_dates: NULL).
func TestMariaDBTypeFidelity(t *testing.T) {
	mdsn := mysqltest.NewDatabase(t)
	my, err := sql.Open("mysql", mdsn)
	if err != nil {
		t.Fatal(err)
	}
	defer my.Close()
	ctx := context.Background()
	defs := []string{"id int PRIMARY KEY"}
	for _, c := range fidelityColumns {
		defs = append(defs, c.name+" "+c.mysqlType)
	}
	for _, q := range []string{
		"SET SESSION sql_mode = 'ALLOW_INVALID_DATES', time_zone = '+00:00'",
		"CREATE TABLE fidelity (" + strings.Join(defs, ", ") + ", KEY by_name (vc, dt), UNIQUE KEY one_big (bi), KEY prefix_only (tx(10))) CHARACTER SET utf8mb4",
		"INSERT INTO fidelity VALUES " + strings.Join(fidelityRows, ", "),
	} {
		conn, err := my.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, err = conn.ExecContext(ctx, "SET SESSION sql_mode = '', time_zone = '+00:00'")
		if err == nil {
			_, err = conn.ExecContext(ctx, q)
		}
		conn.Close()
		if err != nil {
			t.Fatalf("%.80s: %v", q, err)
		}
	}
	db := testenv.NewDB(t)
	_, jobs := startStack(t, db)
	spec := &commonv1.JobSpec{Name: "mariadb fidelity", BatchSize: 2,
		Target: &commonv1.TargetSpec{Schema: "fid", CreateTables: true},
		Tables: []*commonv1.TableSpec{{Name: "fidelity", TargetTable: "fidelity",
			Source: &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Mysql{Mysql: &commonv1.MysqlSource{
				Dsn: mdsn, Table: "fidelity", ZeroDates: commonv1.ZeroDatePolicy_ZERO_DATE_POLICY_NULL}}}}}}
	created, err := jobs.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: spec})
	if err != nil {
		t.Fatalf("CreateJob: %v", err)
	}
	job := testenv.WaitJob(t, jobs, created.Job.Id, time.Minute)
	if job.State != orchestratorv1.JobState_JOB_STATE_SUCCEEDED || job.Counts.Loaded != int64(len(fidelityRows)) {
		t.Fatalf("job %s %s %+v; quarantine: %v", job.State, job.Error, job.Counts,
			db.Strings(`SELECT coalesce(column_name, '') || ': ' || reason FROM cutover.quarantine`))
	}
	// The default zero-date policy quarantines the row, with its reason.
	spec.Target.Schema = "fid_q"
	spec.Tables[0].Source.GetMysql().ZeroDates = commonv1.ZeroDatePolicy_ZERO_DATE_POLICY_UNSPECIFIED
	created, err = jobs.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: spec})
	if err != nil {
		t.Fatalf("CreateJob: %v", err)
	}
	qjob := testenv.WaitJob(t, jobs, created.Job.Id, time.Minute)
	if qjob.State != orchestratorv1.JobState_JOB_STATE_SUCCEEDED || qjob.Counts.Loaded != 3 || qjob.Counts.Quarantined != 1 {
		t.Fatalf("quarantine policy: %s %+v", qjob.State, qjob.Counts)
	}
	reasons := db.Strings(`SELECT source_ref || ' ' || rule || ' ' || column_name || ': ' || reason FROM cutover.quarantine WHERE job_id = $1 ORDER BY id`, qjob.Id)
	if len(reasons) == 0 || !strings.HasPrefix(reasons[0], "id=4 zero_date ") || !strings.Contains(reasons[0], "0000-00-00") {
		t.Fatalf("quarantined zero date: %q", reasons)
	}
	if got := strings.Join(db.Strings(`SELECT indexdef FROM pg_indexes WHERE schemaname = 'fid' ORDER BY indexname`), "\n"); got !=
		"CREATE INDEX fidelity_by_name ON fid.fidelity USING btree (vc, dt)\nCREATE UNIQUE INDEX fidelity_one_big ON fid.fidelity USING btree (bi)\nCREATE UNIQUE INDEX fidelity_pkey ON fid.fidelity USING btree (id)" {
		t.Errorf("indexes after the load (prefix indexes are left out):\n%s", got)
	}
	pg, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close(ctx)
	zeroDate := map[string]bool{"dt": true, "dtm": true, "ts": true}
	for _, c := range fidelityColumns {
		for id := 1; id <= len(fidelityRows); id++ {
			want, got := mysqlValue(t, my, c, id), pgValue(t, pg, c, id)
			if id == 4 && zeroDate[c.name] {
				want = "NULL" // the spec asked for zero dates as NULL
			}
			if want != got {
				t.Errorf("row %d column %s (%s): MariaDB %q, PostgreSQL %q", id, c.name, c.mysqlType, want, got)
			}
		}
	}
}

func mysqlValue(t *testing.T, my *sql.DB, c fidelityColumn, id int) string {
	t.Helper()
	expr := c.name
	if c.mysqlCanon != "" {
		expr = fmt.Sprintf(c.mysqlCanon, c.name)
	}
	var v sql.NullString
	conn, err := my.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "SET time_zone = '+00:00'"); err != nil {
		t.Fatal(err)
	}
	switch c.name {
	case "dbl", "flt":
		var f sql.NullFloat64
		if err := conn.QueryRowContext(context.Background(), "SELECT "+c.name+" FROM fidelity WHERE id = ?", id).Scan(&f); err != nil {
			t.Fatal(err)
		}
		return floatCanon(f, c.name == "flt")
	case "js":
		if err := conn.QueryRowContext(context.Background(), "SELECT js FROM fidelity WHERE id = ?", id).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return jsonCanon(t, v)
	}
	if err := conn.QueryRowContext(context.Background(), "SELECT "+expr+" FROM fidelity WHERE id = ?", id).Scan(&v); err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	if !v.Valid {
		return "NULL"
	}
	return v.String
}

func pgValue(t *testing.T, pg *pgx.Conn, c fidelityColumn, id int) string {
	t.Helper()
	ctx := context.Background()
	switch c.name {
	case "dbl", "flt":
		var f sql.NullFloat64
		if err := pg.QueryRow(ctx, "SELECT "+c.name+"::float8 FROM fid.fidelity WHERE id = $1", id).Scan(&f); err != nil {
			t.Fatal(err)
		}
		return floatCanon(f, c.name == "flt")
	case "js":
		var v sql.NullString
		if err := pg.QueryRow(ctx, "SELECT js::text FROM fid.fidelity WHERE id = $1", id).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return jsonCanon(t, v)
	}
	var v *string
	if err := pg.QueryRow(ctx, "SELECT "+fmt.Sprintf(c.pgCanon, c.name)+" FROM fid.fidelity WHERE id = $1", id).Scan(&v); err != nil {
		t.Fatalf("%s: %v", c.pgCanon, err)
	}
	if v == nil {
		return "NULL"
	}
	return *v
}

// floatCanon is the exact bits, sign of zero included; a FLOAT column is a
// float32, whatever decimal detour a driver takes to widen it.
func floatCanon(f sql.NullFloat64, single bool) string {
	if !f.Valid {
		return "NULL"
	}
	if single {
		return fmt.Sprintf("%b", float32(f.Float64))
	}
	return fmt.Sprintf("%b", f.Float64)
}

// jsonCanon compares JSON by meaning: jsonb normalises spacing and keys.
func jsonCanon(t *testing.T, v sql.NullString) string {
	if !v.Valid {
		return "NULL"
	}
	var x any
	d := json.NewDecoder(strings.NewReader(v.String))
	d.UseNumber()
	if err := d.Decode(&x); err != nil {
		t.Fatalf("json %q: %v", v.String, err)
	}
	b, _ := json.Marshal(normalizeNumbers(x))
	return string(b)
}

func normalizeNumbers(x any) any {
	switch v := x.(type) {
	case json.Number:
		f, _ := v.Float64()
		return f
	case []any:
		for i := range v {
			v[i] = normalizeNumbers(v[i])
		}
	case map[string]any:
		for k := range v {
			v[k] = normalizeNumbers(v[k])
		}
	}
	return x
}
