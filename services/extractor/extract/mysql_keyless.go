package extract

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"math"
	"strconv"
	"strings"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
)

// A MySQL or MariaDB table without a primary key is read in one ordered
// pass: one partition, one consistent snapshot (START TRANSACTION WITH
// CONSISTENT SNAPSHOT, READ ONLY), one query ordered by every column. The
// order is total up to rows that are identical as read, which are
// interchangeable, so the pass gives the same sequence of rows every time
// the table holds the same rows, and batches are cut from it as from a
// keyed read (limits.go): by rows and bytes, from the cursor on.
//
// The cursor is the number of rows of the pass before the batch, and a
// row's source reference its place in the pass ("row 17"). A read from a
// cursor, a retried or a resumed partition, starts a new transaction, runs
// the ordered query again and skips to the cursor (OFFSET): the loader's
// ledger holds the batches before it, so no row loads twice, provided the
// table has not changed in between. MySQL cannot share one snapshot
// between transactions, so a keyless table must not change during the
// job; following it (sync) is refused, since changes apply by key.
//
// The sort is the server's (a filesort of the whole table, spilling to
// tmpdir for a large one). Strings are ordered by their bytes, not their
// collation, so 'a' and 'A' or 'a' and 'a ' never tie; the server compares
// only the first max_sort_length bytes of a string, so a column whose
// values may be longer also sorts by the SHA-256 of each value (two
// different values tie only if their hashes collide).
//
// StreamBatches reads a whole partition through one pass (myPass): the
// query runs once and its rows are cut into batches as they stream.
// ReadBatch reads one batch in a transaction of its own, by chunked
// queries from the cursor's OFFSET, as a keyed read does from its key.

