package extract

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net"
	"strconv"
	"strings"
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
}

// pgCol is one source column.
type pgCol struct {
	name       string
	sourceType string // format_type, e.g. "numeric(12,2)"
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
}

func (t *pgTable) display() string { return t.schema + "." + t.name }

func (t *pgTable) ident() string { return pgx.Identifier{t.schema, t.name}.Sanitize() }

// mapType maps a PostgreSQL base type name to a wire column type.
func mapType(base string) commonv1.ColumnType {
	switch base {
	case "int2", "int4", "int8":
		return commonv1.ColumnType_COLUMN_TYPE_INT64
	case "float4", "float8":
		return commonv1.ColumnType_COLUMN_TYPE_FLOAT64
	case "numeric":
		return commonv1.ColumnType_COLUMN_TYPE_NUMERIC
	case "bool":
		return commonv1.ColumnType_COLUMN_TYPE_BOOL
	case "timestamptz", "timestamp":
		return commonv1.ColumnType_COLUMN_TYPE_TIMESTAMPTZ
	case "date":
		return commonv1.ColumnType_COLUMN_TYPE_DATE
	case "bytea":
		return commonv1.ColumnType_COLUMN_TYPE_BYTES
	}
	return commonv1.ColumnType_COLUMN_TYPE_TEXT
}

// pgTarget resolves the spec to a pool and a schema/table name.
func (s *Service) pgTarget(spec *commonv1.PostgresSource) (*pgPool, string, string, error) {
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
	return p, schema, spec.GetTable(), nil
}

// querier is what catalog lookups need: a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

const relSQL = `SELECT c.oid, GREATEST(c.reltuples, 0)::int8
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')`

const colsSQL = `SELECT a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), bt.typname::text, NOT a.attnotnull,
  COALESCE((SELECT k.ord FROM pg_catalog.pg_index i, unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
            WHERE i.indrelid = a.attrelid AND i.indisprimary AND k.attnum = a.attnum), 0)::int4
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
JOIN pg_catalog.pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`

func loadTable(ctx context.Context, q querier, schema, name string) (*pgTable, error) {
	t := &pgTable{schema: schema, name: name}
	var oid uint32
	if err := q.QueryRow(ctx, relSQL, schema, name).Scan(&oid, &t.reltuples); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("%w: source.postgres.table: table %s does not exist", ErrNotFound, t.display())
		}
		return nil, err
	}
	rows, err := q.Query(ctx, colsSQL, oid)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var c pgCol
		if err := rows.Scan(&c.name, &c.sourceType, &c.base, &c.nullable, &c.pkPos); err != nil {
			return nil, err
		}
		c.typ = mapType(c.base)
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
func pgErr(err error, p *pgPool, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrInvalid) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrPrecondition) || errors.Is(err, ErrUnavailable) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
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
	var ce *pgconn.ConnectError
	var ne net.Error
	if errors.As(err, &ce) || errors.As(err, &ne) || pgconn.Timeout(err) {
		return fmt.Errorf("%w: %s: %s", ErrUnavailable, what, msg)
	}
	return fmt.Errorf("%s: %s", what, msg)
}

// scrub removes a password from an error text, in case a driver echoes it.
func scrub(s, password string) string {
	if password == "" {
		return s
	}
	return strings.ReplaceAll(s, password, "xxxxx")
}

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
	for _, c := range t.cols {
		// PostgreSQL to PostgreSQL: the source type holds every value.
		resp.Columns = append(resp.Columns, &commonv1.SourceColumn{Name: c.name, SourceType: c.sourceType, Type: c.typ, Nullable: c.nullable, PgType: c.sourceType})
	}
	for _, i := range t.pk {
		resp.PrimaryKey = append(resp.PrimaryKey, t.cols[i].name)
	}
	if resp.ForeignKeys, err = foreignKeysPG(ctx, p.pool, schema, name); err != nil {
		return nil, pgErr(err, p, "describe foreign keys of "+schema+"."+name)
	}
	return resp, nil
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

