package extract

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/cutover/cutover/services/kit/dsn"
	"math"
	"math/big"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgPool is a cached pool with the password its errors must not show.
type pgPool struct {
	pool     *pgxpool.Pool
	password string
	dsn      string // as given; logged only through dsn.Redact
}

// pgSrc is a pool as one request uses it: with the table it is for, which
// connection failures name.
type pgSrc struct {
	*pgPool
	name string
}

// pgCol is one source column.
type pgCol struct {
	name       string
	sourceType string // format_type, e.g. "numeric(12,2)"
	pgType     string // a built-in type holding the values (see colsSQL)
	base       string // base type name (domains resolved), e.g. "numeric"
	typ        commonv1.ColumnType
	nullable   bool
	pkPos      int // 1-based position in the primary key, 0 if not in it
}

// pgTable is a table as the catalog describes it.
type pgTable struct {
	schema, name string
	cols         []pgCol
	pk           []int // indexes into cols, in key order
	reltuples    int64
	oid          uint32
	relkind      string // pg_class.relkind: r table, p partitioned, v view, m matview, f foreign
	relpages     int64
}

func (t *pgTable) display() string { return t.schema + "." + t.name }

func (t *pgTable) ident() string { return pgx.Identifier{t.schema, t.name}.Sanitize() }

// pgTarget resolves the spec to a pool and a schema/table name.
func (s *Service) pgTarget(spec *commonv1.PostgresSource) (*pgSrc, string, string, error) {
	if spec.GetDsn() == "" {
		return nil, "", "", invalid("source.postgres.dsn", "required")
	}
	if spec.GetTable() == "" {
		return nil, "", "", invalid("source.postgres.table", "required")
	}
	schema := spec.GetSchema()
	if schema == "" {
		schema = "public"
	}
	p, err := s.pool(spec.GetDsn())
	if err != nil {
		return nil, "", "", err
	}
	return &pgSrc{pgPool: p, name: schema + "." + spec.GetTable()}, schema, spec.GetTable(), nil
}

// querier is what catalog lookups need: a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

const relSQL = `SELECT c.oid, GREATEST(c.reltuples, 0)::int8, c.relkind::text, c.relpages::int8
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')`

// colsSQL also names, per column, a built-in type that holds its values in
// a new target (pg_type): user types (domains, enums, composites) do not
// exist there, so a domain becomes its base type and the rest text.
const colsSQL = `SELECT a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), bt.typname::text, NOT a.attnotnull,
  COALESCE((SELECT k.ord FROM pg_catalog.pg_index i, unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
            WHERE i.indrelid = a.attrelid AND i.indisprimary AND k.attnum = a.attnum), 0)::int4,
  CASE WHEN tn.nspname = 'pg_catalog' THEN pg_catalog.format_type(a.atttypid, a.atttypmod)
       WHEN t.typtype = 'd' AND btn.nspname = 'pg_catalog' THEN pg_catalog.format_type(t.typbasetype, t.typtypmod)
       WHEN t.typcategory = 'A' THEN 'text[]'
       ELSE 'text' END
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
JOIN pg_catalog.pg_namespace tn ON tn.oid = t.typnamespace
JOIN pg_catalog.pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
JOIN pg_catalog.pg_namespace btn ON btn.oid = bt.typnamespace
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`

func loadTable(ctx context.Context, q querier, schema, name string) (*pgTable, error) {
	t := &pgTable{schema: schema, name: name}
	if err := q.QueryRow(ctx, relSQL, schema, name).Scan(&t.oid, &t.reltuples, &t.relkind, &t.relpages); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("%w: source.postgres.table: table %s does not exist", ErrNotFound, t.display())
		}
		return nil, err
	}
	rows, err := q.Query(ctx, colsSQL, t.oid)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var c pgCol
		if err := rows.Scan(&c.name, &c.sourceType, &c.base, &c.nullable, &c.pkPos, &c.pgType); err != nil {
			return nil, err
		}
		c.typ = batch.FromPostgres(c.base)
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
	return t, nil
}

// pgErr turns a driver error into a domain error without the password.
func pgErr(err error, p *pgSrc, what string) error {
	if err == nil {
		return nil
	}
	// Before classified(): a connect timeout would pass as DeadlineExceeded
	// and tell a silent port from a closed one.
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return connectFailed("postgres", p.name, p.dsn, p.password, err)
	}
	if classified(err) {
		return err
	}
	msg := scrub(err.Error(), p.password)
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		msg = scrub(pe.Message, p.password)
		switch {
		case pe.Code == "42P01":
			return fmt.Errorf("%w: %s: %s", ErrNotFound, what, msg)
		case pe.Code == "3D000":
			return fmt.Errorf("%w: source.postgres.dsn: %s", ErrNotFound, msg)
		case strings.HasPrefix(pe.Code, "28"):
			return fmt.Errorf("%w: source.postgres.dsn: %s", ErrPrecondition, msg)
		case pe.Code == "42501":
			return fmt.Errorf("%w: %s: %s", ErrPrecondition, what, msg)
		case strings.HasPrefix(pe.Code, "22"):
			return fmt.Errorf("%w: cursor or range: %s", ErrInvalid, msg)
		case strings.HasPrefix(pe.Code, "08"), strings.HasPrefix(pe.Code, "53"), strings.HasPrefix(pe.Code, "57P"):
			return fmt.Errorf("%w: %s: %s", ErrUnavailable, what, msg)
		}
		return fmt.Errorf("%s: %s (SQLSTATE %s)", what, msg, pe.Code)
	}
	var ne net.Error
	if errors.As(err, &ne) || pgconn.Timeout(err) {
		return fmt.Errorf("%w: %s: %s", ErrUnavailable, what, msg)
	}
	return fmt.Errorf("%s: %s", what, msg)
}

// scrub removes a password from an error text, in case a driver echoes it.
func scrub(s, secret string) string { return dsn.RedactSecret(s, secret) }

