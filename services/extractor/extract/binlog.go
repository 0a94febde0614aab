package extract

// Sync by the MySQL/MariaDB binary log, read as a replica reads it
// (go-mysql's replication client), in commit order.
//
// The position is "<flavor>:<GTID set>" (mariadb:0-1-42, or
// mysql:<uuid>:1-42): every transaction in the set is applied. A call
// opens a replication stream from the position, reads whole transactions
// until the batch is full, the stream reaches the server's GTID position
// as it was when the call began, or a time budget runs out, and answers
// the changes of the followed table with the position after the last whole
// transaction read (a batch with no rows may still move the position past
// other tables' transactions). No stream stays open between calls, so any
// extractor replica serves any call, and a killed follower resumes from
// the ledger's position: a transaction is in the batch that commits its
// position or in a later one, never in two.
//
// Row images are rendered to the text the full load's queries read
// (CAST(… AS CHAR) and the column's own text), so the same decoder turns
// both into batch values: an update that moves a key is a delete of the
// old key and an upsert of the new row.
//
// The start (an empty position) is the server's GTID position, read by
// CreateJob before the full load: a transaction that commits while the
// full load reads is applied again after it, as upserts and deletes by
// key, which leaves the same rows.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math/bits"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	"golang.org/x/text/encoding/charmap"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// binlogBudget bounds one call's reading: what is read by then is
// answered, and the follower asks again.
const binlogBudget = 2 * time.Second

// binlogPos is a position in a server's binary log: a GTID set.
type binlogPos struct {
	flavor string // gomysql.MySQLFlavor or gomysql.MariaDBFlavor
	set    gomysql.GTIDSet
}

func (p binlogPos) String() string { return p.flavor + ":" + p.set.String() }

func parseBinlogPos(s string) (binlogPos, error) {
	flavor, set, ok := strings.Cut(s, ":")
	if !ok || (flavor != gomysql.MySQLFlavor && flavor != gomysql.MariaDBFlavor) {
		return binlogPos{}, invalid("position", "%q is not a binlog position (mysql:<gtid set> or mariadb:<gtid set>)", cut(s))
	}
	gs, err := gomysql.ParseGTIDSet(flavor, set)
	if err == nil {
		// Once more from its own text: the canonical set ("0-1-5," and
		// "0-1-5" are the same position).
		gs, err = gomysql.ParseGTIDSet(flavor, gs.String())
	}
	if err != nil {
		return binlogPos{}, invalid("position", "%q: %v", cut(s), err)
	}
	return binlogPos{flavor: flavor, set: gs}, nil
}

// binlogServer checks that the server writes a full row-based binary log
// with GTIDs, and returns its flavor and its GTID position now.
func binlogServer(ctx context.Context, conn *sql.Conn) (binlogPos, error) {
	var version, format, image string
	var logBin int
	err := conn.QueryRowContext(ctx, "SELECT VERSION(), @@log_bin, @@binlog_format, @@binlog_row_image").Scan(&version, &logBin, &format, &image)
	if err != nil {
		return binlogPos{}, err
	}
	switch {
	case logBin != 1:
		return binlogPos{}, fmt.Errorf("%w: source.mysql: the server writes no binary log (log_bin is OFF): binlog sync needs log_bin, binlog_format=ROW and binlog_row_image=FULL", ErrPrecondition)
	case !strings.EqualFold(format, "ROW"):
		return binlogPos{}, fmt.Errorf("%w: source.mysql: binlog_format is %s: binlog sync needs ROW (row images, not statements)", ErrPrecondition, format)
	case !strings.EqualFold(image, "FULL"):
		return binlogPos{}, fmt.Errorf("%w: source.mysql: binlog_row_image is %s: binlog sync needs FULL (every column of every changed row)", ErrPrecondition, image)
	}
	flavor, q := gomysql.MySQLFlavor, "SELECT @@gtid_executed"
	if strings.Contains(strings.ToLower(version), "mariadb") {
		flavor, q = gomysql.MariaDBFlavor, "SELECT @@gtid_binlog_pos"
	}
	var set string
	if err := conn.QueryRowContext(ctx, q).Scan(&set); err != nil {
		return binlogPos{}, err
	}
	if flavor == gomysql.MySQLFlavor {
		var mode string
		if err := conn.QueryRowContext(ctx, "SELECT @@gtid_mode").Scan(&mode); err != nil {
			return binlogPos{}, err
		}
		if !strings.EqualFold(mode, "ON") {
			return binlogPos{}, fmt.Errorf("%w: source.mysql: gtid_mode is %s: binlog sync on MySQL needs gtid_mode=ON", ErrPrecondition, mode)
		}
	}
	gs, err := gomysql.ParseGTIDSet(flavor, strings.ReplaceAll(set, "\n", ""))
	if err != nil {
		return binlogPos{}, fmt.Errorf("read the server's GTID position %q: %w", set, err)
	}
	return binlogPos{flavor: flavor, set: gs}, nil
}

