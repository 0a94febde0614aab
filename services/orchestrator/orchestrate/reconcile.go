package orchestrate

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"golang.org/x/sync/errgroup"
)

// Reconcile proves a finished job's target against its source, per target
// table: row counts, group totals (TableSpec.aggregates) and rows.
//
// Rows are compared without pulling the target through the network: both
// sides hash every row in one canonical text form (reconcile_canon.go) into
// reconBuckets buckets by a hash of the key, and compare per bucket the row
// count and the XOR of the 64-bit row hashes. Only differing buckets are
// drilled into: the target sends (key, row hash, values) of those buckets
// only, the source is read again keeping only those buckets' rows, so
// memory stays bounded by reconRoundRows however big the table is.

const (
	reconBuckets   = 4096 // 12 bits of the key hash
	reconRoundRows = 200000
	defaultMaxDiff = 20
	maxMaxDiff     = 1000
)

// Reconcile serves ValidationService.Reconcile.
func (v *validationServer) Reconcile(ctx context.Context, req *orchestratorv1.ReconcileRequest) (*orchestratorv1.ReconcileResponse, error) {
	res, err := v.s.Reconcile(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	// The last reconciliation goes with the job's report.
	if err := v.s.store.setReconciliation(ctx, req.GetId(), res.GetReconciliation()); err != nil {
		return nil, toStatus(err)
	}
	return res, nil
}

// Reconcile compares a succeeded job's source and target (see the
// package comment above); errors are domain errors (toStatus maps them).
func (s *Service) Reconcile(ctx context.Context, req *orchestratorv1.ReconcileRequest) (*orchestratorv1.ReconcileResponse, error) {
	start := time.Now()
	maxDiff := int(req.GetMaxDifferences())
	switch {
	case maxDiff < 0 || maxDiff > maxMaxDiff:
		return nil, invalid("max_differences", "must be 0 (default %d) to %d, got %d", defaultMaxDiff, maxMaxDiff, maxDiff)
	case maxDiff == 0:
		maxDiff = defaultMaxDiff
	}
	j, err := s.store.getJob(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	if j.state != stateSucceeded && j.state != stateFollowing {
		return nil, fmt.Errorf("%w: job %s is %s; only a succeeded or following job can be reconciled", ErrJobState, j.id, j.state)
	}
	ctx, span := tracer.Start(ctx, "reconcile", withJob(j.id))
	defer span.End()
	report, err := s.buildReport(ctx, j)
	if err != nil {
		return nil, err
	}
	target := s.target(j.spec)
	pool, release, err := targetPool(ctx, target.GetDsn())
	if err != nil {
		return nil, err
	}
	defer release()
	r := &reconciler{s: s, j: j, pool: pool, schema: target.GetSchema(), maxDiff: maxDiff}
	if err := r.loadRejects(ctx); err != nil {
		return nil, err
	}
	out := &orchestratorv1.Reconciliation{JobId: j.id, Ok: true}
	loaded := map[string]int64{}
	for _, tr := range report.GetTables() {
		loaded[tr.GetName()] += tr.GetCounts().GetLoaded()
	}
	staged := stagedTables(j.spec)
	var order []string
	specsOf := map[string][]int{}
	for i, t := range j.spec.GetTables() {
		tt := t.GetTargetTable()
		if _, ok := specsOf[tt]; !ok {
			order = append(order, tt)
		}
		specsOf[tt] = append(specsOf[tt], i)
	}
	for _, tt := range order {
		tr := &orchestratorv1.TableReconciliation{TargetTable: r.schema + "." + tt, Rows: &orchestratorv1.RowCheck{}}
		for _, i := range specsOf[tt] {
			tr.Tables = append(tr.Tables, j.spec.Tables[i].GetName())
			tr.ExpectedRows += loaded[j.spec.Tables[i].GetName()]
		}
		if err := r.table(ctx, tr, tt, specsOf[tt], staged[tt]); err != nil {
			return nil, err
		}
		if followed(j.spec, specsOf[tt]) {
			// Changes since the full load count: the target must hold
			// what the source holds now.
			tr.ExpectedRows = tr.Rows.GetRows()
		}
		tr.Ok = tr.ExpectedRows == tr.TargetRows && tr.Rows.GetOk()
		for _, a := range tr.Aggregates {
			tr.Ok = tr.Ok && a.Ok
		}
		out.Ok = out.Ok && tr.Ok
		out.Tables = append(out.Tables, tr)
	}
	out.DurationSeconds = time.Since(start).Seconds()
	span.SetAttributes(attribute.Bool("cutover.reconciled", out.Ok))
	return &orchestratorv1.ReconcileResponse{Reconciliation: out}, nil
}

// reconciler holds one Reconcile call's state.
type reconciler struct {
	s       *Service
	j       *jobRow
	pool    pgxPool
	schema  string
	maxDiff int
	// loadRejects: rows the loader quarantined, partition → seq → rows.
	loadRej map[string]map[int64][]int32
}

// loadRejects reads which rows the loader itself refused: the stages
// passed them, the target never got them.
func (r *reconciler) loadRejects(ctx context.Context) error {
	r.loadRej = map[string]map[int64][]int32{}
	rows, err := r.pool.Query(ctx, `SELECT partition_id, seq, row_index FROM cutover.quarantine WHERE job_id = $1 AND stage = 'load'`, r.j.id)
	if err != nil {
		if isUndefinedTable(err) {
			return nil
		}
		return fmt.Errorf("%w: read the rows the loader quarantined for job %s: %v", ErrStage, r.j.id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var part string
		var seq int64
		var row int32
		if err := rows.Scan(&part, &seq, &row); err != nil {
			return fmt.Errorf("%w: read the rows the loader quarantined: %v", ErrStage, err)
		}
		if r.loadRej[part] == nil {
			r.loadRej[part] = map[int64][]int32{}
		}
		r.loadRej[part][seq] = append(r.loadRej[part][seq], row)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%w: read the rows the loader quarantined: %v", ErrStage, err)
	}
	return nil
}

// tablePlan is what is compared for one target table.
type tablePlan struct {
	name     string // target table, unqualified
	ident    string // quoted schema.table
	specs    []int
	compared []targetCol // in table order
	renders  [][]renderFn
	key      []int // positions in compared
	aggs     []aggPlan
}

type aggPlan struct {
	name  string
	group []int // positions in compared
	sums  []int
	float []bool // per sum: summed through its text (exact decimal)
}

// table reconciles one target table into tr.
func (r *reconciler) table(ctx context.Context, tr *orchestratorv1.TableReconciliation, table string, specs []int, staged bool) error {
	cols, pk, err := r.describe(ctx, table)
	if err != nil {
		return err
	}
	p := &tablePlan{name: table, ident: pgx.Identifier{r.schema, table}.Sanitize(), specs: specs}
	n, err := r.count(ctx, p.ident)
	if err != nil {
		return err
	}
	tr.TargetRows = n
	if staged {
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
	rc.Rows = src.digest.rows()
	rc.Ranges = reconBuckets
	var differing []int
	for b := range reconBuckets {
		if src.digest.n[b] != tgtDigest.n[b] || src.digest.x[b] != tgtDigest.x[b] {
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
			rows += max(src.digest.n[b], tgtDigest.n[b])
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

// describe reads the target table's columns and primary key.
func (r *reconciler) describe(ctx context.Context, table string) ([]targetCol, []string, error) {
	rows, err := r.pool.Query(ctx, `
SELECT a.attname,
       CASE WHEN bt.typtype = 'b' AND bt.typnamespace = 'pg_catalog'::regnamespace THEN bt.typname::text ELSE '' END,
       CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END,
       format_type(a.atttypid, a.atttypmod),
       coalesce((SELECT k.ord FROM pg_index i, unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) WHERE i.indrelid = c.oid AND i.indisprimary AND k.attnum = a.attnum), 0)
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`, r.schema, table)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: describe target table %s.%s: %v", ErrStage, r.schema, table, err)
	}
	defer rows.Close()
	var cols []targetCol
	keyAt := map[int]string{}
	for rows.Next() {
		var c targetCol
		var pos int
		if err := rows.Scan(&c.name, &c.typname, &c.typmod, &c.pgType, &pos); err != nil {
			return nil, nil, fmt.Errorf("%w: describe target table %s.%s: %v", ErrStage, r.schema, table, err)
		}
		if pos > 0 {
			keyAt[pos] = c.name
		}
		cols = append(cols, c)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("%w: describe target table %s.%s: %v", ErrStage, r.schema, table, err)
	}
	if len(cols) == 0 {
		return nil, nil, fmt.Errorf("%w: target table %s.%s does not exist (any more)", ErrTargetMismatch, r.schema, table)
	}
	var pk []string
	for k := 1; keyAt[k] != ""; k++ {
		pk = append(pk, keyAt[k])
	}
	return cols, pk, nil
}

func (r *reconciler) count(ctx context.Context, ident string) (int64, error) {
	var n int64
	if err := r.pool.QueryRow(ctx, `SELECT count(*) FROM `+ident).Scan(&n); err != nil {
		return 0, fmt.Errorf("%w: count the rows of %s: %v", ErrStage, ident, err)
	}
	return n, nil
}

// plan picks the compared columns (mapped by every table spec feeding the
// table, with an identical text form on both sides), the key and the
// aggregates. It returns why rows or columns are not compared.
func (r *reconciler) plan(ctx context.Context, p *tablePlan, cols []targetCol, pk []string) (string, error) {
	spec := r.j.spec
	var notes []string
	mappings := make([]map[string]*commonv1.ColumnMapping, len(p.specs))
	for k, i := range p.specs {
		mappings[k] = map[string]*commonv1.ColumnMapping{}
		for _, m := range spec.Tables[i].GetColumns() {
			mappings[k][m.GetTarget()] = m
		}
	}
	var uncomparable []string
	why := map[string]string{}
	for _, c := range cols {
		fns := make([]renderFn, len(p.specs))
		ok := true
		for k, i := range p.specs {
			m := mappings[k][c.name]
			if m == nil {
				if len(fns) > 1 && anyMaps(mappings, c.name) {
					why[c.name] = "not mapped by table " + spec.Tables[i].GetName()
					uncomparable = append(uncomparable, c.name+" (not mapped by table "+spec.Tables[i].GetName()+")")
				}
				ok = false
				break
			}
			fn, reason := renderer(m.GetType(), c)
			if fn == nil {
				why[c.name] = reason
				uncomparable = append(uncomparable, c.name+" ("+reason+")")
				ok = false
				break
			}
			fns[k] = fn
		}
		if ok {
			p.compared = append(p.compared, c)
			p.renders = append(p.renders, fns)
		}
	}
	pos := map[string]int{}
	for k, c := range p.compared {
		pos[c.name] = k
	}
	if len(uncomparable) > 0 {
		notes = append(notes, "columns not compared: "+strings.Join(uncomparable, ", "))
	}
	// The key: the target's primary key, else the source's, mapped.
	key, keyNote, err := r.rowKey(ctx, p, pk, mappings)
	if err != nil {
		return "", err
	}
	for _, name := range key {
		k, ok := pos[name]
		if !ok {
			reason := why[name]
			if reason == "" {
				reason = "not mapped"
			}
			keyNote = fmt.Sprintf("rows not compared: key column %s is not compared (%s)", name, reason)
			p.key = nil
			break
		}
		p.key = append(p.key, k)
	}
	if keyNote != "" {
		notes = append(notes, keyNote)
	}
	// Aggregates: every spec of the table may declare some; one name is
	// one check.
	seen := map[string]bool{}
	for _, i := range p.specs {
		for a, ag := range spec.Tables[i].GetAggregates() {
			f := fmt.Sprintf("tables[%d].aggregates[%d]", i, a)
			name := ag.GetName()
			if name == "" {
				name = "count"
				if len(ag.GetSum()) > 0 {
					name = "sum(" + strings.Join(ag.GetSum(), ", ") + ")"
				}
				if len(ag.GetGroupBy()) > 0 {
					name += " by " + strings.Join(ag.GetGroupBy(), ", ")
				}
			}
			if seen[name] {
				continue
			}
			seen[name] = true
			ap := aggPlan{name: name}
			for g, col := range ag.GetGroupBy() {
				k, err := aggColumn(pos, why, cols, fmt.Sprintf("%s.group_by[%d]", f, g), col, p.ident)
				if err != nil {
					return "", err
				}
				ap.group = append(ap.group, k)
			}
			for g, col := range ag.GetSum() {
				field := fmt.Sprintf("%s.sum[%d]", f, g)
				k, err := aggColumn(pos, why, cols, field, col, p.ident)
				if err != nil {
					return "", err
				}
				switch p.compared[k].typname {
				case "int2", "int4", "int8", "numeric":
					ap.float = append(ap.float, false)
				case "float4", "float8":
					ap.float = append(ap.float, true)
				default:
					return "", invalid(field, "column %s of %s is %s; only numbers can be summed", col, p.ident, p.compared[k].pgType)
				}
				ap.sums = append(ap.sums, k)
			}
			p.aggs = append(p.aggs, ap)
		}
	}
	return strings.Join(notes, "; "), nil
}

func anyMaps(mappings []map[string]*commonv1.ColumnMapping, col string) bool {
	for _, m := range mappings {
		if m[col] != nil {
			return true
		}
	}
	return false
}

func aggColumn(pos map[string]int, why map[string]string, cols []targetCol, field, col, table string) (int, error) {
	if k, ok := pos[col]; ok {
		return k, nil
	}
	if reason, ok := why[col]; ok {
		return 0, invalid(field, "column %s of %s cannot be compared: %s", col, table, reason)
	}
	for _, c := range cols {
		if c.name == col {
			return 0, invalid(field, "column %s of %s is not mapped from the source", col, table)
		}
	}
	names := make([]string, len(cols))
	for k, c := range cols {
		names[k] = c.name
	}
	return 0, invalid(field, "unknown column %q in target table %s (it has: %s)", col, table, strings.Join(names, ", "))
}

// rowKey returns the key rows are matched by: the target's primary key,
// else the source primary key when every table spec maps it to the same
// target columns; with none, a note saying why rows are not compared.
func (r *reconciler) rowKey(ctx context.Context, p *tablePlan, pk []string, mappings []map[string]*commonv1.ColumnMapping) ([]string, string, error) {
	if len(pk) > 0 {
		return pk, "", nil
	}
	var key []string
	for k, i := range p.specs {
		t := r.j.spec.Tables[i]
		dctx, cancel := context.WithTimeout(ctx, stageWait)
		d, err := r.s.cfg.Clients.Extractor.DescribeSource(dctx, describeReq(t))
		cancel()
		if err != nil {
			return nil, "", stageErr("extractor", err)
		}
		var mapped []string
		for _, col := range d.GetPrimaryKey() {
			found := ""
			for _, m := range mappings[k] {
				if m.GetSource() == col && m.GetExpr() == "" {
					found = m.GetTarget()
				}
			}
			if found == "" {
				return nil, fmt.Sprintf("rows not compared: %s has no primary key and source %s's key column %s is not mapped", p.ident, t.GetName(), col), nil
			}
			mapped = append(mapped, found)
		}
		if len(mapped) == 0 {
			return nil, fmt.Sprintf("rows not compared: neither %s nor source %s has a primary key", p.ident, t.GetName()), nil
		}
		if k > 0 && !slices.Equal(mapped, key) {
			return nil, fmt.Sprintf("rows not compared: %s has no primary key and its sources' keys map to different columns (%s, %s)",
				p.ident, strings.Join(key, ","), strings.Join(mapped, ",")), nil
		}
		key = mapped
	}
	return key, "", nil
}

// ---- canonical rows ----

// canonRow is one row rendered: every compared column's text (or NULL).
type canonRow struct {
	buf   []byte
	ends  []int
	nulls []bool
}

func (c *canonRow) value(k int) ([]byte, bool) {
	if c.nulls[k] {
		return nil, false
	}
	start := 0
	if k > 0 {
		start = c.ends[k-1]
	}
	return c.buf[start:c.ends[k]], true
}

// appendLP appends a value length-prefixed ("len:value"), NULL as "~":
// unambiguous without escaping, and easy to write the same in SQL.
func appendLP(dst, v []byte, ok bool) []byte {
	if !ok {
		return append(dst, '~')
	}
	dst = strconv.AppendInt(dst, int64(len(v)), 10)
	dst = append(dst, ':')
	return append(dst, v...)
}

// sqlLP is appendLP in SQL for one column's text.
func sqlLP(col string) string {
	x := "(t." + pgx.Identifier{col}.Sanitize() + ")::text"
	return "coalesce(octet_length(" + x + ")::text || ':' || " + x + ", '~')"
}

func rowHash(lp []byte) int64 {
	s := md5.Sum(lp)
	return int64(binary.BigEndian.Uint64(s[:8]))
}

func keyBucket(lp []byte) int {
	s := md5.Sum(lp)
	return int(s[0])<<4 | int(s[1]>>4)
}

// intKey reports whether rows are bucketed by the value of a single
// integer key (modulo reconBuckets) instead of the key's md5: a hash less
// per row on both sides, and integer keys spread evenly anyway.
func (p *tablePlan) intKey() bool {
	if len(p.key) != 1 {
		return false
	}
	switch p.compared[p.key[0]].typname {
	case "int2", "int4", "int8":
		return true
	}
	return false
}

// bucketOf is the bucket of a row's key given its canonical text.
func (p *tablePlan) bucketOf(klp []byte, key []byte) int {
	if p.intKey() {
		if v, err := strconv.ParseInt(string(key), 10, 64); err == nil {
			return int((v%reconBuckets + reconBuckets) % reconBuckets)
		}
	}
	return keyBucket(klp)
}

func (p *tablePlan) sqlRowHash() string {
	parts := make([]string, len(p.compared))
	for k, c := range p.compared {
		parts[k] = sqlLP(c.name)
	}
	return "('x' || substr(md5(" + strings.Join(parts, " || ") + "), 1, 16))::bit(64)::bigint"
}

func (p *tablePlan) sqlBucket() string {
	if p.intKey() {
		col := "t." + pgx.Identifier{p.compared[p.key[0]].name}.Sanitize()
		return fmt.Sprintf("coalesce(((%s %% %d + %d) %% %d)::int, %d)", col, reconBuckets, reconBuckets, reconBuckets, keyBucket(appendLP(nil, nil, false)))
	}
	parts := make([]string, len(p.key))
	for k, pos := range p.key {
		parts[k] = sqlLP(p.compared[pos].name)
	}
	return "('x' || substr(md5(" + strings.Join(parts, " || ") + "), 1, 3))::bit(12)::int"
}

// display renders a row for a difference: "col=value, …", NULL as NULL.
func (p *tablePlan) display(vals []*string) string {
	var sb strings.Builder
	for k, c := range p.compared {
		if k > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(c.name)
		sb.WriteByte('=')
		if vals[k] == nil {
			sb.WriteString("NULL")
		} else {
			sb.WriteString(*vals[k])
		}
	}
	return sb.String()
}

// keyOf returns a row's key as "a=1,b=2" (lineage's form), its values and
// its length-prefixed text.
func (p *tablePlan) keyOf(vals []*string) (string, []string, string) {
	var sb strings.Builder
	var lp []byte
	kv := make([]string, len(p.key))
	for k, pos := range p.key {
		if k > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(p.compared[pos].name)
		sb.WriteByte('=')
		if vals[pos] == nil {
			sb.WriteString("NULL")
			kv[k] = "NULL"
			lp = appendLP(lp, nil, false)
		} else {
			sb.WriteString(*vals[pos])
			kv[k] = *vals[pos]
			lp = appendLP(lp, []byte(*vals[pos]), true)
		}
	}
	return sb.String(), kv, string(lp)
}

// ---- digests ----

type digest struct {
	n [reconBuckets]int64
	x [reconBuckets]int64
}

func (d *digest) add(o *digest) {
	for b := range reconBuckets {
		d.n[b] += o.n[b]
		d.x[b] ^= o.x[b]
	}
}

func (d *digest) rows() int64 {
	var n int64
	for _, c := range d.n {
		n += c
	}
	return n
}

func (r *reconciler) targetDigest(ctx context.Context, p *tablePlan) (*digest, error) {
	q := `SELECT b, count(*), bit_xor(h) FROM (SELECT ` + p.sqlBucket() + ` AS b, ` + p.sqlRowHash() + ` AS h FROM ` + p.ident + ` t) s GROUP BY b`
	rows, err := r.pool.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("%w: hash the rows of %s: %v", ErrStage, p.ident, err)
	}
	defer rows.Close()
	d := &digest{}
	for rows.Next() {
		var b int
		var n, x int64
		if err := rows.Scan(&b, &n, &x); err != nil {
			return nil, fmt.Errorf("%w: hash the rows of %s: %v", ErrStage, p.ident, err)
		}
		d.n[b], d.x[b] = n, x
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%w: hash the rows of %s: %v", ErrStage, p.ident, err)
	}
	return d, nil
}

// ---- drilling into differing buckets ----

type rowDiff struct {
	*orchestratorv1.RowDifference
	keyVals []string
}

type sideRow struct {
	h       int64
	display string
}

type keyRows struct {
	key     string
	keyVals []string
	src     []sideRow
	tgt     []sideRow
}

// drill finds the differing keys of the selected buckets.
func (r *reconciler) drill(ctx context.Context, p *tablePlan, sel map[int]bool) ([]*rowDiff, error) {
	byKey := map[string]*keyRows{}
	get := func(vals []*string) *keyRows {
		key, kv, lp := p.keyOf(vals)
		kr := byKey[lp]
		if kr == nil {
			kr = &keyRows{key: key, keyVals: kv}
			byKey[lp] = kr
		}
		return kr
	}
	var src *sourceResult
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { src, err = r.source(gctx, p, sel); return err })
	var tgt []struct {
		h    int64
		vals []*string
	}
	g.Go(func() error {
		buckets := make([]int32, 0, len(sel))
		for b := range sel {
			buckets = append(buckets, int32(b))
		}
		vals := make([]string, len(p.compared))
		for k, c := range p.compared {
			vals[k] = "(t." + pgx.Identifier{c.name}.Sanitize() + ")::text"
		}
		q := `SELECT h, v FROM (SELECT ` + p.sqlBucket() + ` AS b, ` + p.sqlRowHash() + ` AS h, ARRAY[` + strings.Join(vals, ", ") + `] AS v FROM ` +
			p.ident + ` t) s WHERE b = ANY($1)`
		rows, err := r.pool.Query(gctx, q, buckets)
		if err != nil {
			return fmt.Errorf("%w: read the differing rows of %s: %v", ErrStage, p.ident, err)
		}
		defer rows.Close()
		for rows.Next() {
			var h int64
			var v []*string
			if err := rows.Scan(&h, &v); err != nil {
				return fmt.Errorf("%w: read the differing rows of %s: %v", ErrStage, p.ident, err)
			}
			tgt = append(tgt, struct {
				h    int64
				vals []*string
			}{h, v})
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("%w: read the differing rows of %s: %v", ErrStage, p.ident, err)
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, row := range src.rows {
		kr := get(row.vals)
		kr.src = append(kr.src, sideRow{row.h, p.display(row.vals)})
	}
	for _, row := range tgt {
		kr := get(row.vals)
		kr.tgt = append(kr.tgt, sideRow{row.h, p.display(row.vals)})
	}
	var out []*rowDiff
	for _, kr := range byKey {
		kind := ""
		switch ns, nt := len(kr.src), len(kr.tgt); {
		case nt == 0 || ns > nt:
			kind = "missing"
		case ns == 0 || nt > ns:
			kind = "extra"
		default:
			hs, ht := make([]int64, ns), make([]int64, nt)
			for k := range kr.src {
				hs[k], ht[k] = kr.src[k].h, kr.tgt[k].h
			}
			slices.Sort(hs)
			slices.Sort(ht)
			if !slices.Equal(hs, ht) {
				kind = "changed"
			}
		}
		if kind == "" {
			continue
		}
		out = append(out, &rowDiff{RowDifference: &orchestratorv1.RowDifference{Key: kr.key, Kind: kind,
			Source: joinRows(kr.src), Target: joinRows(kr.tgt)}, keyVals: kr.keyVals})
	}
	return out, nil
}

func joinRows(rows []sideRow) string {
	s := make([]string, len(rows))
	for k, r := range rows {
		s[k] = r.display
	}
	sort.Strings(s)
	return strings.Join(s, " | ")
}

// lessKey orders keys column by column, numbers as numbers.
func lessKey(a, b []string) bool {
	for k := range min(len(a), len(b)) {
		if a[k] == b[k] {
			continue
		}
		x, ok1 := new(big.Rat).SetString(a[k])
		y, ok2 := new(big.Rat).SetString(b[k])
		if ok1 && ok2 {
			if c := x.Cmp(y); c != 0 {
				return c < 0
			}
		}
		return a[k] < b[k]
	}
	return len(a) < len(b)
}

// ---- aggregates ----

// aggAcc is one group's totals: row count and exact sums.
type aggAcc struct {
	group   []*string
	count   int64
	sums    []*big.Rat // nil: no non-NULL value (SQL sum is NULL)
	special []string   // NaN or ±Infinity seen, which decide the sum
	scale   []int      // largest number of fraction digits seen, for display
}

func newAcc(group []*string, sums int) *aggAcc {
	return &aggAcc{group: group, sums: make([]*big.Rat, sums), special: make([]string, sums), scale: make([]int, sums)}
}

// addText adds one value's canonical text to sum k.
func (a *aggAcc) addText(k int, v string) {
	x, ok := new(big.Rat).SetString(v)
	if !ok {
		a.special[k] = specialSum(a.special[k], v)
		return
	}
	if dot := strings.IndexByte(v, '.'); dot >= 0 && strings.IndexAny(v, "eE") < 0 {
		a.scale[k] = max(a.scale[k], len(v)-dot-1)
	}
	if a.sums[k] == nil {
		a.sums[k] = x
		return
	}
	a.sums[k].Add(a.sums[k], x)
}

func (a *aggAcc) merge(o *aggAcc) {
	a.count += o.count
	for k := range a.sums {
		if o.special[k] != "" {
			a.special[k] = specialSum(a.special[k], o.special[k])
		}
		a.scale[k] = max(a.scale[k], o.scale[k])
		switch {
		case o.sums[k] == nil:
		case a.sums[k] == nil:
			a.sums[k] = o.sums[k]
		default:
			a.sums[k].Add(a.sums[k], o.sums[k])
		}
	}
}

// specialSum combines non-finite values as numeric sum does.
func specialSum(have, v string) string {
	switch {
	case have == "" || have == v:
		return v
	default: // NaN with anything, or +Infinity with -Infinity
		return "NaN"
	}
}

// text renders sum k as PostgreSQL prints it; "NULL" when SQL sum is NULL.
func (a *aggAcc) text(k int) string {
	switch {
	case a.special[k] != "":
		return a.special[k]
	case a.sums[k] == nil:
		return "NULL"
	}
	for s := a.scale[k]; ; s++ {
		t := a.sums[k].FloatString(s)
		if back, _ := new(big.Rat).SetString(t); back.Cmp(a.sums[k]) == 0 || s > 60 {
			return t
		}
	}
}

func (r *reconciler) targetAggs(ctx context.Context, p *tablePlan) ([]map[string]*aggAcc, error) {
	out := make([]map[string]*aggAcc, len(p.aggs))
	for k, a := range p.aggs {
		var sel, groupBy []string
		for g, pos := range a.group {
			sel = append(sel, "(t."+pgx.Identifier{p.compared[pos].name}.Sanitize()+")::text")
			groupBy = append(groupBy, strconv.Itoa(g+1))
		}
		sel = append(sel, "count(*)")
		for s, pos := range a.sums {
			col := "t." + pgx.Identifier{p.compared[pos].name}.Sanitize()
			if a.float[s] {
				col = "(" + col + ")::text::numeric" // the exact decimal its text shows
			}
			sel = append(sel, "sum("+col+")::text")
		}
		q := `SELECT ` + strings.Join(sel, ", ") + ` FROM ` + p.ident + ` t`
		if len(groupBy) > 0 {
			q += ` GROUP BY ` + strings.Join(groupBy, ", ")
		}
		rows, err := r.pool.Query(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("%w: aggregate %q on %s: %v", ErrStage, a.name, p.ident, err)
		}
		m := map[string]*aggAcc{}
		for rows.Next() {
			group := make([]*string, len(a.group))
			var count int64
			sums := make([]*string, len(a.sums))
			dst := make([]any, 0, len(group)+1+len(sums))
			for g := range group {
				dst = append(dst, &group[g])
			}
			dst = append(dst, &count)
			for s := range sums {
				dst = append(dst, &sums[s])
			}
			if err := rows.Scan(dst...); err != nil {
				rows.Close()
				return nil, fmt.Errorf("%w: aggregate %q on %s: %v", ErrStage, a.name, p.ident, err)
			}
			acc := newAcc(group, len(a.sums))
			acc.count = count
			for s, v := range sums {
				if v != nil {
					acc.addText(s, *v)
				}
			}
			m[groupKey(group)] = acc
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("%w: aggregate %q on %s: %v", ErrStage, a.name, p.ident, err)
		}
		out[k] = m
	}
	return out, nil
}

func groupKey(group []*string) string {
	var lp []byte
	for _, v := range group {
		if v == nil {
			lp = appendLP(lp, nil, false)
		} else {
			lp = appendLP(lp, []byte(*v), true)
		}
	}
	return string(lp)
}

func (r *reconciler) compareAggs(p *tablePlan, a aggPlan, src, tgt map[string]*aggAcc) *orchestratorv1.AggregateCheck {
	if len(a.group) == 0 { // one total, present on both sides even over no rows
		for _, m := range []map[string]*aggAcc{src, tgt} {
			if m[""] == nil {
				m[""] = newAcc(nil, len(a.sums))
			}
		}
	}
	keys := map[string][]*string{}
	for k, v := range src {
		keys[k] = v.group
	}
	for k, v := range tgt {
		keys[k] = v.group
	}
	type diff struct {
		vals []string
		d    *orchestratorv1.GroupDifference
	}
	var diffs []diff
	for k, group := range keys {
		s, t := src[k], tgt[k]
		if s == nil {
			s = newAcc(group, len(a.sums))
		}
		if t == nil {
			t = newAcc(group, len(a.sums))
		}
		vals := make([]string, len(group))
		for g, v := range group {
			vals[g] = "NULL"
			if v != nil {
				vals[g] = *v
			}
		}
		if s.count != t.count {
			diffs = append(diffs, diff{vals, &orchestratorv1.GroupDifference{Group: vals, Measure: "count",
				Source: strconv.FormatInt(s.count, 10), Target: strconv.FormatInt(t.count, 10)}})
		}
		for m, pos := range a.sums {
			if ss, ts := s.text(m), t.text(m); !sumEqual(s, t, m) {
				diffs = append(diffs, diff{vals, &orchestratorv1.GroupDifference{Group: vals,
					Measure: "sum(" + p.compared[pos].name + ")", Source: ss, Target: ts}})
			}
		}
	}
	sort.SliceStable(diffs, func(x, y int) bool {
		if !slices.Equal(diffs[x].vals, diffs[y].vals) {
			return lessKey(diffs[x].vals, diffs[y].vals)
		}
		return diffs[x].d.Measure < diffs[y].d.Measure
	})
	out := &orchestratorv1.AggregateCheck{Name: a.name, Ok: len(diffs) == 0, Groups: int64(len(keys))}
	for k, d := range diffs {
		if k == r.maxDiff {
			break
		}
		out.Differences = append(out.Differences, d.d)
	}
	return out
}

func sumEqual(a, b *aggAcc, k int) bool {
	if a.special[k] != "" || b.special[k] != "" {
		return a.special[k] == b.special[k]
	}
	if a.sums[k] == nil || b.sums[k] == nil {
		return a.sums[k] == nil && b.sums[k] == nil
	}
	return a.sums[k].Cmp(b.sums[k]) == 0
}