func (s *Service) describePG(ctx context.Context, spec *commonv1.PostgresSource) (*extractorv1.DescribeSourceResponse, error) {
	p, schema, name, err := s.pgTarget(spec)
	if err != nil {
		return nil, err
	}
	t, err := loadTable(ctx, p.pool, schema, name)
	if err != nil {
		return nil, pgErr(err, p, "describe "+schema+"."+name)
	}
	resp := &extractorv1.DescribeSourceResponse{EstimatedRows: t.reltuples}
	if t.reltuples <= 0 {
		// Never analyzed: the planner's own guess, from the table's size
		// now and its column types.
		resp.EstimatedRows = plannerRows(ctx, p.pool, t)
	}
	for _, c := range t.cols {
		resp.Columns = append(resp.Columns, &commonv1.SourceColumn{Name: c.name, SourceType: c.sourceType, Type: c.typ, Nullable: c.nullable, PgType: c.pgType})
	}
	for _, i := range t.pk {
		resp.PrimaryKey = append(resp.PrimaryKey, t.cols[i].name)
	}
	// Identity and serial columns: the ones with a sequence of their own.
	// (Defaults are not carried over from PostgreSQL yet.)
	idRows, err := p.pool.Query(ctx, `SELECT a.attname FROM pg_attribute a
		JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
		  AND pg_get_serial_sequence(quote_ident(n.nspname) || '.' || quote_ident(c.relname), a.attname) IS NOT NULL`, schema, name)
	if err != nil {
		return nil, pgErr(err, p, "describe "+schema+"."+name)
	}
	identity, err := pgx.CollectRows(idRows, pgx.RowTo[string])
	if err != nil {
		return nil, pgErr(err, p, "describe "+schema+"."+name)
	}
	for _, c := range resp.Columns {
		c.Identity = slices.Contains(identity, c.GetName())
	}
	if resp.ForeignKeys, err = foreignKeysPG(ctx, p.pool, schema, name); err != nil {
		return nil, pgErr(err, p, "describe foreign keys of "+schema+"."+name)
	}
	if resp.Indexes, resp.OtherIndexes, err = indexesPG(ctx, p.pool, schema, name); err != nil {
		return nil, pgErr(err, p, "describe indexes of "+schema+"."+name)
	}
	return resp, nil
}

// indexesPG lists the table's secondary indexes on plain columns (a
// unique one backing a UNIQUE constraint is marked so; a method other
// than btree is named). Indexes on expressions, partial ones, ones with
// INCLUDE columns, those of exclusion constraints and those of other access
// methods come back in other with their definition.
func indexesPG(ctx context.Context, pool *pgxpool.Pool, schema, table string) (kept, other []*commonv1.SourceIndex, err error) {
	rows, err := pool.Query(ctx, `
		SELECT ic.relname::text, i.indisunique,
		       EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid AND c.contype = 'u'),
		       am.amname::text,
		       i.indexprs IS NULL AND i.indpred IS NULL AND NOT (0 = ANY (i.indkey::int2[])) AND i.indnkeyatts = i.indnatts
		         AND NOT i.indisexclusion AND am.amname IN ('btree', 'hash', 'gin', 'gist', 'brin', 'spgist'),
		       array(SELECT a.attname::text FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(n, o)
		             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n ORDER BY k.o),
		       pg_get_indexdef(i.indexrelid)
		FROM pg_index i
		JOIN pg_class ic ON ic.oid = i.indexrelid
		JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
		JOIN pg_am am ON am.oid = ic.relam
		WHERE n.nspname = $1 AND t.relname = $2 AND NOT i.indisprimary
		ORDER BY ic.relname`, schema, table)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		ix := &commonv1.SourceIndex{}
		var plain bool
		var def string
		if err := rows.Scan(&ix.Name, &ix.Unique, &ix.Constraint, &ix.Method, &plain, &ix.Columns, &def); err != nil {
			return nil, nil, err
		}
		if ix.Method == "btree" {
			ix.Method = ""
		}
		if !plain {
			ix.Columns, ix.Definition = nil, def
			other = append(other, ix)
			continue
		}
		kept = append(kept, ix)
	}
	return kept, other, rows.Err()
}

