package load

import (
	"context"
	"fmt"
	"strings"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"github.com/jackc/pgx/v5"
)

// Upsert (LoadConfig.write_mode): a batch is COPYed into a temporary table,
// then, in the batch's transaction, the target rows it is about to change
// are kept in cutover.before_images and the rows go into the target with
// INSERT … ON CONFLICT (primary key) DO UPDATE. A key the job inserts gets
// an image with row NULL, so that a later update of the same key by the
// same job does not pass for a row that was there before. The first image
// of a key wins: Rollback restores the row as it was before the job.

// upsertTable is the batch's temporary table (dropped at commit).
const upsertTable = "pg_temp._cutover_upsert"

// upsertOrd numbers the temporary table's rows in COPY order: of two rows
// with one key in a batch the later one wins, as if loaded one by one.
const upsertOrd = "_cutover_ord"

// startUpsert checks that the table can be upserted into: a primary key is
// how a row finds the row it replaces.
func (l *loader) startUpsert(ctx context.Context, schema string) error {
	table := l.cfg.GetTable()
	if l.stage != "" {
		keys, err := l.t.primaryKey(ctx, schema, table)
		if err != nil {
			return err
		}
		if len(keys) == 0 {
			return fmt.Errorf("%w: write_mode upsert: target table %s.%s has no primary key", ErrInvalidArgument, schema, table)
		}
		// FinalizeStaged upserts the survivors: tell it so.
		if _, err := l.t.pool.Exec(ctx, `INSERT INTO cutover.upserts (job_id, target_table) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
			l.cfg.GetJobId(), table); err != nil {
			return l.t.dbErr("record upsert of "+schema+"."+table, err)
		}
		return nil
	}
	if len(l.keyCols) == 0 {
		return fmt.Errorf("%w: write_mode upsert: target table %s.%s has no primary key", ErrInvalidArgument, schema, table)
	}
	l.upsert = true
	return nil
}

// upsertTemp creates the batch's temporary table with the batch's columns
// as typed in the target, without the target's constraints: the target
// checks them when the rows reach it.
func (l *loader) upsertTemp(ctx context.Context, tx pgx.Tx, b *commonv1.Batch) error {
	for _, k := range l.keyCols {
		found := false
		for _, c := range b.GetColumns() {
			found = found || c.GetName() == k
		}
		if !found {
			return fmt.Errorf("%w: batch seq %d: write_mode upsert needs primary-key column %q of %s in every batch", ErrInvalidArgument, b.GetSeq(), k, l.table)
		}
	}
	sel := make([]string, len(b.GetColumns()))
	for i, c := range b.GetColumns() {
		sel[i] = pgx.Identifier{c.GetName()}.Sanitize()
	}
	sql := fmt.Sprintf(`CREATE TEMP TABLE _cutover_upsert ON COMMIT DROP AS SELECT %s FROM %s WITH NO DATA;
ALTER TABLE %s ADD COLUMN %s bigint GENERATED ALWAYS AS IDENTITY`, strings.Join(sel, ", "), l.table, upsertTable, upsertOrd)
	if _, err := tx.Exec(ctx, sql); err != nil {
		return l.t.dbErr(fmt.Sprintf("batch seq %d: temporary table for %s", b.GetSeq(), l.table), err)
	}
	return nil
}

// write sends lines [lo, hi): straight into the table, or for an upsert
// into the temporary table and from there into the target. It returns the
// rows loaded and the rows it set aside (a value left out of the change
// and no target row to keep it from: keepSQL).
func (l *loader) write(ctx context.Context, tx pgx.Tx, b *commonv1.Batch, lo, hi int) (int64, []*commonv1.Reject, error) {
	tag, err := l.copy(ctx, tx.Conn().PgConn(), b, lo, hi)
	if err != nil || !l.upsert {
		return tag.RowsAffected(), nil, err
	}
	var pb pgx.Batch
	var missing []int32
	if args := l.keepArgs(b, lo, hi); args != nil {
		pb.Queue(l.keepSQL, args...).Query(func(rows pgx.Rows) (err error) {
			missing, err = pgx.CollectRows(rows, pgx.RowTo[int32])
			return err
		})
	} else {
		pb.Queue(l.upSQL, l.cfg.GetJobId(), l.cfg.GetTable())
	}
	pb.Queue("DELETE FROM " + upsertTable) // the isolating path sends several ranges
	if err := tx.SendBatch(ctx, &pb).Close(); err != nil {
		return 0, nil, err
	}
	var rejects []*commonv1.Reject
	for _, k := range missing {
		if k < 0 || int(k) >= hi-lo {
			return 0, nil, fmt.Errorf("batch seq %d: kept-value upsert into %s named line %d of %d", b.GetSeq(), l.table, k, hi-lo)
		}
		rejects = append(rejects, l.noRowToKeep(b, int(l.lines[lo+int(k)])))
	}
	return tag.RowsAffected() - int64(len(missing)), rejects, nil
}

// keyExpr renders the primary key of the row alias as the lineage does:
// "id=5", "a=1,b=x".
func keyExpr(alias string, keyCols []string) string {
	if len(keyCols) == 0 {
		return "''"
	}
	parts := make([]string, len(keyCols))
	for i, k := range keyCols {
		parts[i] = fmt.Sprintf("%s || %s.%s::text", quoteLit(k+"="), alias, pgx.Identifier{k}.Sanitize())
	}
	return strings.Join(parts, " || ',' || ")
}

// upsertSQL builds the statement that keeps the before images of the rows
// in the temporary table and upserts them into table ($1 job, $2 target
// table as named in the bookkeeping). Every CTE sees the target as it was
// before the statement, so img holds the rows as they were.
func upsertSQL(table string, cols, keyCols []string) string {
	return upsertFromSQL(table, cols, keyCols, upsertTable, "", fmt.Sprintf(
		"(SELECT DISTINCT ON (%s) * FROM %s ORDER BY %s, %s DESC) u ORDER BY u.%s",
		idents(keyCols), upsertTable, idents(keyCols), upsertOrd, upsertOrd))
}

// upsertFromSQL is upsertSQL over any row source: src is the relation the
// keys are read from (alias-free), from the FROM clause of the rows to
// insert (alias u), overriding "" or " OVERRIDING SYSTEM VALUE".
func upsertFromSQL(table string, cols, keyCols []string, src, overriding, from string) string {
	return upsertWithSQL(table, cols, keyCols, src, overriding, from, "", "")
}

// upsertWithSQL is upsertFromSQL with more: with holds CTEs that come
// first (each followed by ",\n"), and a non-empty query replaces the
// statement's result (the images of new keys then go in a CTE).
func upsertWithSQL(table string, cols, keyCols []string, src, overriding, from, with, query string) string {
	ucols := make([]string, len(cols))
	var sets []string
	for i, c := range cols {
		q := pgx.Identifier{c}.Sanitize()
		ucols[i] = "u." + q
		isKey := false
		for _, k := range keyCols {
			isKey = isKey || k == c
		}
		if !isKey {
			sets = append(sets, q+" = EXCLUDED."+q)
		}
	}
	onConflict := "DO NOTHING"
	if len(sets) > 0 {
		onConflict = "DO UPDATE SET " + strings.Join(sets, ", ")
	}
	keys := idents(keyCols)
	tkeys := make([]string, len(keyCols))
	for i, k := range keyCols {
		tkeys[i] = "t." + pgx.Identifier{k}.Sanitize()
	}
	fresh := `INSERT INTO cutover.before_images (job_id, target_table, key, row)
SELECT $1, $2, key, NULL FROM up WHERE ins
ON CONFLICT DO NOTHING`
	if query != "" {
		fresh = ",\nfresh AS (\n" + fresh + ")\n" + query
	} else {
		fresh = "\n" + fresh
	}
	return fmt.Sprintf(`WITH %simg AS (
  INSERT INTO cutover.before_images (job_id, target_table, key, row)
  SELECT $1, $2, %s, to_jsonb(t) FROM %s t WHERE (%s) IN (SELECT %s FROM %s)
  ON CONFLICT DO NOTHING),
up AS (
  INSERT INTO %s AS t (%s)%s SELECT %s FROM %s
  ON CONFLICT (%s) %s
  RETURNING t.xmax = 0 AS ins, %s AS key)%s`,
		with,
		keyExpr("t", keyCols), table, strings.Join(tkeys, ", "), keys, src,
		table, idents(cols), overriding, strings.Join(ucols, ", "), from,
		keys, onConflict,
		keyExpr("t", keyCols), fresh)
}
