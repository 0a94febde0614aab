package extract

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"github.com/cutover/cutover/services/kit/calendar"
	"github.com/go-sql-driver/mysql"
)

// MySQL and MariaDB tables, read with go-sql-driver over the binary
// (prepared statement) protocol: it carries FLOAT as its 4 bytes (the text
// protocol prints 6 digits) and DECIMAL, DATETIME and TIME as text, which
// this file converts itself (parseTime=false) so no value is shifted.

func init() {
	register(&commonv1.SourceSpec_Mysql{}, "mysql", mysqlKind{})
}

type mysqlKind struct{}

func (mysqlKind) describe(ctx context.Context, s *Service, src *commonv1.SourceSpec) (*extractorv1.DescribeSourceResponse, error) {
	return s.describeMySQL(ctx, src.GetMysql())
}

func (mysqlKind) plan(ctx context.Context, s *Service, src *commonv1.SourceSpec, n int) ([]*commonv1.KeyRange, error) {
	return s.planMySQL(ctx, src.GetMysql(), n)
}

func (mysqlKind) read(ctx context.Context, s *Service, src *commonv1.SourceSpec, rng *commonv1.KeyRange, cursor string, lim readLimits) (*commonv1.Batch, bool, error) {
	return s.readMySQL(ctx, src.GetMysql(), rng, cursor, lim)
}

func (mysqlKind) openPass(ctx context.Context, s *Service, src *commonv1.SourceSpec, rng *commonv1.KeyRange, cursor string, lim readLimits) (readPass, error) {
	return s.openMySQLPass(ctx, src.GetMysql(), rng, cursor, lim)
}

// ---- connections ----

// myDB is a cached pool with what its users need to know about it.
type myDB struct {
	db        *sql.DB
	password  string         // scrubbed from every error text
	dsn       string         // as given; logged only through dsn.Redact
	defaultDB string         // the DSN's database
	loc       *time.Location // session time zone, for TIMESTAMP text
}

// mySrc is a pool as one request uses it: with the table it is for, which
// connection failures name.
type mySrc struct {
	*myDB
	name string
}

// myGuard marks every failure to open a connection, so that mysqlErr can
// answer them all alike (connectFailed).
type myGuard struct{ driver.Connector }

func (g myGuard) Connect(ctx context.Context) (driver.Conn, error) {
	c, err := g.Connector.Connect(ctx)
	if err != nil {
		return nil, &myConnectError{err: err}
	}
	return c, nil
}

// myCache holds one pool per (DSN, time zone); Service.Close closes it.
type myCache struct {
	mu  sync.Mutex
	dbs map[string]*myDB
}

func (c *myCache) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, d := range c.dbs {
		_ = d.db.Close()
		delete(c.dbs, k)
	}
	return nil
}

const mysqlDSNHelp = "cannot parse the connection string (want user:pass@tcp(host:3306)/db or mysql://user:pass@host:3306/db)"

// parseMySQLDSN accepts the driver's DSN form and mysql:// URLs. Errors
// never echo the input: it holds the password.
func parseMySQLDSN(s string) (*mysql.Config, error) {
	bad := invalid("source.mysql.dsn", mysqlDSNHelp)
	lower := strings.ToLower(s)
	if !strings.HasPrefix(lower, "mysql://") && !strings.HasPrefix(lower, "mariadb://") {
		cfg, err := mysql.ParseDSN(s)
		if err != nil {
			return nil, bad
		}
		return cfg, nil
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return nil, bad
	}
	cfg := mysql.NewConfig()
	if u.RawQuery != "" {
		// The driver parses its own parameters (timeouts, tls, ...).
		if cfg, err = mysql.ParseDSN("/?" + u.RawQuery); err != nil {
			return nil, bad
		}
	}
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
	}
	cfg.Net = "tcp"
	cfg.Addr = u.Host
	if u.Port() == "" {
		cfg.Addr = net.JoinHostPort(u.Hostname(), "3306")
	}
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	if strings.Contains(cfg.DBName, "/") {
		return nil, bad
	}
	return cfg, nil
}

var myOffsetZone = regexp.MustCompile(`^[+-]([01][0-9]|2[0-3]):[0-5][0-9]$`)

// mysqlZone validates time_zone and returns the value for the session's
// SET time_zone and the matching Go location.
func mysqlZone(tz string) (string, *time.Location, error) {
	switch {
	case tz == "" || strings.EqualFold(tz, "UTC") || tz == "Z":
		return "+00:00", time.UTC, nil
	case myOffsetZone.MatchString(tz):
		h, _ := strconv.Atoi(tz[1:3])
		m, _ := strconv.Atoi(tz[4:6])
		off := h*3600 + m*60
		if tz[0] == '-' {
			off = -off
		}
		return tz, time.FixedZone(tz, off), nil
	}
	for _, r := range tz {
		// The name goes into a quoted SET value: keep it to name characters.
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("_/+-", r)) {
			return "", nil, invalid("source.mysql.time_zone", "%q is not an IANA zone name or a ±HH:MM offset", tz)
		}
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return "", nil, invalid("source.mysql.time_zone", "unknown time zone %q", tz)
	}
	return tz, loc, nil
}

// mysqlTarget resolves the spec to a pool and a database/table name.
func (s *Service) mysqlTarget(spec *commonv1.MysqlSource) (*mySrc, string, string, error) {
	if spec.GetDsn() == "" {
		return nil, "", "", invalid("source.mysql.dsn", "required")
	}
	if spec.GetTable() == "" {
		return nil, "", "", invalid("source.mysql.table", "required")
	}
	zone, loc, err := mysqlZone(spec.GetTimeZone())
	if err != nil {
		return nil, "", "", err
	}
	c, err := s.kindCache("mysql", func() io.Closer { return &myCache{dbs: map[string]*myDB{}} })
	if err != nil {
		return nil, "", "", err
	}
	cache := c.(*myCache)
	key := spec.GetDsn() + "\x00" + zone
	cache.mu.Lock()
	d, ok := cache.dbs[key]
	if !ok {
		cfg, err := s.mysqlConfig(spec.GetDsn(), zone, loc)
		if err != nil {
			cache.mu.Unlock()
			return nil, "", "", err
		}
		conn, err := mysql.NewConnector(cfg)
		if err != nil {
			cache.mu.Unlock()
			return nil, "", "", invalid("source.mysql.dsn", "%s", scrub(err.Error(), cfg.Passwd))
		}
		d = &myDB{db: sql.OpenDB(myGuard{conn}), password: cfg.Passwd, dsn: spec.GetDsn(), defaultDB: cfg.DBName, loc: loc}
		d.db.SetMaxIdleConns(16)
		d.db.SetConnMaxIdleTime(5 * time.Minute)
		cache.dbs[key] = d
	}
	cache.mu.Unlock()
	database := spec.GetDatabase()
	if database == "" {
		database = d.defaultDB
	}
	if database == "" {
		return nil, "", "", invalid("source.mysql.database", "required when the DSN names no database")
	}
	return &mySrc{myDB: d, name: database + "." + spec.GetTable()}, database, spec.GetTable(), nil
}

