package orchestrate

import (
	"context"
	"fmt"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	transformerv1 "github.com/cutover/cutover/gen/cutover/transformer/v1"
	validatorv1 "github.com/cutover/cutover/gen/cutover/validator/v1"
	"github.com/cutover/cutover/services/orchestrator/jobspec"
	"github.com/cutover/cutover/services/orchestrator/stages"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

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
	spec, err := jobspec.Normalize(in, s.cfg.DefaultTarget)
	if err != nil {
		return nil, err
	}
	target := s.target(spec)
	create := spec.Target.GetCreateTables()
	seen := map[string]bool{}
	sources := make([]*extractorv1.DescribeSourceResponse, len(spec.Tables))
	for i, t := range spec.Tables {
		f := fmt.Sprintf("tables[%d]", i)
		if err := jobspec.TableDefaults(f, t, seen); err != nil {
			return nil, err
		}
		if sources[i], err = s.describeSource(ctx, f, t, create); err != nil {
			return nil, err
		}
	}
	p := &prepared{spec: spec, plans: make([][]*commonv1.KeyRange, len(spec.Tables)), snapshots: make([]string, len(spec.Tables))}
	if create {
		defs, err := jobspec.TableDefinitions(spec, sources)
		if err != nil {
			return nil, err
		}
		res, err := s.cfg.Clients.Loader.CreateTables(ctx, &loaderv1.CreateTablesRequest{Target: target, Tables: defs})
		if err != nil {
			return nil, stages.Refusal("target", "loader", err)
		}
		p.ddl = res.GetStatements()
		p.constraints = jobspec.Constraints(spec, sources)
	}
	targetCols := map[string][]*loaderv1.TargetColumn{}
	for i, t := range spec.Tables {
		f := fmt.Sprintf("tables[%d]", i)
		tgt, err := s.cfg.Clients.Loader.DescribeTarget(ctx, &loaderv1.DescribeTargetRequest{Target: target, Table: t.TargetTable})
		if err != nil {
			return nil, stages.Refusal(f+".target_table", "loader", err)
		}
		targetCols[t.TargetTable] = tgt.Columns
		if err := jobspec.FillTargetTypes(f, t, tgt.Columns, spec.Target.Schema); err != nil {
			return nil, err
		}
	}
	if err := jobspec.CheckMerging(spec, targetCols); err != nil {
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
				return stages.Refusal(f+".sync", "extractor", err)
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
			return nil, stages.Refusal(f+".source", "extractor", err)
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
			return nil, stages.Refusal(f+".source", "extractor", err)
		}
		if len(plan.Ranges) == 0 {
			plan.Ranges = []*commonv1.KeyRange{{}}
		}
		p.plans[i] = plan.Ranges
	}
	return p, nil
}

// describeSource asks the extractor for the table's source columns; with
// create, an empty mapping becomes every source column.
func (s *Service) describeSource(ctx context.Context, f string, t *commonv1.TableSpec, create bool) (*extractorv1.DescribeSourceResponse, error) {
	src, err := s.cfg.Clients.Extractor.DescribeSource(ctx, &extractorv1.DescribeSourceRequest{Source: t.Source})
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

// checkStages has the transformer check the mapping and filters and the
// validator the rules, against the source columns and target types.
func (s *Service) checkStages(ctx context.Context, f string, t *commonv1.TableSpec, src *extractorv1.DescribeSourceResponse, schema string) error {
	if _, err := s.cfg.Clients.Transformer.CheckMapping(ctx, &transformerv1.CheckMappingRequest{
		Columns: t.Columns, SourceColumns: src.Columns, FieldPrefix: f, Filters: t.Filters,
	}); err != nil {
		return stages.Refusal(f+".columns", "transformer", err)
	}
	if err := jobspec.CheckCompatible(f, t, src.Columns, schema); err != nil {
		return err
	}
	if _, err := s.cfg.Clients.Validator.CheckRules(ctx, &validatorv1.CheckRulesRequest{
		Rules: t.Rules, Columns: t.Columns, FieldPrefix: f,
	}); err != nil {
		return stages.Refusal(f+".rules", "validator", err)
	}
	return nil
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
