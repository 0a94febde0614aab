package orchestrate

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	transformerv1 "github.com/cutover/cutover/gen/cutover/transformer/v1"
	validatorv1 "github.com/cutover/cutover/gen/cutover/validator/v1"
	"github.com/cutover/cutover/services/kit/dsn"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Limits on a spec; beyond them a request is refused rather than trusted.
const (
	defaultBatchSize = 10000
	maxBatchSize     = 200000
	// Bytes per batch: the extractor's default and bound (the bound keeps
	// a batch under the 64 MiB gRPC message limit).
	defaultBatchBytes  = 8 << 20
	maxBatchBytes      = 48 << 20
	defaultParallelism = 2
	maxParallelism     = 64
	maxPartitions      = 1024
)

// invalid builds an ErrInvalidSpec error whose message starts with the field.
func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidSpec, field, fmt.Sprintf(format, args...))
}

// prepared is a checked spec with everything CreateJob needs to store.
type prepared struct {
	spec  *commonv1.JobSpec
	plans [][]*commonv1.KeyRange
	// ddl already run on the target (create_tables), for the report.
	ddl []string
	// constraints to add after the data is in (create_tables).
	constraints []*loaderv1.TableConstraint
	// snapshots pins each table's source view for the whole job ("" when
	// the source cannot share one).
	snapshots []string
	// syncStart: per followed table spec, where its follower starts.
	syncStart map[string]string
}

// prepare checks a spec against the live source and target, fills in the
// target column types and limits, and plans the partitions of every table.
// It moves no data; with target.create_tables it creates missing tables.
func (s *Service) prepare(ctx context.Context, in *commonv1.JobSpec, jobID string) (*prepared, error) {
	spec, err := s.normalize(in)
	if err != nil {
		return nil, err
	}
	target := s.target(spec)
	create := spec.Target.GetCreateTables()
	seen := map[string]bool{}
	sources := make([]*extractorv1.DescribeSourceResponse, len(spec.Tables))
	for i, t := range spec.Tables {
		f := fmt.Sprintf("tables[%d]", i)
		if err := tableDefaults(f, t, seen); err != nil {
			return nil, err
		}
		if sources[i], err = s.describeSource(ctx, f, t, create); err != nil {
			return nil, err
		}
	}
	p := &prepared{spec: spec, plans: make([][]*commonv1.KeyRange, len(spec.Tables)), snapshots: make([]string, len(spec.Tables))}
	if create {
		defs, err := tableDefinitions(spec, sources)
		if err != nil {
			return nil, err
		}
		res, err := s.cfg.Clients.Loader.CreateTables(ctx, &loaderv1.CreateTablesRequest{Target: target, Tables: defs})
		if err != nil {
			return nil, refusal("target", "loader", err)
		}
		p.ddl = res.GetStatements()
		p.constraints = constraints(spec, sources)
	}
	targetCols := map[string][]*loaderv1.TargetColumn{}
	for i, t := range spec.Tables {
		f := fmt.Sprintf("tables[%d]", i)
		tgt, err := s.cfg.Clients.Loader.DescribeTarget(ctx, &loaderv1.DescribeTargetRequest{Target: target, Table: t.TargetTable})
		if err != nil {
			return nil, refusal(f+".target_table", "loader", err)
		}
		targetCols[t.TargetTable] = tgt.Columns
		if err := fillTargetTypes(f, t, tgt.Columns, spec.Target.Schema); err != nil {
			return nil, err
		}
	}
	if err := checkMerging(spec, targetCols); err != nil {
		return nil, err
	}
	if err := s.checkWriteModes(ctx, spec); err != nil {
		return nil, err
	}
	if err := s.checkSync(ctx, spec, sources); err != nil {
		return nil, err
	}
	p.syncStart = map[string]string{}
	for i, t := range spec.Tables {
		f := fmt.Sprintf("tables[%d]", i)
		if err := s.checkStages(ctx, f, t, sources[i], spec.Target.Schema); err != nil {
			return nil, err
		}
		// A watermark's start is read before the snapshot of the full
		// load, so every change after the snapshot is after it. A slot is
		// made with the snapshot (OpenSnapshot with the sync), and its start
		// is the slot's position, read after.
		start := func() error {
			res, err := s.cfg.Clients.Extractor.ReadChanges(ctx, &extractorv1.ReadChangesRequest{Source: t.Source, Sync: t.Sync, JobId: jobID, Table: t.Name})
			if err != nil {
				s.closeSnapshots(context.WithoutCancel(ctx), spec, p.snapshots)
				return refusal(f+".sync", "extractor", err)
			}
			p.syncStart[t.Name] = res.GetBatch().GetPosition()
			return nil
		}
		if t.GetSync() != nil && t.GetSync().GetLogical() == nil {
			if err := start(); err != nil {
				return nil, err
			}
		}
		snap, err := s.cfg.Clients.Extractor.OpenSnapshot(ctx, &extractorv1.OpenSnapshotRequest{Source: t.Source, Sync: t.Sync, JobId: jobID, Table: t.Name})
		switch {
		case status.Code(err) == codes.Unimplemented:
		case err != nil:
			s.closeSnapshots(context.WithoutCancel(ctx), spec, p.snapshots)
			return nil, refusal(f+".source", "extractor", err)
		default:
			p.snapshots[i] = snap.GetSnapshot()
		}
		if t.GetSync().GetLogical() != nil {
			if err := start(); err != nil {
				return nil, err
			}
		}
		plan, err := s.cfg.Clients.Extractor.PlanPartitions(ctx, &extractorv1.PlanPartitionsRequest{Source: t.Source, Partitions: t.Partitions, Snapshot: p.snapshots[i]})
		if err != nil {
			s.closeSnapshots(context.WithoutCancel(ctx), spec, p.snapshots)
			return nil, refusal(f+".source", "extractor", err)
		}
		if len(plan.Ranges) == 0 {
			plan.Ranges = []*commonv1.KeyRange{{}}
		}
		p.plans[i] = plan.Ranges
	}
	return p, nil
}