// binlogServerID is the replica id a follower uses: the spec's, or one
// derived from the job and table (the same on every call).
func binlogServerID(req *extractorv1.ReadChangesRequest) uint32 {
	if id := req.GetSync().GetBinlog().GetServerId(); id != 0 {
		return id
	}
	h := fnv.New32a()
	_, _ = io.WriteString(h, req.GetJobId()+"\x00"+req.GetTable())
	return 1<<30 | h.Sum32()>>2 // clear of the small ids servers are given
}

func readBinlogChanges(ctx context.Context, s *Service, req *extractorv1.ReadChangesRequest, size int) (*extractorv1.ReadChangesResponse, error) {
	spec := req.GetSource().GetMysql()
	d, db, name, err := s.mysqlTarget(spec)
	if err != nil {
		return nil, err
	}
	zone, loc, err := mysqlZone(spec.GetTimeZone())
	if err != nil {
		return nil, err
	}
	cfg, err := s.mysqlConfig(spec.GetDsn(), zone, loc)
	if err != nil {
		return nil, err
	}
	var t *myTable
	var end binlogPos
	err = func() error {
		conn, err := d.db.Conn(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		if end, err = binlogServer(ctx, conn); err != nil {
			return err
		}
		if t, err = loadMySQLTable(ctx, conn, db, name, false); err != nil {
			return err
		}
		return t.needKey()
	}()
	if err != nil {
		return nil, mysqlErr(err, d, "read the binary log of "+db+"."+name)
	}
	for i := range t.cols {
		if why := binlogUnrendered(&t.cols[i]); why != "" {
			return nil, fmt.Errorf("%w: source.mysql.table: column %s of %s (%s): %s; follow this table by a watermark instead", ErrPrecondition, t.cols[i].name, t.display(), t.cols[i].colType, why)
		}
	}
	empty := func(pos string, lag int64) *extractorv1.ReadChangesResponse {
		return &extractorv1.ReadChangesResponse{Batch: &commonv1.Batch{Source: t.display(), Position: pos, Ops: []byte{}}, LagRows: lag}
	}
	if req.GetPosition() == "" {
		return empty(end.String(), 0), nil
	}
	from, err := parseBinlogPos(req.GetPosition())
	if err != nil {
		return nil, err
	}
	if from.flavor != end.flavor {
		return nil, invalid("position", "%q is a %s position; the source is %s", cut(req.GetPosition()), from.flavor, end.flavor)
	}
	if from.set.Contain(end.set) {
		return empty(from.String(), 0), nil
	}
	added, err := binlogAdded(t, req.GetColumns())
	if err != nil {
		return nil, err
	}
	r := &binlogRead{t: t, db: db, dec: myDecoder{loc: d.loc, zeroNull: spec.GetZeroDates() == commonv1.ZeroDatePolicy_ZERO_DATE_POLICY_NULL},
		size: size, pos: from, end: end, applyTruncate: req.GetSync().GetOnTruncate() == commonv1.TruncatePolicy_TRUNCATE_POLICY_APPLY, added: added}
	if err := r.read(ctx, cfg.Net, cfg.Addr, cfg.User, cfg.Passwd, loc, binlogServerID(req)); err != nil {
		return nil, mysqlErr(err, d, "read the binary log of "+db+"."+name)
	}
	b, _ := r.mb.finish()
	b.Ops, b.Position = r.ops, r.pos.String()
	resp := &extractorv1.ReadChangesResponse{Batch: b, SourceTruncated: r.truncated}
	if !r.lastCommit.IsZero() {
		resp.LastCommitTime = timestamppb.New(r.lastCommit) // the log's times are whole seconds
	}
	switch {
	case r.lagCounted || r.lagRows > 0:
		// Counted past a full batch: exact when the count reached the
		// server's position, a lower bound otherwise.
		resp.LagRows = r.lagRows
		if !r.lagCounted {
			resp.LagRows = max(resp.LagRows, 1)
		}
		if !r.lagAt.IsZero() {
			resp.LagSeconds = max(time.Since(r.lagAt).Seconds(), 0)
		}
	case !r.pos.set.Contain(end.set):
		// Behind, not counted (the read's budget ran out): at least one.
		resp.LagRows = 1
		if !r.lastEvent.IsZero() {
			resp.LagSeconds = max(time.Since(r.lastEvent).Seconds(), 0)
		}
	}
	return resp, nil
}

// binlogRead is one call's reading of the stream.
type binlogRead struct {
	t        *myTable
	db       string
	dec      myDecoder
	size     int
	pos, end binlogPos
	mb       *myBatch
	ops      []byte
	// The open transaction's changes of the table, applied to the batch at
	// its commit.
	pending   []binlogChange
	lastEvent time.Time
	// lastCommit is the source's commit time of the newest transaction
	// with changes of the table in the batch.
	lastCommit time.Time
	// applyTruncate: the spec's on_truncate is APPLY; truncated: the read
	// ended just past a TRUNCATE of the table.
	applyTruncate, truncated bool
	// added: columns the table gained since the job was created, which
	// rows logged before them lack (NULL there); wider: a row has more
	// columns than the table had when this read looked: the next read
	// starts at its transaction with the table as it is then.
	added         map[int]bool
	wider, sawAdd bool
	// Past a full batch (countLag): the table's row changes still to
	// come, the time of the first, and whether the count reached the
	// server's position.
	lagRows    int64
	lagAt      time.Time
	lagCounted bool
}

// isTruncate reports whether a statement is a TRUNCATE (the caller has
// checked that it names the table).
func isTruncate(q string) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(q)), "truncate ")
}

