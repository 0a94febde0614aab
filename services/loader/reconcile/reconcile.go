// Package reconcile compares one target table of a finished job with its
// source, for the loader's ReconcileTable: row counts, group totals
// (TableSpec.aggregates) and rows, at two levels. The independent level
// (independent.go) has the source database and the target each compute
// their side in SQL. The replay level, below, compares the target with the
// job's partitions pulled again through the stages.
//
// Rows are compared without pulling the target through the network: both
// sides hash every row in one canonical text form (canon.go) into
// reconBuckets buckets by a hash of the key, and compare per bucket the row
// count and the XOR of the 64-bit row hashes. Only differing buckets are
// drilled into: the target gives (key, row hash, values) of those buckets
// only, the source is read again keeping only those buckets' rows, so
// memory stays bounded by reconRoundRows however big the table is.
//
// The source side is the job's partitions pulled again from a validator,
// which pulls them through transformer and extractor (source.go); rows an
// error rule, a filter or the loader refused are left out: the target never
// got them.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
)

const (
	reconBuckets   = 4096 // 12 bits of the key hash
	reconRoundRows = 200000
	defaultMaxDiff = 20
	maxMaxDiff     = 1000
	// stageWait bounds a call to a stage, or the opening of its stream:
	// calls wait for a restarted peer, which must not mean forever.
	stageWait = 30 * time.Second
)

var tracer = otel.Tracer("cutover/loader")

// Dialer returns the connection to the stage service at addr (the loader's
// upstreams).
type Dialer func(addr string) (grpc.ClientConnInterface, error)

// Table reconciles the request's target table. It leaves expected_rows to
// the caller, and ok is the verdict of the rows and the aggregates only
// (see ReconcileTableResponse).
func Table(ctx context.Context, tgt Target, dial Dialer, req *loaderv1.ReconcileTableRequest) (*commonv1.TableReconciliation, error) {
	maxDiff := int(req.GetMaxDifferences())
	switch {
	case maxDiff < 0 || maxDiff > maxMaxDiff:
		return nil, invalid("max_differences", "must be 0 (default %d) to %d, got %d", defaultMaxDiff, maxMaxDiff, maxDiff)
	case maxDiff == 0:
		maxDiff = defaultMaxDiff
	}
	if err := check(req); err != nil {
		return nil, err
	}
	ctx, span := tracer.Start(ctx, "reconcile table", trace.WithAttributes(
		attribute.String("cutover.job_id", req.GetJobId()), attribute.String("cutover.target_table", req.GetTable())))
	defer span.End()
	r := &reconciler{db: tgt, dial: dial, req: req, schema: tgt.Schema, maxDiff: maxDiff}
	tr := &commonv1.TableReconciliation{TargetTable: r.schema + "." + req.GetTable(), Rows: &commonv1.RowCheck{}}
	for _, src := range req.GetSources() {
		tr.Tables = append(tr.Tables, src.GetTable().GetName())
	}
	level := req.GetLevel()
	if level == commonv1.ReconcileLevel_RECONCILE_LEVEL_UNSPECIFIED {
		level = commonv1.ReconcileLevel_RECONCILE_LEVEL_INDEPENDENT
	}
	replay := level != commonv1.ReconcileLevel_RECONCILE_LEVEL_INDEPENDENT
	tr.Ok = true
	if level != commonv1.ReconcileLevel_RECONCILE_LEVEL_REPLAY {
		cols, pk, err := r.describe(ctx, req.GetTable())
		if err != nil {
			return nil, err
		}
		if err := r.loadExcluded(ctx); err != nil {
			return nil, err
		}
		err = r.independent(ctx, tr, cols, pk)
		switch {
		case errors.Is(err, errFileSource):
			// No database on the source side: replay instead, and say so.
			tr.Independent = &commonv1.IndependentCheck{Ok: true, RowsSkipped: "a source is a file: rows are compared by replay", Warnings: []string{
				"a source is a file, with no database to compute in: the table is compared by replaying the pipeline (level replay), which cannot see an error the pipeline makes every time"}}
			replay = true
		case err != nil:
			return nil, err
		}
		tr.Ok = tr.Independent.GetOk()
		tr.Warning = len(tr.Independent.GetWarnings()) > 0
		if !replay {
			tr.TargetRows = tr.Independent.GetTargetRows()
			tr.Rows = nil
		}
	}
	if replay {
		if err := r.table(ctx, tr); err != nil {
			return nil, err
		}
		tr.Ok = tr.Ok && tr.Rows.GetOk()
		for _, a := range tr.Aggregates {
			tr.Ok = tr.Ok && a.Ok
		}
	}
	span.SetAttributes(attribute.Bool("cutover.reconciled", tr.Ok))
	return tr, nil
}

