package orchestrate

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"
)

// The source side of Reconcile: the job's partitions read again through
// extractor → transformer → validator with the job's configs, exactly what
// streamPartition sends, without the loader. Rows an error rule, a filter
// or the loader refused are left out: the target never got them.

// sourceResult is what one pass over a target table's sources gives.
type sourceResult struct {
	digest *digest
	aggs   []map[string]*aggAcc
	rows   []srcRow // with a bucket selection: those buckets' rows
}

type srcRow struct {
	h    int64
	vals []*string
}

type srcBatch struct {
	k int // index into tablePlan.specs
	b *commonv1.Batch
	// skip marks the rows the target never got.
	skip []byte
}

type reconPart struct {
	id         string
	tableIndex int
	rng        *commonv1.KeyRange
}

// source reads every source row of p once. Without sel it digests the rows
// and totals the aggregates; with sel it keeps the rows of those buckets.
func (r *reconciler) source(ctx context.Context, p *tablePlan, sel map[int]bool) (*sourceResult, error) {
	specIndex := map[int]int{}
	var idx []int
	for k, i := range p.specs {
		specIndex[i] = k
		idx = append(idx, i)
	}
	rows, err := r.s.store.pool.Query(ctx, `SELECT id, table_index, lower_key, upper_key FROM cutover_control.partitions
		WHERE job_id = $1 AND table_index = ANY($2) AND id NOT LIKE 'sync:%' ORDER BY table_index, id`, r.j.id, idx)
	if err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", r.j.id, err)
	}
	parts, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (reconPart, error) {
		var p reconPart
		var lo, hi string
		err := row.Scan(&p.id, &p.tableIndex, &lo, &hi)
		p.rng = &commonv1.KeyRange{Lower: lo, Upper: hi}
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", r.j.id, err)
	}

	workers := runtime.GOMAXPROCS(0)
	batches := make(chan srcBatch, workers)
	g, gctx := errgroup.WithContext(ctx)
	// Partitions stream at once up to the replica's worker count.
	g.Go(func() error {
		defer close(batches)
		pg, pctx := errgroup.WithContext(gctx)
		pg.SetLimit(max(r.s.cfg.Workers, 1))
		for _, part := range parts {
			pg.Go(func() error { return r.streamSource(pctx, part, specIndex[part.tableIndex], batches) })
		}
		return pg.Wait()
	})
	results := make([]*sourceResult, workers)
	for w := range workers {
		g.Go(func() error {
			h := newRowHasher(p, sel)
			for sb := range batches {
				if err := h.batch(sb); err != nil {
					return err
				}
			}
			results[w] = h.res
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := &sourceResult{digest: &digest{}, aggs: make([]map[string]*aggAcc, len(p.aggs))}
	for k := range out.aggs {
		out.aggs[k] = map[string]*aggAcc{}
	}
	for _, res := range results {
		out.digest.add(res.digest)
		out.rows = append(out.rows, res.rows...)
		for k, m := range res.aggs {
			for key, acc := range m {
				if have := out.aggs[k][key]; have != nil {
					have.merge(acc)
				} else {
					out.aggs[k][key] = acc
				}
			}
		}
	}
	return out, nil
}

// rowHasher renders, hashes and totals the rows of batches; one per worker.
type rowHasher struct {
	p    *tablePlan
	sel  map[int]bool
	res  *sourceResult
	row  canonRow
	lp   []byte
	klp  []byte
	cols []int // batch column index per compared column
}

func newRowHasher(p *tablePlan, sel map[int]bool) *rowHasher {
	h := &rowHasher{p: p, sel: sel, res: &sourceResult{digest: &digest{}, aggs: make([]map[string]*aggAcc, len(p.aggs))}}
	for k := range h.res.aggs {
		h.res.aggs[k] = map[string]*aggAcc{}
	}
	h.row.ends = make([]int, len(p.compared))
	h.row.nulls = make([]bool, len(p.compared))
	h.cols = make([]int, len(p.compared))
	return h
}

func (h *rowHasher) batch(sb srcBatch) error {
	p, b := h.p, sb.b
	byName := make(map[string]int, len(b.GetColumns()))
	for k, c := range b.GetColumns() {
		byName[c.GetName()] = k
	}
	renders := make([]renderFn, len(p.compared))
	for k, c := range p.compared {
		at, ok := byName[c.name]
		if !ok {
			return fmt.Errorf("%w: table %s: batch %d of partition %s has no column %s", ErrStageFatal, b.GetTable(), b.GetSeq(), b.GetPartitionId(), c.name)
		}
		h.cols[k] = at
		renders[k] = p.renders[k][sb.k]
	}
	for i := range int(b.GetNumRows()) {
		if batch.Bit(sb.skip, i) {
			continue
		}
		row := &h.row
		row.buf = row.buf[:0]
		for k := range p.compared {
			c := b.Columns[h.cols[k]]
			row.nulls[k] = batch.IsNull(c, i)
			if !row.nulls[k] {
				row.buf = renders[k](row.buf, c, i)
			}
			row.ends[k] = len(row.buf)
		}
		if len(p.key) > 0 {
			h.klp = h.klp[:0]
			for _, pos := range p.key {
				v, ok := row.value(pos)
				h.klp = appendLP(h.klp, v, ok)
			}
			var key []byte
			if len(p.key) == 1 {
				key, _ = row.value(p.key[0])
			}
			bucket := p.bucketOf(h.klp, key)
			if h.sel != nil {
				if h.sel[bucket] {
					h.res.rows = append(h.res.rows, srcRow{h: h.rowHash(), vals: h.values()})
				}
				continue
			}
			h.res.digest.n[bucket]++
			h.res.digest.x[bucket] ^= h.rowHash()
		}
		for k, a := range p.aggs {
			h.klp = h.klp[:0]
			for _, pos := range a.group {
				v, ok := row.value(pos)
				h.klp = appendLP(h.klp, v, ok)
			}
			acc := h.res.aggs[k][string(h.klp)]
			if acc == nil {
				group := make([]*string, len(a.group))
				for g, pos := range a.group {
					if v, ok := row.value(pos); ok {
						s := string(v)
						group[g] = &s
					}
				}
				acc = newAcc(group, len(a.sums))
				h.res.aggs[k][string(h.klp)] = acc
			}
			acc.count++
			for s, pos := range a.sums {
				if v, ok := row.value(pos); ok {
					acc.addText(s, string(v))
				}
			}
		}
	}
	return nil
}

func (h *rowHasher) rowHash() int64 {
	h.lp = h.lp[:0]
	for k := range h.p.compared {
		v, ok := h.row.value(k)
		h.lp = appendLP(h.lp, v, ok)
	}
	return rowHash(h.lp)
}

func (h *rowHasher) values() []*string {
	out := make([]*string, len(h.p.compared))
	for k := range h.p.compared {
		if v, ok := h.row.value(k); ok {
			s := string(v)
			out[k] = &s
		}
	}
	return out
}

// streamSource pulls one partition through extractor, transformer and
// validator (the data plane's chain, pipeline.go) and hands each validated
// batch on with the rows to skip.
func (r *reconciler) streamSource(ctx context.Context, part reconPart, k int, out chan<- srcBatch) error {
	job := r.j
	tbl := job.spec.GetTables()[part.tableIndex]
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ctx, span := tracer.Start(ctx, "reconcile partition", withJob(job.id), trace.WithAttributes(attribute.String("cutover.partition", part.id)))
	defer span.End()
	snapshot := job.snapshot(part.tableIndex)
	if tbl.GetSync() != nil {
		snapshot = "" // a followed table is compared as it is now
	}
	loadRej := r.loadRej[part.id]
	for try := 0; ; try++ {
		rd := read(ctx, job.spec, tbl, &extractorv1.ReadBatchRequest{Range: part.rng, JobId: job.id, PartitionId: part.id, Snapshot: snapshot})
		sent := false
		err := r.s.pullValidated(ctx, tbl, rd, func(b *commonv1.Batch) error {
			sent = true
			var skip []byte
			for _, rj := range b.GetRejects() {
				if !rj.GetWarning() {
					skip = batch.SetBit(skip, int(rj.GetRow()))
				}
			}
			for _, row := range loadRej[b.GetSeq()] {
				skip = batch.SetBit(skip, int(row))
			}
			select {
			case out <- srcBatch{k: k, b: b, skip: skip}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		if try == 0 && !sent && snapshot != "" && errors.Is(err, ErrStageFatal) {
			// The job's snapshot is gone (released, or its extractor
			// restarted; FailedPrecondition): compare with the source as
			// it is now. Another fatal error comes back again.
			snapshot = ""
			continue
		}
		return err
	}
}

func withJob(id string) trace.SpanStartOption {
	return trace.WithAttributes(attribute.String("cutover.job_id", id))
}

// pgxPool is what Reconcile needs of a target connection pool.
type pgxPool interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Target pools are shared by the Reconcile calls running at once against
// one target and closed when the last of them ends, so an idle orchestrator
// holds no connection to any target.
var targetPools = struct {
	sync.Mutex
	m map[string]*sharedPool
}{m: map[string]*sharedPool{}}

type sharedPool struct {
	pool *pgxpool.Pool
	refs int
}

// targetPool opens (or shares) a pool on a target DSN with the session
// settings the canonical text form depends on; release when done.
func targetPool(ctx context.Context, dsn string) (*pgxpool.Pool, func(), error) {
	targetPools.Lock()
	defer targetPools.Unlock()
	sp := targetPools.m[dsn]
	if sp == nil {
		cfg, err := pgxpool.ParseConfig(dsn)
		if err != nil {
			// The parse error may quote the DSN; say only what failed.
			return nil, nil, fmt.Errorf("%w: target.dsn: not a PostgreSQL URL", ErrInvalidSpec)
		}
		for k, v := range reconcileSession {
			cfg.ConnConfig.RuntimeParams[k] = v
		}
		cfg.MaxConns = int32(max(4, runtime.GOMAXPROCS(0)))
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: target: %v", ErrStage, err)
		}
		sp = &sharedPool{pool: pool}
		targetPools.m[dsn] = sp
	}
	sp.refs++
	return sp.pool, func() {
		targetPools.Lock()
		defer targetPools.Unlock()
		if sp.refs--; sp.refs == 0 {
			sp.pool.Close()
			delete(targetPools.m, dsn)
		}
	}, nil
}

func isUndefinedTable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "42P01"
}

func describeReq(t *commonv1.TableSpec) *extractorv1.DescribeSourceRequest {
	return &extractorv1.DescribeSourceRequest{Source: t.GetSource()}
}
