// Package jobstore is the orchestrator's control schema: jobs, their
// partitions and followers, leases, counts and reports. Every fact about a
// job lives here, so any replica can pick a job up after a crash; nothing
// else in the orchestrator writes SQL.
package jobstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/kit/dsn"
	"github.com/cutover/cutover/services/kit/migrate"
	"github.com/cutover/cutover/services/kit/sealbox"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Job and partition states as stored in the control schema.
const (
	StatePending   = "pending"
	StateRunning   = "running"
	StateSucceeded = "succeeded"
	StateFailed    = "failed"
	StateCancelled = "cancelled"
	// StateRolledBack: RollbackJob restored the target; the job stays so.
	StateRolledBack = "rolled_back"
	StateDone       = "done"
	// StateFollowing: the full load is in and the job's tables with a
	// SyncSpec follow their sources (package follow); also the state of their
	// follower rows in partitions ("sync:<table>").
	StateFollowing = "following"
	// StateDeleting: DeleteJob is removing the job (the loader purges the
	// target's bookkeeping, then the control rows go); a DeleteJob again,
	// or retention, finishes it.
	StateDeleting = "deleting"
)

// EndedStates are the states of a job that runs no more and can be
// deleted.
var EndedStates = []string{StateSucceeded, StateFailed, StateCancelled, StateRolledBack}

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
ALTER TABLE cutover_control.jobs ADD COLUMN IF NOT EXISTS estimates jsonb NOT NULL DEFAULT '[]';
ALTER TABLE cutover_control.jobs ADD COLUMN IF NOT EXISTS snapshots_released boolean NOT NULL DEFAULT false;
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
-- ListJobs pages newest first by (created_at, id).
CREATE INDEX IF NOT EXISTS jobs_created ON cutover_control.jobs (created_at DESC, id);
-- Sync after the full load: the position each followed table starts from
-- (table spec name → position, read at CreateJob), and StopFollowing's request.
ALTER TABLE cutover_control.jobs ADD COLUMN IF NOT EXISTS sync_start jsonb NOT NULL DEFAULT '{}';
ALTER TABLE cutover_control.jobs ADD COLUMN IF NOT EXISTS stop_following boolean NOT NULL DEFAULT false;
-- A follower row's live figures (lag, changes applied, last poll and key check).
ALTER TABLE cutover_control.partitions ADD COLUMN IF NOT EXISTS position text NOT NULL DEFAULT '';
ALTER TABLE cutover_control.partitions ADD COLUMN IF NOT EXISTS lag_rows bigint NOT NULL DEFAULT 0;
ALTER TABLE cutover_control.partitions ADD COLUMN IF NOT EXISTS lag_seconds double precision NOT NULL DEFAULT 0;
ALTER TABLE cutover_control.partitions ADD COLUMN IF NOT EXISTS commit_delay_seconds double precision NOT NULL DEFAULT 0;
ALTER TABLE cutover_control.partitions ADD COLUMN IF NOT EXISTS kept_values bigint NOT NULL DEFAULT 0;
ALTER TABLE cutover_control.partitions ADD COLUMN IF NOT EXISTS upserts bigint NOT NULL DEFAULT 0;
ALTER TABLE cutover_control.partitions ADD COLUMN IF NOT EXISTS deletes bigint NOT NULL DEFAULT 0;
ALTER TABLE cutover_control.partitions ADD COLUMN IF NOT EXISTS polled_at timestamptz;
ALTER TABLE cutover_control.partitions ADD COLUMN IF NOT EXISTS applied_at timestamptz;
ALTER TABLE cutover_control.partitions ADD COLUMN IF NOT EXISTS checked_at timestamptz;
-- Fencing token of a partition's lease: raised by every claim (Claim), so
-- each holder has its own; the loader refuses the batches of an older one.
ALTER TABLE cutover_control.partitions ADD COLUMN IF NOT EXISTS epoch bigint NOT NULL DEFAULT 0;
`

// Store is the control schema: every job fact lives here, so any replica
// can pick a job up after a crash. box seals the secrets of what it
// stores (seal.go); every replica sharing the schema needs the same key.
type Store struct {
	pool *pgxpool.Pool
	box  *sealbox.Box
}

// ErrJobNotFound: no job with that id.
var ErrJobNotFound = errors.New("job not found")

// ErrLeaseLost: the partition's lease was taken over by another claim (its
// epoch moved on); what the old holder would write is not written.
var ErrLeaseLost = errors.New("partition lease lost")

// Pool is the control database's pool, which the job queue shares.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close closes the connection pool.
func (s *Store) Close() { s.pool.Close() }

// Open connects to the control schema at url, creating or updating it;
// box seals and opens the secrets of stored specs.
func Open(ctx context.Context, url string, box *sealbox.Box) (*Store, error) {
	if box == nil {
		return nil, errors.New("control database: no secret key to seal stored secrets with")
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("control database: %s", dsn.Scrub(err.Error(), url))
	}
	// The job queue holds a connection to listen on and its workers use
	// the pool beside the RPCs: the default (4 on small machines) is short.
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = max(cfg.MaxConns, 16)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		// The error may quote the URL; the URL may hold a password.
		return nil, fmt.Errorf("control database: %s", dsn.Scrub(err.Error(), url))
	}
	if err := migrateControl(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return &Store{pool: pool, box: box}, nil
}

func migrateControl(ctx context.Context, pool *pgxpool.Pool) error {
	// Replicas starting together must not race on CREATE, nor lock tables
	// a running replica uses: see kit/migrate.
	if err := migrate.Apply(ctx, pool, 7311001, "cutover_control", "control", controlDDL+auditDDL); err != nil {
		return fmt.Errorf("control schema: %w", err)
	}
	return nil
}

type Job struct {
	ID, Name, State, ErrText, TraceID, TraceParent, TraceSink string
	Spec                                                      *commonv1.JobSpec
	Parallelism                                               int
	Report                                                    []byte
	Created                                                   time.Time
	Started, Finished                                         *time.Time
	Counts                                                    commonv1.Counts
	Total, Done                                               int32
	// DDL run on the target for this job, and constraints to add at the end.
	DDL             []string
	Constraints     *loaderv1.AddConstraintsRequest
	ConstraintsDone bool
	// Snapshots are the source snapshots by table index.
	Snapshots []string
	// Estimates are the sources' row estimates by table index, as they
	// were at CreateJob (0: the source gave none).
	Estimates []int64
	// SnapshotsReleased: the snapshot hold of a failed or cancelled job
	// ran out and its snapshots were closed (a resume would read other data).
	SnapshotsReleased bool
	SpecHash          string
	// re-drive of this job, with the source references per table spec.
	RedriveOf string
	Redrive   map[string][]string
	// Finalized staged target tables and what finalizing did.
	Finalized map[string]*loaderv1.FinalizeStagedResponse
	// Backups: rows copied per target table before the job (target.backup),
	// nil when none were taken.
	Backups map[string]int64
	// SyncStart: per followed table spec, the source position its
	// follower starts from (read before the full load's snapshot).
	SyncStart map[string]string
}

type Partition struct {
	JobID, ID, Table string
	TableIndex       int
	Range            *commonv1.KeyRange
	Attempts         int
	// Epoch is the claim's fencing token (Claim): raised by every claim of
	// the partition, passed to the loader with its work.
	Epoch  int64
	Timing []byte // stage timings of the last attempt (JSON)
}

func (s *Store) InsertJob(ctx context.Context, j *Job, parts []Partition) error {
	specJSON, err := s.sealedJSON(j.Spec)
	if err != nil {
		return fmt.Errorf("encode spec: %w", err)
	}
	consJSON, err := s.sealedJSON(j.Constraints)
	if err != nil {
		return fmt.Errorf("encode constraints: %w", err)
	}
	ddl := j.DDL
	if ddl == nil {
		ddl = []string{}
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("insert job: %w", err)
	}
	defer tx.Rollback(ctx)
	snaps := j.Snapshots
	if snaps == nil {
		snaps = []string{}
	}
	redrive := j.Redrive
	if redrive == nil {
		redrive = map[string][]string{}
	}
	syncStart := j.SyncStart
	if syncStart == nil {
		syncStart = map[string]string{}
	}
	estimates := j.Estimates
	if estimates == nil {
		estimates = []int64{}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO cutover_control.jobs (id, name, state, spec, parallelism, trace_id, trace_parent, trace_sink, started_at, ddl, constraints, snapshots, spec_hash, redrive_of, redrive, backups, sync_start, estimates)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8, now(), $9, $10, $11, $12, $13, $14, $15, $16, $17)`, j.ID, j.Name, StateRunning, specJSON, j.Parallelism, j.TraceID, j.TraceParent, j.TraceSink, ddl, consJSON, snaps, j.SpecHash,
		j.RedriveOf, redrive, j.Backups, syncStart, estimates); err != nil {
		return fmt.Errorf("insert job: %w", err)
	}
	rows := make([][]any, len(parts))
	for i, p := range parts {
		rows[i] = []any{j.ID, p.ID, p.TableIndex, p.Table, p.Range.GetLower(), p.Range.GetUpper(), StatePending}
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
	j.sync_start, j.estimates, j.snapshots_released
	FROM cutover_control.jobs j LEFT JOIN cutover_control.partitions p ON p.job_id = j.id`

func (s *Store) scanJob(row pgx.Row) (*Job, error) {
	var j Job
	var spec, cons []byte
	var fin map[string]json.RawMessage
	var total, done int64
	if err := row.Scan(&j.ID, &j.Name, &j.State, &spec, &j.Parallelism, &j.ErrText, &j.TraceID, &j.TraceParent, &j.TraceSink, &j.Report,
		&j.Created, &j.Started, &j.Finished, &j.DDL, &cons, &j.ConstraintsDone, &j.Snapshots, &j.SpecHash, &fin, &j.RedriveOf, &j.Redrive,
		&j.Counts.Extracted, &j.Counts.Loaded, &j.Counts.Quarantined, &j.Counts.Batches, &j.Counts.Filtered, &j.Counts.Warned, &total, &done, &j.SyncStart, &j.Estimates, &j.SnapshotsReleased); err != nil {
		return nil, err
	}
	j.Finalized = map[string]*loaderv1.FinalizeStagedResponse{}
	for table, raw := range fin {
		f := &loaderv1.FinalizeStagedResponse{}
		if err := s.openJSON(raw, f); err != nil {
			return nil, fmt.Errorf("decode finalize outcome of job %s, table %s: %w", j.ID, table, err)
		}
		j.Finalized[table] = f
	}
	j.Total, j.Done = int32(total), int32(done)
	j.Spec = &commonv1.JobSpec{}
	if err := s.openJSON(spec, j.Spec); err != nil {
		return nil, fmt.Errorf("decode stored spec of job %s: %w", j.ID, err)
	}
	j.Constraints = &loaderv1.AddConstraintsRequest{}
	if len(cons) > 0 {
		if err := s.openJSON(cons, j.Constraints); err != nil {
			return nil, fmt.Errorf("decode stored constraints of job %s: %w", j.ID, err)
		}
	}
	return &j, nil
}

func (s *Store) GetJob(ctx context.Context, id string) (*Job, error) {
	j, err := s.scanJob(s.pool.QueryRow(ctx, jobSelect+` WHERE j.id = $1 GROUP BY j.id`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: %q", ErrJobNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("get job %s: %w", id, err)
	}
	return j, nil
}

// ClaimPartition takes partition part of job jobID for owner for lease, if
// it is pending and due or its holder's lease ran out (that orchestrator
// died or was paused), and the job runs fewer partitions than its
// parallelism. Every claim raises the partition's epoch, read in the same
// statement: the holder's fencing token, which the loader checks with
// every batch and which every later write of the holder here must match.
//
// A job's partitions are claimed in order (tables in spec order, then
// ranges): one that is due waits while an earlier one of its job is due
// too, so that a job of parallelism 1 loads parent tables before their
// children however River orders the runs.
//
// Not claimed, it answers nil and how long to wait before asking again:
// 0 when there is nothing to do (the partition or its job ended, or a live
// lease holds it: that holder finishes it, or its lease runs out and the
// dispatcher hands the partition out again).
func (s *Store) ClaimPartition(ctx context.Context, jobID, part, owner string, lease time.Duration) (*Partition, time.Duration, error) {
	var p Partition
	var lower, upper string
	// Claims are serialised: two workers counting a job's running
	// partitions at the same moment would both see room under its
	// parallelism and both take one (READ COMMITTED sees no uncommitted
	// claim). A claim is one short statement, so one lock for all is cheap.
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("claim partition: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(7311003)`); err != nil {
		return nil, 0, fmt.Errorf("claim partition: %w", err)
	}
	var due, room bool
	var waitMillis int64
	err = tx.QueryRow(ctx, `
		SELECT (c.state = 'pending' AND c.not_before <= now()) OR (c.state = 'running' AND c.lease_until < now()),
			(SELECT count(*) FROM cutover_control.partitions r
			 WHERE r.job_id = c.job_id AND r.state = 'running' AND r.lease_until >= now()) < j.parallelism
			AND NOT EXISTS (SELECT 1 FROM cutover_control.partitions e
			 WHERE e.job_id = c.job_id AND (e.table_index, e.id) < (c.table_index, c.id)
			   AND ((e.state = 'pending' AND e.not_before <= now()) OR (e.state = 'running' AND e.lease_until < now()))),
			CASE WHEN c.state = 'pending' THEN ceil(greatest(extract(epoch FROM c.not_before - now()), 0) * 1000)::bigint ELSE 0 END
		FROM cutover_control.partitions c JOIN cutover_control.jobs j ON j.id = c.job_id
		WHERE c.job_id = $1 AND c.id = $2 AND j.state = 'running' AND c.state IN ('pending', 'running')
		FOR UPDATE OF c`, jobID, part).Scan(&due, &room, &waitMillis)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, 0, nil
	case err != nil:
		return nil, 0, fmt.Errorf("claim partition: %w", err)
	case waitMillis > 0:
		return nil, time.Duration(waitMillis) * time.Millisecond, nil
	case !due:
		return nil, 0, nil
	case !room:
		return nil, parallelismWait, nil
	}
	err = tx.QueryRow(ctx, `
		UPDATE cutover_control.partitions p
		SET state = 'running', lease_owner = $3, lease_until = now() + $4::interval, attempts = p.attempts + 1, epoch = p.epoch + 1
		WHERE p.job_id = $1 AND p.id = $2
		RETURNING p.job_id, p.id, p.table_index, p.table_name, p.lower_key, p.upper_key, p.attempts, p.epoch`,
		jobID, part, owner, lease.String()).Scan(&p.JobID, &p.ID, &p.TableIndex, &p.Table, &lower, &upper, &p.Attempts, &p.Epoch)
	if err != nil {
		return nil, 0, fmt.Errorf("claim partition: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, 0, fmt.Errorf("claim partition: %w", err)
	}
	p.Range = &commonv1.KeyRange{Lower: lower, Upper: upper}
	return &p, 0, nil
}

