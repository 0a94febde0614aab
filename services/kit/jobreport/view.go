// Package jobreport renders a job's report (cutover.orchestrator.v1.JobReport)
// for people: as Markdown (a pull-request comment, a wiki page) and as one
// self-contained HTML page. Both show the same facts as the plain-text
// report: accounting, volume per table, rejects by rule with examples,
// filters, dedupe and merges, stage timings, reconciliation, DDL, spec hash
// and trace id. Every string that comes from data or from the spec is
// untrusted: it is cleaned of control characters, long values are cut with
// …, and each renderer escapes it so it cannot add structure to the page.
package jobreport

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Cell limits in runes: long enough for a reason or a raw value to be
// recognised, short enough to keep a table readable.
const (
	maxCell  = 160
	maxName  = 120
	maxError = 2000
)

// view is the report as it is shown, shared by both renderers so they say
// the same thing. Strings are cleaned and cut but not escaped.
type view struct {
	Icon       string
	State      string
	Title      string
	JobID      string
	Error      string
	Started    string
	Finished   string
	Duration   string
	RowsPerSec string

	Balanced   bool
	Accounting string
	Verdict    string
	Warned     int64

	// Merging shows the filtered and merged-away columns; ShowWarned the
	// warned one. Both only when they say something, like the text report.
	Merging    bool
	ShowWarned bool
	Tables     []tableRow
	Total      counts

	Rejects  []rejectRow
	Examples []exampleRow
	// Rules of severity warn: the rows were loaded.
	Warnings     []rejectRow
	WarnExamples []exampleRow
	Filtered     []filterRow
	Merges       []mergeRow
	Collisions   []collisionRow
	Stages       []stageRow
	Recon        *reconView
	Rollback     []rollbackRow
	DDL          []string
	DDLSummary   string

	SpecHash  string
	TraceID   string
	TraceSink string
}

type counts struct {
	Extracted, Loaded, Quarantined, Filtered, MergedAway, Warned, Batches int64
}

type tableRow struct {
	Name, Source, Target string
	C                    counts
}

type rejectRow struct {
	Table, Rule string
	Count       int64
}

type exampleRow struct {
	Table, Rule, SourceRef, Column, Reason, Raw string
}

type filterRow struct {
	Table, Reason string
	Count         int64
}

type mergeRow struct {
	Target                 string
	MergedAway             int64
	ByKey                  string
	Filled, UnresolvedRefs int64
}

type collisionRow struct {
	Target, Column, Rule, Examples string
	Keys, Rows                     int64
}

type stageRow struct {
	Stage                  string
	Batches                int64
	Seconds, PerBatch, Max string
}

type reconView struct {
	OK       bool
	Icon     string
	Duration string
	Summary  string
	Tables   []reconTable
}

type reconTable struct {
	Target, Tables       string
	OK                   bool
	Icon                 string
	Expected, TargetRows int64
	Aggregates           []aggRow
	GroupDiffs           []groupDiff
	Rows                 *rowCheck
	// Warnings: what the independent level could not compare.
	Warnings []string
}

type aggRow struct {
	Name   string
	OK     bool
	Icon   string
	Groups int64
	Diffs  int
}

type groupDiff struct {
	Check, Group, Measure, Source, Target string
}

type rowCheck struct {
	OK                            bool
	Icon                          string
	Rows, Ranges, RangesDiffering int64
	Skipped                       string
	Diffs                         []rowDiff
	Truncated                     bool
}

type rowDiff struct {
	Key, Kind, Source, Target string
}

var errNilReport = errors.New("jobreport: no report to render")

func mark(ok bool) string {
	if ok {
		return "✅"
	}
	return "❌"
}