type binlogChange struct {
	op   byte
	vals []sql.RawBytes
}

func (r *binlogRead) read(ctx context.Context, network, addr, user, password string, loc *time.Location, serverID uint32) error {
	r.mb = newMyBatch(r.t, &r.dec, rowsOnly(MaxBatchSize), "")
	if network != "tcp" {
		return fmt.Errorf("%w: source.mysql.dsn: binlog sync connects over TCP, not %s", ErrPrecondition, network)
	}
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return err
	}
	syncer := replication.NewBinlogSyncer(replication.BinlogSyncerConfig{
		ServerID: serverID, Flavor: r.pos.flavor, Host: host, Port: uint16(port), User: user, Password: password,
		TimestampStringLocation: loc, DisableRetrySync: true, MaxReconnectAttempts: 1,
		Logger: slog.New(slog.DiscardHandler),
	})
	defer syncer.Close()
	stream, err := syncer.StartSyncGTID(r.pos.set.Clone())
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, binlogBudget)
	defer cancel()
	for !r.pos.set.Contain(r.end.set) && r.mb.n < r.size && !r.truncated && !r.wider {
		ev, err := stream.GetEvent(rctx)
		if err != nil {
			if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				return nil // the budget ran out: answer what is whole
			}
			return err
		}
		if ev.Header.Timestamp > 0 {
			r.lastEvent = time.Unix(int64(ev.Header.Timestamp), 0)
		}
		switch e := ev.Event.(type) {
		case *replication.RowsEvent:
			if err := r.rows(e); err != nil {
				return err
			}
		case *replication.XIDEvent:
			if err := r.commit(e.GSet); err != nil {
				return err
			}
		case *replication.QueryEvent:
			q := strings.TrimSpace(string(e.Query))
			if strings.EqualFold(q, "BEGIN") {
				continue
			}
			touches := !strings.EqualFold(q, "COMMIT") && r.touches(string(e.Schema), q)
			if touches && addsOnly(q) {
				r.sawAdd = true // rows after it may be wider than the table this read loaded
			} else if touches {
				if r.mb.n > 0 {
					return nil // the rows before it go first; the next call starts at the statement
				}
				switch {
				case isTruncate(q) && r.applyTruncate:
					r.truncated = true
					return r.commit(e.GSet)
				case isTruncate(q):
					return fmt.Errorf("%w: source.mysql.table: %s was truncated on the source (%q) and sync.on_truncate is STOP: set it to APPLY to follow a TRUNCATE, or start a new job", ErrPrecondition, r.t.display(), cut(q))
				}
				return fmt.Errorf("%w: source.mysql.table: the schema of %s changed while following (%q): start a new job from the new schema", ErrPrecondition, r.t.display(), cut(q))
			}
			if err := r.commit(e.GSet); err != nil {
				return err
			}
		}
	}
	if r.mb.n >= r.size && !r.truncated && !r.wider {
		r.countLag(rctx, stream)
	}
	return nil
}