// foreignKeysPG lists the table's foreign keys with their columns in key
// order; referenced tables are named without schema when in the same one.
func foreignKeysPG(ctx context.Context, pool *pgxpool.Pool, schema, table string) ([]*commonv1.ForeignKey, error) {
	rows, err := pool.Query(ctx, `
		SELECT c.conname,
		       array(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
		             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i),
		       CASE WHEN rn.nspname = $1 THEN r.relname ELSE rn.nspname || '.' || r.relname END,
		       array(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(n, i)
		             JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i)
		FROM pg_constraint c
		JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace tn ON tn.oid = t.relnamespace
		JOIN pg_class r ON r.oid = c.confrelid JOIN pg_namespace rn ON rn.oid = r.relnamespace
		WHERE c.contype = 'f' AND tn.nspname = $1 AND t.relname = $2
		ORDER BY c.conname`, schema, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*commonv1.ForeignKey
	for rows.Next() {
		fk := &commonv1.ForeignKey{}
		if err := rows.Scan(&fk.Name, &fk.Columns, &fk.ReferencedTable, &fk.ReferencedColumns); err != nil {
			return nil, err
		}
		out = append(out, fk)
	}
	return out, rows.Err()
}

// keyCols returns the primary key columns in key order.
func (t *pgTable) keyCols() []pgCol {
	keys := make([]pgCol, len(t.pk))
	for i, k := range t.pk {
		keys[i] = t.cols[k]
	}
	return keys
}

// needCTID checks that a table without primary key can be read by ctid:
// a ctid is a row version's physical address, stable only within one
// snapshot, so the request must carry the job's.
func (t *pgTable) needCTID(ctx context.Context) error {
	if t.relkind != "r" && t.relkind != "m" {
		return fmt.Errorf("%w: source.postgres.table: %s has no primary key and is not a plain table (relkind %q), so it has no row addresses to read it by", ErrPrecondition, t.display(), t.relkind)
	}
	if snapshotFrom(ctx) == "" {
		return fmt.Errorf("%w: source.postgres.table: table %s has no primary key, so it is read by ctid, which needs the job's snapshot: open one with OpenSnapshot and pass it in the request", ErrPrecondition, t.display())
	}
	return nil
}

func (s *Service) planPG(ctx context.Context, spec *commonv1.PostgresSource, n int) ([]*commonv1.KeyRange, error) {
	p, schema, name, err := s.pgTarget(spec)
	if err != nil {
		return nil, err
	}
	ranges, err := planTable(ctx, p.pool, schema, name, n)
	return ranges, pgErr(err, p, "plan "+schema+"."+name)
}

func planTable(ctx context.Context, pool *pgxpool.Pool, schema, name string, n int) ([]*commonv1.KeyRange, error) {
	tx, err := beginPG(ctx, pool)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	t, err := loadTable(ctx, tx, schema, name)
	if err != nil {
		return nil, err
	}
	if len(t.pk) == 0 {
		if err := t.needCTID(ctx); err != nil {
			return nil, err
		}
		return planCTID(ctx, tx, t, n)
	}
	whole := []*commonv1.KeyRange{{}}
	if n <= 1 {
		return whole, nil
	}
	keys := t.keyCols()
	if len(keys) > 1 || keys[0].typ != commonv1.ColumnType_COLUMN_TYPE_INT64 {
		return planSampled(ctx, tx, t, keys, n)
	}
	k := pgx.Identifier{keys[0].name}.Sanitize()
	var lo, hi *int64
	if err := tx.QueryRow(ctx, "SELECT min("+k+")::int8, max("+k+")::int8 FROM "+t.ident()).Scan(&lo, &hi); err != nil {
		return nil, err
	}
	if lo == nil || hi == nil {
		return whole, nil
	}
	return splitRange(*lo, *hi, n), nil
}

// plannerRows is the planner's row estimate of a full scan of t; 0 when it
// cannot be had (a view it cannot plan cheaply, no privilege).
func plannerRows(ctx context.Context, q querier, t *pgTable) int64 {
	// An empty table has no blocks; the planner would assume 10.
	if n, err := relBlocks(ctx, q, t); err != nil || n == 0 {
		return 0
	}
	var plan []byte
	if err := q.QueryRow(ctx, "EXPLAIN (FORMAT JSON) SELECT 1 FROM "+t.ident()).Scan(&plan); err != nil {
		return 0
	}
	var out []struct {
		Plan struct {
			Rows float64 `json:"Plan Rows"`
		} `json:"Plan"`
	}
	if json.Unmarshal(plan, &out) != nil || len(out) == 0 {
		return 0
	}
	return int64(out[0].Plan.Rows)
}

// relBlocks is the table's current size in blocks. Within a snapshot every
// visible row lies below it: the table only grows while the snapshot's
// lock keeps rewrites and truncation out.
func relBlocks(ctx context.Context, q querier, t *pgTable) (int64, error) {
	var blocks int64
	err := q.QueryRow(ctx, "SELECT pg_relation_size(CAST($1::oid AS regclass)) / current_setting('block_size')::int8", t.oid).Scan(&blocks)
	return blocks, err
}

// sampleTarget is how many keys planning sorts to find quantiles: enough
// for even ranges, few enough to plan a large table in seconds.
func sampleTarget(n int) int64 { return min(max(10_000, 100*int64(n)), 1_000_000) }

// planSampled cuts the order of a text or composite key into n ranges at
// the quantiles of a sample (of all keys on smaller tables). The ranges are
// contiguous and open at both ends, so they cover every row whatever the
// sample holds; the sample only decides how even they are.
func planSampled(ctx context.Context, tx pgx.Tx, t *pgTable, keys []pgCol, n int) ([]*commonv1.KeyRange, error) {
	est := t.reltuples
	if est <= 0 {
		// Never analyzed: guess from the size (~50 rows a block).
		blocks, err := relBlocks(ctx, tx, t)
		if err != nil {
			return nil, err
		}
		est = blocks * 50
	}
	from := t.ident() + " AS src"
	if target := sampleTarget(n); est > target && t.relkind != "f" {
		// Block sampling reads only the sampled pages; REPEATABLE makes a
		// repeated plan the same.
		from += fmt.Sprintf(" TABLESAMPLE SYSTEM (%.6f) REPEATABLE (0)", 100*float64(target)/float64(est))
	}
	var inner, outer, order strings.Builder
	for i, k := range keys {
		if i > 0 {
			inner.WriteString(", ")
			outer.WriteString(", ")
			order.WriteString(", ")
		}
		id := "src." + pgx.Identifier{k.name}.Sanitize()
		fmt.Fprintf(&inner, "%s AS k%d", id, i)
		fmt.Fprintf(&outer, "k%d::text", i)
		order.WriteString(id)
	}
	// The last row of each of the first n-1 of n equal slices of the
	// sample, in key order (the columns' collations apply).
	sql := "SELECT " + outer.String() + " FROM (SELECT " + inner.String() +
		", row_number() OVER (ORDER BY " + order.String() + ") AS rn, count(*) OVER () AS total FROM " + from +
		") q WHERE rn < total AND rn * $1::int8 / total > (rn - 1) * $1::int8 / total ORDER BY rn"
	rows, err := tx.Query(ctx, sql, int64(n))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var bounds []string
	parts := make([][]byte, len(keys))
	for rows.Next() {
		vals := rows.RawValues()
		for i := range parts {
			parts[i] = vals[i]
		}
		bounds = append(bounds, cursorText(parts))
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return boundRanges(bounds), nil
}

// boundRanges turns ascending bounds into contiguous (lower, upper] ranges
// open at both ends.
func boundRanges(bounds []string) []*commonv1.KeyRange {
	ranges := make([]*commonv1.KeyRange, 0, len(bounds)+1)
	lower := ""
	for _, b := range bounds {
		ranges = append(ranges, &commonv1.KeyRange{Lower: lower, Upper: b})
		lower = b
	}
	return append(ranges, &commonv1.KeyRange{Lower: lower})
}

// cursorText is the cursor text of a key: the value's text for a single
// column, a JSON array of the values' texts for a composite key.
func cursorText(parts [][]byte) string {
	if len(parts) == 1 {
		return string(parts[0])
	}
	strs := make([]string, len(parts))
	for i, p := range parts {
		strs[i] = string(p)
	}
	j, _ := json.Marshal(strs)
	return string(j)
}

// cursorParts splits a cursor or bound made by cursorText for an n-column key.
func cursorParts(s string, n int) ([]string, bool) {
	if n == 1 {
		return []string{s}, true
	}
	var parts []string
	if err := json.Unmarshal([]byte(s), &parts); err != nil || len(parts) != n {
		return nil, false
	}
	return parts, true
}

// planCTID cuts a table without primary key into n ranges of blocks:
// (lower, upper] over ctids, with bounds "(b,0)", which no row has (row
// offsets start at 1), so each range is blocks [lo, hi).
func planCTID(ctx context.Context, tx pgx.Tx, t *pgTable, n int) ([]*commonv1.KeyRange, error) {
	blocks, err := relBlocks(ctx, tx, t)
	if err != nil {
		return nil, err
	}
	var bounds []string
	prev := int64(0)
	for i := 1; i < n; i++ {
		b := blocks * int64(i) / int64(n)
		if b <= prev {
			continue // fewer blocks than partitions
		}
		bounds = append(bounds, tid{block: b}.String())
		prev = b
	}
	return boundRanges(bounds), nil
}

// tid is a row address (block, offset) as in PostgreSQL's tid type.
type tid struct{ block, off int64 }

func (a tid) less(b tid) bool { return a.block < b.block || a.block == b.block && a.off < b.off }

func (a tid) String() string {
	buf := make([]byte, 0, 24)
	buf = append(buf, '(')
	buf = strconv.AppendInt(buf, a.block, 10)
	buf = append(buf, ',')
	buf = strconv.AppendInt(buf, a.off, 10)
	return string(append(buf, ')'))
}

// parseTID parses the canonical text of a tid, "(block,offset)", as this
// package writes it into cursors and ranges.
func parseTID(s string) (tid, bool) {
	num := func(s string, max int64) (int64, bool) {
		if len(s) == 0 || len(s) > 10 {
			return 0, false
		}
		var n int64
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return 0, false
			}
			n = n*10 + int64(s[i]-'0')
		}
		return n, n <= max
	}
	if len(s) < 5 || s[0] != '(' || s[len(s)-1] != ')' {
		return tid{}, false
	}
	b, o, ok := strings.Cut(s[1:len(s)-1], ",")
	if !ok {
		return tid{}, false
	}
	var t tid
	var ok1, ok2 bool
	t.block, ok1 = num(b, math.MaxUint32)
	t.off, ok2 = num(o, math.MaxUint16)
	return t, ok1 && ok2
}