// build turns a report into its view. It reads the same fields, and
// judges the accounting the same way, as orchestrate.FormatReport.
func build(r *orchestratorv1.JobReport) (*view, error) {
	if r == nil {
		return nil, errNilReport
	}
	v := &view{
		State:     strings.TrimPrefix(r.GetState().String(), "JOB_STATE_"),
		JobID:     clip(r.GetJobId(), maxName),
		Error:     clip(r.GetError(), maxError),
		Started:   stamp(r.GetStartedAt()),
		Finished:  stamp(r.GetFinishedAt()),
		SpecHash:  clip(r.GetSpecHash(), maxName),
		TraceID:   clip(r.GetTraceId(), maxName),
		TraceSink: clip(r.GetTraceSink(), maxCell),
	}
	// A heading is one line in both forms.
	v.Title = strings.ReplaceAll(clip(r.GetName(), maxName), "\n", " ↵ ")
	if v.Title == "" {
		v.Title = "job " + v.JobID
	}
	if r.GetStartedAt() != nil {
		v.Duration = seconds(r.GetDurationSeconds())
		v.RowsPerSec = fmt.Sprintf("%.0f", r.GetRowsPerSecond())
	}

	c := r.GetTotals()
	v.Total = countsOf(r.GetTotals())
	v.Merging = c.GetFiltered() > 0 || c.GetMergedAway() > 0 || len(r.GetMerges()) > 0
	sum := c.GetLoaded() + c.GetQuarantined() + c.GetFiltered() + c.GetMergedAway()
	v.Balanced = r.GetBalanced() && c.GetExtracted() == sum
	v.Verdict = "NOT BALANCED"
	if v.Balanced {
		v.Verdict = "balanced"
	}
	if v.Merging {
		v.Accounting = fmt.Sprintf("extracted %d = loaded %d + quarantined %d + filtered %d + merged away %d",
			c.GetExtracted(), c.GetLoaded(), c.GetQuarantined(), c.GetFiltered(), c.GetMergedAway())
	} else {
		v.Accounting = fmt.Sprintf("extracted %d = loaded %d + quarantined %d", c.GetExtracted(), c.GetLoaded(), c.GetQuarantined())
	}
	v.Warned = c.GetWarned()
	switch r.GetState() {
	case orchestratorv1.JobState_JOB_STATE_SUCCEEDED:
		v.Icon = mark(v.Balanced)
	case orchestratorv1.JobState_JOB_STATE_PENDING, orchestratorv1.JobState_JOB_STATE_RUNNING:
		v.Icon = "⏳"
	default:
		v.Icon = "❌"
	}

	for _, t := range r.GetTables() {
		tc := countsOf(t.GetCounts())
		if tc.Warned > 0 {
			v.ShowWarned = true
		}
		name := clip(t.GetName(), maxName)
		v.Tables = append(v.Tables, tableRow{Name: name, Source: clip(t.GetSource(), maxName), Target: clip(t.GetTargetTable(), maxName), C: tc})
		v.Rejects, v.Examples = byRule(v.Rejects, v.Examples, name, t.GetRejects())
		v.Warnings, v.WarnExamples = byRule(v.Warnings, v.WarnExamples, name, t.GetWarnings())
		for _, f := range t.GetFiltered() {
			v.Filtered = append(v.Filtered, filterRow{Table: name, Reason: clip(f.GetReason(), maxCell), Count: f.GetCount()})
		}
	}
	if v.Total.Warned > 0 {
		v.ShowWarned = true
	}

	for _, m := range r.GetMerges() {
		target := clip(m.GetTargetTable(), maxName)
		var keys []string
		for _, bk := range m.GetByKey() {
			keys = append(keys, fmt.Sprintf("%s %d", bk.GetKey(), bk.GetRows()))
		}
		v.Merges = append(v.Merges, mergeRow{Target: target, MergedAway: m.GetMergedAway(), ByKey: clip(strings.Join(keys, ", "), maxCell),
			Filled: m.GetFilledFields(), UnresolvedRefs: m.GetUnresolvedRefs()})
		for _, cc := range m.GetCollisions() {
			v.Collisions = append(v.Collisions, collisionRow{Target: target, Column: clip(cc.GetColumn(), maxName),
				Rule:     strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(cc.GetRule().String(), "COLLISION_RULE_")), "_", " "),
				Examples: clip(strings.Join(cc.GetExamples(), ", "), maxCell), Keys: cc.GetKeys(), Rows: cc.GetRows()})
		}
	}

	for _, s := range r.GetStages() {
		row := stageRow{Stage: clip(s.GetStage(), maxName), Batches: s.GetBatches(), Seconds: seconds(s.GetSeconds()), Max: seconds(s.GetMaxBatchSeconds())}
		if s.GetBatches() > 0 {
			row.PerBatch = seconds(s.GetSeconds() / float64(s.GetBatches()))
		}
		v.Stages = append(v.Stages, row)
	}

	if rc := r.GetReconciliation(); rc != nil {
		v.Recon = reconOf(rc)
	}
	for _, t := range r.GetRollback() {
		v.Rollback = append(v.Rollback, rollbackRow{Table: clip(t.GetTable(), maxName), Deleted: t.GetDeleted(), Restored: t.GetRestored(), FromBackup: t.GetFromBackup()})
	}
	for _, d := range r.GetDdl() {
		// DDL is cutover's own statements; shown whole, only cleaned.
		v.DDL = append(v.DDL, clean(d))
	}
	v.DDLSummary = plural(int64(len(v.DDL)), "statement") + " run on the target"
	return v, nil
}

