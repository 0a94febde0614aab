// Package validation answers CI before a job runs: ValidateSpec checks a
// spec against the live source and target and lists every problem, DryRun
// also runs rows through extractor, transformer and validator into nothing.
// CreateJob runs the same checks through Checker.
package validation

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	transformerv1 "github.com/cutover/cutover/gen/cutover/transformer/v1"
	validatorv1 "github.com/cutover/cutover/gen/cutover/validator/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"github.com/cutover/cutover/services/orchestrator/jobspec"
	"github.com/cutover/cutover/services/orchestrator/stages"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Checker checks specs against the stage services, which own the source
// and target databases.
type Checker struct {
	Clients stages.Clients
	// DefaultTarget is used when a spec names no target DSN.
	DefaultTarget string
}

// CheckSync lists what makes a sync impossible for the follower to carry
// out exactly, one error per table spec that has a problem; tables not in
// ok (nil: every table) are skipped. An error that is not a problem of the
// spec (a stage down) is returned among them: the caller decides.
func (ck *Checker) CheckSync(ctx context.Context, spec *commonv1.JobSpec, sources []*extractorv1.DescribeSourceResponse, ok []bool) []TableError {
	var out []TableError
	for i := range spec.GetTables() {
		if ok != nil && !ok[i] {
			continue
		}
		if err := ck.checkSync(ctx, spec, i, sources[i]); err != nil {
			out = append(out, TableError{i, err})
		}
	}
	return out
}

// checkSync checks the sync of table spec i.
func (ck *Checker) checkSync(ctx context.Context, spec *commonv1.JobSpec, i int, source *extractorv1.DescribeSourceResponse) error {
	targets := map[string]int{}
	for _, t := range spec.GetTables() {
		targets[t.GetTargetTable()]++
	}
	t := spec.GetTables()[i]
	sy := t.GetSync()
	if sy == nil {
		return nil
	}
	f := fmt.Sprintf("tables[%d].sync", i)
	src := t.GetSource()
	switch {
	case sy.GetWatermark() != nil:
		if sy.GetWatermark().GetColumn() == "" {
			return jobspec.Invalid(f+".watermark.column", "required")
		}
		if src.GetMysql() == nil && src.GetPostgres() == nil {
			return jobspec.Invalid(f+".watermark", "only mysql and postgres sources can be followed by a watermark (sqlite not yet)")
		}
		if d := sy.GetWatermark().GetDeleteCheckSeconds(); d < -1 {
			return jobspec.Invalid(f+".watermark.delete_check_seconds", "must be -1 (never), 0 (default 60) or more, got %d", d)
		}
	case sy.GetLogical() != nil:
		if src.GetPostgres() == nil {
			return jobspec.Invalid(f+".logical", "logical replication needs a postgres source")
		}
	case sy.GetBinlog() != nil:
		if src.GetMysql() == nil {
			return jobspec.Invalid(f+".binlog", "binlog sync needs a mysql source (MySQL or MariaDB)")
		}
	default:
		return jobspec.Invalid(f, "watermark, logical or binlog is required")
	}
	if sy.GetOnTruncate() == commonv1.TruncatePolicy_TRUNCATE_POLICY_APPLY && sy.GetWatermark() != nil {
		return jobspec.Invalid(f+".on_truncate", "APPLY is for binlog and logical sync (a watermark's key check already deletes what a TRUNCATE removed)")
	}
	if sy.GetPollMs() < 0 {
		return jobspec.Invalid(f+".poll_ms", "must not be negative, got %d", sy.GetPollMs())
	}
	if jobspec.NeedsStaging(t) {
		return jobspec.Invalid(f, "table %s is staged (dedupe, new ids, references, key collisions, unique or references rules), so its rows cannot follow the source one by one", t.GetName())
	}
	if targets[t.GetTargetTable()] > 1 {
		return jobspec.Invalid(f, "target table %s is fed by several table specs; a followed table must be the only one", t.GetTargetTable())
	}
	pk := source.GetPrimaryKey()
	if len(pk) == 0 {
		return fmt.Errorf("%w: %s: source table of %s has no primary key; changes are applied by key", jobspec.ErrSourceRefused, f, t.GetName())
	}
	if _, err := jobspec.KeyTargets(t, pk); err != nil {
		return jobspec.Invalid(f, "%v", err)
	}
	if spec.GetTarget().GetCreateTables() {
		return nil // the key is added after the full load
	}
	target := ck.Target(spec)
	hasKey, err := ck.TargetHasKey(ctx, target, t.GetTargetTable())
	if err != nil {
		return err
	}
	if !hasKey {
		return jobspec.Invalid(f, "target table %s.%s has no primary key; changes are applied by key", target.GetSchema(), t.GetTargetTable())
	}
	return nil
}

