package load

import (
	"context"
	"fmt"

	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"github.com/jackc/pgx/v5"
)

// describeSQL lists a relation's columns in ordinal order. Domains are
// resolved to their base type so that a domain over int8 still loads as
// INT64; identity columns count as having a default.
const describeSQL = `
SELECT a.attname,
       format_type(a.atttypid, a.atttypmod),
       coalesce(bt.typname, t.typname),
       a.attnotnull OR coalesce(t.typnotnull, false),
       a.atthasdef OR a.attidentity <> '',
       CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype
WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
  AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
ORDER BY a.attnum`

const existsSQL = `
SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')`

// DescribeTarget returns the columns of a target table.
func (s *Service) DescribeTarget(ctx context.Context, req *loaderv1.DescribeTargetRequest) (*loaderv1.DescribeTargetResponse, error) {
	resp, err := s.describe(ctx, req)
	return resp, toStatus(err)
}

func (s *Service) describe(ctx context.Context, req *loaderv1.DescribeTargetRequest) (*loaderv1.DescribeTargetResponse, error) {
	if req.GetTable() == "" {
		return nil, fmt.Errorf("%w: table is required", ErrInvalidArgument)
	}
	t, schema, err := s.target(ctx, req.GetTarget())
	if err != nil {
		return nil, err
	}
	rows, err := t.pool.Query(ctx, describeSQL, schema, req.GetTable())
	if err != nil {
		return nil, t.dbErr("describe "+schema+"."+req.GetTable(), err)
	}
	defer rows.Close()
	resp := &loaderv1.DescribeTargetResponse{}
	for rows.Next() {
		var (
			col     loaderv1.TargetColumn
			typname string
			typmod  int32
		)
		if err := rows.Scan(&col.Name, &col.PgType, &typname, &col.NotNull, &col.HasDefault, &typmod); err != nil {
			return nil, t.dbErr("describe "+schema+"."+req.GetTable(), err)
		}
		col.Type = batch.FromPostgres(typname)
		col.MaxLength, col.Precision, col.Scale = typmodInfo(typname, typmod)
		resp.Columns = append(resp.Columns, &col)
	}
	if err := rows.Err(); err != nil {
		return nil, t.dbErr("describe "+schema+"."+req.GetTable(), err)
	}
	if len(resp.Columns) == 0 {
		// A table without columns is legal; tell it apart from no table.
		var n int
		if err := t.pool.QueryRow(ctx, existsSQL, schema, req.GetTable()).Scan(&n); err != nil {
			return nil, t.dbErr("describe "+schema+"."+req.GetTable(), err)
		}
		if n == 0 {
			return nil, fmt.Errorf("%w: table %s.%s", ErrNotFound, schema, req.GetTable())
		}
	}
	if resp.PrimaryKey, err = t.primaryKey(ctx, schema, req.GetTable()); err != nil {
		return nil, err
	}
	if req.GetCountRows() {
		tbl := pgx.Identifier{schema, req.GetTable()}.Sanitize()
		if err := t.pool.QueryRow(ctx, "SELECT count(*) FROM "+tbl).Scan(&resp.Rows); err != nil {
			return nil, t.dbErr("count the rows of "+schema+"."+req.GetTable(), err)
		}
	}
	return resp, nil
}

// typmodInfo decodes atttypmod: varchar(n)/char(n) store n+4, numeric(p,s)
// stores ((p << 16) | s) + 4 with s an 11-bit signed value (PostgreSQL 15).
func typmodInfo(typname string, typmod int32) (maxLen, precision, scale int32) {
	if typmod < 4 {
		return 0, 0, 0
	}
	switch typname {
	case "varchar", "bpchar":
		return typmod - 4, 0, 0
	case "numeric":
		m := typmod - 4
		return 0, (m >> 16) & 0xffff, ((m & 0x7ff) ^ 1024) - 1024
	}
	return 0, 0, 0
}

// primaryKeySQL lists a table's primary-key columns in key order.
const primaryKeySQL = `
SELECT a.attname
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
WHERE n.nspname = $1 AND c.relname = $2 AND i.indisprimary
ORDER BY k.ord`

// primaryKey returns the primary-key columns of a table, none when it has
// no primary key or does not exist.
func (t *target) primaryKey(ctx context.Context, schema, table string) ([]string, error) {
	rows, err := t.pool.Query(ctx, primaryKeySQL, schema, table)
	if err != nil {
		return nil, t.dbErr("read primary key of "+schema+"."+table, err)
	}
	cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, t.dbErr("read primary key of "+schema+"."+table, err)
	}
	return cols, nil
}
