package jobspec

import (
	"fmt"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
)

// IfExists is the spec's target.if_exists with the default (fail) filled in.
func IfExists(spec *commonv1.JobSpec) commonv1.IfExists {
	if m := spec.GetTarget().GetIfExists(); m != commonv1.IfExists_IF_EXISTS_UNSPECIFIED {
		return m
	}
	return commonv1.IfExists_IF_EXISTS_FAIL
}

// applyIfExists checks target.if_exists and applies what it implies to a
// normalized spec: upsert makes every table spec without a write_mode an
// upsert (the write mode does the rest), truncate takes the backup the
// rollback restores the emptied rows from.
func applyIfExists(spec *commonv1.JobSpec) error {
	m := spec.GetTarget().GetIfExists()
	if _, ok := commonv1.IfExists_name[int32(m)]; !ok {
		return Invalid("target.if_exists", "unknown value %d; use fail, append, truncate or upsert", m)
	}
	switch m {
	case commonv1.IfExists_IF_EXISTS_UPSERT:
		for _, t := range spec.GetTables() {
			if t.GetWriteMode() == commonv1.WriteMode_WRITE_MODE_UNSPECIFIED {
				t.WriteMode = commonv1.WriteMode_WRITE_MODE_UPSERT
			}
		}
	case commonv1.IfExists_IF_EXISTS_TRUNCATE:
		spec.Target.Backup = true
	}
	return nil
}

// MustBeEmpty lists the target tables (once each, in spec order) whose
// existing rows refuse the job: with target.if_exists fail, every target
// table except one that each of its table specs upserts into (upsert
// expects rows). A re-drive appends to its original's tables and checks
// none.
func MustBeEmpty(spec *commonv1.JobSpec, redrive bool) []string {
	if redrive || IfExists(spec) != commonv1.IfExists_IF_EXISTS_FAIL {
		return nil
	}
	upsertOnly := map[string]bool{}
	var order []string
	for _, t := range spec.GetTables() {
		tt := t.GetTargetTable()
		up := t.GetWriteMode() == commonv1.WriteMode_WRITE_MODE_UPSERT
		if prev, seen := upsertOnly[tt]; seen {
			upsertOnly[tt] = prev && up
			continue
		}
		upsertOnly[tt] = up
		order = append(order, tt)
	}
	var out []string
	for _, tt := range order {
		if !upsertOnly[tt] {
			out = append(out, tt)
		}
	}
	return out
}

// NotEmpty is the refusal of a job whose target table already holds rows
// (target.if_exists fail).
func NotEmpty(schema, table string, rows int64) error {
	return fmt.Errorf("%w: target.if_exists: target table %s.%s already holds %d rows; set target.if_exists to append, truncate or upsert",
		ErrTargetMismatch, schema, table, rows)
}
