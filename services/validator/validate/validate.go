package validate

import (
	"fmt"
	"math"
	"math/big"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"github.com/cutover/cutover/services/kit/batch"
)

// rule is one compiled Rule.
type rule struct {
	field  string // "rules[i]", for errors
	column string // may be empty for expr and for unique with columns
	kind   string // not_null, regex, range, one_of, length, expr, unique, references
	name   string // Rule.name, default kind: the Reject's rule
	warn   bool   // severity warn: the row loads with a warning
	re     *regexp.Regexp
	set    map[string]struct{}
	values string // one_of values as printed in reasons
	rng    *commonv1.RangeRule
	minLen int // length bounds in characters; maxLen 0 = none
	maxLen int
	expr   *exprRule
	unique []string // unique columns (default column)
	ref    *commonv1.ReferenceRule
}

// jobWide reports a rule that needs every row of the job (checked by the
// loader when the staged table is finalized); Apply skips it.
func (r *rule) jobWide() bool { return r.kind == "unique" || r.kind == "references" }

// Compiled is a rule set ready to run on many batches: regexes compiled,
// one_of sets built and expressions parsed once. Range bounds are read and
// expressions checked per column types, which the rules alone do not know
// (expressions keep the plan for the types they saw).
type Compiled struct {
	rules []rule
}

