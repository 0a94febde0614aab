package orchestrate

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// buildReport assembles a job's report from stored facts only: partition
// counts from the control schema, rejects from the target's quarantine.
func (s *Service) buildReport(ctx context.Context, j *jobRow) (*orchestratorv1.JobReport, error) {
	parts, err := s.store.partitions(ctx, j.id)
	if err != nil {
		return nil, err
	}
	r := &orchestratorv1.JobReport{
		JobId: j.id, Name: j.name, State: jobState(j.state), Error: j.errText,
		TraceId: j.traceID, TraceSink: j.traceSink, Totals: &commonv1.Counts{}, Balanced: true,
		StartedAt: ts(j.started), FinishedAt: ts(j.finished), Ddl: j.ddl,
	}
	byTable := map[string]*orchestratorv1.TableReport{}
	for _, t := range j.spec.GetTables() {
		tr := &orchestratorv1.TableReport{Name: t.GetName(), Source: sourceName(t),
			TargetTable: s.target(j.spec).GetSchema() + "." + t.GetTargetTable(), Counts: &commonv1.Counts{}}
		byTable[t.GetName()] = tr
		r.Tables = append(r.Tables, tr)
	}
	for _, p := range parts {
		tr := byTable[p.table]
		if tr == nil {
			continue
		}
		addCounts(tr.Counts, p.counts)
		tr.Counts.Batches += p.counts.GetBatches()
		addCounts(r.Totals, p.counts)
		r.Totals.Batches += p.counts.GetBatches()
		if p.counts.GetExtracted() != p.counts.GetLoaded()+p.counts.GetQuarantined() {
			r.Balanced = false
		}
	}
	ctx, cancel := context.WithTimeout(ctx, stageWait)
	defer cancel()
	q, err := s.cfg.Clients.Loader.GetQuarantineSummary(ctx, &loaderv1.GetQuarantineSummaryRequest{Target: s.target(j.spec), JobId: j.id, Examples: 3})
	if err != nil {
		return nil, stageErr("loader", err)
	}
	for _, g := range q.GetGroups() {
		tr := byTable[g.GetTable()]
		if tr == nil {
			continue
		}
		rr := &orchestratorv1.RuleRejects{Rule: g.GetRule(), Count: g.GetCount()}
		for _, e := range g.GetExamples() {
			rr.Examples = append(rr.Examples, &orchestratorv1.RejectExample{SourceRef: e.GetSourceRef(), Column: e.GetColumn(), Reason: e.GetReason(), Raw: e.GetRaw()})
		}
		tr.Rejects = append(tr.Rejects, rr)
	}
	setTiming(r, j.started, j.finished)
	return r, nil
}

func setTiming(r *orchestratorv1.JobReport, started, finished *time.Time) {
	if started == nil {
		return
	}
	end := time.Now()
	if finished != nil {
		end = *finished
	}
	d := end.Sub(*started).Seconds()
	r.DurationSeconds = d
	if d > 0 {
		r.RowsPerSecond = float64(r.GetTotals().GetExtracted()) / d
	}
}

func marshalReport(r *orchestratorv1.JobReport) ([]byte, error) {
	return protojson.Marshal(r)
}

// FormatReport renders a report for people: counts per table, the
// accounting equation, rejects by rule with examples, timing and trace.
func FormatReport(w io.Writer, r *orchestratorv1.JobReport) {
	state := strings.TrimPrefix(r.GetState().String(), "JOB_STATE_")
	fmt.Fprintf(w, "job %s (%s): %s\n", r.GetJobId(), r.GetName(), state)
	if r.GetError() != "" {
		fmt.Fprintf(w, "error: %s\n", r.GetError())
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tSOURCE\tTARGET\tEXTRACTED\tLOADED\tQUARANTINED\tBATCHES")
	for _, t := range r.GetTables() {
		c := t.GetCounts()
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\n", t.GetName(), t.GetSource(), t.GetTargetTable(),
			c.GetExtracted(), c.GetLoaded(), c.GetQuarantined(), c.GetBatches())
	}
	c := r.GetTotals()
	fmt.Fprintf(tw, "TOTAL\t\t\t%d\t%d\t%d\t%d\n", c.GetExtracted(), c.GetLoaded(), c.GetQuarantined(), c.GetBatches())
	tw.Flush()
	verdict := "balanced"
	if !r.GetBalanced() || c.GetExtracted() != c.GetLoaded()+c.GetQuarantined() {
		verdict = "NOT BALANCED"
	}
	fmt.Fprintf(w, "accounting: extracted %d = loaded %d + quarantined %d: %s\n", c.GetExtracted(), c.GetLoaded(), c.GetQuarantined(), verdict)
	for _, t := range r.GetTables() {
		for _, rr := range t.GetRejects() {
			fmt.Fprintf(w, "rejects %s / %s: %d\n", t.GetName(), rr.GetRule(), rr.GetCount())
			for _, e := range rr.GetExamples() {
				fmt.Fprintf(w, "  - %s: %s\n", e.GetSourceRef(), strings.TrimPrefix(e.GetReason(), e.GetSourceRef()+": "))
			}
		}
	}
	if len(r.GetDdl()) > 0 {
		fmt.Fprintf(w, "DDL run on the target (%d statements):\n", len(r.GetDdl()))
		for _, st := range r.GetDdl() {
			fmt.Fprintf(w, "  %s;\n", strings.ReplaceAll(st, "\n", "\n  "))
		}
	}
	fmt.Fprintf(w, "duration: %.2fs, %.0f rows/s\n", r.GetDurationSeconds(), r.GetRowsPerSecond())
	fmt.Fprintf(w, "trace: %s (spans in %s)\n", r.GetTraceId(), r.GetTraceSink())
}