// countLag reads on past a full batch, for a while (lagCountBudget), and
// counts the table's row changes still to come: exact when it reaches the
// server's position (lagCounted), a lower bound otherwise.
func (r *binlogRead) countLag(ctx context.Context, stream *replication.BinlogStreamer) {
	cctx, cancel := context.WithTimeout(ctx, lagCountBudget)
	defer cancel()
	seen := r.pos.set.Clone()
	for !seen.Contain(r.end.set) {
		ev, err := stream.GetEvent(cctx)
		if err != nil {
			return
		}
		switch e := ev.Event.(type) {
		case *replication.RowsEvent:
			if !r.ours(e) {
				continue
			}
			n := int64(len(e.Rows))
			if e.Type() == replication.EnumRowsEventTypeUpdate {
				n /= 2 // before and after images
			}
			if r.lagRows == 0 && ev.Header.Timestamp > 0 {
				r.lagAt = time.Unix(int64(ev.Header.Timestamp), 0)
			}
			r.lagRows += n
		case *replication.XIDEvent:
			if e.GSet != nil {
				seen = e.GSet.Clone()
			}
		case *replication.QueryEvent:
			if e.GSet != nil && !strings.EqualFold(strings.TrimSpace(string(e.Query)), "BEGIN") {
				seen = e.GSet.Clone()
			}
		}
	}
	r.lagCounted = true
}

// touches reports whether a statement changes the followed table's
// definition or empties it: ALTER, CREATE or TRUNCATE of it, or a DROP or
// RENAME that lists it, bare or qualified by its database. Index DDL and
// statements that only mention it (a column of the same name) pass.
func (r *binlogRead) touches(schema, q string) bool {
	words := strings.Fields(strings.ToLower(strings.TrimSpace(q)))
	if len(words) < 2 {
		return false
	}
	verb, rest := words[0], words[1:]
	// Past the keywords between the verb and the table reference.
	for len(rest) > 0 {
		switch rest[0] {
		case "table", "tables", "online", "ignore", "if", "not", "exists", "temporary", "or", "replace":
			rest = rest[1:]
			continue
		}
		break
	}
	second := words[1]
	tableDDL := (verb == "alter" || verb == "create" || verb == "drop" || verb == "rename") && (second == "table" || second == "tables") ||
		verb == "truncate" ||
		verb == "alter" && (second == "online" || second == "ignore") ||
		verb == "create" && (second == "temporary" || second == "or")
	if !tableDDL || len(rest) == 0 {
		return false // CREATE INDEX, DROP VIEW, ALTER DATABASE, DML …
	}
	refs := []string{rest[0]}
	if verb == "drop" || verb == "rename" {
		refs = rest // a list: a, b or a TO b, c TO d
	}
	for _, ref := range refs {
		for _, m := range tableRefRE.FindAllStringSubmatch(" "+ref, -1) {
			db := strings.Trim(m[1], "`")
			if strings.Trim(m[2], "`") != strings.ToLower(r.t.name) {
				continue
			}
			if db == "" && strings.EqualFold(schema, r.db) || strings.EqualFold(db, r.db) {
				return true
			}
		}
	}
	return false
}