// splitRange cuts [lo, hi] into n contiguous (lower, upper] ranges. The
// first is open below and the last open above, so rows inserted outside
// [lo, hi] after planning still fall into a range.
func splitRange(lo, hi int64, n int) []*commonv1.KeyRange {
	span := new(big.Int).Sub(big.NewInt(hi), big.NewInt(lo))
	span.Add(span, big.NewInt(1))
	var bounds []int64
	for i := 1; i < n; i++ {
		// bound_i = lo - 1 + floor(span * i / n), always within [lo-1, hi].
		b := new(big.Int).Mul(span, big.NewInt(int64(i)))
		b.Quo(b, big.NewInt(int64(n)))
		b.Add(b, big.NewInt(lo))
		b.Sub(b, big.NewInt(1))
		v := b.Int64()
		if b.Cmp(big.NewInt(lo)) < 0 || (len(bounds) > 0 && v <= bounds[len(bounds)-1]) {
			continue // empty range: fewer keys than partitions
		}
		bounds = append(bounds, v)
	}
	ranges := make([]*commonv1.KeyRange, 0, len(bounds)+1)
	lower := ""
	for _, b := range bounds {
		u := strconv.FormatInt(b, 10)
		ranges = append(ranges, &commonv1.KeyRange{Lower: lower, Upper: u})
		lower = u
	}
	return append(ranges, &commonv1.KeyRange{Lower: lower})
}

func (s *Service) readPG(ctx context.Context, spec *commonv1.PostgresSource, kr *commonv1.KeyRange, cursor string, lim readLimits) (*commonv1.Batch, bool, error) {
	p, schema, name, err := s.pgTarget(spec)
	if err != nil {
		return nil, false, err
	}
	b, done, err := readTable(ctx, p.pool, schema, name, kr, cursor, lim)
	return b, done, pgErr(err, p, "read "+schema+"."+name)
}

// selectExpr is the select-list expression of a column: a cast to the base
// type for types decoded from binary, text for everything else.
func selectExpr(c pgCol) (string, int16) {
	id := "src." + pgx.Identifier{c.name}.Sanitize()
	switch c.typ {
	case commonv1.ColumnType_COLUMN_TYPE_INT64:
		return id + "::int8", pgx.BinaryFormatCode
	case commonv1.ColumnType_COLUMN_TYPE_FLOAT64:
		return id + "::float8", pgx.BinaryFormatCode
	case commonv1.ColumnType_COLUMN_TYPE_BOOL:
		return id + "::bool", pgx.BinaryFormatCode
	case commonv1.ColumnType_COLUMN_TYPE_TIMESTAMPTZ:
		// timestamp and timestamptz share the binary form; a timestamp's
		// wall time is taken as UTC.
		return id + "::" + c.base, pgx.BinaryFormatCode
	case commonv1.ColumnType_COLUMN_TYPE_DATE:
		return id + "::date", pgx.BinaryFormatCode
	case commonv1.ColumnType_COLUMN_TYPE_BYTES:
		return id + "::bytea", pgx.BinaryFormatCode
	}
	return id + "::text", pgx.TextFormatCode
}