// byRule appends one table's rules and their examples.
func byRule(rows []rejectRow, examples []exampleRow, table string, rules []*orchestratorv1.RuleRejects) ([]rejectRow, []exampleRow) {
	for _, rr := range rules {
		rule := clip(rr.GetRule(), maxName)
		rows = append(rows, rejectRow{Table: table, Rule: rule, Count: rr.GetCount()})
		for _, e := range rr.GetExamples() {
			// The loader prefixes reasons with the source reference, which
			// has its own column here.
			reason := strings.TrimPrefix(e.GetReason(), e.GetSourceRef()+": ")
			examples = append(examples, exampleRow{Table: table, Rule: rule, SourceRef: clip(e.GetSourceRef(), maxName),
				Column: clip(e.GetColumn(), maxName), Reason: clip(reason, maxCell), Raw: clip(e.GetRaw(), maxCell)})
		}
	}
	return rows, examples
}

func reconOf(rc *orchestratorv1.Reconciliation) *reconView {
	v := &reconView{OK: rc.GetOk(), Icon: mark(rc.GetOk()), Duration: seconds(rc.GetDurationSeconds())}
	for _, t := range rc.GetTables() {
		rt := reconTable{Target: clip(t.GetTargetTable(), maxName), Tables: clip(strings.Join(t.GetTables(), ", "), maxCell),
			OK: t.GetOk(), Icon: mark(t.GetOk()), Expected: t.GetExpectedRows(), TargetRows: t.GetTargetRows()}
		for _, a := range t.GetAggregates() {
			name := clip(a.GetName(), maxName)
			rt.Aggregates = append(rt.Aggregates, aggRow{Name: name, OK: a.GetOk(), Icon: mark(a.GetOk()), Groups: a.GetGroups(), Diffs: len(a.GetDifferences())})
			for _, d := range a.GetDifferences() {
				rt.GroupDiffs = append(rt.GroupDiffs, groupDiff{Check: name, Group: clip(strings.Join(d.GetGroup(), ", "), maxCell),
					Measure: clip(d.GetMeasure(), maxName), Source: clip(d.GetSource(), maxCell), Target: clip(d.GetTarget(), maxCell)})
			}
		}
		if ind := t.GetIndependent(); ind != nil {
			// The independent level in the same shapes: its totals, its
			// row check where no replay ran, and what it could not see.
			for _, a := range ind.GetTotals() {
				name := clip("independent "+a.GetName(), maxName)
				rt.Aggregates = append(rt.Aggregates, aggRow{Name: name, OK: a.GetOk(), Icon: mark(a.GetOk()), Groups: a.GetGroups(), Diffs: len(a.GetDifferences())})
				for _, d := range a.GetDifferences() {
					rt.GroupDiffs = append(rt.GroupDiffs, groupDiff{Check: name, Group: clip(strings.Join(d.GetGroup(), ", "), maxCell),
						Measure: clip(d.GetMeasure(), maxName), Source: clip(d.GetSource(), maxCell), Target: clip(d.GetTarget(), maxCell)})
				}
			}
			for _, w := range ind.GetWarnings() {
				rt.Warnings = append(rt.Warnings, clip(w, maxCell))
			}
			if t.GetRows() == nil {
				ok := ind.GetBucketsDiffering() == 0 && len(ind.GetDifferences()) == 0
				rc := &rowCheck{OK: ok, Icon: mark(ok), Rows: ind.GetSourceRows(), Ranges: ind.GetBuckets(),
					RangesDiffering: ind.GetBucketsDiffering(), Skipped: clip(ind.GetRowsSkipped(), maxCell), Truncated: ind.GetTruncated()}
				for _, d := range ind.GetDifferences() {
					rc.Diffs = append(rc.Diffs, rowDiff{Key: clip(d.GetKey(), maxCell), Kind: clip(d.GetKind(), maxName),
						Source: clip(d.GetSource(), maxCell), Target: clip(d.GetTarget(), maxCell)})
				}
				rt.Rows = rc
			}
		}
		if rows := t.GetRows(); rows != nil {
			rc := &rowCheck{OK: rows.GetOk(), Icon: mark(rows.GetOk()), Rows: rows.GetRows(), Ranges: rows.GetRanges(),
				RangesDiffering: rows.GetRangesDiffering(), Skipped: clip(rows.GetSkipped(), maxCell), Truncated: rows.GetTruncated()}
			for _, d := range rows.GetDifferences() {
				rc.Diffs = append(rc.Diffs, rowDiff{Key: clip(d.GetKey(), maxCell), Kind: clip(d.GetKind(), maxName),
					Source: clip(d.GetSource(), maxCell), Target: clip(d.GetTarget(), maxCell)})
			}
			rt.Rows = rc
		}
		v.Tables = append(v.Tables, rt)
	}
	v.Summary = fmt.Sprintf("%s reconciled in %s.", plural(int64(len(v.Tables)), "target table"), v.Duration)
	return v
}

