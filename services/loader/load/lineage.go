package load

import (
	"context"
	"fmt"
	"strings"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
)

// maxLineage bounds one answer: a key or reference that matches more rows
// than this is not a question about one row.
const maxLineage = 1000

// lineageEntries splits a lineage row's entries into (ref, key) pairs, both
// still escaped.
const lineageEntries = `CROSS JOIN LATERAL (SELECT split_part(e, E'\t', 1) AS ref, split_part(e, E'\t', 2) AS key
  FROM string_to_table(l.entries, E'\n') AS e WHERE e <> '') r`

// lineageUnescapeSQL undoes appendLineage on r.ref, for the join with
// merges (which stores references as they are).
const lineageUnescapeSQL = `replace(replace(replace(r.ref, '%09', E'\t'), '%0A', E'\n'), '%25', '%')`

// lineageByTargetSQL finds the source rows that became one target row: a
// text search picks the job's batches holding the key, the split gives the
// rows. A merged row's key is its survivor's, so a merged record shows all
// its sources. $3 is the escaped key.
const lineageByTargetSQL = `
SELECT l.table_name, l.system, l.source, r.ref, l.target_table, r.key,
       coalesce(m.winner_system || ' ' || m.winner_table || ' ' || m.winner_ref, '')
FROM cutover.lineage l
` + lineageEntries + `
LEFT JOIN cutover.merges m ON m.job_id = l.job_id AND m.system = l.system AND m.table_name = l.table_name AND m.source_ref = ` + lineageUnescapeSQL + `
WHERE l.job_id = $1 AND l.target_table = $2 AND strpos(l.entries, E'\t' || $3 || E'\n') > 0 AND r.key = $3
ORDER BY m.source_ref IS NOT NULL, l.table_name, r.ref
LIMIT $4`

// lineageBySourceSQL finds what became of one source row: loaded (or
// merged) where, quarantined why, or filtered why. $3 is the reference as
// the source gave it, $6 escaped.
const lineageBySourceSQL = `
SELECT * FROM (
  SELECT l.table_name, l.system, l.source, $3 AS ref, l.target_table, r.key,
         coalesce(m.winner_system || ' ' || m.winner_table || ' ' || m.winner_ref, ''), '' AS rule, '' AS reason, 0 AS kind
  FROM cutover.lineage l
  ` + lineageEntries + `
  LEFT JOIN cutover.merges m ON m.job_id = l.job_id AND m.system = l.system AND m.table_name = l.table_name AND m.source_ref = $3
  WHERE l.job_id = $1 AND l.system = $2 AND strpos(E'\n' || l.entries, E'\n' || $6 || E'\t') > 0 AND r.ref = $6 AND ($5 = '' OR l.table_name = $5)
  UNION ALL
  SELECT q.table_name, q.system, q.source, q.source_ref, q.target_table, '', '', q.rule,
         CASE WHEN q.column_name <> '' AND position(q.column_name IN q.reason) = 0 THEN q.column_name || ': ' || q.reason ELSE q.reason END, 1
  FROM cutover.quarantine q WHERE q.job_id = $1 AND q.system = $2 AND q.source_ref = $3 AND ($5 = '' OR q.table_name = $5)
  UNION ALL
  SELECT f.table_name, f.system, f.source, f.source_ref, f.target_table, '', '', 'filter', f.reason, 2
  FROM cutover.filtered f WHERE f.job_id = $1 AND f.system = $2 AND f.source_ref = $3 AND ($5 = '' OR f.table_name = $5)
) x ORDER BY kind, table_name
LIMIT $4`

// lineageUnescape undoes appendLineage.
func lineageUnescape(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	return strings.NewReplacer("%25", "%", "%09", "\t", "%0A", "\n").Replace(s)
}

// GetLineage answers where a target row came from or what became of a
// source row.
func (s *Service) GetLineage(ctx context.Context, req *loaderv1.GetLineageRequest) (*loaderv1.GetLineageResponse, error) {
	resp, err := s.getLineage(ctx, req)
	return resp, toStatus(err)
}

func (s *Service) getLineage(ctx context.Context, req *loaderv1.GetLineageRequest) (*loaderv1.GetLineageResponse, error) {
	byTarget := req.GetTargetTable() != "" || req.GetTargetKey() != ""
	bySource := req.GetSystem() != "" || req.GetSourceRef() != "" || req.GetTable() != ""
	switch {
	case req.GetJobId() == "":
		return nil, fmt.Errorf("%w: job_id is required", ErrInvalidArgument)
	case byTarget == bySource:
		return nil, fmt.Errorf("%w: give either target_table and target_key or system and source_ref", ErrInvalidArgument)
	case byTarget && (req.GetTargetTable() == "" || req.GetTargetKey() == ""):
		return nil, fmt.Errorf("%w: target_table and target_key go together (e.g. target_key \"id=42\")", ErrInvalidArgument)
	case bySource && (req.GetSystem() == "" || req.GetSourceRef() == ""):
		return nil, fmt.Errorf("%w: system and source_ref go together (e.g. source_ref \"id=17\" or \"line 13\")", ErrInvalidArgument)
	}
	t, _, err := s.target(ctx, req.GetTarget())
	if err != nil {
		return nil, err
	}
	resp := &loaderv1.GetLineageResponse{}
	if byTarget {
		rows, err := t.pool.Query(ctx, lineageByTargetSQL, req.GetJobId(), req.GetTargetTable(), string(appendLineage(nil, []byte(req.GetTargetKey()))), maxLineage)
		if err != nil {
			return nil, t.dbErr("read lineage", err)
		}
		defer rows.Close()
		for rows.Next() {
			r := &commonv1.LineageRecord{JobId: req.GetJobId(), Outcome: "loaded"}
			if err := rows.Scan(&r.Table, &r.System, &r.Source, &r.SourceRef, &r.TargetTable, &r.TargetKey, &r.MergedInto); err != nil {
				return nil, t.dbErr("read lineage", err)
			}
			if r.MergedInto != "" {
				r.Outcome = "merged"
			}
			r.SourceRef, r.TargetKey = lineageUnescape(r.SourceRef), lineageUnescape(r.TargetKey)
			resp.Records = append(resp.Records, r)
		}
		return resp, t.rowsErr("read lineage", rows.Err())
	}
	rows, err := t.pool.Query(ctx, lineageBySourceSQL, req.GetJobId(), req.GetSystem(), req.GetSourceRef(), maxLineage, req.GetTable(),
		string(appendLineage(nil, []byte(req.GetSourceRef()))))
	if err != nil {
		return nil, t.dbErr("read lineage", err)
	}
	defer rows.Close()
	for rows.Next() {
		r := &commonv1.LineageRecord{JobId: req.GetJobId()}
		var kind int
		if err := rows.Scan(&r.Table, &r.System, &r.Source, &r.SourceRef, &r.TargetTable, &r.TargetKey, &r.MergedInto, &r.Rule, &r.Reason, &kind); err != nil {
			return nil, t.dbErr("read lineage", err)
		}
		r.TargetKey = lineageUnescape(r.TargetKey)
		switch {
		case kind == 1:
			r.Outcome = "quarantined"
		case kind == 2:
			r.Outcome = "filtered"
		case r.MergedInto != "":
			r.Outcome = "merged"
		default:
			r.Outcome = "loaded"
		}
		resp.Records = append(resp.Records, r)
	}
	return resp, t.rowsErr("read lineage", rows.Err())
}

func (t *target) rowsErr(op string, err error) error {
	if err != nil {
		return t.dbErr(op, err)
	}
	return nil
}
