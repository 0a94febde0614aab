package extract

// Sync by PostgreSQL logical replication: a slot with the built-in pgoutput
// plugin, read over the streaming replication protocol (pgstream.go). No
// stream is kept open between calls, so any extractor replica can serve
// any call and a killed follower loses nothing: the slot only moves to a
// position the ledger holds.
//
// The start: the orchestrator asks ReadChanges for it (empty position) at
// CreateJob, before it opens the full load's snapshot; that makes the
// publication and the slot, so every change after the snapshot is in the
// slot. A transaction that commits between the two is in both: applied
// again as upserts and deletes by key, it leaves the same rows. For an
// exact meeting point, openLogicalSnapshot creates the slot on a
// replication connection with USE_SNAPSHOT and exports that very snapshot
// for the full load (every transaction then is in exactly one of them); it
// needs OpenSnapshotRequest to carry the sync spec, job id and table.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// slotNameRE is what PostgreSQL allows in a replication slot's name.
var slotNameRE = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

// logicalNames returns the publication and the slot of a table's logical
// sync: the spec's, or the defaults derived from the job and table names
// (the same on every call, so ReadChanges finds what CreateJob made).
func logicalNames(sync *commonv1.SyncSpec, jobID, table string) (pub, slot string, err error) {
	l := sync.GetLogical()
	if l == nil {
		return "", "", invalid("sync.logical", "required for a logical-replication sync")
	}
	pub, slot = l.GetPublication(), l.GetSlot()
	if (pub == "" || slot == "") && (jobID == "" || table == "") {
		return "", "", invalid("job_id", "job_id and table are required to name the default publication and slot")
	}
	if pub == "" {
		pub = defaultPublication(jobID, table)
	} else if len(pub) > 63 {
		return "", "", invalid("sync.logical.publication", "%q is longer than 63 bytes", cut(pub))
	}
	if slot == "" {
		slot = defaultSlot(jobID, table)
	} else if !slotNameRE.MatchString(slot) {
		return "", "", invalid("sync.logical.slot", "%q is not a slot name: 1 to 63 lower case letters, digits and underscores", cut(slot))
	}
	return pub, slot, nil
}

// defaultSlot is cutover_<job>_<table> in the letters a slot name allows;
// a name past 63 bytes keeps its start and gets a hash of the whole.
func defaultSlot(jobID, table string) string {
	full := "cutover_" + jobID + "_" + table
	b := []byte(strings.ToLower(full))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			b[i] = '_'
		}
	}
	if len(b) <= 63 {
		return string(b)
	}
	sum := sha256.Sum256([]byte(full))
	return string(b[:54]) + "_" + hex.EncodeToString(sum[:4])
}

// defaultPublication is cutover_<hash of job and table>: one per followed
// table of a job, so dropping it at the end touches no other job.
func defaultPublication(jobID, table string) string {
	sum := sha256.Sum256([]byte(jobID + "\x00" + table))
	return "cutover_" + hex.EncodeToString(sum[:8])
}

// checkLogicalTable refuses tables whose changes cannot be followed by key.
// Publishing a table without replica identity would also make the
// source's own UPDATEs and DELETEs fail, so this must come first.
func checkLogicalTable(ctx context.Context, q querier, t *pgTable) error {
	if len(t.pk) == 0 {
		return fmt.Errorf("%w: source.postgres.table: %s has no primary key: logical sync applies changes by key", ErrPrecondition, t.display())
	}
	if t.relkind != "r" && t.relkind != "p" {
		return fmt.Errorf("%w: source.postgres.table: %s is not a table (relkind %q): only tables are published", ErrPrecondition, t.display(), t.relkind)
	}
	var ident string
	if err := q.QueryRow(ctx, "SELECT relreplident::text FROM pg_catalog.pg_class WHERE oid = $1", t.oid).Scan(&ident); err != nil {
		return err
	}
	switch ident {
	case "d", "f":
		return nil
	}
	return fmt.Errorf("%w: source.postgres.table: %s has REPLICA IDENTITY %s: logical sync needs DEFAULT (the primary key) or FULL", ErrPrecondition, t.display(),
		map[string]string{"n": "NOTHING", "i": "USING INDEX"}[ident])
}

