package extract

// Reading a logical slot over the streaming replication protocol
// (pglogrepl): each call opens a replication connection, runs
// START_REPLICATION from the ledger's position, reads whole transactions
// until the batch is full, the stream has caught up with the WAL flushed
// when the call began, or the call's budget is spent; then it confirms the
// ledger's position to the slot (a standby status update) and closes.
// Nothing stays open between calls, so any extractor replica serves any
// call, and a killed follower loses nothing: the slot is confirmed only up
// to what the ledger holds.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const (
	// quietAdvance: an empty batch moves the position when the server has
	// decoded this much WAL past it with nothing of the table in it, so a
	// quiet table in a busy database does not keep the source's WAL.
	quietAdvance = 16 << 20
	// streamBudget bounds one call's reading, as the binlog reader's does.
	streamBudget = 2 * time.Second
	// streamIdle: after this long without a message the reader asks the
	// server for a keepalive, which says how far it has decoded.
	streamIdle = 100 * time.Millisecond
	// slotBusyWait: the walsender of the previous call may still hold the
	// slot for a moment after its connection closed.
	slotBusyWait = 3 * time.Second
	// maxAhead bounds the messages a read keeps past its batch for the
	// next read on the same stream.
	maxAhead = 50_000
	// logicalLagCap and lagCountBudget bound the changes counted past a
	// full batch: lag_rows is exact within them, a lower bound beyond.
	logicalLagCap  = 100_000
	lagCountBudget = 250 * time.Millisecond
)

// streamSettings make the text that pgoutput writes in the walsender's
// session parseable: ISO dates, hex bytea, floats that round-trip. They
// are a standard server's defaults, so values read as in the full load.
var streamSettings = map[string]string{"DateStyle": "ISO", "bytea_output": "hex", "extra_float_digits": "3"}

// pgoTxn is one transaction's changes to the followed table.
type pgoTxn struct {
	commitTime time.Time
	end        lsn
	ops        []pgoOp
	changes    int  // insert, update and delete messages (a key move is one)
	truncate   bool // it truncated the table: ops are what it did after
}

// pgoOp is one row of a change batch: vals are the relation's columns
// ('d': only the key's are read).
type pgoOp struct {
	op   byte
	vals []pgoValue
}

// pgoValue is one column of a tuple: kind 'n' NULL, 'u' an unchanged
// TOAST value the log does not carry, 't' text, 'b' binary.
type pgoValue struct {
	kind byte
	data []byte
}

// readChanges reads the slot from from: the changes of one table, whole
// transactions, about size rows.
func readChanges(ctx context.Context, s *Service, p *pgSrc, schema, name, pub, slot string, from lsn, size int, known []*commonv1.SourceColumn, applyTruncate bool) (*extractorv1.ReadChangesResponse, error) {
	t, target, now, err := streamStart(ctx, p.pool, schema, name, slot, from)
	if err != nil {
		return nil, err
	}
	lr := &logicalReader{t: t, slot: slot, pool: p.pool}
	cols := make([]colDef, len(t.cols))
	for i, c := range t.cols {
		cols[i] = colDef{c.name, c.sourceType}
	}
	added, err := knownColumns("source.postgres.table", t.display(), cols, known)
	if err != nil {
		return nil, err
	}
	for _, name := range added {
		for _, c := range t.cols {
			if c.name == name {
				if err := lr.added(ctx, c); err != nil {
					return nil, err
				}
			}
		}
	}
	key := fmt.Sprintf("%p/%s", p.pool, slot)
	ls := s.takeStream(key, from)
	if ls == nil {
		conn, err := openStream(ctx, p.pool, slot, pub, from)
		if err != nil {
			return nil, err
		}
		ls = &liveStream{conn: conn}
		s.streamOpens.Add(1)
	}
	kept := false
	defer func() {
		if kept {
			s.keepStream(key, ls)
		} else {
			ls.close()
		}
	}()
	if ls.rel != nil {
		// The server sends a relation's message once per stream.
		if err := lr.mapRelation(ctx, ls.rel); err != nil {
			return nil, err
		}
	}
	sr := &streamRead{lr: lr, conn: ls.conn, from: from, target: target, size: size, applyTruncate: applyTruncate, ahead: ls.ahead}
	// Confirm what the ledger holds first: the slot may free the WAL
	// before it while this call reads.
	if err := sr.confirm(ctx, false); err != nil {
		return nil, err
	}
	if err := sr.run(ctx); err != nil {
		return nil, err
	}
	if err := sr.confirm(ctx, false); err != nil {
		return nil, err
	}
	b, err := sr.lr.build(sr.txns, sr.rows)
	if err != nil {
		return nil, err
	}
	pos := from
	if n := len(sr.txns); n > 0 {
		pos = sr.txns[n-1].end
	} else if sr.caughtUp && sr.lastKeepalive >= from+quietAdvance {
		// Nothing of the table up to where the server has decoded: the
		// position moves past the other tables' WAL, so the slot can free
		// it once the follower records the position (an empty batch).
		pos = sr.lastKeepalive
	}
	b.Source = t.display()
	b.Position = pos.String()
	b.FirstKey = from.String()
	b.LastKey = b.Position
	resp := &extractorv1.ReadChangesResponse{Batch: b, UnchangedValues: sr.lr.unchanged, SourceTruncated: sr.truncated}
	if n := len(sr.txns); n > 0 {
		resp.LastCommitTime = timestamppb.New(sr.txns[n-1].commitTime)
	}
	ls.next, ls.ahead, ls.rel, kept = pos, sr.leftover(), lr.rel, true
	resp.LagRows = sr.pending
	if !sr.caughtUp {
		// Not known to be caught up: never report 0, which means drained.
		resp.LagRows = max(resp.LagRows, 1)
	}
	if !sr.pendingAt.IsZero() {
		resp.LagSeconds = max(now.Sub(sr.pendingAt).Seconds(), 0)
	}
	return resp, nil
}

