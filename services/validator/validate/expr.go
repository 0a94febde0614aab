package validate

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"github.com/google/cel-go/cel"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/interpreter"
)

// rowVar is the CEL map holding every column of the current row, the way to
// reach columns whose names are not CEL identifiers (as in the transformer).
const rowVar = "row"

// celTypeIdents are identifiers CEL itself resolves (type names); a column
// with such a name is reachable only as row["name"].
var celTypeIdents = map[string]bool{
	rowVar: true, "bool": true, "bytes": true, "double": true, "int": true, "uint": true,
	"string": true, "list": true, "map": true, "null_type": true, "type": true, "dyn": true,
}

// baseEnv parses and checks rule expressions; column variables are added
// per expression. Cross-type numeric comparisons let "amount > 0" check
// with amount a double.
var baseEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(cel.Variable(rowVar, cel.MapType(cel.StringType, cel.DynType)), cel.CrossTypeNumericComparisons(true))
})

// exprRule is a parsed ExprRule. It is checked and planned per set of
// column types (known only from the mapping or the batch) and the plan is
// kept: a stream's batches all have the same types, so that is once.
type exprRule struct {
	src     string
	parsed  *cel.Ast
	vars    []string // free identifiers: column names read as variables
	rowKeys []string // constant keys of row["k"] and row.k
	useRow  bool
	rowAny  bool // `row` is also used otherwise (row[v], row.size()): it may read any column

	mu    sync.Mutex
	plans map[string]cel.Program // by the variables' types
}

// parseExpr parses src and finds the columns it reads. Errors are the
// parser's, or one for an expression no column type can make bool.
func parseExpr(src string) (*exprRule, error) {
	if strings.TrimSpace(src) == "" {
		return nil, fmt.Errorf("must not be empty")
	}
	base, err := baseEnv()
	if err != nil {
		return nil, err
	}
	parsed, iss := base.Parse(src)
	if iss.Err() != nil {
		return nil, iss.Err()
	}
	e := &exprRule{src: src, parsed: parsed, plans: map[string]cel.Program{}}
	bound := map[string]bool{}
	var idents []string
	rowUses := 0
	for _, n := range celast.MatchDescendants(celast.NavigateAST(parsed.NativeRep()), celast.AllMatcher()) {
		switch n.Kind() {
		case celast.ComprehensionKind:
			c := n.AsComprehension()
			bound[c.IterVar()], bound[c.AccuVar()] = true, true
			if c.HasIterVar2() {
				bound[c.IterVar2()] = true
			}
		case celast.IdentKind:
			if n.AsIdent() == rowVar {
				e.useRow = true
				rowUses++
			}
			idents = append(idents, n.AsIdent())
		case celast.SelectKind:
			if s := n.AsSelect(); s.Operand().Kind() == celast.IdentKind && s.Operand().AsIdent() == rowVar {
				e.rowKeys = append(e.rowKeys, s.FieldName())
			}
		case celast.CallKind:
			if c := n.AsCall(); c.FunctionName() == "_[_]" && len(c.Args()) == 2 &&
				c.Args()[0].Kind() == celast.IdentKind && c.Args()[0].AsIdent() == rowVar && c.Args()[1].Kind() == celast.LiteralKind {
				if k, ok := c.Args()[1].AsLiteral().(types.String); ok {
					e.rowKeys = append(e.rowKeys, string(k))
				}
			}
		}
	}
	e.rowAny = rowUses > len(e.rowKeys)
	slices.Sort(idents)
	for _, id := range slices.Compact(idents) {
		if !bound[id] && !celTypeIdents[id] {
			e.vars = append(e.vars, id)
		}
	}
	// With every column dyn, only an expression that can never be bool
	// (or calls an unknown function) fails: refuse it before any batch.
	if _, err := e.check(nil); err != nil {
		return nil, err
	}
	return e, nil
}

