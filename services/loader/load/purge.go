package load

import (
	"context"
	"fmt"

	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	"github.com/jackc/pgx/v5"
)

// purgedTables are the bookkeeping tables holding a job's rows by job_id,
// in the order PurgeJob empties them. The id map is not among them: its
// entries name rows that stay in the target, and later jobs resolve
// references through them.
var purgedTables = []string{
	"ledger", "lineage", "quarantine", "filtered", "warnings", "merges",
	"before_images", "finalized", "upserts", "backups", "rollbacks", "fences",
}

// PurgeJob removes what a job left in the target's bookkeeping.
func (s *Service) PurgeJob(ctx context.Context, req *loaderv1.PurgeJobRequest) (*loaderv1.PurgeJobResponse, error) {
	resp, err := s.purgeJob(ctx, req)
	return resp, toStatus(err)
}

func (s *Service) purgeJob(ctx context.Context, req *loaderv1.PurgeJobRequest) (*loaderv1.PurgeJobResponse, error) {
	job := req.GetJobId()
	if job == "" {
		return nil, fmt.Errorf("%w: job_id is required", ErrInvalidArgument)
	}
	for i, tbl := range req.GetTables() {
		if tbl == "" {
			return nil, fmt.Errorf("%w: tables[%d] is empty", ErrInvalidArgument, i)
		}
	}
	// Only the bookkeeping tables are touched, whatever schema the job
	// loaded into: a job stored before reserved schemas were refused can be
	// purged too.
	t, err := s.bookkeeping(ctx, req.GetTarget())
	if err != nil {
		return nil, err
	}
	op := "purge job " + job
	tx, err := t.pool.Begin(ctx)
	if err != nil {
		return nil, t.dbErr(op, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	// The job's rollback lock, exclusively: batches in flight commit first,
	// and a batch after the purge finds the job purged (rollbackGuard).
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('rollback/' || $1))`, job); err != nil {
		return nil, t.dbErr(op, err)
	}
	// Staging tables: of the tables named, and of every table the
	// bookkeeping says the job wrote.
	tables := map[string]bool{}
	for _, tbl := range req.GetTables() {
		tables[tbl] = true
	}
	rows, err := tx.Query(ctx, `SELECT target_table FROM cutover.ledger WHERE job_id = $1
		UNION SELECT target_table FROM cutover.finalized WHERE job_id = $1
		UNION SELECT target_table FROM cutover.upserts WHERE job_id = $1
		UNION SELECT target_table FROM cutover.backups WHERE job_id = $1`, job)
	if err != nil {
		return nil, t.dbErr(op, err)
	}
	written, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, t.dbErr(op, err)
	}
	for _, tbl := range written {
		tables[tbl] = true
	}
	var stages []string
	for tbl := range tables {
		stages = append(stages, stageName(job, tbl))
	}
	rows, err = tx.Query(ctx, `SELECT backup_table FROM cutover.backups WHERE job_id = $1`, job)
	if err != nil {
		return nil, t.dbErr(op, err)
	}
	backups, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, t.dbErr(op, err)
	}
	resp := &loaderv1.PurgeJobResponse{}
	for _, drop := range []struct {
		schema string
		names  []string
	}{{stageSchema, stages}, {backupSchema, backups}} {
		rows, err := tx.Query(ctx, `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND c.relname = ANY($2::text[]) ORDER BY c.relname`, drop.schema, drop.names)
		if err != nil {
			return nil, t.dbErr(op, err)
		}
		existing, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, t.dbErr(op, err)
		}
		for _, name := range existing {
			q := pgx.Identifier{drop.schema, name}.Sanitize()
			if _, err := tx.Exec(ctx, "DROP TABLE IF EXISTS "+q); err != nil {
				return nil, t.dbErr(op+": drop "+q, err)
			}
			resp.DroppedTables = append(resp.DroppedTables, drop.schema+"."+name)
		}
	}
	for _, tbl := range purgedTables {
		q := pgx.Identifier{bookkeepingSchema, tbl}.Sanitize()
		tag, err := tx.Exec(ctx, "DELETE FROM "+q+" WHERE job_id = $1", job)
		if err != nil {
			return nil, t.dbErr(op+": "+q, err)
		}
		resp.Counts = append(resp.Counts, &loaderv1.PurgeCount{Table: bookkeepingSchema + "." + tbl, Rows: tag.RowsAffected()})
	}
	if _, err := tx.Exec(ctx, `INSERT INTO cutover.purged (job_id) VALUES ($1) ON CONFLICT (job_id) DO NOTHING`, job); err != nil {
		return nil, t.dbErr(op, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, t.dbErr(op, err)
	}
	return resp, nil
}