// ensurePublication creates the default publication for the table, or
// checks that a named one covers it and publishes every kind of change.
func ensurePublication(ctx context.Context, pool *pgxpool.Pool, pub string, named bool, t *pgTable) error {
	var ins, upd, del, trunc bool
	err := pool.QueryRow(ctx, "SELECT pubinsert, pubupdate, pubdelete, pubtruncate FROM pg_catalog.pg_publication WHERE pubname = $1", pub).Scan(&ins, &upd, &del, &trunc)
	if errors.Is(err, pgx.ErrNoRows) && named {
		return invalid("sync.logical.publication", "publication %s does not exist on the source (leave it empty to have one made)", pub)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		sql := "CREATE PUBLICATION " + pgx.Identifier{pub}.Sanitize() + " FOR TABLE " + t.ident()
		if t.relkind == "p" {
			// Changes of a partitioned table come as the root's, which is
			// the relation the job reads.
			sql += " WITH (publish_via_partition_root = true)"
		}
		if _, err := pool.Exec(ctx, sql); err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == "42710" {
				return nil // created by a concurrent call
			}
			return fmt.Errorf("create publication %s: %w", pub, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up publication %s: %w", pub, err)
	}
	if !ins || !upd || !del || !trunc {
		return invalid("sync.logical.publication", "publication %s must publish inserts, updates, deletes and truncates", pub)
	}
	var covered bool
	err = pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_publication_tables WHERE pubname = $1 AND schemaname = $2 AND tablename = $3)",
		pub, t.schema, t.name).Scan(&covered)
	if err != nil {
		return fmt.Errorf("look up publication %s: %w", pub, err)
	}
	if !covered {
		return invalid("sync.logical.publication", "publication %s does not cover %s", pub, t.display())
	}
	return nil
}

// slotInfo is a logical slot as pg_replication_slots shows it.
type slotInfo struct {
	confirmed lsn
	plugin    string
	sameDB    bool
}

func lookupSlot(ctx context.Context, q querier, slot string) (*slotInfo, error) {
	var si slotInfo
	var confirmed *string
	err := q.QueryRow(ctx, `SELECT confirmed_flush_lsn::text, plugin::text, database = current_database()
		FROM pg_catalog.pg_replication_slots WHERE slot_name = $1 AND slot_type = 'logical'`, slot).Scan(&confirmed, &si.plugin, &si.sameDB)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up replication slot %s: %w", slot, err)
	}
	if confirmed != nil {
		si.confirmed, _ = parseLSN(*confirmed)
	}
	if si.plugin != "pgoutput" || !si.sameDB {
		return nil, fmt.Errorf("%w: sync.logical.slot: replication slot %s exists for another database or plugin (%s); name a slot of its own", ErrPrecondition, slot, si.plugin)
	}
	return &si, nil
}

// prepareLogical resolves the source and names and checks the table; it
// creates the publication (before any slot: pgoutput reads publications
// as of each change).
func (s *Service) prepareLogical(ctx context.Context, src *commonv1.SourceSpec, sync *commonv1.SyncSpec, jobID, table string) (*pgSrc, *pgTable, string, string, error) {
	spec := src.GetPostgres()
	if spec == nil {
		return nil, nil, "", "", invalid("sync.logical", "needs a postgres source")
	}
	pub, slot, err := logicalNames(sync, jobID, table)
	if err != nil {
		return nil, nil, "", "", err
	}
	p, schema, name, err := s.pgTarget(spec)
	if err != nil {
		return nil, nil, "", "", err
	}
	what := "prepare logical sync of " + schema + "." + name
	var level string
	if err := p.pool.QueryRow(ctx, "SHOW wal_level").Scan(&level); err != nil {
		return nil, nil, "", "", pgErr(err, p, what)
	}
	if level != "logical" {
		return nil, nil, "", "", fmt.Errorf("%w: source.postgres.dsn: the source server has wal_level=%s; logical sync needs wal_level=logical (a server restart)", ErrPrecondition, level)
	}
	t, err := loadTable(ctx, p.pool, schema, name)
	if err != nil {
		return nil, nil, "", "", pgErr(err, p, what)
	}
	if err := checkLogicalTable(ctx, p.pool, t); err != nil {
		return nil, nil, "", "", pgErr(err, p, what)
	}
	if err := ensurePublication(ctx, p.pool, pub, sync.GetLogical().GetPublication() != "", t); err != nil {
		return nil, nil, "", "", pgErr(err, p, what)
	}
	return p, t, pub, slot, nil
}

