package jobspec

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	"google.golang.org/protobuf/proto"
)

// StagedTables reports, per target table, whether it is loaded through
// staging: when any table spec feeding it needs the whole job's view.
func StagedTables(spec *commonv1.JobSpec) map[string]bool {
	out := map[string]bool{}
	for _, t := range spec.GetTables() {
		if NeedsStaging(t) {
			out[t.GetTargetTable()] = true
		}
	}
	return out
}

func NeedsStaging(t *commonv1.TableSpec) bool {
	if len(t.GetDedupe().GetKeys()) > 0 || len(t.GetCollisions()) > 0 {
		return true
	}
	for _, c := range t.GetColumns() {
		if c.GetNewId() != nil || c.GetRef() != nil {
			return true
		}
	}
	return len(jobRules(t)) > 0
}

// jobRules are a table's rules that need every row of the job: unique and
// references, checked when the staged table is finalized.
func jobRules(t *commonv1.TableSpec) []*commonv1.Rule {
	var out []*commonv1.Rule
	for _, r := range t.GetRules() {
		if r.GetUnique() != nil || r.GetReferences() != nil {
			out = append(out, r)
		}
	}
	return out
}

// systemRanks numbers the job's systems by first mention.
func systemRanks(spec *commonv1.JobSpec) map[string]int32 {
	ranks := map[string]int32{}
	for _, t := range spec.GetTables() {
		if _, ok := ranks[t.GetSystem()]; !ok {
			ranks[t.GetSystem()] = int32(len(ranks))
		}
	}
	return ranks
}

// FinalizeOrder lists the staged target tables so that a table comes after
// every table whose new ids it references. A cycle is a spec error.
func FinalizeOrder(spec *commonv1.JobSpec) ([]string, error) {
	staged := StagedTables(spec)
	producer := map[string]string{} // entity → target table
	for _, t := range spec.GetTables() {
		for _, c := range t.GetColumns() {
			if c.GetNewId() != nil {
				producer[c.GetNewId().GetEntity()] = t.GetTargetTable()
			}
		}
	}
	deps := map[string]map[string]bool{}
	var tables []string
	for _, t := range spec.GetTables() {
		tt := t.GetTargetTable()
		if !staged[tt] {
			continue
		}
		if deps[tt] == nil {
			deps[tt] = map[string]bool{}
			tables = append(tables, tt)
		}
		for _, c := range t.GetColumns() {
			if r := c.GetRef(); r != nil {
				if p, ok := producer[r.GetEntity()]; ok && p != tt {
					deps[tt][p] = true
				}
			}
		}
		for _, r := range jobRules(t) {
			if p := r.GetReferences().GetTable(); p != "" && p != tt && staged[p] {
				deps[tt][p] = true
			}
		}
	}
	var order []string
	done := map[string]bool{}
	for len(order) < len(tables) {
		progressed := false
		for _, tt := range tables {
			if done[tt] {
				continue
			}
			ready := true
			for d := range deps[tt] {
				ready = ready && done[d]
			}
			if ready {
				order = append(order, tt)
				done[tt] = true
				progressed = true
			}
		}
		if !progressed {
			var left []string
			for _, tt := range tables {
				if !done[tt] {
					left = append(left, tt)
				}
			}
			return nil, Invalid("tables", "the references between target tables %s form a cycle; ids must flow one way", strings.Join(left, ", "))
		}
	}
	return order, nil
}

// FinalizeRequest builds the loader request of one staged target table.
func FinalizeRequest(spec *commonv1.JobSpec, target *commonv1.TargetSpec, jobID, table string) *loaderv1.FinalizeStagedRequest {
	req := &loaderv1.FinalizeStagedRequest{Target: target, JobId: jobID, TargetTable: table}
	ranks := systemRanks(spec)
	for _, t := range spec.GetTables() {
		if t.GetTargetTable() != table {
			continue
		}
		src := &loaderv1.StagedSource{Table: t.GetName(), System: t.GetSystem(), SystemRank: ranks[t.GetSystem()]}
		for _, c := range t.GetColumns() {
			if n := c.GetNewId(); n != nil {
				src.NewIds = append(src.NewIds, &loaderv1.StagedColumn{Column: c.GetTarget(), Entity: n.GetEntity()})
			}
			if r := c.GetRef(); r != nil {
				src.Refs = append(src.Refs, &loaderv1.StagedColumn{Column: c.GetTarget(), Entity: r.GetEntity(), System: r.GetSystem()})
			}
		}
		src.Rules = jobRules(t)
		req.Sources = append(req.Sources, src)
		if req.Dedupe == nil && len(t.GetDedupe().GetKeys()) > 0 {
			req.Dedupe = t.GetDedupe()
		}
		if req.Collisions == nil && len(t.GetCollisions()) > 0 {
			req.Collisions = t.GetCollisions()
		}
	}
	return req
}

