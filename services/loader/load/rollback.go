package load

import (
	"context"
	"errors"
	"fmt"
	"strings"

	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/protobuf/encoding/protojson"
)

// backupSchema holds the copies BackupTables takes.
const backupSchema = "cutover_backup"

// BackupTables copies target tables as they are before a job writes.
func (s *Service) BackupTables(ctx context.Context, req *loaderv1.BackupTablesRequest) (*loaderv1.BackupTablesResponse, error) {
	resp, err := s.backupTables(ctx, req)
	return resp, toStatus(err)
}

func (s *Service) backupTables(ctx context.Context, req *loaderv1.BackupTablesRequest) (*loaderv1.BackupTablesResponse, error) {
	if req.GetJobId() == "" {
		return nil, fmt.Errorf("%w: job_id is required", ErrInvalidArgument)
	}
	for i, tbl := range req.GetTables() {
		if tbl == "" {
			return nil, fmt.Errorf("%w: tables[%d] is empty", ErrInvalidArgument, i)
		}
	}
	t, schema, err := s.target(ctx, req.GetTarget())
	if err != nil {
		return nil, err
	}
	op := "back up tables of job " + req.GetJobId()
	tx, err := t.pool.Begin(ctx)
	if err != nil {
		return nil, t.dbErr(op, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	// Two calls for one job copy each table once.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('backup/' || $1))`, req.GetJobId()); err != nil {
		return nil, t.dbErr(op, err)
	}
	resp := &loaderv1.BackupTablesResponse{}
	for _, tbl := range req.GetTables() {
		var n int64
		err := tx.QueryRow(ctx, `SELECT rows FROM cutover.backups WHERE job_id = $1 AND target_table = $2`, req.GetJobId(), tbl).Scan(&n)
		if err == nil {
			resp.Rows = append(resp.Rows, n)
			continue
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return nil, t.dbErr(op, err)
		}
		name := stageName(req.GetJobId(), tbl)
		src := pgx.Identifier{schema, tbl}.Sanitize()
		tag, err := tx.Exec(ctx, fmt.Sprintf("CREATE TABLE %s AS SELECT * FROM %s", pgx.Identifier{backupSchema, name}.Sanitize(), src))
		if err != nil {
			return nil, t.dbErr("back up "+schema+"."+tbl, err)
		}
		n = tag.RowsAffected()
		if _, err := tx.Exec(ctx, `INSERT INTO cutover.backups (job_id, target_table, backup_table, rows) VALUES ($1, $2, $3, $4)`,
			req.GetJobId(), tbl, name, n); err != nil {
			return nil, t.dbErr("back up "+schema+"."+tbl, err)
		}
		resp.Rows = append(resp.Rows, n)
	}
	if req.GetTruncate() {
		if resp.Truncated, err = truncateOnce(ctx, t, tx, schema, req.GetJobId(), req.GetTables()); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, t.dbErr(op, err)
	}
	return resp, nil
}

// truncateOnce empties the job's tables that it has not emptied yet, in
// one TRUNCATE (a table referenced by another of them goes with it), and
// records it with their copies in the same transaction: a crash before the
// commit leaves the tables as they were, one after it never empties them
// again, so rows the job loaded afterwards stay. The caller holds the
// job's backup lock and has taken the copies in tx.
func truncateOnce(ctx context.Context, t *target, tx pgx.Tx, schema, jobID string, tables []string) (bool, error) {
	rows, err := tx.Query(ctx, `SELECT target_table FROM cutover.backups WHERE job_id = $1 AND target_table = ANY($2) AND NOT truncated`, jobID, tables)
	if err != nil {
		return false, t.dbErr("truncate tables of job "+jobID, err)
	}
	todo, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return false, t.dbErr("truncate tables of job "+jobID, err)
	}
	if len(todo) == 0 {
		return false, nil
	}
	names := make([]string, len(todo))
	for i, tbl := range todo {
		names[i] = pgx.Identifier{schema, tbl}.Sanitize()
	}
	// Rows the job loaded into a table are in the ledger and would be
	// lost: refuse rather than empty it after its first batch.
	var loaded bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM cutover.ledger WHERE job_id = $1 AND target_table = ANY($2))`, jobID, todo).Scan(&loaded); err != nil {
		return false, t.dbErr("truncate tables of job "+jobID, err)
	}
	if loaded {
		return false, fmt.Errorf("%w: job %s already loaded rows into %s; its tables are not emptied after its first batch", ErrFailedPrecondition, jobID, strings.Join(names, ", "))
	}
	if _, err := tx.Exec(ctx, "TRUNCATE "+strings.Join(names, ", ")); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "0A000" {
			// A table outside the job references one of them.
			return false, fmt.Errorf("%w: target.if_exists truncate: %s (%s); add the referencing table to the job or use append or upsert",
				ErrFailedPrecondition, scrub(pgErr.Message, t.secret), scrub(pgErr.Detail, t.secret))
		}
		return false, t.dbErr("truncate "+strings.Join(names, ", "), err)
	}
	if _, err := tx.Exec(ctx, `UPDATE cutover.backups SET truncated = true WHERE job_id = $1 AND target_table = ANY($2)`, jobID, todo); err != nil {
		return false, t.dbErr("truncate tables of job "+jobID, err)
	}
	return true, nil
}

// Rollback undoes a job in the target in one transaction.
func (s *Service) Rollback(ctx context.Context, req *loaderv1.RollbackRequest) (*loaderv1.RollbackResponse, error) {
	resp, err := s.rollback(ctx, req)
	return resp, toStatus(err)
}

// undo is one table's rollback.
type undo struct {
	res      *loaderv1.TableRollback
	tbl      string   // quoted schema.table
	backup   string   // quoted backup table, "" without one
	keyCols  []string // primary key
	cols     []string // every column, in order
	ins      []string // columns an INSERT may name (not generated)
	identity bool     // an identity column is among ins
	// truncated: the job emptied the table after its copy
	// (target.if_exists truncate); it is emptied again and refilled
	// from the copy.
	truncated bool
}

func (s *Service) rollback(ctx context.Context, req *loaderv1.RollbackRequest) (*loaderv1.RollbackResponse, error) {
	if req.GetJobId() == "" {
		return nil, fmt.Errorf("%w: job_id is required", ErrInvalidArgument)
	}
	seen := map[string]bool{}
	for i, tbl := range req.GetTables() {
		if tbl == "" {
			return nil, fmt.Errorf("%w: tables[%d] is empty", ErrInvalidArgument, i)
		}
		if seen[tbl] {
			return nil, fmt.Errorf("%w: tables[%d]: %q is named twice", ErrInvalidArgument, i, tbl)
		}
		seen[tbl] = true
	}
	t, schema, err := s.target(ctx, req.GetTarget())
	if err != nil {
		return nil, err
	}
	op := "roll back job " + req.GetJobId()
	tx, err := t.pool.Begin(ctx)
	if err != nil {
		return nil, t.dbErr(op, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('rollback/' || $1))`, req.GetJobId()); err != nil {
		return nil, t.dbErr(op, err)
	}
	// A purged job has nothing left to roll back with.
	var purged bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM cutover.purged WHERE job_id = $1)`, req.GetJobId()).Scan(&purged); err != nil {
		return nil, t.dbErr(op, err)
	}
	if purged {
		return nil, fmt.Errorf("%w: job %s was deleted and its bookkeeping purged; it can no longer be rolled back", ErrFailedPrecondition, req.GetJobId())
	}
	// A job rolls back once; a second call answers with the first's outcome.
	var stored []byte
	err = tx.QueryRow(ctx, `SELECT outcome::text FROM cutover.rollbacks WHERE job_id = $1`, req.GetJobId()).Scan(&stored)
	if err == nil {
		resp := &loaderv1.RollbackResponse{}
		if err := protojson.Unmarshal(stored, resp); err != nil {
			return nil, fmt.Errorf("%s: stored outcome: %w", op, err)
		}
		return resp, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, t.dbErr(op, err)
	}

	undos := make([]*undo, len(req.GetTables()))
	for i, tbl := range req.GetTables() {
		if undos[i], err = t.planUndo(ctx, tx, schema, req.GetJobId(), tbl); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
	}
	// Children first (reverse order): a child row the job pointed at a
	// parent row it inserted points back before that parent row goes. In
	// a table, deletions come first: a unique value a restored row takes
	// back is free by then. The jobs only add and change rows, so every
	// row a restored row references is there.
	if err := refill(ctx, t, tx, undos); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	for i := len(undos) - 1; i >= 0; i-- {
		if undos[i].truncated {
			continue
		}
		if err := undos[i].remove(ctx, t, tx, req.GetJobId()); err != nil {
			return nil, fmt.Errorf("%s: table %s: %w", op, req.GetTables()[i], err)
		}
		if err := undos[i].restore(ctx, t, tx, req.GetJobId()); err != nil {
			return nil, fmt.Errorf("%s: table %s: %w", op, req.GetTables()[i], err)
		}
	}
	// The id map's entries of this job name rows that are gone; staging
	// tables of an unfinished job hold rows that never arrived.
	if _, err := tx.Exec(ctx, `DELETE FROM cutover.id_map WHERE job_id = $1`, req.GetJobId()); err != nil {
		return nil, t.dbErr(op+": id map", err)
	}
	for _, tbl := range req.GetTables() {
		if _, err := tx.Exec(ctx, "DROP TABLE IF EXISTS "+pgx.Identifier{stageSchema, stageName(req.GetJobId(), tbl)}.Sanitize()); err != nil {
			return nil, t.dbErr(op+": staging table of "+tbl, err)
		}
	}
	resp := &loaderv1.RollbackResponse{}
	for _, u := range undos {
		resp.Tables = append(resp.Tables, u.res)
	}
	js, err := protojson.Marshal(resp)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO cutover.rollbacks (job_id, outcome) VALUES ($1, $2)`, req.GetJobId(), string(js)); err != nil {
		return nil, t.dbErr(op, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, t.dbErr(op, err)
	}
	return resp, nil
}