// selectList writes "SELECT <keys as text>, <columns> FROM t AS src" and
// returns the result formats. Columns are qualified everywhere: the output
// columns carry the same names as the inputs (ORDER BY ctid would sort
// the text of ctid otherwise).
func selectList(sb *strings.Builder, t *pgTable, keyExprs []string) pgx.QueryResultFormats {
	formats := make(pgx.QueryResultFormats, 0, len(t.cols)+len(keyExprs))
	sb.WriteString("SELECT ")
	for i, k := range keyExprs {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(k)
		sb.WriteString("::text")
		formats = append(formats, pgx.TextFormatCode)
	}
	for _, c := range t.cols {
		e, f := selectExpr(c)
		sb.WriteString(", ")
		sb.WriteString(e)
		formats = append(formats, f)
	}
	sb.WriteString(" FROM ")
	sb.WriteString(t.ident())
	sb.WriteString(" AS src")
	return formats
}

// readQuery builds the keyset query of one batch and its arguments. A
// composite key compares as a row, (a, b) > ($1, $2), which a btree index
// on the key answers as one range.
func readQuery(t *pgTable, keys []pgCol, kr *commonv1.KeyRange, cursor string, size int) (string, []any, error) {
	ks := make([]string, len(keys))
	for i, k := range keys {
		ks[i] = "src." + pgx.Identifier{k.name}.Sanitize()
	}
	var sb strings.Builder
	formats := selectList(&sb, t, ks)
	args := []any{formats}
	cond := func(field, op, v string) error {
		parts, ok := cursorParts(v, len(keys))
		if !ok {
			return invalid(field, "want a JSON array of %d key values, got %q", len(keys), cut(v))
		}
		if len(args) == 1 {
			sb.WriteString(" WHERE ")
		} else {
			sb.WriteString(" AND ")
		}
		var lhs, rhs strings.Builder
		for i, k := range keys {
			if i > 0 {
				lhs.WriteString(", ")
				rhs.WriteString(", ")
			}
			args = append(args, parts[i])
			lhs.WriteString(ks[i])
			// The key type comes from format_type, which quotes as needed.
			fmt.Fprintf(&rhs, "CAST($%d::text AS %s)", len(args)-1, k.sourceType)
		}
		if len(keys) == 1 {
			fmt.Fprintf(&sb, "%s %s %s", lhs.String(), op, rhs.String())
		} else {
			fmt.Fprintf(&sb, "(%s) %s (%s)", lhs.String(), op, rhs.String())
		}
		return nil
	}
	for _, c := range []struct{ field, op, v string }{{"cursor", ">", cursor}, {"range.lower", ">", kr.GetLower()}, {"range.upper", "<=", kr.GetUpper()}} {
		if c.v != "" {
			if err := cond(c.field, c.op, c.v); err != nil {
				return "", nil, err
			}
		}
	}
	args = append(args, int64(size))
	fmt.Fprintf(&sb, " ORDER BY %s LIMIT $%d", strings.Join(ks, ", "), len(args)-1)
	return sb.String(), args, nil
}

const (
	// Seconds between the Unix epoch and PostgreSQL's 2000-01-01 epoch.
	pgEpochSeconds = 946684800
	pgEpochDays    = 10957
)

// readTable reads the batch after cursor: up to lim.rows rows in key order,
// ending before the row that would take it past lim.bytes (limits.go). A
// result is always read to its end, so the rows come in queries sized to
// what the batch can still hold (readLimits.nextChunk), all in the one
// transaction: together they read what one query would.
func readTable(ctx context.Context, pool *pgxpool.Pool, schema, name string, kr *commonv1.KeyRange, cursor string, lim readLimits) (*commonv1.Batch, bool, error) {
	tx, err := beginPG(ctx, pool)
	if err != nil {
		return nil, false, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	t, err := loadTable(ctx, tx, schema, name)
	if err != nil {
		return nil, false, err
	}
	if len(t.pk) == 0 {
		if err := t.needCTID(ctx); err != nil {
			return nil, false, err
		}
		pb := newPGBatch(t, []string{"ctid"}, lim, cursor)
		if err := readCTID(ctx, tx, t, pb, kr, cursor); err != nil {
			return nil, false, err
		}
		b, done := pb.finish(cursor)
		return b, done, nil
	}
	keys := t.keyCols()
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.name
	}
	pb := newPGBatch(t, names, lim, cursor)
	from := cursor
	for {
		chunk := pb.nextChunk()
		if chunk == 0 {
			break
		}
		sql, args, err := readQuery(t, keys, kr, from, chunk)
		if err != nil {
			return nil, false, err
		}
		rows, err := tx.Query(ctx, sql, args...)
		if err != nil {
			return nil, false, err
		}
		read, err := pb.scan(rows)
		if err != nil {
			return nil, false, err
		}
		if pb.full || read < chunk {
			break
		}
		from = cursorText(pb.lastKey)
	}
	b, done := pb.finish(cursor)
	return b, done, nil
}

