package ctl

import (
	"fmt"
	"regexp"
	"strings"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
)

// check is one named pass/fail outcome: a JUnit test case, a line of the
// summary. The JUnit XML, the summary and the exit code agree because all
// come from the same checks and the server's ok.
type check struct {
	name    string
	failed  bool
	skipped string // why it did not run; empty if it ran
	message string // one line: why it failed, or a note
	detail  []string
}

// group is a JUnit test suite: a table spec, a target table or the job.
type group struct {
	name   string
	class  string
	checks []check
}

// jobGroup names the suite of problems of the job as a whole.
const jobGroup = "job"

// thresholdField is a dry run's threshold breach (problem field
// "thresholds[2]"), as opposed to a mistake inside a threshold
// ("thresholds[2].table"), which is a spec problem.
var thresholdField = regexp.MustCompile(`^thresholds\[\d+\]$`)

// problemText is "field: message (column c)", naming the column even when
// the message speaks of the source's spelling.
func problemText(p *orchestratorv1.Problem) string {
	s := p.GetMessage()
	if p.GetField() != "" {
		s = p.GetField() + ": " + s
	}
	if p.GetColumn() != "" {
		s += " (column " + p.GetColumn() + ")"
	}
	return oneLine(s)
}

func problemsCheck(name string, ps []*orchestratorv1.Problem) check {
	c := check{name: name}
	for _, p := range ps {
		c.detail = append(c.detail, problemText(p))
	}
	if len(ps) > 0 {
		c.failed = true
		c.message = strings.Join(c.detail, "; ")
	}
	return c
}

// ruleName is the name the validator reports a rule under.
func ruleName(r *commonv1.Rule) string {
	if r.GetName() != "" {
		return r.GetName()
	}
	switch r.GetKind().(type) {
	case *commonv1.Rule_NotNull:
		return "not_null"
	case *commonv1.Rule_Regex:
		return "regex"
	case *commonv1.Rule_Range:
		return "range"
	case *commonv1.Rule_OneOf:
		return "one_of"
	case *commonv1.Rule_Length:
		return "length"
	case *commonv1.Rule_Expr:
		return "expr"
	case *commonv1.Rule_Unique:
		return "unique"
	case *commonv1.Rule_References:
		return "references"
	}
	return "rule"
}

// jobWide rules are checked once the job's rows are all staged, so a dry
// run cannot run them.
func jobWide(r *commonv1.Rule) bool {
	switch r.GetKind().(type) {
	case *commonv1.Rule_Unique, *commonv1.Rule_References:
		return true
	}
	return false
}

func (v *validation) tableSpec(name string) *commonv1.TableSpec {
	for _, t := range v.spec.GetTables() {
		if t.GetName() == name {
			return t
		}
	}
	return nil
}

func (v *validation) class(table string) string {
	if v.dryRun {
		return "dry-run." + table
	}
	return "validate." + table
}

// groups are the checks of a validation: one group per table spec, then
// one for the job.
func (v *validation) groups() []group {
	var out []group
	res := v.res
	for _, dt := range res.GetTables() {
		g := group{name: dt.GetTable(), class: v.class(dt.GetTable())}
		g.checks = append(g.checks, problemsCheck("spec", dt.GetProblems()))
		if v.dryRun && len(dt.GetProblems()) == 0 {
			g.checks = append(g.checks, v.ruleChecks(dt)...)
			if c, ok := v.filterCheck(dt); ok {
				g.checks = append(g.checks, c)
			}
			if c, ok := v.thresholdCheck(dt.GetTable()); ok {
				g.checks = append(g.checks, c)
			}
		}
		// A table whose rows were quarantined fails even when no rule of
		// the spec did (no thresholds: any quarantined row fails).
		if v.dryRun && !dt.GetOk() && len(dt.GetProblems()) == 0 && !anyFailed(g.checks) {
			g.checks = append(g.checks, check{name: "rows", failed: true,
				message: fmt.Sprintf("%d of %d rows would be quarantined", dt.GetCounts().GetQuarantined(), dt.GetCounts().GetExtracted())})
		}
		out = append(out, g)
	}
	job := group{name: jobGroup, class: v.class(jobGroup)}
	var spec []*orchestratorv1.Problem
	for _, p := range res.GetProblems() {
		if !(v.dryRun && thresholdField.MatchString(p.GetField())) {
			spec = append(spec, p)
		}
	}
	job.checks = append(job.checks, problemsCheck("spec", spec))
	if v.dryRun {
		if c, ok := v.thresholdCheck(""); ok {
			job.checks = append(job.checks, c)
		}
	}
	return append(out, job)
}

func anyFailed(cs []check) bool {
	for _, c := range cs {
		if c.failed {
			return true
		}
	}
	return false
}