// normalize clones a spec, fills the job-wide defaults and checks the
// job-wide limits.
func (s *Service) normalize(in *commonv1.JobSpec) (*commonv1.JobSpec, error) {
	if in == nil {
		return nil, invalid("spec", "required")
	}
	spec := proto.Clone(in).(*commonv1.JobSpec)
	if spec.BatchSize == 0 {
		spec.BatchSize = defaultBatchSize
	}
	if spec.BatchSize < 0 || spec.BatchSize > maxBatchSize {
		return nil, invalid("batch_size", "must be between 1 and %d, got %d", maxBatchSize, spec.BatchSize)
	}
	if spec.BatchBytes == 0 {
		spec.BatchBytes = defaultBatchBytes
	}
	if spec.BatchBytes < 1<<10 || spec.BatchBytes > maxBatchBytes {
		return nil, invalid("batch_bytes", "must be between 1024 and %d, got %d", maxBatchBytes, spec.BatchBytes)
	}
	if spec.Parallelism == 0 {
		spec.Parallelism = defaultParallelism
	}
	if spec.Parallelism < 0 || spec.Parallelism > maxParallelism {
		return nil, invalid("parallelism", "must be between 1 and %d, got %d", maxParallelism, spec.Parallelism)
	}
	if spec.Target == nil {
		spec.Target = &commonv1.TargetSpec{}
	}
	if spec.Target.Schema == "" {
		spec.Target.Schema = "public"
	}
	if spec.Target.Dsn == "" && s.cfg.DefaultTarget == "" {
		return nil, invalid("target.dsn", "required: this orchestrator has no default target")
	}
	if len(spec.Tables) == 0 {
		return nil, invalid("tables", "at least one table is required")
	}
	return spec, nil
}

// tableDefaults fills a table spec's defaults and checks what needs no
// service to check.
func tableDefaults(f string, t *commonv1.TableSpec, seen map[string]bool) error {
	if t.Name == "" {
		t.Name = t.TargetTable
	}
	if t.Name == "" {
		return invalid(f+".name", "required")
	}
	if seen[t.Name] {
		return invalid(f+".name", "duplicate table name %q", t.Name)
	}
	seen[t.Name] = true
	if t.TargetTable == "" {
		return invalid(f+".target_table", "required")
	}
	if t.Partitions == 0 {
		t.Partitions = 1
	}
	if t.System == "" {
		t.System = t.Name
	}
	for k, fl := range t.Filters {
		if strings.TrimSpace(fl.GetWhen()) == "" {
			return invalid(fmt.Sprintf("%s.filters[%d].when", f, k), "required: a CEL condition over the source row")
		}
	}
	if t.Partitions < 0 || t.Partitions > maxPartitions {
		return invalid(f+".partitions", "must be between 1 and %d, got %d", maxPartitions, t.Partitions)
	}
	return checkSource(f+".source", t.Source)
}

