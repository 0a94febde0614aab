package transform

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"github.com/cutover/cutover/services/transformer/clean"
	"github.com/google/cel-go/cel"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/interpreter"
)

// rowVar is the CEL map holding every column of the current row, the way to
// reach columns whose names are not CEL identifiers.
const rowVar = "row"

// celTypeIdents are identifiers CEL itself resolves (type names); a column
// with such a name is reachable only as row["name"].
var celTypeIdents = map[string]bool{
	rowVar: true, "bool": true, "bytes": true, "double": true, "int": true, "uint": true,
	"string": true, "list": true, "map": true, "null_type": true, "type": true, "dyn": true,
}

// baseEnv parses expressions; variables are declared per expression.
var baseEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(cel.Variable(rowVar, cel.MapType(cel.StringType, cel.DynType)))
})

// exprPlan is a compiled column expression.
type exprPlan struct {
	prg    cel.Program
	vars   []string // free identifiers: column names read as variables
	useRow bool     // the expression reads the `row` map
	// rowKeys are the constant keys of row["k"] and row.k; rowAny: `row` is
	// also used otherwise (row[v], row.size()), so it may read any column.
	rowKeys []string
	rowAny  bool
	// out is the checked result type; dyn when it depends on the row.
	out *cel.Type
}

// compileExpr compiles src. The variables are the free identifiers of the
// parsed expression (comprehension variables and CEL type names excluded),
// each declared dyn, plus row as map(string, dyn): the stream has no source
// types, so declaring the same way at CheckMapping time keeps both results
// equal. sources, when known (CheckMapping), must hold every referenced
// column, also constant keys of row["k"] and row.k.
func compileExpr(src string, sources map[string]bool) (*exprPlan, error) {
	base, err := baseEnv()
	if err != nil {
		return nil, err
	}
	parsed, iss := base.Parse(src)
	if iss.Err() != nil {
		return nil, iss.Err()
	}
	native := parsed.NativeRep()
	bound := map[string]bool{}
	var idents, rowKeys []string
	useRow, rowUses := false, 0
	for _, e := range celast.MatchDescendants(celast.NavigateAST(native), celast.AllMatcher()) {
		switch e.Kind() {
		case celast.ComprehensionKind:
			c := e.AsComprehension()
			bound[c.IterVar()], bound[c.AccuVar()] = true, true
			if c.HasIterVar2() {
				bound[c.IterVar2()] = true
			}
		case celast.IdentKind:
			if e.AsIdent() == rowVar {
				useRow = true
				rowUses++
			}
			idents = append(idents, e.AsIdent())
		case celast.SelectKind:
			if s := e.AsSelect(); s.Operand().Kind() == celast.IdentKind && s.Operand().AsIdent() == rowVar {
				rowKeys = append(rowKeys, s.FieldName())
			}
		case celast.CallKind:
			if c := e.AsCall(); c.FunctionName() == "_[_]" && len(c.Args()) == 2 &&
				c.Args()[0].Kind() == celast.IdentKind && c.Args()[0].AsIdent() == rowVar && c.Args()[1].Kind() == celast.LiteralKind {
				if k, ok := c.Args()[1].AsLiteral().(types.String); ok {
					rowKeys = append(rowKeys, string(k))
				}
			}
		}
	}
	slices.Sort(idents)
	idents = slices.Compact(idents)
	var vars []string
	opts := []cel.EnvOption{}
	for _, id := range idents {
		if bound[id] || celTypeIdents[id] {
			continue
		}
		if sources != nil && !sources[id] {
			return nil, fmt.Errorf("%w %q", ErrUnknownSourceColumn, id)
		}
		vars = append(vars, id)
		opts = append(opts, cel.Variable(id, cel.DynType))
	}
	if sources != nil {
		for _, k := range rowKeys {
			if !sources[k] {
				return nil, fmt.Errorf("%w %q in row[%q]", ErrUnknownSourceColumn, k, k)
			}
		}
	}
	env, err := base.Extend(opts...)
	if err != nil {
		return nil, err
	}
	nullableBranches(native)
	checked, iss := env.Check(parsed)
	if iss.Err() != nil {
		return nil, iss.Err()
	}
	prg, err := env.Program(checked)
	if err != nil {
		return nil, err
	}
	return &exprPlan{prg: prg, vars: vars, useRow: useRow, rowKeys: rowKeys, rowAny: rowUses > len(rowKeys), out: checked.OutputType()}, nil
}

// reads reports whether the expression may read column name. Cheap and
// conservative: a reference counts even where evaluation would not reach it.
func (e *exprPlan) reads(name string) bool {
	return e.rowAny || slices.Contains(e.vars, name) || slices.Contains(e.rowKeys, name)
}

// ruleUnchanged is the reject rule of a row whose value would be computed
// from a value the change left out.
const ruleUnchanged = "unchanged_value"

// unchangedReason says why a value read from source column name is missing.
func unchangedReason(name string) string {
	return "source column " + name + " is not in the change: its value was an unchanged TOASTed value, which PostgreSQL leaves out of the log; " +
		"REPLICA IDENTITY FULL on the source table carries it"
}

// activation binds the expression's variables to the batch's columns;
// field names the spec field in the error for a column the batch lacks.
func (e *exprPlan) activation(field string, in *commonv1.Batch, byName map[string]*commonv1.Column) (*rowActivation, error) {
	act := &rowActivation{in: in, cols: make(map[string]*commonv1.Column, len(e.vars))}
	for _, v := range e.vars {
		col, ok := byName[v]
		if !ok {
			return nil, fmt.Errorf("%s: %w %q: batch has %s", field, ErrUnknownSourceColumn, v, batch.ColumnNames(in))
		}
		act.cols[v] = col
	}
	return act, nil
}