// columns returns the columns the expression reads that are not in have,
// in the order variables, then row keys.
func (e *exprRule) unknown(have func(string) bool) []string {
	var out []string
	for _, v := range e.vars {
		if !have(v) {
			out = append(out, v)
		}
	}
	for _, k := range e.rowKeys {
		if !have(k) && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

// reads reports whether the expression may read column name. Cheap and
// conservative: a reference counts even where evaluation would not reach it.
func (e *exprRule) reads(name string) bool {
	return e.rowAny || slices.Contains(e.vars, name) || slices.Contains(e.rowKeys, name)
}

// check type-checks the expression with each variable typed from typeOf
// (nil: all dyn) and requires a bool result.
func (e *exprRule) check(typeOf func(string) commonv1.ColumnType) (*cel.Ast, error) {
	base, err := baseEnv()
	if err != nil {
		return nil, err
	}
	opts := make([]cel.EnvOption, 0, len(e.vars))
	for _, v := range e.vars {
		t := tUnspec
		if typeOf != nil {
			t = typeOf(v)
		}
		opts = append(opts, cel.Variable(v, celType(t)))
	}
	env, err := base.Extend(opts...)
	if err != nil {
		return nil, err
	}
	checked, iss := env.Check(e.parsed)
	if iss.Err() != nil {
		return nil, iss.Err()
	}
	switch out := checked.OutputType(); {
	case out.IsExactType(cel.BoolType), out.IsExactType(cel.NullableType(cel.BoolType)), out.IsExactType(cel.DynType), out.IsExactType(cel.AnyType):
	default:
		return nil, fmt.Errorf("must give a bool, not %s", out)
	}
	return checked, nil
}

// program returns the plan for the batch's column types.
func (e *exprRule) program(byName map[string]*commonv1.Column) (cel.Program, error) {
	var key strings.Builder
	for _, v := range e.vars {
		key.WriteString(strconv.Itoa(int(byName[v].GetType())))
		key.WriteByte(',')
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if p, ok := e.plans[key.String()]; ok {
		return p, nil
	}
	checked, err := e.check(func(name string) commonv1.ColumnType { return byName[name].GetType() })
	if err != nil {
		return nil, err
	}
	base, _ := baseEnv()
	opts := make([]cel.EnvOption, 0, len(e.vars))
	for _, v := range e.vars {
		opts = append(opts, cel.Variable(v, celType(byName[v].GetType())))
	}
	env, err := base.Extend(opts...)
	if err != nil {
		return nil, err
	}
	p, err := env.Program(checked)
	if err != nil {
		return nil, err
	}
	e.plans[key.String()] = p
	return p, nil
}

// celType is the CEL type a column's values have (celValue): nullable,
// since any column may hold NULL. DATE is its "YYYY-MM-DD" text (as in the
// transformer), so it compares with date strings; NUMERIC is a double.
func celType(t commonv1.ColumnType) *cel.Type {
	switch t {
	case tInt:
		return cel.NullableType(cel.IntType)
	case tFloat, tNum:
		return cel.NullableType(cel.DoubleType)
	case tBool:
		return cel.NullableType(cel.BoolType)
	case tTS:
		return cel.TimestampType
	case tText, tDate:
		return cel.NullableType(cel.StringType)
	case tBytes:
		return cel.NullableType(cel.BytesType)
	}
	return cel.DynType
}

// celValue is slot i of c as a CEL value of celType(c.Type).
func celValue(c *commonv1.Column, i int) ref.Val {
	if batch.IsNull(c, i) {
		return types.NullValue
	}
	switch c.GetType() {
	case tInt:
		return types.Int(c.Ints[i])
	case tFloat:
		return types.Double(c.Floats[i])
	case tNum:
		f, err := strconv.ParseFloat(strings.TrimSpace(string(batch.Bytes(c, i))), 64)
		if err != nil {
			return types.NewErr("column %s: %s is not a number", c.GetName(), batch.QuoteShort(batch.Bytes(c, i)))
		}
		return types.Double(f)
	case tBool:
		return types.Bool(batch.Bit(c.Bools, i))
	case tTS:
		return types.Timestamp{Time: time.UnixMicro(c.Ints[i]).UTC()}
	case tDate:
		return types.String(batch.FormatDays(c.Ints[i]))
	case tBytes:
		return types.Bytes(batch.Bytes(c, i))
	}
	return types.String(batch.Bytes(c, i)) // TEXT, unspecified
}

// rowActivation resolves the variables of one row; reused across rows.
type rowActivation struct {
	in   *commonv1.Batch
	cols map[string]*commonv1.Column
	i    int
	row  ref.Val // built lazily per row when the expression reads `row`
}

func (a *rowActivation) Parent() interpreter.Activation { return nil }

func (a *rowActivation) ResolveName(name string) (any, bool) {
	if name == rowVar {
		if a.row == nil {
			m := make(map[string]any, len(a.in.GetColumns()))
			for _, c := range a.in.GetColumns() {
				m[c.GetName()] = celValue(c, a.i)
			}
			a.row = types.NewStringInterfaceMap(types.DefaultTypeAdapter, m)
		}
		return a.row, true
	}
	c, ok := a.cols[name]
	if !ok {
		return nil, false
	}
	return celValue(c, a.i), true
}

// evalExpr runs the expression on row i; why is "" when it holds.
func (e *exprRule) eval(p cel.Program, act *rowActivation, i int) (why string) {
	act.i, act.row = i, nil
	v, _, err := p.Eval(act)
	if err == nil && types.IsError(v) {
		err = v.(*types.Err)
	}
	if err != nil {
		return fmt.Sprintf("cannot evaluate %s: %v", quoteExpr(e.src), err)
	}
	switch x := v.(type) {
	case types.Bool:
		if x {
			return ""
		}
		return fmt.Sprintf("%s is false", quoteExpr(e.src))
	case types.Null:
		return fmt.Sprintf("%s gives null, not true", quoteExpr(e.src))
	}
	return fmt.Sprintf("%s gives %s, not a bool", quoteExpr(e.src), v.Type().(ref.Type).TypeName())
}

// rawOf renders the columns the expression reads on row i ("a=1, b=NULL"),
// or the whole row when it reads `row`.
func (e *exprRule) rawOf(in *commonv1.Batch, byName map[string]*commonv1.Column, i int) string {
	if e.useRow {
		return batch.RowText(in, i)
	}
	var sb strings.Builder
	for k, v := range e.vars {
		if k > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(v)
		sb.WriteByte('=')
		if s, ok := batch.Text(byName[v], i); ok {
			sb.WriteString(strconv.Quote(cut(s, 200)))
		} else {
			sb.WriteString("NULL")
		}
	}
	return sb.String()
}

// quoteExpr quotes an expression for a reason, cut to stay readable.
func quoteExpr(src string) string { return strconv.Quote(cut(src, 200)) }

// cut cuts s to at most limit bytes on a rune boundary, marking the cut.
func cut(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	n := limit
	for n > limit-4 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