// readCTID reads the rows of a table without primary key in ctid order.
// Inside a snapshot the rows it sees and their addresses are fixed: their
// newer versions are invisible, and the snapshot's open transaction keeps
// VACUUM from removing the versions it sees. The scan goes by windows of
// blocks sized for one batch: a TID range scan does not return rows in
// order, so each query sorts only its window, not the rest of the range.
func readCTID(ctx context.Context, tx pgx.Tx, t *pgTable, pb *pgBatch, kr *commonv1.KeyRange, cursor string) error {
	size := pb.lim.rows
	var from tid
	for _, c := range []struct{ field, v string }{{"range.lower", kr.GetLower()}, {"cursor", cursor}} {
		if c.v == "" {
			continue
		}
		v, ok := parseTID(c.v)
		if !ok {
			return invalid(c.field, "%q is not a row address such as (12,3)", cut(c.v))
		}
		if from.less(v) {
			from = v
		}
	}
	blocks, err := relBlocks(ctx, tx, t)
	if err != nil {
		return err
	}
	end := tid{block: blocks}
	if kr.GetUpper() != "" {
		u, ok := parseTID(kr.GetUpper())
		if !ok {
			return invalid("range.upper", "%q is not a row address such as (12,0)", cut(kr.GetUpper()))
		}
		if u.less(end) {
			end = u
		}
	}
	perBlock := 100.0
	if t.relpages > 0 && t.reltuples > 0 {
		perBlock = float64(t.reltuples) / float64(t.relpages)
	}
	window := int64(float64(size)/perBlock*1.25) + 1
	var sb strings.Builder
	formats := selectList(&sb, t, []string{"src.ctid"})
	sb.WriteString(" WHERE src.ctid > $1::tid AND src.ctid <= $2::tid ORDER BY src.ctid LIMIT $3")
	sql := sb.String()
	var to tid
	inWindow := false // the window up to to may hold rows after from
	for !pb.full && pb.n < size && from.less(end) {
		if !inWindow {
			to = tid{block: from.block + window}
			if end.less(to) {
				to = end
			}
		}
		chunk := pb.nextChunk()
		rows, err := tx.Query(ctx, sql, formats, from.String(), to.String(), int64(chunk))
		if err != nil {
			return err
		}
		read, err := pb.scan(rows)
		if err != nil {
			return err
		}
		if read == chunk && !pb.full {
			// The query stopped at its limit: go on after its last row.
			last, ok := parseTID(string(pb.lastKey[0]))
			if !ok {
				return fmt.Errorf("unexpected ctid %q", pb.lastKey[0])
			}
			from, inWindow = last, true
			continue
		}
		from, inWindow = to, false
		window *= 2
	}
	return nil
}

// pgBatch accumulates the rows of one batch. The first len(keys) values
// of each row are the key's text (or the ctid's), the rest the columns.
type pgBatch struct {
	t       *pgTable
	keys    []string
	cols    []*batch.Builder
	refs    *batch.Builder
	b       *commonv1.Batch
	refBuf  []byte
	lastKey [][]byte
	n       int
	// Byte accounting (limits.go): the bounds, the rows' bytes so far
	// from the header's first on, and whether a row did not fit.
	lim          readLimits
	sizer        *rowSizer
	fixed        int64 // bytes of every row besides its values and ref
	total, first int64
	full         bool
}

func newPGBatch(t *pgTable, keys []string, lim readLimits, cursor string) *pgBatch {
	capRows := min(lim.rows, 1<<14)
	pb := &pgBatch{t: t, keys: keys, cols: make([]*batch.Builder, len(t.cols)),
		refs: batch.NewBuilder("source_ref", textType, capRows), b: &commonv1.Batch{Source: t.display()},
		refBuf: make([]byte, 0, 64), lastKey: make([][]byte, len(keys)),
		lim: lim, sizer: newRowSizer(lim, len(t.cols))}
	for i, c := range t.cols {
		pb.cols[i] = batch.NewBuilder(c.name, c.typ, capRows)
		pb.fixed += slotCost(c.typ)
	}
	pb.first = firstBytes(pb.b.Source, cursor)
	pb.total = pb.first
	return pb
}

// nextChunk is the rows the next query asks for.
func (pb *pgBatch) nextChunk() int { return pb.lim.nextChunk(pb.n, pb.total, pb.first) }

// scan appends the rows of rows until one does not fit (then full is set)
// and closes them. It returns the rows read, the one that did not fit
// included.
func (pb *pgBatch) scan(rows pgx.Rows) (int, error) {
	defer rows.Close()
	nk := len(pb.keys)
	read := 0
	for rows.Next() {
		read++
		vals := rows.RawValues()
		if len(vals) != len(pb.t.cols)+nk {
			return read, fmt.Errorf("got %d values for %d columns", len(vals), len(pb.t.cols)+nk)
		}
		pb.refBuf = pb.refBuf[:0]
		for k, name := range pb.keys {
			if k > 0 {
				pb.refBuf = append(pb.refBuf, ',')
			}
			pb.refBuf = append(append(append(pb.refBuf, name...), '='), vals[k]...)
		}
		sz := pb.sizer
		for i, c := range pb.t.cols {
			sz.sizes[i] = -1
			if v := vals[i+nk]; v != nil && batch.Storage(c.typ) == batch.StorageBytes {
				sz.sizes[i] = int64(len(v))
			}
		}
		rowBytes := sz.pick(pb.fixed + refCost(len(pb.refBuf)))
		nrej := len(pb.b.Rejects)
		if sz.nbig > 0 {
			for i, c := range pb.t.cols {
				if sz.big[i] {
					v := vals[i+nk]
					rej := sz.reject("", c.name, i, v[:min(len(v), rawPrefixBytes)], c.typ == commonv1.ColumnType_COLUMN_TYPE_BYTES)
					rej.Row = int32(pb.n)
					pb.b.Rejects = append(pb.b.Rejects, rej)
				}
			}
		}
		if !pb.lim.fits(pb.n, pb.total, rowBytes+rejectsCost(pb.b.Rejects, nrej)) {
			// The row starts the next batch.
			pb.b.Rejects = pb.b.Rejects[:nrej]
			pb.full = true
			break
		}
		for i, c := range pb.t.cols {
			if sz.nbig > 0 && sz.big[i] {
				pb.cols[i].AppendNull()
				continue
			}
			if rej := appendValue(pb.cols[i], c, vals[i+nk]); rej != nil {
				pb.cols[i].Column().Nulls = batch.SetBit(pb.cols[i].Column().Nulls, pb.cols[i].Len()-1)
				rej.Row = int32(pb.n)
				pb.b.Rejects = append(pb.b.Rejects, rej)
			}
		}
		pb.total += rowBytes + rejectsCost(pb.b.Rejects, nrej)
		for k := range pb.keys {
			// Raw values live until the next row: keep a copy of the key.
			pb.lastKey[k] = append(pb.lastKey[k][:0], vals[k]...)
		}
		pb.refs.AppendBytes(pb.refBuf)
		pb.n++
	}
	return read, rows.Err()
}

