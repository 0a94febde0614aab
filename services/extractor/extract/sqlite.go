package extract

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"github.com/cutover/cutover/services/kit/calendar"
	"github.com/cutover/cutover/services/kit/fsroot"

	_ "modernc.org/sqlite" // pure-Go driver "sqlite"
)

type sqliteKind struct{}

func init() {
	register(&commonv1.SourceSpec_Sqlite{}, "sqlite", sqliteKind{})
}

// sqlClass is how a declared SQLite type is read: the wire type, the
// PostgreSQL type and the check each stored value must pass.
type sqlClass int

const (
	sqlInteger sqlClass = iota
	sqlReal
	sqlText
	sqlBlob
	sqlNumeric
	sqlBool
	sqlDate
	sqlTimestamp
)

// sqliteCol is one column of a SQLite table.
type sqliteCol struct {
	name     string
	declared string // as written in CREATE TABLE, e.g. "DECIMAL(12,2)"
	class    sqlClass
	prec     int // DECIMAL(p,s); 0 = unbounded
	scale    int
	nullable bool
	pkPos    int
	dflt     sql.NullString // default as written in CREATE TABLE
}

// sqliteTable is a table as its PRAGMAs describe it.
type sqliteTable struct {
	path, name string
	kind       string // table, view, virtual
	withoutRow bool
	cols       []sqliteCol
	pk         []int // indexes into cols, in key order
}

// sqliteKey is the column batches are cut by.
type sqliteKey struct {
	expr    string // quoted column or rowid alias
	ref     string // source_ref prefix, e.g. "rowid=" or "id="
	integer bool   // integer keys can be split into ranges
	// parts: a WITHOUT ROWID table's composite primary key, in key order;
	// batches are cut by the whole key as a row value ((a, b) > (?, ?)),
	// and cursors are JSON arrays of the parts' text.
	parts []sqliteKey
}

// selectExprs are the key's columns in the select list, in key order.
func (k sqliteKey) selectExprs() []string {
	if len(k.parts) == 0 {
		return []string{k.expr}
	}
	out := make([]string, len(k.parts))
	for i, p := range k.parts {
		out[i] = p.expr
	}
	return out
}

// cond is the condition "key op bound" and its arguments.
func (k sqliteKey) cond(field, op, v string) (string, []any, error) {
	if len(k.parts) == 0 {
		a, err := k.arg(field, v)
		return k.expr + " " + op + " ?", []any{a}, err
	}
	var texts []string
	if err := json.Unmarshal([]byte(v), &texts); err != nil || len(texts) != len(k.parts) {
		return "", nil, invalid(field, "%q is not a key of %d columns (a JSON array of their values)", cut(v), len(k.parts))
	}
	args := make([]any, len(texts))
	marks := make([]string, len(texts))
	for i, p := range k.parts {
		a, err := p.arg(field, texts[i])
		if err != nil {
			return "", nil, err
		}
		args[i], marks[i] = a, "?"
	}
	return "(" + strings.Join(k.selectExprs(), ", ") + ") " + op + " (" + strings.Join(marks, ", ") + ")", args, nil
}

// text is a row's key as cursors carry it, and appends its source reference.
func (k sqliteKey) text(vals []any, ref []byte) (string, []byte) {
	if len(k.parts) == 0 {
		kv := keyText(vals[0])
		return kv, append(append(ref, k.ref...), kv...)
	}
	texts := make([]string, len(k.parts))
	for i, p := range k.parts {
		texts[i] = keyText(vals[i])
		if i > 0 {
			ref = append(ref, ',')
		}
		ref = append(append(ref, p.ref...), texts[i]...)
	}
	b, _ := json.Marshal(texts)
	return string(b), ref
}

