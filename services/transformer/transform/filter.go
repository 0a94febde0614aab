package transform

import (
	"errors"
	"fmt"
	"strings"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
)

// filterPlan is one compiled RowFilter.
type filterPlan struct {
	expr   *exprPlan
	reason string // the reject reason of a row the filter leaves out
}

// compileFilter compiles filters[j]. Its `when` reads the row like a column
// expression and must give a bool; a type known at check time that is not
// bool is refused here, a dyn result is checked per row.
func compileFilter(j int, f *commonv1.RowFilter, sources map[string]bool) (filterPlan, error) {
	field := fmt.Sprintf("filters[%d].when", j)
	if strings.TrimSpace(f.GetWhen()) == "" {
		return filterPlan{}, &fieldError{field, "must not be empty", ErrInvalidMapping}
	}
	ep, err := compileExpr(f.GetWhen(), sources)
	if err != nil {
		kind := ErrInvalidMapping
		if errors.Is(err, ErrUnknownSourceColumn) {
			kind = ErrUnknownSourceColumn
		}
		return filterPlan{}, &fieldError{field, err.Error(), kind}
	}
	if out := ep.out; out != nil && !out.IsExactType(cel.BoolType) && !out.IsExactType(cel.DynType) {
		return filterPlan{}, &fieldError{field, fmt.Sprintf("gives %s, must give bool", out), ErrInvalidMapping}
	}
	reason := f.GetReason()
	if reason == "" {
		reason = "filter: " + f.GetWhen()
	}
	return filterPlan{expr: ep, reason: reason}, nil
}

// applyFilters evaluates the filters on every row not yet rejected, in
// order; the first that holds rejects the row (stage "filter"), and a filter
// that fails or gives no bool quarantines it (rule filter_error), as does
// one that reads a value the change left out (rule unchanged_value). Either
// way the row's bit is set in rejected so that no column reports it again:
// a row is never both filtered and quarantined.
func (p *plan) applyFilters(in *commonv1.Batch, byName map[string]*commonv1.Column, rejected []byte) ([]byte, []*commonv1.Reject, error) {
	if len(p.filters) == 0 {
		return rejected, nil, nil
	}
	acts := make([]*rowActivation, len(p.filters))
	unchanged := make([][]*commonv1.Column, len(p.filters))
	for j := range p.filters {
		act, err := p.filters[j].expr.activation(fmt.Sprintf("filters[%d].when", j), in, byName)
		if err != nil {
			return nil, nil, err
		}
		acts[j] = act
		unchanged[j] = batch.UnchangedRead(in, p.filters[j].expr.reads)
	}
	var rejects []*commonv1.Reject
	for i := range int(in.GetNumRows()) {
		if batch.Bit(rejected, i) {
			continue
		}
		for j := range p.filters {
			// Whether the filter holds is unknown without the value: the
			// row is quarantined rather than guessed in or out.
			if c := batch.FirstUnchanged(unchanged[j], i); c != nil {
				name := c.GetName()
				rejected = batch.SetBit(rejected, i)
				rejects = append(rejects, &commonv1.Reject{Row: int32(i), Stage: "transform", Rule: ruleUnchanged,
					Reason: fmt.Sprintf("filters[%d] reads %s", j, unchangedReason(name))})
				break
			}
			act := acts[j]
			act.i, act.row = i, nil
			v, _, err := p.filters[j].expr.prg.Eval(act)
			hold, err := filterResult(v, err)
			if err != nil {
				rejected = batch.SetBit(rejected, i)
				rejects = append(rejects, &commonv1.Reject{Row: int32(i), Stage: "transform", Rule: "filter_error",
					Reason: fmt.Sprintf("filters[%d]: %v", j, err), Raw: batch.SafeRaw([]byte(batch.RowText(in, i)))})
				break
			}
			if hold {
				rejected = batch.SetBit(rejected, i)
				rejects = append(rejects, &commonv1.Reject{Row: int32(i), Stage: "filter", Rule: "filter", Reason: p.filters[j].reason})
				break
			}
		}
	}
	return rejected, rejects, nil
}

// filterResult is whether a filter holds; a null result (a NULL column read
// directly) is not a bool and so an error, not a silent false.
func filterResult(v ref.Val, err error) (bool, error) {
	if err == nil && types.IsError(v) {
		err = v.(*types.Err)
	}
	if err != nil {
		return false, err
	}
	b, ok := v.(types.Bool)
	if !ok {
		return false, fmt.Errorf("gives %s, must give bool", v.Type().(ref.Type).TypeName())
	}
	return bool(b), nil
}