// finish returns the batch and whether the range is exhausted: the reads
// ended before a full batch, and not at a row that did not fit.
func (pb *pgBatch) finish(cursor string) (*commonv1.Batch, bool) {
	last := cursor
	if pb.n > 0 {
		last = cursorText(pb.lastKey)
	}
	b := pb.b
	b.NumRows = int32(pb.n)
	b.Columns = make([]*commonv1.Column, len(pb.cols))
	for i, c := range pb.cols {
		b.Columns[i] = c.Column()
	}
	b.SourceRefs = pb.refs.Column()
	b.LastKey = escapeInvalid(last)
	return b, !pb.full && pb.n < pb.lim.rows
}

// ---- snapshots ----

// pgSnapshot is an exported snapshot: the connection whose open
// transaction exported it. The snapshot exists as long as it does.
type pgSnapshot struct {
	conn *pgx.Conn
}

// close ends the exporting transaction, which deletes the snapshot before
// ROLLBACK returns (so an import right after fails), and disconnects.
func (sn *pgSnapshot) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = sn.conn.Exec(ctx, "ROLLBACK")
	_ = sn.conn.Close(ctx)
}

// pgSnapshotID is "pg:<exported name>:<exporter pid>:<exporter start, µs>".
// Exported names are unique only among live transactions of one server
// (a new session soon reuses a dead one's), so the id also names the
// exporting session, and every import checks that it still runs.
var pgSnapshotID = regexp.MustCompile(`^pg:([0-9A-F]{8}(?:-[0-9A-F]{8})?-[0-9]{1,10}):([0-9]{1,10}):(-?[0-9]{1,19})$`)

type pgSnapID struct {
	name  string
	pid   int64
	start int64
}

func (id pgSnapID) String() string {
	return "pg:" + id.name + ":" + strconv.FormatInt(id.pid, 10) + ":" + strconv.FormatInt(id.start, 10)
}

// parsePGSnapshot checks an id strictly: its name goes into SQL as a
// literal (SET TRANSACTION SNAPSHOT takes no parameters).
func parsePGSnapshot(s string) (pgSnapID, error) {
	m := pgSnapshotID.FindStringSubmatch(s)
	if m == nil {
		return pgSnapID{}, invalid("snapshot", "%q is not a snapshot id from OpenSnapshot", cut(s))
	}
	pid, err1 := strconv.ParseInt(m[2], 10, 32)
	start, err2 := strconv.ParseInt(m[3], 10, 64)
	if err1 != nil || err2 != nil {
		return pgSnapID{}, invalid("snapshot", "%q is not a snapshot id from OpenSnapshot", cut(s))
	}
	return pgSnapID{name: m[1], pid: pid, start: start}, nil
}

// backendStart is a session's start in µs, computed the same way on export
// and import so that the two compare exactly.
const backendStart = `(extract(epoch FROM backend_start) * 1000000)::int8`

func (pgKind) openSnapshot(ctx context.Context, s *Service, src *commonv1.SourceSpec) (string, error) {
	return s.openSnapshotPG(ctx, src.GetPostgres())
}

// closeSnapshot ends the exporting transaction. Behind one Service address
// the call may reach a replica that does not hold the snapshot: that one
// ends the exporting session through the server instead, so a snapshot
// never outlives its job just because of load balancing.
func (pgKind) closeSnapshot(ctx context.Context, s *Service, src *commonv1.SourceSpec, id string) error {
	s.mu.Lock()
	sn := s.snaps[id]
	delete(s.snaps, id)
	s.mu.Unlock()
	if sn != nil {
		sn.close()
		return nil
	}
	sid, err := parsePGSnapshot(id)
	if err != nil {
		return err
	}
	p, _, _, err := s.pgTarget(src.GetPostgres())
	if err != nil {
		return err
	}
	// The start time pins the session: a pid alone may have been reused.
	_, err = p.pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE pid = $1 AND `+backendStart+` = $2`, sid.pid, sid.start)
	if err != nil {
		return pgErr(err, p, "close snapshot")
	}
	return nil
}

func (pgKind) checkSnapshot(id string) error {
	_, err := parsePGSnapshot(id)
	return err
}

// openSnapshotPG exports a snapshot from a dedicated connection (not from
// the pool: it stays in its transaction until CloseSnapshot or Close).
func (s *Service) openSnapshotPG(ctx context.Context, spec *commonv1.PostgresSource) (string, error) {
	p, schema, name, err := s.pgTarget(spec)
	if err != nil {
		return "", err
	}
	what := "open snapshot of " + schema + "." + name
	cfg := p.pool.Config().ConnConfig.Copy()
	// Idle in transaction between batches is the point: a server-side
	// timeout would end the snapshot in the middle of the job.
	cfg.RuntimeParams["idle_in_transaction_session_timeout"] = "0"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return "", pgErr(err, p, what)
	}
	id, err := exportSnapshot(ctx, conn, schema, name)
	if err != nil {
		_ = conn.Close(context.WithoutCancel(ctx))
		return "", pgErr(err, p, what)
	}
	sn := &pgSnapshot{conn: conn}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		sn.close()
		return "", fmt.Errorf("%w: extractor is shutting down", ErrUnavailable)
	}
	if s.snaps == nil {
		s.snaps = map[string]*pgSnapshot{}
	}
	s.snaps[id] = sn
	s.mu.Unlock()
	return id, nil
}

func exportSnapshot(ctx context.Context, conn *pgx.Conn, schema, name string) (string, error) {
	if _, err := conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		return "", err
	}
	// LOCK first: it takes no snapshot, so no TRUNCATE or table rewrite can
	// come between the snapshot and the lock, and none runs until the
	// snapshot closes. Neither is MVCC-safe: the snapshot would see the
	// table empty, or see rows at other addresses.
	if _, err := conn.Exec(ctx, "LOCK TABLE "+pgx.Identifier{schema, name}.Sanitize()+" IN ACCESS SHARE MODE"); err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && (pe.Code == "42P01" || pe.Code == "3F000") {
			return "", fmt.Errorf("%w: source.postgres.table: table %s.%s does not exist", ErrNotFound, schema, name)
		}
		return "", err
	}
	var id pgSnapID
	err := conn.QueryRow(ctx, `SELECT pg_export_snapshot(), pid, `+backendStart+` FROM pg_stat_activity WHERE pid = pg_backend_pid()`).Scan(&id.name, &id.pid, &id.start)
	if err != nil {
		return "", err
	}
	if _, err := parsePGSnapshot(id.String()); err != nil {
		return "", fmt.Errorf("the server exported a snapshot named %q, which this extractor does not know how to check", id.name)
	}
	return id.String(), nil
}

// beginPG starts a batch's read-only transaction, in the request's
// snapshot when it carries one.
func beginPG(ctx context.Context, pool *pgxpool.Pool) (pgx.Tx, error) {
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	if id := snapshotFrom(ctx); id != "" {
		if err := importSnapshot(ctx, tx, id); err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
			return nil, err
		}
	}
	return tx, nil
}

// importSnapshot makes tx see the job's snapshot; it must come first.
func importSnapshot(ctx context.Context, tx pgx.Tx, id string) error {
	sid, err := parsePGSnapshot(id)
	if err != nil {
		return err
	}
	// A literal: parsePGSnapshot let only hex digits, digits and dashes in.
	if _, err := tx.Exec(ctx, "SET TRANSACTION SNAPSHOT '"+sid.name+"'"); err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && (pe.Code == "22023" || pe.Code == "0A000") {
			return lostSnapshot(id, pe.Message)
		}
		return err
	}
	var alive bool
	err = tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND `+backendStart+` = $2)`, sid.pid, sid.start).Scan(&alive)
	if err != nil {
		return err
	}
	if !alive {
		return lostSnapshot(id, "the session that exported it has ended")
	}
	return nil
}

