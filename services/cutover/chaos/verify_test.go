package chaos

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/jackc/pgx/v5"
)

// tableWant is what the generator says one target table must hold.
type tableWant struct {
	rows       map[int64]string // id → v, each exactly once
	quarantine map[string]bool  // source references quarantined, each once
	keyless    bool             // the target has no key: only the ledger stops a duplicate
	// preexisting rows were in the table before the job (not loaded by it).
	preexisting int64
	// merged rows are merged away into a survivor (a staged table).
	merged int64
}

// tableGot is what a finished job left in one target table.
type tableGot struct {
	rows       map[int64][]string // id → every v stored under it
	quarantine map[string]int     // source_ref → times quarantined
}

// snapshot is what a finished job left in its target database.
type snapshot struct {
	job        *orchestratorv1.Job
	tables     map[string]*tableGot
	ledgerGaps []string // partitions whose ledger is not seq 0..n-1 once each
	staging    int64    // tables left in schema cutover_stage
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
	s := &snapshot{job: job, tables: map[string]*tableGot{}}
	must := func(what string, err error) {
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	for _, table := range []string{"seq", "seq_nokey", "my_seq", "seq_upsert", "members"} {
		g := &tableGot{rows: map[int64][]string{}, quarantine: map[string]int{}}
		rows, err := conn.Query(ctx, `SELECT id, v FROM `+pgx.Identifier{table}.Sanitize())
		must("read "+table, err)
		for rows.Next() {
			var id int64
			var v string
			must("scan "+table, rows.Scan(&id, &v))
			g.rows[id] = append(g.rows[id], v)
		}
		must("read "+table, rows.Err())
		rows, err = conn.Query(ctx, `SELECT source_ref, count(*) FROM cutover.quarantine WHERE job_id = $1 AND table_name = $2 GROUP BY 1`, job.GetId(), table)
		must("read quarantine", err)
		for rows.Next() {
			var ref string
			var n int
			must("scan quarantine", rows.Scan(&ref, &n))
			g.quarantine[ref] = n
		}
		must("read quarantine", rows.Err())
		s.tables[table] = g
	}
	rows, err := conn.Query(ctx, `SELECT partition_id, count(*), count(DISTINCT seq), min(seq), max(seq)
		FROM cutover.ledger WHERE job_id = $1 GROUP BY 1 ORDER BY 1`, job.GetId())
	must("read ledger", err)
	for rows.Next() {
		var part string
		var n, distinct, lo, hi int64
		must("scan ledger", rows.Scan(&part, &n, &distinct, &lo, &hi))
		if n != distinct || lo != 0 || hi != n-1 {
			s.ledgerGaps = append(s.ledgerGaps, fmt.Sprintf("%s: %d entries, %d distinct seqs, seq %d..%d", part, n, distinct, lo, hi))
		}
	}
	must("read ledger", rows.Err())
	must("staging", conn.QueryRow(ctx, `SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'cutover_stage'`).Scan(&s.staging))
	return s
}

// verify checks a run against the generator, value by value: lost counts
// rows and quarantine entries the generator expects and the run lacks;
// duplicated counts extra copies and anything the generator does not
// expect.
func verify(want map[string]*tableWant, got *snapshot) (lost, dup int, problems []string) {
	var loaded, quarantined, merged int64
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		w, g := want[name], got.tables[name]
		var shown int
		note := func(format string, args ...any) {
			if shown < 5 {
				problems = append(problems, name+": "+fmt.Sprintf(format, args...))
			}
			shown++
		}
		for id, v := range w.rows {
			vs := g.rows[id]
			switch {
			case len(vs) == 0:
				lost++
				note("row %d is missing", id)
			case len(vs) > 1:
				dup += len(vs) - 1
				note("row %d is there %d times", id, len(vs))
			}
			for _, x := range vs {
				if x != v {
					note("row %d has v %q, want %q", id, x, v)
				}
			}
		}
		for id, vs := range g.rows {
			if _, ok := w.rows[id]; !ok {
				dup += len(vs)
				note("row %d should not be there (%d copies)", id, len(vs))
			}
		}
		for ref := range w.quarantine {
			switch n := g.quarantine[ref]; {
			case n == 0:
				lost++
				note("%s was not quarantined", ref)
			case n > 1:
				dup += n - 1
				note("%s quarantined %d times", ref, n)
			}
		}
		for ref, n := range g.quarantine {
			if !w.quarantine[ref] {
				dup += n
				note("%s quarantined (%d times) but valid", ref, n)
			}
		}
		if shown > 5 {
			problems = append(problems, fmt.Sprintf("%s: %d more problems", name, shown-5))
		}
		loaded += int64(len(w.rows)) - w.preexisting
		quarantined += int64(len(w.quarantine))
		merged += w.merged
	}
	for _, g := range got.ledgerGaps {
		problems = append(problems, "ledger not contiguous: "+g)
	}
	if got.staging != 0 {
		problems = append(problems, fmt.Sprintf("%d objects left in schema cutover_stage", got.staging))
	}
	c := got.job.GetCounts()
	if c.GetExtracted() != loaded+quarantined+merged || c.GetLoaded() != loaded || c.GetQuarantined() != quarantined || c.GetMergedAway() != merged {
		problems = append(problems, fmt.Sprintf("job counts extracted %d, loaded %d, quarantined %d, merged away %d; the generator made %d rows, %d to load, %d broken, %d to merge",
			c.GetExtracted(), c.GetLoaded(), c.GetQuarantined(), c.GetMergedAway(), loaded+quarantined+merged, loaded, quarantined, merged))
	}
	return lost, dup, problems
}
