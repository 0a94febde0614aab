package load

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/protobuf/encoding/protojson"
)

// FinalizeStaged moves a staged target table's rows into the target.
func (s *Service) FinalizeStaged(ctx context.Context, req *loaderv1.FinalizeStagedRequest) (*loaderv1.FinalizeStagedResponse, error) {
	resp, err := s.finalize(ctx, req)
	return resp, toStatus(err)
}

// finalizer runs the steps of one FinalizeStaged inside one transaction.
type finalizer struct {
	tx       pgx.Tx
	t        *target
	req      *loaderv1.FinalizeStagedRequest
	resp     *loaderv1.FinalizeStagedResponse
	tgt, st  string            // quoted target and staging tables
	cols     []string          // insertable target columns
	types    map[string]string // column → format_type
	key      string            // SQL rendering the survivor's (w.) primary key as "col=value,…"
	schema   string            // target schema, of tables that rules reference
	out      map[string]*loaderv1.StagedOutcome
	identity []string // identity columns, filled from their sequences
	keyCols  []string // target primary key
	upsert   bool     // the job upserts into this table (cutover.upserts)
}

func (s *Service) finalize(ctx context.Context, req *loaderv1.FinalizeStagedRequest) (*loaderv1.FinalizeStagedResponse, error) {
	switch {
	case req.GetJobId() == "":
		return nil, fmt.Errorf("%w: job_id is required", ErrInvalidArgument)
	case req.GetTargetTable() == "":
		return nil, fmt.Errorf("%w: target_table is required", ErrInvalidArgument)
	case len(req.GetSources()) == 0:
		return nil, fmt.Errorf("%w: sources must name at least one table spec", ErrInvalidArgument)
	}
	if d := req.GetDedupe(); d != nil && len(d.GetKeys()) > 0 && d.GetPolicy() == commonv1.SurvivorPolicy_SURVIVOR_POLICY_NEWEST && d.GetNewestBy() == "" {
		return nil, fmt.Errorf("%w: dedupe.newest_by is required with SURVIVOR_POLICY_NEWEST", ErrInvalidArgument)
	}
	t, schema, err := s.target(ctx, req.GetTarget())
	if err != nil {
		return nil, err
	}
	op := "finalize " + schema + "." + req.GetTargetTable()
	tx, err := t.pool.Begin(ctx)
	if err != nil {
		return nil, t.dbErr(op, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit

	// One finalizer per job and table at a time; the second finds the
	// first one's outcome.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext($1 || '/' || $2))`, req.GetJobId(), req.GetTargetTable()); err != nil {
		return nil, t.dbErr(op, err)
	}
	if err := rollbackGuard(ctx, t, tx, req.GetJobId()); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	var stored []byte
	err = tx.QueryRow(ctx, `SELECT outcome::text FROM cutover.finalized WHERE job_id = $1 AND target_table = $2`, req.GetJobId(), req.GetTargetTable()).Scan(&stored)
	if err == nil {
		resp := &loaderv1.FinalizeStagedResponse{}
		if err := protojson.Unmarshal(stored, resp); err != nil {
			return nil, fmt.Errorf("%s: stored outcome: %w", op, err)
		}
		return resp, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, t.dbErr(op, err)
	}

	stage := stageName(req.GetJobId(), req.GetTargetTable())
	f := &finalizer{
		tx: tx, t: t, req: req, resp: &loaderv1.FinalizeStagedResponse{},
		tgt: pgx.Identifier{schema, req.GetTargetTable()}.Sanitize(),
		st:  pgx.Identifier{stageSchema, stage}.Sanitize(),
		out: map[string]*loaderv1.StagedOutcome{},
	}
	for _, src := range req.GetSources() {
		o := &loaderv1.StagedOutcome{Table: src.GetTable()}
		f.out[src.GetTable()] = o
		f.resp.Tables = append(f.resp.Tables, o)
	}
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, f.st).Scan(&exists); err != nil {
		return nil, t.dbErr(op, err)
	}
	if exists { // no staging table: no batch had a row to stage
		if err := f.run(ctx, schema); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
	}
	js, err := protojson.Marshal(f.resp)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO cutover.finalized (job_id, target_table, outcome) VALUES ($1, $2, $3)`, req.GetJobId(), req.GetTargetTable(), string(js)); err != nil {
		return nil, t.dbErr(op, err)
	}
	if exists {
		if _, err := tx.Exec(ctx, "DROP TABLE "+f.st); err != nil {
			return nil, t.dbErr(op, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, t.dbErr(op, err)
	}
	return f.resp, nil
}

// insertableSQL lists the target's columns an INSERT may name.
const insertableSQL = `
SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attidentity <> ''
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
ORDER BY a.attnum`

func (f *finalizer) run(ctx context.Context, schema string) error {
	f.schema = schema
	rows, err := f.tx.Query(ctx, insertableSQL, schema, f.req.GetTargetTable())
	if err != nil {
		return f.t.dbErr("read target columns", err)
	}
	f.types = map[string]string{}
	for rows.Next() {
		var name, typ string
		var identity bool
		if err := rows.Scan(&name, &typ, &identity); err != nil {
			rows.Close()
			return f.t.dbErr("read target columns", err)
		}
		if identity {
			f.identity = append(f.identity, name)
		}
		f.cols = append(f.cols, name)
		f.types[name] = typ
	}
	if err := rows.Err(); err != nil {
		return f.t.dbErr("read target columns", err)
	}
	if len(f.cols) == 0 {
		return fmt.Errorf("%w: target table %s", ErrNotFound, f.tgt)
	}
	keyCols, err := f.t.primaryKey(ctx, schema, f.req.GetTargetTable())
	if err != nil {
		return err
	}
	f.keyCols = keyCols
	if err := f.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM cutover.upserts WHERE job_id = $1 AND target_table = $2)`,
		f.req.GetJobId(), f.req.GetTargetTable()).Scan(&f.upsert); err != nil {
		return f.t.dbErr("read write mode", err)
	}
	if f.upsert && len(keyCols) == 0 {
		return fmt.Errorf("%w: write_mode upsert: target table %s has no primary key", ErrInvalidArgument, f.tgt)
	}
	f.key = "''"
	if len(keyCols) > 0 {
		parts := make([]string, len(keyCols))
		for i, k := range keyCols {
			parts[i] = fmt.Sprintf("%s || w.%s::text", quoteLit(k+"="), pgx.Identifier{k}.Sanitize())
		}
		f.key = strings.Join(parts, " || ',' || ")
	}
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"sources", f.sources},
		{"references", f.references},
		{"dedupe", f.dedupe},
		{"key collisions", f.collisions},
		{"identity", f.identities},
		{"merges", f.merges},
		{"fill", f.fill},
		// Job-wide rules judge the rows as they would load: survivors
		// after dedupe, collisions and fill.
		{"rules", f.rules},
		{"record merges", f.recordMerges},
		{"id map", f.idMap},
		{"insert", f.insert},
		{"lineage", f.lineage},
		{"counts", f.counts},
	}
	for _, s := range steps {
		if err := s.fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

func quoteLit(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func (f *finalizer) col(name string) (string, error) {
	if _, ok := f.types[name]; !ok {
		return "", fmt.Errorf("%w: column %q is not in target table %s", ErrInvalidArgument, name, f.tgt)
	}
	return pgx.Identifier{name}.Sanitize(), nil
}

// sources records each table spec's system and rank for the SQL below,
// and gives every staged row itself as survivor until dedupe says else.
func (f *finalizer) sources(ctx context.Context) error {
	if _, err := f.tx.Exec(ctx, `CREATE TEMP TABLE _cutover_src (table_name text PRIMARY KEY, system text NOT NULL, rank int NOT NULL) ON COMMIT DROP`); err != nil {
		return f.t.dbErr("sources", err)
	}
	for _, s := range f.req.GetSources() {
		if _, err := f.tx.Exec(ctx, `INSERT INTO _cutover_src VALUES ($1, $2, $3)`, s.GetTable(), s.GetSystem(), s.GetSystemRank()); err != nil {
			return f.t.dbErr("sources", err)
		}
	}
	if _, err := f.tx.Exec(ctx, "ALTER TABLE "+f.st+" ADD COLUMN IF NOT EXISTS _cutover_winner bigint; UPDATE "+f.st+" SET _cutover_winner = _cutover_row; ANALYZE "+f.st); err != nil {
		return f.t.dbErr("sources", err)
	}
	return nil
}

// quarantine moves staged rows matching cond into the quarantine and
// counts them per table spec; $1 job, $2 target table, $3 rule, $4 column;
// reason and raw are SQL expressions over the row x.
func (f *finalizer) quarantine(ctx context.Context, cond, reason, raw string, args ...any) (int64, error) {
	sql := fmt.Sprintf(`WITH bad AS (DELETE FROM %s x WHERE %s RETURNING x.*),
ins AS (INSERT INTO cutover.quarantine (job_id, table_name, target_table, partition_id, seq, source, system, row_index, source_ref, stage, rule, column_name, reason, raw)
  SELECT $1, x._cutover_table, $2, x._cutover_part, x._cutover_seq, x._cutover_source, x._cutover_system, x._cutover_idx, x._cutover_ref, 'finalize', $3, $4, %s, coalesce(%s, '')
  FROM bad x RETURNING table_name)
SELECT table_name, count(*) FROM ins GROUP BY 1`, f.st, cond, reason, raw)
	rows, err := f.tx.Query(ctx, sql, args...)
	if err != nil {
		return 0, f.t.dbErr("quarantine", err)
	}
	defer rows.Close()
	var total int64
	for rows.Next() {
		var table string
		var n int64
		if err := rows.Scan(&table, &n); err != nil {
			return 0, f.t.dbErr("quarantine", err)
		}
		if o := f.out[table]; o != nil {
			o.Quarantined += n
		}
		total += n
	}
	if err := rows.Err(); err != nil {
		return 0, f.t.dbErr("quarantine", err)
	}
	return total, nil
}

// references replaces each reference's provisional id by the referenced
// record's new id from the id map; a reference to no known record is
// quarantined.
func (f *finalizer) references(ctx context.Context) error {
	for _, s := range f.req.GetSources() {
		for _, r := range s.GetRefs() {
			c, err := f.col(r.GetColumn())
			if err != nil {
				return err
			}
			old := pgx.Identifier{oldPrefix + r.GetColumn()}.Sanitize()
			system := r.GetSystem()
			if system == "" {
				system = s.GetSystem()
			}
			var has bool
			if err := f.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = $1::regclass AND attname = $2 AND NOT attisdropped)`, f.st, oldPrefix+r.GetColumn()).Scan(&has); err != nil {
				return f.t.dbErr("references", err)
			}
			if !has {
				return fmt.Errorf("%w: staged rows of %s carry no old ids for reference column %q", ErrInvalidArgument, s.GetTable(), r.GetColumn())
			}
			n, err := f.quarantine(ctx,
				fmt.Sprintf(`x._cutover_table = $5 AND x.%s IS NOT NULL AND NOT EXISTS (SELECT 1 FROM cutover.id_map m WHERE m.system = $6 AND m.entity = $7 AND m.old_id = x.%s)`, old, old),
				fmt.Sprintf(`format('column %%s: no %%s with old id %%L in system %%s', $4::text, $7::text, x.%s, $6::text)`, old), "x."+old,
				f.req.GetJobId(), f.req.GetTargetTable(), "unresolved_ref", r.GetColumn(), s.GetTable(), system, r.GetEntity())
			if err != nil {
				return err
			}
			f.resp.UnresolvedRefs += n
			if _, err := f.tx.Exec(ctx, fmt.Sprintf(`UPDATE %s x SET %s = CAST(m.new_id AS %s) FROM cutover.id_map m
WHERE x._cutover_table = $1 AND m.system = $2 AND m.entity = $3 AND m.old_id = x.%s`, f.st, c, f.types[r.GetColumn()], old),
				s.GetTable(), system, r.GetEntity()); err != nil {
				return f.t.dbErr("references", err)
			}
		}
	}
	return nil
}

// dedupe groups rows connected through equal match keys (union-find over
// the keys read once) and ranks each group by the survivor policy; ties go
// to the system listed first, then the source order, so the outcome does not
// depend on partitioning or commit order.
func (f *finalizer) dedupe(ctx context.Context) error {
	d := f.req.GetDedupe()
	if d == nil || len(d.GetKeys()) == 0 {
		return nil
	}
	var sel []string
	var widths []int
	for i, k := range d.GetKeys() {
		if len(k.GetColumns()) == 0 {
			return fmt.Errorf("%w: dedupe.keys[%d].columns is empty", ErrInvalidArgument, i)
		}
		for _, name := range k.GetColumns() {
			c, err := f.col(name)
			if err != nil {
				return fmt.Errorf("dedupe.keys[%d]: %w", i, err)
			}
			sel = append(sel, "x."+c+"::text")
		}
		widths = append(widths, len(k.GetColumns()))
	}
	rows, err := f.tx.Query(ctx, fmt.Sprintf("SELECT x._cutover_row, %s FROM %s x ORDER BY x._cutover_row", strings.Join(sel, ", "), f.st))
	if err != nil {
		return f.t.dbErr("read match keys", err)
	}
	var ids []int64
	var vals [][]*string
	for rows.Next() {
		v := make([]*string, len(sel))
		dst := []any{new(int64)}
		for i := range v {
			dst = append(dst, &v[i])
		}
		if err := rows.Scan(dst...); err != nil {
			rows.Close()
			return f.t.dbErr("read match keys", err)
		}
		ids = append(ids, *dst[0].(*int64))
		vals = append(vals, v)
	}
	if err := rows.Err(); err != nil {
		return f.t.dbErr("read match keys", err)
	}
	parent := make([]int, len(ids))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	var sb strings.Builder
	off := 0
	for _, w := range widths {
		seen := map[string]int{}
		for i, v := range vals {
			sb.Reset()
			ok := true
			for _, p := range v[off : off+w] {
				if p == nil || strings.TrimSpace(*p) == "" {
					ok = false
					break
				}
				sb.WriteString(*p)
				sb.WriteByte(0)
			}
			if !ok {
				continue
			}
			if j, dup := seen[sb.String()]; dup {
				a, b := find(i), find(j)
				if a != b {
					parent[max(a, b)] = min(a, b)
				}
			} else {
				seen[sb.String()] = i
			}
		}
		off += w
	}
	if _, err := f.tx.Exec(ctx, `CREATE TEMP TABLE _cutover_cluster (row bigint PRIMARY KEY, cluster bigint NOT NULL) ON COMMIT DROP`); err != nil {
		return f.t.dbErr("dedupe", err)
	}
	src := make([][]any, len(ids))
	for i := range ids {
		src[i] = []any{ids[i], ids[find(i)]}
	}
	if _, err := f.tx.CopyFrom(ctx, pgx.Identifier{"_cutover_cluster"}, []string{"row", "cluster"}, pgx.CopyFromRows(src)); err != nil {
		return f.t.dbErr("dedupe", err)
	}
	var order string
	switch d.GetPolicy() {
	case commonv1.SurvivorPolicy_SURVIVOR_POLICY_NEWEST:
		c, err := f.col(d.GetNewestBy())
		if err != nil {
			return fmt.Errorf("dedupe.newest_by: %w", err)
		}
		order = "x." + c + " DESC NULLS LAST"
	default: // most complete
		parts := make([]string, len(f.cols))
		for i, name := range f.cols {
			c := "x." + pgx.Identifier{name}.Sanitize()
			parts[i] = fmt.Sprintf("(%s IS NOT NULL AND %s::text <> '')::int", c, c)
		}
		order = "(" + strings.Join(parts, " + ") + ") DESC"
	}
	sql := fmt.Sprintf(`CREATE TEMP TABLE _cutover_rank ON COMMIT DROP AS
SELECT x._cutover_row AS row, c.cluster,
       row_number() OVER (PARTITION BY c.cluster ORDER BY %s, s.rank, x._cutover_table COLLATE "C", x._cutover_ref COLLATE "C", x._cutover_row) AS rnk
FROM %s x JOIN _cutover_cluster c ON c.row = x._cutover_row JOIN _cutover_src s ON s.table_name = x._cutover_table`, order, f.st)
	if _, err := f.tx.Exec(ctx, sql); err != nil {
		return f.t.dbErr("rank duplicates", err)
	}
	if _, err := f.tx.Exec(ctx, fmt.Sprintf(`UPDATE %s x SET _cutover_winner = w.row
FROM _cutover_rank r JOIN _cutover_rank w ON w.cluster = r.cluster AND w.rnk = 1
WHERE r.row = x._cutover_row AND r.rnk > 1`, f.st)); err != nil {
		return f.t.dbErr("mark merged rows", err)
	}
	return nil
}

// collisions resolves business keys that survivors of different systems
// share.
func (f *finalizer) collisions(ctx context.Context) error {
	for i, kc := range f.req.GetCollisions() {
		c, err := f.col(kc.GetColumn())
		if err != nil {
			return fmt.Errorf("collisions[%d].column: %w", i, err)
		}
		if _, err := f.tx.Exec(ctx, fmt.Sprintf(`DROP TABLE IF EXISTS _cutover_coll; CREATE TEMP TABLE _cutover_coll ON COMMIT DROP AS
SELECT x.%s::text AS v, min(s.rank) AS first_rank FROM %s x JOIN _cutover_src s ON s.table_name = x._cutover_table
WHERE x._cutover_row = x._cutover_winner AND x.%s IS NOT NULL
GROUP BY x.%s::text HAVING count(DISTINCT x._cutover_system) > 1`, c, f.st, c, c)); err != nil {
			return f.t.dbErr("find key collisions", err)
		}
		cc := &loaderv1.CollisionCount{Column: kc.GetColumn(), Rule: kc.GetRule()}
		if err := f.tx.QueryRow(ctx, fmt.Sprintf(`SELECT (SELECT count(*) FROM _cutover_coll),
  (SELECT count(*) FROM %s x JOIN _cutover_coll v ON v.v = x.%s::text WHERE x._cutover_row = x._cutover_winner),
  coalesce((SELECT array_agg(v ORDER BY v) FROM (SELECT v FROM _cutover_coll ORDER BY v COLLATE "C" LIMIT 5) e), '{}')`, f.st, c)).Scan(&cc.Keys, &cc.Rows, &cc.Examples); err != nil {
			return f.t.dbErr("count key collisions", err)
		}
		f.resp.Collisions = append(f.resp.Collisions, cc)
		if cc.Keys == 0 {
			continue
		}
		switch kc.GetRule() {
		case commonv1.CollisionRule_COLLISION_RULE_PREFIX_SYSTEM:
			if _, err := f.tx.Exec(ctx, fmt.Sprintf(`UPDATE %s x SET %s = CAST(x._cutover_system || '-' || x.%s::text AS %s)
FROM _cutover_coll v WHERE v.v = x.%s::text AND x._cutover_row = x._cutover_winner`, f.st, c, c, f.types[kc.GetColumn()], c)); err != nil {
				return f.t.dbErr("prefix colliding keys", err)
			}
		case commonv1.CollisionRule_COLLISION_RULE_KEEP_FIRST_SYSTEM:
			// The later systems' survivors and the rows merged into them.
			_, err := f.quarantine(ctx, fmt.Sprintf(`x._cutover_winner IN (
  SELECT y._cutover_row FROM %s y JOIN _cutover_src s ON s.table_name = y._cutover_table JOIN _cutover_coll v ON v.v = y.%s::text
  WHERE y._cutover_row = y._cutover_winner AND s.rank > v.first_rank)`, f.st, c),
				fmt.Sprintf(`format('column %%s: key %%L is also in a system listed earlier, which keeps it', $4::text, x.%s::text)`, c), "x."+c+"::text",
				f.req.GetJobId(), f.req.GetTargetTable(), "key_collision", kc.GetColumn())
			if err != nil {
				return err
			}
		default:
			return fmt.Errorf("%w: collisions[%d].rule must be set", ErrInvalidArgument, i)
		}
	}
	return nil
}

// merges labels every merged row with the match key that joins it to its
// survivor, checked before fill changes the survivor; recordMerges stores
// the labels of the rows still staged once the rules have run.
func (f *finalizer) merges(ctx context.Context) error {
	d := f.req.GetDedupe()
	if d == nil || len(d.GetKeys()) == 0 {
		return nil
	}
	var cases []string
	for _, k := range d.GetKeys() {
		var conds []string
		for _, name := range k.GetColumns() {
			c := pgx.Identifier{name}.Sanitize()
			conds = append(conds, fmt.Sprintf("l.%s = w.%s AND btrim(l.%s::text) <> ''", c, c, c))
		}
		label := k.GetName()
		if label == "" {
			label = strings.Join(k.GetColumns(), "+")
		}
		cases = append(cases, fmt.Sprintf("WHEN %s THEN %s", strings.Join(conds, " AND "), quoteLit(label)))
	}
	sql := fmt.Sprintf(`CREATE TEMP TABLE _cutover_mkey ON COMMIT DROP AS
SELECT l._cutover_row AS row, CASE %s ELSE 'transitive' END AS match_key
FROM %s l JOIN %s w ON w._cutover_row = l._cutover_winner
WHERE l._cutover_row <> l._cutover_winner`, strings.Join(cases, " "), f.st, f.st)
	if _, err := f.tx.Exec(ctx, sql); err != nil {
		return f.t.dbErr("label merges", err)
	}
	return nil
}

// recordMerges records every merged row with its survivor and match key.
func (f *finalizer) recordMerges(ctx context.Context) error {
	d := f.req.GetDedupe()
	if d == nil || len(d.GetKeys()) == 0 {
		return nil
	}
	sql := fmt.Sprintf(`INSERT INTO cutover.merges (job_id, target_table, table_name, system, source, source_ref, winner_table, winner_system, winner_ref, winner_key, match_key)
SELECT $1, $2, l._cutover_table, l._cutover_system, l._cutover_source, l._cutover_ref, w._cutover_table, w._cutover_system, w._cutover_ref, %s, m.match_key
FROM %s l JOIN %s w ON w._cutover_row = l._cutover_winner JOIN _cutover_mkey m ON m.row = l._cutover_row
WHERE l._cutover_row <> l._cutover_winner`, f.key, f.st, f.st)
	if _, err := f.tx.Exec(ctx, sql, f.req.GetJobId(), f.req.GetTargetTable()); err != nil {
		return f.t.dbErr("record merges", err)
	}
	rows, err := f.tx.Query(ctx, `SELECT match_key, count(*) FROM cutover.merges WHERE job_id = $1 AND target_table = $2 GROUP BY 1 ORDER BY 1`, f.req.GetJobId(), f.req.GetTargetTable())
	if err != nil {
		return f.t.dbErr("count merges", err)
	}
	defer rows.Close()
	for rows.Next() {
		m := &loaderv1.MergeCount{}
		if err := rows.Scan(&m.Key, &m.Rows); err != nil {
			return f.t.dbErr("count merges", err)
		}
		f.resp.Merges = append(f.resp.Merges, m)
	}
	return rows.Err()
}

// fill gives each survivor's NULL fields the first non-NULL value of its
// merged rows, best ranked first.
func (f *finalizer) fill(ctx context.Context) error {
	d := f.req.GetDedupe()
	if d == nil || len(d.GetKeys()) == 0 || !d.GetFill() {
		return nil
	}
	var aggs, sets, counts []string
	for _, name := range f.cols {
		if strings.HasSuffix(f.types[name], "[]") {
			continue // array_agg of arrays is a 2-D array, not a list of them
		}
		c := pgx.Identifier{name}.Sanitize()
		aggs = append(aggs, fmt.Sprintf("(array_agg(x.%s ORDER BY r.rnk) FILTER (WHERE x.%s IS NOT NULL))[1] AS %s", c, c, c))
		sets = append(sets, fmt.Sprintf("%s = coalesce(w.%s, a.%s)", c, c, c))
		counts = append(counts, fmt.Sprintf("(w.%s IS NULL AND a.%s IS NOT NULL)::int", c, c))
	}
	if len(aggs) == 0 {
		return nil
	}
	with := fmt.Sprintf(`WITH a AS (SELECT r.cluster, %s FROM %s x JOIN _cutover_rank r ON r.row = x._cutover_row
  GROUP BY r.cluster HAVING count(*) > 1)`, strings.Join(aggs, ", "), f.st)
	from := "FROM _cutover_rank r, a WHERE w._cutover_row = r.row AND r.rnk = 1 AND a.cluster = r.cluster"
	if err := f.tx.QueryRow(ctx, fmt.Sprintf("%s SELECT coalesce(sum(%s), 0) FROM %s w, _cutover_rank r, a WHERE w._cutover_row = r.row AND r.rnk = 1 AND a.cluster = r.cluster",
		with, strings.Join(counts, " + "), f.st)).Scan(&f.resp.FilledFields); err != nil {
		return f.t.dbErr("count filled fields", err)
	}
	if _, err := f.tx.Exec(ctx, fmt.Sprintf("%s UPDATE %s w SET %s %s", with, f.st, strings.Join(sets, ", "), from)); err != nil {
		return f.t.dbErr("fill survivors", err)
	}
	return nil
}

// idMap records old id → new id for every staged row; a merged row's old
// id maps to its survivor's new id.
func (f *finalizer) idMap(ctx context.Context) error {
	for _, s := range f.req.GetSources() {
		for _, n := range s.GetNewIds() {
			c, err := f.col(n.GetColumn())
			if err != nil {
				return err
			}
			old := pgx.Identifier{oldPrefix + n.GetColumn()}.Sanitize()
			sql := fmt.Sprintf(`INSERT INTO cutover.id_map (system, entity, old_id, new_id, job_id)
SELECT DISTINCT ON (l.%s) $1, $2, l.%s, w.%s::text, $3
FROM %s l JOIN %s w ON w._cutover_row = l._cutover_winner
WHERE l._cutover_table = $4 AND l.%s IS NOT NULL
ORDER BY l.%s, (l._cutover_row = l._cutover_winner) DESC, l._cutover_ref COLLATE "C"
ON CONFLICT (system, entity, old_id) DO UPDATE SET new_id = EXCLUDED.new_id, job_id = EXCLUDED.job_id`, old, old, c, f.st, f.st, old, old)
			if _, err := f.tx.Exec(ctx, sql, s.GetSystem(), n.GetEntity(), f.req.GetJobId(), s.GetTable()); err != nil {
				return f.t.dbErr("record id map", err)
			}
		}
	}
	return nil
}

// identities draws the survivors' identity values from the target's own
// sequences before they are inserted, in the insert's order, so that
// merges and lineage can name the target rows by key.
func (f *finalizer) identities(ctx context.Context) error {
	for _, name := range f.identity {
		c := pgx.Identifier{name}.Sanitize()
		sql := fmt.Sprintf(`UPDATE %s x SET %s = n.v FROM (
  SELECT o._cutover_row, nextval(pg_get_serial_sequence($1, $2)) AS v FROM (
    SELECT y._cutover_row FROM %s y JOIN _cutover_src s ON s.table_name = y._cutover_table
    WHERE y._cutover_row = y._cutover_winner AND y.%s IS NULL
    ORDER BY s.rank, y._cutover_table COLLATE "C", y._cutover_ref COLLATE "C") o) n
WHERE x._cutover_row = n._cutover_row`, f.st, c, f.st, c)
		if _, err := f.tx.Exec(ctx, sql, f.tgt, name); err != nil {
			return f.t.dbErr("draw identity values", err)
		}
	}
	return nil
}

// insert moves the survivors into the target in a fixed order.
func (f *finalizer) insert(ctx context.Context) error {
	cols := make([]string, len(f.cols))
	for i, name := range f.cols {
		cols[i] = pgx.Identifier{name}.Sanitize()
	}
	list := strings.Join(cols, ", ")
	overriding := ""
	if len(f.identity) > 0 {
		overriding = " OVERRIDING SYSTEM VALUE" // drawn from the identity's own sequence, see identities
	}
	sql := fmt.Sprintf(`INSERT INTO %s (%s)%s SELECT %s FROM %s x JOIN _cutover_src s ON s.table_name = x._cutover_table
WHERE x._cutover_row = x._cutover_winner ORDER BY s.rank, x._cutover_table COLLATE "C", x._cutover_ref COLLATE "C"`,
		f.tgt, list, overriding, "x."+strings.Join(cols, ", x."), f.st)
	var args []any
	if f.upsert {
		// The same upsert with before images as a direct load's.
		sql = upsertFromSQL(f.tgt, f.cols, f.keyCols, f.st+" x WHERE x._cutover_row = x._cutover_winner", overriding,
			fmt.Sprintf(`(SELECT x.* FROM %s x JOIN _cutover_src s ON s.table_name = x._cutover_table
  WHERE x._cutover_row = x._cutover_winner ORDER BY s.rank, x._cutover_table COLLATE "C", x._cutover_ref COLLATE "C") u`, f.st))
		args = []any{f.req.GetJobId(), f.req.GetTargetTable()}
	}
	if _, err := f.tx.Exec(ctx, sql, args...); err != nil {
		var pgErr *pgconn.PgError
		// 21000: two survivors share a primary key (upsert).
		if errors.As(err, &pgErr) && (strings.HasPrefix(pgErr.Code, "23") || pgErr.Code == "21000") {
			return fmt.Errorf("%w: the surviving rows break a constraint of %s: %s (%s); add a match key or a collision rule to the spec",
				ErrTargetMismatch, f.tgt, scrub(pgErr.Message, f.t.secret), scrub(pgErr.Detail, f.t.secret))
		}
		return f.t.dbErr("insert survivors", err)
	}
	return nil
}

// lineage records, per staged batch, each row's target key (its
// survivor's for a merged row).
func (f *finalizer) lineage(ctx context.Context) error {
	esc := func(x string) string {
		return fmt.Sprintf(`replace(replace(replace(%s, '%%', '%%25'), E'\t', '%%09'), E'\n', '%%0A')`, x)
	}
	sql := fmt.Sprintf(`INSERT INTO cutover.lineage (job_id, table_name, target_table, system, source, partition_id, seq, entries)
SELECT $1, l._cutover_table, $2, l._cutover_system, l._cutover_source, l._cutover_part, l._cutover_seq,
       string_agg(%s || E'\t' || %s || E'\n', '' ORDER BY l._cutover_idx)
FROM %s l JOIN %s w ON w._cutover_row = l._cutover_winner
GROUP BY l._cutover_table, l._cutover_system, l._cutover_source, l._cutover_part, l._cutover_seq`, esc("l._cutover_ref"), esc("("+f.key+")"), f.st, f.st)
	if _, err := f.tx.Exec(ctx, sql, f.req.GetJobId(), f.req.GetTargetTable()); err != nil {
		return f.t.dbErr("record lineage", err)
	}
	return nil
}

// counts fills each table spec's loaded and merged rows.
func (f *finalizer) counts(ctx context.Context) error {
	rows, err := f.tx.Query(ctx, fmt.Sprintf(`SELECT _cutover_table, count(*) FILTER (WHERE _cutover_row = _cutover_winner), count(*) FILTER (WHERE _cutover_row <> _cutover_winner)
FROM %s GROUP BY 1`, f.st))
	if err != nil {
		return f.t.dbErr("count", err)
	}
	defer rows.Close()
	for rows.Next() {
		var table string
		var loaded, merged int64
		if err := rows.Scan(&table, &loaded, &merged); err != nil {
			return f.t.dbErr("count", err)
		}
		o, ok := f.out[table]
		if !ok {
			return fmt.Errorf("%w: staged rows of table spec %q, which the request does not name", ErrInvalidArgument, table)
		}
		o.Loaded, o.MergedAway = loaded, merged
	}
	if err := rows.Err(); err != nil {
		return f.t.dbErr("count", err)
	}
	sort.Slice(f.resp.Tables, func(i, j int) bool { return f.resp.Tables[i].Table < f.resp.Tables[j].Table })
	return nil
}
