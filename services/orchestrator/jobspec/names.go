package jobspec

import (
	"fmt"
	"strings"
	"unicode"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
)

// Snake spells a name as lower-case words joined by "_": a word starts at
// an upper-case letter after a lower-case letter or a digit, and at the
// last upper-case letter of a run followed by a lower-case one ("OrderID" →
// "order_id", "HTTPServer" → "http_server", "customerName" →
// "customer_name"); anything but letters and digits separates words
// ("Order Items" → "order_items"). A name already in snake case stays as it
// is, and so does a name with nothing but separators.
func Snake(name string) string {
	rs := []rune(name)
	var b strings.Builder
	sep := false // a separator is pending
	for i, r := range rs {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			sep = b.Len() > 0
			continue
		}
		if unicode.IsUpper(r) && i > 0 {
			prev := rs[i-1]
			next := rune(0)
			if i+1 < len(rs) {
				next = rs[i+1]
			}
			if unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && unicode.IsLower(next)) {
				sep = b.Len() > 0
			}
		}
		if sep {
			b.WriteByte('_')
			sep = false
		}
		b.WriteRune(unicode.ToLower(r))
	}
	if b.Len() == 0 {
		return name
	}
	return b.String()
}

// CaseName spells a name as the identifier case says.
func CaseName(c commonv1.IdentifierCase, name string) string {
	switch c {
	case commonv1.IdentifierCase_IDENTIFIER_CASE_LOWER:
		return strings.ToLower(name)
	case commonv1.IdentifierCase_IDENTIFIER_CASE_SNAKE:
		return Snake(name)
	}
	return name
}

// Case is the spec's identifier case, KEEP when unset.
func Case(spec *commonv1.JobSpec) commonv1.IdentifierCase {
	if c := spec.GetTarget().GetIdentifierCase(); c != commonv1.IdentifierCase_IDENTIFIER_CASE_UNSPECIFIED {
		return c
	}
	return commonv1.IdentifierCase_IDENTIFIER_CASE_KEEP
}

// checkTargetOptions refuses identifier_case, enum_as and set_as values
// this version does not know, naming the field.
func checkTargetOptions(spec *commonv1.JobSpec) error {
	t := spec.GetTarget()
	if _, ok := commonv1.IdentifierCase_name[int32(t.GetIdentifierCase())]; !ok {
		return Invalid("target.identifier_case", "unknown value %d (KEEP, LOWER or SNAKE)", t.GetIdentifierCase())
	}
	if _, ok := commonv1.EnumAs_name[int32(t.GetEnumAs())]; !ok {
		return Invalid("target.enum_as", "unknown value %d (TEXT or PG_ENUM)", t.GetEnumAs())
	}
	if t.GetEnumAs() == commonv1.EnumAs_ENUM_AS_PG_ENUM && !t.GetCreateTables() {
		return Invalid("target.enum_as", "PG_ENUM makes the enum types of the tables create_tables creates; set target.create_tables (an existing enum column takes the values as they are)")
	}
	if _, ok := commonv1.SetAs_name[int32(t.GetSetAs())]; !ok {
		return Invalid("target.set_as", "unknown value %d (TEXT or TEXT_ARRAY)", t.GetSetAs())
	}
	for i, tb := range spec.GetTables() {
		for j, m := range tb.GetColumns() {
			f := fmt.Sprintf("tables[%d].columns[%d]", i, j)
			if _, ok := commonv1.EnumAs_name[int32(m.GetEnumAs())]; !ok {
				return Invalid(f+".enum_as", "unknown value %d (TEXT or PG_ENUM)", m.GetEnumAs())
			}
			if m.GetEnumAs() == commonv1.EnumAs_ENUM_AS_PG_ENUM && !t.GetCreateTables() {
				return Invalid(f+".enum_as", "PG_ENUM makes the enum type of a table create_tables creates; set target.create_tables")
			}
			if _, ok := commonv1.SetAs_name[int32(m.GetSetAs())]; !ok {
				return Invalid(f+".set_as", "unknown value %d (TEXT or TEXT_ARRAY)", m.GetSetAs())
			}
			if m.GetEnumAs() != commonv1.EnumAs_ENUM_AS_UNSPECIFIED && m.GetSource() == "" {
				return Invalid(f+".enum_as", "needs a source column (a MySQL/MariaDB ENUM)")
			}
			if m.GetSetAs() != commonv1.SetAs_SET_AS_UNSPECIFIED && m.GetSource() == "" {
				return Invalid(f+".set_as", "needs a source column (a MySQL/MariaDB SET)")
			}
		}
	}
	return nil
}

// applyIdentifierCase spells target_table and every column mapping's
// target as target.identifier_case says, refusing two names that become
// one: two target tables of the job, or two targets of one table spec.
func applyIdentifierCase(spec *commonv1.JobSpec) error {
	c := Case(spec)
	if c == commonv1.IdentifierCase_IDENTIFIER_CASE_KEEP {
		return nil
	}
	tables := map[string]string{} // new name → old name
	for i, t := range spec.GetTables() {
		n := CaseName(c, t.GetTargetTable())
		if old, ok := tables[n]; ok && old != t.GetTargetTable() {
			return Invalid(fmt.Sprintf("tables[%d].target_table", i), "%q and %q both become %q under identifier_case %s",
				old, t.GetTargetTable(), n, caseLabel(c))
		}
		tables[n] = t.GetTargetTable()
		t.TargetTable = n
		cols := map[string]string{}
		for j, m := range t.GetColumns() {
			n := CaseName(c, m.GetTarget())
			if old, ok := cols[n]; ok && old != m.GetTarget() {
				return Invalid(fmt.Sprintf("tables[%d].columns[%d].target", i, j), "%q and %q both become %q under identifier_case %s",
					old, m.GetTarget(), n, caseLabel(c))
			}
			cols[n] = m.GetTarget()
			m.Target = n
		}
	}
	return nil
}

func caseLabel(c commonv1.IdentifierCase) string {
	return strings.TrimPrefix(c.String(), "IDENTIFIER_CASE_")
}
