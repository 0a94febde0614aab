package load

import (
	"context"
	"fmt"
	"strings"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	"github.com/jackc/pgx/v5"
)

// jobRule is a unique or references rule of one table spec, ready to run.
type jobRule struct {
	field  string // "sources[i].rules[j]", for errors
	table  string // table spec whose rows the rule judges
	name   string // Rule.name, default the kind
	column string // reported column
	warn   bool
	cols   []string // unique: quoted columns; references: the one column
	names  []string // unique: column names, for reasons
	ref    string   // references: quoted referenced table
	refCol string   // references: quoted referenced column
	label  string   // references: "table.column", for reasons
	self   bool     // references: the referenced table is this one
}

// rules runs the table specs' unique and references rules on the rows as
// they would load (survivors). Rules of severity error run first, the
// references before the unique ones, so that a row quarantined for a
// dangling reference keeps no unique value from a valid row; rules of
// severity warn then see only rows that load, so a warned row is never
// quarantined afterwards. A failing survivor is quarantined with the rows
// merged into it (as for key collisions), or for warn loaded and listed
// in cutover.warnings.
func (f *finalizer) rules(ctx context.Context) error {
	var all []*jobRule
	for i, s := range f.req.GetSources() {
		for j, r := range s.GetRules() {
			jr, err := f.jobRule(fmt.Sprintf("sources[%d].rules[%d]", i, j), s.GetTable(), r)
			if err != nil {
				return err
			}
			all = append(all, jr)
		}
	}
	if len(all) == 0 {
		return nil
	}
	if _, err := f.tx.Exec(ctx, `CREATE TEMP TABLE _cutover_viol (row bigint PRIMARY KEY, why text NOT NULL, val text NOT NULL) ON COMMIT DROP;
CREATE TEMP TABLE _cutover_warned (row bigint PRIMARY KEY) ON COMMIT DROP`); err != nil {
		return f.t.dbErr("rules", err)
	}
	counts := map[string]*loaderv1.MergeCount{}
	for _, pass := range []struct {
		warn   bool
		unique bool
	}{{false, false}, {false, true}, {true, false}, {true, true}} {
		for _, r := range all {
			if r.warn != pass.warn || (r.names != nil) != pass.unique {
				continue
			}
			n, err := f.runRule(ctx, r)
			if err != nil {
				return fmt.Errorf("%s: %w", r.field, err)
			}
			if n == 0 {
				continue
			}
			mc := counts[r.name]
			if mc == nil {
				mc = &loaderv1.MergeCount{Key: r.name}
				counts[r.name] = mc
				f.resp.RuleRows = append(f.resp.RuleRows, mc)
			}
			mc.Rows += n
		}
	}
	return nil
}

// jobRule checks one rule of a StagedSource against the target table.
func (f *finalizer) jobRule(field, table string, r *commonv1.Rule) (*jobRule, error) {
	jr := &jobRule{field: field, table: table, name: r.GetName(), column: r.GetColumn()}
	switch r.GetSeverity() {
	case commonv1.Severity_SEVERITY_UNSPECIFIED, commonv1.Severity_SEVERITY_ERROR:
	case commonv1.Severity_SEVERITY_WARN:
		jr.warn = true
	default:
		return nil, fmt.Errorf("%w: %s.severity: unknown severity %d", ErrInvalidArgument, field, r.GetSeverity())
	}
	switch k := r.GetKind().(type) {
	case *commonv1.Rule_Unique:
		if jr.name == "" {
			jr.name = "unique"
		}
		jr.names = k.Unique.GetColumns()
		if len(jr.names) == 0 {
			if jr.column == "" {
				return nil, fmt.Errorf("%w: %s: a unique rule needs column or unique.columns", ErrInvalidArgument, field)
			}
			jr.names = []string{jr.column}
		}
		if jr.column == "" {
			jr.column = strings.Join(jr.names, ",")
		}
		for k, name := range jr.names {
			c, err := f.col(name)
			if err != nil {
				return nil, fmt.Errorf("%s.unique.columns[%d]: %w", field, k, err)
			}
			jr.cols = append(jr.cols, c)
		}
	case *commonv1.Rule_References:
		if jr.name == "" {
			jr.name = "references"
		}
		c, err := f.col(jr.column)
		if err != nil {
			return nil, fmt.Errorf("%s.column: %w", field, err)
		}
		jr.cols = []string{c}
		rt, rc := k.References.GetTable(), k.References.GetColumn()
		if rt == "" || rc == "" {
			return nil, fmt.Errorf("%w: %s.references: table and column are required", ErrInvalidArgument, field)
		}
		jr.ref = pgx.Identifier{f.schema, rt}.Sanitize()
		jr.refCol = pgx.Identifier{rc}.Sanitize()
		jr.label = rt + "." + rc
		jr.self = rt == f.req.GetTargetTable()
	default:
		return nil, fmt.Errorf("%w: %s: only unique and references rules are checked when finalizing", ErrInvalidArgument, field)
	}
	return jr, nil
}

