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

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	transformerv1 "github.com/cutover/cutover/gen/cutover/transformer/v1"
	validatorv1 "github.com/cutover/cutover/gen/cutover/validator/v1"
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

// CheckSync refuses a sync the follower could not carry out exactly.
func (ck *Checker) CheckSync(ctx context.Context, spec *commonv1.JobSpec, sources []*extractorv1.DescribeSourceResponse) error {
	targets := map[string]int{}
	for _, t := range spec.GetTables() {
		targets[t.GetTargetTable()]++
	}
	for i, t := range spec.GetTables() {
		sy := t.GetSync()
		if sy == nil {
			continue
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
		default:
			return jobspec.Invalid(f, "watermark or logical is required")
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
		pk := sources[i].GetPrimaryKey()
		if len(pk) == 0 {
			return jobspec.Invalid(f, "source of table %s has no primary key; changes are applied by key", t.GetName())
		}
		if _, err := jobspec.KeyTargets(t, pk); err != nil {
			return jobspec.Invalid(f, "%v", err)
		}
		if spec.GetTarget().GetCreateTables() {
			continue // the key is added after the full load
		}
		target := ck.Target(spec)
		hasKey, err := ck.TargetHasKey(ctx, target, t.GetTargetTable())
		if err != nil {
			return err
		}
		if !hasKey {
			return jobspec.Invalid(f, "target table %s.%s has no primary key; changes are applied by key", target.GetSchema(), t.GetTargetTable())
		}
	}
	return nil
}

// CheckWriteModes refuses an upsert into a target table without a primary
// key: the key is how an upserted row finds the row it replaces, and how a
// rollback finds it again.
func (ck *Checker) CheckWriteModes(ctx context.Context, spec *commonv1.JobSpec) error {
	target := ck.Target(spec)
	for i, t := range spec.GetTables() {
		if t.GetWriteMode() != commonv1.WriteMode_WRITE_MODE_UPSERT {
			continue
		}
		hasKey, err := ck.TargetHasKey(ctx, target, t.GetTargetTable())
		if err != nil {
			return err
		}
		if !hasKey {
			return jobspec.Invalid(fmt.Sprintf("tables[%d].write_mode", i), "upsert needs a primary key on target table %s.%s, which has none",
				target.GetSchema(), t.GetTargetTable())
		}
	}
	return nil
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
// create, an empty mapping becomes every source column.
func (ck *Checker) DescribeSource(ctx context.Context, f string, t *commonv1.TableSpec, create bool) (*extractorv1.DescribeSourceResponse, error) {
	src, err := ck.Clients.Extractor.DescribeSource(ctx, &extractorv1.DescribeSourceRequest{Source: t.Source})
	if err != nil {
		return nil, stages.Refusal(f+".source", "extractor", err)
	}
	if len(t.Columns) == 0 && create {
		t.Columns = jobspec.IdentityMapping(src.Columns)
	}
	if len(t.Columns) == 0 {
		return nil, jobspec.Invalid(f+".columns", "at least one column mapping is required (or target.create_tables to copy every source column)")
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

// checked is a spec after ValidateSpec's checks: normalized, target types
// filled in for the tables that passed, and every problem found.
type checked struct {
	spec     *commonv1.JobSpec
	sources  []*extractorv1.DescribeSourceResponse
	ok       []bool // per table: every check passed
	problems []*orchestratorv1.Problem
	tables   []*orchestratorv1.TableCheck
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

// Check runs CreateJob's checks table by table, collecting problems.
func (ck *Checker) Check(ctx context.Context, in *commonv1.JobSpec) (*checked, error) {
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
		src, err := ck.DescribeSource(ctx, f, t, create)
		if err != nil {
			if err := c.add(spec, i, err); err != nil {
				return nil, err
			}
			continue
		}
		c.sources[i] = src
	}
	targetCols := map[string][]*loaderv1.TargetColumn{}
	for i, t := range spec.Tables {
		if !c.ok[i] {
			continue
		}
		f := fmt.Sprintf("tables[%d]", i)
		tgt, err := ck.Clients.Loader.DescribeTarget(ctx, &loaderv1.DescribeTargetRequest{Target: target, Table: t.TargetTable})
		if status.Code(err) == codes.NotFound && create {
			// CreateJob would create it from the source: the mapping
			// then is the source's own columns, nothing more to check.
			continue
		}
		if err == nil {
			targetCols[t.TargetTable] = tgt.Columns
			err = jobspec.FillTargetTypes(f, t, tgt.Columns, spec.Target.Schema)
		} else {
			err = stages.Refusal(f+".target_table", "loader", err)
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
	for _, e := range ck.CheckEmpty(ctx, spec, false) {
		if !c.ok[e.Index] {
			continue // its target table is reported already
		}
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
	return c, nil
}

var columnIndex = regexp.MustCompile(`^tables\[(\d+)\]\.(columns|rules)\[(\d+)\]`)

// add files err as a problem of table i (or of the job, or of the table its
// field names), or returns it when it is not a problem with the spec.
func (c *checked) add(spec *commonv1.JobSpec, i int, err error) error {
	if !errors.Is(err, jobspec.ErrInvalidSpec) && !errors.Is(err, jobspec.ErrTargetMismatch) {
		return err
	}
	msg := err.Error()
	for _, prefix := range []string{jobspec.ErrInvalidSpec.Error() + ": ", jobspec.ErrTargetMismatch.Error() + ": "} {
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
