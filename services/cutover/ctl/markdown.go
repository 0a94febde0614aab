package ctl

import (
	"fmt"
	"io"
	"strings"

	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
)

// Markdown reports, short enough for a pull-request comment. Values from
// the data are escaped so a row cannot break a table or inject HTML.

const maxExamples = 3

func mark(ok bool) string {
	if ok {
		return "✅"
	}
	return "❌"
}

// cell makes s safe inside a table cell.
func cell(s string) string {
	s = oneLine(s)
	s = strings.NewReplacer(`\`, `\\`, "|", `\|`, "<", "&lt;", ">", "&gt;", "`", "'").Replace(s)
	return clip(s, 120)
}

// code makes s an inline code span that cannot be broken out of (not for
// table cells, where | would still split the cell).
func code(s string) string {
	s = oneLine(s)
	if s == "" {
		return "''"
	}
	fence := "`"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	pad := ""
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		pad = " "
	}
	return fence + pad + s + pad + fence
}

// text escapes running text (list items, headings).
func text(s string) string {
	return strings.NewReplacer("<", "&lt;", ">", "&gt;").Replace(oneLine(s))
}

func (v *validation) markdown(w io.Writer) {
	res := v.res
	what := "Spec check"
	if v.dryRun {
		what = "Dry run"
	}
	verdict := "passed"
	if !res.GetOk() {
		verdict = "failed"
	}
	title := what + " " + verdict
	if v.spec.GetName() != "" {
		title += ": " + v.spec.GetName()
	}
	fmt.Fprintf(w, "## %s %s\n\n", mark(res.GetOk()), text(title))
	scope := "spec checked against the live source and target schemas; no rows read"
	if v.dryRun {
		scope = "all source rows run through extractor, transformer and validator into nothing"
		if v.sample > 0 {
			scope = fmt.Sprintf("the first %d source rows of each table run through extractor, transformer and validator into nothing", v.sample)
		}
	}
	fmt.Fprintf(w, "Spec hash %s · %s.\n\n", code(res.GetSpecHash()), scope)

	fmt.Fprintln(w, "| table | ok | extracted | would load | quarantined | filtered | warned |")
	fmt.Fprintln(w, "|---|:-:|--:|--:|--:|--:|--:|")
	for _, dt := range res.GetTables() {
		c := dt.GetCounts()
		if v.dryRun {
			fmt.Fprintf(w, "| %s | %s | %d | %d | %d | %d | %d |\n", cell(dt.GetTable()), mark(dt.GetOk()),
				c.GetExtracted(), c.GetLoaded(), c.GetQuarantined(), c.GetFiltered(), c.GetWarned())
		} else {
			fmt.Fprintf(w, "| %s | %s | – | – | – | – | – |\n", cell(dt.GetTable()), mark(dt.GetOk()))
		}
	}
	fmt.Fprintln(w)

	if ps := res.GetProblems(); len(ps) > 0 {
		fmt.Fprintln(w, "### Problems of the job")
		fmt.Fprintln(w)
		writeProblems(w, ps)
	}
	for _, dt := range res.GetTables() {
		v.markdownTable(w, dt)
	}
}