// rollbackGuard keeps a job's writes and its rollback apart: a write
// holds the job's lock shared until it commits, Rollback holds it
// exclusively, so a rollback waits for the batches in flight, and a batch
// that comes after it (a cancelled job's last one) is refused instead of
// landing in the restored target.
func rollbackGuard(ctx context.Context, t *target, tx pgx.Tx, jobID string) error {
	// Two statements: the check's snapshot must be taken after the lock
	// is granted, to see a rollback that committed meanwhile.
	var pb pgx.Batch
	pb.Queue(`SELECT pg_advisory_xact_lock_shared(hashtext('rollback/' || $1))`, jobID)
	var done string
	pb.Queue(`SELECT CASE WHEN EXISTS (SELECT 1 FROM cutover.rollbacks WHERE job_id = $1) THEN 'rolled back'
		WHEN EXISTS (SELECT 1 FROM cutover.purged WHERE job_id = $1) THEN 'deleted (its bookkeeping was purged)' ELSE '' END`, jobID).QueryRow(func(row pgx.Row) error {
		return row.Scan(&done)
	})
	if err := tx.SendBatch(ctx, &pb).Close(); err != nil {
		return t.dbErr("check for a rollback of job "+jobID, err)
	}
	if done != "" {
		return fmt.Errorf("%w: job %s was %s; it writes nothing more", ErrFailedPrecondition, jobID, done)
	}
	return nil
}