// parallelismWait is how long a partition waits for room under its job's
// parallelism before it asks again.
const parallelismWait = 250 * time.Millisecond

// Progress records a partition's counts so far and renews its lease.
// It reports false when the job left running state, and ErrLeaseLost
// when another claim took the partition over.
func (s *Store) Progress(ctx context.Context, p *Partition, owner string, lease time.Duration, c *commonv1.Counts) (bool, error) {
	tag, err := s.pool.Exec(ctx, `
		UPDATE cutover_control.partitions p SET extracted = $4, loaded = $5, quarantined = $6, batches = $7,
			lease_until = now() + $8::interval, filtered = $9, warned = $10
		FROM cutover_control.jobs j
		WHERE p.job_id = $1 AND p.id = $2 AND p.lease_owner = $3 AND p.epoch = $11 AND p.state = 'running' AND j.id = p.job_id AND j.state = 'running'`,
		p.JobID, p.ID, owner, c.GetExtracted(), c.GetLoaded(), c.GetQuarantined(), c.GetBatches(), lease.String(), c.GetFiltered(), c.GetWarned(), p.Epoch)
	if err != nil {
		return false, fmt.Errorf("record progress: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return true, nil
	}
	var epoch int64
	err = s.pool.QueryRow(ctx, `SELECT epoch FROM cutover_control.partitions WHERE job_id = $1 AND id = $2`, p.JobID, p.ID).Scan(&epoch)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return false, fmt.Errorf("record progress: %w", err)
	}
	if err == nil && epoch != p.Epoch {
		return false, fmt.Errorf("record progress of partition %s: %w: claimed at epoch %d, now at %d", p.ID, ErrLeaseLost, p.Epoch, epoch)
	}
	return false, nil
}