// passCursor reads the cursor of a keyless pass: the rows before the batch.
func passCursor(field, c string) (int64, error) {
	if c == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(c, 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != c {
		return 0, invalid(field, "%q is not a row count: a table without primary key is read in one ordered pass, whose cursor is the rows read before the batch", cut(c))
	}
	return n, nil
}

// checkPassRange refuses a range on a keyless table: it is one partition.
func checkPassRange(t *myTable, kr *commonv1.KeyRange) error {
	if kr.GetLower() != "" || kr.GetUpper() != "" {
		return invalid("range", "table %s has no primary key, so it is read as one partition with an empty range", t.display())
	}
	return nil
}

// myPassOrder is the ORDER BY list of a keyless pass; maxSort is the
// session's max_sort_length.
func myPassOrder(t *myTable, maxSort int64) string {
	var sb strings.Builder
	for i := range t.cols {
		c := &t.cols[i]
		if i > 0 {
			sb.WriteString(", ")
		}
		expr, long := myPassSortKey(c, maxSort)
		sb.WriteString(expr)
		if long {
			sb.WriteString(", SHA2(")
			sb.WriteString(expr)
			sb.WriteString(", 256)")
		}
	}
	return sb.String()
}

// myPassSortKey is the expression a column sorts by in a keyless pass and
// whether its values may be longer than maxSort bytes. Numbers, temporal
// values, enums and sets sort natively: two of them are equal only when
// they read the same. Binary strings sort by their bytes; text sorts by
// the bytes of what is read, not by its collation.
func myPassSortKey(c *myCol, maxSort int64) (string, bool) {
	col := myIdent(c.name)
	dt := strings.ToLower(c.dataType)
	switch c.kind {
	case myInt, myBool, myBit1, myBits, myNumeric, myFloat32, myFloat64, myDate, myDatetime, myTimestamp:
		return col, false
	case myBytes:
		return col, myMaxBytes(dt, c.precision) > maxSort
	}
	switch dt {
	case "time", "enum", "set":
		return col, false
	case "json":
		// MySQL's JSON compares as JSON (1 and 1.0 are equal): sort by
		// its text.
		return "CAST(CAST(" + col + " AS CHAR CHARACTER SET utf8mb4) AS BINARY)", true
	}
	return "CAST(" + c.sel + " AS BINARY)", myMaxBytes(dt, c.precision) > maxSort
}

// myMaxBytes bounds the bytes of a string column's values (4 a character
// in any MySQL character set); MaxInt64 when there is no useful bound.
func myMaxBytes(dataType string, length int64) int64 {
	switch dataType {
	case "char", "varchar":
		return 4 * length
	case "binary", "varbinary":
		return length
	case "tinytext", "tinyblob":
		return 255
	case "text", "blob":
		return 65535
	case "mediumtext", "mediumblob":
		return 16777215
	}
	return math.MaxInt64
}

// myPassQuery selects every column of t in pass order, from offset on; a
// limit of 0 means no limit. LIMIT and OFFSET are parameters, so the query
// goes through the binary protocol like every other read.
func myPassQuery(t *myTable, order string, offset int64, limit int) (string, []any) {
	var sb strings.Builder
	t.writeSelectFrom(&sb)
	sb.WriteString(" ORDER BY ")
	sb.WriteString(order)
	sb.WriteString(" LIMIT ? OFFSET ?")
	lim := int64(math.MaxInt64)
	if limit > 0 {
		lim = int64(limit)
	}
	return sb.String(), []any{lim, offset}
}

// myMaxSort is the session's max_sort_length.
func myMaxSort(ctx context.Context, q myQuerier) (int64, error) {
	var n int64
	err := q.QueryRowContext(ctx, "SELECT @@max_sort_length").Scan(&n)
	return n, err
}

// readMySQLKeyless reads the batch of a keyless table after cursor in the
// transaction conn has open, by chunked queries as readMySQLTable does.
func readMySQLKeyless(ctx context.Context, conn *sql.Conn, t *myTable, dec *myDecoder, kr *commonv1.KeyRange, cursor string, lim readLimits) (*commonv1.Batch, bool, error) {
	if err := checkPassRange(t, kr); err != nil {
		return nil, false, err
	}
	pos, err := passCursor("cursor", cursor)
	if err != nil {
		return nil, false, err
	}
	maxSort, err := myMaxSort(ctx, conn)
	if err != nil {
		return nil, false, err
	}
	order := myPassOrder(t, maxSort)
	mb := newMyBatch(t, dec, lim, cursor)
	mb.base = pos
	for {
		chunk := mb.nextChunk()
		if chunk == 0 {
			break
		}
		query, args := myPassQuery(t, order, pos+int64(mb.n), chunk)
		rows, err := conn.QueryContext(ctx, query, args...)
		if err != nil {
			return nil, false, err
		}
		read, err := mb.scan(rows, nil, nil)
		rows.Close()
		if err != nil {
			return nil, false, err
		}
		if mb.full || read < chunk {
			break
		}
	}
	b, n := mb.finish()
	b.LastKey = strconv.FormatInt(pos+int64(n), 10)
	return b, !mb.full && n < lim.rows, nil
}

// myPass is the ordered pass over a keyless table that StreamBatches reads
// a partition through: one transaction, one query, its rows cut into
// batches as they come.
type myPass struct {
	d      *mySrc
	what   string
	conn   *sql.Conn
	rows   *sql.Rows
	cancel context.CancelFunc // ends the query when the pass is left early
	t      *myTable
	dec    myDecoder
	lim    readLimits
	vals   []sql.RawBytes
	dest   []any
	pos    int64  // rows of the pass before the next batch
	cursor string // the next batch's cursor: pos as the request or the last batch said it
	held   bool   // vals hold a row read but not taken: it starts the next batch
	eof    bool
	// restore is the session's net_write_timeout to put back.
	restore int64
}

// myPassWriteTimeout is the session's net_write_timeout during a pass: the
// server waits that long for the client to take more rows, and the client
// stops reading while the stages downstream are busy with a batch.
const myPassWriteTimeout = 3600

// openMySQLPass starts the pass over a keyless table; it returns nil for a
// table with a primary key, which is read batch by batch.
func (s *Service) openMySQLPass(ctx context.Context, spec *commonv1.MysqlSource, kr *commonv1.KeyRange, cursor string, lim readLimits) (_ readPass, err error) {
	d, db, name, err := s.mysqlTarget(spec)
	if err != nil {
		return nil, err
	}
	what := "read " + db + "." + name
	p := &myPass{d: d, what: what, lim: lim, dec: myDecoder{loc: d.loc, zeroNull: spec.GetZeroDates() == commonv1.ZeroDatePolicy_ZERO_DATE_POLICY_NULL}}
	qctx, cancel := context.WithCancel(ctx)
	p.cancel = cancel
	defer func() {
		if p != nil && err != nil {
			p.close()
		}
	}()
	if p.conn, err = d.db.Conn(ctx); err != nil {
		return nil, mysqlErr(err, d, what)
	}
	step := func(q string, args ...any) error {
		_, err := p.conn.ExecContext(ctx, q, args...)
		return err
	}
	if err := p.conn.QueryRowContext(ctx, "SELECT @@SESSION.net_write_timeout").Scan(&p.restore); err != nil {
		return nil, mysqlErr(err, d, what)
	}
	if err := step("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"); err != nil {
		return nil, mysqlErr(err, d, what)
	}
	if err := step("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"); err != nil {
		return nil, mysqlErr(err, d, what)
	}
	if p.t, err = loadMySQLTable(ctx, p.conn, db, name, false); err != nil {
		return nil, mysqlErr(err, d, what)
	}
	if len(p.t.pk) > 0 {
		p.close()
		return nil, nil
	}
	if err := checkPassRange(p.t, kr); err != nil {
		return nil, err
	}
	if p.pos, err = passCursor("cursor", cursor); err != nil {
		return nil, err
	}
	p.cursor = cursor
	maxSort, err := myMaxSort(ctx, p.conn)
	if err != nil {
		return nil, mysqlErr(err, d, what)
	}
	if err := step("SET SESSION net_write_timeout = ?", int64(myPassWriteTimeout)); err != nil {
		return nil, mysqlErr(err, d, what)
	}
	query, args := myPassQuery(p.t, myPassOrder(p.t, maxSort), p.pos, 0)
	if p.rows, err = p.conn.QueryContext(qctx, query, args...); err != nil {
		return nil, mysqlErr(err, d, what)
	}
	p.vals = make([]sql.RawBytes, len(p.t.cols))
	p.dest = make([]any, len(p.vals))
	for i := range p.vals {
		p.dest[i] = &p.vals[i]
	}
	return p, nil
}

// next cuts the next batch from the pass: the batch a ReadBatch at the
// previous batch's last key would read.
func (p *myPass) next(ctx context.Context) (*commonv1.Batch, bool, error) {
	mb := newMyBatch(p.t, &p.dec, p.lim, p.cursor)
	mb.base = p.pos
	if p.held {
		p.held = false
		mb.add(p.vals) // a batch's first row always fits
	}
	for !mb.full && mb.n < p.lim.rows && !p.eof {
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		if !p.rows.Next() {
			if err := p.rows.Err(); err != nil {
				return nil, false, mysqlErr(err, p.d, p.what)
			}
			p.eof = true
			break
		}
		if err := p.rows.Scan(p.dest...); err != nil {
			return nil, false, mysqlErr(err, p.d, p.what)
		}
		if !mb.add(p.vals) {
			p.held = true
		}
	}
	b, n := mb.finish()
	p.pos += int64(n)
	b.LastKey = strconv.FormatInt(p.pos, 10)
	p.cursor = b.LastKey
	return b, !mb.full && n < p.lim.rows, nil
}

// close ends the pass. A query left before its end is cancelled (the
// driver closes the connection) instead of read to its end.
func (p *myPass) close() {
	if p.rows != nil {
		if !p.eof {
			p.cancel()
		}
		_ = p.rows.Close()
	}
	p.cancel()
	if p.conn == nil {
		return
	}
	ctx := context.Background()
	bad := p.rows != nil && !p.eof
	if !bad {
		_, err1 := p.conn.ExecContext(ctx, "ROLLBACK")
		var err2 error
		if p.restore > 0 {
			_, err2 = p.conn.ExecContext(ctx, "SET SESSION net_write_timeout = ?", p.restore)
		}
		bad = err1 != nil || err2 != nil
	}
	if bad {
		// Do not hand back a connection with an open transaction, a
		// cancelled query or a changed session.
		_ = p.conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	_ = p.conn.Close()
	p.conn = nil
}