// CheckWriteModes refuses an upsert into a target table without a primary
// key: the key is how an upserted row finds the row it replaces, and how a
// rollback finds it again. One error per table spec; tables not in ok (nil:
// every table) are skipped.
func (ck *Checker) CheckWriteModes(ctx context.Context, spec *commonv1.JobSpec, ok []bool) []TableError {
	target := ck.Target(spec)
	var out []TableError
	for i, t := range spec.GetTables() {
		if t.GetWriteMode() != commonv1.WriteMode_WRITE_MODE_UPSERT || (ok != nil && !ok[i]) {
			continue
		}
		hasKey, err := ck.TargetHasKey(ctx, target, t.GetTargetTable())
		if err != nil {
			out = append(out, TableError{i, err})
			continue
		}
		if !hasKey {
			out = append(out, TableError{i, jobspec.Invalid(fmt.Sprintf("tables[%d].write_mode", i), "upsert needs a primary key on target table %s.%s, which has none",
				target.GetSchema(), t.GetTargetTable())})
		}
	}
	return out
}

// TableError is a problem of the table spec at Index.
type TableError struct {
	Index int
	Err   error
}

// CheckEmpty asks the loader for the rows of each target table whose
// existing rows refuse the job (jobspec.MustBeEmpty: target.if_exists
// fail) and returns one error per table that holds some, filed under the
// first table spec that writes it. A table that does not exist yet is
// empty.
func (ck *Checker) CheckEmpty(ctx context.Context, spec *commonv1.JobSpec, redrive bool) []TableError {
	target := ck.Target(spec)
	var out []TableError
	for _, tt := range jobspec.MustBeEmpty(spec, redrive) {
		idx := 0
		for i, t := range spec.GetTables() {
			if t.GetTargetTable() == tt {
				idx = i
				break
			}
		}
		d, err := ck.Clients.Loader.DescribeTarget(ctx, &loaderv1.DescribeTargetRequest{Target: target, Table: tt, CountRows: true})
		switch {
		case status.Code(err) == codes.NotFound:
		case err != nil:
			out = append(out, TableError{idx, stages.Refusal(fmt.Sprintf("tables[%d].target_table", idx), "loader", err)})
		case d.GetRows() > 0:
			out = append(out, TableError{idx, jobspec.NotEmpty(target.GetSchema(), tt, d.GetRows())})
		}
	}
	return out
}

// TargetHasKey reports whether a target table has a primary key (upsert
// and sync apply rows by it).
func (ck *Checker) TargetHasKey(ctx context.Context, target *commonv1.TargetSpec, table string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, stages.Wait)
	defer cancel()
	d, err := ck.Clients.Loader.DescribeTarget(ctx, &loaderv1.DescribeTargetRequest{Target: target, Table: table})
	if status.Code(err) == codes.NotFound {
		return false, nil // not made yet: no key either
	}
	if err != nil {
		return false, stages.Classify("loader", err)
	}
	return len(d.GetPrimaryKey()) > 0, nil
}