// tableRefRE finds [db.]table references in a statement: each an
// identifier, bare or in backquotes, after a space, comma or paren.
var tableRefRE = regexp.MustCompile("(?:^|[\\s,(])(?:(`[^`]+`|[\\w$]+)\\.)?(`[^`]+`|[\\w$]+)")

// commit ends the open transaction: its changes join the batch and the
// position moves past it.
func (r *binlogRead) commit(set gomysql.GTIDSet) error {
	if set == nil {
		return errors.New("binary log: a commit without a GTID position (is GTID mode on?)")
	}
	if len(r.pending) > 0 {
		r.lastCommit = r.lastEvent
	}
	for _, c := range r.pending {
		if !r.mb.add(c.vals) {
			return fmt.Errorf("binary log: a transaction changed more rows of %s than a batch holds (%d)", r.t.display(), MaxBatchSize)
		}
		r.ops = append(r.ops, c.op)
	}
	r.pending = r.pending[:0]
	r.pos.set = set.Clone()
	return nil
}

// ours reports whether a rows event is of the followed table.
func (r *binlogRead) ours(e *replication.RowsEvent) bool {
	return string(e.Table.Schema) == r.db && string(e.Table.Table) == r.t.name
}

// rows takes the followed table's rows of a rows event into the open
// transaction.
func (r *binlogRead) rows(e *replication.RowsEvent) error {
	if !r.ours(e) {
		return nil
	}
	if n := int(e.ColumnCount); n > len(r.t.cols) && r.sawAdd {
		r.wider, r.pending = true, r.pending[:0]
		return nil
	} else if n > len(r.t.cols) {
		return fmt.Errorf("%w: source.mysql.table: a binlog row of %s has %d columns, the table has %d: its schema changed while following; start a new job from the new schema",
			ErrPrecondition, r.t.display(), e.ColumnCount, len(r.t.cols))
	} else if n < len(r.t.cols) {
		// Logged before columns were added at the end: NULL in them.
		for i := n; i < len(r.t.cols); i++ {
			if !r.added[i] {
				return fmt.Errorf("%w: source.mysql.table: a binlog row of %s has %d columns, the table has %d: its schema changed while following (a column added other than at the end, or dropped); start a new job from the new schema",
					ErrPrecondition, r.t.display(), e.ColumnCount, len(r.t.cols))
			}
		}
	}
	switch e.Type() {
	case replication.EnumRowsEventTypeInsert:
		for _, row := range e.Rows {
			vals, err := r.render(row, false)
			if err != nil {
				return err
			}
			r.pending = append(r.pending, binlogChange{'u', vals})
		}
	case replication.EnumRowsEventTypeDelete:
		for _, row := range e.Rows {
			vals, err := r.render(row, true)
			if err != nil {
				return err
			}
			r.pending = append(r.pending, binlogChange{'d', vals})
		}
	case replication.EnumRowsEventTypeUpdate:
		// Before and after images, in pairs.
		for i := 0; i+1 < len(e.Rows); i += 2 {
			before, err := r.render(e.Rows[i], true)
			if err != nil {
				return err
			}
			after, err := r.render(e.Rows[i+1], false)
			if err != nil {
				return err
			}
			for _, ci := range r.t.pk {
				if string(before[ci]) != string(after[ci]) {
					r.pending = append(r.pending, binlogChange{'d', before})
					break
				}
			}
			r.pending = append(r.pending, binlogChange{'u', after})
		}
	}
	return nil
}