// ensureLogicalSlot creates the publication and the slot when missing and
// returns the slot's name. A slot made here starts at its creation, not at
// a snapshot: use openLogicalSnapshot for a full load that meets the slot
// exactly; this is for a slot made ahead of the job (or checked again).
func (s *Service) ensureLogicalSlot(ctx context.Context, src *commonv1.SourceSpec, sync *commonv1.SyncSpec, jobID, table string) (string, error) {
	p, t, _, slot, err := s.prepareLogical(ctx, src, sync, jobID, table)
	if err != nil {
		return "", err
	}
	si, err := lookupSlot(ctx, p.pool, slot)
	if err != nil || si != nil {
		return slot, pgErr(err, p, "create slot for "+t.display())
	}
	if _, err := p.pool.Exec(ctx, "SELECT pg_catalog.pg_create_logical_replication_slot($1, 'pgoutput')", slot); err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42710" {
			return slot, nil
		}
		return "", pgErr(fmt.Errorf("create replication slot %s: %w", slot, err), p, "create slot for "+t.display())
	}
	return slot, nil
}

// openLogicalSnapshot creates the table's slot and exports the slot's own
// snapshot for the full load: the slot then holds exactly the changes the
// snapshot does not see. The snapshot lives like OpenSnapshot's (until
// CloseSnapshot or Close); its id is an ordinary PostgreSQL snapshot id.
// The slot must not exist yet: an older slot's changes overlap the load.
func (s *Service) openLogicalSnapshot(ctx context.Context, src *commonv1.SourceSpec, sync *commonv1.SyncSpec, jobID, table string) (id, slot string, err error) {
	p, t, _, slot, err := s.prepareLogical(ctx, src, sync, jobID, table)
	if err != nil {
		return "", "", err
	}
	what := "open logical snapshot of " + t.display()
	si, err := lookupSlot(ctx, p.pool, slot)
	if err != nil {
		return "", "", pgErr(err, p, what)
	}
	if si != nil {
		return "", "", fmt.Errorf("%w: sync.logical.slot: replication slot %s exists already; the full load must start from the slot's creation, so drop it or name a new one", ErrPrecondition, slot)
	}
	cfg := p.pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["replication"] = "database"
	cfg.RuntimeParams["idle_in_transaction_session_timeout"] = "0"
	// A replication connection speaks the simple query protocol only.
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return "", "", pgErr(err, p, what)
	}
	created := false
	fail := func(err error) (string, string, error) {
		_ = conn.Close(context.WithoutCancel(ctx))
		if created {
			_ = dropSlot(context.WithoutCancel(ctx), p.pool, slot)
		}
		return "", "", pgErr(err, p, what)
	}
	if _, err := conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		return fail(err)
	}
	// The slot name passed slotNameRE: letters, digits and underscores.
	// CREATE_REPLICATION_SLOT must be the transaction's first command; it
	// waits for running transactions that write, so it can take a while.
	if err := conn.PgConn().Exec(ctx, "CREATE_REPLICATION_SLOT "+slot+" LOGICAL pgoutput USE_SNAPSHOT").Close(); err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42710" {
			return fail(fmt.Errorf("%w: sync.logical.slot: replication slot %s exists already", ErrPrecondition, slot))
		}
		return fail(fmt.Errorf("create replication slot %s: %w", slot, err))
	}
	created = true
	// Same lock as exportSnapshot's, for the same reason (no TRUNCATE or
	// rewrite while the load reads); here it can only come after the
	// snapshot, and a TRUNCATE in between is in the slot, where the
	// follower refuses it.
	if _, err := conn.Exec(ctx, "LOCK TABLE "+t.ident()+" IN ACCESS SHARE MODE"); err != nil {
		return fail(err)
	}
	var sid pgSnapID
	if err := conn.QueryRow(ctx, `SELECT pg_export_snapshot(), pid, `+backendStart+` FROM pg_stat_activity WHERE pid = pg_backend_pid()`).Scan(&sid.name, &sid.pid, &sid.start); err != nil {
		return fail(err)
	}
	if _, err := parsePGSnapshot(sid.String()); err != nil {
		return fail(fmt.Errorf("the server exported a snapshot named %q, which this extractor does not know how to check", sid.name))
	}
	sn := &pgSnapshot{conn: conn}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fail(fmt.Errorf("%w: extractor is shutting down", ErrUnavailable))
	}
	if s.snaps == nil {
		s.snaps = map[string]*pgSnapshot{}
	}
	s.snaps[sid.String()] = sn
	s.mu.Unlock()
	return sid.String(), slot, nil
}

