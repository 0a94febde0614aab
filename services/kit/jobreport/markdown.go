package jobreport

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
)

// Markdown writes r as GitHub-flavoured Markdown. Text from the report only
// ever appears inline (after a fixed prefix, in a table cell, in <code>)
// escaped by esc, or inside a <pre> block escaped by pre. No
// text reaches the page raw, so no dialect can read markup into it: some
// (Python-Markdown, Markdown.pl) do not take a backslash before '<' as an
// escape, and some do not know fenced code.
func Markdown(w io.Writer, r *orchestratorv1.JobReport) error {
	v, err := build(r)
	if err != nil {
		return err
	}
	m := &mdWriter{w: w}
	m.render(v)
	if m.err != nil {
		return fmt.Errorf("jobreport: write markdown: %w", m.err)
	}
	return nil
}

type mdWriter struct {
	w   io.Writer
	err error
}

func (m *mdWriter) printf(format string, args ...any) {
	if m.err == nil {
		_, m.err = fmt.Fprintf(m.w, format, args...)
	}
}

func (m *mdWriter) render(v *view) {
	m.printf("# %s %s: %s\n\n", v.Icon, esc(v.Title), esc(v.State))
	meta := []string{"Job " + code(v.JobID)}
	if v.Started != "" {
		meta = append(meta, "started "+v.Started)
	}
	if v.Finished != "" {
		meta = append(meta, "finished "+v.Finished)
	}
	if v.Duration != "" {
		meta = append(meta, v.Duration, v.RowsPerSec+" rows/s")
	}
	m.printf("%s\n\n", strings.Join(meta, " · "))
	if v.Error != "" {
		m.printf("**Error:**\n\n%s\n", pre(v.Error))
	}
	m.printf("**Accounting:** %s: %s %s", v.Accounting, v.Verdict, mark(v.Balanced))
	if v.Warned > 0 {
		m.printf(" (%s loaded with a warning)", plural(v.Warned, "row"))
	}
	m.printf("\n\n")

	m.printf("## Volume per table\n\n")
	head := []string{"Table", "Source", "Target", "Extracted", "Loaded", "Quarantined"}
	if v.Merging {
		head = append(head, "Filtered", "Merged away")
	}
	if v.ShowWarned {
		head = append(head, "Warned")
	}
	head = append(head, "Batches")
	numbers := func(c counts, bold bool) []string {
		ns := []int64{c.Extracted, c.Loaded, c.Quarantined}
		if v.Merging {
			ns = append(ns, c.Filtered, c.MergedAway)
		}
		if v.ShowWarned {
			ns = append(ns, c.Warned)
		}
		ns = append(ns, c.Batches)
		var out []string
		for _, n := range ns {
			s := strconv.FormatInt(n, 10)
			if bold {
				s = "**" + s + "**"
			}
			out = append(out, s)
		}
		return out
	}
	var rows [][]string
	for _, t := range v.Tables {
		rows = append(rows, append([]string{esc(t.Name), esc(t.Source), esc(t.Target)}, numbers(t.C, false)...))
	}
	rows = append(rows, append([]string{"**Total**", "", ""}, numbers(v.Total, true)...))
	m.table(head, "lll", rows)

	m.byRule("Rejects by rule", "Rows", v.Rejects, v.Examples)
	m.byRule("Warnings by rule", "Rows loaded", v.Warnings, v.WarnExamples)
	if len(v.Filtered) > 0 {
		m.printf("## Filtered\n\n")
		rows = nil
		for _, f := range v.Filtered {
			rows = append(rows, []string{esc(f.Table), esc(f.Reason), num(f.Count)})
		}
		m.table([]string{"Table", "Reason", "Rows"}, "ll", rows)
	}
	if len(v.Merges) > 0 {
		m.printf("## Dedupe and merges\n\n")
		rows = nil
		for _, g := range v.Merges {
			rows = append(rows, []string{esc(g.Target), num(g.MergedAway), esc(g.ByKey), num(g.Filled), num(g.UnresolvedRefs)})
		}
		m.table([]string{"Target", "Merged away", "By match key", "Fields filled", "Unresolved references"}, "lrlrr", rows)
	}
	if len(v.Collisions) > 0 {
		m.printf("## Key collisions\n\n")
		rows = nil
		for _, c := range v.Collisions {
			rows = append(rows, []string{esc(c.Target), esc(c.Column), num(c.Keys), num(c.Rows), esc(c.Rule), esc(c.Examples)})
		}
		m.table([]string{"Target", "Column", "Keys", "Rows", "Resolved by", "Examples"}, "llrrll", rows)
	}
	if len(v.Stages) > 0 {
		m.printf("## Stage timings\n\n")
		rows = nil
		for _, s := range v.Stages {
			rows = append(rows, []string{esc(s.Stage), num(s.Batches), s.Seconds, s.PerBatch, s.Max})
		}
		m.table([]string{"Stage", "Batches", "Total", "Per batch", "Slowest batch"}, "l", rows)
	}
	if rc := v.Recon; rc != nil {
		m.renderRecon(rc)
	}
	if len(v.Rollback) > 0 {
		m.printf("## Rolled back\n\n")
		rows = nil
		for _, t := range v.Rollback {
			from := "no"
			if t.FromBackup {
				from = "yes"
			}
			rows = append(rows, []string{esc(t.Table), num(t.Deleted), num(t.Restored), from})
		}
		m.table([]string{"Target", "Inserted rows removed", "Updated rows restored", "From backup"}, "lrrl", rows)
	}
	if len(v.DDL) > 0 {
		var b strings.Builder
		for i, d := range v.DDL {
			if i > 0 {
				b.WriteString("\n\n")
			}
			b.WriteString(d + ";")
		}
		m.printf("## DDL\n\n<details>\n<summary>%s</summary>\n\n%s\n</details>\n\n", esc(v.DDLSummary), pre(b.String()))
	}
	m.printf("---\n\n")
	if v.SpecHash != "" {
		m.printf("Spec: sha256 %s  \n", code(v.SpecHash))
	}
	m.printf("Trace: %s", code(v.TraceID))
	if v.TraceSink != "" {
		m.printf(" (spans in %s)", code(v.TraceSink))
	}
	m.printf("\n")
}

