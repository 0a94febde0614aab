package validate

import (
	"fmt"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	validatorv1 "github.com/cutover/cutover/gen/cutover/validator/v1"
	"github.com/cutover/cutover/services/kit/batch"
)

// CheckRules refuses rules that cannot be applied to the target columns.
// Each error names the field: "<field_prefix>.rules[i].<field>: …".
func CheckRules(req *validatorv1.CheckRulesRequest) error {
	prefix := req.GetFieldPrefix()
	if prefix != "" {
		prefix += "."
	}
	err := checkRules(req)
	if fe, ok := err.(*fieldError); ok {
		fe.field = prefix + fe.field
	}
	return err
}

func checkRules(req *validatorv1.CheckRulesRequest) error {
	c, err := Compile(req.GetRules())
	if err != nil {
		return err
	}
	types := make(map[string]commonv1.ColumnType, len(req.GetColumns()))
	names := make([]string, 0, len(req.GetColumns()))
	for _, m := range req.GetColumns() {
		types[m.GetTarget()] = m.GetType()
		names = append(names, m.GetTarget())
	}
	known := func(name string) bool { _, ok := types[name]; return ok }
	unknown := func(field, name string) error {
		return &fieldError{field, fmt.Sprintf("unknown column %q (columns: %s)", name, batch.ListNames(names)), ErrUnknownColumn}
	}
	for _, r := range c.rules {
		if r.column != "" && !known(r.column) {
			return unknown(r.field+".column", r.column)
		}
		t := types[r.column]
		switch r.kind {
		case "range":
			if t != tUnspec { // unknown type: Apply checks the bounds per batch
				if _, err := parseBounds(r.field, r.rng, t); err != nil {
					return err
				}
			}
		case "unique":
			for j, u := range r.unique {
				if !known(u) { // a defaulted column was checked above
					return unknown(fmt.Sprintf("%s.unique.columns[%d]", r.field, j), u)
				}
			}
		case "expr":
			if miss := r.expr.unknown(known); len(miss) > 0 {
				return unknown(r.field+".expr.expr", miss[0])
			}
			// Columns of unknown type are dyn: Apply checks again with
			// the batch's types.
			if _, err := r.expr.check(func(name string) commonv1.ColumnType { return types[name] }); err != nil {
				return &fieldError{r.field + ".expr.expr", err.Error(), ErrInvalidRule}
			}
		}
	}
	return nil
}