// mysqlConfig parses a DSN for reading in the session zone, checks its
// host against the allow-list and takes away what a DSN must not decide.
func (s *Service) mysqlConfig(dsnStr, zone string, loc *time.Location) (*mysql.Config, error) {
	cfg, err := parseMySQLDSN(dsnStr)
	if err != nil {
		return nil, err
	}
	if err := s.hosts.checkMySQL(cfg); err != nil {
		return nil, err
	}
	// allowAllFiles would let the server ask for any local file (LOAD DATA
	// LOCAL INFILE): a source host, maybe the caller's, reading this one.
	cfg.AllowAllFiles = false
	// Temporal values come as text and are converted here; utf8mb4
	// makes the server convert latin1 and other column charsets.
	cfg.ParseTime = false
	cfg.InterpolateParams = false // keep the binary protocol
	cfg.Loc = loc
	if err := cfg.Apply(mysql.Charset("utf8mb4", "")); err != nil {
		return nil, invalid("source.mysql.dsn", "%s", scrub(err.Error(), cfg.Passwd))
	}
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["time_zone"] = "'" + zone + "'"
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	return cfg, nil
}

// mysqlErr turns a driver error into a domain error without the password.
func mysqlErr(err error, d *mySrc, what string) error {
	if err == nil {
		return nil
	}
	var ce *myConnectError
	if errors.As(err, &ce) {
		return connectFailed("mysql", d.name, d.dsn, d.password, err)
	}
	if classified(err) {
		return err
	}
	msg := scrub(err.Error(), d.password)
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		msg = scrub(me.Message, d.password)
		switch me.Number {
		case 1049: // unknown database
			return fmt.Errorf("%w: %s: %s", ErrNotFound, what, msg)
		case 1146: // table does not exist
			return fmt.Errorf("%w: %s: %s", ErrNotFound, what, msg)
		case 1044, 1045, 1142, 1143, 1227: // access denied
			return fmt.Errorf("%w: %s: %s", ErrPrecondition, what, msg)
		case 1298: // unknown time zone (zone tables not loaded)
			return invalid("source.mysql.time_zone", "the server does not know it: %s", msg)
		case 1040, 1053, 1205, 1213, 1927: // too many connections, shutdown, lock wait, deadlock, killed
			return fmt.Errorf("%w: %s: %s", ErrUnavailable, what, msg)
		}
		return fmt.Errorf("%s: %s (error %d)", what, msg, me.Number)
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysql.ErrInvalidConn) || errors.Is(err, sql.ErrConnDone) {
		return fmt.Errorf("%w: %s: %s", ErrUnavailable, what, msg)
	}
	return fmt.Errorf("%s: %s", what, msg)
}

// ---- catalog ----

// myKind says how a column's values are decoded.
type myKind int

const (
	myInt       myKind = iota // decimal integer text → INT64
	myBool                    // tinyint(1): 0/1 → BOOL, other values rejected
	myBit1                    // bit(1): one byte → BOOL
	myBits                    // bit(n): big-endian bytes → "0101…"
	myNumeric                 // decimal, bigint unsigned: exact text
	myFloat32                 // float: parsed as float32, widened as its shortest decimal
	myFloat64                 // double
	myDate                    // date → days
	myDatetime                // datetime: wall time taken as UTC
	myTimestamp               // timestamp: wall time in the session zone
	myText                    // UTF-8 text
	myBytes                   // binary strings
)

// myCol is one source column.
type myCol struct {
	name       string
	colType    string // COLUMN_TYPE, e.g. "int(10) unsigned"
	dataType   string // DATA_TYPE, e.g. "int"
	typ        commonv1.ColumnType
	pgType     string
	kind       myKind
	unsigned   bool
	nullable   bool
	bits       int    // bit(n) width
	sel        string // select-list expression
	precision  int64
	scale      int64
	isIntegral bool           // integer family (keys compare as numbers)
	colDefault sql.NullString // COLUMN_DEFAULT as the server spells it
	extra      string         // EXTRA: auto_increment, on update …, DEFAULT_GENERATED
	charset    string         // CHARACTER_SET_NAME of a text column
}

// myTable is a table as information_schema describes it.
type myTable struct {
	db, name string
	cols     []myCol
	pk       []int // indexes into cols, in key order
	rows     int64
	fks      []*commonv1.ForeignKey
}

func (t *myTable) display() string { return t.db + "." + t.name }

func (t *myTable) ident() string { return myIdent(t.db) + "." + myIdent(t.name) }

// writeSelectFrom writes "SELECT <every column> FROM <table>", the start
// of every read of t.
func (t *myTable) writeSelectFrom(sb *strings.Builder) {
	sb.WriteString("SELECT ")
	for i, c := range t.cols {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(c.sel)
	}
	sb.WriteString(" FROM ")
	sb.WriteString(t.ident())
}

// myIdent quotes an identifier with backticks.
func myIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

var myJSONCheck = regexp.MustCompile("(?i)^\\s*json_valid\\s*\\(\\s*`((?:[^`]|``)+)`\\s*\\)\\s*$")