// rowActivation resolves the variables of one row; reused across rows so
// that evaluation allocates only the values themselves.
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

// celValue is slot i of c as a CEL value.
func celValue(c *commonv1.Column, i int) ref.Val {
	if batch.IsNull(c, i) {
		return types.NullValue
	}
	switch c.GetType() {
	case tInt:
		return types.Int(c.Ints[i])
	case tFloat:
		return types.Double(c.Floats[i])
	case tBool:
		return types.Bool(batch.Bit(c.Bools, i))
	case tTS:
		return types.Timestamp{Time: time.UnixMicro(c.Ints[i]).UTC()}
	case tDate:
		return types.String(batch.FormatDays(c.Ints[i]))
	case tBytes:
		return types.Bytes(batch.Bytes(c, i))
	}
	return types.String(batch.Bytes(c, i)) // TEXT, NUMERIC, unspecified
}

var errExprResult = errors.New("result type cannot be stored")

// appendResult renders v in text form; null reports isNull, fromText is
// false for bytes so a bytea target takes them verbatim.
func appendResult(dst []byte, v ref.Val) (out []byte, isNull, fromText bool, err error) {
	switch x := v.(type) {
	case types.Null:
		return dst, true, false, nil
	case types.Int:
		return strconv.AppendInt(dst, int64(x), 10), false, true, nil
	case types.Uint:
		return strconv.AppendUint(dst, uint64(x), 10), false, true, nil
	case types.Double:
		return strconv.AppendFloat(dst, float64(x), 'g', -1, 64), false, true, nil
	case types.Bool:
		return strconv.AppendBool(dst, bool(x)), false, true, nil
	case types.String:
		return append(dst, x...), false, true, nil
	case types.Bytes:
		return append(dst, x...), false, false, nil
	case types.Timestamp:
		return x.UTC().AppendFormat(dst, time.RFC3339Nano), false, true, nil
	}
	return dst, false, false, fmt.Errorf("%w: %s", errExprResult, v.Type().(ref.Type).TypeName())
}

// applyExpr fills the column of c from its expression, row by row.
func (c *colPlan) applyExpr(k int, in *commonv1.Batch, byName map[string]*commonv1.Column, rejected []byte, rejects []*commonv1.Reject) (*commonv1.Column, []*commonv1.Reject, error) {
	n := int(in.GetNumRows())
	act, err := c.expr.activation(fmt.Sprintf("columns[%d].expr", k), in, byName)
	if err != nil {
		return nil, nil, err
	}
	bld := batch.NewBuilder(c.target, c.typ, n)
	if batch.Storage(c.typ) == batch.StorageBytes {
		bld.Column().Data = make([]byte, 0, 16*n)
	}
	var text, scratch, cleanBuf []byte
	reject := func(i int, rule, reason string, raw []byte) {
		bld.AppendNull()
		rejects = append(rejects, &commonv1.Reject{Row: int32(i), Stage: "transform", Rule: rule, Column: c.target,
			Reason: "column " + c.target + ": " + reason, Raw: batch.SafeRaw(raw)})
	}
	unchanged := batch.UnchangedRead(in, c.expr.reads)
	for i := 0; i < n; i++ {
		if batch.Bit(rejected, i) {
			bld.AppendNull()
			continue
		}
		if u := batch.FirstUnchanged(unchanged, i); u != nil {
			name := u.GetName()
			reject(i, ruleUnchanged, "the expression reads "+unchangedReason(name), nil)
			continue
		}
		act.i, act.row = i, nil
		v, _, err := c.expr.prg.Eval(act)
		if err == nil && types.IsError(v) {
			err = v.(*types.Err)
		}
		if err != nil {
			reject(i, "expr", err.Error(), []byte(batch.RowText(in, i)))
			continue
		}
		var isNull, fromText bool
		text, isNull, fromText, err = appendResult(text[:0], v)
		if err != nil {
			reject(i, "expr", err.Error(), nil)
			continue
		}
		if !isNull && c.chain != nil {
			out, cerr := c.chain.Apply(text, cleanBuf[:0])
			switch {
			case errors.Is(cerr, clean.ErrNull):
				isNull = true
			case cerr != nil:
				reject(i, "clean", cerr.Error(), text)
				continue
			default:
				cleanBuf, text, fromText = out, append(text[:0], out...), true
			}
		}
		if isNull {
			rejects = c.appendMissing(bld, i, rejects)
			continue
		}
		if err := c.castBytes(bld, text, fromText, &scratch); err != nil {
			reject(i, "cast", fmt.Sprintf("cannot cast expression result %s to %s: %v", batch.QuoteShort(text), c.typeName, err), text)
		}
	}
	return bld.Column(), rejects, nil
}

// nullableBranches wraps a null branch of a conditional in dyn(): CEL's
// checker wants both branches of the same type, so `v == "" ? null :
// double(v)` would not compile, though a nullable column is exactly what a
// mapping expression often produces. dyn(null) is null at run time.
func nullableBranches(e *celast.AST) {
	var maxID int64
	all := celast.MatchDescendants(celast.NavigateAST(e), celast.AllMatcher())
	for _, n := range all {
		maxID = max(maxID, n.ID())
	}
	fac := celast.NewExprFactory()
	for _, n := range all {
		if n.Kind() != celast.CallKind || n.AsCall().FunctionName() != "_?_:_" {
			continue
		}
		for _, arg := range n.AsCall().Args()[1:] {
			if arg.Kind() == celast.LiteralKind && arg.AsLiteral() == types.NullValue {
				maxID++
				arg.SetKindCase(fac.NewCall(arg.ID(), "dyn", fac.NewLiteral(maxID, types.NullValue)))
			}
		}
	}
}