func (m *mdWriter) byRule(title, count string, rules []rejectRow, examples []exampleRow) {
	if len(rules) == 0 {
		return
	}
	m.printf("## %s\n\n", title)
	var rows [][]string
	for _, r := range rules {
		rows = append(rows, []string{esc(r.Table), esc(r.Rule), num(r.Count)})
	}
	m.table([]string{"Table", "Rule", count}, "ll", rows)
	if len(examples) == 0 {
		return
	}
	m.printf("Examples:\n\n")
	rows = nil
	for _, e := range examples {
		rows = append(rows, []string{esc(e.Table), esc(e.Rule), esc(e.SourceRef), esc(e.Column), esc(e.Reason), esc(e.Raw)})
	}
	m.table([]string{"Table", "Rule", "Source row", "Column", "Reason", "Raw value"}, "llllll", rows)
}

func (m *mdWriter) renderRecon(rc *reconView) {
	m.printf("## Reconciliation %s\n\n", rc.Icon)
	m.printf("%s\n\n", rc.Summary)
	for _, t := range rc.Tables {
		m.printf("### %s %s\n\n", t.Icon, esc(t.Target))
		if t.Tables != "" {
			m.printf("From table specs: %s  \n", esc(t.Tables))
		}
		m.printf("Rows: expected %d, target holds %d %s\n\n", t.Expected, t.TargetRows, mark(t.Expected == t.TargetRows))
		if len(t.Aggregates) > 0 {
			var rows [][]string
			for _, a := range t.Aggregates {
				rows = append(rows, []string{esc(a.Name), num(a.Groups), strconv.Itoa(a.Diffs), a.Icon})
			}
			m.table([]string{"Aggregate", "Groups", "Differing", "OK"}, "l", rows)
		}
		if len(t.GroupDiffs) > 0 {
			var rows [][]string
			for _, d := range t.GroupDiffs {
				rows = append(rows, []string{esc(d.Check), esc(d.Group), esc(d.Measure), esc(d.Source), esc(d.Target)})
			}
			m.table([]string{"Aggregate", "Group", "Measure", "Source", "Target"}, "lllll", rows)
		}
		for _, w := range t.Warnings {
			m.printf("Warning: %s  \n", esc(w))
		}
		if len(t.Warnings) > 0 {
			m.printf("\n")
		}
		rows := t.Rows
		if rows == nil {
			continue
		}
		if rows.Skipped != "" {
			m.printf("Row check skipped: %s\n\n", esc(rows.Skipped))
			continue
		}
		m.printf("Row check %s: %s, %s hashed, %d differing\n\n", rows.Icon, plural(rows.Rows, "row"), plural(rows.Ranges, "key range"), rows.RangesDiffering)
		if len(rows.Diffs) > 0 {
			var cells [][]string
			for _, d := range rows.Diffs {
				cells = append(cells, []string{esc(d.Key), esc(d.Kind), esc(d.Source), esc(d.Target)})
			}
			m.table([]string{"Key", "Kind", "Source", "Target"}, "llll", cells)
		}
		if rows.Truncated {
			m.printf("More rows differ than are listed.\n\n")
		}
	}
}

