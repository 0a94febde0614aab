package orchestrate

import (
	"context"
	"fmt"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
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
	// estimates: each source's row estimate (statistics, file size).
	estimates []int64
}

// prepare checks a spec against the live source and target, fills in the
// target column types and limits, and plans the partitions of every table.
// It moves no data; with target.create_tables it creates missing tables.
func (s *Service) prepare(ctx context.Context, in *commonv1.JobSpec, jobID string, redrive bool) (*prepared, error) {
	// Every check ValidateSpec runs, and every problem named at once.
	if err := s.checker.Problems(ctx, in, redrive); err != nil {
		return nil, err
	}
	spec, err := jobspec.Normalize(in, s.cfg.DefaultTarget)
	if err != nil {
		return nil, err
	}
	target := s.checker.Target(spec)
	create := spec.Target.GetCreateTables()
	seen := map[string]bool{}
	sources := make([]*extractorv1.DescribeSourceResponse, len(spec.Tables))
	for i, t := range spec.Tables {
		f := fmt.Sprintf("tables[%d]", i)
		if err := jobspec.TableDefaults(f, t, seen); err != nil {
			return nil, err
		}
		if sources[i], err = s.checker.DescribeSource(ctx, f, t, spec.Target); err != nil {
			return nil, err
		}
	}
	for i, t := range spec.Tables {
		// What a follower sees beyond these was added since (on_add_column).
		t.SourceColumns = nil
		if t.GetSync() != nil {
			t.SourceColumns = sources[i].GetColumns()
		}
	}
	p := &prepared{spec: spec, plans: make([][]*commonv1.KeyRange, len(spec.Tables)), snapshots: make([]string, len(spec.Tables))}
	for _, src := range sources {
		p.estimates = append(p.estimates, max(src.GetEstimatedRows(), 0))
	}
	if create {
		defs, err := jobspec.TableDefinitions(spec, sources)
		if err != nil {
			return nil, err
		}
		res, err := s.cfg.Clients.Loader.CreateTables(ctx, &loaderv1.CreateTablesRequest{Target: target, Tables: defs})
		if err != nil {
			return nil, stages.Refusal("target", "loader", err)
		}
		// What the sources have and the target will not, after what was run.
		p.ddl = append(res.GetStatements(), jobspec.IndexNotes(spec, sources)...)
		p.constraints = jobspec.Constraints(spec, sources)
	}
	// The target types, now that every table exists (the checks used the
	// planned ones of tables create_tables has just made).
	for i, t := range spec.Tables {
		f := fmt.Sprintf("tables[%d]", i)
		tgt, err := s.cfg.Clients.Loader.DescribeTarget(ctx, &loaderv1.DescribeTargetRequest{Target: target, Table: t.TargetTable})
		if err != nil {
			return nil, stages.Refusal(f+".target_table", "loader", err)
		}
		if err := jobspec.FillTargetTypes(f, t, tgt.Columns, spec.Target.Schema); err != nil {
			return nil, err
		}
		jobspec.FillTimeZones(spec, t, sources[i].GetColumns())
	}
	p.syncStart = map[string]string{}
	for i, t := range spec.Tables {
		f := fmt.Sprintf("tables[%d]", i)
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