// Compile prepares rules. It checks what it can without column types.
func Compile(rules []*commonv1.Rule) (*Compiled, error) {
	c := &Compiled{rules: make([]rule, 0, len(rules))}
	for i, r := range rules {
		field := fmt.Sprintf("rules[%d]", i)
		cr := rule{field: field, column: r.GetColumn()}
		switch r.GetSeverity() {
		case commonv1.Severity_SEVERITY_UNSPECIFIED, commonv1.Severity_SEVERITY_ERROR:
		case commonv1.Severity_SEVERITY_WARN:
			cr.warn = true
		default:
			return nil, &fieldError{field + ".severity", fmt.Sprintf("unknown severity %d", r.GetSeverity()), ErrInvalidRule}
		}
		columnOptional := false
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
		case *commonv1.Rule_Length:
			cr.kind = "length"
			lo, hi := k.Length.GetMin(), k.Length.GetMax()
			switch {
			case lo < 0:
				return nil, &fieldError{field + ".length.min", fmt.Sprintf("must not be negative, got %d", lo), ErrInvalidRule}
			case hi < 0:
				return nil, &fieldError{field + ".length.max", fmt.Sprintf("must not be negative, got %d", hi), ErrInvalidRule}
			case lo == 0 && hi == 0:
				return nil, &fieldError{field + ".length", "min or max must be set", ErrInvalidRule}
			case hi > 0 && lo > hi:
				return nil, &fieldError{field + ".length", fmt.Sprintf("min %d is above max %d", lo, hi), ErrInvalidRule}
			}
			cr.minLen, cr.maxLen = int(lo), int(hi)
		case *commonv1.Rule_Expr:
			cr.kind = "expr"
			columnOptional = true // a failure may be the whole row's
			e, err := parseExpr(k.Expr.GetExpr())
			if err != nil {
				return nil, &fieldError{field + ".expr.expr", err.Error(), ErrInvalidRule}
			}
			cr.expr = e
		case *commonv1.Rule_Unique:
			cr.kind = "unique"
			cr.unique = k.Unique.GetColumns()
			columnOptional = len(cr.unique) > 0
			for j, u := range cr.unique {
				switch {
				case u == "":
					return nil, &fieldError{fmt.Sprintf("%s.unique.columns[%d]", field, j), "must not be empty", ErrInvalidRule}
				case slices.Contains(cr.unique[:j], u):
					return nil, &fieldError{fmt.Sprintf("%s.unique.columns[%d]", field, j), fmt.Sprintf("column %q is listed twice", u), ErrInvalidRule}
				}
			}
			if len(cr.unique) == 0 {
				cr.unique = []string{cr.column}
			}
		case *commonv1.Rule_References:
			cr.kind = "references"
			cr.ref = k.References
			switch {
			case strings.TrimSpace(k.References.GetTable()) == "":
				return nil, &fieldError{field + ".references.table", "must not be empty", ErrInvalidRule}
			case strings.TrimSpace(k.References.GetColumn()) == "":
				return nil, &fieldError{field + ".references.column", "must not be empty", ErrInvalidRule}
			}
		default:
			return nil, &fieldError{field, "exactly one of not_null, regex, range, one_of, length, expr, unique or references must be set", ErrInvalidRule}
		}
		if cr.column == "" && !columnOptional {
			return nil, &fieldError{field + ".column", "must not be empty", ErrInvalidRule}
		}
		cr.name = r.GetName()
		if cr.name == "" {
			cr.name = cr.kind
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
// a rule that does not fit the batch (unknown column, range on text, an
// expression that does not type-check with the batch's column types).
//
// A failing rule of severity warn gives a Reject with warning set, which
// does not reject the row. A row that fails a rule of severity error here
// keeps all its error rejects but none of its warnings: it is quarantined,
// and a warning counts only rows that load. Counting is by rows, never by
// rejects. Unique and references rules need the whole job: the loader
// checks them when the staged table is finalized, Apply skips them.
//
// A change batch's unchanged slot (Column.unchanged) is not judged by a
// column rule: the target keeps its value. An expression reading one fails
// with rule unchanged_value. The bits go through with the columns.
func (c *Compiled) Apply(in *commonv1.Batch) (*commonv1.Batch, error) {
	if err := batch.Check(in); err != nil {
		return nil, err
	}
	n := int(in.GetNumRows())
	byName := make(map[string]*commonv1.Column, len(in.GetColumns()))
	for _, col := range in.GetColumns() {
		byName[col.GetName()] = col
	}
	// Rules skip the rows rejected upstream and the delete rows of a change
	// batch: only a delete's key matters, its other columns are NULL.
	rejected := batch.Rejected(in)
	for i, op := range in.GetOps() {
		if op == 'd' {
			rejected = batch.SetBit(rejected, i)
		}
	}
	var rejects []*commonv1.Reject
	var errRows []byte // rows an error rule failed in this stage
	var warned bool
	var text []byte // reused text form of typed values
	for k := range c.rules {
		r := &c.rules[k]
		if r.jobWide() {
			continue
		}
		// add records a failure of r.
		add := func(rj *commonv1.Reject) {
			rj.Stage, rj.Warning = "validate", r.warn
			rejects = append(rejects, rj)
			if r.warn {
				warned = true
			} else {
				errRows = batch.SetBit(errRows, int(rj.Row))
			}
		}
		reject := func(i int, why string, raw string) {
			if r.column != "" {
				why = "column " + r.column + ": " + why
			}
			add(&commonv1.Reject{Row: int32(i), Rule: r.name, Column: r.column, Reason: why, Raw: raw})
		}
		// An expression that reads a value the change left out cannot be
		// judged: the row fails the rule (a warning for a warn rule).
		rejectUnchanged := func(i int, col string) {
			add(&commonv1.Reject{Row: int32(i), Rule: ruleUnchanged, Column: col, Reason: unchangedReason(r.name, col)})
		}
		var col *commonv1.Column
		if r.column != "" {
			var ok bool
			if col, ok = byName[r.column]; !ok {
				return nil, &fieldError{r.field + ".column", fmt.Sprintf("unknown column %q (batch has: %s)", r.column, batch.ColumnNames(in)), ErrUnknownColumn}
			}
		}
		if r.kind == "expr" {
			if err := c.applyExpr(r, in, byName, rejected, reject, rejectUnchanged); err != nil {
				return nil, err
			}
			continue
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
			if batch.Bit(rejected, i) || batch.IsUnchanged(col, i) {
				continue // an unchanged slot is NULL but holds no value to judge: the target keeps its own
			}
			null := batch.IsNull(col, i)
			if null {
				if r.kind == "not_null" {
					reject(i, "NULL is not allowed", "")
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
			case "length":
				why = r.checkLength(v, col.GetType() == tBytes)
			}
			if why != "" {
				reject(i, why, batch.SafeRaw(v))
			}
		}
	}
	if warned && errRows != nil {
		rejects = slices.DeleteFunc(rejects, func(rj *commonv1.Reject) bool { return rj.Warning && batch.Bit(errRows, int(rj.Row)) })
	}
	slices.SortStableFunc(rejects, func(a, b *commonv1.Reject) int { return int(a.Row - b.Row) })
	return &commonv1.Batch{
		JobId: in.GetJobId(), PartitionId: in.GetPartitionId(), Seq: in.GetSeq(),
		Table: in.GetTable(), Source: in.GetSource(), FirstKey: in.GetFirstKey(), LastKey: in.GetLastKey(),
		NumRows: in.GetNumRows(), Columns: in.GetColumns(), SourceRefs: in.GetSourceRefs(),
		TraceContext: in.GetTraceContext(), Rejects: append(slices.Clip(in.GetRejects()), rejects...),
		Ops: in.GetOps(), Position: in.GetPosition(), StageMicros: in.GetStageMicros(),
		FormatMatches: in.GetFormatMatches(),
	}, nil
}

// ruleUnchanged is the reject rule of a row whose rule expression reads a
// value the change left out, as in the transformer.
const ruleUnchanged = "unchanged_value"

// unchangedReason says why rule name could not judge a row: its expression
// reads column col, which the change left out.
func unchangedReason(name, col string) string {
	return "rule " + name + " reads column " + col + ", which is not in the change: its value was an unchanged TOASTed value, " +
		"which PostgreSQL leaves out of the log; REPLICA IDENTITY FULL on the source table carries it"
}

// checkLength returns why v's length is outside the rule's bounds: in
// characters (runes; an invalid byte counts as one), in bytes for bytea.
func (r *rule) checkLength(v []byte, isBytes bool) string {
	n, unit := utf8.RuneCount(v), "characters"
	if isBytes {
		n, unit = len(v), "bytes"
	}
	switch {
	case n < r.minLen:
		return fmt.Sprintf("%s has %d %s, fewer than the minimum %d", batch.QuoteShort(v), n, unit, r.minLen)
	case r.maxLen > 0 && n > r.maxLen:
		return fmt.Sprintf("%s has %d %s, more than the maximum %d", batch.QuoteShort(v), n, unit, r.maxLen)
	}
	return ""
}

// applyExpr evaluates an expression rule on every row not rejected
// upstream. NULL columns are null in the expression: the expression
// decides (e.g. "shipped_at == null || shipped_at >= ordered_at"); a
// value the change left out is not null but unknown: rejectUnchanged.
func (c *Compiled) applyExpr(r *rule, in *commonv1.Batch, byName map[string]*commonv1.Column, rejected []byte, reject func(int, string, string), rejectUnchanged func(int, string)) error {
	if miss := r.expr.unknown(func(name string) bool { _, ok := byName[name]; return ok }); len(miss) > 0 {
		return &fieldError{r.field + ".expr.expr", fmt.Sprintf("unknown column %q (batch has: %s)", miss[0], batch.ColumnNames(in)), ErrUnknownColumn}
	}
	p, err := r.expr.program(byName)
	if err != nil {
		return &fieldError{r.field + ".expr.expr", err.Error(), ErrInvalidRule}
	}
	act := &rowActivation{in: in, cols: make(map[string]*commonv1.Column, len(r.expr.vars))}
	for _, v := range r.expr.vars {
		act.cols[v] = byName[v]
	}
	unchanged := batch.UnchangedRead(in, r.expr.reads)
	for i := 0; i < int(in.GetNumRows()); i++ {
		if batch.Bit(rejected, i) {
			continue
		}
		if col := batch.FirstUnchanged(unchanged, i); col != nil {
			rejectUnchanged(i, col.GetName())
			continue
		}
		if why := r.expr.eval(p, act, i); why != "" {
			// CEL errors may quote row values: keep the reason a valid
			// proto string.
			reject(i, strings.ToValidUTF8(why, "\uFFFD"), batch.SafeRaw([]byte(r.expr.rawOf(in, byName, i))))
		}
	}
	return nil
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
