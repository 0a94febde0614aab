package load

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
)

// maxExamples bounds the examples per group so a summary stays small.
const maxExamples = 100

const ledgerSQL = `
SELECT partition_id, seq, coalesce(position, last_key), extracted, loaded, quarantined, filtered, warned
FROM cutover.ledger
WHERE job_id = $1 AND ($2 = '' OR partition_id = $2)
ORDER BY partition_id, seq`

// summarySQL returns the first $2 rows of each (table, rule) group of a
// table (%s: cutover.quarantine or cutover.warnings) with the group's size
// alongside, so one query gives counts and examples.
const summarySQL = `
SELECT table_name, rule, n, source, source_ref, column_name, reason, raw
FROM (
  SELECT q.*, row_number() OVER w AS rn, count(*) OVER (PARTITION BY table_name, rule) AS n
  FROM %s q
  WHERE job_id = $1
  WINDOW w AS (PARTITION BY table_name, rule ORDER BY id)
) g
WHERE rn <= $2
ORDER BY table_name, rule, id`

// filteredSummarySQL is summarySQL for the rows row filters left out.
const filteredSummarySQL = `
SELECT table_name, reason, n, source, source_ref
FROM (
  SELECT f.*, row_number() OVER w AS rn, count(*) OVER (PARTITION BY table_name, reason) AS n
  FROM cutover.filtered f
  WHERE job_id = $1
  WINDOW w AS (PARTITION BY table_name, reason ORDER BY id)
) g
WHERE rn <= $2
ORDER BY table_name, reason, id`

// GetLedger returns the committed batches of a job. A change batch's
// last_key is its source position (Batch.position).
func (s *Service) GetLedger(ctx context.Context, req *loaderv1.GetLedgerRequest) (*loaderv1.GetLedgerResponse, error) {
	resp, err := s.getLedger(ctx, req)
	return resp, toStatus(err)
}

func (s *Service) getLedger(ctx context.Context, req *loaderv1.GetLedgerRequest) (*loaderv1.GetLedgerResponse, error) {
	if req.GetJobId() == "" {
		return nil, fmt.Errorf("%w: job_id is required", ErrInvalidArgument)
	}
	t, _, err := s.target(ctx, req.GetTarget())
	if err != nil {
		return nil, err
	}
	rows, err := t.pool.Query(ctx, ledgerSQL, req.GetJobId(), req.GetPartitionId())
	if err != nil {
		return nil, t.dbErr("read ledger", err)
	}
	defer rows.Close()
	resp := &loaderv1.GetLedgerResponse{}
	for rows.Next() {
		e := &loaderv1.LedgerEntry{Counts: &commonv1.Counts{Batches: 1}}
		if err := rows.Scan(&e.PartitionId, &e.Seq, &e.LastKey, &e.Counts.Extracted, &e.Counts.Loaded, &e.Counts.Quarantined, &e.Counts.Filtered, &e.Counts.Warned); err != nil {
			return nil, t.dbErr("read ledger", err)
		}
		resp.Entries = append(resp.Entries, e)
	}
	if err := rows.Err(); err != nil {
		return nil, t.dbErr("read ledger", err)
	}
	return resp, nil
}

// GetQuarantineSummary counts quarantined rows by table and rule, with the
// first examples of each group; likewise the rows filtered out (by reason)
// and the warnings of loaded rows.
func (s *Service) GetQuarantineSummary(ctx context.Context, req *loaderv1.GetQuarantineSummaryRequest) (*loaderv1.GetQuarantineSummaryResponse, error) {
	resp, err := s.quarantineSummary(ctx, req)
	return resp, toStatus(err)
}

func (s *Service) quarantineSummary(ctx context.Context, req *loaderv1.GetQuarantineSummaryRequest) (*loaderv1.GetQuarantineSummaryResponse, error) {
	if req.GetJobId() == "" {
		return nil, fmt.Errorf("%w: job_id is required", ErrInvalidArgument)
	}
	n := req.GetExamples()
	switch {
	case n < 0:
		return nil, fmt.Errorf("%w: examples must not be negative, got %d", ErrInvalidArgument, n)
	case n == 0:
		n = 3
	case n > maxExamples:
		n = maxExamples
	}
	t, _, err := s.target(ctx, req.GetTarget())
	if err != nil {
		return nil, err
	}
	resp := &loaderv1.GetQuarantineSummaryResponse{}
	if resp.Groups, err = t.groups(ctx, "cutover.quarantine", req.GetJobId(), n); err != nil {
		return nil, err
	}
	if resp.Warnings, err = t.groups(ctx, "cutover.warnings", req.GetJobId(), n); err != nil {
		return nil, err
	}
	frows, err := t.pool.Query(ctx, filteredSummarySQL, req.GetJobId(), n)
	if err != nil {
		return nil, t.dbErr("read filtered rows", err)
	}
	defer frows.Close()
	var g *loaderv1.QuarantineGroup
	for frows.Next() {
		var table, reason string
		var count int64
		ex := &loaderv1.QuarantineExample{}
		if err := frows.Scan(&table, &reason, &count, &ex.Source, &ex.SourceRef); err != nil {
			return nil, t.dbErr("read filtered rows", err)
		}
		ex.Reason = reason
		if g == nil || g.Table != table || g.Rule != reason {
			g = &loaderv1.QuarantineGroup{Table: table, Rule: reason, Count: count}
			resp.Filtered = append(resp.Filtered, g)
		}
		g.Examples = append(g.Examples, ex)
	}
	if err := frows.Err(); err != nil {
		return nil, t.dbErr("read filtered rows", err)
	}
	return resp, nil
}

