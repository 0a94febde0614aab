package orchestrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Job and partition states as stored in the control schema.
const (
	statePending   = "pending"
	stateRunning   = "running"
	stateSucceeded = "succeeded"
	stateFailed    = "failed"
	stateCancelled = "cancelled"
	// stateRolledBack: RollbackJob restored the target; the job stays so.
	stateRolledBack = "rolled_back"
	stateDone       = "done"
	// stateFollowing: the full load is in and the job's tables with a
	// SyncSpec follow their sources (follow.go); also the state of their
	// follower rows in partitions ("sync:<table>").
	stateFollowing = "following"
)

const controlDDL = `
CREATE SCHEMA IF NOT EXISTS cutover_control;
CREATE TABLE IF NOT EXISTS cutover_control.jobs (
	id          text PRIMARY KEY,
	name        text NOT NULL,
	state       text NOT NULL,
	spec        jsonb NOT NULL,
	parallelism int NOT NULL,
	error       text NOT NULL DEFAULT '',
	trace_id    text NOT NULL DEFAULT '',
	trace_parent text NOT NULL DEFAULT '',
	trace_sink  text NOT NULL DEFAULT '',
	report      jsonb,
	created_at  timestamptz NOT NULL DEFAULT now(),
	started_at  timestamptz,
	finished_at timestamptz
);
CREATE TABLE IF NOT EXISTS cutover_control.partitions (
	job_id      text NOT NULL REFERENCES cutover_control.jobs(id) ON DELETE CASCADE,
	id          text NOT NULL,
	table_index int NOT NULL,
	table_name  text NOT NULL,
	lower_key   text NOT NULL,
	upper_key   text NOT NULL,
	state       text NOT NULL,
	attempts    int NOT NULL DEFAULT 0,
	not_before  timestamptz NOT NULL DEFAULT now(),
	lease_owner text NOT NULL DEFAULT '',
	lease_until timestamptz,
	extracted   bigint NOT NULL DEFAULT 0,
	loaded      bigint NOT NULL DEFAULT 0,
	quarantined bigint NOT NULL DEFAULT 0,
	batches     bigint NOT NULL DEFAULT 0,
	error       text NOT NULL DEFAULT '',
	PRIMARY KEY (job_id, id)
);
-- Added after the first release of the schema.
ALTER TABLE cutover_control.jobs ADD COLUMN IF NOT EXISTS ddl jsonb NOT NULL DEFAULT '[]';
ALTER TABLE cutover_control.jobs ADD COLUMN IF NOT EXISTS constraints jsonb;
ALTER TABLE cutover_control.jobs ADD COLUMN IF NOT EXISTS constraints_done boolean NOT NULL DEFAULT false;
ALTER TABLE cutover_control.jobs ADD COLUMN IF NOT EXISTS finish_lease timestamptz;
ALTER TABLE cutover_control.jobs ADD COLUMN IF NOT EXISTS snapshots jsonb NOT NULL DEFAULT '[]';
ALTER TABLE cutover_control.jobs ADD COLUMN IF NOT EXISTS spec_hash text NOT NULL DEFAULT '';
-- Staged target tables already finalized: target table → FinalizeStagedResponse.
ALTER TABLE cutover_control.jobs ADD COLUMN IF NOT EXISTS finalized jsonb NOT NULL DEFAULT '{}';
ALTER TABLE cutover_control.partitions ADD COLUMN IF NOT EXISTS filtered bigint NOT NULL DEFAULT 0;
ALTER TABLE cutover_control.partitions ADD COLUMN IF NOT EXISTS stages jsonb NOT NULL DEFAULT '{}';
ALTER TABLE cutover_control.partitions ADD COLUMN IF NOT EXISTS warned bigint NOT NULL DEFAULT 0;
-- The last Reconcile of the job (Reconciliation), shown with its report.
ALTER TABLE cutover_control.jobs ADD COLUMN IF NOT EXISTS reconciliation jsonb;
-- Re-drive: the job whose quarantine it re-reads, and the references per table.
ALTER TABLE cutover_control.jobs ADD COLUMN IF NOT EXISTS redrive_of text NOT NULL DEFAULT '';
ALTER TABLE cutover_control.jobs ADD COLUMN IF NOT EXISTS redrive jsonb NOT NULL DEFAULT '{}';
-- target.backup: the loader copied the job's target tables (rows per table).
ALTER TABLE cutover_control.jobs ADD COLUMN IF NOT EXISTS backups jsonb;
-- RollbackJob's outcome (RollbackResponse).
ALTER TABLE cutover_control.jobs ADD COLUMN IF NOT EXISTS rollback jsonb;
CREATE INDEX IF NOT EXISTS partitions_claim ON cutover_control.partitions (state, not_before);
-- Sync after the full load: the position each followed table starts from
-- (table spec name → position, read at CreateJob), and StopFollowing's request.
ALTER TABLE cutover_control.jobs ADD COLUMN IF NOT EXISTS sync_start jsonb NOT NULL DEFAULT '{}';
ALTER TABLE cutover_control.jobs ADD COLUMN IF NOT EXISTS stop_following boolean NOT NULL DEFAULT false;
-- A follower row's live figures (lag, changes applied, last poll and key check).
ALTER TABLE cutover_control.partitions ADD COLUMN IF NOT EXISTS position text NOT NULL DEFAULT '';
ALTER TABLE cutover_control.partitions ADD COLUMN IF NOT EXISTS lag_rows bigint NOT NULL DEFAULT 0;
ALTER TABLE cutover_control.partitions ADD COLUMN IF NOT EXISTS lag_seconds double precision NOT NULL DEFAULT 0;
ALTER TABLE cutover_control.partitions ADD COLUMN IF NOT EXISTS upserts bigint NOT NULL DEFAULT 0;
ALTER TABLE cutover_control.partitions ADD COLUMN IF NOT EXISTS deletes bigint NOT NULL DEFAULT 0;
ALTER TABLE cutover_control.partitions ADD COLUMN IF NOT EXISTS polled_at timestamptz;
ALTER TABLE cutover_control.partitions ADD COLUMN IF NOT EXISTS applied_at timestamptz;
ALTER TABLE cutover_control.partitions ADD COLUMN IF NOT EXISTS checked_at timestamptz;
`

