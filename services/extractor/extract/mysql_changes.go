package extract

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strings"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
)

// Watermark sync of MySQL and MariaDB tables (changes.go describes the
// position). Each read runs in one consistent snapshot, so the batch and
// the lag it reports agree.

func (mysqlKind) readWatermark(ctx context.Context, s *Service, src *commonv1.SourceSpec, column, position string, size int) (*commonv1.Batch, int64, float64, error) {
	spec := src.GetMysql()
	d, db, name, err := s.mysqlTarget(spec)
	if err != nil {
		return nil, 0, 0, err
	}
	var b *commonv1.Batch
	var lagRows int64
	var lagSeconds float64
	err = myReadTx(ctx, d.myDB, func(conn *sql.Conn) error {
		t, err := loadMySQLTable(ctx, conn, db, name, false)
		if err != nil {
			return err
		}
		if err := t.needKey(); err != nil {
			return err
		}
		wm, err := t.watermark(column)
		if err != nil {
			return err
		}
		if position == "" {
			start, err := myWatermarkStart(ctx, conn, t, wm)
			b = &commonv1.Batch{Source: t.display(), Position: start}
			return err
		}
		pos, err := parsePosition(position, len(t.pk))
		if err != nil {
			return err
		}
		query, args, err := myChangesQuery(t, wm, pos, "SELECT "+t.selectList()+", "+wm.sel, size)
		if err != nil {
			return err
		}
		rows, err := conn.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		dec := myDecoder{loc: d.loc, zeroNull: spec.GetZeroDates() == commonv1.ZeroDatePolicy_ZERO_DATE_POLICY_NULL}
		last := watermarkPosition{key: make([]string, len(t.pk))}
		// The watermark is selected once more, raw, after t's columns: a
		// column's select expression may not be its stored text.
		var mark sql.RawBytes
		b, _, err = scanMySQL(rows, t, &dec, size, []any{&mark}, func(vals []sql.RawBytes) {
			last.mark = string(myAppendKeyText(nil, *wm, mark))
			for k, ci := range t.pk {
				last.key[k] = string(myAppendKeyText(nil, t.cols[ci], vals[ci]))
			}
		})
		if err != nil {
			return err
		}
		if b.NumRows == 0 {
			b.Position = position
			return nil
		}
		b.Position = escapeInvalid(last.encode())
		b.Ops = upserts(int(b.NumRows))
		// The lag: the rows after the new position, and the age of the
		// first of them when the watermark is a time.
		age := "0"
		if wm.kind == myDatetime || wm.kind == myTimestamp || wm.kind == myDate {
			age = "coalesce(TIMESTAMPDIFF(MICROSECOND, MIN(x.w), NOW(6)), 0) / 1e6"
		}
		lq, largs, err := myChangesQuery(t, wm, last, "SELECT "+wm.sel+" AS w", maxLagCount)
		if err != nil {
			return err
		}
		return conn.QueryRowContext(ctx, "SELECT COUNT(*), "+age+" FROM ("+lq+") x", largs...).Scan(&lagRows, &lagSeconds)
	})
	if err != nil {
		return nil, 0, 0, mysqlErr(err, d, "read changes of "+db+"."+name)
	}
	return b, lagRows, max(lagSeconds, 0), nil
}

func (mysqlKind) readKeys(ctx context.Context, s *Service, src *commonv1.SourceSpec, after string, limit int) ([]string, bool, error) {
	d, db, name, err := s.mysqlTarget(src.GetMysql())
	if err != nil {
		return nil, false, err
	}
	var keys []string
	err = myReadTx(ctx, d.myDB, func(conn *sql.Conn) error {
		t, err := loadMySQLTable(ctx, conn, db, name, false)
		if err != nil {
			return err
		}
		if err := t.needKey(); err != nil {
			return err
		}
		kc := t.keyCols()
		var sb strings.Builder
		sb.WriteString("SELECT ")
		for i, c := range kc {
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString(c.sel)
		}
		sb.WriteString(" FROM " + t.ident())
		var args []any
		if after != "" {
			parts, err := splitKeyText("after", after, len(kc))
			if err != nil {
				return err
			}
			cond, a, err := myKeyCond(kc, "after", cursorText(toBytes(parts)), ">")
			if err != nil {
				return err
			}
			sb.WriteString(" WHERE " + cond)
			args = a
		}
		sb.WriteString(" ORDER BY " + t.keyOrder() + " LIMIT ?")
		args = append(args, int64(limit))
		rows, err := conn.QueryContext(ctx, sb.String(), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		vals := make([]sql.RawBytes, len(kc))
		dest := make([]any, len(kc))
		for i := range vals {
			dest[i] = &vals[i]
		}
		var buf []byte
		for rows.Next() {
			if err := rows.Scan(dest...); err != nil {
				return err
			}
			buf = buf[:0]
			for i, c := range kc {
				if i > 0 {
					buf = append(buf, ',')
				}
				buf = myAppendKeyText(buf, c, vals[i])
			}
			keys = append(keys, escapeInvalid(string(buf)))
		}
		return rows.Err()
	})
	if err != nil {
		return nil, false, mysqlErr(err, d, "read keys of "+db+"."+name)
	}
	return keys, len(keys) < limit, nil
}

// myReadTx runs fn on one connection inside a read-only consistent
// snapshot, and never hands back a connection with a transaction open.
func myReadTx(ctx context.Context, d *myDB, fn func(conn *sql.Conn) error) error {
	conn, err := d.db.Conn(ctx)
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
				_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			}
		}
		_ = conn.Close()
	}()
	if _, err := conn.ExecContext(ctx, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"); err != nil {
		return err
	}
	if err := fn(conn); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return err
	}
	committed = true
	return nil
}