// check refuses a request that names no table, no table spec or a
// partition that is not an extractor's read.
func check(req *loaderv1.ReconcileTableRequest) error {
	if req.GetTable() == "" {
		return invalid("table", "required")
	}
	if len(req.GetSources()) == 0 {
		return invalid("sources", "at least one table spec is required")
	}
	for k, src := range req.GetSources() {
		if src.GetTable() == nil {
			return invalid(fmt.Sprintf("sources[%d].table", k), "required")
		}
		for i, p := range src.GetPartitions() {
			if p.GetTransform().GetRead().GetRead() == nil {
				return invalid(fmt.Sprintf("sources[%d].partitions[%d].transform.read", k, i), "required: a partition is replayed from the extractor's read")
			}
		}
	}
	return nil
}

// reconciler holds one table's reconciliation.
type reconciler struct {
	db      Target
	dial    Dialer
	req     *loaderv1.ReconcileTableRequest
	schema  string
	maxDiff int
	// loadRej: rows the loader quarantined, partition → seq → rows.
	loadRej map[string]map[int64][]int32
	// excluded: per table spec name, the source references of the rows
	// the job quarantined or filtered (the independent level).
	excluded map[string][]string
}

// loadExcluded reads the source references of the rows the target never
// got: quarantined (and not loaded later by a re-drive) or filtered.
func (r *reconciler) loadExcluded(ctx context.Context) error {
	r.excluded = map[string][]string{}
	var names []string
	for _, src := range r.req.GetSources() {
		names = append(names, src.GetTable().GetName())
	}
	return r.db.query(ctx, "read the rows job "+r.req.GetJobId()+" left out",
		`SELECT table_name, source_ref FROM cutover.quarantine WHERE job_id = $1 AND table_name = ANY($2) AND resolved_by = ''
		 UNION SELECT table_name, source_ref FROM cutover.filtered WHERE job_id = $1 AND table_name = ANY($2)`,
		[]any{r.req.GetJobId(), names}, func(rows pgx.Rows) error {
			var name, ref string
			if err := rows.Scan(&name, &ref); err != nil {
				return err
			}
			r.excluded[name] = append(r.excluded[name], ref)
			return nil
		})
}

// loadRejects reads which rows of the request's partitions the loader
// itself refused: the stages passed them, the target never got them.
func (r *reconciler) loadRejects(ctx context.Context) error {
	r.loadRej = map[string]map[int64][]int32{}
	var parts []string
	for _, src := range r.req.GetSources() {
		for _, p := range src.GetPartitions() {
			parts = append(parts, p.GetTransform().GetRead().GetRead().GetPartitionId())
		}
	}
	return r.db.query(ctx, "read the rows the loader quarantined for job "+r.req.GetJobId(),
		`SELECT partition_id, seq, row_index FROM cutover.quarantine WHERE job_id = $1 AND stage = 'load' AND partition_id = ANY($2)`,
		[]any{r.req.GetJobId(), parts}, func(rows pgx.Rows) error {
			var part string
			var seq int64
			var row int32
			if err := rows.Scan(&part, &seq, &row); err != nil {
				return err
			}
			if r.loadRej[part] == nil {
				r.loadRej[part] = map[int64][]int32{}
			}
			r.loadRej[part][seq] = append(r.loadRej[part][seq], row)
			return nil
		})
}

