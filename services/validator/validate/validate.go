package validate

import (
	"fmt"
	"math"
	"math/big"
	"regexp"
	"slices"
	"strings"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"github.com/cutover/cutover/services/kit/batch"
)

// rule is one compiled Rule.
type rule struct {
	field  string // "rules[i]", for errors
	column string
	kind   string // not_null, regex, range, one_of
	re     *regexp.Regexp
	set    map[string]struct{}
	values string // one_of values as printed in reasons
	rng    *commonv1.RangeRule
}

// Compiled is a rule set ready to run on many batches: regexes compiled
// and one_of sets built once. Range bounds are read per batch in the
// column's actual type, which the rules alone do not know.
type Compiled struct {
	rules []rule
}

// Compile prepares rules. It checks what it can without column types.
func Compile(rules []*commonv1.Rule) (*Compiled, error) {
	c := &Compiled{rules: make([]rule, 0, len(rules))}
	for i, r := range rules {
		field := fmt.Sprintf("rules[%d]", i)
		cr := rule{field: field, column: r.GetColumn()}
		if cr.column == "" {
			return nil, &fieldError{field + ".column", "must not be empty", ErrInvalidRule}
		}
		switch k := r.GetKind().(type) {
		case *commonv1.Rule_NotNull:
			cr.kind = "not_null"
		case *commonv1.Rule_Regex:
			cr.kind = "regex"
			re, err := regexp.Compile(k.Regex.GetPattern())
			if err != nil {
				return nil, &fieldError{field + ".regex.pattern", err.Error(), ErrInvalidRule}
			}
			cr.re = re
		case *commonv1.Rule_Range:
			cr.kind = "range"
			cr.rng = k.Range
		case *commonv1.Rule_OneOf:
			cr.kind = "one_of"
			if len(k.OneOf.GetValues()) == 0 {
				return nil, &fieldError{field + ".one_of.values", "must not be empty", ErrInvalidRule}
			}
			cr.set = make(map[string]struct{}, len(k.OneOf.GetValues()))
			for _, v := range k.OneOf.GetValues() {
				cr.set[v] = struct{}{}
			}
			cr.values = "[" + strings.Join(k.OneOf.GetValues(), " ") + "]"
		default:
			return nil, &fieldError{field, "exactly one of not_null, regex, range or one_of must be set", ErrInvalidRule}
		}
		c.rules = append(c.rules, cr)
	}
	return c, nil
}

// Apply checks one batch against rules; see (*Compiled).Apply.
func Apply(rules []*commonv1.Rule, in *commonv1.Batch) (*commonv1.Batch, error) {
	c, err := Compile(rules)
	if err != nil {
		return nil, err
	}
	return c.Apply(in)
}

