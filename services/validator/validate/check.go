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
	for _, r := range c.rules {
		t, ok := types[r.column]
		if !ok {
			return &fieldError{r.field + ".column", fmt.Sprintf("unknown column %q (columns: %s)", r.column, batch.ListNames(names)), ErrUnknownColumn}
		}
		if r.kind == "range" && t != tUnspec { // unknown type: Apply checks the bounds per batch
			if _, err := parseBounds(r.field, r.rng, t); err != nil {
				return err
			}
		}
	}
	return nil
}