// dropLogicalSlot drops the table's slot and, when it is the default one
// this package made, its publication. Missing ones are not an error. Call
// it when a job stops following (or fails before its full load): a slot
// left behind keeps the source's WAL forever.
func (s *Service) dropLogicalSlot(ctx context.Context, src *commonv1.SourceSpec, sync *commonv1.SyncSpec, jobID, table string) error {
	pub, slot, err := logicalNames(sync, jobID, table)
	if err != nil {
		return err
	}
	p, _, _, err := s.pgTarget(src.GetPostgres())
	if err != nil {
		return err
	}
	s.closeStreams(slot) // a kept stream holds the slot
	if err := dropSlot(ctx, p.pool, slot); err != nil {
		return pgErr(err, p, "drop replication slot "+slot)
	}
	if sync.GetLogical().GetPublication() == "" {
		if _, err := p.pool.Exec(ctx, "DROP PUBLICATION IF EXISTS "+pgx.Identifier{pub}.Sanitize()); err != nil {
			return pgErr(err, p, "drop publication "+pub)
		}
	}
	return nil
}

// dropSlot drops a slot, waiting a little for a session that still uses it
// (a closed replication connection's server process ends asynchronously).
func dropSlot(ctx context.Context, pool *pgxpool.Pool, slot string) error {
	for tries := 0; ; tries++ {
		_, err := pool.Exec(ctx, "SELECT pg_catalog.pg_drop_replication_slot(slot_name) FROM pg_catalog.pg_replication_slots WHERE slot_name = $1", slot)
		var pe *pgconn.PgError
		if err == nil || !errors.As(err, &pe) || pe.Code != "55006" || tries >= 50 {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ---- reading changes ----

// readLogicalChanges returns the whole transactions after req.position as
// a change batch, after confirming position to the slot: the orchestrator
// passes the ledger's position, so everything before it is applied for
// good. An empty position asks for the start (see the package notes in
// README "Logical replication"): no rows, the slot's confirmed position.
func readLogicalChanges(ctx context.Context, s *Service, req *extractorv1.ReadChangesRequest) (*extractorv1.ReadChangesResponse, error) {
	size := int(req.GetBatchSize())
	if size < 0 || size > MaxBatchSize {
		return nil, invalid("batch_size", "must be between 0 and %d, got %d", MaxBatchSize, size)
	}
	if size == 0 {
		size = DefaultBatchSize
	}
	var from lsn
	if req.GetPosition() != "" {
		var ok bool
		if from, ok = parseLSN(req.GetPosition()); !ok {
			return nil, invalid("position", "%q is not a log sequence number such as 0/16B3748", cut(req.GetPosition()))
		}
	}
	spec := req.GetSource().GetPostgres()
	if spec == nil {
		return nil, invalid("sync.logical", "needs a postgres source")
	}
	pub, slot, err := logicalNames(req.GetSync(), req.GetJobId(), req.GetTable())
	if err != nil {
		return nil, err
	}
	p, schema, name, err := s.pgTarget(spec)
	if err != nil {
		return nil, err
	}
	if from == 0 {
		// The start: the slot's confirmed position, no rows. Asked for when
		// the job is created, which makes the slot if it is not there yet.
		if _, err := s.ensureLogicalSlot(ctx, req.GetSource(), req.GetSync(), req.GetJobId(), req.GetTable()); err != nil {
			return nil, err
		}
		si, err := lookupSlot(ctx, p.pool, slot)
		if err == nil && si == nil {
			err = fmt.Errorf("%w: sync.logical.slot: replication slot %s vanished as it was made", ErrUnavailable, slot)
		}
		if err != nil {
			return nil, pgErr(err, p, "read the start of slot "+slot)
		}
		return &extractorv1.ReadChangesResponse{Batch: &commonv1.Batch{Source: schema + "." + name, Position: si.confirmed.String(), Ops: []byte{}}}, nil
	}
	resp, err := readChanges(ctx, s, p, schema, name, pub, slot, from, size, req.GetColumns(), req.GetSync().GetOnTruncate() == commonv1.TruncatePolicy_TRUNCATE_POLICY_APPLY)
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "55006" {
			// Another reader holds the slot for a moment: retry.
			return nil, fmt.Errorf("%w: replication slot %s: %s", ErrUnavailable, slot, scrub(pe.Message, p.password))
		}
		return nil, pgErr(err, p, "read changes of "+schema+"."+name+" from slot "+slot)
	}
	b := resp.Batch
	b.JobId = req.GetJobId()
	b.Table = req.GetTable()
	b.Seq = req.GetSeq()
	return resp, nil
}

// logicalReader decodes one table's changes.
type logicalReader struct {
	t    *pgTable
	slot string
	pool *pgxpool.Pool // the source, for the types a relation message names
	// colOf maps the table's columns to the relation message's, by name;
	// -1 is a column added after the changes being read (NULL in them).
	colOf []int
	// width is the relation message's columns a tuple must hold.
	width int
	relOK bool
	// latest is each key's newest values in this call's changes: an
	// unchanged TOAST value of a later update is taken from them.
	latest map[string][]pgoValue
	// unchanged counts values left out of the batch for the target to keep.
	unchanged int64
	// rel is the relation message the mapping came from.
	rel *pglogrepl.RelationMessage
}

// mapRelation matches the relation message's columns with the table as
// it is now. A column the table gained since the changes (ADD COLUMN) is
// NULL in them when it has neither a default nor NOT NULL; one it lost or
// retyped stops the follower with both definitions.
func (lr *logicalReader) mapRelation(ctx context.Context, r *pglogrepl.RelationMessage) error {
	byName := make(map[string]int, len(r.Columns))
	oids, mods := make([]uint32, len(r.Columns)), make([]int32, len(r.Columns))
	for i, c := range r.Columns {
		byName[c.Name] = i
		oids[i], mods[i] = c.DataType, c.TypeModifier
	}
	var types []string
	if err := lr.pool.QueryRow(ctx, `SELECT array_agg(pg_catalog.format_type(o, m) ORDER BY n)
		FROM unnest($1::oid[], $2::int4[]) WITH ORDINALITY AS x(o, m, n)`, oids, mods).Scan(&types); err != nil {
		return fmt.Errorf("read the column types of %s's replicated changes: %w", lr.t.display(), err)
	}
	lr.colOf = make([]int, len(lr.t.cols))
	for i, c := range lr.t.cols {
		j, ok := byName[c.name]
		if !ok {
			if err := lr.added(ctx, c); err != nil {
				return err
			}
			lr.colOf[i] = -1
			continue
		}
		if j < len(types) && types[j] != c.sourceType {
			return fmt.Errorf("%w: source.postgres.table: column %s of %s changed type while following: %s in the replicated changes, %s in the table now; a retyped column cannot be followed: start a new job", ErrPrecondition, c.name, lr.t.display(), types[j], c.sourceType)
		}
		lr.colOf[i] = j
		delete(byName, c.name)
	}
	for n, j := range byName {
		now := make([]string, len(lr.t.cols))
		for i, c := range lr.t.cols {
			now[i] = c.name + " " + c.sourceType
		}
		return fmt.Errorf("%w: source.postgres.table: column %s %s of %s, in the replicated changes, is no longer in the table (dropped or renamed while following); the table now has %s: a dropped column cannot be followed: start a new job", ErrPrecondition, n, types[j], lr.t.display(), strings.Join(now, ", "))
	}
	lr.width = 0
	for _, j := range lr.colOf {
		lr.width = max(lr.width, j+1)
	}
	lr.relOK, lr.rel = true, r
	return nil
}

// added checks that a column the changes lack can be NULL in them: the
// rows they changed got NULL when it was added, not a default.
func (lr *logicalReader) added(ctx context.Context, c pgCol) error {
	var def bool
	if err := lr.pool.QueryRow(ctx, `SELECT atthasdef OR atthasmissing OR attnotnull FROM pg_catalog.pg_attribute
		WHERE attrelid = $1 AND attname = $2 AND NOT attisdropped`, lr.t.oid, c.name).Scan(&def); errors.Is(err, pgx.ErrNoRows) {
		// Dropped since this read looked at the table.
		return fmt.Errorf("%w: source.postgres.table: column %s %s of %s is no longer in the table (dropped or renamed while following): a dropped column cannot be followed: start a new job", ErrPrecondition, c.name, c.sourceType, lr.t.display())
	} else if err != nil {
		return fmt.Errorf("look up column %s of %s: %w", c.name, lr.t.display(), err)
	}
	if def {
		return fmt.Errorf("%w: source.postgres.table: column %s %s was added to %s while following with a default or NOT NULL; the rows changed before it cannot be given its value: add nullable columns without a default, or start a new job", ErrPrecondition, c.name, c.sourceType, lr.t.display())
	}
	return nil
}

// inTableOrder puts a tuple's values in the table's column order: NULL
// for a column the changes predate.
func (lr *logicalReader) inTableOrder(vals []pgoValue) []pgoValue {
	if vals == nil {
		return nil
	}
	out := make([]pgoValue, len(lr.t.cols))
	for i, j := range lr.colOf {
		if j >= 0 {
			out[i] = vals[j]
		} else {
			out[i] = pgoValue{kind: 'n'}
		}
	}
	return out
}

// change turns one insert, update or delete into ops: an update that moves
// the key deletes the old key first.
func (lr *logicalReader) change(cur *pgoTxn, c *pgoChange) error {
	if !lr.relOK {
		return fmt.Errorf("slot %s: pgoutput %s message for %s before its Relation message", lr.slot, msgName(c.op), lr.t.display())
	}
	width := lr.width
	check := func(vals []pgoValue, what string) error {
		if len(vals) < width {
			return fmt.Errorf("slot %s: pgoutput %s message: %s tuple has %d columns, %s has %d", lr.slot, msgName(c.op), what, len(vals), lr.t.display(), width)
		}
		return nil
	}
	if lr.latest == nil {
		lr.latest = map[string][]pgoValue{}
	}
	// From here on tuples are in the table's column order.
	if err := check(c.new, "new"); c.op != 'D' && err != nil {
		return err
	}
	if err := check(c.old, "old"); c.old != nil && err != nil {
		return err
	}
	c.new, c.old = lr.inTableOrder(c.new), lr.inTableOrder(c.old)
	switch c.op {
	case 'I':
		lr.latest[lr.key(c.new)] = c.new
		cur.ops = append(cur.ops, pgoOp{op: 'u', vals: c.new})
	case 'U':
		moved := c.old != nil && lr.keyMoved(c.old, c.new)
		if moved {
			if err := lr.keyOf(c.old, c.op); err != nil {
				return err
			}
		}
		// An unchanged TOAST value is not in the log: REPLICA IDENTITY
		// FULL logs the whole old row, which has it; an earlier change of
		// the row in this call has it; else the target keeps its own.
		prev := lr.latest[lr.key(c.new)]
		if moved {
			prev = lr.latest[lr.key(c.old)]
		}
		for i, col := range lr.t.cols {
			if c.new[i].kind != 'u' {
				continue
			}
			switch {
			case c.oldKind == 'O' && c.old[i].kind != 'u':
				c.new[i] = c.old[i]
			case prev != nil && prev[i].kind != 'u':
				c.new[i] = prev[i]
			case moved:
				return fmt.Errorf("%w: source.postgres.table: an update of %s moved a row's key and left the large value of column %s out of the log (unchanged TOAST), so no target row holds it under the new key; set ALTER TABLE %s REPLICA IDENTITY FULL on the source so that updates carry it", ErrPrecondition, lr.t.display(), col.name, lr.t.ident())
			}
		}
		if moved {
			delete(lr.latest, lr.key(c.old))
			cur.ops = append(cur.ops, pgoOp{op: 'd', vals: c.old})
		}
		lr.latest[lr.key(c.new)] = c.new
		cur.ops = append(cur.ops, pgoOp{op: 'u', vals: c.new})
	case 'D':
		if c.old == nil {
			return fmt.Errorf("slot %s: pgoutput Delete message for %s without its old tuple", lr.slot, lr.t.display())
		}
		if err := lr.keyOf(c.old, c.op); err != nil {
			return err
		}
		delete(lr.latest, lr.key(c.old))
		cur.ops = append(cur.ops, pgoOp{op: 'd', vals: c.old})
	}
	return nil
}

// key is a tuple's primary key as one string.
func (lr *logicalReader) key(vals []pgoValue) string {
	var b []byte
	for _, k := range lr.t.pk {
		v := vals[k]
		b = append(append(append(b, v.kind), v.data...), 0)
	}
	return string(b)
}

// keyMoved reports whether an update changed the primary key.
func (lr *logicalReader) keyMoved(old, new []pgoValue) bool {
	for _, k := range lr.t.pk {
		o, n := old[k], new[k]
		if o.kind != n.kind || string(o.data) != string(n.data) {
			return true
		}
	}
	return false
}

// keyOf checks that an old tuple carries the primary key.
func (lr *logicalReader) keyOf(old []pgoValue, op byte) error {
	for _, k := range lr.t.pk {
		if old[k].kind != 't' {
			return fmt.Errorf("%w: source.postgres.table: a %s of %s does not carry key column %s in the log (replica identity other than the primary key?)", ErrPrecondition, msgName(op), lr.t.display(), lr.t.cols[k].name)
		}
	}
	return nil
}

// build makes the change batch of txns' ops: every column of the table,
// a delete with only its key set, source references as the full load's.
func (lr *logicalReader) build(txns []pgoTxn, rows int) (*commonv1.Batch, error) {
	cols := make([]*batch.Builder, len(lr.t.cols))
	for i, c := range lr.t.cols {
		cols[i] = batch.NewBuilder(c.name, c.typ, rows)
	}
	refs := batch.NewBuilder("source_ref", textType, rows)
	b := &commonv1.Batch{Ops: make([]byte, 0, rows)}
	inKey := make([]bool, len(lr.t.cols))
	for _, k := range lr.t.pk {
		inKey[k] = true
	}
	var ref []byte
	n := 0
	for _, tx := range txns {
		for _, op := range tx.ops {
			for i, c := range lr.t.cols {
				v := op.vals[i]
				if v.kind == 'n' || op.op == 'd' && !inKey[i] {
					cols[i].AppendNull()
					continue
				}
				if v.kind == 'u' {
					// The target keeps its value (Column.unchanged).
					cols[i].AppendUnchanged()
					lr.unchanged++
					continue
				}
				if v.kind != 't' {
					return nil, fmt.Errorf("slot %s: column %s of %s: value of kind %q where text was requested", lr.slot, c.name, lr.t.display(), v.kind)
				}
				if rej := appendTextValue(cols[i], c, v.data); rej != nil {
					cols[i].Column().Nulls = batch.SetBit(cols[i].Column().Nulls, cols[i].Len()-1)
					rej.Row = int32(n)
					b.Rejects = append(b.Rejects, rej)
				}
			}
			ref = ref[:0]
			for k, ci := range lr.t.pk {
				if k > 0 {
					ref = append(ref, ',')
				}
				ref = append(append(append(ref, lr.t.cols[ci].name...), '='), op.vals[ci].data...)
			}
			refs.AppendBytes(ref)
			b.Ops = append(b.Ops, op.op)
			n++
		}
	}
	b.NumRows = int32(n)
	b.Columns = make([]*commonv1.Column, len(cols))
	for i, c := range cols {
		b.Columns[i] = c.Column()
	}
	b.SourceRefs = refs.Column()
	return b, nil
}

// appendTextValue appends one value as pgoutput writes it (the type's
// text output, in streamSettings) with the same result the full load's
// binary or text read gives; a value the wire cannot carry gets a
// placeholder slot (the caller marks it NULL) and a reject.
func appendTextValue(bld *batch.Builder, c pgCol, v []byte) *commonv1.Reject {
	switch c.typ {
	case commonv1.ColumnType_COLUMN_TYPE_INT64:
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			bld.AppendInt(0)
			return textReject(c, v)
		}
		bld.AppendInt(n)
	case commonv1.ColumnType_COLUMN_TYPE_FLOAT64:
		// A real read as real, then carried as the full load carries it.
		bits := 64
		if c.base == "float4" {
			bits = 32
		}
		f, err := strconv.ParseFloat(string(v), bits)
		if err != nil {
			bld.AppendFloat(0)
			return textReject(c, v)
		}
		if bits == 32 {
			f = batch.SingleToDouble(float32(f))
		}
		bld.AppendFloat(f)
	case commonv1.ColumnType_COLUMN_TYPE_BOOL:
		if len(v) != 1 || v[0] != 't' && v[0] != 'f' {
			bld.AppendBool(false)
			return textReject(c, v)
		}
		bld.AppendBool(v[0] == 't')
	case commonv1.ColumnType_COLUMN_TYPE_TIMESTAMPTZ:
		us, inf, ok := parseISOTimestamp(string(v), c.base == "timestamptz")
		switch {
		case !ok:
			bld.AppendInt(0)
			return textReject(c, v)
		case inf != 0:
			bld.AppendInt(0)
			return infinityReject(c, inf > 0)
		}
		bld.AppendInt(us)
	case commonv1.ColumnType_COLUMN_TYPE_DATE:
		d, inf, ok := parseISODate(string(v))
		switch {
		case !ok:
			bld.AppendInt(0)
			return textReject(c, v)
		case inf != 0:
			bld.AppendInt(0)
			return infinityReject(c, inf > 0)
		}
		bld.AppendInt(d)
	case commonv1.ColumnType_COLUMN_TYPE_BYTES:
		raw, ok := decodeBytea(v)
		if !ok {
			bld.AppendBytes(nil)
			return textReject(c, v)
		}
		bld.AppendBytes(raw)
	default:
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

func textReject(c pgCol, v []byte) *commonv1.Reject {
	raw := cut(escapeInvalid(string(v)))
	return &commonv1.Reject{Stage: stageExtract, Rule: "wire_format", Column: c.name, Raw: raw,
		Reason: fmt.Sprintf("column %s: the replication stream's value %q is not a %s in the form expected", c.name, raw, c.sourceType)}
}
