package validation

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"github.com/cutover/cutover/services/orchestrator/jobspec"
	"github.com/cutover/cutover/services/orchestrator/stages"
)

// Server is ValidationService's checks: the orchestrator serves them,
// mapping their errors to statuses at its edge.
type Server struct{ ck *Checker }

// NewServer returns the checks over ck.
func NewServer(ck *Checker) *Server { return &Server{ck: ck} }

// ValidateSpec checks a spec against the live schemas without moving data
// or creating anything, and reports every problem it finds, not only the
// first. A stage it cannot reach is an error (Unavailable), not a problem.
func (v *Server) ValidateSpec(ctx context.Context, req *orchestratorv1.ValidateSpecRequest) (*orchestratorv1.ValidateSpecResponse, error) {
	c, err := v.ck.Check(ctx, req.GetSpec())
	if err != nil {
		return nil, err
	}
	resp := &orchestratorv1.ValidateSpecResponse{Problems: c.problems, Tables: c.tables, SpecHash: jobspec.Hash(req.GetSpec())}
	resp.Ok = c.allOK()
	return resp, nil
}

// Limits of a dry run's answer.
const (
	defaultSampleRows = 5
	maxSampleRows     = 100
	dryRunExamples    = 3
)

// DryRun checks the spec, then runs each table's rows (all, or the first
// sample) through extractor, transformer and validator into nothing. Checks
// that need the whole job in the target (dedupe, unique, references) are
// not part of it.
func (v *Server) DryRun(ctx context.Context, req *orchestratorv1.DryRunRequest) (*orchestratorv1.DryRunResponse, error) {
	ck := v.ck
	if req.GetSample() < 0 {
		return nil, jobspec.Invalid("sample", "must not be negative, got %d", req.GetSample())
	}
	rows := int(req.GetRows())
	switch {
	case rows < 0:
		return nil, jobspec.Invalid("rows", "must not be negative, got %d", rows)
	case rows == 0:
		rows = defaultSampleRows
	case rows > maxSampleRows:
		rows = maxSampleRows
	}
	c, err := ck.Check(ctx, req.GetSpec())
	if err != nil {
		return nil, err
	}
	resp := &orchestratorv1.DryRunResponse{Problems: c.problems, SpecHash: jobspec.Hash(req.GetSpec())}
	if c.spec == nil {
		return resp, nil
	}
	resp.Ok = len(c.problems) == 0
	var totals []*commonv1.Counts
	for i, t := range c.spec.GetTables() {
		dt := &orchestratorv1.DryRunTable{Table: t.GetName(), Ok: c.ok[i], Counts: &commonv1.Counts{}}
		if c.tables != nil {
			dt.Problems = c.tables[i].GetProblems()
		}
		resp.Tables = append(resp.Tables, dt)
		totals = append(totals, dt.Counts)
		if !c.ok[i] || c.sources[i] == nil {
			resp.Ok = false
			continue
		}
		if err := ck.dryRunTable(ctx, c.spec, t, req.GetSample(), rows, dt); err != nil {
			if !errors.Is(err, stages.ErrStageFatal) {
				return nil, err // an outage: the dry run could not be made
			}
			// A stage refused this table's rows: a problem of the
			// table, not a failed call, so CI sees a failed check.
			dt.Ok = false
			dt.Problems = append(dt.Problems, &orchestratorv1.Problem{Table: t.GetName(), Field: fmt.Sprintf("tables[%d]", i),
				Message: strings.TrimPrefix(err.Error(), stages.ErrStageFatal.Error()+": ")})
			resp.Ok = false
		}
	}
	// With thresholds, they decide; without, any quarantined row fails.
	if th := c.spec.GetThresholds(); len(th) > 0 {
		for _, p := range jobspec.DryRunThresholds(c.spec, resp.Tables) {
			resp.Problems = append(resp.Problems, p)
			resp.Ok = false
		}
	} else {
		for _, dt := range resp.Tables {
			if dt.GetCounts().GetQuarantined() > 0 {
				dt.Ok = false
				resp.Ok = false
			}
		}
	}
	for _, dt := range resp.Tables {
		if !dt.Ok {
			resp.Ok = false
		}
	}
	return resp, nil
}

// dryRunTable streams one table's source through transformer and
// validator, counting what would happen.
func (ck *Checker) dryRunTable(ctx context.Context, spec *commonv1.JobSpec, t *commonv1.TableSpec, sample int64, keep int, dt *orchestratorv1.DryRunTable) error {
	byRule := map[string]*orchestratorv1.RuleOutcome{}
	byReason := map[string]*orchestratorv1.FilterCount{}
	rd := stages.Read(ctx, spec, t, &extractorv1.ReadBatchRequest{JobId: "dry-run", PartitionId: t.GetName()})
	if sample > 0 && (rd.Read.BatchSize <= 0 || int64(rd.Read.BatchSize) > sample) {
		rd.Read.BatchSize = int32(min(sample, math.MaxInt32))
	}
	formats := newFormatTally()
	err := ck.Clients.PullValidatedFormats(ctx, t, rd, func(b *commonv1.Batch) error {
		rows := int(b.GetNumRows())
		if sample > 0 {
			left := sample - dt.Counts.Extracted
			if int64(b.GetNumRows()) > left {
				rows = int(left)
				b = batch.Select(b, rowsUpTo(rows))
			}
		}
		formats.add(b.GetFormatMatches(), rows)
		tallyDryRun(b, keep, dt, byRule, byReason)
		if sample > 0 && dt.Counts.Extracted >= sample {
			return errSampled
		}
		return nil
	})
	if err != nil && !errors.Is(err, errSampled) {
		return err
	}
	dt.Rules = sortedValues(byRule)
	dt.Filtered = sortedValues(byReason)
	if ps := formats.problems(spec, t); len(ps) > 0 {
		dt.Ok = false
		dt.Problems = append(dt.Problems, ps...)
	}
	return nil
}