// CheckMerging refuses dedupe, collision, id and reference settings that
// cannot work, naming the field: cols are each target table's columns.
func CheckMerging(spec *commonv1.JobSpec, cols map[string][]*loaderv1.TargetColumn) error {
	entities := map[string]bool{}
	producers := map[string]string{} // entity → target table
	for _, t := range spec.GetTables() {
		for _, c := range t.GetColumns() {
			if n := c.GetNewId(); n != nil {
				entities[n.GetEntity()] = true
				producers[n.GetEntity()] = t.GetTargetTable()
			}
		}
	}
	first := map[string]int{} // target table → first table spec index with dedupe or collisions
	for i, t := range spec.GetTables() {
		f := fmt.Sprintf("tables[%d]", i)
		byName := map[string]*loaderv1.TargetColumn{}
		var names []string
		for _, c := range cols[t.GetTargetTable()] {
			byName[c.GetName()] = c
			names = append(names, c.GetName())
		}
		known := func(field, col string) error {
			if col == "" {
				return Invalid(field, "required")
			}
			if byName[col] == nil {
				return Invalid(field, "unknown column %q in target table %s (it has: %s)", col, t.GetTargetTable(), strings.Join(names, ", "))
			}
			return nil
		}
		if d := t.GetDedupe(); d != nil {
			if len(d.GetKeys()) == 0 {
				return Invalid(f+".dedupe.keys", "at least one match key is required")
			}
			for k, key := range d.GetKeys() {
				if len(key.GetColumns()) == 0 {
					return Invalid(fmt.Sprintf("%s.dedupe.keys[%d].columns", f, k), "at least one column is required")
				}
				for c, col := range key.GetColumns() {
					if err := known(fmt.Sprintf("%s.dedupe.keys[%d].columns[%d]", f, k, c), col); err != nil {
						return err
					}
				}
			}
			switch d.GetPolicy() {
			case commonv1.SurvivorPolicy_SURVIVOR_POLICY_NEWEST:
				if err := known(f+".dedupe.newest_by", d.GetNewestBy()); err != nil {
					return err
				}
			case commonv1.SurvivorPolicy_SURVIVOR_POLICY_MOST_COMPLETE:
				if d.GetNewestBy() != "" {
					return Invalid(f+".dedupe.newest_by", "only goes with SURVIVOR_POLICY_NEWEST")
				}
			default:
				return Invalid(f+".dedupe.policy", "required: SURVIVOR_POLICY_NEWEST (with newest_by) or SURVIVOR_POLICY_MOST_COMPLETE")
			}
		}
		for k, kc := range t.GetCollisions() {
			field := fmt.Sprintf("%s.collisions[%d]", f, k)
			if err := known(field+".column", kc.GetColumn()); err != nil {
				return err
			}
			if kc.GetRule() == commonv1.CollisionRule_COLLISION_RULE_PREFIX_SYSTEM && byName[kc.GetColumn()].GetType() != commonv1.ColumnType_COLUMN_TYPE_TEXT {
				return Invalid(field+".rule", "COLLISION_RULE_PREFIX_SYSTEM needs a text column; %s is %s", kc.GetColumn(), byName[kc.GetColumn()].GetPgType())
			}
			if kc.GetRule() == commonv1.CollisionRule_COLLISION_RULE_UNSPECIFIED {
				return Invalid(field+".rule", "required: COLLISION_RULE_PREFIX_SYSTEM or COLLISION_RULE_KEEP_FIRST_SYSTEM")
			}
		}
		// Every spec feeding one target table merges the same way.
		if t.GetDedupe() != nil || len(t.GetCollisions()) > 0 {
			if j, ok := first[t.GetTargetTable()]; ok {
				o := spec.GetTables()[j]
				if o.GetDedupe() != nil && t.GetDedupe() != nil && !proto.Equal(o.GetDedupe(), t.GetDedupe()) {
					return Invalid(f+".dedupe", "differs from tables[%d].dedupe, which feeds the same target table %s; give both the same", j, t.GetTargetTable())
				}
				if len(o.GetCollisions()) > 0 && len(t.GetCollisions()) > 0 &&
					!slices.EqualFunc(o.GetCollisions(), t.GetCollisions(), func(a, b *commonv1.KeyCollision) bool { return proto.Equal(a, b) }) {
					return Invalid(f+".collisions", "differ from tables[%d].collisions, which feeds the same target table %s; give both the same", j, t.GetTargetTable())
				}
			} else {
				first[t.GetTargetTable()] = i
			}
		}
		for k, c := range t.GetColumns() {
			if r := c.GetRef(); r != nil && r.GetEntity() != "" && producers[r.GetEntity()] == t.GetTargetTable() {
				return Invalid(fmt.Sprintf("%s.columns[%d].ref.entity", f, k), "entity %q gets its new ids in the same target table %s; references within one table are not supported yet",
					r.GetEntity(), t.GetTargetTable())
			}
			if r := c.GetRef(); r != nil && r.GetEntity() != "" && !entities[r.GetEntity()] {
				var have []string
				for e := range entities {
					have = append(have, e)
				}
				sort.Strings(have)
				return Invalid(fmt.Sprintf("%s.columns[%d].ref.entity", f, k), "no table in this job gives new ids (new_id) for entity %q (entities: %s)",
					r.GetEntity(), strings.Join(have, ", "))
			}
		}
	}
	// Tables sharing a target that mixes staged and unstaged feeds are all
	// staged (stagedTables is per target table), so only cycles remain.
	_, err := FinalizeOrder(spec)
	return err
}

// TargetTables lists the spec's distinct target tables with parents before
// children: the staged tables in finalize order (ids flow from the tables
// listed first), then the others in spec order. The loader undoes them in
// reverse.
func TargetTables(spec *commonv1.JobSpec) []string {
	order, _ := FinalizeOrder(spec) // checked at CreateJob
	seen := map[string]bool{}
	var out []string
	for _, t := range order {
		seen[t] = true
		out = append(out, t)
	}
	for _, t := range spec.GetTables() {
		if tt := t.GetTargetTable(); !seen[tt] {
			seen[tt] = true
			out = append(out, tt)
		}
	}
	return out
}