// mapMySQL fills in the wire type, PostgreSQL type, decoding and select
// expression of a column from its information_schema row.
func mapMySQL(c *myCol, jsonCols map[string]bool) {
	ct := strings.ToLower(c.colType)
	c.unsigned = strings.Contains(ct, "unsigned")
	c.sel = myIdent(c.name)
	set := func(typ commonv1.ColumnType, pg string, k myKind) { c.typ, c.pgType, c.kind = typ, pg, k }
	i64 := commonv1.ColumnType_COLUMN_TYPE_INT64
	switch dt := strings.ToLower(c.dataType); dt {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint":
		c.isIntegral = true
		if dt == "tinyint" && strings.HasPrefix(ct, "tinyint(1)") && !c.unsigned {
			set(commonv1.ColumnType_COLUMN_TYPE_BOOL, "boolean", myBool)
			return
		}
		pg := map[string][2]string{
			"tinyint":   {"smallint", "smallint"},
			"smallint":  {"smallint", "integer"},
			"mediumint": {"integer", "integer"},
			"int":       {"integer", "bigint"},
			"integer":   {"integer", "bigint"},
			"bigint":    {"bigint", "numeric(20,0)"},
		}[dt]
		switch {
		case dt == "bigint" && c.unsigned:
			set(commonv1.ColumnType_COLUMN_TYPE_NUMERIC, pg[1], myNumeric)
		case c.unsigned:
			set(i64, pg[1], myInt)
		default:
			set(i64, pg[0], myInt)
		}
	case "decimal", "numeric":
		set(commonv1.ColumnType_COLUMN_TYPE_NUMERIC, fmt.Sprintf("numeric(%d,%d)", c.precision, c.scale), myNumeric)
	case "float":
		set(commonv1.ColumnType_COLUMN_TYPE_FLOAT64, "real", myFloat32)
	case "double", "real":
		set(commonv1.ColumnType_COLUMN_TYPE_FLOAT64, "double precision", myFloat64)
	case "date":
		set(commonv1.ColumnType_COLUMN_TYPE_DATE, "date", myDate)
	case "datetime":
		set(commonv1.ColumnType_COLUMN_TYPE_TIMESTAMPTZ, fmt.Sprintf("timestamp(%d)", c.precision), myDatetime)
	case "timestamp":
		set(commonv1.ColumnType_COLUMN_TYPE_TIMESTAMPTZ, fmt.Sprintf("timestamptz(%d)", c.precision), myTimestamp)
	case "time":
		// MySQL TIME is a duration (-838:59:59 to 838:59:59), not a time of
		// day; its text is valid interval input.
		set(textType, "interval", myText)
	case "year":
		set(i64, "smallint", myInt)
		c.isIntegral = true
	case "char", "varchar":
		// char too becomes varchar: MySQL strips CHAR padding on read and
		// PostgreSQL's char(n) would add it back.
		set(textType, fmt.Sprintf("varchar(%d)", c.precision), myText)
	case "tinytext", "text", "mediumtext", "longtext":
		if jsonCols[c.name] {
			set(textType, "jsonb", myText) // MariaDB JSON: longtext + json_valid check
		} else {
			set(textType, "text", myText)
		}
	case "json":
		set(textType, "jsonb", myText)
	case "enum", "set":
		set(textType, "text", myText)
	case "bit":
		c.bits = int(c.precision)
		if c.bits == 1 {
			set(commonv1.ColumnType_COLUMN_TYPE_BOOL, "boolean", myBit1)
		} else {
			set(textType, fmt.Sprintf("bit(%d)", c.bits), myBits)
		}
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
		set(commonv1.ColumnType_COLUMN_TYPE_BYTES, "bytea", myBytes)
	case "geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection", "geomcollection":
		// Well-known text; the SRID is not carried.
		set(textType, "text", myText)
		c.sel = "ST_AsText(" + myIdent(c.name) + ")"
	default:
		// inet6, uuid and anything newer: its text form.
		set(textType, "text", myText)
		c.sel = "CAST(" + myIdent(c.name) + " AS CHAR CHARACTER SET utf8mb4)"
	}
	switch c.kind {
	case myInt, myBool, myNumeric, myDate, myDatetime, myTimestamp:
		// The same exact text the driver would print, but sent as a string:
		// the driver boxes binary integers and formats temporals into new
		// buffers, which cost allocations per value.
		c.sel = "CAST(" + myIdent(c.name) + " AS CHAR)"
	}
}

// myQuerier is a pool or one connection.
type myQuerier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

const myColsSQL = `SELECT COLUMN_NAME, COLUMN_TYPE, DATA_TYPE, IS_NULLABLE,
  COALESCE(NUMERIC_PRECISION, DATETIME_PRECISION, CHARACTER_MAXIMUM_LENGTH, 0), COALESCE(NUMERIC_SCALE, 0),
  COLUMN_DEFAULT, EXTRA, COALESCE(CHARACTER_SET_NAME, '')
FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`