// runRule finds the rule's failing survivors (into _cutover_viol) and
// quarantines or warns them; it returns the rows affected.
func (f *finalizer) runRule(ctx context.Context, r *jobRule) (int64, error) {
	if _, err := f.tx.Exec(ctx, `TRUNCATE _cutover_viol`); err != nil {
		return 0, f.t.dbErr("rules", err)
	}
	var sql string
	if r.names != nil {
		// The first row in the deterministic order (system rank, table
		// spec, source reference) keeps a value; rows with a NULL in the
		// columns are never duplicates, as in SQL.
		var notNull, vals, part []string
		for k, c := range r.cols {
			notNull = append(notNull, "x."+c+" IS NOT NULL")
			vals = append(vals, fmt.Sprintf("format('%%s=%%L', %s::text, x.%s::text)", quoteLit(r.names[k]), c))
			part = append(part, "x."+c)
		}
		sql = fmt.Sprintf(`INSERT INTO _cutover_viol (row, why, val)
SELECT v.row, format('unique (%%s): %%s is already taken by %%s row %%s, which keeps it', $2::text, v.val, v.k_table, v.k_ref), v.val
FROM (
  SELECT x._cutover_row AS row, x._cutover_table AS tbl, %s AS val, row_number() OVER w AS rn,
         first_value(x._cutover_table) OVER w AS k_table, first_value(x._cutover_ref) OVER w AS k_ref
  FROM %s x JOIN _cutover_src s ON s.table_name = x._cutover_table
  WHERE x._cutover_row = x._cutover_winner AND %s
  WINDOW w AS (PARTITION BY %s ORDER BY s.rank, x._cutover_table COLLATE "C", x._cutover_ref COLLATE "C", x._cutover_row)
) v
WHERE v.rn > 1 AND v.tbl = $1`, strings.Join(vals, " || ', ' || "), f.st, strings.Join(notNull, " AND "), strings.Join(part, ", "))
		if _, err := f.tx.Exec(ctx, sql, r.table, strings.Join(r.names, ", ")); err != nil {
			return 0, f.t.dbErr("unique rule "+r.name, err)
		}
	} else {
		c := r.cols[0]
		exists := fmt.Sprintf("EXISTS (SELECT 1 FROM %s t WHERE t.%s = x.%s)", r.ref, r.refCol, c)
		if r.self { // rows of this job's table count as well
			exists += fmt.Sprintf(" OR EXISTS (SELECT 1 FROM %s y WHERE y._cutover_row = y._cutover_winner AND y.%s = x.%s)", f.st, r.refCol, c)
		}
		sql = fmt.Sprintf(`INSERT INTO _cutover_viol (row, why, val)
SELECT x._cutover_row, format('column %%s: %%L is not in %%s', $2::text, x.%s::text, $3::text), x.%s::text
FROM %s x
WHERE x._cutover_table = $1 AND x._cutover_row = x._cutover_winner AND x.%s IS NOT NULL AND NOT (%s)`, c, c, f.st, c, exists)
		if _, err := f.tx.Exec(ctx, sql, r.table, r.column, r.label); err != nil {
			return 0, f.t.dbErr("references rule "+r.name, err)
		}
	}
	if !r.warn {
		// A merged row goes with its survivor, whose reason it carries.
		return f.quarantine(ctx, `x._cutover_winner IN (SELECT row FROM _cutover_viol)`,
			`(SELECT CASE WHEN x._cutover_row = x._cutover_winner THEN v.why ELSE 'merged into ' || w._cutover_ref || ', which failed: ' || v.why END
  FROM _cutover_viol v JOIN `+f.st+` w ON w._cutover_row = v.row WHERE v.row = x._cutover_winner)`,
			`(SELECT v.val FROM _cutover_viol v WHERE v.row = x._cutover_winner)`,
			f.req.GetJobId(), f.req.GetTargetTable(), r.name, r.column)
	}
	return f.warn(ctx, r)
}

// warn lists the rows of _cutover_viol in cutover.warnings and counts each
// row once per table spec however many rules it fails.
func (f *finalizer) warn(ctx context.Context, r *jobRule) (int64, error) {
	sql := fmt.Sprintf(`WITH ins AS (
  INSERT INTO cutover.warnings (job_id, table_name, target_table, system, partition_id, seq, row_index, source, source_ref, rule, column_name, reason, raw)
  SELECT $1, x._cutover_table, $2, x._cutover_system, x._cutover_part, x._cutover_seq, x._cutover_idx, x._cutover_source, x._cutover_ref, $3, $4, v.why, v.val
  FROM %s x JOIN _cutover_viol v ON v.row = x._cutover_row
  RETURNING 1),
fresh AS (INSERT INTO _cutover_warned SELECT row FROM _cutover_viol ON CONFLICT DO NOTHING RETURNING row)
SELECT (SELECT count(*) FROM _cutover_viol), x._cutover_table, count(*) FROM fresh JOIN %s x ON x._cutover_row = fresh.row GROUP BY 2`, f.st, f.st)
	rows, err := f.tx.Query(ctx, sql, f.req.GetJobId(), f.req.GetTargetTable(), r.name, r.column)
	if err != nil {
		return 0, f.t.dbErr("warn", err)
	}
	defer rows.Close()
	var total int64
	for rows.Next() {
		var table string
		var n int64
		if err := rows.Scan(&total, &table, &n); err != nil {
			return 0, f.t.dbErr("warn", err)
		}
		if o := f.out[table]; o != nil {
			o.Warned += n
		}
	}
	if err := rows.Err(); err != nil {
		return 0, f.t.dbErr("warn", err)
	}
	if total == 0 { // every row was warned before: no group row came back
		if err := f.tx.QueryRow(ctx, `SELECT count(*) FROM _cutover_viol`).Scan(&total); err != nil {
			return 0, f.t.dbErr("warn", err)
		}
	}
	return total, nil
}