// groups reads the (table, rule) groups of table, with n examples each.
func (t *target) groups(ctx context.Context, table, jobID string, n int32) ([]*loaderv1.QuarantineGroup, error) {
	op := "read " + strings.TrimPrefix(table, "cutover.")
	rows, err := t.pool.Query(ctx, fmt.Sprintf(summarySQL, table), jobID, n)
	if err != nil {
		return nil, t.dbErr(op, err)
	}
	defer rows.Close()
	var out []*loaderv1.QuarantineGroup
	var g *loaderv1.QuarantineGroup
	for rows.Next() {
		var tbl, rule string
		var count int64
		ex := &loaderv1.QuarantineExample{}
		if err := rows.Scan(&tbl, &rule, &count, &ex.Source, &ex.SourceRef, &ex.Column, &ex.Reason, &ex.Raw); err != nil {
			return nil, t.dbErr(op, err)
		}
		if g == nil || g.Table != tbl || g.Rule != rule {
			g = &loaderv1.QuarantineGroup{Table: tbl, Rule: rule, Count: count}
			out = append(out, g)
		}
		g.Examples = append(g.Examples, ex)
	}
	if err := rows.Err(); err != nil {
		return nil, t.dbErr(op, err)
	}
	return out, nil
}

// Page sizes of ListQuarantine.
const (
	defaultQuarantinePage = 100
	maxQuarantinePage     = 1000
)

const quarantinePageSQL = `
SELECT id, table_name, system, source, source_ref, stage, rule, column_name, reason, raw, resolved_by
FROM cutover.quarantine
WHERE job_id = $1 AND ($2 = '' OR table_name = $2) AND ($3 = '' OR rule = $3) AND ($4 OR resolved_by = '') AND id > $5
ORDER BY id
LIMIT $6`

const quarantineCountSQL = `
SELECT count(*) FROM cutover.quarantine
WHERE job_id = $1 AND ($2 = '' OR table_name = $2) AND ($3 = '' OR rule = $3) AND ($4 OR resolved_by = '')`

// ListQuarantine lists a job's quarantined rows a page at a time; the page
// token is the last entry's id, so pages stay stable while rows are added.
func (s *Service) ListQuarantine(ctx context.Context, req *loaderv1.ListQuarantineRequest) (*loaderv1.ListQuarantineResponse, error) {
	resp, err := s.listQuarantine(ctx, req)
	return resp, toStatus(err)
}

func (s *Service) listQuarantine(ctx context.Context, req *loaderv1.ListQuarantineRequest) (*loaderv1.ListQuarantineResponse, error) {
	if req.GetJobId() == "" {
		return nil, fmt.Errorf("%w: job_id is required", ErrInvalidArgument)
	}
	size := int(req.GetPageSize())
	switch {
	case size < 0:
		return nil, fmt.Errorf("%w: page_size must not be negative, got %d", ErrInvalidArgument, size)
	case size == 0:
		size = defaultQuarantinePage
	case size > maxQuarantinePage:
		size = maxQuarantinePage
	}
	var after int64
	if tok := req.GetPageToken(); tok != "" {
		n, err := strconv.ParseInt(tok, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%w: page_token %q is not one this service gave out", ErrInvalidArgument, tok)
		}
		after = n
	}
	t, _, err := s.target(ctx, req.GetTarget())
	if err != nil {
		return nil, err
	}
	resp := &loaderv1.ListQuarantineResponse{}
	if err := t.pool.QueryRow(ctx, quarantineCountSQL, req.GetJobId(), req.GetTable(), req.GetRule(), req.GetIncludeResolved()).Scan(&resp.Total); err != nil {
		return nil, t.dbErr("count quarantine", err)
	}
	rows, err := t.pool.Query(ctx, quarantinePageSQL, req.GetJobId(), req.GetTable(), req.GetRule(), req.GetIncludeResolved(), after, size+1)
	if err != nil {
		return nil, t.dbErr("read quarantine", err)
	}
	defer rows.Close()
	var last int64
	for rows.Next() {
		var id int64
		r := &loaderv1.QuarantineRow{}
		if err := rows.Scan(&id, &r.Table, &r.System, &r.Source, &r.SourceRef, &r.Stage, &r.Rule, &r.Column, &r.Reason, &r.Raw, &r.ResolvedBy); err != nil {
			return nil, t.dbErr("read quarantine", err)
		}
		if len(resp.Rows) == size {
			resp.NextPageToken = strconv.FormatInt(last, 10)
			break
		}
		resp.Rows = append(resp.Rows, r)
		last = id
	}
	if err := rows.Err(); err != nil {
		return nil, t.dbErr("read quarantine", err)
	}
	return resp, nil
}