// store is the control schema: every job fact lives here, so any replica
// can pick a job up after a crash.
type store struct{ pool *pgxpool.Pool }

func openStore(ctx context.Context, url string) (*store, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("control database: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return &store{pool: pool}, nil
}

func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("control database: %w", err)
	}
	defer tx.Rollback(ctx)
	// Replicas starting together must not race on CREATE.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(7311001)`); err != nil {
		return fmt.Errorf("control schema lock: %w", err)
	}
	if _, err := tx.Exec(ctx, controlDDL); err != nil {
		return fmt.Errorf("control schema: %w", err)
	}
	return tx.Commit(ctx)
}

type jobRow struct {
	id, name, state, errText, traceID, traceParent, traceSink string
	spec                                                      *commonv1.JobSpec
	parallelism                                               int
	report                                                    []byte
	created                                                   time.Time
	started, finished                                         *time.Time
	counts                                                    commonv1.Counts
	total, done                                               int32
	// DDL run on the target for this job, and constraints to add at the end.
	ddl             []string
	constraints     *loaderv1.AddConstraintsRequest
	constraintsDone bool
	// snapshots are the source snapshots by table index.
	snapshots []string
	specHash  string
	// re-drive of this job, with the source references per table spec.
	redriveOf string
	redrive   map[string][]string
	// finalized staged target tables and what finalizing did.
	finalized map[string]*loaderv1.FinalizeStagedResponse
	// backups: rows copied per target table before the job (target.backup),
	// nil when none were taken.
	backups map[string]int64
	// syncStart: per followed table spec, the source position its
	// follower starts from (read before the full load's snapshot).
	syncStart map[string]string
}

type partitionRow struct {
	jobID, id, table string
	tableIndex       int
	rng              *commonv1.KeyRange
	attempts         int
	timing           []byte // stage timings of the last attempt (JSON)
}

