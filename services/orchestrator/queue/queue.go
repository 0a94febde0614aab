// Package queue hands the orchestrator's work to its replicas through River
// (riverqueue/river) on the control database: one River job per partition
// to run, per followed table, per job to end, and a periodic job for
// retention.
//
// River runs a job at least once and knows a worker died only when it
// rescues the job (an hour later by default: it has no heartbeat). So River
// is the dispatcher, not the fence: a partition's River job claims the
// partition in the control store, which raises its epoch (the loader's
// fence) and leases it; a second run of the same River job, or a stray
// duplicate, finds the partition held or done and ends as a no-op, and the
// ledger makes a replayed batch a no-op. The dispatcher, run once a
// second by every replica, enqueues partitions that are due and have no
// River job waiting: a lease that ran out (its replica died or paused), a
// partition handed back at shutdown.
package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cutover/cutover/services/kit/metrics"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"
)

// Schema holds River's tables, beside cutover_control.
const Schema = "cutover_river"

const (
	queuePartitions = "partitions"
	queueControl    = "control"
	// workAttempts: a partition's or follower's River job is not given up
	// on for errors of its own (the control database away); the attempts
	// that count are the partition's (MaxAttempts of the orchestrator).
	workAttempts = 10000
	// retryCap bounds the wait before such a job runs again.
	retryCap = 10 * time.Second
	// A follower holds its worker for as long as its job follows.
	queueFollowers = "followers"
	maxFollowers   = 1000
	// dispatchEvery is how often a replica looks for due partitions
	// without a River job: a dead replica's partitions wait at most its
	// lease plus this.
	dispatchEvery = time.Second
)

// PartitionArgs is one partition to run.
type PartitionArgs struct {
	Job       string `json:"job"`
	Partition string `json:"partition"`
}

func (PartitionArgs) Kind() string { return "cutover_partition" }
func (PartitionArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queuePartitions, MaxAttempts: workAttempts}
}

// FollowArgs is one followed table of a following job to follow.
type FollowArgs struct {
	Job      string `json:"job"`
	Follower string `json:"follower"`
}

func (FollowArgs) Kind() string { return "cutover_follow" }
func (FollowArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queueFollowers, MaxAttempts: workAttempts}
}

// FinishArgs is one job whose partitions are all done, to end.
type FinishArgs struct {
	Job string `json:"job"`
}

func (FinishArgs) Kind() string { return "cutover_finish" }

// Not unique: River's uniqueness must include running jobs, and the end
// of a job whose replica died while ending it stays running in River for
// an hour, which would block every later end. The dispatcher asks only for
// ends nobody holds (the job's finish lease), and a run that finds the
// lease held ends at once.
func (FinishArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queueControl}
}

type retentionArgs struct{}

func (retentionArgs) Kind() string { return "cutover_retention" }

// Not unique either (see FinishArgs): two sweeps at once delete the same
// rows twice, which is harmless.
func (retentionArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queueControl}
}

// Handlers is the orchestrator's side of each kind of work.
type Handlers struct {
	// Partition runs one partition; a positive again asks for another
	// run of the same River job after that long (a retry's backoff, or no
	// room yet under the job's parallelism).
	Partition func(ctx context.Context, job, partition string) (again time.Duration, err error)
	// Follow follows one followed table until its job stops following or
	// this replica stops; a positive again asks for another run after
	// that long (it failed).
	Follow func(ctx context.Context, job, follower string) (again time.Duration, err error)
	// Finish ends job id if its partitions are all done.
	Finish func(ctx context.Context, job string) error
	// Finishable lists running jobs whose partitions are all done and
	// whose end nobody holds.
	Finishable func(ctx context.Context) ([]string, error)
	// Retain deletes what is past its retention; nil: nothing to retain.
	Retain      func(ctx context.Context)
	RetainEvery time.Duration
}

// Config says how much this replica runs at once.
type Config struct {
	// Workers is how many partitions this replica runs at once.
	Workers int
	// ID names this replica's River client (unique per process).
	ID string
}

// Queue is this replica's River client.
type Queue struct {
	client       *river.Client[pgx.Tx]
	pool         *pgxpool.Pool
	stopDispatch context.CancelFunc
	done         chan struct{}
}

// Migrate creates or updates River's tables in Schema. River applies each
// version in its own transaction (a version adds an enum value that the
// next uses), so replicas starting together take turns under a session
// advisory lock held on a connection of its own.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("river schema: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(7311005)); err != nil {
		return fmt.Errorf("river schema lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(7311005)) //nolint:errcheck // the session ends with the connection otherwise
	if _, err := conn.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+Schema); err != nil {
		return fmt.Errorf("river schema: %w", err)
	}
	m, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: Schema, Logger: quiet()})
	if err != nil {
		return fmt.Errorf("river schema: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("river schema: %w", err)
	}
	return nil
}