// Apply returns the batch with a Reject appended for every failing rule of
// every row not already rejected upstream. Values are never modified: the
// output shares the input's columns. The error is for a malformed batch or
// a rule that does not fit the batch (unknown column, range on text).
func (c *Compiled) Apply(in *commonv1.Batch) (*commonv1.Batch, error) {
	if err := batch.Check(in); err != nil {
		return nil, err
	}
	n := int(in.GetNumRows())
	byName := make(map[string]*commonv1.Column, len(in.GetColumns()))
	for _, col := range in.GetColumns() {
		byName[col.GetName()] = col
	}
	rejected := batch.Rejected(in)
	var rejects []*commonv1.Reject
	var text []byte // reused text form of typed values
	for k := range c.rules {
		r := &c.rules[k]
		col, ok := byName[r.column]
		if !ok {
			return nil, &fieldError{r.field + ".column", fmt.Sprintf("unknown column %q (batch has: %s)", r.column, batch.ColumnNames(in)), ErrUnknownColumn}
		}
		var bnd *bounds
		if r.kind == "range" {
			var err error
			if bnd, err = parseBounds(r.field, r.rng, col.GetType()); err != nil {
				return nil, err
			}
		}
		byteCol := batch.Storage(col.GetType()) == batch.StorageBytes
		for i := 0; i < n; i++ {
			if batch.Bit(rejected, i) {
				continue
			}
			null := batch.IsNull(col, i)
			if null {
				if r.kind == "not_null" {
					rejects = append(rejects, &commonv1.Reject{Row: int32(i), Stage: "validate", Rule: r.kind, Column: r.column,
						Reason: "column " + r.column + ": NULL is not allowed"})
				}
				continue // the other rules let NULL pass
			}
			var v []byte
			switch {
			case r.kind == "not_null":
				continue
			case byteCol:
				v = batch.Bytes(col, i)
			case r.kind != "range":
				text = batch.AppendText(text[:0], col, i)
				v = text
			}
			var why string
			switch r.kind {
			case "regex":
				if !r.re.Match(v) {
					why = fmt.Sprintf("%s does not match /%s/", batch.QuoteShort(v), r.re.String())
				}
			case "one_of":
				if _, ok := r.set[string(v)]; !ok {
					why = fmt.Sprintf("%s is not one of %s", batch.QuoteShort(v), r.values)
				}
			case "range":
				why = bnd.check(col, i)
				if why != "" {
					v = batch.AppendText(nil, col, i)
				}
			}
			if why != "" {
				rejects = append(rejects, &commonv1.Reject{Row: int32(i), Stage: "validate", Rule: r.kind, Column: r.column,
					Reason: "column " + r.column + ": " + why, Raw: batch.SafeRaw(v)})
			}
		}
	}
	slices.SortStableFunc(rejects, func(a, b *commonv1.Reject) int { return int(a.Row - b.Row) })
	return &commonv1.Batch{
		JobId: in.GetJobId(), PartitionId: in.GetPartitionId(), Seq: in.GetSeq(),
		Table: in.GetTable(), Source: in.GetSource(), FirstKey: in.GetFirstKey(), LastKey: in.GetLastKey(),
		NumRows: in.GetNumRows(), Columns: in.GetColumns(), SourceRefs: in.GetSourceRefs(),
		TraceContext: in.GetTraceContext(), Rejects: append(slices.Clip(in.GetRejects()), rejects...),
	}, nil
}

// check returns why row i is outside the bounds, or "" when it is inside.
// It allocates only to build a reason.
func (b *bounds) check(col *commonv1.Column, i int) string {
	var below, above bool
	switch b.typ {
	case tInt, tTS, tDate:
		v := col.Ints[i]
		below = b.min.set && v < b.min.i
		above = b.max.set && v > b.max.i
	case tFloat:
		v := col.Floats[i]
		if math.IsNaN(v) {
			return "NaN is outside every range"
		}
		below = b.min.set && v < b.min.f
		above = b.max.set && v > b.max.f
	case tNum:
		raw := batch.Bytes(col, i)
		if d, ok := parseDec(raw); ok {
			below = b.min.set && cmpDec(d, b.min.d) < 0
			above = b.max.set && cmpDec(d, b.max.d) > 0
			break
		}
		s := strings.TrimSpace(string(raw))
		if _, ok := decScale(s); !ok {
			return fmt.Sprintf("%s is not a number", batch.QuoteShort(raw))
		}
		r, ok := new(big.Rat).SetString(s)
		if !ok {
			return fmt.Sprintf("%s is not a number", batch.QuoteShort(raw))
		}
		below = b.min.set && r.Cmp(b.min.rat) < 0
		above = b.max.set && r.Cmp(b.max.rat) > 0
	}
	switch {
	case below:
		return fmt.Sprintf("%s is below the minimum %s", textOf(col, i), b.min.text)
	case above:
		return fmt.Sprintf("%s is above the maximum %s", textOf(col, i), b.max.text)
	}
	return ""
}

func textOf(col *commonv1.Column, i int) string {
	s, _ := batch.Text(col, i)
	return s
}