func countsOf(c interface {
	GetExtracted() int64
	GetLoaded() int64
	GetQuarantined() int64
	GetFiltered() int64
	GetMergedAway() int64
	GetWarned() int64
	GetBatches() int64
}) counts {
	return counts{c.GetExtracted(), c.GetLoaded(), c.GetQuarantined(), c.GetFiltered(), c.GetMergedAway(), c.GetWarned(), c.GetBatches()}
}

func stamp(t *timestamppb.Timestamp) string {
	if t == nil {
		return ""
	}
	return t.AsTime().UTC().Format(time.DateTime) + " UTC"
}

// seconds shows stage and batch times readably from microseconds to hours.
func seconds(s float64) string {
	if s < 1 {
		return fmt.Sprintf("%.1f ms", s*1000)
	}
	return fmt.Sprintf("%.2f s", s)
}

// clean makes s valid UTF-8 with "\n" as the only line break, and
// replaces control and bidirectional-override characters (which could hide
// or reorder text on screen) with U+FFFD.
func clean(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch {
		case r == '\n':
			b.WriteRune(r)
		case r == '\t':
			b.WriteByte(' ')
		case unicode.IsControl(r), unicode.Is(unicode.Bidi_Control, r), r == '\u2028', r == '\u2029':
			b.WriteRune('\uFFFD')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// clip cleans s and cuts it to max runes, marking the cut with ….
func clip(s string, max int) string {
	s = clean(s)
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	n := 0
	for i := range s {
		if n == max-1 {
			return s[:i] + "…"
		}
		n++
	}
	return s
}

// rollbackRow is what RollbackJob undid in one target table.
type rollbackRow struct {
	Table             string
	Deleted, Restored int64
	FromBackup        bool
}