// DescribeSource asks the extractor for the table's source columns; with
// target.create_tables, an empty mapping becomes every source column (named
// as target.identifier_case says). Each mapping's enum_as and set_as are
// checked against its source column and filled in from the target's.
func (ck *Checker) DescribeSource(ctx context.Context, f string, t *commonv1.TableSpec, target *commonv1.TargetSpec) (*extractorv1.DescribeSourceResponse, error) {
	src, err := ck.Clients.Extractor.DescribeSource(ctx, &extractorv1.DescribeSourceRequest{Source: t.Source})
	if err != nil {
		return nil, stages.Refusal(f+".source", "extractor", err)
	}
	if len(t.Columns) == 0 && target.GetCreateTables() {
		if t.Columns, err = jobspec.DefaultMapping(f+".source", src.Columns, target.GetIdentifierCase()); err != nil {
			return nil, err
		}
	}
	if len(t.Columns) == 0 {
		return nil, jobspec.Invalid(f+".columns", "at least one column mapping is required (or target.create_tables to copy every source column)")
	}
	if err := jobspec.ColumnKinds(f, t, src.Columns, target); err != nil {
		return nil, err
	}
	return src, nil
}

// CheckStages has the transformer check the mapping and filters and the
// validator the rules, against the source columns and target types.
func (ck *Checker) CheckStages(ctx context.Context, f string, t *commonv1.TableSpec, src *extractorv1.DescribeSourceResponse, schema string) error {
	if _, err := ck.Clients.Transformer.CheckMapping(ctx, &transformerv1.CheckMappingRequest{
		Columns: t.Columns, SourceColumns: src.Columns, FieldPrefix: f, Filters: t.Filters,
	}); err != nil {
		return stages.Refusal(f+".columns", "transformer", err)
	}
	if err := jobspec.CheckCompatible(f, t, src.Columns, schema); err != nil {
		return err
	}
	if _, err := ck.Clients.Validator.CheckRules(ctx, &validatorv1.CheckRulesRequest{
		Rules: t.Rules, Columns: t.Columns, FieldPrefix: f,
	}); err != nil {
		return stages.Refusal(f+".rules", "validator", err)
	}
	return nil
}

// Target is the spec's target with the orchestrator's default filled in.
func (ck *Checker) Target(spec *commonv1.JobSpec) *commonv1.TargetSpec {
	t := &commonv1.TargetSpec{Dsn: spec.GetTarget().GetDsn(), Schema: spec.GetTarget().GetSchema()}
	if t.Dsn == "" {
		t.Dsn = ck.DefaultTarget
	}
	if t.Schema == "" {
		t.Schema = "public"
	}
	return t
}

// CheckSource has the extractor plan one partition of the table, as
// CreateJob plans its partitions: a source it cannot read in batches (a
// PostgreSQL view without a key, a file outside the roots) is refused
// here, before any job. A source with shared snapshots is planned in one,
// as a job's is (a PostgreSQL table without a key is read by row address;
// a MySQL one in one ordered pass, needing no snapshot). A table without a
// key that is to be followed is refused by CheckSync.
func (ck *Checker) CheckSource(ctx context.Context, f string, t *commonv1.TableSpec) error {
	snap, err := ck.Clients.Extractor.OpenSnapshot(ctx, &extractorv1.OpenSnapshotRequest{Source: t.GetSource(), JobId: "check", Table: t.GetName()})
	id := ""
	switch {
	case status.Code(err) == codes.Unimplemented:
	case err != nil:
		return stages.Refusal(f+".source", "extractor", err)
	default:
		id = snap.GetSnapshot()
	}
	if id != "" {
		defer func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			_, _ = ck.Clients.Extractor.CloseSnapshot(cctx, &extractorv1.CloseSnapshotRequest{Source: t.GetSource(), Snapshot: id})
		}()
	}
	if _, err := ck.Clients.Extractor.PlanPartitions(ctx, &extractorv1.PlanPartitionsRequest{Source: t.GetSource(), Partitions: 1, Snapshot: id}); err != nil {
		return stages.Refusal(f+".source", "extractor", err)
	}
	return nil
}

// checked is a spec after ValidateSpec's checks: normalized, target types
// filled in for the tables that passed, and every problem found.
type checked struct {
	spec     *commonv1.JobSpec
	sources  []*extractorv1.DescribeSourceResponse
	ok       []bool // per table: every check passed
	problems []*orchestratorv1.Problem
	tables   []*orchestratorv1.TableCheck
	// errs are the problems as errors, in the order found (CreateJob
	// refuses with them).
	errs []error
}

