package jobspec

import (
	"fmt"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"github.com/cutover/cutover/services/kit/reserved"
)

// The product's own schemas are never a job's target (package
// kit/reserved says which they are and why). The loader refuses them too.

// ControlSchema is the orchestrator's control schema (package jobstore).
const ControlSchema = reserved.Control

// refuse is the refusal of a reserved schema written into field, as
// written, with whose it is.
func refuse(field, schema, why string) error {
	return Invalid(field, "schema %q is reserved for %s", schema, why)
}

// CheckReserved refuses a spec whose effective target schema is one of
// cutover's or PostgreSQL's: target.schema (default public), a schema
// written into a target table's name, or a search_path in the target DSN
// (dsn, or defaultTarget when the spec names none). Every table is named
// with its schema when written, so the search_path moves no write; it is
// refused all the same.
func CheckReserved(spec *commonv1.JobSpec, defaultTarget string) error {
	schema := spec.GetTarget().GetSchema()
	if why := reserved.Schema(schema); why != "" {
		return refuse("target.schema", schema, why)
	}
	for i, t := range spec.GetTables() {
		if q, why := reserved.Table(t.GetTargetTable()); why != "" {
			return refuse(fmt.Sprintf("tables[%d].target_table", i), q, why)
		}
	}
	field, d := "target.dsn", spec.GetTarget().GetDsn()
	if d == "" {
		field, d = "target.dsn (the orchestrator's default target)", defaultTarget
	}
	if s, why := reserved.DSNSearchPath(d); why != "" {
		return Invalid(field, "its search_path names schema %q, which is reserved for %s", reserved.Ident(s), why)
	}
	return nil
}
