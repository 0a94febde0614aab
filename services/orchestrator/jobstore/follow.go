package jobstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"github.com/cutover/cutover/services/kit/metrics"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/encoding/protojson"
)

// SyncPrefix starts the id of a follower's row among the partitions:
// "sync:<table>".
const SyncPrefix = "sync:"

// Followed is a table that follows its source after the full load.
type Followed struct {
	Index int
	Name  string
}

type Follower struct {
	JobID, ID  string
	TableIndex int
	Checked    *time.Time
	// Epoch is the claim's fencing token, as a partition's (Claim).
	Epoch int64
}

// StartFollowing ends a job's full load: state following with the full
// load's report, and a follower row per followed table.
func (s *Store) StartFollowing(ctx context.Context, id string, report []byte, tables []Followed) (bool, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("start following %s: %w", id, err)
	}
	defer tx.Rollback(ctx)
	tag, err := tx.Exec(ctx, `UPDATE cutover_control.jobs SET state = 'following', error = '', report = $2 WHERE id = $1 AND state = 'running'`, id, report)
	if err != nil {
		return false, fmt.Errorf("start following %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return false, nil
	}
	for _, t := range tables {
		i, name := t.Index, t.Name
		if _, err := tx.Exec(ctx, `INSERT INTO cutover_control.partitions (job_id, id, table_index, table_name, lower_key, upper_key, state)
			VALUES ($1, $2, $3, $4, '', '', 'following') ON CONFLICT (job_id, id) DO UPDATE SET state = 'following'`, id, SyncPrefix+name, i, name); err != nil {
			return false, fmt.Errorf("start following %s, table %s: %w", id, name, err)
		}
	}
	return true, tx.Commit(ctx)
}

// ClaimFollower leases follower id of job jobID if its job is following
// and nobody holds it (or its holder's lease ran out); nil otherwise. Every
// claim raises the row's epoch: the loader refuses what an older claim
// still sends, and the older holder's beats find the row gone.
func (s *Store) ClaimFollower(ctx context.Context, jobID, id, owner string, lease time.Duration) (*Follower, error) {
	var f Follower
	err := s.pool.QueryRow(ctx, `
		UPDATE cutover_control.partitions p SET lease_owner = $3, lease_until = now() + $4::interval, attempts = p.attempts + 1, epoch = p.epoch + 1
		FROM cutover_control.jobs j
		WHERE p.job_id = $1 AND p.id = $2 AND j.id = p.job_id AND j.state = 'following' AND p.state = 'following'
		  AND (p.lease_until IS NULL OR p.lease_until < now())
		RETURNING p.job_id, p.id, p.table_index, p.checked_at, p.epoch`, jobID, id, owner, lease.String()).Scan(&f.JobID, &f.ID, &f.TableIndex, &f.Checked, &f.Epoch)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("claim follower: %w", err)
	}
	return &f, nil
}

// Beat is what one follower iteration reports.
type Beat struct {
	Position            string
	LagRows             int64
	LagSeconds          float64
	Upserts, Deletes    int64
	Applied, Checked    bool
	StopRequested, Live bool
	// CommitDelaySeconds: source commit to target commit of the batch just
	// applied (0: none, or the source gives no commit time).
	CommitDelaySeconds float64
	// KeptValues: values the batches left out for the target to keep
	// (unchanged TOASTed values).
	KeptValues int64
}

// FollowBeat records a follower's figures and renews its lease; live is
// false when the lease was lost or the job is no longer following.
func (s *Store) FollowBeat(ctx context.Context, f *Follower, owner string, lease time.Duration, b *Beat) error {
	err := s.pool.QueryRow(ctx, `
		UPDATE cutover_control.partitions p SET lease_until = now() + $4::interval, polled_at = now(), position = $5,
			lag_rows = $6, lag_seconds = $7, upserts = p.upserts + $8, deletes = p.deletes + $9,
			applied_at = CASE WHEN $10 THEN now() ELSE p.applied_at END, checked_at = CASE WHEN $11 THEN now() ELSE p.checked_at END,
			commit_delay_seconds = CASE WHEN $13 > 0 THEN $13 ELSE p.commit_delay_seconds END, kept_values = p.kept_values + $14, error = ''
		FROM cutover_control.jobs j
		WHERE p.job_id = $1 AND p.id = $2 AND p.lease_owner = $3 AND p.epoch = $12 AND p.state = 'following' AND j.id = p.job_id AND j.state = 'following'
		RETURNING j.stop_following`,
		f.JobID, f.ID, owner, lease.String(), b.Position, b.LagRows, b.LagSeconds, b.Upserts, b.Deletes, b.Applied, b.Checked, f.Epoch, b.CommitDelaySeconds, b.KeptValues).Scan(&b.StopRequested)
	b.Upserts, b.Deletes, b.Applied, b.Checked, b.CommitDelaySeconds, b.KeptValues = 0, 0, false, false, 0, 0
	if errors.Is(err, pgx.ErrNoRows) {
		b.Live = false
		return nil
	}
	if err != nil {
		return fmt.Errorf("record follower %s of %s: %w", f.ID, f.JobID, err)
	}
	b.Live = true
	return nil
}

