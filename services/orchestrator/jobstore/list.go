package jobstore

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	"github.com/jackc/pgx/v5"
)

// ErrInvalidArgument: a malformed request to the store (a page token it
// did not give out); the message names the field.
var ErrInvalidArgument = errors.New("invalid argument")

// ListQuery selects a page of jobs, newest first.
type ListQuery struct {
	// Limit is the page size (> 0).
	Limit int
	// PageToken continues a listing (the next page token of the last).
	PageToken string
	// States keeps jobs in one of them; empty keeps every job.
	States []string
}

// listSQL reads job summaries: no spec, no report, no stored outcomes, the
// name and error cut to 200 and 1024 characters (the caller cuts bytes);
// counts from the partitions, plus what finalizing staged tables moved
// (FinalizeStagedResponse.tables, summed: see FinalizedKey). $1 states
// (NULL = all), $2/$3 the last job of the previous page, $4 the limit.
const listSQL = `SELECT j.id, left(j.name, 200), j.state, left(j.error, 1024), j.trace_id, j.created_at, j.started_at, j.finished_at, j.spec_hash,
	c.extracted, c.loaded, c.quarantined, c.batches, c.filtered, c.warned, c.total, c.done,
	f.merged_away, f.quarantined, f.warned
FROM cutover_control.jobs j
CROSS JOIN LATERAL (
	SELECT coalesce(sum(p.extracted),0) AS extracted, coalesce(sum(p.loaded),0) AS loaded, coalesce(sum(p.quarantined),0) AS quarantined,
		coalesce(sum(p.batches),0) AS batches, coalesce(sum(p.filtered),0) AS filtered, coalesce(sum(p.warned),0) AS warned,
		count(p.id) FILTER (WHERE p.state <> 'following') AS total, count(p.id) FILTER (WHERE p.state = 'done' AND p.id NOT LIKE 'sync:%') AS done
	FROM cutover_control.partitions p WHERE p.job_id = j.id) c
CROSS JOIN LATERAL (
	SELECT coalesce(sum((o->>'mergedAway')::bigint),0) AS merged_away, coalesce(sum((o->>'quarantined')::bigint),0) AS quarantined,
		coalesce(sum((o->>'warned')::bigint),0) AS warned
	FROM jsonb_each(j.finalized) t CROSS JOIN LATERAL jsonb_array_elements(coalesce(t.value->'tables', '[]'::jsonb)) o) f
WHERE ($1::text[] IS NULL OR j.state = ANY($1::text[]))
  AND ($2::timestamptz IS NULL OR j.created_at < $2 OR (j.created_at = $2 AND j.id > $3))
ORDER BY j.created_at DESC, j.id
LIMIT $4`

// FinalizedKey is the one entry of a listed job's Finalized: what
// finalizing all its staged tables moved, summed.
const FinalizedKey = "*"

// ListJobs returns a page of job summaries, newest first, and the token of
// the next page ("" after the last). A summary has no spec, report or DDL,
// its name and error are cut short, and its Finalized holds the sums of
// its finalized tables under FinalizedKey.
func (s *Store) ListJobs(ctx context.Context, q ListQuery) ([]*Job, string, error) {
	if q.Limit <= 0 {
		return nil, "", fmt.Errorf("%w: page_size must be positive", ErrInvalidArgument)
	}
	var after *time.Time
	var afterID string
	if q.PageToken != "" {
		t, id, err := decodeJobToken(q.PageToken)
		if err != nil {
			return nil, "", err
		}
		after, afterID = &t, id
	}
	var states []string
	if len(q.States) > 0 {
		states = q.States
	}
	rows, err := s.pool.Query(ctx, listSQL, states, after, afterID, q.Limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list jobs: %w", err)
	}
	defer rows.Close()
	var out []*Job
	for rows.Next() {
		var j Job
		var total, done int64
		var fin loaderv1.StagedOutcome
		if err := rows.Scan(&j.ID, &j.Name, &j.State, &j.ErrText, &j.TraceID, &j.Created, &j.Started, &j.Finished, &j.SpecHash,
			&j.Counts.Extracted, &j.Counts.Loaded, &j.Counts.Quarantined, &j.Counts.Batches, &j.Counts.Filtered, &j.Counts.Warned, &total, &done,
			&fin.MergedAway, &fin.Quarantined, &fin.Warned); err != nil {
			return nil, "", fmt.Errorf("list jobs: %w", err)
		}
		j.Total, j.Done = int32(total), int32(done)
		j.Finalized = map[string]*loaderv1.FinalizeStagedResponse{}
		if fin.MergedAway != 0 || fin.Quarantined != 0 || fin.Warned != 0 {
			j.Finalized[FinalizedKey] = &loaderv1.FinalizeStagedResponse{Tables: []*loaderv1.StagedOutcome{&fin}}
		}
		out = append(out, &j)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list jobs: %w", err)
	}
	next := ""
	if len(out) > q.Limit {
		out = out[:q.Limit]
		last := out[len(out)-1]
		next = encodeJobToken(last.Created, last.ID)
	}
	return out, next, nil
}

