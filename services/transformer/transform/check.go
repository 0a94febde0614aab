package transform

import (
	"fmt"

	transformerv1 "github.com/cutover/cutover/gen/cutover/transformer/v1"
	"github.com/cutover/cutover/services/kit/batch"
)

// CheckMapping refuses a mapping that cannot work on the given source. Each
// error names the spec field: "<field_prefix>.columns[i].<field>: …" or
// "<field_prefix>.filters[j].when: …".
func CheckMapping(req *transformerv1.CheckMappingRequest) error {
	prefix := req.GetFieldPrefix()
	if prefix != "" {
		prefix += "."
	}
	sources := make(map[string]bool, len(req.GetSourceColumns()))
	names := make([]string, 0, len(req.GetSourceColumns()))
	for _, sc := range req.GetSourceColumns() {
		sources[sc.GetName()] = true
		names = append(names, sc.GetName())
	}
	if len(req.GetColumns()) == 0 {
		return &fieldError{prefix + "columns", "at least one column mapping is needed", ErrInvalidMapping}
	}
	targets := make(map[string]int, len(req.GetColumns()))
	for i, m := range req.GetColumns() {
		field := fmt.Sprintf("%scolumns[%d]", prefix, i)
		switch prev, dup := targets[m.GetTarget()]; {
		case m.GetTarget() == "":
			return &fieldError{field + ".target", "must not be empty", ErrInvalidMapping}
		case dup:
			return &fieldError{field + ".target", fmt.Sprintf("duplicate target %q (also %scolumns[%d])", m.GetTarget(), prefix, prev), ErrInvalidMapping}
		}
		targets[m.GetTarget()] = i
		// Before the generic source checks, whose messages would mislead here.
		if err := checkID(field, m); err != nil {
			return err
		}
		switch {
		case m.GetExpr() != "" && m.GetSource() != "":
			return &fieldError{field + ".expr", fmt.Sprintf("target column %q: both source %q and expr are set; use one", m.GetTarget(), m.GetSource()), ErrInvalidMapping}
		case m.GetSource() == "" && m.Default == nil && m.GetExpr() == "":
			return &fieldError{field + ".source", "empty source needs a default", ErrInvalidMapping}
		case m.GetSource() != "" && !sources[m.GetSource()]:
			return &fieldError{field + ".source", fmt.Sprintf("unknown source column %q (source has: %s)", m.GetSource(), batch.ListNames(names)), ErrUnknownSourceColumn}
		}
		if err := checkShape(field, m); err != nil {
			return err
		}
		// Here, not in every stream's compile: a job stored before pg_type
		// was filled in keeps loading as it did.
		if err := checkFormats(field, m); err != nil {
			return err
		}
	}
	// compile casts every default to its type and compiles expressions and
	// filters against the source columns, naming the column on failure.
	_, err := compileWith(&transformerv1.TransformConfig{Columns: req.GetColumns(), Filters: req.GetFilters()}, sources)
	if fe, ok := err.(*fieldError); ok {
		fe.field = prefix + fe.field
	}
	return err
}
