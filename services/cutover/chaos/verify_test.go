package chaos

import (
	"context"
	"fmt"
	"testing"
	"time"

	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/jackc/pgx/v5"
)

// snapshot is what a finished job left in its target database.
type snapshot struct {
	job         *orchestratorv1.Job
	checksum    string           // of the target table, in key order
	rows        int64            // target rows
	values      map[int64]string // id → v
	dupKeys     int64            // rows beyond the first per id
	quarantine  map[string]int   // source_ref → times quarantined
	quarantined int64
	batches     int64    // ledger entries
	ledgerGaps  []string // partitions whose ledger is not seq 0..n-1 once each
	staging     int64    // tables left in schema cutover_stage
}

func snapshotOf(t *testing.T, dsn string, job *orchestratorv1.Job) *snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to target: %v", err)
	}
	defer conn.Close(context.Background())
	s := &snapshot{job: job, values: map[int64]string{}, quarantine: map[string]int{}}
	must := func(what string, err error) {
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must("checksum", conn.QueryRow(ctx, `SELECT coalesce(md5(string_agg(id::text || '|' || v, E'\n' ORDER BY id, v)), ''), count(*), count(*) - count(DISTINCT id) FROM seq`).
		Scan(&s.checksum, &s.rows, &s.dupKeys))
	rows, err := conn.Query(ctx, `SELECT id, v FROM seq`)
	must("read target", err)
	for rows.Next() {
		var id int64
		var v string
		must("scan target", rows.Scan(&id, &v))
		s.values[id] = v
	}
	must("read target", rows.Err())
	rows, err = conn.Query(ctx, `SELECT source_ref, count(*) FROM cutover.quarantine WHERE job_id = $1 GROUP BY 1`, job.GetId())
	must("read quarantine", err)
	for rows.Next() {
		var ref string
		var n int
		must("scan quarantine", rows.Scan(&ref, &n))
		s.quarantine[ref] = n
		s.quarantined += int64(n)
	}
	must("read quarantine", rows.Err())
	rows, err = conn.Query(ctx, `SELECT partition_id, count(*), count(DISTINCT seq), min(seq), max(seq)
		FROM cutover.ledger WHERE job_id = $1 GROUP BY 1 ORDER BY 1`, job.GetId())
	must("read ledger", err)
	for rows.Next() {
		var part string
		var n, distinct, lo, hi int64
		must("scan ledger", rows.Scan(&part, &n, &distinct, &lo, &hi))
		s.batches += n
		if n != distinct || lo != 0 || hi != n-1 {
			s.ledgerGaps = append(s.ledgerGaps, fmt.Sprintf("%s: %d entries, %d distinct seqs, seq %d..%d", part, n, distinct, lo, hi))
		}
	}
	must("read ledger", rows.Err())
	must("staging", conn.QueryRow(ctx, `SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'cutover_stage'`).Scan(&s.staging))
	return s
}

// compare checks a chaos run against the clean run: lost counts rows and
// quarantined rows the clean run has and this one lacks; duplicated counts
// extra copies and rows the clean run does not have.
func compare(clean, got *snapshot) (lost, dup int, problems []string) {
	for id, v := range clean.values {
		w, ok := got.values[id]
		if !ok {
			lost++
		} else if w != v {
			problems = append(problems, fmt.Sprintf("id %d has v %q, the clean run %q", id, w, v))
		}
	}
	for id := range got.values {
		if _, ok := clean.values[id]; !ok {
			dup++
		}
	}
	dup += int(got.dupKeys)
	for ref, n := range clean.quarantine {
		switch m := got.quarantine[ref]; {
		case m == 0:
			lost++
		case m > n:
			dup += m - n
		}
	}
	for ref, m := range got.quarantine {
		if _, ok := clean.quarantine[ref]; !ok {
			dup += m
		}
	}
	if got.checksum != clean.checksum {
		problems = append(problems, fmt.Sprintf("target checksum %s, the clean run's %s", got.checksum, clean.checksum))
	}
	if got.rows != clean.rows {
		problems = append(problems, fmt.Sprintf("target has %d rows, the clean run %d", got.rows, clean.rows))
	}
	if got.batches != clean.batches {
		problems = append(problems, fmt.Sprintf("ledger has %d batches, the clean run's %d", got.batches, clean.batches))
	}
	for _, g := range got.ledgerGaps {
		problems = append(problems, "ledger not contiguous: "+g)
	}
	if got.staging != 0 {
		problems = append(problems, fmt.Sprintf("%d objects left in schema cutover_stage", got.staging))
	}
	c, cc := got.job.GetCounts(), clean.job.GetCounts()
	if c.GetExtracted() != c.GetLoaded()+c.GetQuarantined()+c.GetFiltered()+c.GetMergedAway() {
		problems = append(problems, fmt.Sprintf("accounting does not balance: extracted %d, loaded %d, quarantined %d, filtered %d, merged away %d",
			c.GetExtracted(), c.GetLoaded(), c.GetQuarantined(), c.GetFiltered(), c.GetMergedAway()))
	}
	if c.GetExtracted() != cc.GetExtracted() || c.GetLoaded() != cc.GetLoaded() || c.GetQuarantined() != cc.GetQuarantined() {
		problems = append(problems, fmt.Sprintf("job counts %d/%d/%d (extracted/loaded/quarantined), the clean run's %d/%d/%d",
			c.GetExtracted(), c.GetLoaded(), c.GetQuarantined(), cc.GetExtracted(), cc.GetLoaded(), cc.GetQuarantined()))
	}
	if c.GetLoaded() != got.rows || c.GetQuarantined() != got.quarantined {
		problems = append(problems, fmt.Sprintf("job says loaded %d, quarantined %d; target holds %d rows, %d quarantined",
			c.GetLoaded(), c.GetQuarantined(), got.rows, got.quarantined))
	}
	return lost, dup, problems
}