// describeSource asks the extractor for the table's source columns; with
// create, an empty mapping becomes every source column.
func (s *Service) describeSource(ctx context.Context, f string, t *commonv1.TableSpec, create bool) (*extractorv1.DescribeSourceResponse, error) {
	src, err := s.cfg.Clients.Extractor.DescribeSource(ctx, &extractorv1.DescribeSourceRequest{Source: t.Source})
	if err != nil {
		return nil, refusal(f+".source", "extractor", err)
	}
	if len(t.Columns) == 0 && create {
		t.Columns = identityMapping(src.Columns)
	}
	if len(t.Columns) == 0 {
		return nil, invalid(f+".columns", "at least one column mapping is required (or target.create_tables to copy every source column)")
	}
	return src, nil
}

// checkStages has the transformer check the mapping and filters and the
// validator the rules, against the source columns and target types.
func (s *Service) checkStages(ctx context.Context, f string, t *commonv1.TableSpec, src *extractorv1.DescribeSourceResponse, schema string) error {
	if _, err := s.cfg.Clients.Transformer.CheckMapping(ctx, &transformerv1.CheckMappingRequest{
		Columns: t.Columns, SourceColumns: src.Columns, FieldPrefix: f, Filters: t.Filters,
	}); err != nil {
		return refusal(f+".columns", "transformer", err)
	}
	if err := checkCompatible(f, t, src.Columns, schema); err != nil {
		return err
	}
	if _, err := s.cfg.Clients.Validator.CheckRules(ctx, &validatorv1.CheckRulesRequest{
		Rules: t.Rules, Columns: t.Columns, FieldPrefix: f,
	}); err != nil {
		return refusal(f+".rules", "validator", err)
	}
	return nil
}

// checkSource catches an empty source before asking the extractor, which
// checks the rest against the live source.
func checkSource(f string, src *commonv1.SourceSpec) error {
	switch k := src.GetKind().(type) {
	case *commonv1.SourceSpec_Csv:
		return required(f+".csv.path", k.Csv.GetPath())
	case *commonv1.SourceSpec_Jsonl:
		return required(f+".jsonl.path", k.Jsonl.GetPath())
	case *commonv1.SourceSpec_Xlsx:
		return required(f+".xlsx.path", k.Xlsx.GetPath())
	case *commonv1.SourceSpec_Sqlite:
		if err := required(f+".sqlite.path", k.Sqlite.GetPath()); err != nil {
			return err
		}
		return required(f+".sqlite.table", k.Sqlite.GetTable())
	case *commonv1.SourceSpec_Postgres:
		if err := required(f+".postgres.dsn", k.Postgres.GetDsn()); err != nil {
			return err
		}
		return required(f+".postgres.table", k.Postgres.GetTable())
	case *commonv1.SourceSpec_Mysql:
		if err := required(f+".mysql.dsn", k.Mysql.GetDsn()); err != nil {
			return err
		}
		return required(f+".mysql.table", k.Mysql.GetTable())
	}
	return invalid(f, "one of csv, jsonl, xlsx, sqlite, postgres or mysql is required")
}

func required(field, v string) error {
	if v == "" {
		return invalid(field, "required")
	}
	return nil
}

// fillTargetTypes takes each mapped column's type and limits from the target
// table, so casts and NOT NULL checks happen before COPY could fail a batch.
func fillTargetTypes(f string, t *commonv1.TableSpec, cols []*loaderv1.TargetColumn, schema string) error {
	byName := make(map[string]*loaderv1.TargetColumn, len(cols))
	names := make([]string, 0, len(cols))
	for _, c := range cols {
		byName[c.Name] = c
		names = append(names, c.Name)
	}
	mapped := map[string]bool{}
	for j, m := range t.Columns {
		tc, ok := byName[m.Target]
		if !ok {
			return invalid(fmt.Sprintf("%s.columns[%d].target", f, j), "unknown column %q in target table %s.%s (it has: %s)",
				m.Target, schema, t.TargetTable, strings.Join(names, ", "))
		}
		mapped[m.Target] = true
		if m.Type == commonv1.ColumnType_COLUMN_TYPE_UNSPECIFIED {
			m.Type = tc.Type
		}
		m.NotNull = tc.NotNull
		m.MaxLength = tc.MaxLength
		m.Precision = tc.Precision
		m.Scale = tc.Scale
	}
	for _, c := range cols {
		if c.NotNull && !c.HasDefault && !mapped[c.Name] {
			return fmt.Errorf("%w: %s.columns: target column %q of %s.%s is NOT NULL without a default and nothing maps to it",
				ErrTargetMismatch, f, c.Name, schema, t.TargetTable)
		}
	}
	return nil
}