// ruleChecks gives one check per rule of the table spec, then one per
// stage rule (cast, ragged_row, …) that rows broke. Rows an error rule
// quarantines fail it, unless the spec has thresholds: they decide then,
// as they do for the job.
func (v *validation) ruleChecks(dt *orchestratorv1.DryRunTable) []check {
	type outcome struct{ errs, warns *orchestratorv1.RuleOutcome }
	byName := map[string]*outcome{}
	var names []string
	add := func(name string) *outcome {
		o := byName[name]
		if o == nil {
			o = &outcome{}
			byName[name] = o
			names = append(names, name)
		}
		return o
	}
	wide := map[string]bool{}
	if t := v.tableSpec(dt.GetTable()); t != nil {
		for _, r := range t.GetRules() {
			n := ruleName(r)
			if _, seen := byName[n]; !seen {
				wide[n] = jobWide(r)
			} else if !jobWide(r) {
				wide[n] = false
			}
			add(n)
		}
	}
	for _, ro := range dt.GetRules() {
		o := add(ro.GetRule())
		if ro.GetSeverity() == "warn" {
			o.warns = ro
		} else {
			o.errs = ro
		}
	}
	thresholds := len(v.spec.GetThresholds()) > 0
	var out []check
	for _, n := range names {
		o := byName[n]
		c := check{name: "rule " + n}
		switch {
		case o.errs != nil && o.errs.GetRows() > 0:
			c.message = fmt.Sprintf("%s quarantined by rule %s", plural(o.errs.GetRows(), "row"), n)
			if thresholds {
				c.message += " (the spec's thresholds decide)"
			} else {
				c.failed = true
			}
			c.detail = append(c.detail, exampleLines(o.errs)...)
		case o.warns == nil && wide[n]:
			c.skipped = "checked when a job runs: it needs all of the job's rows in the target"
		}
		if o.warns != nil && o.warns.GetRows() > 0 {
			note := fmt.Sprintf("%s would load with a warning from rule %s", plural(o.warns.GetRows(), "row"), n)
			if c.message == "" {
				c.message = note
			} else {
				c.detail = append(c.detail, note)
			}
			c.detail = append(c.detail, exampleLines(o.warns)...)
		}
		out = append(out, c)
	}
	return out
}

func exampleLines(ro *orchestratorv1.RuleOutcome) []string {
	var out []string
	for _, e := range ro.GetExamples() {
		out = append(out, exampleText(e))
	}
	return out
}

func exampleText(e *orchestratorv1.RejectExample) string {
	s := e.GetSourceRef()
	if e.GetColumn() != "" {
		s += ", column " + e.GetColumn()
	}
	s += ": " + reasonText(e)
	if e.GetRaw() != "" {
		s += fmt.Sprintf(" (raw %q)", clip(e.GetRaw(), 80))
	}
	return oneLine(s)
}

// filterCheck is informational: it never fails.
func (v *validation) filterCheck(dt *orchestratorv1.DryRunTable) (check, bool) {
	t := v.tableSpec(dt.GetTable())
	if len(t.GetFilters()) == 0 && len(dt.GetFiltered()) == 0 {
		return check{}, false
	}
	c := check{name: "filters", message: fmt.Sprintf("%s would be left out by filters", plural(dt.GetCounts().GetFiltered(), "row"))}
	for _, f := range dt.GetFiltered() {
		c.detail = append(c.detail, fmt.Sprintf("%s: %d", f.GetReason(), f.GetCount()))
	}
	return c, true
}

// thresholdCheck covers the thresholds scoped to table ("" = the job).
func (v *validation) thresholdCheck(table string) (check, bool) {
	var scoped []string
	for k, th := range v.spec.GetThresholds() {
		if th.GetTable() == table {
			scoped = append(scoped, fmt.Sprintf("thresholds[%d]", k))
		}
	}
	if len(scoped) == 0 {
		return check{}, false
	}
	var hit []*orchestratorv1.Problem
	for _, p := range v.res.GetProblems() {
		if thresholdField.MatchString(p.GetField()) && p.GetTable() == table {
			hit = append(hit, p)
		}
	}
	c := problemsCheck("thresholds", hit)
	if !c.failed {
		c.message = "within " + strings.Join(scoped, ", ")
	}
	return c, true
}

