package load

import (
	"context"
	"fmt"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
)

// maxExamples bounds the examples per group so a summary stays small.
const maxExamples = 100

const ledgerSQL = `
SELECT partition_id, seq, last_key, extracted, loaded, quarantined, filtered
FROM cutover.ledger
WHERE job_id = $1 AND ($2 = '' OR partition_id = $2)
ORDER BY partition_id, seq`

// summarySQL returns the first $2 rows of each (table, rule) group with the
// group's size alongside, so one query gives counts and examples.
const summarySQL = `
SELECT table_name, rule, n, source, source_ref, column_name, reason, raw
FROM (
  SELECT q.*, row_number() OVER w AS rn, count(*) OVER (PARTITION BY table_name, rule) AS n
  FROM cutover.quarantine q
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

// GetLedger returns the committed batches of a job.
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
		if err := rows.Scan(&e.PartitionId, &e.Seq, &e.LastKey, &e.Counts.Extracted, &e.Counts.Loaded, &e.Counts.Quarantined, &e.Counts.Filtered); err != nil {
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
// first examples of each group.
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
	rows, err := t.pool.Query(ctx, summarySQL, req.GetJobId(), n)
	if err != nil {
		return nil, t.dbErr("read quarantine", err)
	}
	defer rows.Close()
	resp := &loaderv1.GetQuarantineSummaryResponse{}
	var g *loaderv1.QuarantineGroup
	for rows.Next() {
		var table, rule string
		var count int64
		ex := &loaderv1.QuarantineExample{}
		if err := rows.Scan(&table, &rule, &count, &ex.Source, &ex.SourceRef, &ex.Column, &ex.Reason, &ex.Raw); err != nil {
			return nil, t.dbErr("read quarantine", err)
		}
		if g == nil || g.Table != table || g.Rule != rule {
			g = &loaderv1.QuarantineGroup{Table: table, Rule: rule, Count: count}
			resp.Groups = append(resp.Groups, g)
		}
		g.Examples = append(g.Examples, ex)
	}
	if err := rows.Err(); err != nil {
		return nil, t.dbErr("read quarantine", err)
	}
	rows.Close()
	frows, err := t.pool.Query(ctx, filteredSummarySQL, req.GetJobId(), n)
	if err != nil {
		return nil, t.dbErr("read filtered rows", err)
	}
	defer frows.Close()
	g = nil
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