func (c *checked) allOK() bool {
	if len(c.problems) > 0 {
		return false
	}
	for _, ok := range c.ok {
		if !ok {
			return false
		}
	}
	return true
}

// Err is every problem found as one error (nil when there is none): the
// one problem itself, or all of them joined, each with its field, so that
// a refused CreateJob names every one as ValidateSpec does. Its class (and
// so its code) is every class among them; InvalidArgument decides first.
func (c *checked) Err() error {
	switch len(c.errs) {
	case 0:
		return nil
	case 1:
		return c.errs[0]
	}
	return &problemsError{errs: c.errs}
}

// problemsError is several problems of one spec.
type problemsError struct{ errs []error }

func (e *problemsError) Error() string {
	// Each problem with its own class and field.
	var b strings.Builder
	fmt.Fprintf(&b, "%d problems: ", len(e.errs))
	for i, err := range e.errs {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(err.Error())
	}
	return b.String()
}

func (e *problemsError) Unwrap() []error { return e.errs }

// Check runs CreateJob's checks table by table, collecting problems.
func (ck *Checker) Check(ctx context.Context, in *commonv1.JobSpec) (*checked, error) {
	return ck.check(ctx, in, false)
}

// Problems runs every check of Check for CreateJob (a re-drive when
// redrive) and returns every problem found as one error (see checked.Err),
// or the error that kept it from checking.
func (ck *Checker) Problems(ctx context.Context, in *commonv1.JobSpec, redrive bool) error {
	c, err := ck.check(ctx, in, redrive)
	if err != nil {
		return err
	}
	return c.Err()
}