// groups of a reconciliation: one per target table.
func (r *reconciliation) groups() []group {
	var out []group
	for _, t := range r.rec.GetTables() {
		g := group{name: t.GetTargetTable(), class: "reconcile." + t.GetTargetTable()}
		counts := check{name: "counts", message: fmt.Sprintf("expected %d rows, target has %d", t.GetExpectedRows(), t.GetTargetRows())}
		counts.failed = t.GetExpectedRows() != t.GetTargetRows()
		g.checks = append(g.checks, counts)
		for _, a := range t.GetAggregates() {
			g.checks = append(g.checks, aggregateCheck("aggregate ", a))
		}
		if rc := t.GetRows(); rc != nil {
			g.checks = append(g.checks, rowCheck(rc))
		}
		if ind := t.GetIndependent(); ind != nil {
			g.checks = append(g.checks, independentChecks(ind)...)
		}
		// The server's verdict wins: a table it failed fails here too.
		if !t.GetOk() && !anyFailed(g.checks) {
			g.checks = append(g.checks, check{name: "table", failed: true, message: "the reconciliation of " + t.GetTargetTable() + " failed"})
		}
		out = append(out, g)
	}
	return out
}

// rowCheck is the row-level comparison; skipped (e.g. a staged table) is
// not a failure.
func rowCheck(rc *commonv1.RowCheck) check {
	c := check{name: "rows", failed: !rc.GetOk() && rc.GetSkipped() == "", skipped: rc.GetSkipped(),
		message: fmt.Sprintf("%d rows in %d key ranges, %d ranges differ, %d differing keys listed",
			rc.GetRows(), rc.GetRanges(), rc.GetRangesDiffering(), len(rc.GetDifferences()))}
	if rc.GetTruncated() {
		c.message += " (more not listed)"
	}
	c.detail = rowDetails(rc.GetDifferences())
	return c
}

// groupsDiffering counts the groups among an aggregate's differences,
// which are per group and measure.
func groupsDiffering(a *commonv1.AggregateCheck) int {
	seen := map[string]bool{}
	for _, d := range a.GetDifferences() {
		seen[strings.Join(d.GetGroup(), "\x00")] = true
	}
	return len(seen)
}

// reasonText is the example's reason without the source reference or
// column it may start with, which the report shows beside it.
func reasonText(e *orchestratorv1.RejectExample) string {
	r := e.GetReason()
	if ref := e.GetSourceRef(); ref != "" {
		r = strings.TrimPrefix(r, ref+": ")
	}
	if col := e.GetColumn(); col != "" {
		r = strings.TrimPrefix(r, "column "+col+": ")
	}
	return r
}

// plural is "1 row", "2 rows".
func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// clip shortens s to n runes.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// independentChecks are the checks of the independent level: rows, each
// total, and each warning (a skipped check: CI sees what was not compared,
// and --fail-on-warning fails on it).
func independentChecks(ind *commonv1.IndependentCheck) []check {
	var out []check
	rows := check{name: "independent rows",
		message: fmt.Sprintf("source %d rows, target %d; %d of %d key buckets differ, %d differing keys listed; compared: %s",
			ind.GetSourceRows(), ind.GetTargetRows(), ind.GetBucketsDiffering(), ind.GetBuckets(), len(ind.GetDifferences()), strings.Join(ind.GetComparedColumns(), ", "))}
	rows.failed = ind.GetSourceRows() != ind.GetTargetRows() && ind.GetRowsSkipped() == "" || ind.GetBucketsDiffering() > 0 || len(ind.GetDifferences()) > 0
	if !rows.failed {
		rows.skipped = ind.GetRowsSkipped() // a failure shows as one, not as a skip
	}
	if ind.GetTruncated() {
		rows.message += " (more not listed)"
	}
	rows.detail = rowDetails(ind.GetDifferences())
	out = append(out, rows)
	for _, a := range ind.GetTotals() {
		out = append(out, aggregateCheck("independent total ", a))
	}
	for _, w := range ind.GetWarnings() {
		out = append(out, check{name: "warning", skipped: w})
	}
	return out
}

// aggregateCheck is one aggregate's check, each differing group a line.
func aggregateCheck(prefix string, a *commonv1.AggregateCheck) check {
	c := check{name: prefix + a.GetName(), failed: !a.GetOk(),
		message: fmt.Sprintf("%d groups compared, %d differ", a.GetGroups(), groupsDiffering(a))}
	for _, d := range a.GetDifferences() {
		c.detail = append(c.detail, oneLine(fmt.Sprintf("group [%s] %s: source %s, target %s",
			strings.Join(d.GetGroup(), ", "), d.GetMeasure(), d.GetSource(), d.GetTarget())))
	}
	return c
}

// rowDetails is one line per differing key, with both sides.
func rowDetails(ds []*commonv1.RowDifference) []string {
	var out []string
	for _, d := range ds {
		out = append(out, oneLine(fmt.Sprintf("%s %s: source %s, target %s", d.GetKind(), d.GetKey(), orNone(d.GetSource()), orNone(d.GetTarget()))))
	}
	return out
}
