package reconcile

import (
	"context"
	"fmt"
	"slices"
	"strings"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	"github.com/cutover/cutover/services/kit/stage"
	"github.com/jackc/pgx/v5"
)

// tablePlan is what is compared for one target table.
type tablePlan struct {
	name     string                      // target table, unqualified
	ident    string                      // quoted schema.table
	srcs     []*loaderv1.ReconcileSource // the table specs that fill it
	compared []targetCol                 // in table order
	renders  [][]renderFn
	key      []int // positions in compared
	aggs     []aggPlan
}

type aggPlan struct {
	name  string
	group []int // positions in compared
	sums  []int
	float []bool // per sum: summed through its text (exact decimal)
	// approx: per sum, compared to 1e-9 (a database summed floating point).
	approx []bool
}

// describe reads the target table's columns and primary key.
func (r *reconciler) describe(ctx context.Context, table string) ([]targetCol, []string, error) {
	var cols []targetCol
	keyAt := map[int]string{}
	err := r.db.query(ctx, "describe target table "+r.schema+"."+table, `
SELECT a.attname,
       CASE WHEN bt.typtype = 'b' AND bt.typnamespace = 'pg_catalog'::regnamespace THEN bt.typname::text ELSE '' END,
       CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END,
       format_type(a.atttypid, a.atttypmod),
       a.attnotnull,
       coalesce((SELECT k.ord FROM pg_index i, unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) WHERE i.indrelid = c.oid AND i.indisprimary AND k.attnum = a.attnum), 0)
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`, []any{r.schema, table}, func(rows pgx.Rows) error {
		var c targetCol
		var pos int
		if err := rows.Scan(&c.name, &c.typname, &c.typmod, &c.pgType, &c.notNull, &pos); err != nil {
			return err
		}
		if pos > 0 {
			keyAt[pos] = c.name
		}
		cols = append(cols, c)
		return nil
	})
	if err != nil {
		return nil, nil, err
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
	err := r.db.query(ctx, "count the rows of "+ident, `SELECT count(*) FROM `+ident, nil, func(rows pgx.Rows) error { return rows.Scan(&n) })
	return n, err
}

// plan picks the compared columns (mapped by every table spec feeding the
// table, with an identical text form on both sides), the key and the
// aggregates. It returns why rows or columns are not compared.
func (r *reconciler) plan(ctx context.Context, p *tablePlan, cols []targetCol, pk []string) (string, error) {
	var notes []string
	mappings := make([]map[string]*commonv1.ColumnMapping, len(p.srcs))
	for k, src := range p.srcs {
		mappings[k] = map[string]*commonv1.ColumnMapping{}
		for _, m := range src.GetTable().GetColumns() {
			mappings[k][m.GetTarget()] = m
		}
	}
	var uncomparable []string
	why := map[string]string{}
	for _, c := range cols {
		fns := make([]renderFn, len(p.srcs))
		ok := true
		for k, src := range p.srcs {
			m := mappings[k][c.name]
			if m == nil {
				if len(fns) > 1 && anyMaps(mappings, c.name) {
					why[c.name] = "not mapped by table " + src.GetTable().GetName()
					uncomparable = append(uncomparable, c.name+" (not mapped by table "+src.GetTable().GetName()+")")
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
	for _, src := range p.srcs {
		for a, ag := range src.GetTable().GetAggregates() {
			f := fmt.Sprintf("tables[%d].aggregates[%d]", src.GetTableIndex(), a)
			name := aggName(ag)
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
	cc, err := r.dial(r.req.GetExtractor())
	if err != nil {
		return nil, "", fmt.Errorf("%w: extractor: %v", ErrInvalidArgument, err)
	}
	ex := extractorv1.NewExtractorServiceClient(cc)
	var key []string
	for k, src := range p.srcs {
		t := src.GetTable()
		dctx, cancel := context.WithTimeout(ctx, stageWait)
		d, err := ex.DescribeSource(dctx, &extractorv1.DescribeSourceRequest{Source: t.GetSource()})
		cancel()
		if err != nil {
			return nil, "", &stage.UpstreamError{Stage: "extractor", Err: err}
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