// columnsSQL lists a table's columns with whether they are generated and
// identity columns.
const columnsSQL = `
SELECT a.attname, a.attgenerated <> '', a.attidentity <> ''
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`

// planUndo reads what the rollback of one table needs and refuses a table
// that cannot be put back exactly.
func (t *target) planUndo(ctx context.Context, tx pgx.Tx, schema, jobID, tbl string) (*undo, error) {
	u := &undo{res: &loaderv1.TableRollback{Table: tbl}, tbl: pgx.Identifier{schema, tbl}.Sanitize()}
	rows, err := tx.Query(ctx, columnsSQL, schema, tbl)
	if err != nil {
		return nil, t.dbErr("read columns of "+u.tbl, err)
	}
	for rows.Next() {
		var name string
		var generated, identity bool
		if err := rows.Scan(&name, &generated, &identity); err != nil {
			rows.Close()
			return nil, t.dbErr("read columns of "+u.tbl, err)
		}
		u.cols = append(u.cols, name)
		if !generated {
			u.ins = append(u.ins, name)
			u.identity = u.identity || identity
		}
	}
	if err := rows.Err(); err != nil {
		return nil, t.dbErr("read columns of "+u.tbl, err)
	}
	if len(u.cols) == 0 {
		return nil, fmt.Errorf("%w: target table %s", ErrNotFound, u.tbl)
	}
	if u.keyCols, err = primaryKeyTx(ctx, tx, schema, tbl); err != nil {
		return nil, t.dbErr("read primary key of "+u.tbl, err)
	}
	var backup string
	err = tx.QueryRow(ctx, `SELECT backup_table, truncated FROM cutover.backups WHERE job_id = $1 AND target_table = $2`, jobID, tbl).Scan(&backup, &u.truncated)
	switch {
	case err == nil:
		u.backup = pgx.Identifier{backupSchema, backup}.Sanitize()
		u.res.FromBackup = true
		return u, nil
	case !errors.Is(err, pgx.ErrNoRows):
		return nil, t.dbErr("read backups", err)
	}
	if len(u.keyCols) == 0 {
		return nil, fmt.Errorf("%w: target table %s has no primary key and the job took no backup of it, so its rows cannot be told apart; set target.backup", ErrFailedPrecondition, u.tbl)
	}
	// A row loaded without its key (the target filled it) cannot be found
	// again.
	var keyless bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM cutover.lineage l `+lineageEntries+`
WHERE l.job_id = $1 AND l.target_table = $2 AND r.key = '')`, jobID, tbl).Scan(&keyless); err != nil {
		return nil, t.dbErr("read lineage", err)
	}
	if keyless {
		return nil, fmt.Errorf("%w: the job loaded rows into %s without their primary key (the target filled it), so they cannot be found again; set target.backup", ErrFailedPrecondition, u.tbl)
	}
	return u, nil
}

// refill undoes target.if_exists truncate: the tables the job emptied are
// emptied again (what is in them came after the copy) in one TRUNCATE and
// refilled from their copies, parents first, so that every reference of a
// restored row finds its row. deleted counts the rows removed, restored
// the rows copied back.
func refill(ctx context.Context, t *target, tx pgx.Tx, undos []*undo) error {
	var names []string
	for _, u := range undos {
		if !u.truncated {
			continue
		}
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+u.tbl).Scan(&u.res.Deleted); err != nil {
			return t.dbErr("count the rows of "+u.tbl, err)
		}
		names = append(names, u.tbl)
	}
	if len(names) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, "TRUNCATE "+strings.Join(names, ", ")); err != nil {
		return t.dbErr("empty "+strings.Join(names, ", "), err)
	}
	for _, u := range undos {
		if !u.truncated {
			continue
		}
		overriding := ""
		if u.identity {
			overriding = " OVERRIDING SYSTEM VALUE"
		}
		ins := idents(u.ins)
		tag, err := tx.Exec(ctx, fmt.Sprintf(`INSERT INTO %s (%s)%s SELECT %s FROM %s`, u.tbl, ins, overriding, ins, u.backup))
		if err != nil {
			return t.dbErr("table "+u.res.Table+": copy the rows back from "+u.backup, err)
		}
		u.res.Restored = tag.RowsAffected()
	}
	return nil
}

func primaryKeyTx(ctx context.Context, tx pgx.Tx, schema, table string) ([]string, error) {
	rows, err := tx.Query(ctx, primaryKeySQL, schema, table)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// rowText renders the alias's columns as one row value's text: equal
// exactly when every column's text is (jsonb would take 1.0 for 1.00).
func (u *undo) rowText(alias string) string {
	parts := make([]string, len(u.cols))
	for i, c := range u.cols {
		parts[i] = alias + "." + pgx.Identifier{c}.Sanitize()
	}
	return "ROW(" + strings.Join(parts, ", ") + ")::text"
}

func (u *undo) keyMatch(a, b string) string {
	parts := make([]string, len(u.keyCols))
	for i, k := range u.keyCols {
		q := pgx.Identifier{k}.Sanitize()
		parts[i] = a + "." + q + " = " + b + "." + q
	}
	return strings.Join(parts, " AND ")
}

// remove deletes the rows the job added: without a backup, the keys it
// inserted (the lineage's and the before images without a row, less the
// keys it updated); with one, every row that is not in the copy.
func (u *undo) remove(ctx context.Context, t *target, tx pgx.Tx, jobID string) error {
	var sql string
	switch {
	case u.backup == "":
		unescaped := strings.ReplaceAll(lineageUnescapeSQL, "r.ref", "r.key")
		sql = fmt.Sprintf(`DELETE FROM %s t WHERE (%s) IN (
  SELECT %s FROM cutover.lineage l %s WHERE l.job_id = $1 AND l.target_table = $2
  UNION SELECT key FROM cutover.before_images WHERE job_id = $1 AND target_table = $2 AND row IS NULL
  EXCEPT SELECT key FROM cutover.before_images WHERE job_id = $1 AND target_table = $2 AND row IS NOT NULL)`,
			u.tbl, keyExpr("t", u.keyCols), unescaped, lineageEntries)
	case len(u.keyCols) > 0:
		// Rows the job changed are updated back in restore, so that rows
		// of other tables referencing them never see them gone.
		sql = fmt.Sprintf(`DELETE FROM %s t WHERE NOT EXISTS (SELECT 1 FROM %s b WHERE %s)`, u.tbl, u.backup, u.keyMatch("b", "t"))
	default:
		// Without a key rows are equal by value: delete the copies of a
		// value beyond the number the backup holds.
		sql = fmt.Sprintf(`WITH tc AS (SELECT ctid AS id, %s AS v, row_number() OVER (PARTITION BY %s) AS n FROM %s t),