// classify applies SQLite's affinity rules (datatype3.html §3.1) to a
// declared type, after the names legacy schemas use for booleans, dates and
// fixed-point numbers, which SQLite itself stores with NUMERIC affinity.
func classify(declared string) (c sqlClass, prec, scale int) {
	d := strings.ToUpper(strings.TrimSpace(declared))
	base, args := d, ""
	if i := strings.IndexByte(d, '('); i >= 0 {
		base = strings.TrimSpace(d[:i])
		args = strings.TrimSuffix(strings.TrimSpace(d[i+1:]), ")")
	}
	switch base {
	case "BOOLEAN", "BOOL":
		return sqlBool, 0, 0
	case "DATE":
		return sqlDate, 0, 0
	case "DATETIME", "TIMESTAMP":
		return sqlTimestamp, 0, 0
	case "DECIMAL", "NUMERIC":
		if args != "" {
			ps := strings.Split(args, ",")
			p, err := strconv.Atoi(strings.TrimSpace(ps[0]))
			if err == nil && p > 0 && p <= 1000 {
				prec = p
				if len(ps) == 2 {
					if s, err := strconv.Atoi(strings.TrimSpace(ps[1])); err == nil && s >= 0 && s <= p {
						scale = s
					} else {
						prec = 0
					}
				}
			}
		}
		return sqlNumeric, prec, scale
	}
	switch {
	case strings.Contains(d, "INT"):
		return sqlInteger, 0, 0
	case strings.Contains(d, "CHAR"), strings.Contains(d, "CLOB"), strings.Contains(d, "TEXT"):
		return sqlText, 0, 0
	case d == "", strings.Contains(d, "BLOB"):
		return sqlBlob, 0, 0
	case strings.Contains(d, "REAL"), strings.Contains(d, "FLOA"), strings.Contains(d, "DOUB"):
		return sqlReal, 0, 0
	}
	return sqlNumeric, 0, 0
}

func (c sqliteCol) wireType() commonv1.ColumnType {
	switch c.class {
	case sqlInteger:
		return commonv1.ColumnType_COLUMN_TYPE_INT64
	case sqlReal:
		return commonv1.ColumnType_COLUMN_TYPE_FLOAT64
	case sqlBlob:
		return commonv1.ColumnType_COLUMN_TYPE_BYTES
	case sqlNumeric:
		return commonv1.ColumnType_COLUMN_TYPE_NUMERIC
	case sqlBool:
		return commonv1.ColumnType_COLUMN_TYPE_BOOL
	case sqlDate:
		return commonv1.ColumnType_COLUMN_TYPE_DATE
	case sqlTimestamp:
		return commonv1.ColumnType_COLUMN_TYPE_TIMESTAMPTZ
	}
	return textType
}

func (c sqliteCol) pgType() string {
	switch c.class {
	case sqlInteger:
		return "bigint"
	case sqlReal:
		return "double precision"
	case sqlBlob:
		return "bytea"
	case sqlNumeric:
		if c.prec > 0 {
			return fmt.Sprintf("numeric(%d,%d)", c.prec, c.scale)
		}
		return "numeric"
	case sqlBool:
		return "boolean"
	case sqlDate:
		return "date"
	case sqlTimestamp:
		// SQLite date-times carry no zone: the wall time is kept.
		return "timestamp"
	}
	return "text"
}