// FinishPartition records a partition done with its counts; ErrLeaseLost
// when another claim took it over meanwhile (nothing is written).
func (s *Store) FinishPartition(ctx context.Context, p *Partition, owner string, c *commonv1.Counts) error {
	tag, err := s.pool.Exec(ctx, `
		UPDATE cutover_control.partitions SET state = 'done', extracted = $4, loaded = $5, quarantined = $6, batches = $7,
			error = '', lease_until = NULL, filtered = $8, stages = $9::jsonb, warned = $10
		WHERE job_id = $1 AND id = $2 AND lease_owner = $3 AND epoch = $11`,
		p.JobID, p.ID, owner, c.GetExtracted(), c.GetLoaded(), c.GetQuarantined(), c.GetBatches(), c.GetFiltered(), timingOrEmpty(p.Timing), c.GetWarned(), p.Epoch)
	if err != nil {
		return fmt.Errorf("finish partition %s: %w", p.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("finish partition %s: %w (epoch %d)", p.ID, ErrLeaseLost, p.Epoch)
	}
	return nil
}

// RetryPartition puts a partition back after a transient failure.
func (s *Store) RetryPartition(ctx context.Context, p *Partition, owner string, backoff time.Duration, cause error) error {
	_, err := s.pool.Exec(ctx, `
		UPDATE cutover_control.partitions SET state = 'pending', not_before = now() + $4::interval, error = $5, lease_until = NULL
		WHERE job_id = $1 AND id = $2 AND lease_owner = $3 AND epoch = $6 AND state = 'running'`,
		p.JobID, p.ID, owner, backoff.String(), scrub(cause.Error()), p.Epoch)
	if err != nil {
		return fmt.Errorf("requeue partition %s: %w", p.ID, err)
	}
	return nil
}

// FailPartition marks the partition and its job failed; ErrLeaseLost
// when another claim took the partition over meanwhile: a holder that lost
// its lease fails neither.
func (s *Store) FailPartition(ctx context.Context, p *Partition, owner string, cause error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("fail partition: %w", err)
	}
	defer tx.Rollback(ctx)
	tag, err := tx.Exec(ctx, `UPDATE cutover_control.partitions SET state = 'failed', error = $3, lease_until = NULL
		WHERE job_id = $1 AND id = $2 AND epoch = $4`, p.JobID, p.ID, scrub(cause.Error()), p.Epoch)
	if err != nil {
		return fmt.Errorf("fail partition: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("fail partition %s: %w (epoch %d)", p.ID, ErrLeaseLost, p.Epoch)
	}
	if _, err := tx.Exec(ctx, `UPDATE cutover_control.jobs SET state = 'failed', error = $2, finished_at = now()
		WHERE id = $1 AND state = 'running'`, p.JobID, scrub(fmt.Sprintf("partition %s: %v", p.ID, cause))); err != nil {
		return fmt.Errorf("fail job: %w", err)
	}
	return tx.Commit(ctx)
}

// ReleasePartition hands a partition back untouched (job cancelled).
func (s *Store) ReleasePartition(ctx context.Context, p *Partition, owner string) error {
	_, err := s.pool.Exec(ctx, `UPDATE cutover_control.partitions SET state = 'pending', lease_until = NULL
		WHERE job_id = $1 AND id = $2 AND lease_owner = $3 AND epoch = $4 AND state = 'running'`, p.JobID, p.ID, owner, p.Epoch)
	if err != nil {
		return fmt.Errorf("release partition: %w", err)
	}
	return nil
}

// FinishableJobs lists running jobs whose partitions are all done and
// whose end nobody holds (ClaimFinish).
func (s *Store) FinishableJobs(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT j.id FROM cutover_control.jobs j WHERE j.state = 'running'
		AND (j.finish_lease IS NULL OR j.finish_lease < now())
		AND NOT EXISTS (SELECT 1 FROM cutover_control.partitions p WHERE p.job_id = j.id AND p.state NOT IN ('done', 'following'))`)
	if err != nil {
		return nil, fmt.Errorf("finishable jobs: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// ClaimFinish lets one replica (and one worker) at a time end a job: the
// end runs post-load DDL, which must not run twice at once.
func (s *Store) ClaimFinish(ctx context.Context, id string, lease time.Duration) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE cutover_control.jobs SET finish_lease = now() + $2::interval
		WHERE id = $1 AND state = 'running' AND (finish_lease IS NULL OR finish_lease < now())`, id, lease.String())
	if err != nil {
		return false, fmt.Errorf("claim the end of job %s: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

func (s *Store) ReleaseFinish(ctx context.Context, id string) {
	_, _ = s.pool.Exec(ctx, `UPDATE cutover_control.jobs SET finish_lease = NULL WHERE id = $1`, id)
}

// EndJob moves a running job to its final state with its report, once.
func (s *Store) EndJob(ctx context.Context, id, state, errText string, report []byte) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE cutover_control.jobs SET state = $2, error = $3, report = $4, finished_at = coalesce(finished_at, now())
		WHERE id = $1 AND state = 'running'`, id, state, scrub(errText), report)
	if err != nil {
		return false, fmt.Errorf("end job %s: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// ConstraintsAdded records the DDL of the post-load constraints, once.
func (s *Store) ConstraintsAdded(ctx context.Context, id string, stmts []string) error {
	if stmts == nil {
		stmts = []string{}
	}
	_, err := s.pool.Exec(ctx, `UPDATE cutover_control.jobs SET constraints_done = true, ddl = ddl || $2::jsonb WHERE id = $1 AND NOT constraints_done`, id, stmts)
	if err != nil {
		return fmt.Errorf("record constraints of %s: %w", id, err)
	}
	return nil
}

// SetFinalized records what finalizing a staged target table did.
func (s *Store) SetFinalized(ctx context.Context, id, table string, r *loaderv1.FinalizeStagedResponse) error {
	data, err := s.sealedJSON(r)
	if err != nil {
		return fmt.Errorf("encode finalize outcome: %w", err)
	}
	_, err = s.pool.Exec(ctx, `UPDATE cutover_control.jobs SET finalized = finalized || jsonb_build_object($2::text, $3::jsonb) WHERE id = $1`, id, table, data)
	if err != nil {
		return fmt.Errorf("record finalize outcome of %s, table %s: %w", id, table, err)
	}
	return nil
}

func (s *Store) SetReconciliation(ctx context.Context, id string, r *orchestratorv1.Reconciliation) error {
	data, err := s.sealedJSON(r)
	if err != nil {
		return fmt.Errorf("encode reconciliation: %w", err)
	}
	if _, err := s.pool.Exec(ctx, `UPDATE cutover_control.jobs SET reconciliation = $2 WHERE id = $1`, id, data); err != nil {
		return fmt.Errorf("store reconciliation of %s: %w", id, err)
	}
	return nil
}

// Reconciliation returns the job's last reconciliation, nil when none ran.
func (s *Store) Reconciliation(ctx context.Context, id string) (*orchestratorv1.Reconciliation, error) {
	var data []byte
	if err := s.pool.QueryRow(ctx, `SELECT reconciliation FROM cutover_control.jobs WHERE id = $1`, id).Scan(&data); err != nil {
		return nil, fmt.Errorf("read reconciliation of %s: %w", id, err)
	}
	if data == nil {
		return nil, nil
	}
	r := &orchestratorv1.Reconciliation{}
	if err := s.openJSON(data, r); err != nil {
		return nil, fmt.Errorf("decode reconciliation of %s: %w", id, err)
	}
	return r, nil
}

func (s *Store) SetReport(ctx context.Context, id string, report []byte) error {
	_, err := s.pool.Exec(ctx, `UPDATE cutover_control.jobs SET report = $2 WHERE id = $1`, id, report)
	if err != nil {
		return fmt.Errorf("store report of %s: %w", id, err)
	}
	return nil
}

// FailJob ends a running job as failed, e.g. when a threshold is passed.
func (s *Store) FailJob(ctx context.Context, id, errText string) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE cutover_control.jobs SET state = 'failed', finished_at = now(), error = $2
		WHERE id = $1 AND state = 'running'`, id, scrub(errText))
	if err != nil {
		return false, fmt.Errorf("fail job %s: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

func (s *Store) CancelJob(ctx context.Context, id string) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE cutover_control.jobs SET state = 'cancelled', finished_at = now(), error = 'cancelled by request'
		WHERE id = $1 AND state IN ('pending', 'running', 'following')`, id)
	if err != nil {
		return false, fmt.Errorf("cancel job %s: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// ResumeJob puts a failed or cancelled job back to running; its unfinished
// partitions start over from their ledger position.
func (s *Store) ResumeJob(ctx context.Context, id string) (bool, error) {
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

type PartitionCounts struct {
	ID, Table, State, ErrText string
	Counts                    *commonv1.Counts
	Stages                    []byte
}

func timingOrEmpty(b []byte) string {
	if len(b) == 0 {
		return "{}"
	}
	return string(b)
}

func (s *Store) Partitions(ctx context.Context, jobID string) ([]PartitionCounts, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, table_name, state, error, extracted, loaded, quarantined, batches, filtered, stages::text, warned
		FROM cutover_control.partitions WHERE job_id = $1 AND id NOT LIKE 'sync:%' ORDER BY table_index, id`, jobID)
	if err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", jobID, err)
	}
	defer rows.Close()
	var out []PartitionCounts
	for rows.Next() {
		p := PartitionCounts{Counts: &commonv1.Counts{}}
		if err := rows.Scan(&p.ID, &p.Table, &p.State, &p.ErrText, &p.Counts.Extracted, &p.Counts.Loaded, &p.Counts.Quarantined, &p.Counts.Batches, &p.Counts.Filtered, &p.Stages, &p.Counts.Warned); err != nil {
			return nil, fmt.Errorf("partitions of %s: %w", jobID, err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func JobState(s string) orchestratorv1.JobState {
	switch s {
	case StatePending:
		return orchestratorv1.JobState_JOB_STATE_PENDING
	case StateRunning:
		return orchestratorv1.JobState_JOB_STATE_RUNNING
	case StateSucceeded:
		return orchestratorv1.JobState_JOB_STATE_SUCCEEDED
	case StateFailed:
		return orchestratorv1.JobState_JOB_STATE_FAILED
	case StateCancelled:
		return orchestratorv1.JobState_JOB_STATE_CANCELLED
	case StateRolledBack:
		return orchestratorv1.JobState_JOB_STATE_ROLLED_BACK
	case StateFollowing:
		return orchestratorv1.JobState_JOB_STATE_FOLLOWING
	case StateDeleting:
		return orchestratorv1.JobState_JOB_STATE_DELETING
	}
	return orchestratorv1.JobState_JOB_STATE_UNSPECIFIED
}

// StateName is the stored name of a job state, "" for an unknown one.
func StateName(st orchestratorv1.JobState) string {
	for _, n := range []string{StatePending, StateRunning, StateSucceeded, StateFailed, StateCancelled, StateRolledBack, StateFollowing, StateDeleting} {
		if JobState(n) == st {
			return n
		}
	}
	return ""
}

// RollBack marks an ended job rolled back with the loader's outcome. It
// reports false when the job is not ended (running again, or resumed).
func (s *Store) RollBack(ctx context.Context, id string, r *loaderv1.RollbackResponse) (bool, error) {
	data, err := s.sealedJSON(r)
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

// RollbackOutcome returns what RollbackJob did to the job, nil if nothing.
func (s *Store) RollbackOutcome(ctx context.Context, id string) (*loaderv1.RollbackResponse, error) {
	var data []byte
	if err := s.pool.QueryRow(ctx, `SELECT rollback FROM cutover_control.jobs WHERE id = $1`, id).Scan(&data); err != nil {
		return nil, fmt.Errorf("read rollback of %s: %w", id, err)
	}
	if data == nil {
		return nil, nil
	}
	r := &loaderv1.RollbackResponse{}
	if err := s.openJSON(data, r); err != nil {
		return nil, fmt.Errorf("decode rollback of %s: %w", id, err)
	}
	return r, nil
}

// PartRange is a partition of the job as the control schema has it.
type PartRange struct {
	ID    string
	Range *commonv1.KeyRange
}

// PartRanges returns the job's partitions by table index, in id order;
// a follower's change partitions ("sync:…") read no range of the source.
func (s *Store) PartRanges(ctx context.Context, jobID string) (map[int][]PartRange, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, table_index, lower_key, upper_key FROM cutover_control.partitions
		WHERE job_id = $1 AND id NOT LIKE 'sync:%' ORDER BY table_index, id`, jobID)
	if err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", jobID, err)
	}
	out := map[int][]PartRange{}
	var p PartRange
	var table int
	var lo, hi string
	_, err = pgx.ForEachRow(rows, []any{&p.ID, &table, &lo, &hi}, func() error {
		out[table] = append(out[table], PartRange{ID: p.ID, Range: &commonv1.KeyRange{Lower: lo, Upper: hi}})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", jobID, err)
	}
	return out, nil
}

// RenewFinish extends the claim to end job id (see ClaimFinish).
func (s *Store) RenewFinish(ctx context.Context, id string, lease time.Duration) error {
	_, err := s.pool.Exec(ctx, `UPDATE cutover_control.jobs SET finish_lease = now() + $2::interval
		WHERE id = $1 AND state = 'running' AND finish_lease IS NOT NULL`, id, lease.String())
	return err
}

// FollowerLag is a follower's last recorded figures.
type FollowerLag struct {
	Table, Position, State    string
	LagRows, Upserts, Deletes int64
	LagSeconds                float64
	Polled, Applied, Checked  *time.Time
	// Source commit to target commit of the last batch applied.
	CommitDelaySeconds float64
	// KeptValues: values changes left out for the target to keep.
	KeptValues int64
	// ErrText is why the follower last stopped, until it reads again.
	ErrText string
}

// Followers returns the job's follower rows in table order.
func (s *Store) Followers(ctx context.Context, jobID string) ([]FollowerLag, error) {
	rows, err := s.pool.Query(ctx, `SELECT table_name, position, lag_rows, lag_seconds, upserts, deletes, polled_at, applied_at, checked_at, state, commit_delay_seconds, kept_values, error
		FROM cutover_control.partitions WHERE job_id = $1 AND id LIKE 'sync:%' ORDER BY table_index`, jobID)
	if err != nil {
		return nil, fmt.Errorf("followers of %s: %w", jobID, err)
	}
	defer rows.Close()
	var out []FollowerLag
	for rows.Next() {
		var t FollowerLag
		if err := rows.Scan(&t.Table, &t.Position, &t.LagRows, &t.LagSeconds, &t.Upserts, &t.Deletes, &t.Polled, &t.Applied, &t.Checked, &t.State, &t.CommitDelaySeconds, &t.KeptValues, &t.ErrText); err != nil {
			return nil, fmt.Errorf("followers of %s: %w", jobID, err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("followers of %s: %w", jobID, err)
	}
	return out, nil
}

// LiveClaims counts the job's partitions held under a lease that has not
// run out.
func (s *Store) LiveClaims(ctx context.Context, jobID string) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM cutover_control.partitions
		WHERE job_id = $1 AND state = 'running' AND lease_until >= now()`, jobID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("live partitions of %s: %w", jobID, err)
	}
	return n, nil
}

// Snapshot is the source snapshot of the job's table spec table, "" when
// it has none.
func (j *Job) Snapshot(table int) string {
	if table < 0 || table >= len(j.Snapshots) {
		return ""
	}
	return j.Snapshots[table]
}
