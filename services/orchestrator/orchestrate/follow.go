package orchestrate

import (
	"context"
	"fmt"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	"github.com/cutover/cutover/services/orchestrator/jobspec"
)

// defaultReadyLagSeconds is GetReadiness's lag bound when none is asked.
const defaultReadyLagSeconds = 5

// checkSync refuses a sync the follower could not carry out exactly.
func (s *Service) checkSync(ctx context.Context, spec *commonv1.JobSpec, sources []*extractorv1.DescribeSourceResponse) error {
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
		target := s.target(spec)
		hasKey, err := s.targetHasKey(ctx, target, t.GetTargetTable())
		if err != nil {
			return err
		}
		if !hasKey {
			return jobspec.Invalid(f, "target table %s.%s has no primary key; changes are applied by key", target.GetSchema(), t.GetTargetTable())
		}
	}
	return nil
}