// quiet passes River's warnings and errors to the service's log and keeps
// its routine info lines out.
func quiet() *slog.Logger {
	return slog.New(levelFloor{slog.Default().Handler(), slog.LevelWarn})
}

type levelFloor struct {
	slog.Handler
	min slog.Level
}

func (h levelFloor) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

// snoozed turns a handler's "again after" into River's snooze, which
// runs the job again without counting an attempt.
func snoozed(again time.Duration, err error) error {
	if err == nil && again > 0 {
		return river.JobSnooze(again)
	}
	return err
}

// Start starts this replica's River client on pool (River's tables must
// exist: Migrate).
func Start(ctx context.Context, pool *pgxpool.Pool, cfg Config, h Handlers) (*Queue, error) {
	workers := river.NewWorkers()
	river.AddWorker(workers, river.WorkFunc(func(ctx context.Context, j *river.Job[PartitionArgs]) error {
		return snoozed(h.Partition(ctx, j.Args.Job, j.Args.Partition))
	}))
	river.AddWorker(workers, river.WorkFunc(func(ctx context.Context, j *river.Job[FollowArgs]) error {
		return snoozed(h.Follow(ctx, j.Args.Job, j.Args.Follower))
	}))
	river.AddWorker(workers, river.WorkFunc(func(ctx context.Context, j *river.Job[FinishArgs]) error {
		return h.Finish(ctx, j.Args.Job)
	}))
	var periodic []*river.PeriodicJob
	river.AddWorker(workers, river.WorkFunc(func(ctx context.Context, _ *river.Job[retentionArgs]) error {
		if h.Retain != nil {
			h.Retain(ctx)
		}
		return nil
	}))
	if h.Retain != nil {
		periodic = append(periodic, river.NewPeriodicJob(river.PeriodicInterval(h.RetainEvery),
			func() (river.JobArgs, *river.InsertOpts) { return retentionArgs{}, nil }, &river.PeriodicJobOpts{ID: "retention", RunOnStart: true}))
	}
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		ID:     cfg.ID,
		Schema: Schema,
		Queues: map[string]river.QueueConfig{
			queuePartitions: {MaxWorkers: max(cfg.Workers, 1)},
			queueControl:    {MaxWorkers: 2},
			queueFollowers:  {MaxWorkers: maxFollowers},
		},
		Workers:      workers,
		PeriodicJobs: periodic,
		// A partition runs as long as its rows take; its lease, renewed
		// with every batch, is what says its replica is alive.
		JobTimeout: -1,
		// What River inserts runs soon even when a notification is lost.
		FetchPollInterval: 500 * time.Millisecond,
		RetryPolicy:       retryPolicy{},
		Logger:            quiet(),
	})
	if err != nil {
		return nil, fmt.Errorf("river client: %w", err)
	}
	if err := client.Start(ctx); err != nil {
		return nil, fmt.Errorf("river client: %w", err)
	}
	q := &Queue{client: client, pool: pool, done: make(chan struct{})}
	dctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	q.stopDispatch = stop
	go q.dispatchLoop(dctx, h)
	return q, nil
}

// dispatchLoop runs dispatch every dispatchEvery on every replica, not as
// a periodic job of River's leader: a leader that died or paused would
// hold back the very takeover its death calls for until River elects
// another (many seconds). Replicas dispatching at once may enqueue a
// partition twice; the second claim finds it held and ends.
func (q *Queue) dispatchLoop(ctx context.Context, h Handlers) {
	defer close(q.done)
	tick := time.NewTicker(dispatchEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := q.dispatch(ctx, h); err != nil && ctx.Err() == nil {
			slog.Warn("dispatch", "err", err)
		}
	}
}

// retryPolicy runs a job that returned an error again after 1, 2, 4 …
// seconds, at most retryCap: River's default waits attempt⁴ seconds, which
// after a control database restart would leave partitions idle for minutes.
type retryPolicy struct{}

func (retryPolicy) NextRetry(job *rivertype.JobRow) time.Time {
	return time.Now().Add(min(time.Second<<min(len(job.Errors), 10), retryCap))
}

// Stop cancels the running work (partitions are handed back by their
// handlers) and stops the client.
func (q *Queue) Stop(ctx context.Context) error {
	q.stopDispatch()
	<-q.done
	return q.client.StopAndCancel(ctx)
}