// ReleaseFollower hands a follower row back (shutdown, failure); cause,
// when not nil, is kept as the row's error until a beat clears it, so
// readiness can say why the table is not following.
func (s *Store) ReleaseFollower(ctx context.Context, f *Follower, owner string, cause error) {
	errText := ""
	if cause != nil {
		errText = scrub(cause.Error())
	}
	_, _ = s.pool.Exec(ctx, `UPDATE cutover_control.partitions SET lease_until = NULL, error = CASE WHEN $5 = '' THEN error ELSE $5 END
		WHERE job_id = $1 AND id = $2 AND lease_owner = $3 AND epoch = $4 AND state = 'following'`, f.JobID, f.ID, owner, f.Epoch, errText)
}

// FollowerDone marks a drained follower done after StopFollowing.
func (s *Store) FollowerDone(ctx context.Context, f *Follower, owner string) error {
	_, err := s.pool.Exec(ctx, `UPDATE cutover_control.partitions SET state = 'done', lease_until = NULL, lag_rows = 0, lag_seconds = 0
		WHERE job_id = $1 AND id = $2 AND lease_owner = $3 AND epoch = $4 AND state = 'following'`, f.JobID, f.ID, owner, f.Epoch)
	if err != nil {
		return fmt.Errorf("end follower %s of %s: %w", f.ID, f.JobID, err)
	}
	return nil
}

// FinishFollowing ends a following job whose followers are all done.
func (s *Store) FinishFollowing(ctx context.Context, id string, report []byte) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE cutover_control.jobs SET state = 'succeeded', finished_at = now(), report = coalesce($2, report)
		WHERE id = $1 AND state = 'following'
		  AND NOT EXISTS (SELECT 1 FROM cutover_control.partitions WHERE job_id = $1 AND state = 'following')`, id, report)
	if err != nil {
		return false, fmt.Errorf("end following job %s: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

func (s *Store) RequestStop(ctx context.Context, id string) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE cutover_control.jobs SET stop_following = true WHERE id = $1 AND state = 'following'`, id)
	if err != nil {
		return false, fmt.Errorf("stop following %s: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Gauges are the control database's figures a metrics scrape reports:
// jobs and partitions by state, and the followers' lag.
func (s *Store) Gauges(ctx context.Context) (*metrics.Control, error) {
	c := &metrics.Control{Jobs: map[string]int64{}, Partitions: map[string]int64{}}
	for _, q := range []struct {
		sql string
		to  map[string]int64
	}{
		{`SELECT state, count(*) FROM cutover_control.jobs GROUP BY state`, c.Jobs},
		{`SELECT state, count(*) FROM cutover_control.partitions WHERE id NOT LIKE '` + SyncPrefix + `%' GROUP BY state`, c.Partitions},
	} {
		rows, err := s.pool.Query(ctx, q.sql)
		if err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
		for rows.Next() {
			var st string
			var n int64
			if err := rows.Scan(&st, &n); err != nil {
				rows.Close()
				return nil, fmt.Errorf("metrics: %w", err)
			}
			q.to[st] = n
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	err := s.pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(lag_rows), 0)::bigint, coalesce(max(lag_seconds), 0)::float8,
			coalesce(max(commit_delay_seconds), 0)::float8
		FROM cutover_control.partitions WHERE state = 'following'`).Scan(&c.Followers, &c.LagRows, &c.LagSeconds, &c.CommitDelaySeconds)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return c, nil
}

// AddColumns appends mappings of source columns added while following to
// table index's mapping in the stored spec, and the columns to its
// source_columns, once (a mapping of the same target is not added again).
func (s *Store) AddColumns(ctx context.Context, jobID string, index int, maps []*commonv1.ColumnMapping, cols []*commonv1.SourceColumn) error {
	if len(maps) != len(cols) {
		return fmt.Errorf("add columns to job %s: %d mappings for %d columns", jobID, len(maps), len(cols))
	}
	for i, m := range maps {
		mj, err := protojson.Marshal(m)
		if err != nil {
			return err
		}
		cj, err := protojson.Marshal(cols[i])
		if err != nil {
			return err
		}
		_, err = s.pool.Exec(ctx, `UPDATE cutover_control.jobs SET spec = jsonb_set(jsonb_set(spec,
				ARRAY['tables', $2::text, 'columns'], coalesce(spec #> ARRAY['tables', $2::text, 'columns'], '[]') || jsonb_build_array($3::jsonb)),
				ARRAY['tables', $2::text, 'sourceColumns'], coalesce(spec #> ARRAY['tables', $2::text, 'sourceColumns'], '[]') || jsonb_build_array($4::jsonb))
			WHERE id = $1 AND NOT coalesce(spec #> ARRAY['tables', $2::text, 'columns'], '[]') @> jsonb_build_array(jsonb_build_object('target', $5::text))`,
			jobID, fmt.Sprint(index), string(mj), string(cj), m.GetTarget())
		if err != nil {
			return fmt.Errorf("add column %s to the mapping of job %s: %w", m.GetTarget(), jobID, err)
		}
	}
	return nil
}
