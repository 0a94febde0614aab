package extract

import (
	"fmt"
	"strings"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
)

// colDef is a followed table's column as the source describes it now.
type colDef struct{ name, typ string }

// knownColumns compares a followed table as it is now with the columns the
// job knows (ReadChangesRequest.columns, from when it was created): a
// column dropped (or renamed) or retyped since cannot be followed, and the
// error names it with both definitions; added are the columns it has
// gained (the caller checks they can be NULL in older rows). An empty
// known is not checked.
func knownColumns(field, table string, now []colDef, known []*commonv1.SourceColumn) (added []string, err error) {
	if len(known) == 0 {
		return nil, nil
	}
	byName := make(map[string]string, len(now))
	defs := make([]string, len(now))
	for i, c := range now {
		byName[c.name] = c.typ
		defs[i] = c.name + " " + c.typ
	}
	was := make(map[string]bool, len(known))
	for _, k := range known {
		was[k.GetName()] = true
		typ, ok := byName[k.GetName()]
		switch {
		case !ok:
			return nil, fmt.Errorf("%w: %s: column %s %s, in %s when the job was created, is no longer in the table (dropped or renamed while following); the table now has %s: a dropped column cannot be followed: start a new job",
				ErrPrecondition, field, k.GetName(), k.GetSourceType(), table, strings.Join(defs, ", "))
		case k.GetSourceType() != "" && !strings.EqualFold(typ, k.GetSourceType()):
			return nil, fmt.Errorf("%w: %s: column %s of %s changed type while following: %s when the job was created, %s now; a retyped column cannot be followed: start a new job",
				ErrPrecondition, field, k.GetName(), table, k.GetSourceType(), typ)
		}
	}
	for _, c := range now {
		if !was[c.name] {
			added = append(added, c.name)
		}
	}
	return added, nil
}