// refusal turns a stage's answer to a spec check into the caller's error:
// a refusal names the spec field; an outage stays an outage.
func refusal(field, stage string, err error) error {
	st, _ := status.FromError(err)
	msg := st.Message()
	switch st.Code() {
	case codes.InvalidArgument:
		if strings.HasPrefix(msg, "tables[") {
			return fmt.Errorf("%w: %s", ErrInvalidSpec, msg)
		}
		return invalid(field, "%s", msg)
	case codes.NotFound:
		return invalid(field, "%s", msg)
	case codes.FailedPrecondition:
		return fmt.Errorf("%w: %s: %s", ErrTargetMismatch, field, msg)
	}
	return fmt.Errorf("%w: %s: %s: %s", ErrStage, stage, st.Code(), msg)
}

// target is the spec's target with the orchestrator's default filled in.
func (s *Service) target(spec *commonv1.JobSpec) *commonv1.TargetSpec {
	t := &commonv1.TargetSpec{Dsn: spec.GetTarget().GetDsn(), Schema: spec.GetTarget().GetSchema()}
	if t.Dsn == "" {
		t.Dsn = s.cfg.DefaultTarget
	}
	if t.Schema == "" {
		t.Schema = "public"
	}
	return t
}

// redacted returns a copy of spec safe to show: no DSN passwords.
func redacted(spec *commonv1.JobSpec) *commonv1.JobSpec {
	c := proto.Clone(spec).(*commonv1.JobSpec)
	if c.Target != nil {
		c.Target.Dsn = dsn.Redact(c.Target.Dsn)
	}
	for _, t := range c.Tables {
		if pg := t.GetSource().GetPostgres(); pg != nil {
			pg.Dsn = dsn.Redact(pg.Dsn)
		}
		if my := t.GetSource().GetMysql(); my != nil {
			my.Dsn = dsn.Redact(my.Dsn)
		}
	}
	return c
}

// sourceName describes a table's source for reports, without secrets.
func sourceName(t *commonv1.TableSpec) string {
	src := t.GetSource()
	switch k := src.GetKind().(type) {
	case *commonv1.SourceSpec_Csv:
		return "csv " + filepath.Base(k.Csv.GetPath())
	case *commonv1.SourceSpec_Jsonl:
		return "jsonl " + filepath.Base(k.Jsonl.GetPath())
	case *commonv1.SourceSpec_Xlsx:
		return "xlsx " + filepath.Base(k.Xlsx.GetPath())
	case *commonv1.SourceSpec_Sqlite:
		return "sqlite " + filepath.Base(k.Sqlite.GetPath()) + ":" + k.Sqlite.GetTable()
	case *commonv1.SourceSpec_Postgres:
		schema := k.Postgres.GetSchema()
		if schema == "" {
			schema = "public"
		}
		return "postgres " + schema + "." + k.Postgres.GetTable()
	case *commonv1.SourceSpec_Mysql:
		if db := k.Mysql.GetDatabase(); db != "" {
			return "mysql " + db + "." + k.Mysql.GetTable()
		}
		return "mysql " + k.Mysql.GetTable()
	}
	return "?"
}

// closeSnapshots releases the job's source snapshots; best effort, since an
// extractor that restarted has released them already.
func (s *Service) closeSnapshots(ctx context.Context, spec *commonv1.JobSpec, snaps []string) {
	for i, id := range snaps {
		if id == "" || i >= len(spec.GetTables()) {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, _ = s.cfg.Clients.Extractor.CloseSnapshot(cctx, &extractorv1.CloseSnapshotRequest{Source: spec.Tables[i].GetSource(), Snapshot: id})
		cancel()
	}
}

// tableField finds the first spec path into a table ("tables[2].columns[1].expr").
var tableField = regexp.MustCompile(`tables\[(\d+)\](?:\.[a-z_]+(?:\[\d+\])?)*`)

// namedErr is an error whose text also names the table by its name.
type namedErr struct {
	msg string
	err error
}

func (e *namedErr) Error() string { return e.msg }
func (e *namedErr) Unwrap() error { return e.err }

// namingTable adds the table's name after the first spec path that points
// into a table, so "tables[2].columns[1].expr: …" reads
// "tables[2].columns[1].expr (table "orders_b"): …".
func namingTable(spec *commonv1.JobSpec, err error) error {
	msg := err.Error()
	m := tableField.FindStringSubmatchIndex(msg)
	if m == nil {
		return err
	}
	i, convErr := strconv.Atoi(msg[m[2]:m[3]])
	if convErr != nil || i >= len(spec.GetTables()) {
		return err
	}
	name := spec.GetTables()[i].GetName()
	if name == "" {
		name = spec.GetTables()[i].GetTargetTable()
	}
	if name == "" {
		return err
	}
	return &namedErr{msg: msg[:m[1]] + fmt.Sprintf(" (table %q)", name) + msg[m[1]:], err: err}
}