// streamStart reads the table as it is now, checks the slot against the
// position and finds where the stream is caught up: the WAL flushed now,
// with the server's clock for the lag.
func streamStart(ctx context.Context, pool *pgxpool.Pool, schema, name, slot string, from lsn) (*pgTable, lsn, time.Time, error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return nil, 0, time.Time{}, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read only
	t, err := loadTable(ctx, tx, schema, name)
	if err != nil {
		return nil, 0, time.Time{}, err
	}
	si, err := lookupSlot(ctx, tx, slot)
	if err != nil {
		return nil, 0, time.Time{}, err
	}
	if si == nil {
		return nil, 0, time.Time{}, fmt.Errorf("%w: sync.logical.slot: replication slot %s does not exist: it is made when the job is created, and the changes since cannot be read without it", ErrPrecondition, slot)
	}
	if from < si.confirmed {
		return nil, 0, time.Time{}, fmt.Errorf("%w: position: %s is behind replication slot %s's confirmed position %s: someone else confirmed changes this job has not applied", ErrPrecondition, from, slot, si.confirmed)
	}
	var flushed string
	var now time.Time
	if err := tx.QueryRow(ctx, `SELECT (CASE WHEN pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_last_wal_replay_lsn()
		ELSE pg_catalog.pg_current_wal_flush_lsn() END)::text, clock_timestamp()`).Scan(&flushed, &now); err != nil {
		return nil, 0, time.Time{}, err
	}
	target, ok := parseLSN(flushed)
	if !ok {
		return nil, 0, time.Time{}, fmt.Errorf("the server's WAL position %q is not a log sequence number", flushed)
	}
	return t, target, now, nil
}

