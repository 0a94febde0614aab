package load

import (
	"context"
	"fmt"
	"strings"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"github.com/jackc/pgx/v5"
)

// Change batches (sync after the full load): Batch.ops says per row 'u'
// (insert or update by primary key) or 'd' (delete by primary key). One
// batch is one transaction, like any other: the deletes, the upserts, the
// before images of every row they change (so RollbackJob still restores
// the target as it was before the job) and the ledger row with the
// batch's source position. Within a batch the last change of a key wins,
// as if the changes were applied one by one; the earlier ones count as
// loaded (applied, then overwritten).

// changeSet is what a change batch does, row by row.
type changeSet struct {
	dels       []byte // rows deleted
	skipU      []byte // rows the upsert leaves out: rejected, deletes, superseded
	upserts    int
	deletes    int64
	superseded int64
}

// planChanges checks a change batch and decides what each row does.
func (l *loader) planChanges(b *commonv1.Batch, rejected []byte) (*changeSet, error) {
	ops := b.GetOps()
	if len(ops) != int(b.GetNumRows()) {
		return nil, fmt.Errorf("%w: batch seq %d: ops has %d entries for %d rows", ErrInvalidArgument, b.GetSeq(), len(ops), b.GetNumRows())
	}
	if l.stage != "" || len(l.keyCols) == 0 {
		return nil, fmt.Errorf("%w: batch seq %d: change batches need a target table with a primary key, loaded directly (not staged); %s is not", ErrInvalidArgument, b.GetSeq(), l.table)
	}
	keys := make([]*commonv1.Column, len(l.keyCols))
	for k, name := range l.keyCols {
		for _, c := range b.GetColumns() {
			if c.GetName() == name {
				keys[k] = c
			}
		}
		if keys[k] == nil {
			return nil, fmt.Errorf("%w: batch seq %d: change batch has no primary-key column %q of %s", ErrInvalidArgument, b.GetSeq(), name, l.table)
		}
	}
	cs := &changeSet{}
	last := map[string]int{}
	var key []byte
	for i, op := range ops {
		if op != 'u' && op != 'd' {
			return nil, fmt.Errorf("%w: batch seq %d: ops[%d] is %q, want 'u' or 'd'", ErrInvalidArgument, b.GetSeq(), i, op)
		}
		if batch.Bit(rejected, i) {
			continue
		}
		key = key[:0]
		for k, c := range keys {
			if batch.IsNull(c, i) {
				return nil, fmt.Errorf("%w: batch seq %d: row %d (%s): primary-key column %s is NULL", ErrInvalidArgument, b.GetSeq(), i, batch.SourceRef(b, i), l.keyCols[k])
			}
			key = batch.AppendText(append(key, 0), c, i)
		}
		if j, ok := last[string(key)]; ok {
			cs.skipU = batch.SetBit(cs.skipU, j)
			cs.dels = clearBit(cs.dels, j)
			cs.superseded++
		}
		last[string(key)] = i
		if op == 'd' {
			cs.dels = batch.SetBit(cs.dels, i)
		}
	}
	for i, op := range ops {
		switch {
		case batch.Bit(rejected, i):
			cs.skipU = batch.SetBit(cs.skipU, i)
		case op == 'd' && batch.Bit(cs.dels, i):
			cs.skipU = batch.SetBit(cs.skipU, i)
			cs.deletes++
		case !batch.Bit(cs.skipU, i):
			cs.upserts++
		}
	}
	return cs, nil
}

func clearBit(bm []byte, i int) []byte {
	if i/8 < len(bm) {
		bm[i/8] &^= 1 << (i % 8)
	}
	return bm
}

// applyDeletes deletes the batch's delete rows by key in tx, keeping the
// before image of each row it removes. The keys go by COPY into the
// batch's temporary table, which is dropped again for the upserts.
func (l *loader) applyDeletes(ctx context.Context, tx pgx.Tx, b *commonv1.Batch, cs *changeSet) error {
	if cs.deletes == 0 {
		return nil
	}
	op := fmt.Sprintf("batch seq %d: delete from %s", b.GetSeq(), l.table)
	skip := make([]byte, (int(b.GetNumRows())+7)/8)
	for i := range skip {
		skip[i] = 0xff
		if i < len(cs.dels) {
			skip[i] &^= cs.dels[i]
		}
	}
	if err := l.upsertTemp(ctx, tx, b); err != nil {
		return err
	}
	l.prepareSQL(b)
	l.enc.encode(b, skip)
	l.rd.b = l.enc.span(0, len(l.enc.lines))
	if _, err := tx.Conn().PgConn().CopyFrom(ctx, &l.rd, string(l.sql)); err != nil {
		return l.t.dbErr(op, err)
	}
	if _, err := tx.Exec(ctx, deleteSQL(l.table, l.keyCols), l.cfg.GetJobId(), l.cfg.GetTable()); err != nil {
		return l.t.dbErr(op, err)
	}
	if _, err := tx.Exec(ctx, "DROP TABLE "+upsertTable); err != nil {
		return l.t.dbErr(op, err)
	}
	return nil
}

// deleteSQL deletes the rows whose keys are in the temporary table ($1
// job, $2 target table as named in the bookkeeping), keeping their before
// images; the first image of a key wins, as with upserts.
func deleteSQL(table string, keyCols []string) string {
	tkeys := make([]string, len(keyCols))
	for i, k := range keyCols {
		tkeys[i] = "t." + pgx.Identifier{k}.Sanitize()
	}
	match := fmt.Sprintf("(%s) IN (SELECT %s FROM %s)", strings.Join(tkeys, ", "), idents(keyCols), upsertTable)
	return fmt.Sprintf(`WITH img AS (
  INSERT INTO cutover.before_images (job_id, target_table, key, row)
  SELECT $1, $2, %s, to_jsonb(t) FROM %s t WHERE %s
  ON CONFLICT DO NOTHING)
DELETE FROM %s t WHERE %s`, keyExpr("t", keyCols), table, match, table, match)
}

// sealSQL gives every key the job's full load inserted (its lineage) a
// before image without a row, before the first change batch touches the
// table: a row the job inserted and the sync then updated or deleted is
// removed by RollbackJob, not restored to what the full load wrote.
var sealSQL = `INSERT INTO cutover.before_images (job_id, target_table, key, row)
SELECT DISTINCT $1, $2, ` + strings.ReplaceAll(lineageUnescapeSQL, "r.ref", "r.key") + `, NULL::jsonb
FROM cutover.lineage l ` + lineageEntries + `
WHERE l.job_id = $1 AND l.target_table = $2 AND r.key <> ''
ON CONFLICT DO NOTHING`