// table reconciles the target table into tr.
func (r *reconciler) table(ctx context.Context, tr *commonv1.TableReconciliation) error {
	table := r.req.GetTable()
	cols, pk, err := r.describe(ctx, table)
	if err != nil {
		return err
	}
	p := &tablePlan{name: table, ident: pgx.Identifier{r.schema, table}.Sanitize(), srcs: r.req.GetSources()}
	n, err := r.count(ctx, p.ident)
	if err != nil {
		return err
	}
	tr.TargetRows = n
	if r.req.GetStaged() {
		tr.Rows.Ok = true
		tr.Rows.Skipped = "staged table (dedupe, new ids, references or key collisions): its rows are merged and rewritten at finalize, " +
			"so neither rows nor aggregates compare one to one with the source; counts only"
		return nil
	}
	skipped, err := r.plan(ctx, p, cols, pk)
	if err != nil {
		return err
	}
	if len(p.key) == 0 && len(p.aggs) == 0 {
		tr.Rows.Ok = true
		tr.Rows.Skipped = skipped
		return nil
	}
	if err := r.loadRejects(ctx); err != nil {
		return err
	}
	var tgtDigest *digest
	var tgtAggs []map[string]*aggAcc
	g, gctx := errgroup.WithContext(ctx)
	if len(p.key) > 0 {
		g.Go(func() (err error) { tgtDigest, err = r.targetDigest(gctx, p); return err })
	}
	if len(p.aggs) > 0 {
		g.Go(func() (err error) { tgtAggs, err = r.targetAggs(gctx, p); return err })
	}
	var src *sourceResult
	g.Go(func() (err error) { src, err = r.source(gctx, p, nil); return err })
	if err := g.Wait(); err != nil {
		return err
	}
	for k, a := range p.aggs {
		tr.Aggregates = append(tr.Aggregates, r.compareAggs(p, a, src.aggs[k], tgtAggs[k]))
	}
	rc := tr.Rows
	rc.Skipped = skipped
	if len(p.key) == 0 {
		rc.Ok = true
		return nil
	}
	return r.rows(ctx, p, rc, src.digest, tgtDigest)
}

// rows compares the two sides' digests into rc and drills into the
// differing buckets, a round at a time, for the differing keys.
func (r *reconciler) rows(ctx context.Context, p *tablePlan, rc *commonv1.RowCheck, srcDigest, tgtDigest *digest) error {
	rc.Rows = srcDigest.rows()
	rc.Ranges = reconBuckets
	var differing []int
	for b := range reconBuckets {
		if srcDigest.n[b] != tgtDigest.n[b] || srcDigest.x[b] != tgtDigest.x[b] {
			differing = append(differing, b)
		}
	}
	rc.RangesDiffering = int64(len(differing))
	rc.Ok = len(differing) == 0
	var diffs []*rowDiff
	for len(differing) > 0 && len(diffs) <= r.maxDiff {
		// A round takes differing buckets while their rows fit the budget.
		take, rows := 0, int64(0)
		for take < len(differing) {
			b := differing[take]
			rows += max(srcDigest.n[b], tgtDigest.n[b])
			if take > 0 && rows > reconRoundRows {
				break
			}
			take++
		}
		sel := map[int]bool{}
		for _, b := range differing[:take] {
			sel[b] = true
		}
		differing = differing[take:]
		d, err := r.drill(ctx, p, sel)
		if err != nil {
			return err
		}
		diffs = append(diffs, d...)
	}
	sort.Slice(diffs, func(a, b int) bool { return lessKey(diffs[a].keyVals, diffs[b].keyVals) })
	if len(diffs) > r.maxDiff || len(differing) > 0 {
		rc.Truncated = true
	}
	for k, d := range diffs {
		if k == r.maxDiff {
			break
		}
		rc.Differences = append(rc.Differences, d.RowDifference)
	}
	// Buckets differ only through differing rows, so none found means a
	// side changed between the digest and the drill.
	if len(diffs) == 0 && rc.RangesDiffering > 0 {
		note := fmt.Sprintf("%d key ranges differed, but their rows matched when read again: the source or the target changed during the reconciliation; run it again", rc.RangesDiffering)
		rc.Skipped = strings.TrimPrefix(rc.Skipped+"; "+note, "; ")
	}
	return nil
}