bc AS (SELECT %s AS v, count(*) AS n FROM %s b GROUP BY 1)
DELETE FROM %s t WHERE t.ctid IN (SELECT tc.id FROM tc LEFT JOIN bc ON bc.v = tc.v WHERE tc.n > coalesce(bc.n, 0))`,
			u.rowText("t"), u.rowText("t"), u.tbl, u.rowText("b"), u.backup, u.tbl)
	}
	var args []any
	if u.backup == "" {
		args = []any{jobID, u.res.Table}
	}
	tag, err := tx.Exec(ctx, sql, args...)
	if err != nil {
		return t.dbErr("delete the job's rows", err)
	}
	u.res.Deleted = tag.RowsAffected()
	return nil
}

// restore puts back the rows the job changed: from the before images, or
// the backup's rows that differ from or are missing in the table.
func (u *undo) restore(ctx context.Context, t *target, tx pgx.Tx, jobID string) error {
	ins := idents(u.ins)
	overriding := ""
	if u.identity {
		overriding = " OVERRIDING SYSTEM VALUE"
	}
	var sets []string
	for _, c := range u.ins {
		isKey := false
		for _, k := range u.keyCols {
			isKey = isKey || k == c
		}
		if !isKey {
			q := pgx.Identifier{c}.Sanitize()
			sets = append(sets, q+" = EXCLUDED."+q)
		}
	}
	onConflict := "DO NOTHING"
	if len(sets) > 0 {
		// Only rows that differ: restored counts what changed back.
		onConflict = "DO UPDATE SET " + strings.Join(sets, ", ") + " WHERE " + u.rowText("t") + " IS DISTINCT FROM " + u.rowText("EXCLUDED")
	}
	sel := "r." + strings.Join(strings.Split(ins, ", "), ", r.")
	var sql string
	var args []any
	switch {
	case u.backup == "":
		// An upsert, not an update: a row someone deleted since comes back
		// too.
		sql = fmt.Sprintf(`INSERT INTO %s AS t (%s)%s SELECT %s FROM cutover.before_images b
