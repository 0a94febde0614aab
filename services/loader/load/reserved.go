package load

import (
	"fmt"

	"github.com/cutover/cutover/services/kit/reserved"
)

// The product's own schemas are never a job's target (package kit/reserved
// says which they are and why). The orchestrator refuses such a spec up
// front; the loader refuses again here, before anything is written, because
// no stage trusts the one before it.

// bookkeepingSchema holds the ledger, lineage, quarantine and the other
// bookkeeping tables (bookkeepingDDL).
const bookkeepingSchema = reserved.Bookkeeping

// reservedSchema says why schema is not a job's to write into, "" when it is.
func reservedSchema(schema string) string {
	return reserved.Schema(schema)
}

// checkSchema refuses a reserved target schema, naming the field.
func checkSchema(field, schema string) error {
	if why := reserved.Schema(schema); why != "" {
		return fmt.Errorf("%w: %s: schema %q is reserved for %s", ErrInvalidArgument, field, schema, why)
	}
	return nil
}

// reservedSearchPath returns the first reserved schema a connection's
// run-time parameters put on its search_path ("search_path" itself, or
// "-c search_path=…" in "options"), as written, "" when none does. The
// loader names every table with its schema, so a search_path moves no
// write; it is refused all the same, so that nothing unqualified could ever
// land there.
func reservedSearchPath(params map[string]string) string {
	schema, _ := reserved.ParamsSearchPath(params)
	return schema
}