// sqliteIdent quotes an identifier for SQLite.
func sqliteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// openSQLite opens the database file read-only, inside the file roots. A
// missing file is refused here: SQLite would otherwise create an empty
// database.
func openSQLite(roots *fsroot.Roots, spec *commonv1.SqliteSource) (*sql.DB, error) {
	if spec.GetPath() == "" {
		return nil, invalid("source.sqlite.path", "required")
	}
	if spec.GetTable() == "" {
		return nil, invalid("source.sqlite.table", "required")
	}
	// The driver opens by name, so this is check-then-open; the name is
	// the resolved one, an absolute path with no symlink in it.
	abs, err := resolveSourceFile(roots, "source.sqlite.path", spec.GetPath())
	if err != nil {
		return nil, err
	}
	// A URI so that mode=ro applies; the path is escaped so that '?', '#'
	// and '%' in file names stay part of the name and cannot add URI
	// parameters (vfs=, mode=rwc, ...): the query is ours alone.
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: "mode=ro"}
	db, err := sql.Open("sqlite", "file:"+u.EscapedPath()+"?"+u.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("source.sqlite.path: open %s: %w", spec.GetPath(), err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// sqliteErr names the file in a driver error and maps the codes that are
// the source's fault rather than ours.
func sqliteErr(err error, path string) error {
	if err == nil || classified(err) {
		return err
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "file is not a database"), strings.Contains(msg, "database disk image is malformed"):
		return fmt.Errorf("%w: source.sqlite.path: %s: %s", ErrPrecondition, path, msg)
	case strings.Contains(msg, "database is locked"), strings.Contains(msg, "unable to open database"):
		return fmt.Errorf("%w: source.sqlite.path: %s: %s", ErrUnavailable, path, msg)
	}
	return fmt.Errorf("source.sqlite %s: %s", path, msg)
}

func loadSQLiteTable(ctx context.Context, db *sql.DB, spec *commonv1.SqliteSource) (*sqliteTable, error) {
	t := &sqliteTable{path: spec.GetPath(), name: spec.GetTable()}
	var wr int
	// Names match as SQLite resolves them: without regard to case.
	err := db.QueryRowContext(ctx, `SELECT name, type, wr FROM pragma_table_list WHERE schema = 'main' AND name = ? COLLATE NOCASE`, t.name).Scan(&t.name, &t.kind, &wr)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: source.sqlite.table: table %s does not exist in %s", ErrNotFound, t.name, t.path)
	}
	if err != nil {
		return nil, err
	}
	t.withoutRow = wr != 0
	rows, err := db.QueryContext(ctx, `SELECT name, type, "notnull", pk, dflt_value FROM pragma_table_info(?) ORDER BY cid`, t.name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var c sqliteCol
		var notNull int
		if err := rows.Scan(&c.name, &c.declared, &notNull, &c.pkPos, &c.dflt); err != nil {
			return nil, err
		}
		c.nullable = notNull == 0
		c.class, c.prec, c.scale = classify(c.declared)
		t.cols = append(t.cols, c)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for pos := 1; ; pos++ {
		found := false
		for i, c := range t.cols {
			if c.pkPos == pos {
				t.pk = append(t.pk, i)
				found = true
			}
		}
		if !found {
			break
		}
	}
	// Columns of a WITHOUT ROWID primary key are NOT NULL even when not
	// declared so; in rowid tables SQLite allows NULL there.
	if t.withoutRow {
		for _, i := range t.pk {
			t.cols[i].nullable = false
		}
	}
	return t, nil
}

// key picks the keyset column: the rowid (or its INTEGER PRIMARY KEY
// alias) of a rowid table, the single-column key of a WITHOUT ROWID table.
func (t *sqliteTable) key() (sqliteKey, error) {
	if t.kind != "table" {
		return sqliteKey{}, fmt.Errorf("%w: source.sqlite.table: %s is a %s, which has no key to cut batches by", ErrPrecondition, t.name, t.kind)
	}
	if t.withoutRow {
		if len(t.pk) > 1 {
			var k sqliteKey
			for _, i := range t.pk {
				c := t.cols[i]
				k.parts = append(k.parts, sqliteKey{expr: sqliteIdent(c.name), ref: c.name + "=", integer: c.class == sqlInteger})
			}
			return k, nil
		}
		c := t.cols[t.pk[0]]
		return sqliteKey{expr: sqliteIdent(c.name), ref: c.name + "=", integer: c.class == sqlInteger}, nil
	}
	if len(t.pk) == 1 && strings.EqualFold(strings.TrimSpace(t.cols[t.pk[0]].declared), "INTEGER") {
		c := t.cols[t.pk[0]]
		return sqliteKey{expr: sqliteIdent(c.name), ref: c.name + "=", integer: true}, nil
	}
	// A column may shadow one of the rowid's three names.
	for _, alias := range []string{"rowid", "_rowid_", "oid"} {
		shadowed := false
		for _, c := range t.cols {
			if strings.EqualFold(c.name, alias) {
				shadowed = true
			}
		}
		if !shadowed {
			return sqliteKey{expr: alias, ref: "rowid=", integer: true}, nil
		}
	}
	return sqliteKey{}, fmt.Errorf("%w: source.sqlite.table: columns of %s hide every name of its rowid", ErrPrecondition, t.name)
}

func (sqliteKind) describe(ctx context.Context, s *Service, src *commonv1.SourceSpec) (*extractorv1.DescribeSourceResponse, error) {
	spec := src.GetSqlite()
	db, err := openSQLite(s.files, spec)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	resp, err := describeSQLite(ctx, db, spec)
	return resp, sqliteErr(err, spec.GetPath())
}

func describeSQLite(ctx context.Context, db *sql.DB, spec *commonv1.SqliteSource) (*extractorv1.DescribeSourceResponse, error) {
	t, err := loadSQLiteTable(ctx, db, spec)
	if err != nil {
		return nil, err
	}
	resp := &extractorv1.DescribeSourceResponse{}
	// An INTEGER PRIMARY KEY of a rowid table is the rowid: SQLite fills
	// it in on insert.
	rowidAlias := -1
	if t.kind == "table" && !t.withoutRow && len(t.pk) == 1 && strings.EqualFold(strings.TrimSpace(t.cols[t.pk[0]].declared), "INTEGER") {
		rowidAlias = t.pk[0]
	}
	for i, c := range t.cols {
		sc := &commonv1.SourceColumn{
			Name: c.name, SourceType: c.declared, Type: c.wireType(), Nullable: c.nullable, PgType: c.pgType(),
			Identity: i == rowidAlias,
		}
		if c.dflt.Valid && !sc.Identity {
			sc.DefaultKind, sc.DefaultValue = sqliteDefault(c.dflt.String)
			if sc.DefaultKind != commonv1.DefaultKind_DEFAULT_KIND_UNSPECIFIED {
				sc.DefaultExpression = c.dflt.String
			}
		}
		resp.Columns = append(resp.Columns, sc)
	}
	if resp.Indexes, resp.OtherIndexes, err = sqliteIndexes(ctx, db, t); err != nil {
		return nil, err
	}
	for _, i := range t.pk {
		resp.PrimaryKey = append(resp.PrimaryKey, t.cols[i].name)
	}
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+sqliteIdent(t.name)).Scan(&resp.EstimatedRows); err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, `SELECT id, "table", "from", "to" FROM pragma_foreign_key_list(?) ORDER BY id, seq`, t.name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var fk *commonv1.ForeignKey
	lastID := -1
	var implicit []*commonv1.ForeignKey // REFERENCES parent without columns: the parent's key
	for rows.Next() {
		var id int
		var parent, from string
		var to sql.NullString
		if err := rows.Scan(&id, &parent, &from, &to); err != nil {
			return nil, err
		}
		if id != lastID {
			// SQLite foreign keys have no names a PRAGMA shows.
			fk = &commonv1.ForeignKey{Name: fmt.Sprintf("%s_fk%d", t.name, id), ReferencedTable: parent}
			resp.ForeignKeys = append(resp.ForeignKeys, fk)
			lastID = id
		}
		fk.Columns = append(fk.Columns, from)
		if to.Valid {
			fk.ReferencedColumns = append(fk.ReferencedColumns, to.String)
		} else if len(implicit) == 0 || implicit[len(implicit)-1] != fk {
			implicit = append(implicit, fk)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	for _, fk := range implicit {
		parent, err := loadSQLiteTable(ctx, db, &commonv1.SqliteSource{Path: spec.GetPath(), Table: fk.ReferencedTable})
		if err != nil {
			continue // a dangling reference: leave the columns out
		}
		fk.ReferencedColumns = fk.ReferencedColumns[:0]
		for _, i := range parent.pk {
			fk.ReferencedColumns = append(fk.ReferencedColumns, parent.cols[i].name)
		}
	}
	return resp, nil
}

func (sqliteKind) plan(ctx context.Context, s *Service, src *commonv1.SourceSpec, n int) ([]*commonv1.KeyRange, error) {
	spec := src.GetSqlite()
	db, err := openSQLite(s.files, spec)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	ranges, err := planSQLite(ctx, db, spec, n)
	return ranges, sqliteErr(err, spec.GetPath())
}

func planSQLite(ctx context.Context, db *sql.DB, spec *commonv1.SqliteSource, n int) ([]*commonv1.KeyRange, error) {
	t, err := loadSQLiteTable(ctx, db, spec)
	if err != nil {
		return nil, err
	}
	key, err := t.key()
	if err != nil {
		return nil, err
	}
	whole := []*commonv1.KeyRange{{}}
	if n <= 1 || !key.integer {
		return whole, nil
	}
	// Only integer-valued keys: a WITHOUT ROWID INTEGER key may hold text.
	var lo, hi sql.NullInt64
	q := fmt.Sprintf("SELECT min(%[1]s), max(%[1]s) FROM %[2]s WHERE typeof(%[1]s) = 'integer'", key.expr, sqliteIdent(t.name))
	if err := db.QueryRowContext(ctx, q).Scan(&lo, &hi); err != nil {
		return nil, err
	}
	if !lo.Valid || !hi.Valid {
		return whole, nil
	}
	return splitRange(lo.Int64, hi.Int64, n), nil
}

func (sqliteKind) read(ctx context.Context, s *Service, src *commonv1.SourceSpec, rng *commonv1.KeyRange, cursor string, lim readLimits) (*commonv1.Batch, bool, error) {
	spec := src.GetSqlite()
	db, err := openSQLite(s.files, spec)
	if err != nil {
		return nil, false, err
	}
	defer db.Close()
	b, done, err := readSQLite(ctx, db, spec, rng, cursor, lim)
	return b, done, sqliteErr(err, spec.GetPath())
}

// keyArg turns a cursor or bound into a query argument of the key's type.
func (k sqliteKey) arg(field, v string) (any, error) {
	if !k.integer {
		return v, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return nil, invalid(field, "%q is not an integer key", v)
	}
	return n, nil
}

// readSQLite reads the batch after cursor: up to lim.rows rows in key
// order, ending before the row that would take it past lim.bytes
// (limits.go). Stopping early costs nothing: SQLite steps the query only
// as far as it is read.
func readSQLite(ctx context.Context, db *sql.DB, spec *commonv1.SqliteSource, rng *commonv1.KeyRange, cursor string, lim readLimits) (*commonv1.Batch, bool, error) {
	size := lim.rows
	t, err := loadSQLiteTable(ctx, db, spec)
	if err != nil {
		return nil, false, err
	}
	key, err := t.key()
	if err != nil {
		return nil, false, err
	}
	// likely() hands back the stored value unchanged but hides the declared
	// type from the driver, which would otherwise turn DATE text into
	// time.Time: the storage class must reach the checks as stored.
	var sb strings.Builder
	sb.WriteString("SELECT ")
	keyExprs := key.selectExprs()
	for i, e := range keyExprs {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString("likely(" + e + ")")
	}
	for _, c := range t.cols {
		sb.WriteString(", likely(")
		sb.WriteString(sqliteIdent(c.name))
		sb.WriteString(")")
	}
	sb.WriteString(" FROM ")
	sb.WriteString(sqliteIdent(t.name))
	var args []any
	cond := func(field, op, v string) error {
		c, a, err := key.cond(field, op, v)
		if err != nil {
			return err
		}
		if len(args) == 0 {
			sb.WriteString(" WHERE ")
		} else {
			sb.WriteString(" AND ")
		}
		sb.WriteString(c)
		args = append(args, a...)
		return nil
	}
	for _, c := range []struct{ field, op, v string }{
		{"cursor", ">", cursor}, {"range.lower", ">", rng.GetLower()}, {"range.upper", "<=", rng.GetUpper()},
	} {
		if c.v != "" {
			if err := cond(c.field, c.op, c.v); err != nil {
				return nil, false, err
			}
		}
	}
	sb.WriteString(" ORDER BY " + strings.Join(keyExprs, ", ") + " LIMIT ?")
	args = append(args, size)
	rows, err := db.QueryContext(ctx, sb.String(), args...)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()

	capRows := min(size, 1<<14)
	cols := make([]*batch.Builder, len(t.cols))
	for i, c := range t.cols {
		cols[i] = batch.NewBuilder(c.name, c.wireType(), capRows)
	}
	refs := batch.NewBuilder("source_ref", textType, capRows)
	b := &commonv1.Batch{Source: t.path + ":" + t.name}
	nk := len(keyExprs) // the key's values come first
	vals := make([]any, len(t.cols)+nk)
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var refBuf, scratch []byte
	last := cursor
	n := 0
	sizer := newRowSizer(lim, len(t.cols))
	var fixed int64
	for _, c := range t.cols {
		fixed += slotCost(c.wireType())
	}
	total := firstBytes(b.Source, cursor)
	full := false // the batch ended before a row that did not fit
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, false, err
		}
		var kv string
		kv, refBuf = key.text(vals, refBuf[:0])
		rowBytes := fixed + refCost(len(refBuf))
		for i, c := range t.cols {
			sizer.sizes[i] = -1
			if batch.Storage(c.wireType()) != batch.StorageBytes {
				continue
			}
			switch x := vals[i+nk].(type) {
			case string:
				sizer.sizes[i] = int64(len(x))
			case []byte:
				sizer.sizes[i] = int64(len(x))
			case int64, float64:
				rowBytes += 32 // as text
			}
		}
		rowBytes = sizer.pick(rowBytes)
		nrej := len(b.Rejects)
		for i, c := range t.cols {
			if sizer.nbig > 0 && sizer.big[i] {
				var prefix []byte
				switch x := vals[i+nk].(type) {
				case string:
					prefix = []byte(x[:min(len(x), rawPrefixBytes)])
				case []byte:
					prefix = x[:min(len(x), rawPrefixBytes)]
				}
				rej := sizer.reject("", c.name, i, prefix, c.class == sqlBlob)
				rej.Row = int32(n)
				b.Rejects = append(b.Rejects, rej)
			}
		}
		if !lim.fits(n, total, rowBytes+rejectsCost(b.Rejects, nrej)) {
			// The row starts the next batch.
			b.Rejects = b.Rejects[:nrej]
			full = true
			break
		}
		for i, c := range t.cols {
			if sizer.nbig > 0 && sizer.big[i] {
				cols[i].AppendNull()
				continue
			}
			var rej *commonv1.Reject
			scratch, rej = appendSQLiteValue(cols[i], c, vals[i+nk], scratch)
			if rej != nil {
				rej.Row = int32(n)
				b.Rejects = append(b.Rejects, rej)
			}
		}
		total += rowBytes + rejectsCost(b.Rejects, nrej)
		refs.AppendBytes(refBuf)
		last = kv
		n++
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	b.NumRows = int32(n)
	b.Columns = make([]*commonv1.Column, len(cols))
	for i, c := range cols {
		b.Columns[i] = c.Column()
	}
	b.SourceRefs = refs.Column()
	b.LastKey = last
	return b, !full && n < size, nil
}

// keyText is the text form of a key value, as cursors and refs carry it.
func keyText(v any) string {
	switch x := v.(type) {
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case string:
		return escapeInvalid(x)
	case []byte:
		return escapeInvalid(string(x))
	}
	return ""
}

// storageClass names a value's SQLite storage class; the driver returns
// exactly one Go type per class.
func storageClass(v any) string {
	switch v.(type) {
	case int64:
		return "integer"
	case float64:
		return "real"
	case string:
		return "text"
	case []byte:
		return "blob"
	}
	return "null"
}

// sqliteRaw renders a stored value for a reject: text as is, blobs as a
// SQL blob literal.
func sqliteRaw(v any) string {
	// Only the start of a long value is shown (cut keeps maxRaw bytes):
	// never format all of it.
	switch x := v.(type) {
	case []byte:
		return cut(fmt.Sprintf("x'%x'", x[:min(len(x), maxRaw/2+1)]))
	case string:
		return cut(escapeInvalid(x[:min(len(x), maxRaw+utf8.UTFMax)]))
	}
	return keyText(v)
}

func mismatch(c sqliteCol, v any, why string) *commonv1.Reject {
	raw := sqliteRaw(v)
	reason := fmt.Sprintf("column %s: declared %s, storage class %s, value %s", c.name, c.declared, storageClass(v), batch.QuoteShort([]byte(raw)))
	if c.declared == "" {
		reason = fmt.Sprintf("column %s: no declared type, storage class %s, value %s", c.name, storageClass(v), batch.QuoteShort([]byte(raw)))
	}
	if why != "" {
		reason += ": " + why
	}
	return &commonv1.Reject{Stage: stageExtract, Rule: "type_mismatch", Column: c.name, Reason: reason, Raw: raw}
}

// appendSQLiteValue appends v to bld if it fits the declared type as is;
// otherwise it appends NULL and returns the reject. Only lossless changes
// of representation are made (3 → 3.0 in REAL, 0/1 → false/true).
func appendSQLiteValue(bld *batch.Builder, c sqliteCol, v any, scratch []byte) ([]byte, *commonv1.Reject) {
	if v == nil {
		bld.AppendNull()
		return scratch, nil
	}
	var rej *commonv1.Reject
	switch c.class {
	case sqlInteger:
		switch x := v.(type) {
		case int64:
			bld.AppendInt(x)
		case float64:
			rej = mismatch(c, v, "not a whole number in the 64-bit range")
		default:
			rej = mismatch(c, v, "")
		}
	case sqlReal:
		switch x := v.(type) {
		case float64:
			bld.AppendFloat(x)
		case int64:
			f := float64(x)
			if f >= 0x1p63 || int64(f) != x {
				rej = mismatch(c, v, "no double holds this integer exactly")
			} else {
				bld.AppendFloat(f)
			}
		default:
			rej = mismatch(c, v, "")
		}
	case sqlText:
		switch x := v.(type) {
		case string:
			if !utf8.ValidString(x) {
				raw := cut(escapeInvalid(x))
				bld.AppendNull()
				return scratch, &commonv1.Reject{Stage: stageExtract, Rule: "encoding", Column: c.name, Raw: raw,
					Reason: fmt.Sprintf("column %s: invalid UTF-8 in %s", c.name, batch.QuoteShort([]byte(raw)))}
			}
			bld.AppendString(x)
		case int64:
			scratch = strconv.AppendInt(scratch[:0], x, 10)
			bld.AppendBytes(scratch)
		case float64:
			// The shortest text that reads back as the same double.
			scratch = strconv.AppendFloat(scratch[:0], x, 'g', -1, 64)
			bld.AppendBytes(scratch)
		default:
			rej = mismatch(c, v, "")
		}
	case sqlBlob:
		switch x := v.(type) {
		case []byte:
			bld.AppendBytes(x)
		case string:
			bld.AppendString(x)
		default:
			rej = mismatch(c, v, "")
		}
	case sqlBool:
		if x, ok := v.(int64); ok && (x == 0 || x == 1) {
			bld.AppendBool(x == 1)
		} else {
			rej = mismatch(c, v, "a boolean is stored as 0 or 1")
		}
	case sqlDate, sqlTimestamp:
		s, ok := v.(string)
		if !ok {
			rej = mismatch(c, v, "dates are read from text YYYY-MM-DD[ HH:MM:SS[.ffffff]]")
			break
		}
		days, micros, ok := parseSQLiteTime(s)
		switch {
		case !ok:
			rej = mismatch(c, v, "not a valid YYYY-MM-DD[ HH:MM:SS[.ffffff]]")
		case c.class == sqlDate && micros != 0:
			rej = mismatch(c, v, "a date column cannot keep the time of day")
		case c.class == sqlDate:
			bld.AppendInt(days)
		default:
			bld.AppendInt(days*86_400_000_000 + micros)
		}
	case sqlNumeric:
		var err error
		switch x := v.(type) {
		case int64:
			scratch = strconv.AppendInt(scratch[:0], x, 10)
		case float64:
			if math.IsInf(x, 0) || math.IsNaN(x) {
				err = errors.New("not a finite number")
				break
			}
			// NUMERIC affinity stores '12.5' as a double; its shortest
			// round-trip text is the value that was written.
			scratch = strconv.AppendFloat(scratch[:0], x, 'f', -1, 64)
		case string:
			scratch, err = appendDecimal(scratch[:0], []byte(x))
		default:
			err = errors.New("")
		}
		if err == nil {
			err = fitsDecimal(scratch, c.prec, c.scale)
		}
		if err != nil {
			rej = mismatch(c, v, err.Error())
			break
		}
		bld.AppendBytes(scratch)
	}
	if rej != nil {
		bld.AppendNull()
	}
	return scratch, rej
}

// parseSQLiteTime reads YYYY-MM-DD[( |T)HH:MM[:SS[.f{1,6}]]][Z] as days
// since the epoch and microseconds into the day. Anything else, including
// impossible dates and zone offsets (which would shift the wall time),
// is refused.
func parseSQLiteTime(s string) (days, micros int64, ok bool) {
	num := func(t string) (int64, bool) {
		var n int64
		for i := 0; i < len(t); i++ {
			if t[i] < '0' || t[i] > '9' {
				return 0, false
			}
			n = n*10 + int64(t[i]-'0')
		}
		return n, len(t) > 0
	}
	if len(s) < 10 || s[4] != '-' || s[7] != '-' {
		return 0, 0, false
	}
	y, ok1 := num(s[:4])
	mo, ok2 := num(s[5:7])
	d, ok3 := num(s[8:10])
	if !ok1 || !ok2 || !ok3 || mo < 1 || mo > 12 || d < 1 || d > calendar.DaysIn(y, mo) {
		return 0, 0, false
	}
	days = calendar.Days(y, mo, d)
	rest := s[10:]
	if rest == "" {
		return days, 0, true
	}
	rest = strings.TrimSuffix(rest, "Z")
	if len(rest) < 6 || (rest[0] != ' ' && rest[0] != 'T') || rest[3] != ':' {
		return 0, 0, false
	}
	h, ok1 := num(rest[1:3])
	mi, ok2 := num(rest[4:6])
	if !ok1 || !ok2 || h > 23 || mi > 59 {
		return 0, 0, false
	}
	micros = (h*3600 + mi*60) * 1_000_000
	rest = rest[6:]
	if rest == "" {
		return days, micros, true
	}
	if len(rest) < 3 || rest[0] != ':' {
		return 0, 0, false
	}
	sec, ok := num(rest[1:3])
	if !ok || sec > 59 {
		return 0, 0, false
	}
	micros += sec * 1_000_000
	rest = rest[3:]
	if rest == "" {
		return days, micros, true
	}
	if rest[0] != '.' || len(rest) < 2 || len(rest) > 7 {
		return 0, 0, false
	}
	f, ok := num(rest[1:])
	if !ok {
		return 0, 0, false
	}
	for i := len(rest) - 1; i < 6; i++ {
		f *= 10
	}
	return days, micros + f, true
}

// appendDecimal appends the canonical form of a decimal literal
// `[+-]digits[.digits][e[+-]digits]`: no '+', no leading zeros, "-0" is
// "0", the exponent applied, trailing fraction zeros kept ("12.50").
func appendDecimal(dst, b []byte) ([]byte, error) {
	bad := func() ([]byte, error) { return dst, errors.New("not a decimal number") }
	neg := false
	if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
		neg = b[0] == '-'
		b = b[1:]
	}
	i := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	intPart := b[:i]
	var frac []byte
	if i < len(b) && b[i] == '.' {
		j := i + 1
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		frac = b[i+1 : j]
		i = j
	}
	if len(intPart)+len(frac) == 0 {
		return bad()
	}
	exp := 0
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		j := i + 1
		eneg := false
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			eneg = b[j] == '-'
			j++
		}
		if j == len(b) {
			return bad()
		}
		for ; j < len(b); j++ {
			if b[j] < '0' || b[j] > '9' {
				return bad()
			}
			exp = exp*10 + int(b[j]-'0')
			if exp > 1000 {
				return dst, errors.New("exponent out of range")
			}
		}
		if eneg {
			exp = -exp
		}
		i = len(b)
	}
	if i != len(b) {
		return bad()
	}
	// digits with the point after point digits.
	start := len(dst)
	digits := append(append(dst, intPart...), frac...)
	point := len(intPart) + exp
	all := digits[start:]
	var out []byte
	switch {
	case point <= 0:
		out = append([]byte("0."), make([]byte, -point)...)
		for k := 2; k < len(out); k++ {
			out[k] = '0'
		}
		out = append(out, all...)
	case point >= len(all):
		out = append(append([]byte{}, all...), make([]byte, point-len(all))...)
		for k := len(all); k < len(out); k++ {
			out[k] = '0'
		}
	default:
		out = append(append(append([]byte{}, all[:point]...), '.'), all[point:]...)
	}
	// Strip leading zeros of the integer part.
	k := 0
	for k < len(out)-1 && out[k] == '0' && out[k+1] != '.' {
		k++
	}
	out = out[k:]
	if len(out) > 0 && out[len(out)-1] == '.' {
		out = out[:len(out)-1]
	}
	zero := true
	for _, c := range out {
		if c >= '1' && c <= '9' {
			zero = false
			break
		}
	}
	dst = dst[:start]
	if neg && !zero {
		dst = append(dst, '-')
	}
	return append(dst, out...), nil
}

// fitsDecimal checks a canonical decimal against numeric(prec, scale):
// trailing zeros aside, no digit may be lost to rounding.
func fitsDecimal(d []byte, prec, scale int) error {
	if prec == 0 {
		return nil
	}
	if len(d) > 0 && d[0] == '-' {
		d = d[1:]
	}
	intDigits, fracDigits := len(d), 0
	if p := strings.IndexByte(string(d), '.'); p >= 0 {
		intDigits = p
		f := strings.TrimRight(string(d[p+1:]), "0")
		fracDigits = len(f)
	}
	if intDigits == 1 && d[0] == '0' {
		intDigits = 0
	}
	if fracDigits > scale {
		return fmt.Errorf("more than %d fraction digits would be rounded", scale)
	}
	if intDigits > prec-scale {
		return fmt.Errorf("more than %d integer digits do not fit numeric(%d,%d)", prec-scale, prec, scale)
	}
	return nil
}