CROSS JOIN LATERAL jsonb_populate_record(NULL::%s, b.row) r
WHERE b.job_id = $1 AND b.target_table = $2 AND b.row IS NOT NULL
ON CONFLICT (%s) %s`, u.tbl, ins, overriding, sel, u.tbl, idents(u.keyCols), onConflict)
		args = []any{jobID, u.res.Table}
	case len(u.keyCols) > 0:
		sql = fmt.Sprintf(`INSERT INTO %s AS t (%s)%s SELECT %s FROM %s r ON CONFLICT (%s) %s`,
			u.tbl, ins, overriding, sel, u.backup, idents(u.keyCols), onConflict)
	default:
		sql = fmt.Sprintf(`WITH bc AS (SELECT ctid AS id, %s AS v, row_number() OVER (PARTITION BY %s) AS n FROM %s b),
tc AS (SELECT %s AS v, count(*) AS n FROM %s t GROUP BY 1)
INSERT INTO %s (%s)%s SELECT %s FROM %s r WHERE r.ctid IN (SELECT bc.id FROM bc LEFT JOIN tc ON tc.v = bc.v WHERE bc.n > coalesce(tc.n, 0))`,
			u.rowText("b"), u.rowText("b"), u.backup, u.rowText("t"), u.tbl,
			u.tbl, ins, overriding, sel, u.backup)
	}
	tag, err := tx.Exec(ctx, sql, args...)
	if err != nil {
		return t.dbErr("restore the rows the job changed", err)
	}
	u.res.Restored = tag.RowsAffected()
	return nil
}