func writeProblems(w io.Writer, ps []*orchestratorv1.Problem) {
	for _, p := range ps {
		line := "- "
		if p.GetField() != "" {
			line += code(p.GetField()) + ": "
		}
		line += text(p.GetMessage())
		if p.GetColumn() != "" {
			line += " (column " + code(p.GetColumn()) + ")"
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintln(w)
}

func (v *validation) markdownTable(w io.Writer, dt *orchestratorv1.DryRunTable) {
	interesting := len(dt.GetProblems()) > 0 || len(dt.GetRules()) > 0 || len(dt.GetFiltered()) > 0 || len(dt.GetRows()) > 0
	if !interesting {
		return
	}
	fmt.Fprintf(w, "### %s Table %s\n\n", mark(dt.GetOk()), code(dt.GetTable()))
	if ps := dt.GetProblems(); len(ps) > 0 {
		fmt.Fprintln(w, "Problems:")
		fmt.Fprintln(w)
		writeProblems(w, ps)
	}
	if rules := dt.GetRules(); len(rules) > 0 {
		fmt.Fprintln(w, "Rejects by rule:")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| rule | severity | rows | examples (source, column, reason) |")
		fmt.Fprintln(w, "|---|---|--:|---|")
		for _, r := range rules {
			var ex []string
			for i, e := range r.GetExamples() {
				if i == maxExamples {
					break
				}
				s := cell(e.GetSourceRef())
				if e.GetColumn() != "" {
					s += ", " + cell(e.GetColumn())
				}
				s += ": " + cell(reasonText(e))
				ex = append(ex, s)
			}
			fmt.Fprintf(w, "| %s | %s | %d | %s |\n", cell(r.GetRule()), cell(r.GetSeverity()), r.GetRows(), strings.Join(ex, "<br>"))
		}
		fmt.Fprintln(w)
	}
	if fs := dt.GetFiltered(); len(fs) > 0 {
		fmt.Fprintln(w, "Left out by filters:")
		fmt.Fprintln(w)
		for _, f := range fs {
			fmt.Fprintf(w, "- %s: %s\n", text(f.GetReason()), plural(f.GetCount(), "row"))
		}
		fmt.Fprintln(w)
	}
	if rows := dt.GetRows(); len(rows) > 0 && len(dt.GetColumns()) > 0 {
		fmt.Fprintf(w, "Sample of the rows that would load (%d):\n\n", len(rows))
		head := []string{"source"}
		for _, c := range dt.GetColumns() {
			head = append(head, cell(c))
		}
		fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat("---|", len(head)))
		for _, r := range rows {
			vals := []string{cell(r.GetSourceRef())}
			for _, val := range r.GetValues() {
				if val.GetNull() {
					vals = append(vals, "*null*")
				} else {
					vals = append(vals, cell(val.GetText()))
				}
			}
			fmt.Fprintf(w, "| %s |\n", strings.Join(vals, " | "))
		}
		fmt.Fprintln(w)
	}
}

func (r *reconciliation) markdown(w io.Writer) {
	rec := r.rec
	verdict := "passed"
	if !rec.GetOk() {
		verdict = "failed"
	}
	fmt.Fprintf(w, "## %s Reconciliation %s: job %s\n\n", mark(rec.GetOk()), verdict, code(rec.GetJobId()))
	fmt.Fprintf(w, "Source and target compared in %.1fs: counts, group totals and rows by hashed key ranges.\n\n", rec.GetDurationSeconds())
	fmt.Fprintln(w, "| target table | ok | table specs | expected rows | target rows | key ranges | ranges differing |")
	fmt.Fprintln(w, "|---|:-:|---|--:|--:|--:|--:|")
	for _, t := range rec.GetTables() {
		rc := t.GetRows()
		fmt.Fprintf(w, "| %s | %s | %s | %d | %d | %d | %d |\n", cell(t.GetTargetTable()), mark(t.GetOk()), cell(strings.Join(t.GetTables(), ", ")),
			t.GetExpectedRows(), t.GetTargetRows(), rc.GetRanges(), rc.GetRangesDiffering())
	}
	fmt.Fprintln(w)
	for _, t := range rec.GetTables() {
		fmt.Fprintf(w, "### %s %s\n\n", mark(t.GetOk()), code(t.GetTargetTable()))
		if t.GetExpectedRows() != t.GetTargetRows() {
			fmt.Fprintf(w, "- Counts differ: the job loaded %d rows, the target holds %d.\n", t.GetExpectedRows(), t.GetTargetRows())
		} else {
			fmt.Fprintf(w, "- Counts match: %d rows.\n", t.GetTargetRows())
		}
		for _, a := range t.GetAggregates() {
			fmt.Fprintf(w, "- %s Aggregate %s: %d groups, %d differ.\n", mark(a.GetOk()), code(a.GetName()), a.GetGroups(), groupsDiffering(a))
		}
		if s := t.GetRows().GetSkipped(); s != "" {
			fmt.Fprintf(w, "- Rows not compared: %s.\n", text(s))
		}
		if ind := t.GetIndependent(); ind != nil {
			fmt.Fprintf(w, "- %s Independent check (each database hashed its own rows): source %d rows, target %d; %d of %d key buckets differ.\n",
				mark(ind.GetOk()), ind.GetSourceRows(), ind.GetTargetRows(), ind.GetBucketsDiffering(), ind.GetBuckets())
			if cs := ind.GetComparedColumns(); len(cs) > 0 {
				fmt.Fprintf(w, "- Compared columns: %s.\n", text(strings.Join(cs, ", ")))
			}
			for _, a := range ind.GetTotals() {
				fmt.Fprintf(w, "- %s Total %s: %d groups, %d differ.\n", mark(a.GetOk()), code(a.GetName()), a.GetGroups(), groupsDiffering(a))
			}
			for _, warn := range ind.GetWarnings() {
				fmt.Fprintf(w, "- Warning: %s.\n", text(warn))
			}
			for _, d := range ind.GetDifferences() {
				fmt.Fprintf(w, "- Differs (%s) %s: source %s; target %s.\n", text(d.GetKind()), code(d.GetKey()), text(orNone(d.GetSource())), text(orNone(d.GetTarget())))
			}
		}
		fmt.Fprintln(w)
		for _, a := range t.GetAggregates() {
			if len(a.GetDifferences()) == 0 {
				continue
			}
			fmt.Fprintf(w, "Groups of %s whose totals differ:\n\n", code(a.GetName()))
			fmt.Fprintln(w, "| group | measure | source | target |")
			fmt.Fprintln(w, "|---|---|--:|--:|")
			for _, d := range a.GetDifferences() {
				fmt.Fprintf(w, "| %s | %s | %s | %s |\n", cell(strings.Join(d.GetGroup(), ", ")), cell(d.GetMeasure()), cell(d.GetSource()), cell(d.GetTarget()))
			}
			fmt.Fprintln(w)
		}
		if ds := t.GetRows().GetDifferences(); len(ds) > 0 {
			fmt.Fprintln(w, "Differing keys:")
			fmt.Fprintln(w)
			fmt.Fprintln(w, "| kind | key | source | target |")
			fmt.Fprintln(w, "|---|---|---|---|")
			for _, d := range ds {
				fmt.Fprintf(w, "| %s | %s | %s | %s |\n", cell(d.GetKind()), cell(d.GetKey()), cell(orNone(d.GetSource())), cell(orNone(d.GetTarget())))
			}
			if t.GetRows().GetTruncated() {
				fmt.Fprintln(w, "\nMore keys differ than are listed (raise `--max-differences`).")
			}
			fmt.Fprintln(w)
		}
	}
}