// table writes a Markdown table. align has an 'r' for each column of
// numbers (aligned right) and an 'l' for the others; a short align leaves
// the rest numbers. Cells must be escaped already.
func (m *mdWriter) table(head []string, align string, rows [][]string) {
	m.printf("| %s |\n|", strings.Join(head, " | "))
	for i := range head {
		if i >= len(align) || align[i] == 'r' {
			m.printf("--:|")
		} else {
			m.printf("---|")
		}
	}
	m.printf("\n")
	for _, r := range rows {
		m.printf("| %s |\n", strings.Join(r, " | "))
	}
	m.printf("\n")
}

// htmlEscaper turns the characters that could open a tag or an entity
// into entities, which every Markdown dialect and every browser shows as
// the character itself, in running text and inside raw HTML blocks alike.
// Text never stands inside an attribute, so quotes need nothing.
var htmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// mdEscaper backslash-escapes every character that could start inline
// structure (emphasis, code, links and images, table cells,
// strikethrough, math), so report text always reads as plain text. Block
// structure (headings, lists, quotes) cannot start: report text is never
// at the start of a line. It runs after htmlEscaper, whose entities hold
// none of these characters.
var mdEscaper = func() *strings.Replacer {
	var pairs []string
	for _, c := range "\\`*_[]|~$" {
		pairs = append(pairs, string(c), `\`+string(c))
	}
	// A cell or a heading is one line: keep the break visible instead.
	pairs = append(pairs, "\n", " ↵ ")
	return strings.NewReplacer(pairs...)
}()

// esc is the one escaping of report text in the Markdown: in a table
// cell, a heading, after a label or in <code>.
func esc(s string) string {
	return mdEscaper.Replace(htmlEscaper.Replace(s))
}

// code shows s in monospace. A Markdown code span would show s raw, which
// is safe only where the reader is CommonMark; inline <code> takes the
// same escaping as any other text.
func code(s string) string {
	if s == "" {
		return "—"
	}
	return "<code>" + esc(s) + "</code>"
}

// preEscaper is htmlEscaper plus brackets as entities: should a reader
// parse Markdown inside raw HTML after all, no link or image can open.
// Emphasis and the like could at worst restyle the text, so they stay
// readable in the source.
var preEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "[", "&#91;", "]", "&#93;")

// pre shows multi-line text (an error, the DDL) as it is, line breaks
// kept. A <pre> block is raw HTML in every dialect and, in CommonMark,
// ends only at "</pre>", which the escaped text cannot hold; blank lines
// inside do not end it. A browser shows the entities as the characters.
func pre(s string) string {
	return "<pre>\n" + preEscaper.Replace(s) + "\n</pre>\n"
}

func num(n int64) string { return strconv.FormatInt(n, 10) }

func plural(n int64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