// formatTally counts, per column mapping format, the sampled non-empty
// values the formats were tried on and those the format parses.
type formatTally struct {
	tried, matched map[[2]string]int
}

func newFormatTally() *formatTally {
	return &formatTally{tried: map[[2]string]int{}, matched: map[[2]string]int{}}
}

// add counts a batch's matches over its first rows rows (the sample's).
func (ft *formatTally) add(ms []*commonv1.FormatMatch, rows int) {
	for _, m := range ms {
		k := [2]string{m.GetColumn(), m.GetFormat()}
		for i := 0; i < rows; i++ {
			if batch.Bit(m.GetTried(), i) {
				ft.tried[k]++
			}
			if batch.Bit(m.GetMatched(), i) {
				ft.matched[k]++
			}
		}
	}
}

// problems names each declared format that parsed none of the sampled
// non-empty values it was tried on, in mapping order.
func (ft *formatTally) problems(spec *commonv1.JobSpec, t *commonv1.TableSpec) []*orchestratorv1.Problem {
	ti := 0
	for i, st := range spec.GetTables() {
		if st == t {
			ti = i
		}
	}
	var out []*orchestratorv1.Problem
	for k, m := range t.GetColumns() {
		for j, f := range m.GetFormats() {
			key := [2]string{m.GetTarget(), f}
			if n := ft.tried[key]; n > 0 && ft.matched[key] == 0 {
				out = append(out, &orchestratorv1.Problem{Table: t.GetName(), Column: m.GetTarget(),
					Field:   fmt.Sprintf("tables[%d].columns[%d].formats[%d]", ti, k, j),
					Message: fmt.Sprintf("table %s, column %s: format %q matched none of the %d sampled non-empty values", t.GetName(), m.GetTarget(), f, n)})
			}
		}
	}
	return out
}

// errSampled ends a dry run's pull once the sample is read.
var errSampled = errors.New("sample read")

// rowsUpTo is 0..n-1.
func rowsUpTo(n int) []int {
	rows := make([]int, n)
	for i := range rows {
		rows[i] = i
	}
	return rows
}

// drain reads a stream to its end (io.EOF) or first error.
func drain[T any](recv func() (T, error)) {
	for {
		if _, err := recv(); err != nil {
			return
		}
	}
}

// sortedValues returns m's values in key order.
func sortedValues[V any](m map[string]V) []V {
	out := make([]V, 0, len(m))
	for _, k := range sortedKeys(m) {
		out = append(out, m[k])
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// tallyDryRun adds one validated batch to the table's dry-run outcome.
func tallyDryRun(b *commonv1.Batch, keep int, dt *orchestratorv1.DryRunTable, byRule map[string]*orchestratorv1.RuleOutcome, byReason map[string]*orchestratorv1.FilterCount) {
	n := int(b.GetNumRows())
	dt.Counts.Extracted += int64(n)
	dt.Counts.Batches++
	var filtered, quarantined, warned []byte
	for _, r := range b.GetRejects() {
		row := int(r.GetRow())
		switch {
		case r.GetStage() == "filter":
			if !batch.Bit(filtered, row) {
				fc := byReason[r.GetReason()]
				if fc == nil {
					fc = &orchestratorv1.FilterCount{Reason: r.GetReason()}
					byReason[r.GetReason()] = fc
				}
				fc.Count++
			}
			filtered = batch.SetBit(filtered, row)
			continue
		case r.GetWarning():
			warned = batch.SetBit(warned, row)
		default:
			quarantined = batch.SetBit(quarantined, row)
		}
		sev := "error"
		if r.GetWarning() {
			sev = "warn"
		}
		key := sev + "\x00" + r.GetRule()
		ro := byRule[key]
		if ro == nil {
			ro = &orchestratorv1.RuleOutcome{Rule: r.GetRule(), Severity: sev}
			byRule[key] = ro
		}
		ro.Rows++
		if len(ro.Examples) < dryRunExamples {
			ro.Examples = append(ro.Examples, &orchestratorv1.RejectExample{SourceRef: batch.SourceRef(b, row), Column: r.GetColumn(), Reason: r.GetReason(), Raw: r.GetRaw()})
		}
	}
	if len(dt.Columns) == 0 {
		for _, c := range b.GetColumns() {
			if !strings.HasPrefix(c.GetName(), "__old__") {
				dt.Columns = append(dt.Columns, c.GetName())
			}
		}
	}
	for i := 0; i < n; i++ {
		switch {
		case batch.Bit(filtered, i):
			dt.Counts.Filtered++
		case batch.Bit(quarantined, i):
			dt.Counts.Quarantined++
		default:
			dt.Counts.Loaded++
			if batch.Bit(warned, i) {
				dt.Counts.Warned++
			}
			if len(dt.Rows) < keep {
				row := &orchestratorv1.SampleRow{SourceRef: batch.SourceRef(b, i)}
				for _, c := range b.GetColumns() {
					if strings.HasPrefix(c.GetName(), "__old__") {
						continue
					}
					text, ok := batch.Text(c, i)
					row.Values = append(row.Values, &orchestratorv1.NullableText{Null: !ok, Text: text})
				}
				dt.Rows = append(dt.Rows, row)
			}
		}
	}
}