// keyColumn returns the single primary key column or FailedPrecondition.
func (t *pgTable) keyColumn() (pgCol, error) {
	if len(t.pk) != 1 {
		return pgCol{}, fmt.Errorf("%w: source.postgres.table: table %s needs a single-column primary key, it has %d key columns", ErrPrecondition, t.display(), len(t.pk))
	}
	return t.cols[t.pk[0]], nil
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
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	t, err := loadTable(ctx, tx, schema, name)
	if err != nil {
		return nil, err
	}
	key, err := t.keyColumn()
	if err != nil {
		return nil, err
	}
	whole := []*commonv1.KeyRange{{}}
	if n <= 1 || key.typ != commonv1.ColumnType_COLUMN_TYPE_INT64 {
		return whole, nil
	}
	k := pgx.Identifier{key.name}.Sanitize()
	var lo, hi *int64
	if err := tx.QueryRow(ctx, "SELECT min("+k+")::int8, max("+k+")::int8 FROM "+t.ident()).Scan(&lo, &hi); err != nil {
		return nil, err
	}
	if lo == nil || hi == nil {
		return whole, nil
	}
	return splitRange(*lo, *hi, n), nil
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

func (s *Service) readPG(ctx context.Context, spec *commonv1.PostgresSource, kr *commonv1.KeyRange, cursor string, size int) (*commonv1.Batch, bool, error) {
	p, schema, name, err := s.pgTarget(spec)
	if err != nil {
		return nil, false, err
	}
	b, done, err := readTable(ctx, p.pool, schema, name, kr, cursor, size)
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

// readQuery builds the keyset query of one batch and its arguments.
func readQuery(t *pgTable, key pgCol, kr *commonv1.KeyRange, cursor string, size int) (string, []any) {
	// Qualified: the output columns carry the same names as the inputs.
	k := "src." + pgx.Identifier{key.name}.Sanitize()
	formats := make(pgx.QueryResultFormats, 0, len(t.cols)+1)
	formats = append(formats, pgx.TextFormatCode)
	var sb strings.Builder
	sb.WriteString("SELECT ")
	sb.WriteString(k)
	sb.WriteString("::text")
	for _, c := range t.cols {
		e, f := selectExpr(c)
		sb.WriteString(", ")
		sb.WriteString(e)
		formats = append(formats, f)
	}
	sb.WriteString(" FROM ")
	sb.WriteString(t.ident())
	sb.WriteString(" AS src")
	args := []any{formats}
	cond := func(op, v string) {
		if len(args) == 1 {
			sb.WriteString(" WHERE ")
		} else {
			sb.WriteString(" AND ")
		}
		args = append(args, v)
		// The key type comes from format_type, which quotes as needed.
		fmt.Fprintf(&sb, "%s %s CAST($%d::text AS %s)", k, op, len(args)-1, key.sourceType)
	}
	if cursor != "" {
		cond(">", cursor)
	}
	if kr.GetLower() != "" {
		cond(">", kr.GetLower())
	}
	if kr.GetUpper() != "" {
		cond("<=", kr.GetUpper())
	}
	args = append(args, int64(size))
	fmt.Fprintf(&sb, " ORDER BY %s LIMIT $%d", k, len(args)-1)
	return sb.String(), args
}

const (
	// Seconds between the Unix epoch and PostgreSQL's 2000-01-01 epoch.
	pgEpochSeconds = 946684800
	pgEpochDays    = 10957
)

func readTable(ctx context.Context, pool *pgxpool.Pool, schema, name string, kr *commonv1.KeyRange, cursor string, size int) (*commonv1.Batch, bool, error) {
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, false, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	t, err := loadTable(ctx, tx, schema, name)
	if err != nil {
		return nil, false, err
	}
	key, err := t.keyColumn()
	if err != nil {
		return nil, false, err
	}
	sql, args := readQuery(t, key, kr, cursor, size)
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()

	capRows := min(size, 1<<14)
	cols := make([]*batch.Builder, len(t.cols))
	for i, c := range t.cols {
		cols[i] = batch.NewBuilder(c.name, c.typ, capRows)
	}
	refs := batch.NewBuilder("source_ref", textType, capRows)
	b := &commonv1.Batch{Source: t.display()}
	refPrefix := key.name + "="
	refBuf := make([]byte, 0, 64)
	last := cursor
	var lastKey []byte
	n := 0
	for rows.Next() {
		vals := rows.RawValues()
		if len(vals) != len(t.cols)+1 {
			return nil, false, fmt.Errorf("got %d values for %d columns", len(vals), len(t.cols)+1)
		}
		for i, c := range t.cols {
			if rej := appendValue(cols[i], c, vals[i+1]); rej != nil {
				cols[i].Column().Nulls = batch.SetBit(cols[i].Column().Nulls, cols[i].Len()-1)
				rej.Row = int32(n)
				b.Rejects = append(b.Rejects, rej)
			}
		}
		refBuf = append(append(refBuf[:0], refPrefix...), vals[0]...)
		refs.AppendBytes(refBuf)
		// Raw values live until the next row: keep a copy of the key.
		lastKey = append(lastKey[:0], vals[0]...)
		n++
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	if n > 0 {
		last = string(lastKey)
	}
	b.NumRows = int32(n)
	b.Columns = make([]*commonv1.Column, len(cols))
	for i, c := range cols {
		b.Columns[i] = c.Column()
	}
	b.SourceRefs = refs.Column()
	b.LastKey = escapeInvalid(last)
	return b, n < size, nil
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
		bld.AppendFloat(math.Float64frombits(binary.BigEndian.Uint64(v)))
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