func (s *store) insertJob(ctx context.Context, j *jobRow, parts []partitionRow) error {
	specJSON, err := protojson.Marshal(j.spec)
	if err != nil {
		return fmt.Errorf("encode spec: %w", err)
	}
	consJSON, err := protojson.Marshal(j.constraints)
	if err != nil {
		return fmt.Errorf("encode constraints: %w", err)
	}
	ddl := j.ddl
	if ddl == nil {
		ddl = []string{}
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("insert job: %w", err)
	}
	defer tx.Rollback(ctx)
	snaps := j.snapshots
	if snaps == nil {
		snaps = []string{}
	}
	redrive := j.redrive
	if redrive == nil {
		redrive = map[string][]string{}
	}
	syncStart := j.syncStart
	if syncStart == nil {
		syncStart = map[string]string{}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO cutover_control.jobs (id, name, state, spec, parallelism, trace_id, trace_parent, trace_sink, started_at, ddl, constraints, snapshots, spec_hash, redrive_of, redrive, backups, sync_start)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8, now(), $9, $10, $11, $12, $13, $14, $15, $16)`, j.id, j.name, stateRunning, specJSON, j.parallelism, j.traceID, j.traceParent, j.traceSink, ddl, consJSON, snaps, j.specHash,
		j.redriveOf, redrive, j.backups, syncStart); err != nil {
		return fmt.Errorf("insert job: %w", err)
	}
	rows := make([][]any, len(parts))
	for i, p := range parts {
		rows[i] = []any{j.id, p.id, p.tableIndex, p.table, p.rng.GetLower(), p.rng.GetUpper(), statePending}
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"cutover_control", "partitions"},
		[]string{"job_id", "id", "table_index", "table_name", "lower_key", "upper_key", "state"}, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("insert partitions: %w", err)
	}
	return tx.Commit(ctx)
}

const jobSelect = `SELECT j.id, j.name, j.state, j.spec, j.parallelism, j.error, j.trace_id, j.trace_parent, j.trace_sink, j.report,
	j.created_at, j.started_at, j.finished_at, j.ddl, j.constraints, j.constraints_done, j.snapshots, j.spec_hash, j.finalized, j.redrive_of, j.redrive,
	coalesce(sum(p.extracted),0), coalesce(sum(p.loaded),0), coalesce(sum(p.quarantined),0), coalesce(sum(p.batches),0), coalesce(sum(p.filtered),0), coalesce(sum(p.warned),0),
	count(p.id) FILTER (WHERE p.state <> 'following'), count(p.id) FILTER (WHERE p.state = 'done' AND p.id NOT LIKE 'sync:%'),
	j.sync_start
	FROM cutover_control.jobs j LEFT JOIN cutover_control.partitions p ON p.job_id = j.id`

func scanJob(row pgx.Row) (*jobRow, error) {
	var j jobRow
	var spec, cons []byte
	var fin map[string]json.RawMessage
	var total, done int64
	if err := row.Scan(&j.id, &j.name, &j.state, &spec, &j.parallelism, &j.errText, &j.traceID, &j.traceParent, &j.traceSink, &j.report,
		&j.created, &j.started, &j.finished, &j.ddl, &cons, &j.constraintsDone, &j.snapshots, &j.specHash, &fin, &j.redriveOf, &j.redrive,
		&j.counts.Extracted, &j.counts.Loaded, &j.counts.Quarantined, &j.counts.Batches, &j.counts.Filtered, &j.counts.Warned, &total, &done, &j.syncStart); err != nil {
		return nil, err
	}
	j.finalized = map[string]*loaderv1.FinalizeStagedResponse{}
	for table, raw := range fin {
		f := &loaderv1.FinalizeStagedResponse{}
		if err := protojson.Unmarshal(raw, f); err != nil {
			return nil, fmt.Errorf("decode finalize outcome of job %s, table %s: %w", j.id, table, err)
		}
		j.finalized[table] = f
	}
	j.total, j.done = int32(total), int32(done)
	j.spec = &commonv1.JobSpec{}
	if err := protojson.Unmarshal(spec, j.spec); err != nil {
		return nil, fmt.Errorf("decode stored spec of job %s: %w", j.id, err)
	}
	j.constraints = &loaderv1.AddConstraintsRequest{}
	if len(cons) > 0 {
		if err := protojson.Unmarshal(cons, j.constraints); err != nil {
			return nil, fmt.Errorf("decode stored constraints of job %s: %w", j.id, err)
		}
	}
	return &j, nil
}

func (s *store) getJob(ctx context.Context, id string) (*jobRow, error) {
	j, err := scanJob(s.pool.QueryRow(ctx, jobSelect+` WHERE j.id = $1 GROUP BY j.id`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: %q", ErrJobNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("get job %s: %w", id, err)
	}
	return j, nil
}

func (s *store) listJobs(ctx context.Context, limit int) ([]*jobRow, error) {
	rows, err := s.pool.Query(ctx, jobSelect+` GROUP BY j.id ORDER BY j.created_at DESC, j.id LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	defer rows.Close()
	var out []*jobRow
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, fmt.Errorf("list jobs: %w", err)
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// claim leases one runnable partition: pending and due, or running with an
// expired lease (its orchestrator died). SKIP LOCKED lets replicas share.
func (s *store) claim(ctx context.Context, owner string, lease time.Duration) (*partitionRow, error) {
	var p partitionRow
	var lower, upper string
	// Claims are serialised: two workers counting a job's running
	// partitions at the same moment would both see room under its
	// parallelism and both take one (READ COMMITTED sees no uncommitted
	// claim). A claim is one short statement, so one lock for all is cheap.
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("claim partition: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(7311003)`); err != nil {
		return nil, fmt.Errorf("claim partition: %w", err)
	}
	err = tx.QueryRow(ctx, `
		UPDATE cutover_control.partitions p
		SET state = 'running', lease_owner = $1, lease_until = now() + $2::interval, attempts = p.attempts + 1
		WHERE (p.job_id, p.id) = (
			SELECT c.job_id, c.id FROM cutover_control.partitions c
			JOIN cutover_control.jobs j ON j.id = c.job_id
			WHERE j.state = 'running'
			  AND ((c.state = 'pending' AND c.not_before <= now()) OR (c.state = 'running' AND c.lease_until < now()))
			  AND (SELECT count(*) FROM cutover_control.partitions r
			       WHERE r.job_id = c.job_id AND r.state = 'running' AND r.lease_until >= now()) < j.parallelism
			ORDER BY j.created_at, c.table_index, c.id
			LIMIT 1
			FOR UPDATE OF c SKIP LOCKED)
		RETURNING p.job_id, p.id, p.table_index, p.table_name, p.lower_key, p.upper_key, p.attempts`,
		owner, lease.String()).Scan(&p.jobID, &p.id, &p.tableIndex, &p.table, &lower, &upper, &p.attempts)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("claim partition: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("claim partition: %w", err)
	}
	p.rng = &commonv1.KeyRange{Lower: lower, Upper: upper}
	return &p, nil
}

// progress records a partition's counts so far and renews its lease.
// It reports false when the lease was lost or the job left running state.
func (s *store) progress(ctx context.Context, p *partitionRow, owner string, lease time.Duration, c *commonv1.Counts) (bool, error) {
	tag, err := s.pool.Exec(ctx, `
		UPDATE cutover_control.partitions p SET extracted = $4, loaded = $5, quarantined = $6, batches = $7,
			lease_until = now() + $8::interval, filtered = $9, warned = $10
		FROM cutover_control.jobs j
		WHERE p.job_id = $1 AND p.id = $2 AND p.lease_owner = $3 AND p.state = 'running' AND j.id = p.job_id AND j.state = 'running'`,
		p.jobID, p.id, owner, c.GetExtracted(), c.GetLoaded(), c.GetQuarantined(), c.GetBatches(), lease.String(), c.GetFiltered(), c.GetWarned())
	if err != nil {
		return false, fmt.Errorf("record progress: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

func (s *store) finishPartition(ctx context.Context, p *partitionRow, owner string, c *commonv1.Counts) error {
	_, err := s.pool.Exec(ctx, `
		UPDATE cutover_control.partitions SET state = 'done', extracted = $4, loaded = $5, quarantined = $6, batches = $7,
			error = '', lease_until = NULL, filtered = $8, stages = $9::jsonb, warned = $10
		WHERE job_id = $1 AND id = $2 AND lease_owner = $3`,
		p.jobID, p.id, owner, c.GetExtracted(), c.GetLoaded(), c.GetQuarantined(), c.GetBatches(), c.GetFiltered(), timingOrEmpty(p.timing), c.GetWarned())
	if err != nil {
		return fmt.Errorf("finish partition %s: %w", p.id, err)
	}
	return nil
}

// retryPartition puts a partition back after a transient failure.
func (s *store) retryPartition(ctx context.Context, p *partitionRow, owner string, backoff time.Duration, cause error) error {
	_, err := s.pool.Exec(ctx, `
		UPDATE cutover_control.partitions SET state = 'pending', not_before = now() + $4::interval, error = $5, lease_until = NULL
		WHERE job_id = $1 AND id = $2 AND lease_owner = $3 AND state = 'running'`,
		p.jobID, p.id, owner, backoff.String(), cause.Error())
	if err != nil {
		return fmt.Errorf("requeue partition %s: %w", p.id, err)
	}
	return nil
}

// failPartition marks the partition and its job failed.
func (s *store) failPartition(ctx context.Context, p *partitionRow, owner string, cause error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("fail partition: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `UPDATE cutover_control.partitions SET state = 'failed', error = $3, lease_until = NULL
		WHERE job_id = $1 AND id = $2`, p.jobID, p.id, cause.Error()); err != nil {
		return fmt.Errorf("fail partition: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE cutover_control.jobs SET state = 'failed', error = $2, finished_at = now()
		WHERE id = $1 AND state = 'running'`, p.jobID, fmt.Sprintf("partition %s: %v", p.id, cause)); err != nil {
		return fmt.Errorf("fail job: %w", err)
	}
	return tx.Commit(ctx)
}

// releasePartition hands a partition back untouched (job cancelled).
func (s *store) releasePartition(ctx context.Context, p *partitionRow, owner string) error {
	_, err := s.pool.Exec(ctx, `UPDATE cutover_control.partitions SET state = 'pending', lease_until = NULL
		WHERE job_id = $1 AND id = $2 AND lease_owner = $3 AND state = 'running'`, p.jobID, p.id, owner)
	if err != nil {
		return fmt.Errorf("release partition: %w", err)
	}
	return nil
}

func (s *store) jobState(ctx context.Context, id string) (string, error) {
	var st string
	if err := s.pool.QueryRow(ctx, `SELECT state FROM cutover_control.jobs WHERE id = $1`, id).Scan(&st); err != nil {
		return "", fmt.Errorf("job state: %w", err)
	}
	return st, nil
}

// finishableJobs lists running jobs whose partitions are all done.
func (s *store) finishableJobs(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT j.id FROM cutover_control.jobs j WHERE j.state = 'running'
		AND NOT EXISTS (SELECT 1 FROM cutover_control.partitions p WHERE p.job_id = j.id AND p.state NOT IN ('done', 'following'))`)
	if err != nil {
		return nil, fmt.Errorf("finishable jobs: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// claimFinish lets one replica (and one worker) at a time end a job: the
// end runs post-load DDL, which must not run twice at once.
func (s *store) claimFinish(ctx context.Context, id string, lease time.Duration) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE cutover_control.jobs SET finish_lease = now() + $2::interval
		WHERE id = $1 AND state = 'running' AND (finish_lease IS NULL OR finish_lease < now())`, id, lease.String())
	if err != nil {
		return false, fmt.Errorf("claim the end of job %s: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

func (s *store) releaseFinish(ctx context.Context, id string) {
	_, _ = s.pool.Exec(ctx, `UPDATE cutover_control.jobs SET finish_lease = NULL WHERE id = $1`, id)
}

// endJob moves a running job to its final state with its report, once.
func (s *store) endJob(ctx context.Context, id, state, errText string, report []byte) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE cutover_control.jobs SET state = $2, error = $3, report = $4, finished_at = coalesce(finished_at, now())
		WHERE id = $1 AND state = 'running'`, id, state, errText, report)
	if err != nil {
		return false, fmt.Errorf("end job %s: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// constraintsAdded records the DDL of the post-load constraints, once.
func (s *store) constraintsAdded(ctx context.Context, id string, stmts []string) error {
	if stmts == nil {
		stmts = []string{}
	}
	_, err := s.pool.Exec(ctx, `UPDATE cutover_control.jobs SET constraints_done = true, ddl = ddl || $2::jsonb WHERE id = $1 AND NOT constraints_done`, id, stmts)
	if err != nil {
		return fmt.Errorf("record constraints of %s: %w", id, err)
	}
	return nil
}

// setFinalized records what finalizing a staged target table did.
func (s *store) setFinalized(ctx context.Context, id, table string, r *loaderv1.FinalizeStagedResponse) error {
	data, err := protojson.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode finalize outcome: %w", err)
	}
	_, err = s.pool.Exec(ctx, `UPDATE cutover_control.jobs SET finalized = finalized || jsonb_build_object($2::text, $3::jsonb) WHERE id = $1`, id, table, data)
	if err != nil {
		return fmt.Errorf("record finalize outcome of %s, table %s: %w", id, table, err)
	}
	return nil
}

func (s *store) setReconciliation(ctx context.Context, id string, r *orchestratorv1.Reconciliation) error {
	data, err := protojson.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode reconciliation: %w", err)
	}
	if _, err := s.pool.Exec(ctx, `UPDATE cutover_control.jobs SET reconciliation = $2 WHERE id = $1`, id, data); err != nil {
		return fmt.Errorf("store reconciliation of %s: %w", id, err)
	}
	return nil
}

// reconciliation returns the job's last reconciliation, nil when none ran.
func (s *store) reconciliation(ctx context.Context, id string) (*orchestratorv1.Reconciliation, error) {
	var data []byte
	if err := s.pool.QueryRow(ctx, `SELECT reconciliation FROM cutover_control.jobs WHERE id = $1`, id).Scan(&data); err != nil {
		return nil, fmt.Errorf("read reconciliation of %s: %w", id, err)
	}
	if data == nil {
		return nil, nil
	}
	r := &orchestratorv1.Reconciliation{}
	if err := protojson.Unmarshal(data, r); err != nil {
		return nil, fmt.Errorf("decode reconciliation of %s: %w", id, err)
	}
	return r, nil
}

func (s *store) setReport(ctx context.Context, id string, report []byte) error {
	_, err := s.pool.Exec(ctx, `UPDATE cutover_control.jobs SET report = $2 WHERE id = $1`, id, report)
	if err != nil {
		return fmt.Errorf("store report of %s: %w", id, err)
	}
	return nil
}

// failJob ends a running job as failed, e.g. when a threshold is passed.
func (s *store) failJob(ctx context.Context, id, errText string) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE cutover_control.jobs SET state = 'failed', finished_at = now(), error = $2
		WHERE id = $1 AND state = 'running'`, id, errText)
	if err != nil {
		return false, fmt.Errorf("fail job %s: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

func (s *store) cancelJob(ctx context.Context, id string) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE cutover_control.jobs SET state = 'cancelled', finished_at = now(), error = 'cancelled by request'
		WHERE id = $1 AND state IN ('pending', 'running', 'following')`, id)
	if err != nil {
		return false, fmt.Errorf("cancel job %s: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// resumeJob puts a failed or cancelled job back to running; its unfinished
// partitions start over from their ledger position.
func (s *store) resumeJob(ctx context.Context, id string) (bool, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("resume job: %w", err)
	}
	defer tx.Rollback(ctx)
	tag, err := tx.Exec(ctx, `UPDATE cutover_control.jobs SET state = 'running', finished_at = NULL, error = '', report = NULL
		WHERE id = $1 AND state IN ('failed', 'cancelled')`, id)
	if err != nil {
		return false, fmt.Errorf("resume job %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return false, nil
	}
	if _, err := tx.Exec(ctx, `UPDATE cutover_control.partitions SET state = 'pending', attempts = 0, not_before = now(), error = '', lease_until = NULL
		WHERE job_id = $1 AND state NOT IN ('done', 'following')`, id); err != nil {
		return false, fmt.Errorf("resume partitions of %s: %w", id, err)
	}
	return true, tx.Commit(ctx)
}

type partitionCounts struct {
	id, table, state, errText string
	counts                    *commonv1.Counts
	stages                    []byte
}

func timingOrEmpty(b []byte) string {
	if len(b) == 0 {
		return "{}"
	}
	return string(b)
}

func (s *store) partitions(ctx context.Context, jobID string) ([]partitionCounts, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, table_name, state, error, extracted, loaded, quarantined, batches, filtered, stages::text, warned
		FROM cutover_control.partitions WHERE job_id = $1 AND id NOT LIKE 'sync:%' ORDER BY table_index, id`, jobID)
	if err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", jobID, err)
	}
	defer rows.Close()
	var out []partitionCounts
	for rows.Next() {
		p := partitionCounts{counts: &commonv1.Counts{}}
		if err := rows.Scan(&p.id, &p.table, &p.state, &p.errText, &p.counts.Extracted, &p.counts.Loaded, &p.counts.Quarantined, &p.counts.Batches, &p.counts.Filtered, &p.stages, &p.counts.Warned); err != nil {
			return nil, fmt.Errorf("partitions of %s: %w", jobID, err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func jobState(s string) orchestratorv1.JobState {
	switch s {
	case statePending:
		return orchestratorv1.JobState_JOB_STATE_PENDING
	case stateRunning:
		return orchestratorv1.JobState_JOB_STATE_RUNNING
	case stateSucceeded:
		return orchestratorv1.JobState_JOB_STATE_SUCCEEDED
	case stateFailed:
		return orchestratorv1.JobState_JOB_STATE_FAILED
	case stateCancelled:
		return orchestratorv1.JobState_JOB_STATE_CANCELLED
	case stateRolledBack:
		return orchestratorv1.JobState_JOB_STATE_ROLLED_BACK
	case stateFollowing:
		return orchestratorv1.JobState_JOB_STATE_FOLLOWING
	}
	return orchestratorv1.JobState_JOB_STATE_UNSPECIFIED
}

func ts(t *time.Time) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return timestamppb.New(*t)
}

// rollBack marks an ended job rolled back with the loader's outcome. It
// reports false when the job is not ended (running again, or resumed).
func (s *store) rollBack(ctx context.Context, id string, r *loaderv1.RollbackResponse) (bool, error) {
	data, err := protojson.Marshal(r)
	if err != nil {
		return false, fmt.Errorf("encode rollback outcome: %w", err)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE cutover_control.jobs SET state = 'rolled_back', rollback = $2, finish_lease = NULL
		WHERE id = $1 AND state IN ('succeeded', 'failed', 'cancelled', 'rolled_back')`, id, data)
	if err != nil {
		return false, fmt.Errorf("record rollback of %s: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// rollbackOutcome returns what RollbackJob did to the job, nil if nothing.
func (s *store) rollbackOutcome(ctx context.Context, id string) (*loaderv1.RollbackResponse, error) {
	var data []byte
	if err := s.pool.QueryRow(ctx, `SELECT rollback FROM cutover_control.jobs WHERE id = $1`, id).Scan(&data); err != nil {
		return nil, fmt.Errorf("read rollback of %s: %w", id, err)
	}
	if data == nil {
		return nil, nil
	}
	r := &loaderv1.RollbackResponse{}
	if err := protojson.Unmarshal(data, r); err != nil {
		return nil, fmt.Errorf("decode rollback of %s: %w", id, err)
	}
	return r, nil
}
