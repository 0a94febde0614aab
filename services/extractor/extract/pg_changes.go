package extract

import (
	"context"
	"errors"
	"fmt"
	"strings"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Watermark sync of PostgreSQL tables (changes.go describes the position).
// Each read runs in one repeatable-read transaction, so the batch and the
// lag it reports agree. Watermark and key values travel as the server's
// own text (::text) and go back in as CAST($n::text AS <column type>), so
// they compare exactly as stored; a timestamptz text carries its offset,
// so it reads back the same instant whatever the session's time zone.

func (pgKind) readWatermark(ctx context.Context, s *Service, src *commonv1.SourceSpec, column, position string, size int) (*commonv1.Batch, int64, float64, error) {
	p, schema, name, err := s.pgTarget(src.GetPostgres())
	if err != nil {
		return nil, 0, 0, err
	}
	b, lagRows, lagSeconds, err := pgReadWatermark(ctx, p.pool, schema, name, column, position, size)
	if err != nil {
		return nil, 0, 0, pgErr(badText(err, "position", position), p, "read changes of "+schema+"."+name)
	}
	return b, lagRows, max(lagSeconds, 0), nil
}

func pgReadWatermark(ctx context.Context, pool *pgxpool.Pool, schema, name, column, position string, size int) (*commonv1.Batch, int64, float64, error) {
	tx, err := beginPGChanges(ctx, pool)
	if err != nil {
		return nil, 0, 0, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	t, err := loadTable(ctx, tx, schema, name)
	if err != nil {
		return nil, 0, 0, err
	}
	if err := t.needKeyForSync(); err != nil {
		return nil, 0, 0, err
	}
	wm, err := t.watermark(column)
	if err != nil {
		return nil, 0, 0, err
	}
	w := "src." + pgx.Identifier{wm.name}.Sanitize()
	if position == "" {
		var mark *string
		if err := tx.QueryRow(ctx, "SELECT max("+w+")::text FROM "+t.ident()+" AS src").Scan(&mark); err != nil {
			return nil, 0, 0, err
		}
		start := watermarkPosition{empty: true}
		if mark != nil {
			start = watermarkPosition{mark: *mark}
		}
		return &commonv1.Batch{Source: t.display(), Position: escapeInvalid(start.encode())}, 0, 0, nil
	}
	pos, err := parsePosition(position, len(t.pk))
	if err != nil {
		return nil, 0, 0, err
	}
	keys := t.keyCols()
	ks := make([]string, len(keys))
	names := make([]string, len(keys))
	for i, k := range keys {
		ks[i] = "src." + pgx.Identifier{k.name}.Sanitize()
		names[i] = k.name
	}
	var sb strings.Builder
	formats := selectList(&sb, t, ks)
	// The watermark's text comes last, after the columns: scan sees the
	// row without it (see markRows).
	formats = append(formats, pgx.TextFormatCode)
	from := " FROM " + t.ident() + " AS src"
	head := strings.TrimSuffix(sb.String(), from) + ", " + w + "::text" + from
	query, args := pgChangesQuery(head, w, *wm, ks, keys, pos, size)
	rows, err := tx.Query(ctx, query, append([]any{formats}, args...)...)
	if err != nil {
		return nil, 0, 0, err
	}
	mr := &markRows{Rows: rows, n: len(t.cols) + len(keys)}
	pb := newPGBatch(t, names, rowsOnly(size), "")
	if _, err := pb.scan(mr); err != nil {
		return nil, 0, 0, err
	}
	b, _ := pb.finish("")
	b.LastKey = ""
	if b.NumRows == 0 {
		b.Position = position
		return b, 0, 0, nil
	}
	last := watermarkPosition{mark: string(mr.mark), key: make([]string, len(keys))}
	for i, k := range pb.lastKey {
		last.key[i] = string(k)
	}
	b.Position = escapeInvalid(last.encode())
	b.Ops = upserts(int(b.NumRows))
	// The lag: the rows after the new position (capped), and the age of
	// the first of them when the watermark is a time.
	age := "0::float8"
	switch wm.base {
	case "timestamptz":
		age = "coalesce(extract(epoch FROM now() - min(x.w)), 0)::float8"
	case "timestamp":
		age = "coalesce(extract(epoch FROM localtimestamp - min(x.w)), 0)::float8"
	case "date":
		age = "coalesce((current_date - min(x.w)) * 86400, 0)::float8"
	}
	lq, largs := pgChangesQuery("SELECT "+w+" AS w FROM "+t.ident()+" AS src", w, *wm, ks, keys, last, maxLagCount)
	var lagRows int64
	var lagSeconds float64
	if err := tx.QueryRow(ctx, "SELECT count(*), "+age+" FROM ("+lq+") x", largs...).Scan(&lagRows, &lagSeconds); err != nil {
		return nil, 0, 0, err
	}
	return b, lagRows, lagSeconds, nil
}

// pgChangesQuery appends to head (a SELECT ... FROM t AS src) the rows
// after pos in (watermark, key) order, at most limit.
func pgChangesQuery(head, w string, wm pgCol, ks []string, keys []pgCol, pos watermarkPosition, limit int) (string, []any) {
	var sb strings.Builder
	sb.WriteString(head + " WHERE " + w + " IS NOT NULL")
	var args []any
	arg := func(v string, c pgCol) string {
		args = append(args, v)
		// The type comes from format_type, which quotes as needed.
		return fmt.Sprintf("CAST($%d::text AS %s)", len(args), c.sourceType)
	}
	if !pos.empty {
		m := arg(pos.mark, wm)
		sb.WriteString(" AND " + w + " >= " + m)
		if pos.key != nil {
			// A row comparison: the index on the watermark still gets the
			// range from its first column.
			rhs := []string{m}
			for i, k := range keys {
				rhs = append(rhs, arg(pos.key[i], k))
			}
			sb.WriteString(" AND (" + w + ", " + strings.Join(ks, ", ") + ") > (" + strings.Join(rhs, ", ") + ")")
		}
	}
	args = append(args, int64(limit))
	fmt.Fprintf(&sb, " ORDER BY %s, %s LIMIT $%d", w, strings.Join(ks, ", "), len(args))
	return sb.String(), args
}

// badText names the request field whose text the server could not take
// as a value of its column (data exceptions come only from the casts).
func badText(err error, field, text string) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && strings.HasPrefix(pe.Code, "22") {
		return invalid(field, "%q does not fit its column: %s", cut(text), pe.Message)
	}
	return err
}

// markRows hides the last value of each row (the watermark's text) from
// pgBatch.scan and keeps the latest one.
type markRows struct {
	pgx.Rows
	n    int
	mark []byte
}

func (r *markRows) RawValues() [][]byte {
	vals := r.Rows.RawValues()
	if len(vals) != r.n+1 {
		return vals // scan reports the count
	}
	// Raw values live until the next row: keep a copy.
	r.mark = append(r.mark[:0], vals[r.n]...)
	return vals[:r.n]
}

func (pgKind) readKeys(ctx context.Context, s *Service, src *commonv1.SourceSpec, after string, limit int) ([]string, bool, error) {
	p, schema, name, err := s.pgTarget(src.GetPostgres())
	if err != nil {
		return nil, false, err
	}
	keys, err := pgReadKeys(ctx, p.pool, schema, name, after, limit)
	if err != nil {
		return nil, false, pgErr(badText(err, "after", after), p, "read keys of "+schema+"."+name)
	}
	return keys, len(keys) < limit, nil
}

func pgReadKeys(ctx context.Context, pool *pgxpool.Pool, schema, name, after string, limit int) ([]string, error) {
	tx, err := beginPGChanges(ctx, pool)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	t, err := loadTable(ctx, tx, schema, name)
	if err != nil {
		return nil, err
	}
	if err := t.needKeyForSync(); err != nil {
		return nil, err
	}
	kc := t.keyCols()
	ks := make([]string, len(kc))
	sel := make([]string, len(kc))
	for i, k := range kc {
		ks[i] = "src." + pgx.Identifier{k.name}.Sanitize()
		sel[i] = ks[i] + "::text"
	}
	var sb strings.Builder
	sb.WriteString("SELECT " + strings.Join(sel, ", ") + " FROM " + t.ident() + " AS src")
	var args []any
	if after != "" {
		parts, err := splitKeyText("after", after, len(kc))
		if err != nil {
			return nil, err
		}
		rhs := make([]string, len(kc))
		for i, k := range kc {
			args = append(args, parts[i])
			rhs[i] = fmt.Sprintf("CAST($%d::text AS %s)", len(args), k.sourceType)
		}
		sb.WriteString(" WHERE (" + strings.Join(ks, ", ") + ") > (" + strings.Join(rhs, ", ") + ")")
	}
	args = append(args, int64(limit))
	fmt.Fprintf(&sb, " ORDER BY %s LIMIT $%d", strings.Join(ks, ", "), len(args))
	rows, err := tx.Query(ctx, sb.String(), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var keys []string
	var buf []byte
	for rows.Next() {
		buf = buf[:0]
		for i, v := range rows.RawValues() {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, v...)
		}
		keys = append(keys, escapeInvalid(string(buf)))
	}
	return keys, rows.Err()
}

// beginPGChanges starts a read-only repeatable-read transaction in a
// snapshot of its own: sync reads the source as it is now, never the full
// load's snapshot.
func beginPGChanges(ctx context.Context, pool *pgxpool.Pool) (pgx.Tx, error) {
	return pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
}

func (t *pgTable) needKeyForSync() error {
	if len(t.pk) == 0 {
		return fmt.Errorf("%w: source.postgres.table: table %s has no primary key; following it by a watermark needs one", ErrPrecondition, t.display())
	}
	return nil
}

// watermark returns the column a table is followed by, refusing one whose
// order is not the order of changes.
func (t *pgTable) watermark(column string) (*pgCol, error) {
	for i := range t.cols {
		c := &t.cols[i]
		if c.name != column {
			continue
		}
		switch {
		case c.typ == commonv1.ColumnType_COLUMN_TYPE_INT64, c.typ == commonv1.ColumnType_COLUMN_TYPE_DATE,
			c.typ == commonv1.ColumnType_COLUMN_TYPE_TIMESTAMPTZ,
			c.base == "numeric" && strings.HasSuffix(c.pgType, ",0)"):
			return c, nil
		}
		return nil, errSyncColumn(column, t.display(), fmt.Sprintf("is %s; a watermark must be an integer, a date or a time", c.sourceType))
	}
	return nil, errSyncColumn(column, t.display(), "is not a column")
}