func (ck *Checker) check(ctx context.Context, in *commonv1.JobSpec, redrive bool) (*checked, error) {
	ctx, cancel := context.WithTimeout(ctx, stages.Wait)
	defer cancel()
	// A spec past the size bounds or aimed at one of the product's own
	// schemas is refused outright, before any stage is asked about it:
	// InvalidArgument, not a problem to list.
	if err := jobspec.Guard(in, ck.DefaultTarget); err != nil {
		return nil, err
	}
	c := &checked{}
	spec, err := jobspec.Normalize(in, ck.DefaultTarget)
	if err != nil {
		return c, c.add(in, -1, err)
	}
	c.spec = spec
	n := len(spec.Tables)
	c.sources = make([]*extractorv1.DescribeSourceResponse, n)
	c.ok = make([]bool, n)
	c.tables = make([]*orchestratorv1.TableCheck, n)
	for i, t := range spec.Tables {
		c.ok[i] = true
		c.tables[i] = &orchestratorv1.TableCheck{Table: t.GetName(), Ok: true}
	}
	if redrive && jobspec.IfExists(spec) == commonv1.IfExists_IF_EXISTS_TRUNCATE {
		if err := c.add(spec, -1, jobspec.Invalid("target.if_exists", "a re-drive appends to its original job's tables; truncate would empty them")); err != nil {
			return nil, err
		}
	}
	target := ck.Target(spec)
	create := spec.Target.GetCreateTables()
	seen := map[string]bool{}
	for i, t := range spec.Tables {
		f := fmt.Sprintf("tables[%d]", i)
		if err := jobspec.TableDefaults(f, t, seen); err != nil {
			if err := c.add(spec, i, err); err != nil {
				return nil, err
			}
			continue
		}
		c.tables[i].Table = t.GetName()
		src, err := ck.DescribeSource(ctx, f, t, spec.Target)
		if err == nil {
			c.sources[i] = src
			err = ck.CheckSource(ctx, f, t)
		}
		if err != nil {
			if err := c.add(spec, i, err); err != nil {
				return nil, err
			}
		}
	}
	// With create_tables, a table that does not exist yet is checked
	// against the table CreateJob would make from its source.
	var planned []*loaderv1.TableDefinition
	for tries := 0; create && tries <= n; tries++ {
		// Tables with problems are left out; a table whose definition
		// fails gets the problem, and the rest are defined again.
		ready := &commonv1.JobSpec{Tables: make([]*commonv1.TableSpec, n)}
		for i, t := range spec.Tables {
			ready.Tables[i] = &commonv1.TableSpec{}
			if c.ok[i] {
				ready.Tables[i] = t
			}
		}
		if planned, err = jobspec.TableDefinitions(ready, c.sources); err == nil {
			break
		}
		planned = nil
		if err := c.add(spec, -1, err); err != nil {
			return nil, err
		}
	}
	targetCols := map[string][]*loaderv1.TargetColumn{}
	targetFailed := make([]bool, n)
	for i, t := range spec.Tables {
		if !c.ok[i] {
			continue
		}
		f := fmt.Sprintf("tables[%d]", i)
		tgt, err := ck.Clients.Loader.DescribeTarget(ctx, &loaderv1.DescribeTargetRequest{Target: target, Table: t.TargetTable})
		if status.Code(err) == codes.NotFound && create && i < len(planned) {
			tgt, err = &loaderv1.DescribeTargetResponse{Columns: PlannedColumns(planned[i])}, nil
		}
		if err == nil {
			if targetCols[t.TargetTable] == nil {
				targetCols[t.TargetTable] = tgt.Columns
			}
			err = jobspec.FillTargetTypes(f, t, tgt.Columns, spec.Target.Schema)
			jobspec.FillTimeZones(spec, t, c.sources[i].GetColumns())
		} else {
			err = stages.Refusal(f+".target_table", "loader", err)
			targetFailed[i] = true
		}
		if err != nil {
			if err := c.add(spec, i, err); err != nil {
				return nil, err
			}
		}
	}
	if err := jobspec.CheckMerging(spec, targetCols); err != nil {
		if err := c.add(spec, -1, err); err != nil {
			return nil, err
		}
	}
	for _, e := range ck.CheckWriteModes(ctx, spec, c.ok) {
		if err := c.add(spec, e.Index, e.Err); err != nil {
			return nil, err
		}
	}
	for _, e := range ck.CheckSync(ctx, spec, c.sources, c.ok) {
		if err := c.add(spec, e.Index, e.Err); err != nil {
			return nil, err
		}
	}
	for i, t := range spec.Tables {
		if !c.ok[i] || targetCols[t.TargetTable] == nil {
			continue
		}
		if err := ck.CheckStages(ctx, fmt.Sprintf("tables[%d]", i), t, c.sources[i], spec.Target.Schema); err != nil {
			if err := c.add(spec, i, err); err != nil {
				return nil, err
			}
		}
	}
	// target.if_exists last, as CreateJob decides it once the spec is
	// known to be right: its rows are named along with the spec's
	// problems, not instead of them.
	for _, e := range ck.CheckEmpty(ctx, spec, redrive) {
		if targetFailed[e.Index] || c.sources[e.Index] == nil {
			continue // its target table (or the table spec) is reported already
		}
		if err := c.add(spec, e.Index, e.Err); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// PlannedColumns describes the columns of a table create_tables would make
// as DescribeTarget would once it is made: the wire type of each column's
// PostgreSQL type, its length, precision and scale.
func PlannedColumns(def *loaderv1.TableDefinition) []*loaderv1.TargetColumn {
	var out []*loaderv1.TargetColumn
	for _, d := range def.GetColumns() {
		c := &loaderv1.TargetColumn{Name: d.GetName(), PgType: d.GetPgType(), NotNull: d.GetNotNull(),
			HasDefault: d.GetIdentity() || d.GetDefaultKind() != commonv1.DefaultKind(0) || d.GetDefaultExpression() != "" || d.GetDefaultValue() != ""}
		typname, mods := pgTypeName(d.GetPgType())
		c.Type = batch.FromPostgres(typname)
		switch {
		case (typname == "varchar" || typname == "bpchar") && len(mods) == 1:
			c.MaxLength = mods[0]
		case typname == "numeric" && len(mods) >= 1:
			c.Precision = mods[0]
			if len(mods) == 2 {
				c.Scale = mods[1]
			}
		}
		out = append(out, c)
	}
	return out
}

// pgTypeNames are format_type's spellings of the types whose wire type or
// modifiers matter, by their pg_type name.
var pgTypeNames = map[string]string{
	"smallint": "int2", "integer": "int4", "int": "int4", "bigint": "int8",
	"smallserial": "int2", "serial": "int4", "bigserial": "int8",
	"real": "float4", "double precision": "float8",
	"numeric": "numeric", "decimal": "numeric", "boolean": "bool",
	"timestamp with time zone": "timestamptz", "timestamp without time zone": "timestamp", "timestamp": "timestamp",
	"character varying": "varchar", "character": "bpchar", "char": "bpchar",
}

var pgTypeMods = regexp.MustCompile(`\(([0-9, -]+)\)`)

// pgTypeName reads a type as written in DDL ("character varying(40)",
// "numeric(12,3)", "timestamp(6) with time zone", "int4") into its pg_type
// name and modifiers; an array is text on the wire.
func pgTypeName(t string) (string, []int32) {
	t = strings.ToLower(strings.TrimSpace(t))
	if strings.HasSuffix(t, "]") {
		return "_array", nil
	}
	var mods []int32
	if m := pgTypeMods.FindStringSubmatch(t); m != nil {
		for _, p := range strings.Split(m[1], ",") {
			v, err := strconv.Atoi(strings.TrimSpace(p))
			if err == nil {
				mods = append(mods, int32(v))
			}
		}
		t = strings.Join(strings.Fields(pgTypeMods.ReplaceAllString(t, " ")), " ")
	}
	if n, ok := pgTypeNames[t]; ok {
		return n, mods
	}
	return t, mods
}

var columnIndex = regexp.MustCompile(`^tables\[(\d+)\]\.(columns|rules)\[(\d+)\]`)

// add files err as a problem of table i (or of the job, or of the table its
// field names), or returns it when it is not a problem with the spec.
func (c *checked) add(spec *commonv1.JobSpec, i int, err error) error {
	if !errors.Is(err, jobspec.ErrInvalidSpec) && !errors.Is(err, jobspec.ErrTargetMismatch) && !errors.Is(err, jobspec.ErrSourceRefused) {
		return err
	}
	c.errs = append(c.errs, err)
	msg := err.Error()
	for _, prefix := range []string{jobspec.ErrInvalidSpec.Error() + ": ", jobspec.ErrTargetMismatch.Error() + ": ", jobspec.ErrSourceRefused.Error() + ": "} {
		msg = strings.TrimPrefix(msg, prefix)
	}
	p := &orchestratorv1.Problem{Message: msg}
	if m := jobspec.TableField.FindStringSubmatch(msg); m != nil && strings.HasPrefix(msg, m[0]) {
		p.Field = m[0]
		p.Message = strings.TrimPrefix(strings.TrimPrefix(msg, m[0]), ": ")
		if i < 0 {
			i, _ = strconv.Atoi(m[1])
		}
		if cm := columnIndex.FindStringSubmatch(m[0]); cm != nil && i < len(spec.GetTables()) {
			k, _ := strconv.Atoi(cm[3])
			t := spec.GetTables()[i]
			switch {
			case cm[2] == "columns" && k < len(t.GetColumns()):
				p.Column = t.GetColumns()[k].GetTarget()
			case cm[2] == "rules" && k < len(t.GetRules()):
				p.Column = t.GetRules()[k].GetColumn()
			}
		}
	} else if f, rest, ok := strings.Cut(msg, ": "); ok && !strings.Contains(f, " ") {
		p.Field, p.Message = f, rest
	}
	if i < 0 || i >= len(spec.GetTables()) || i >= len(c.tables) {
		c.problems = append(c.problems, p)
		return nil
	}
	p.Table = spec.GetTables()[i].GetName()
	c.ok[i] = false
	c.tables[i].Ok = false
	c.tables[i].Problems = append(c.tables[i].Problems, p)
	return nil
}
