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
	"github.com/cutover/cutover/services/orchestrator/jobspec"
	"github.com/cutover/cutover/services/orchestrator/jobstore"
	"github.com/cutover/cutover/services/orchestrator/stages"
	"google.golang.org/protobuf/encoding/protojson"
)

// buildReport assembles a job's report from stored facts only: partition
// counts from the control schema, rejects from the target's quarantine.
func (s *Service) buildReport(ctx context.Context, j *jobstore.Job) (*orchestratorv1.JobReport, error) {
	parts, err := s.store.Partitions(ctx, j.ID)
	if err != nil {
		return nil, err
	}
	r := &orchestratorv1.JobReport{
		JobId: j.ID, Name: j.Name, State: jobstore.JobState(j.State), Error: j.ErrText,
		TraceId: j.TraceID, TraceSink: j.TraceSink, Totals: &commonv1.Counts{}, Balanced: true,
		StartedAt: ts(j.Started), FinishedAt: ts(j.Finished), Ddl: j.DDL, SpecHash: j.SpecHash,
	}
	timings := map[string]*orchestratorv1.StageTiming{}
	byTable := map[string]*orchestratorv1.TableReport{}
	for _, t := range j.Spec.GetTables() {
		tr := &orchestratorv1.TableReport{Name: t.GetName(), Source: jobspec.SourceName(t),
			TargetTable: s.checker.Target(j.Spec).GetSchema() + "." + t.GetTargetTable(), Counts: &commonv1.Counts{}}
		byTable[t.GetName()] = tr
		r.Tables = append(r.Tables, tr)
	}
	for _, p := range parts {
		tr := byTable[p.Table]
		if tr == nil {
			continue
		}
		sumStageTimes(timings, p.Stages)
		addCounts(tr.Counts, p.Counts)
		tr.Counts.Batches += p.Counts.GetBatches()
		addCounts(r.Totals, p.Counts)
		r.Totals.Batches += p.Counts.GetBatches()
		if !stages.Balanced(p.Counts) {
			r.Balanced = false
		}
	}
	// Staged tables: rows merged away or quarantined when finalized leave
	// the loaded term; what remains must be what the loader inserted.
	order, _ := jobspec.FinalizeOrder(j.Spec) // the spec was checked at CreateJob
	for _, table := range order {
		f, ok := j.Finalized[table]
		if !ok {
			continue
		}
		mr := &orchestratorv1.MergeReport{TargetTable: s.checker.Target(j.Spec).GetSchema() + "." + table, ByKey: f.GetMerges(),
			FilledFields: f.GetFilledFields(), Collisions: f.GetCollisions(), UnresolvedRefs: f.GetUnresolvedRefs()}
		for _, o := range f.GetTables() {
			tr := byTable[o.GetTable()]
			if tr == nil {
				continue
			}
			applyFinalized(tr.Counts, o)
			applyFinalized(r.Totals, o)
			mr.MergedAway += o.GetMergedAway()
			if tr.Counts.GetLoaded() != o.GetLoaded() {
				r.Balanced = false
			}
		}
		r.Merges = append(r.Merges, mr)
	}
	for _, st := range stageOrder {
		if t := timings[st]; t != nil {
			r.Stages = append(r.Stages, t)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, stages.Wait)
	defer cancel()
	q, err := s.cfg.Clients.Loader.GetQuarantineSummary(ctx, &loaderv1.GetQuarantineSummaryRequest{Target: s.checker.Target(j.Spec), JobId: j.ID, Examples: 3})
	if err != nil {
		return nil, stages.Classify("loader", err)
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
	for _, g := range q.GetWarnings() {
		if tr := byTable[g.GetTable()]; tr != nil {
			rr := &orchestratorv1.RuleRejects{Rule: g.GetRule(), Count: g.GetCount()}
			for _, e := range g.GetExamples() {
				rr.Examples = append(rr.Examples, &orchestratorv1.RejectExample{SourceRef: e.GetSourceRef(), Column: e.GetColumn(), Reason: e.GetReason(), Raw: e.GetRaw()})
			}
			tr.Warnings = append(tr.Warnings, rr)
		}
	}
	for _, g := range q.GetFiltered() {
		if tr := byTable[g.GetTable()]; tr != nil {
			tr.Filtered = append(tr.Filtered, &orchestratorv1.FilterCount{Reason: g.GetRule(), Count: g.GetCount()})
		}
	}
	setTiming(r, j.Started, j.Finished)
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
	if r.GetState() == orchestratorv1.JobState_JOB_STATE_ROLLED_BACK {
		fmt.Fprintln(w, "rolled back: the target is as it was before the job")
		FormatRollback(w, r.GetRollback())
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	c := r.GetTotals()
	merging := c.GetFiltered() > 0 || c.GetMergedAway() > 0 || len(r.GetMerges()) > 0
	if merging {
		fmt.Fprintln(tw, "TABLE\tSOURCE\tTARGET\tEXTRACTED\tLOADED\tQUARANTINED\tFILTERED\tMERGED\tBATCHES")
		for _, t := range r.GetTables() {
			tc := t.GetCounts()
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\n", t.GetName(), t.GetSource(), t.GetTargetTable(),
				tc.GetExtracted(), tc.GetLoaded(), tc.GetQuarantined(), tc.GetFiltered(), tc.GetMergedAway(), tc.GetBatches())
		}
		fmt.Fprintf(tw, "TOTAL\t\t\t%d\t%d\t%d\t%d\t%d\t%d\n", c.GetExtracted(), c.GetLoaded(), c.GetQuarantined(), c.GetFiltered(), c.GetMergedAway(), c.GetBatches())
	} else {
		fmt.Fprintln(tw, "TABLE\tSOURCE\tTARGET\tEXTRACTED\tLOADED\tQUARANTINED\tBATCHES")
		for _, t := range r.GetTables() {
			tc := t.GetCounts()
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\n", t.GetName(), t.GetSource(), t.GetTargetTable(),
				tc.GetExtracted(), tc.GetLoaded(), tc.GetQuarantined(), tc.GetBatches())
		}
		fmt.Fprintf(tw, "TOTAL\t\t\t%d\t%d\t%d\t%d\n", c.GetExtracted(), c.GetLoaded(), c.GetQuarantined(), c.GetBatches())
	}
	tw.Flush()
	verdict := "balanced"
	sum := c.GetLoaded() + c.GetQuarantined() + c.GetFiltered() + c.GetMergedAway()
	if !r.GetBalanced() || c.GetExtracted() != sum {
		verdict = "NOT BALANCED"
	}
	if merging {
		fmt.Fprintf(w, "accounting: extracted %d = loaded %d + quarantined %d + filtered %d + merged away %d: %s\n",
			c.GetExtracted(), c.GetLoaded(), c.GetQuarantined(), c.GetFiltered(), c.GetMergedAway(), verdict)
	} else {
		fmt.Fprintf(w, "accounting: extracted %d = loaded %d + quarantined %d: %s\n", c.GetExtracted(), c.GetLoaded(), c.GetQuarantined(), verdict)
	}
	for _, m := range r.GetMerges() {
		if m.GetMergedAway() > 0 || len(m.GetByKey()) > 0 {
			var keys []string
			for _, bk := range m.GetByKey() {
				keys = append(keys, fmt.Sprintf("%s %d", bk.GetKey(), bk.GetRows()))
			}
			fmt.Fprintf(w, "dedupe %s: %s merged away (by %s); %s filled from merged rows\n", m.GetTargetTable(),
				jobspec.Plural(m.GetMergedAway(), "row"), strings.Join(keys, ", "), jobspec.Plural(m.GetFilledFields(), "field"))
		}
		if m.GetUnresolvedRefs() > 0 {
			fmt.Fprintf(w, "references %s: %s quarantined, naming a record no source has\n", m.GetTargetTable(), jobspec.Plural(m.GetUnresolvedRefs(), "row"))
		}
		for _, cc := range m.GetCollisions() {
			fmt.Fprintf(w, "key collisions %s.%s: %s in more than one system (%s), resolved by %s",
				m.GetTargetTable(), cc.GetColumn(), jobspec.Plural(cc.GetKeys(), "key"), jobspec.Plural(cc.GetRows(), "row"),
				strings.ToLower(strings.TrimPrefix(cc.GetRule().String(), "COLLISION_RULE_")))
			if len(cc.GetExamples()) > 0 {
				fmt.Fprintf(w, ": %s", strings.Join(cc.GetExamples(), ", "))
			}
			fmt.Fprintln(w)
		}
	}
	for _, t := range r.GetTables() {
		for _, wr := range t.GetWarnings() {
			fmt.Fprintf(w, "warnings %s / %s: %d (loaded)\n", t.GetName(), wr.GetRule(), wr.GetCount())
		}
	}
	for _, t := range r.GetTables() {
		for _, fc := range t.GetFiltered() {
			fmt.Fprintf(w, "filtered %s / %s: %d\n", t.GetName(), fc.GetReason(), fc.GetCount())
		}
	}
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
	if len(r.GetStages()) > 0 {
		fmt.Fprint(w, "time in stages (sum over batches, queueing included):")
		for k, st := range r.GetStages() {
			sep := ","
			if k == 0 {
				sep = ""
			}
			fmt.Fprintf(w, "%s %s %.2fs (max %.3fs)", sep, st.GetStage(), st.GetSeconds(), st.GetMaxBatchSeconds())
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "trace: %s (spans in %s)\n", r.GetTraceId(), r.GetTraceSink())
	if r.GetSpecHash() != "" {
		fmt.Fprintf(w, "spec: sha256 %s\n", r.GetSpecHash())
	}
}

// FormatRollback renders what RollbackJob did, a line per target table.
func FormatRollback(w io.Writer, tables []*loaderv1.TableRollback) {
	for _, t := range tables {
		from := ""
		if t.GetFromBackup() {
			from = " (from backup)"
		}
		fmt.Fprintf(w, "rolled back: %s: deleted %d, restored %d%s\n", t.GetTable(), t.GetDeleted(), t.GetRestored(), from)
	}
}

// followReport is the final report of a job whose followers all stopped,
// nil when it cannot be built (the full load's stays).
func (s *Service) followReport(ctx context.Context, j *jobstore.Job) []byte {
	r, err := s.buildReport(ctx, j)
	if err != nil {
		return nil
	}
	now := time.Now()
	r.State, r.FinishedAt = jobstore.JobState(jobstore.StateSucceeded), ts(&now)
	r.Ddl = j.DDL
	setTiming(r, j.Started, &now)
	data, _ := marshalReport(r)
	return data
}
