package jobspec

import (
	"fmt"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
)

func HasRowLimit(spec *commonv1.JobSpec) bool {
	for _, th := range spec.GetThresholds() {
		if th.MaxRows != nil {
			return true
		}
	}
	return false
}

// DryRunThresholds names the thresholds a dry run's counts pass.
func DryRunThresholds(spec *commonv1.JobSpec, tables []*orchestratorv1.DryRunTable) []*orchestratorv1.Problem {
	var out []*orchestratorv1.Problem
	for k, th := range spec.GetThresholds() {
		var extracted, hit int64
		for _, dt := range tables {
			if th.GetTable() != "" && dt.GetTable() != th.GetTable() {
				continue
			}
			extracted += dt.GetCounts().GetExtracted()
			if th.GetRule() == "" {
				hit += dt.GetCounts().GetQuarantined()
				continue
			}
			for _, r := range dt.GetRules() {
				if r.GetRule() == th.GetRule() && r.GetSeverity() == "error" {
					hit += r.GetRows()
				}
			}
		}
		if msg := ThresholdPassed(th, hit, extracted); msg != "" {
			out = append(out, &orchestratorv1.Problem{Table: th.GetTable(), Field: fmt.Sprintf("thresholds[%d]", k), Message: msg})
		}
	}
	return out
}

// ThresholdPassed says how th is passed by hit quarantined rows out of
// extracted, or "" when it is not.
func ThresholdPassed(th *commonv1.Threshold, hit, extracted int64) string {
	what := "quarantined"
	if th.GetRule() != "" {
		what = "quarantined by rule " + th.GetRule()
	}
	scope := "in the job"
	if th.GetTable() != "" {
		scope = "in table " + th.GetTable()
	}
	if th.MaxRows != nil && hit > th.GetMaxRows() {
		return fmt.Sprintf("%s %s %s, more than the threshold of %d", Plural(hit, "row"), what, scope, th.GetMaxRows())
	}
	if th.MaxRatio != nil && extracted > 0 && float64(hit)/float64(extracted) > th.GetMaxRatio() {
		return fmt.Sprintf("%d of %d rows %s %s (%.3g%%), more than the threshold of %.3g%%", hit, extracted, what, scope,
			100*float64(hit)/float64(extracted), 100*th.GetMaxRatio())
	}
	return ""
}
func Plural(n int64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