// A job page token is the last job's (created_at, id), opaque to callers:
// base64url of "<unix microseconds>.<id>".
func encodeJobToken(created time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(created.UnixMicro(), 10) + "." + id))
}

func decodeJobToken(tok string) (time.Time, string, error) {
	bad := fmt.Errorf("%w: page_token: not a token this listing gave out", ErrInvalidArgument)
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return time.Time{}, "", bad
	}
	micros, id, ok := strings.Cut(string(raw), ".")
	if !ok {
		return time.Time{}, "", bad
	}
	us, err := strconv.ParseInt(micros, 10, 64)
	if err != nil {
		return time.Time{}, "", bad
	}
	return time.UnixMicro(us), id, nil
}

// BeginDelete moves an ended job (or one left deleting by a call that
// failed half way) to deleting, so that nothing resumes, rolls back or
// runs it any more. It returns the job's state before, and false when that
// state does not allow a delete.
func (s *Store) BeginDelete(ctx context.Context, id string) (string, bool, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return "", false, fmt.Errorf("delete job %s: %w", id, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	var state string
	err = tx.QueryRow(ctx, `SELECT state FROM cutover_control.jobs WHERE id = $1 FOR UPDATE`, id).Scan(&state)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, fmt.Errorf("%w: %q", ErrJobNotFound, id)
	}
	if err != nil {
		return "", false, fmt.Errorf("delete job %s: %w", id, err)
	}
	ok := state == StateDeleting
	for _, e := range EndedStates {
		ok = ok || state == e
	}
	if !ok {
		return state, false, nil
	}
	if _, err := tx.Exec(ctx, `UPDATE cutover_control.jobs SET state = 'deleting', finish_lease = NULL,
		finished_at = coalesce(finished_at, now()) WHERE id = $1`, id); err != nil {
		return "", false, fmt.Errorf("delete job %s: %w", id, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return "", false, fmt.Errorf("delete job %s: %w", id, err)
	}
	return state, true, nil
}

// DeleteJobRows removes a deleting job's rows from the control schema
// (its partitions and followers go with it). The audit log keeps its
// entries. It reports false when there was no such deleting job.
func (s *Store) DeleteJobRows(ctx context.Context, id string) (bool, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM cutover_control.jobs WHERE id = $1 AND state = 'deleting'`, id)
	if err != nil {
		return false, fmt.Errorf("delete job %s: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// ExpiredJobs lists up to limit jobs that ended more than age ago, and
// jobs a delete left half done, oldest first: what retention deletes.
// The age is measured on the database's clock, which every replica shares.
func (s *Store) ExpiredJobs(ctx context.Context, age time.Duration, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM cutover_control.jobs
		WHERE state = 'deleting' OR (state = ANY($1::text[]) AND coalesce(finished_at, created_at) < now() - $2 * interval '1 second')
		ORDER BY coalesce(finished_at, created_at), id LIMIT $3`, EndedStates, age.Seconds(), limit)
	if err != nil {
		return nil, fmt.Errorf("expired jobs: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("expired jobs: %w", err)
	}
	return ids, nil
}

// HeldSnapshots are the failed or cancelled jobs that ended longer than
// hold ago and still keep source snapshots (for a resume).
func (s *Store) HeldSnapshots(ctx context.Context, hold time.Duration, limit int) ([]*Job, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM cutover_control.jobs
		WHERE state IN ('failed', 'cancelled') AND NOT snapshots_released
		  AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(snapshots) e WHERE e <> '')
		  AND coalesce(finished_at, created_at) < now() - $1 * interval '1 second'
		ORDER BY coalesce(finished_at, created_at), id LIMIT $2`, hold.Seconds(), limit)
	if err != nil {
		return nil, fmt.Errorf("held snapshots: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("held snapshots: %w", err)
	}
	var out []*Job
	for _, id := range ids {
		j, err := s.GetJob(ctx, id)
		if err != nil {
			return out, err
		}
		out = append(out, j)
	}
	return out, nil
}

// ReleaseSnapshots marks a failed or cancelled job's snapshots released;
// false when it is no longer failed or cancelled (resumed meanwhile) or
// was marked already.
func (s *Store) ReleaseSnapshots(ctx context.Context, id string) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE cutover_control.jobs SET snapshots_released = true
		WHERE id = $1 AND state IN ('failed', 'cancelled') AND NOT snapshots_released`, id)
	if err != nil {
		return false, fmt.Errorf("release snapshots of %s: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}