// Enqueue asks for runs of job's partitions (those already done or held
// end at once).
func (q *Queue) Enqueue(ctx context.Context, job string, partitions []string) error {
	if len(partitions) == 0 {
		return nil
	}
	params := make([]river.InsertManyParams, len(partitions))
	for i, p := range partitions {
		params[i] = river.InsertManyParams{Args: PartitionArgs{Job: job, Partition: p}}
	}
	if _, err := q.client.InsertMany(ctx, params); err != nil {
		return fmt.Errorf("enqueue partitions of %s: %w", job, err)
	}
	return nil
}

// Follow asks for job's followers to be followed.
func (q *Queue) Follow(ctx context.Context, job string, followers []string) error {
	params := make([]river.InsertManyParams, len(followers))
	for i, f := range followers {
		params[i] = river.InsertManyParams{Args: FollowArgs{Job: job, Follower: f}}
	}
	if len(params) == 0 {
		return nil
	}
	if _, err := q.client.InsertMany(ctx, params); err != nil {
		return fmt.Errorf("enqueue followers of %s: %w", job, err)
	}
	return nil
}

// Counts adds the queue's unfinished, discarded and cancelled jobs by
// kind and state to c (completed ones are River's history, not load).
func (q *Queue) Counts(ctx context.Context, c *metrics.Control) error {
	rows, err := q.pool.Query(ctx, `SELECT kind, state::text, count(*) FROM `+Schema+`.river_job
		WHERE kind LIKE 'cutover\_%' AND state <> 'completed' GROUP BY 1, 2`)
	if err != nil {
		return fmt.Errorf("queue metrics: %w", err)
	}
	var k metrics.QueueKey
	var n int64
	// Every kind and state, zero when none: a scrape's series do not come
	// and go with the work.
	c.Queue = map[metrics.QueueKey]int64{}
	for _, kind := range []string{PartitionArgs{}.Kind(), FollowArgs{}.Kind(), FinishArgs{}.Kind(), retentionArgs{}.Kind()} {
		for _, st := range rivertype.JobStates() {
			if st != rivertype.JobStateCompleted {
				c.Queue[metrics.QueueKey{Kind: kind, State: string(st)}] = 0
			}
		}
	}
	_, err = pgx.ForEachRow(rows, []any{&k.Kind, &k.State, &n}, func() error {
		c.Queue[k] = n
		return nil
	})
	if err != nil {
		return fmt.Errorf("queue metrics: %w", err)
	}
	return nil
}

// Finish asks for job's end to be tried.
func (q *Queue) Finish(ctx context.Context, job string) error {
	if _, err := q.client.Insert(ctx, FinishArgs{Job: job}, nil); err != nil {
		return fmt.Errorf("enqueue the end of %s: %w", job, err)
	}
	return nil
}

// dispatch enqueues every partition of a running job that is due (pending
// and past its backoff, or running on a lease that ran out) and every
// follower of a following job that nobody holds, if no River job waits to
// run it, and an end for every finishable job.
func (q *Queue) dispatch(ctx context.Context, h Handlers) error {
	rows, err := q.pool.Query(ctx, `
		SELECT p.job_id, p.id, p.state = 'following' FROM cutover_control.partitions p JOIN cutover_control.jobs j ON j.id = p.job_id
		WHERE ((j.state = 'running' AND ((p.state = 'pending' AND p.not_before <= now()) OR (p.state = 'running' AND p.lease_until < now())))
		    OR (j.state = 'following' AND p.state = 'following' AND (p.lease_until IS NULL OR p.lease_until < now())))
		  AND NOT EXISTS (SELECT 1 FROM `+Schema+`.river_job r
			WHERE r.kind IN ($1, $2) AND r.state IN ('available', 'pending', 'scheduled', 'retryable')
			  AND r.args->>'job' = p.job_id AND coalesce(r.args->>'partition', r.args->>'follower') = p.id)
		ORDER BY j.created_at, p.table_index, p.id
		LIMIT 1000`, PartitionArgs{}.Kind(), FollowArgs{}.Kind())
	if err != nil {
		return fmt.Errorf("dispatch: %w", err)
	}
	var params []river.InsertManyParams
	var job, id string
	var follower bool
	_, err = pgx.ForEachRow(rows, []any{&job, &id, &follower}, func() error {
		if follower {
			params = append(params, river.InsertManyParams{Args: FollowArgs{Job: job, Follower: id}})
		} else {
			params = append(params, river.InsertManyParams{Args: PartitionArgs{Job: job, Partition: id}})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("dispatch: %w", err)
	}
	if len(params) > 0 {
		if _, err := q.client.InsertMany(ctx, params); err != nil {
			return fmt.Errorf("dispatch: %w", err)
		}
		slog.Info("work dispatched again", "partitions_and_followers", len(params))
	}
	ids, err := h.Finishable(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range ids {
		errs = append(errs, q.Finish(ctx, id))
	}
	return errors.Join(errs...)
}
