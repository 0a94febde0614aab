package load

import (
	"fmt"
	"strings"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"github.com/jackc/pgx/v5"
)

// Values a change left out (Column.unchanged: PostgreSQL leaves an
// unchanged TOASTed value out of the log; the slot is NULL). The target
// keeps the value it has: the lines of a range that leave a value out are
// not upserted but updated in place, each left-out column set to the
// target's own value (t.c), which PostgreSQL stores again without copying
// it (an unchanged TOAST pointer is kept as it is), and the others to the
// batch's. A line is known by its position in the COPY of the range: the
// temporary table numbers the rows of one COPY consecutively in line
// order, so _cutover_ord - min(_cutover_ord) is the line's offset (read on
// the server: a rolled-back savepoint does not give sequence values back).
// A line that leaves a value out and whose key has no target row (the
// full load quarantined it, say) loads nothing: the statement returns it,
// and it is quarantined (noRowToKeep). Both happen in the one upsert
// statement, in bulk and isolating mode alike.

// ruleNoRowToKeep is the quarantine rule of such a line.
const ruleNoRowToKeep = "unchanged_no_target_row"

// checkUnchanged refuses values left out of anything but a change batch:
// without ops there is no target row whose value the batch means.
func checkUnchanged(b *commonv1.Batch) error {
	if len(b.GetOps()) > 0 {
		return nil
	}
	for _, c := range b.GetColumns() {
		for i := range int(b.GetNumRows()) {
			if batch.IsUnchanged(c, i) {
				return fmt.Errorf("%w: batch seq %d: columns[%q].unchanged marks row %d, but only a change batch (ops) may leave a value out", ErrInvalidArgument, b.GetSeq(), c.GetName(), i)
			}
		}
	}
	return nil
}

// prepareKeep finds the columns that leave a value out in a line the
// current change batch sends and builds keepSQL for them.
func (l *loader) prepareKeep(b *commonv1.Batch) {
	l.keep = l.keep[:0]
	if l.change == nil || !l.upsert {
		return
	}
	for k, c := range b.GetColumns() {
		if len(c.GetUnchanged()) == 0 {
			continue
		}
		for _, i := range l.lines {
			if batch.IsUnchanged(c, int(i)) {
				l.keep = append(l.keep, k)
				break
			}
		}
	}
	if len(l.keep) > 0 {
		l.keepSQL = keepSQL(l.table, l.cols, l.keyCols, l.keep)
	}
}

// keepArgs returns the arguments of keepSQL for lines [lo, hi): job,
// table, then per kept column a bitmap of the lines that leave its value
// out, bit k for line lo+k; nil when no line of the range leaves one out
// (the plain upsert then does).
func (l *loader) keepArgs(b *commonv1.Batch, lo, hi int) []any {
	if len(l.keep) == 0 {
		return nil
	}
	args := []any{l.cfg.GetJobId(), l.cfg.GetTable()}
	found := false
	for _, k := range l.keep {
		c := b.GetColumns()[k]
		bm := make([]byte, (hi-lo+7)/8)
		for j := lo; j < hi; j++ {
			if batch.IsUnchanged(c, int(l.lines[j])) {
				bm[(j-lo)>>3] |= 1 << (uint(j-lo) & 7)
				found = true
			}
		}
		args = append(args, bm)
	}
	if !found {
		return nil
	}
	return args
}

// noRowToKeep is the reject of a row that leaves a value out when the
// target has no row with its key.
func (l *loader) noRowToKeep(b *commonv1.Batch, row int) *commonv1.Reject {
	var names []string
	for _, k := range l.keep {
		if c := b.GetColumns()[k]; batch.IsUnchanged(c, row) {
			names = append(names, c.GetName())
		}
	}
	var key []byte
	for k, name := range l.keyCols {
		for _, c := range b.GetColumns() {
			if c.GetName() == name {
				if k > 0 {
					key = append(key, ',')
				}
				key = batch.AppendText(append(append(key, name...), '='), c, row)
			}
		}
	}
	reason := fmt.Sprintf("column %s: the value was not in the change (an unchanged TOASTed value, which PostgreSQL leaves out of the log) and the target has no row %s to keep it from",
		names[0], clean(string(key)))
	if len(names) > 1 {
		reason = fmt.Sprintf("columns %s: the values were not in the change (unchanged TOASTed values, which PostgreSQL leaves out of the log) and the target has no row %s to keep them from",
			strings.Join(names, ", "), clean(string(key)))
	}
	return &commonv1.Reject{
		Row:    int32(row),
		Stage:  "load",
		Rule:   ruleNoRowToKeep,
		Column: names[0],
		Reason: reason,
		Raw:    batch.RowText(b, row),
	}
}

// keepSQL is upsertSQL for a range in which some lines leave values of
// the columns keep (indexes into cols) out ($1 job, $2 target table, then
// one bitmap per kept column: keepArgs). Those lines update their target
// row in place, keeping its values of the columns they leave out; the
// other lines upsert as usual; the before images cover both. The result
// is the offsets of the lines that leave a value out and have no target
// row (the update did not reach them): they loaded nothing.
func keepSQL(table string, cols, keyCols []string, keep []int) string {
	flags := make([]string, len(keep))
	names := make([]string, len(keep))
	kept := map[int]string{}
	for j, k := range keep {
		names[j] = fmt.Sprintf("_cutover_keep%d", j)
		flags[j] = fmt.Sprintf("get_bit($%d::bytea, u._cutover_line) = 1 AS %s", j+3, names[j])
		kept[k] = names[j]
	}
	anyKept := func(alias string) string {
		return "(" + alias + "." + strings.Join(names, " OR "+alias+".") + ")"
	}
	var sets, match, ret, kmatch []string
	for i, c := range cols {
		q := pgx.Identifier{c}.Sanitize()
		isKey := false
		for _, k := range keyCols {
			isKey = isKey || k == c
		}
		switch {
		case isKey:
			match = append(match, "t."+q+" = s."+q)
			ret = append(ret, "t."+q)
			kmatch = append(kmatch, "k."+q+" = s."+q)
		case kept[i] != "":
			sets = append(sets, fmt.Sprintf("%s = CASE WHEN s.%s THEN t.%s ELSE s.%s END", q, kept[i], q, q))
		default:
			sets = append(sets, q+" = s."+q)
		}
	}
	keys := idents(keyCols)
	with := fmt.Sprintf(`s AS (
  SELECT DISTINCT ON (%s) u.*, %s
  FROM (SELECT x.*, (x.%s - min(x.%s) OVER ())::int AS _cutover_line FROM %s x) u
  ORDER BY %s, u.%s DESC),
kept AS (
  UPDATE %s AS t SET %s
  FROM s WHERE %s AND %s
  RETURNING %s),
`, keys, strings.Join(flags, ", "), upsertOrd, upsertOrd, upsertTable, keys, upsertOrd,
		table, strings.Join(sets, ", "), anyKept("s"), strings.Join(match, " AND "), strings.Join(ret, ", "))
	// The lines the update did not reach: their key has no target row.
	query := fmt.Sprintf(`SELECT s._cutover_line FROM s WHERE %s AND NOT EXISTS (SELECT 1 FROM kept k WHERE %s)`,
		anyKept("s"), strings.Join(kmatch, " AND "))
	return upsertWithSQL(table, cols, keyCols, "s", "",
		fmt.Sprintf("s u WHERE NOT %s ORDER BY u.%s", anyKept("u"), upsertOrd), with, query)
}