// render turns a row image into the texts the full load reads; keyOnly
// keeps only the key's (a delete).
func (r *binlogRead) render(row []any, keyOnly bool) ([]sql.RawBytes, error) {
	vals := make([]sql.RawBytes, len(r.t.cols))
	for i := range r.t.cols {
		if keyOnly && !r.inKey(i) || i >= len(row) {
			continue // NULL
		}
		v, err := binlogText(&r.t.cols[i], row[i])
		if err != nil {
			return nil, fmt.Errorf("%w: binlog row of %s, column %s: %v", ErrPrecondition, r.t.display(), r.t.cols[i].name, err)
		}
		vals[i] = v
	}
	return vals, nil
}

func (r *binlogRead) inKey(i int) bool {
	for _, ci := range r.t.pk {
		if ci == i {
			return true
		}
	}
	return false
}

// binlogUnrendered says why a column's binlog values cannot be rendered
// as the full load reads them ("" when they can).
func binlogUnrendered(c *myCol) string {
	switch {
	case strings.HasPrefix(c.sel, "ST_AsText("):
		return "geometry comes as WKB in the binary log, not as the text the full load reads"
	case strings.HasPrefix(c.sel, "CAST(") && strings.Contains(c.sel, "CHARACTER SET"):
		return "this type's binary log form is not rendered yet"
	case c.kind == myText && c.charset != "" && binlogDecoder(c.charset) == nil && !binlogUTF8(c.charset):
		return "character set " + c.charset + " is not converted from the binary log yet (utf8, utf8mb4, ascii, latin1 are)"
	}
	return ""
}

func binlogUTF8(charset string) bool {
	switch strings.ToLower(charset) {
	case "utf8", "utf8mb3", "utf8mb4", "ascii", "binary":
		return true
	}
	return false
}

func binlogDecoder(charset string) *charmap.Charmap {
	if strings.EqualFold(charset, "latin1") {
		return charmap.Windows1252 // MySQL's latin1 is cp1252
	}
	return nil
}

// binlogText renders one binary-log value of column c as the text the
// full load's query reads for it.
func binlogText(c *myCol, v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	dt := strings.ToLower(c.dataType)
	switch c.kind {
	case myInt, myBool, myNumeric:
		if s, ok := v.(string); ok { // decimal
			return []byte(s), nil
		}
		n, err := binlogInt(c, dt, v)
		if err != nil {
			return nil, err
		}
		if c.unsigned {
			return strconv.AppendUint(nil, uint64(n), 10), nil
		}
		return strconv.AppendInt(nil, n, 10), nil
	case myFloat32:
		if f, ok := v.(float32); ok {
			return strconv.AppendFloat(nil, float64(f), 'g', -1, 32), nil
		}
	case myFloat64:
		if f, ok := v.(float64); ok {
			return strconv.AppendFloat(nil, f, 'g', -1, 64), nil
		}
	case myBit1, myBits:
		if n, ok := v.(int64); ok {
			width := (c.bits + 7) / 8
			if c.kind == myBit1 {
				width = 1
			}
			out := make([]byte, width)
			for i := width - 1; i >= 0; i-- {
				out[i] = byte(n)
				n >>= 8
			}
			return out, nil
		}
	case myDate, myDatetime, myTimestamp:
		return []byte(fmt.Sprint(v)), nil
	case myBytes:
		var out []byte
		switch b := v.(type) {
		case []byte:
			out = b
		case string:
			out = []byte(b)
		default:
			return nil, fmt.Errorf("unexpected %T", v)
		}
		if dt == "binary" && int64(len(out)) < c.precision {
			out = append(out, make([]byte, int(c.precision)-len(out))...) // BINARY(n) reads zero-padded
		}
		return out, nil
	case myText:
		switch dt {
		case "enum":
			n, ok := v.(int64)
			if !ok {
				return nil, fmt.Errorf("unexpected %T for an enum", v)
			}
			list := myList(c.colType)
			if n == 0 {
				return []byte{}, nil // the '' of an invalid value
			}
			if n < 0 || int(n) > len(list) {
				return nil, fmt.Errorf("enum index %d of %d values", n, len(list))
			}
			return []byte(list[n-1]), nil
		case "set":
			n, ok := v.(int64)
			if !ok {
				return nil, fmt.Errorf("unexpected %T for a set", v)
			}
			list := myList(c.colType)
			var names []string
			for m := uint64(n); m != 0; m &= m - 1 {
				i := bits.TrailingZeros64(m)
				if i >= len(list) {
					return nil, fmt.Errorf("set bit %d of %d values", i, len(list))
				}
				names = append(names, list[i])
			}
			return []byte(strings.Join(names, ",")), nil
		}
		var raw []byte
		switch s := v.(type) {
		case string:
			raw = []byte(s)
		case []byte:
			raw = s
		default:
			return []byte(fmt.Sprint(v)), nil // time
		}
		if dt == "char" {
			raw = []byte(strings.TrimRight(string(raw), " ")) // CHAR reads without its padding
		}
		if cm := binlogDecoder(c.charset); cm != nil {
			return cm.NewDecoder().Bytes(raw)
		}
		return raw, nil
	}
	return nil, fmt.Errorf("unexpected %T", v)
}