func loadMySQLTable(ctx context.Context, q myQuerier, db, name string, withFKs bool) (*myTable, error) {
	t := &myTable{db: db, name: name}
	var est sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT TABLE_NAME, TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`, db, name).Scan(&t.name, &est)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: source.mysql.table: table %s does not exist", ErrNotFound, t.display())
	}
	if err != nil {
		return nil, err
	}
	t.rows = est.Int64
	rows, err := q.QueryContext(ctx, myColsSQL, db, t.name)
	if err != nil {
		return nil, err
	}
	hasLongtext := false
	for rows.Next() {
		var c myCol
		var nullable string
		if err := rows.Scan(&c.name, &c.colType, &c.dataType, &nullable, &c.precision, &c.scale, &c.colDefault, &c.extra, &c.charset); err != nil {
			rows.Close()
			return nil, err
		}
		c.nullable = nullable == "YES"
		hasLongtext = hasLongtext || strings.HasSuffix(strings.ToLower(c.dataType), "text")
		t.cols = append(t.cols, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	jsonCols := map[string]bool{}
	if hasLongtext {
		// MariaDB's JSON is longtext with a json_valid check. MySQL has no
		// TABLE_NAME here (and a real json type), so an error just means
		// there is nothing to find.
		if rows, err := q.QueryContext(ctx, `SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?`, db, t.name); err == nil {
			for rows.Next() {
				var clause string
				if rows.Scan(&clause) == nil {
					if m := myJSONCheck.FindStringSubmatch(clause); m != nil {
						jsonCols[strings.ReplaceAll(m[1], "``", "`")] = true
					}
				}
			}
			rows.Close()
		}
	}
	for i := range t.cols {
		mapMySQL(&t.cols[i], jsonCols)
	}
	rows, err = q.QueryContext(ctx, `SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE
WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION`, db, t.name)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, err
		}
		for i, c := range t.cols {
			if c.name == n {
				t.pk = append(t.pk, i)
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if withFKs {
		if t.fks, err = mysqlForeignKeys(ctx, q, db, t.name); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// mysqlForeignKeys lists the table's foreign keys, columns in key order;
// a referenced table in the same database is named without it.
func mysqlForeignKeys(ctx context.Context, q myQuerier, db, name string) ([]*commonv1.ForeignKey, error) {
	rows, err := q.QueryContext(ctx, `SELECT CONSTRAINT_NAME, COLUMN_NAME, REFERENCED_TABLE_SCHEMA, REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME
FROM information_schema.KEY_COLUMN_USAGE
WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND REFERENCED_TABLE_NAME IS NOT NULL
ORDER BY CONSTRAINT_NAME, ORDINAL_POSITION`, db, name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*commonv1.ForeignKey
	for rows.Next() {
		var cn, col, rdb, rtab, rcol string
		if err := rows.Scan(&cn, &col, &rdb, &rtab, &rcol); err != nil {
			return nil, err
		}
		if rdb != db {
			rtab = rdb + "." + rtab
		}
		if len(out) == 0 || out[len(out)-1].Name != cn {
			out = append(out, &commonv1.ForeignKey{Name: cn, ReferencedTable: rtab})
		}
		fk := out[len(out)-1]
		fk.Columns = append(fk.Columns, col)
		fk.ReferencedColumns = append(fk.ReferencedColumns, rcol)
	}
	return out, rows.Err()
}

// mysqlIndexes lists secondary B-tree indexes on whole columns (a unique
// one is a unique key: a constraint); prefix, full-text, spatial and
// functional indexes have no PostgreSQL equivalent and come back in other
// with their definition (foreign-key indexes are kept: PostgreSQL does not
// add them itself).
func mysqlIndexes(ctx context.Context, q myQuerier, db, name string) (kept, other []*commonv1.SourceIndex, err error) {
	rows, err := q.QueryContext(ctx, `SELECT INDEX_NAME, COLUMN_NAME, NON_UNIQUE, INDEX_TYPE, SUB_PART
FROM information_schema.STATISTICS
WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME <> 'PRIMARY'
ORDER BY INDEX_NAME, SEQ_IN_INDEX`, db, name)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var out []*commonv1.SourceIndex
	skip := map[string]bool{}
	var parts []string // the definition's column list of the last index
	for rows.Next() {
		var ix, col sql.NullString
		var nonUnique int
		var typ string
		var sub sql.NullInt64
		if err := rows.Scan(&ix, &col, &nonUnique, &typ, &sub); err != nil {
			return nil, nil, err
		}
		if sub.Valid || !col.Valid || typ != "BTREE" && typ != "HASH" {
			skip[ix.String] = true
		}
		if len(out) == 0 || out[len(out)-1].Name != ix.String {
			out = append(out, &commonv1.SourceIndex{Name: ix.String, Unique: nonUnique == 0, Constraint: nonUnique == 0})
			parts = parts[:0]
		}
		last := out[len(out)-1]
		last.Columns = append(last.Columns, col.String)
		part := myIdent(col.String)
		switch {
		case !col.Valid:
			part = "(expression)"
		case sub.Valid:
			part += fmt.Sprintf("(%d)", sub.Int64)
		}
		parts = append(parts, part)
		kind := "KEY"
		switch {
		case typ == "FULLTEXT" || typ == "SPATIAL":
			kind = typ + " KEY"
		case nonUnique == 0:
			kind = "UNIQUE KEY"
		}
		last.Definition = fmt.Sprintf("%s %s (%s)", kind, myIdent(ix.String), strings.Join(parts, ", "))
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	for _, ix := range out {
		if skip[ix.Name] {
			ix.Columns = nil
			other = append(other, ix)
		} else {
			ix.Definition = ""
			kept = append(kept, ix)
		}
	}
	return kept, other, nil
}

// myList reads the values of an enum('a','b') or set('a','b') column type,
// each single-quoted with a quote inside doubled (as information_schema
// spells it).
func myList(colType string) []string {
	open := strings.IndexByte(colType, '(')
	if open < 0 || !strings.HasSuffix(colType, ")") {
		return nil
	}
	body := colType[open+1 : len(colType)-1]
	var out []string
	for i := 0; i < len(body); {
		if body[i] != '\'' {
			return nil
		}
		var v strings.Builder
		j := i + 1
		for ; j < len(body); j++ {
			if body[j] == '\'' {
				if j+1 < len(body) && body[j+1] == '\'' {
					v.WriteByte('\'')
					j++
					continue
				}
				break
			}
			v.WriteByte(body[j])
		}
		if j >= len(body) {
			return nil
		}
		out = append(out, v.String())
		i = j + 1
		if i < len(body) {
			if body[i] != ',' {
				return nil
			}
			i++
		}
	}
	return out
}

func (s *Service) describeMySQL(ctx context.Context, spec *commonv1.MysqlSource) (*extractorv1.DescribeSourceResponse, error) {
	d, db, name, err := s.mysqlTarget(spec)
	if err != nil {
		return nil, err
	}
	t, err := loadMySQLTable(ctx, d.db, db, name, true)
	if err != nil {
		return nil, mysqlErr(err, d, "describe "+db+"."+name)
	}
	resp := &extractorv1.DescribeSourceResponse{EstimatedRows: t.rows, ForeignKeys: t.fks}
	var version string
	if err := d.db.QueryRowContext(ctx, `SELECT VERSION()`).Scan(&version); err != nil {
		return nil, mysqlErr(err, d, "describe "+db+"."+name)
	}
	mariadb := strings.Contains(strings.ToLower(version), "mariadb")
	for _, c := range t.cols {
		sc := &commonv1.SourceColumn{Name: c.name, SourceType: c.colType, Type: c.typ, Nullable: c.nullable, PgType: c.pgType}
		mysqlColumnExtras(sc, c, mariadb)
		switch strings.ToLower(c.dataType) {
		case "enum":
			sc.EnumValues = myList(c.colType)
		case "set":
			sc.SetValues = myList(c.colType)
		}
		resp.Columns = append(resp.Columns, sc)
	}
	if resp.Indexes, resp.OtherIndexes, err = mysqlIndexes(ctx, d.db, db, name); err != nil {
		return nil, mysqlErr(err, d, "describe indexes of "+db+"."+name)
	}
	for _, i := range t.pk {
		resp.PrimaryKey = append(resp.PrimaryKey, t.cols[i].name)
	}
	return resp, nil
}

// needKey refuses to follow a table without a primary key: changes are
// read and applied by key. (A full load reads such a table in one ordered
// pass, mysql_keyless.go.)
func (t *myTable) needKey() error {
	if len(t.pk) == 0 {
		return fmt.Errorf("%w: source.mysql.table: source table %s has no primary key; following its changes needs one (a full load reads it without)", ErrPrecondition, t.display())
	}
	return nil
}

// ---- plan ----

func (s *Service) planMySQL(ctx context.Context, spec *commonv1.MysqlSource, n int) ([]*commonv1.KeyRange, error) {
	d, db, name, err := s.mysqlTarget(spec)
	if err != nil {
		return nil, err
	}
	ranges, err := planMySQLTable(ctx, d.db, db, name, n)
	return ranges, mysqlErr(err, d, "plan "+db+"."+name)
}

func planMySQLTable(ctx context.Context, q myQuerier, db, name string, n int) ([]*commonv1.KeyRange, error) {
	t, err := loadMySQLTable(ctx, q, db, name, false)
	if err != nil {
		return nil, err
	}
	whole := []*commonv1.KeyRange{{}}
	if n <= 1 || len(t.pk) == 0 {
		// A table without key is one partition read in one ordered pass
		// (mysql_keyless.go): there is nothing to cut its order at.
		return whole, nil
	}
	if len(t.pk) != 1 || !t.cols[t.pk[0]].isIntegral {
		return planMySQLSampled(ctx, q, t, n)
	}
	k := myIdent(t.cols[t.pk[0]].name)
	var lo, hi sql.NullString
	if err := q.QueryRowContext(ctx, "SELECT MIN("+k+"), MAX("+k+") FROM "+t.ident()).Scan(&lo, &hi); err != nil {
		return nil, err
	}
	if !lo.Valid || !hi.Valid {
		return whole, nil
	}
	l, ok1 := new(big.Int).SetString(lo.String, 10)
	h, ok2 := new(big.Int).SetString(hi.String, 10)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("plan %s: key bounds %q..%q are not integers", t.display(), lo.String, hi.String)
	}
	return mySplitBig(l, h, n), nil
}

// planMySQLSampled cuts the order of a text or composite key into n ranges
// at every rows/n-th key. It walks the key from bound to bound (keyset,
// then OFFSET), so the whole plan reads the key index once. The ranges are
// contiguous and open at both ends, so a stale row estimate only makes
// them uneven, never loses a row.
func planMySQLSampled(ctx context.Context, q myQuerier, t *myTable, n int) ([]*commonv1.KeyRange, error) {
	rows := t.rows
	if rows < 100_000 {
		// Small tables: InnoDB's estimate is often 0 or stale, and
		// counting is cheap.
		if err := q.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+t.ident()).Scan(&rows); err != nil {
			return nil, err
		}
	}
	keys := t.keyCols()
	sels := make([]string, len(keys))
	names := make([]string, len(keys))
	for i, k := range keys {
		sels[i] = k.sel
		names[i] = myIdent(k.name)
	}
	raw := make([][]byte, len(keys))
	dest := make([]any, len(keys))
	for i := range raw {
		dest[i] = &raw[i]
	}
	parts := make([][]byte, len(keys))
	var bounds []string
	prevPos := int64(0)
	for i := 1; i < n; i++ {
		pos := rows * int64(i) / int64(n) // 1-based position of the bound
		if pos <= prevPos {
			continue // fewer rows than partitions
		}
		query := "SELECT " + strings.Join(sels, ", ") + " FROM " + t.ident()
		var args []any
		if len(bounds) > 0 {
			cond, a, err := myKeyCond(keys, "range", bounds[len(bounds)-1], ">")
			if err != nil {
				return nil, err
			}
			query += " WHERE " + cond
			args = a
		}
		query += " ORDER BY " + strings.Join(names, ", ") + " LIMIT 1 OFFSET ?"
		args = append(args, pos-prevPos-1)
		err := q.QueryRowContext(ctx, query, args...).Scan(dest...)
		if errors.Is(err, sql.ErrNoRows) {
			break // fewer rows than the estimate
		}
		if err != nil {
			return nil, err
		}
		for k, c := range keys {
			parts[k] = myAppendKeyText(parts[k][:0], c, raw[k])
		}
		bounds = append(bounds, cursorText(parts))
		prevPos = pos
	}
	return boundRanges(bounds), nil
}

func (t *myTable) keyCols() []myCol {
	keys := make([]myCol, len(t.pk))
	for i, k := range t.pk {
		keys[i] = t.cols[k]
	}
	return keys
}

// myKeyCond is the condition "key op v" for a cursor or range bound v in
// cursor form (cursorText) and its arguments. A composite key compares as
// a row; the extra condition on its first column gives MariaDB, which
// does not turn row comparisons into index ranges, a range to scan.
func myKeyCond(keys []myCol, field, v, op string) (string, []any, error) {
	vals, ok := cursorParts(v, len(keys))
	if !ok {
		return "", nil, invalid(field, "want a JSON array of %d key values, got %q", len(keys), cut(v))
	}
	args := make([]any, 0, len(keys)+1)
	var l, r strings.Builder
	for i, c := range keys {
		a, err := myKeyArg(c, vals[i])
		if err != nil {
			return "", nil, invalid(field, "%q is not a value of key column %s (%s)", cut(vals[i]), c.name, c.colType)
		}
		args = append(args, a)
		if i > 0 {
			l.WriteString(", ")
			r.WriteString(", ")
		}
		l.WriteString(myIdent(c.name))
		r.WriteString(myKeyPlaceholder(c))
	}
	if len(keys) == 1 {
		return l.String() + " " + op + " " + r.String(), args, nil
	}
	first := ">="
	if op == "<=" || op == "<" {
		first = "<="
	}
	cond := fmt.Sprintf("%s %s %s AND (%s) %s (%s)", myIdent(keys[0].name), first, myKeyPlaceholder(keys[0]), l.String(), op, r.String())
	return cond, append([]any{args[0]}, args...), nil
}

// mySplitBig cuts [lo, hi] into n contiguous (lower, upper] ranges like
// splitRange, on big integers so bigint unsigned keys split too.
func mySplitBig(lo, hi *big.Int, n int) []*commonv1.KeyRange {
	span := new(big.Int).Sub(hi, lo)
	span.Add(span, big.NewInt(1))
	var bounds []*big.Int
	for i := 1; i < n; i++ {
		b := new(big.Int).Mul(span, big.NewInt(int64(i)))
		b.Quo(b, big.NewInt(int64(n)))
		b.Add(b, lo)
		b.Sub(b, big.NewInt(1))
		if b.Cmp(lo) < 0 || (len(bounds) > 0 && b.Cmp(bounds[len(bounds)-1]) <= 0) {
			continue // fewer keys than partitions
		}
		bounds = append(bounds, b)
	}
	ranges := make([]*commonv1.KeyRange, 0, len(bounds)+1)
	lower := ""
	for _, b := range bounds {
		u := b.String()
		ranges = append(ranges, &commonv1.KeyRange{Lower: lower, Upper: u})
		lower = u
	}
	return append(ranges, &commonv1.KeyRange{Lower: lower})
}

// ---- read ----

func (s *Service) readMySQL(ctx context.Context, spec *commonv1.MysqlSource, kr *commonv1.KeyRange, cursor string, lim readLimits) (*commonv1.Batch, bool, error) {
	d, db, name, err := s.mysqlTarget(spec)
	if err != nil {
		return nil, false, err
	}
	b, done, err := readMySQLTable(ctx, d.myDB, db, name, spec.GetZeroDates() == commonv1.ZeroDatePolicy_ZERO_DATE_POLICY_NULL, kr, cursor, lim)
	return b, done, mysqlErr(err, d, "read "+db+"."+name)
}

// myKeyArg converts a key's text (cursor or range bound) into the query
// argument that compares like the column: integers as integers (MySQL
// compares an integer column with a string as doubles), bytes from hex.
func myKeyArg(c myCol, v string) (any, error) {
	switch {
	case c.kind == myFloat32:
		return strconv.ParseFloat(v, 32)
	case c.kind == myFloat64:
		return strconv.ParseFloat(v, 64)
	case c.isIntegral && c.unsigned:
		return strconv.ParseUint(v, 10, 64)
	case c.isIntegral:
		return strconv.ParseInt(v, 10, 64)
	case c.kind == myBytes || c.kind == myBits || c.kind == myBit1:
		return hex.DecodeString(v)
	}
	return v, nil
}

// myKeyPlaceholder is the parameter as the key column's type.
func myKeyPlaceholder(c myCol) string {
	if c.kind == myNumeric && !c.isIntegral {
		return fmt.Sprintf("CAST(? AS DECIMAL(%d,%d))", c.precision, c.scale)
	}
	return "?"
}

// myAppendKeyText appends the cursor text of a key value: hex for binary
// keys (a proto string must be UTF-8), the value's text otherwise.
func myAppendKeyText(dst []byte, c myCol, v []byte) []byte {
	if c.kind == myBytes || c.kind == myBits || c.kind == myBit1 {
		return hex.AppendEncode(dst, v)
	}
	return append(dst, v...)
}

// mysqlReadQuery builds the keyset query of one batch. Cursors and range
// bounds are whole keys (a JSON array for a composite key).
func mysqlReadQuery(t *myTable, kr *commonv1.KeyRange, cursor string, size int) (string, []any, error) {
	keys := t.keyCols()
	var sb strings.Builder
	t.writeSelectFrom(&sb)
	var args []any
	where := " WHERE "
	for _, c := range []struct{ field, v, op string }{{"cursor", cursor, ">"}, {"range.lower", kr.GetLower(), ">"}, {"range.upper", kr.GetUpper(), "<="}} {
		if c.v == "" {
			continue
		}
		cond, a, err := myKeyCond(keys, c.field, c.v, c.op)
		if err != nil {
			return "", nil, err
		}
		sb.WriteString(where)
		sb.WriteString(cond)
		args = append(args, a...)
		where = " AND "
	}
	sb.WriteString(" ORDER BY ")
	for i, c := range keys {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(myIdent(c.name))
	}
	// LIMIT is always a parameter: a query with arguments goes through the
	// binary protocol, which carries FLOAT exactly.
	sb.WriteString(" LIMIT ?")
	args = append(args, int64(size))
	return sb.String(), args, nil
}

// readMySQLTable reads one batch in its own consistent snapshot. MySQL
// cannot share a snapshot between connections (there is no exported
// snapshot as in PostgreSQL), so each batch is consistent in itself but
// two batches may see different commits; a source that changes during the
// job needs change data capture on top.
//
// A batch is up to lim.rows rows in key order, ending before the row that
// would take it past lim.bytes (limits.go). The driver reads a result to
// its end, so the rows come in queries sized to what the batch can still
// hold (readLimits.nextChunk), all in the one snapshot.
func readMySQLTable(ctx context.Context, d *myDB, db, name string, zeroNull bool, kr *commonv1.KeyRange, cursor string, lim readLimits) (_ *commonv1.Batch, _ bool, err error) {
	conn, err := d.db.Conn(ctx)
	if err != nil {
		return nil, false, err
	}
	committed := false
	defer func() {
		if !committed {
			if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
				// Do not hand a connection with an open transaction back.
				_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			}
		}
		_ = conn.Close()
	}()
	if _, err := conn.ExecContext(ctx, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"); err != nil {
		return nil, false, err
	}
	if _, err := conn.ExecContext(ctx, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"); err != nil {
		return nil, false, err
	}
	t, err := loadMySQLTable(ctx, conn, db, name, false)
	if err != nil {
		return nil, false, err
	}
	dec := myDecoder{loc: d.loc, zeroNull: zeroNull}
	if len(t.pk) == 0 {
		b, done, err := readMySQLKeyless(ctx, conn, t, &dec, kr, cursor, lim)
		if err != nil {
			return nil, false, err
		}
		if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
			return nil, false, err
		}
		committed = true
		return b, done, nil
	}
	lastKey := make([][]byte, len(t.pk))
	mb := newMyBatch(t, &dec, lim, cursor)
	from := cursor
	for {
		chunk := mb.nextChunk()
		if chunk == 0 {
			break
		}
		query, args, err := mysqlReadQuery(t, kr, from, chunk)
		if err != nil {
			return nil, false, err
		}
		rows, err := conn.QueryContext(ctx, query, args...)
		if err != nil {
			return nil, false, err
		}
		read, err := mb.scan(rows, nil, func(vals []sql.RawBytes) {
			// Raw values live until the next row: keep a copy of the key.
			for k, ci := range t.pk {
				lastKey[k] = myAppendKeyText(lastKey[k][:0], t.cols[ci], vals[ci])
			}
		})
		rows.Close()
		if err != nil {
			return nil, false, err
		}
		if mb.full || read < chunk {
			break
		}
		from = cursorText(lastKey)
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return nil, false, err
	}
	committed = true
	b, n := mb.finish()
	last := cursor
	if n > 0 {
		last = cursorText(lastKey)
	}
	b.LastKey = escapeInvalid(last)
	return b, !mb.full && n < lim.rows, nil
}

// scanMySQL decodes the rows of a query over every column of t (in t's
// order) into a batch of up to size rows with source references; each sees
// a row's raw values before the next row is read. extra receives the
// query's columns after t's.
func scanMySQL(rows *sql.Rows, t *myTable, dec *myDecoder, size int, extra []any, each func(vals []sql.RawBytes)) (*commonv1.Batch, int, error) {
	mb := newMyBatch(t, dec, rowsOnly(size), "")
	if _, err := mb.scan(rows, extra, each); err != nil {
		return nil, 0, err
	}
	if err := rows.Close(); err != nil {
		return nil, 0, err
	}
	b, n := mb.finish()
	return b, n, nil
}

// myBatch accumulates the rows of one batch from one or more queries over
// every column of t, in t's order.
type myBatch struct {
	t      *myTable
	dec    *myDecoder
	cols   []*batch.Builder
	refs   *batch.Builder
	b      *commonv1.Batch
	vals   []sql.RawBytes
	refBuf []byte
	n      int
	// base is the rows of a keyless pass before the batch (their refs
	// count on from it).
	base int64
	// Byte accounting (limits.go): the bounds, the rows' bytes so far
	// from the header's first on, and whether a row did not fit.
	lim          readLimits
	sizer        *rowSizer
	fixed        int64 // bytes of every row besides its values and ref
	total, first int64
	full         bool
}

func newMyBatch(t *myTable, dec *myDecoder, lim readLimits, cursor string) *myBatch {
	capRows := min(lim.rows, 1<<14)
	mb := &myBatch{t: t, dec: dec, cols: make([]*batch.Builder, len(t.cols)),
		refs: batch.NewBuilder("source_ref", textType, capRows), b: &commonv1.Batch{Source: t.display()},
		vals: make([]sql.RawBytes, len(t.cols)), lim: lim, sizer: newRowSizer(lim, len(t.cols))}
	for i, c := range t.cols {
		mb.cols[i] = batch.NewBuilder(c.name, c.typ, capRows)
		mb.fixed += slotCost(c.typ)
		if c.kind == myBits {
			mb.fixed += int64(c.bits) // as '0'/'1' text
		}
	}
	mb.first = firstBytes(mb.b.Source, cursor)
	mb.total = mb.first
	return mb
}

// nextChunk is the rows the next query asks for.
func (mb *myBatch) nextChunk() int { return mb.lim.nextChunk(mb.n, mb.total, mb.first) }

// scan appends the rows of rows until one does not fit (then full is set);
// each sees a row's raw values once it is taken, before the next row is
// read. It returns the rows read, the one that did not fit included.
func (mb *myBatch) scan(rows *sql.Rows, extra []any, each func(vals []sql.RawBytes)) (int, error) {
	vals := mb.vals
	dest := make([]any, len(vals), len(vals)+len(extra))
	for i := range vals {
		dest[i] = &vals[i]
	}
	dest = append(dest, extra...)
	read := 0
	for rows.Next() {
		read++
		if err := rows.Scan(dest...); err != nil {
			return read, err
		}
		if !mb.add(vals) {
			break
		}
		if each != nil {
			each(vals)
		}
	}
	return read, rows.Err()
}

// add appends the row of raw values vals (every column of t, in t's
// order) unless it does not fit: then the batch is full and add returns
// false.
func (mb *myBatch) add(vals []sql.RawBytes) bool {
	t, sz := mb.t, mb.sizer
	mb.refBuf = mb.refBuf[:0]
	if len(t.pk) == 0 {
		// A table without key: the row's place in the ordered pass.
		mb.refBuf = strconv.AppendInt(append(mb.refBuf, "row "...), mb.base+int64(mb.n)+1, 10)
	}
	for k, ci := range t.pk {
		if k > 0 {
			mb.refBuf = append(mb.refBuf, ',')
		}
		mb.refBuf = append(append(mb.refBuf, t.cols[ci].name...), '=')
		mb.refBuf = myAppendKeyText(mb.refBuf, t.cols[ci], vals[ci])
	}
	for i := range t.cols {
		sz.sizes[i] = -1
		if c := &t.cols[i]; vals[i] != nil && c.kind != myBits && batch.Storage(c.typ) == batch.StorageBytes {
			sz.sizes[i] = int64(len(vals[i]))
		}
	}
	rowBytes := sz.pick(mb.fixed + refCost(len(mb.refBuf)))
	nrej := len(mb.b.Rejects)
	if sz.nbig > 0 {
		for i := range t.cols {
			if sz.big[i] {
				c, v := &t.cols[i], vals[i]
				rej := sz.reject("", c.name, i, v[:min(len(v), rawPrefixBytes)], c.kind == myBytes)
				rej.Row = int32(mb.n)
				mb.b.Rejects = append(mb.b.Rejects, rej)
			}
		}
	}
	if !mb.lim.fits(mb.n, mb.total, rowBytes+rejectsCost(mb.b.Rejects, nrej)) {
		// The row starts the next batch.
		mb.b.Rejects = mb.b.Rejects[:nrej]
		mb.full = true
		return false
	}
	for i := range t.cols {
		if sz.nbig > 0 && sz.big[i] {
			mb.cols[i].AppendNull()
			continue
		}
		if rej := mb.dec.append(mb.cols[i], &t.cols[i], vals[i]); rej != nil {
			mb.cols[i].Column().Nulls = batch.SetBit(mb.cols[i].Column().Nulls, mb.cols[i].Len()-1)
			rej.Row = int32(mb.n)
			mb.b.Rejects = append(mb.b.Rejects, rej)
		}
	}
	mb.total += rowBytes + rejectsCost(mb.b.Rejects, nrej)
	mb.refs.AppendBytes(mb.refBuf)
	mb.n++
	return true
}

// finish returns the batch (without its last key) and its rows.
func (mb *myBatch) finish() (*commonv1.Batch, int) {
	b := mb.b
	b.NumRows = int32(mb.n)
	b.Columns = make([]*commonv1.Column, len(mb.cols))
	for i, c := range mb.cols {
		b.Columns[i] = c.Column()
	}
	b.SourceRefs = mb.refs.Column()
	return b, mb.n
}

// myDecoder converts raw values; scratch is reused across values.
type myDecoder struct {
	loc      *time.Location
	zeroNull bool
	scratch  []byte
}

// append appends one raw value of c. A value the wire cannot carry gets a
// placeholder slot (the caller marks it NULL) and a reject.
func (dec *myDecoder) append(bld *batch.Builder, c *myCol, v []byte) *commonv1.Reject {
	if v == nil {
		bld.AppendNull()
		return nil
	}
	switch c.kind {
	case myInt:
		i, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			bld.AppendInt(0)
			return myReject(c, "wire_format", v, "is not a 64-bit integer")
		}
		bld.AppendInt(i)
	case myBool:
		switch string(v) {
		case "0":
			bld.AppendBool(false)
		case "1":
			bld.AppendBool(true)
		default:
			bld.AppendBool(false)
			return myReject(c, "bool_range", v, "is neither 0 nor 1, so boolean cannot hold it")
		}
	case myBit1:
		if len(v) != 1 || v[0] > 1 {
			bld.AppendBool(false)
			return myReject(c, "wire_format", v, "is not a bit(1) value")
		}
		bld.AppendBool(v[0] == 1)
	case myBits:
		dec.scratch = myAppendBits(dec.scratch[:0], v, c.bits)
		bld.AppendBytes(dec.scratch)
	case myFloat32, myFloat64:
		bitSize := 64
		if c.kind == myFloat32 {
			bitSize = 32
		}
		f, err := strconv.ParseFloat(string(v), bitSize)
		if err != nil {
			bld.AppendFloat(0)
			return myReject(c, "wire_format", v, "is not a number")
		}
		if c.kind == myFloat32 {
			f = batch.SingleToDouble(float32(f))
		}
		bld.AppendFloat(f)
	case myDate, myDatetime, myTimestamp:
		dt, ok := parseMySQLDateTime(v)
		switch {
		case ok && dt.isZero():
			if dec.zeroNull {
				bld.AppendNull()
				return nil
			}
			bld.AppendInt(0)
			return myReject(c, "zero_date", v, "is a zero date, which PostgreSQL cannot hold (zero_dates policy is QUARANTINE)")
		case !ok || !dt.valid():
			bld.AppendInt(0)
			return myReject(c, "invalid_date", v, "is not a valid calendar date and time")
		case c.kind == myDate:
			bld.AppendInt(dt.days())
		case c.kind == myTimestamp && dec.loc != time.UTC:
			bld.AppendInt(time.Date(dt.year, time.Month(dt.month), dt.day, dt.hour, dt.min, dt.sec, dt.micro*1000, dec.loc).UnixMicro())
		default:
			bld.AppendInt(dt.micros())
		}
	case myBytes:
		bld.AppendBytes(v)
	default: // text, numeric
		if !utf8.Valid(v) {
			bld.AppendBytes(nil)
			raw := cut(escapeInvalid(string(v)))
			return &commonv1.Reject{Stage: stageExtract, Rule: "encoding", Column: c.name, Raw: raw,
				Reason: fmt.Sprintf("column %s: invalid UTF-8 in %s", c.name, raw)}
		}
		bld.AppendBytes(v)
	}
	return nil
}