// watermark returns the column a table is followed by, refusing one whose
// order is not the order of changes.
func (t *myTable) watermark(column string) (*myCol, error) {
	for i := range t.cols {
		c := &t.cols[i]
		if c.name != column {
			continue
		}
		switch {
		case c.kind == myInt, c.kind == myNumeric && c.isIntegral, c.kind == myDate, c.kind == myDatetime, c.kind == myTimestamp:
			return c, nil
		}
		return nil, errSyncColumn(column, t.display(), fmt.Sprintf("is %s; a watermark must be an integer, a date or a time", c.colType))
	}
	return nil, errSyncColumn(column, t.display(), "is not a column")
}

func (t *myTable) selectList() string {
	sel := make([]string, len(t.cols))
	for i, c := range t.cols {
		sel[i] = c.sel
	}
	return strings.Join(sel, ", ")
}

func (t *myTable) keyOrder() string {
	var names []string
	for _, c := range t.keyCols() {
		names = append(names, myIdent(c.name))
	}
	return strings.Join(names, ", ")
}

// myWatermarkStart is the position to follow from: the largest watermark
// now, or [] when no row has one.
func myWatermarkStart(ctx context.Context, conn *sql.Conn, t *myTable, wm *myCol) (string, error) {
	var mark []byte
	// An argument sends the query through the binary protocol, as reads do.
	if err := conn.QueryRowContext(ctx, "SELECT MAX("+wm.sel+") FROM "+t.ident()+" WHERE ?", 1).Scan(&mark); err != nil {
		return "", err
	}
	if mark == nil {
		return watermarkPosition{empty: true}.encode(), nil
	}
	return escapeInvalid(watermarkPosition{mark: string(myAppendKeyText(nil, *wm, mark))}.encode()), nil
}

// myChangesQuery selects (head) the rows after pos in (watermark, key)
// order, at most limit.
func myChangesQuery(t *myTable, wm *myCol, pos watermarkPosition, head string, limit int) (string, []any, error) {
	w := myIdent(wm.name)
	var sb strings.Builder
	sb.WriteString(head + " FROM " + t.ident() + " WHERE " + w + " IS NOT NULL")
	var args []any
	if !pos.empty {
		m, err := myKeyArg(*wm, pos.mark)
		if err != nil {
			return "", nil, invalid("position", "%q is not a value of watermark column %s (%s)", cut(pos.mark), wm.name, wm.colType)
		}
		ph := myKeyPlaceholder(*wm)
		if pos.key == nil {
			sb.WriteString(" AND " + w + " >= " + ph)
			args = append(args, m)
		} else {
			cond, kargs, err := myKeyCond(t.keyCols(), "position", cursorText(toBytes(pos.key)), ">")
			if err != nil {
				return "", nil, err
			}
			// The first term gives the index on the watermark a range.
			sb.WriteString(" AND " + w + " >= " + ph + " AND (" + w + " > " + ph + " OR (" + w + " = " + ph + " AND " + cond + "))")
			args = append(append(args, m, m, m), kargs...)
		}
	}
	sb.WriteString(" ORDER BY " + w + ", " + t.keyOrder() + " LIMIT ?")
	return sb.String(), append(args, int64(limit)), nil
}

func toBytes(parts []string) [][]byte {
	out := make([][]byte, len(parts))
	for i, p := range parts {
		out[i] = []byte(p)
	}
	return out
}
