package jobspec

import (
	"fmt"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"github.com/cutover/cutover/services/orchestrator/jobstore"
)

// SyncTables are the followed table specs' indexes.
func SyncTables(spec *commonv1.JobSpec) []int {
	var out []int
	for i, t := range spec.GetTables() {
		if t.GetSync() != nil {
			out = append(out, i)
		}
	}
	return out
}

// followed says whether any of the table specs follows its source.
// followedTables names the spec's followed tables for the store.
func FollowedTables(spec *commonv1.JobSpec) []jobstore.Followed {
	var out []jobstore.Followed
	for _, i := range SyncTables(spec) {
		out = append(out, jobstore.Followed{Index: i, Name: spec.Tables[i].GetName()})
	}
	return out
}

func Followed(spec *commonv1.JobSpec, specs []int) bool {
	for _, i := range specs {
		if spec.GetTables()[i].GetSync() != nil {
			return true
		}
	}
	return false
}

// KeyTargets maps the source's key columns to the target columns they
// fill as they are (no expression, no cleaning), so keys compare as text.
func KeyTargets(t *commonv1.TableSpec, pk []string) ([]string, error) {
	out := make([]string, len(pk))
	for k, col := range pk {
		for _, m := range t.GetColumns() {
			if m.GetSource() == col && m.GetExpr() == "" && len(m.GetClean()) == 0 && m.GetNewId() == nil && m.GetRef() == nil {
				out[k] = m.GetTarget()
			}
		}
		if out[k] == "" {
			return nil, fmt.Errorf("key column %s of table %s must be mapped as it is (no expr, no cleaning) onto a target column: changes and deletes find their row by it", col, t.GetName())
		}
	}
	return out, nil
}