// binlogInt widens a binlog integer, undoing the sign the log's fixed
// widths give unsigned values.
func binlogInt(c *myCol, dt string, v any) (int64, error) {
	switch n := v.(type) {
	case int8:
		if c.unsigned {
			return int64(uint8(n)), nil
		}
		return int64(n), nil
	case int16:
		if c.unsigned {
			return int64(uint16(n)), nil
		}
		return int64(n), nil
	case int32:
		switch {
		case c.unsigned && dt == "mediumint" && n < 0:
			return int64(n) + 1<<24, nil
		case c.unsigned:
			return int64(uint32(n)), nil
		}
		return int64(n), nil
	case int64:
		return n, nil // unsigned bigint: the caller prints it as uint64
	case int:
		return int64(n), nil // year
	}
	return 0, fmt.Errorf("unexpected %T for an integer", v)
}

// binlogAdded checks the table against the job's columns (knownColumns)
// and returns the columns added since; each must be nullable without a
// default, as the rows logged before it are NULL there.
func binlogAdded(t *myTable, known []*commonv1.SourceColumn) (map[int]bool, error) {
	now := make([]colDef, len(t.cols))
	for i, c := range t.cols {
		now[i] = colDef{c.name, c.colType}
	}
	names, err := knownColumns("source.mysql.table", t.display(), now, known)
	if err != nil {
		return nil, err
	}
	added := map[int]bool{}
	for i, c := range t.cols {
		if !slices.Contains(names, c.name) {
			continue
		}
		// MariaDB spells a default of NULL as the text NULL.
		if !c.nullable || c.colDefault.Valid && c.colDefault.String != "NULL" || c.extra != "" {
			return nil, fmt.Errorf("%w: source.mysql.table: column %s %s was added to %s while following with a default or NOT NULL; the rows changed before it cannot be given its value: add nullable columns without a default, or start a new job", ErrPrecondition, c.name, c.colType, t.display())
		}
		added[i] = true
	}
	return added, nil
}

// addsOnly reports whether an ALTER TABLE only adds columns or indexes,
// which a follower carries on (rows logged before an added column lack
// it; binlogAdded checks it can be NULL there): every clause is ADD
// [COLUMN] name …, or ADD INDEX / KEY / FULLTEXT / SPATIAL.
func addsOnly(q string) bool {
	words := strings.Fields(strings.ToLower(q))
	if len(words) < 5 || words[0] != "alter" || words[1] != "table" {
		return false
	}
	rest := strings.Join(words[3:], " ")
	depth, start := 0, 0
	var clauses []string
	for i, c := range rest {
		switch c {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				clauses = append(clauses, rest[start:i])
				start = i + 1
			}
		}
	}
	clauses = append(clauses, rest[start:])
	for _, cl := range clauses {
		f := strings.Fields(cl)
		if len(f) < 2 || f[0] != "add" {
			return false
		}
		switch f[1] {
		case "primary", "unique", "constraint", "foreign", "partition", "check", "period", "system":
			return false
		case "column":
			if len(f) < 3 {
				return false
			}
		}
		for _, w := range f {
			if w == "first" || w == "after" {
				return false // a column not at the end moves the others
			}
		}
	}
	return true
}