func lostSnapshot(id, why string) error {
	return fmt.Errorf("%w: snapshot: the job's source snapshot %s is lost (%s): the transaction that exported it ended (closed, or the extractor holding it restarted), so the job cannot go on consistently; start it over with a new snapshot", ErrPrecondition, id, why)
}

// appendValue appends one raw value of c. A value the wire cannot carry
// gets a placeholder slot (the caller marks it NULL) and a reject.
func appendValue(bld *batch.Builder, c pgCol, v []byte) *commonv1.Reject {
	if v == nil {
		bld.AppendNull()
		return nil
	}
	switch c.typ {
	case commonv1.ColumnType_COLUMN_TYPE_INT64:
		if len(v) != 8 {
			bld.AppendInt(0)
			return wireReject(c, v)
		}
		bld.AppendInt(int64(binary.BigEndian.Uint64(v)))
	case commonv1.ColumnType_COLUMN_TYPE_FLOAT64:
		if len(v) != 8 {
			bld.AppendFloat(0)
			return wireReject(c, v)
		}
		f := math.Float64frombits(binary.BigEndian.Uint64(v))
		if c.base == "float4" { // real, cast to float8 exactly: shown as its float32
			f = batch.SingleToDouble(float32(f))
		}
		bld.AppendFloat(f)
	case commonv1.ColumnType_COLUMN_TYPE_BOOL:
		if len(v) != 1 {
			bld.AppendBool(false)
			return wireReject(c, v)
		}
		bld.AppendBool(v[0] != 0)
	case commonv1.ColumnType_COLUMN_TYPE_TIMESTAMPTZ:
		if len(v) != 8 {
			bld.AppendInt(0)
			return wireReject(c, v)
		}
		us := int64(binary.BigEndian.Uint64(v))
		if us == math.MaxInt64 || us == math.MinInt64 {
			bld.AppendInt(0)
			return infinityReject(c, us > 0)
		}
		bld.AppendInt(us + pgEpochSeconds*1_000_000)
	case commonv1.ColumnType_COLUMN_TYPE_DATE:
		if len(v) != 4 {
			bld.AppendInt(0)
			return wireReject(c, v)
		}
		d := int32(binary.BigEndian.Uint32(v))
		if d == math.MaxInt32 || d == math.MinInt32 {
			bld.AppendInt(0)
			return infinityReject(c, d > 0)
		}
		bld.AppendInt(int64(d) + pgEpochDays)
	case commonv1.ColumnType_COLUMN_TYPE_BYTES:
		bld.AppendBytes(v)
	default:
		// TEXT and NUMERIC arrive as text. A SQL_ASCII database can hand
		// out bytes that are not UTF-8, which a proto string cannot carry.
		if !utf8.Valid(v) {
			bld.AppendBytes(nil)
			raw := cut(escapeInvalid(string(v)))
			return &commonv1.Reject{Stage: stageExtract, Rule: "encoding", Column: c.name,
				Reason: fmt.Sprintf("column %s: invalid UTF-8 in %s", c.name, raw), Raw: raw}
		}
		bld.AppendBytes(v)
	}
	return nil
}

func infinityReject(c pgCol, positive bool) *commonv1.Reject {
	raw := "-infinity"
	if positive {
		raw = "infinity"
	}
	return &commonv1.Reject{Stage: stageExtract, Rule: "infinity", Column: c.name, Raw: raw,
		Reason: fmt.Sprintf("column %s: %s value %s has no microsecond or day number", c.name, c.sourceType, raw)}
}

func wireReject(c pgCol, v []byte) *commonv1.Reject {
	return &commonv1.Reject{Stage: stageExtract, Rule: "wire_format", Column: c.name, Raw: fmt.Sprintf("%x", v),
		Reason: fmt.Sprintf("column %s: unexpected %d-byte binary value for %s", c.name, len(v), c.sourceType)}
}