// openStream starts the slot's replication stream at from, waiting a
// little while the previous reader's walsender still holds the slot.
func openStream(ctx context.Context, pool *pgxpool.Pool, slot, pub string, from lsn) (*pgconn.PgConn, error) {
	cfg := pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["replication"] = "database"
	for k, v := range streamSettings {
		cfg.RuntimeParams[k] = v
	}
	// publication_names is a string literal holding quoted identifiers;
	// the slot name passed slotNameRE.
	opts := pglogrepl.StartReplicationOptions{Mode: pglogrepl.LogicalReplication, PluginArgs: []string{
		"proto_version '1'", "publication_names '" + strings.ReplaceAll(pgx.Identifier{pub}.Sanitize(), "'", "''") + "'"}}
	deadline := time.Now().Add(slotBusyWait)
	for {
		conn, err := pgconn.ConnectConfig(ctx, &cfg.Config)
		if err != nil {
			return nil, err
		}
		err = pglogrepl.StartReplication(ctx, conn, slot, pglogrepl.LSN(from), opts)
		if err == nil {
			return conn, nil
		}
		_ = conn.Close(context.WithoutCancel(ctx))
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "55006" {
			return nil, fmt.Errorf("start replication from slot %s at %s: %w", slot, from, err)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w: replication slot %s: %s", ErrUnavailable, slot, pe.Message)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// streamRead is one call's reading of the stream.
type streamRead struct {
	lr     *logicalReader
	conn   *pgconn.PgConn
	from   lsn
	target lsn
	size   int

	txns []pgoTxn // the batch: complete transactions with changes of the table
	rows int
	cur  *pgoTxn
	// full: the batch is cut; later transactions only count toward the lag.
	full      bool
	pending   int64
	pendingAt time.Time // commit time of the first transaction after the batch
	caughtUp  bool
	// lastKeepalive is the server's position in its last keepalive.
	lastKeepalive lsn
	// ahead: messages an earlier read took from the stream past its
	// batch, read first; buffered: this read's, for the next (the open
	// transaction's messages in txnMsgs until it is placed).
	ahead, buffered, txnMsgs []pglogrepl.Message
	// applyTruncate: sync.on_truncate APPLY; truncated: the batch is the
	// transaction that truncated the table (its rows are those after it).
	applyTruncate, truncated bool
}

// confirm tells the slot what the ledger holds (from); ask requests a
// keepalive back, which says how far the server has decoded.
func (sr *streamRead) confirm(ctx context.Context, ask bool) error {
	err := pglogrepl.SendStandbyStatusUpdate(ctx, sr.conn, pglogrepl.StandbyStatusUpdate{WALWritePosition: pglogrepl.LSN(sr.from), ReplyRequested: ask})
	if err != nil {
		return fmt.Errorf("replication slot %s: standby status update: %w", sr.lr.slot, err)
	}
	return nil
}

// run reads messages until the batch is decided (see readChanges).
func (sr *streamRead) run(ctx context.Context) error {
	deadline := time.Now().Add(streamBudget)
	counting := false
	for len(sr.ahead) > 0 {
		m := sr.ahead[0]
		sr.ahead = sr.ahead[1:]
		done, err := sr.take(ctx, m)
		if err != nil || done {
			return err
		}
	}
	for {
		if len(sr.buffered) >= maxAhead {
			return nil // enough read past the batch for the next read
		}
		if sr.full && !counting {
			// Past a full batch the changes are only counted, for a while:
			// a long backlog is not read again in full on every call.
			counting = true
			if d := time.Now().Add(lagCountBudget); d.Before(deadline) {
				deadline = d
			}
		}
		if time.Now().After(deadline) {
			return nil
		}
		wait := min(time.Until(deadline), streamIdle)
		rctx, cancel := context.WithTimeout(ctx, wait)
		msg, err := sr.conn.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if pgconn.Timeout(err) {
				if err := sr.confirm(ctx, true); err != nil {
					return err
				}
				continue
			}
			return fmt.Errorf("replication slot %s: %w", sr.lr.slot, err)
		}
		var data []byte
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			data = m.Data
		case *pgproto3.ErrorResponse:
			return pgconn.ErrorResponseToPgError(m)
		default:
			return fmt.Errorf("replication slot %s: unexpected %T in the replication stream", sr.lr.slot, msg)
		}
		if len(data) == 0 {
			return fmt.Errorf("replication slot %s: empty message in the replication stream", sr.lr.slot)
		}
		switch data[0] {
		case pglogrepl.PrimaryKeepaliveMessageByteID:
			ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(data[1:])
			if err != nil {
				return fmt.Errorf("replication slot %s: %w", sr.lr.slot, err)
			}
			if ka.ReplyRequested {
				if err := sr.confirm(ctx, false); err != nil {
					return err
				}
			}
			// Every transaction that committed before the target has
			// been sent once the server has decoded past it. (A server
			// whose position stands still is not taken as caught up: it
			// may still be starting, and lag 0 must mean drained.)
			at := lsn(ka.ServerWALEnd)
			sr.lastKeepalive = at
			if sr.cur == nil && at >= sr.target {
				sr.caughtUp = true
				return nil
			}
		case pglogrepl.XLogDataByteID:
			xld, err := pglogrepl.ParseXLogData(data[1:])
			if err != nil {
				return fmt.Errorf("replication slot %s: %w", sr.lr.slot, err)
			}
			m, err := parsePgoutput(xld.WALData)
			if err != nil {
				return fmt.Errorf("slot %s at %s: %w", sr.lr.slot, lsn(xld.WALStart), err)
			}
			done, err := sr.take(ctx, m)
			if err != nil || done {
				return err
			}
		}
	}
}

// take handles one pgoutput message and keeps what lies past the batch
// for the next read on this stream: a transaction with changes of the
// table that its commit did not place in the batch.
func (sr *streamRead) take(ctx context.Context, m pglogrepl.Message) (bool, error) {
	if _, ok := m.(*pglogrepl.BeginMessage); ok {
		sr.txnMsgs = sr.txnMsgs[:0]
	}
	sr.txnMsgs = append(sr.txnMsgs, m)
	inBatch, tx := len(sr.txns), sr.cur
	done, err := sr.message(ctx, m)
	if err != nil {
		return false, err
	}
	if _, ok := m.(*pglogrepl.CommitMessage); ok {
		if len(sr.txns) == inBatch && tx != nil && (tx.changes > 0 || tx.truncate) {
			sr.buffered = append(sr.buffered, sr.txnMsgs...)
		}
		sr.txnMsgs = sr.txnMsgs[:0]
	}
	return done, nil
}

// leftover is what the stream gave past the batch, in stream order: the
// transactions kept, the open one's messages, what was not read of ahead.
func (sr *streamRead) leftover() []pglogrepl.Message {
	out := sr.buffered
	if sr.cur != nil {
		out = append(out, sr.txnMsgs...)
	}
	return append(out, sr.ahead...)
}

// message takes one pgoutput message; done says the call has read enough.
func (sr *streamRead) message(ctx context.Context, m pglogrepl.Message) (bool, error) {
	lr := sr.lr
	switch m := m.(type) {
	case *pglogrepl.BeginMessage:
		sr.cur = &pgoTxn{commitTime: m.CommitTime}
	case *pglogrepl.CommitMessage:
		tx := sr.cur
		if tx == nil {
			return false, fmt.Errorf("slot %s: pgoutput Commit message at %s without its Begin", lr.slot, lsn(m.CommitLSN))
		}
		sr.cur = nil
		tx.end = lsn(m.TransactionEndLSN)
		if tx.changes == 0 && !tx.truncate {
			// Nothing of this table: the position moves only with a
			// batch the ledger records (see readLogicalChanges).
			return false, nil
		}
		if !sr.full && len(sr.txns) > 0 && sr.rows+len(tx.ops) > sr.size {
			sr.full = true // whole transactions; a larger one goes alone
		}
		if sr.full {
			if sr.pending == 0 {
				sr.pendingAt = tx.commitTime
			}
			sr.pending += int64(tx.changes)
			return sr.pending >= logicalLagCap, nil
		}
		sr.txns = append(sr.txns, *tx)
		sr.rows += len(tx.ops)
		sr.full = sr.rows >= sr.size || tx.truncate
	case *pglogrepl.RelationMessage:
		if m.RelationID == lr.t.oid && !sr.full {
			return false, lr.mapRelation(ctx, m)
		}
	case *pglogrepl.TruncateMessage:
		if !slices.Contains(m.RelationIDs, lr.t.oid) || sr.full {
			return false, nil
		}
		switch {
		case !sr.applyTruncate:
			return false, fmt.Errorf("%w: source.postgres.table: %s was truncated on the source and sync.on_truncate is STOP: set it to APPLY to follow a TRUNCATE, or start a new job", ErrPrecondition, lr.t.display())
		case sr.cur == nil:
			return false, fmt.Errorf("slot %s: pgoutput Truncate message outside a transaction", lr.slot)
		case len(sr.txns) > 0:
			// The transactions before it are the batch; it starts the next.
			sr.full = true
			sr.cur.changes++
		default:
			// The batch is this transaction: what it did to the table
			// before the TRUNCATE is gone, what it did after follows the
			// caller's key check.
			sr.cur.ops, sr.cur.truncate, sr.truncated = nil, true, true
			lr.latest = nil
		}
	case *pglogrepl.InsertMessage:
		return false, sr.change(&pgoChange{op: 'I', rel: m.RelationID, new: tupleValues(m.Tuple)})
	case *pglogrepl.UpdateMessage:
		return false, sr.change(&pgoChange{op: 'U', rel: m.RelationID, oldKind: m.OldTupleType, old: tupleValues(m.OldTuple), new: tupleValues(m.NewTuple)})
	case *pglogrepl.DeleteMessage:
		return false, sr.change(&pgoChange{op: 'D', rel: m.RelationID, oldKind: m.OldTupleType, old: tupleValues(m.OldTuple)})
	}
	return false, nil
}

// change takes an insert, update or delete of any relation.
func (sr *streamRead) change(c *pgoChange) error {
	if c.rel != sr.lr.t.oid {
		return nil
	}
	if sr.cur == nil {
		return fmt.Errorf("slot %s: pgoutput %s message outside a transaction", sr.lr.slot, msgName(c.op))
	}
	sr.cur.changes++
	if sr.full {
		return nil // counted toward the lag only
	}
	return sr.lr.change(sr.cur, c)
}

// pgoChange is an insert, update or delete as the log has it.
type pgoChange struct {
	op  byte // 'I', 'U' or 'D'
	rel uint32
	// oldKind is 'K' when old holds the replica identity's columns only
	// (the others NULL), 'O' for the whole old row (REPLICA IDENTITY FULL),
	// 0 when there is no old tuple (inserts, updates that keep the key).
	oldKind byte
	old     []pgoValue
	new     []pgoValue // nil for deletes
}

func tupleValues(t *pglogrepl.TupleData) []pgoValue {
	if t == nil {
		return nil
	}
	vals := make([]pgoValue, len(t.Columns))
	for i, c := range t.Columns {
		vals[i] = pgoValue{kind: c.DataType, data: c.Data}
	}
	return vals
}

// parsePgoutput decodes one pgoutput message with pglogrepl; a message
// the library cannot take (it indexes some fields unchecked) is an error
// naming it, never a panic.
func parsePgoutput(b []byte) (m pglogrepl.Message, err error) {
	if len(b) == 0 {
		return nil, errors.New("pgoutput message: empty")
	}
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("pgoutput %s message: malformed (%v)", msgName(b[0]), r)
		}
	}()
	m, err = pglogrepl.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("pgoutput %s message: %w", msgName(b[0]), err)
	}
	return m, nil
}