func myReject(c *myCol, rule string, v []byte, why string) *commonv1.Reject {
	raw := cut(escapeInvalid(string(v)))
	return &commonv1.Reject{Stage: stageExtract, Rule: rule, Column: c.name, Raw: raw,
		Reason: fmt.Sprintf("column %s: %s value %q %s", c.name, c.colType, raw, why)}
}

// myAppendBits renders the big-endian bytes of a bit(n) value as n '0'/'1'.
func myAppendBits(dst, v []byte, n int) []byte {
	for i := n - 1; i >= 0; i-- {
		byteIdx := len(v) - 1 - i/8
		bit := byte('0')
		if byteIdx >= 0 && v[byteIdx]>>(uint(i)%8)&1 == 1 {
			bit = '1'
		}
		dst = append(dst, bit)
	}
	return dst
}

// myDateTime is a MySQL date/datetime as written, before any validation.
type myDateTime struct {
	year, month, day, hour, min, sec, micro int
}

// parseMySQLDateTime parses "YYYY-MM-DD" or "YYYY-MM-DD HH:MM:SS[.f…]"
// (1 to 6 fraction digits) without allocating. Zero and out-of-calendar
// parts are returned as they are; see isZero and valid.
func parseMySQLDateTime(b []byte) (myDateTime, bool) {
	var dt myDateTime
	num := func(s []byte) (int, bool) {
		n := 0
		for _, ch := range s {
			if ch < '0' || ch > '9' {
				return 0, false
			}
			n = n*10 + int(ch-'0')
		}
		return n, len(s) > 0
	}
	if len(b) < 10 || b[4] != '-' || b[7] != '-' {
		return dt, false
	}
	var ok1, ok2, ok3 bool
	dt.year, ok1 = num(b[0:4])
	dt.month, ok2 = num(b[5:7])
	dt.day, ok3 = num(b[8:10])
	if !ok1 || !ok2 || !ok3 {
		return dt, false
	}
	if len(b) == 10 {
		return dt, true
	}
	if len(b) < 19 || b[10] != ' ' || b[13] != ':' || b[16] != ':' {
		return dt, false
	}
	dt.hour, ok1 = num(b[11:13])
	dt.min, ok2 = num(b[14:16])
	dt.sec, ok3 = num(b[17:19])
	if !ok1 || !ok2 || !ok3 {
		return dt, false
	}
	if len(b) == 19 {
		return dt, true
	}
	frac := b[20:]
	if b[19] != '.' || len(frac) == 0 || len(frac) > 6 {
		return dt, false
	}
	f, ok := num(frac)
	if !ok {
		return dt, false
	}
	for i := len(frac); i < 6; i++ {
		f *= 10
	}
	dt.micro = f
	return dt, true
}

// isZero reports MySQL's zero dates: 0000-00-00 and any zero month or day.
func (dt myDateTime) isZero() bool { return dt.month == 0 || dt.day == 0 }

// valid reports a real calendar date and time of day.
func (dt myDateTime) valid() bool {
	if dt.month < 1 || dt.month > 12 || dt.day < 1 || dt.hour > 23 || dt.min > 59 || dt.sec > 59 {
		return false
	}
	return dt.day <= calendar.DaysIn(dt.year, dt.month)
}

// days is the day number since 1970-01-01.
func (dt myDateTime) days() int64 { return calendar.Days(dt.year, dt.month, dt.day) }

// micros is the wall time read as UTC, in microseconds since the epoch.
func (dt myDateTime) micros() int64 {
	return (dt.days()*86400+int64(dt.hour*3600+dt.min*60+dt.sec))*1_000_000 + int64(dt.micro)
}