func msgName(k byte) string {
	switch k {
	case 'B':
		return "Begin"
	case 'C':
		return "Commit"
	case 'R':
		return "Relation"
	case 'I':
		return "Insert"
	case 'U':
		return "Update"
	case 'D':
		return "Delete"
	case 'T':
		return "Truncate"
	case 'O':
		return "Origin"
	case 'Y':
		return "Type"
	}
	return fmt.Sprintf("%q", k)
}

// liveStream is a replication stream kept open between reads of one slot
// (a stream re-opened for every read makes the server decode again from
// the slot's restart position, which moves only now and then): the next
// read continues it when it asks from the position the last one answered.
type liveStream struct {
	conn  *pgconn.PgConn
	next  lsn                        // the position a read continues from
	ahead []pglogrepl.Message        // read past the last batch
	rel   *pglogrepl.RelationMessage // the table's, sent once per stream
	idle  *time.Timer                // closes a stream no read continues
}

// streamKeep: a stream kept this long without a read is closed, so that
// another replica can take the slot (openStream waits slotBusyWait) and
// the server does not time the silent stream out.
const streamKeep = 2 * time.Second

func (ls *liveStream) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = ls.conn.Close(ctx)
}

// takeStream hands out the kept stream of key when it continues at from;
// any other kept stream of key is closed.
func (s *Service) takeStream(key string, from lsn) *liveStream {
	s.mu.Lock()
	ls := s.streams[key]
	delete(s.streams, key)
	s.mu.Unlock()
	if ls == nil || !ls.idle.Stop() {
		return nil // none, or its idle timer is closing it
	}
	if ls.next != from {
		ls.close()
		return nil
	}
	return ls
}

// keepStream keeps a stream for the next read until streamKeep passes.
func (s *Service) keepStream(key string, ls *liveStream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.streams[key] != nil {
		ls.close()
		return
	}
	if s.streams == nil {
		s.streams = map[string]*liveStream{}
	}
	s.streams[key] = ls
	ls.idle = time.AfterFunc(streamKeep, func() {
		s.mu.Lock()
		if s.streams[key] == ls {
			delete(s.streams, key)
		}
		s.mu.Unlock()
		ls.close()
	})
}

// closeStreams closes the kept streams of a slot (all with slot "").
func (s *Service) closeStreams(slot string) {
	s.mu.Lock()
	var out []*liveStream
	for k, ls := range s.streams {
		if slot == "" || strings.HasSuffix(k, "/"+slot) {
			if ls.idle.Stop() {
				out = append(out, ls)
			}
			delete(s.streams, k)
		}
	}
	s.mu.Unlock()
	for _, ls := range out {
		ls.close()
	}
}
