package jobspec

import (
	"fmt"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"google.golang.org/protobuf/proto"
)

// Bounds of a spec's size, so that no single job can make the calls that
// list, store or report it unusable. Beyond one, the spec is refused with
// InvalidArgument naming the field.
const (
	// MaxSpecBytes bounds the whole spec, encoded.
	MaxSpecBytes = 4 << 20
	// MaxJobNameBytes bounds JobSpec.name.
	MaxJobNameBytes = 200
	// MaxNameBytes bounds the other free names: table spec names, systems,
	// rule names, filter reasons, aggregate and match key names.
	MaxNameBytes = 200
	// MaxIdentifierBytes is PostgreSQL's identifier limit (NAMEDATALEN-1),
	// for what becomes one: target schema, target tables, target columns.
	// PostgreSQL would cut a longer name silently, so two could meet.
	MaxIdentifierBytes = 63
	// MaxTables bounds the table specs of a job.
	MaxTables = 1000
	// MaxColumns is PostgreSQL's limit of columns in a table.
	MaxColumns = 1600
	// MaxRules, MaxFilters, MaxCollisions, MaxAggregates bound a table
	// spec's lists; MaxThresholds the job's.
	MaxRules      = 1000
	MaxFilters    = 100
	MaxCollisions = 100
	MaxAggregates = 100
	MaxThresholds = 1000
	// MaxCleanSteps and MaxFormats bound one column mapping's lists.
	MaxCleanSteps = 32
	MaxFormats    = 32
	// MaxKeyColumns bounds the columns of a match key, a unique rule and an
	// aggregate's lists; MaxMatchKeys a dedupe's keys.
	MaxKeyColumns = 32
	MaxMatchKeys  = 32
	// MaxOneOfValues bounds a one_of rule's values.
	MaxOneOfValues = 10000
	// MaxExprBytes bounds a CEL expression, a filter's condition and a
	// regular expression.
	MaxExprBytes = 16 << 10
	// MaxDSNBytes bounds a DSN.
	MaxDSNBytes = 4 << 10
)

// CheckLimits refuses a spec past one of the bounds above.
func CheckLimits(spec *commonv1.JobSpec) error {
	if n := proto.Size(spec); n > MaxSpecBytes {
		return Invalid("spec", "is %d bytes encoded, at most %d", n, MaxSpecBytes)
	}
	if err := maxBytes("name", spec.GetName(), MaxJobNameBytes); err != nil {
		return err
	}
	if err := maxBytes("time_zone", spec.GetTimeZone(), MaxNameBytes); err != nil {
		return err
	}
	tg := spec.GetTarget()
	if err := maxBytes("target.dsn", tg.GetDsn(), MaxDSNBytes); err != nil {
		return err
	}
	if err := maxBytes("target.schema", tg.GetSchema(), MaxIdentifierBytes); err != nil {
		return err
	}
	if err := maxItems("tables", len(spec.GetTables()), MaxTables); err != nil {
		return err
	}
	if err := maxItems("thresholds", len(spec.GetThresholds()), MaxThresholds); err != nil {
		return err
	}
	for i, th := range spec.GetThresholds() {
		f := fmt.Sprintf("thresholds[%d]", i)
		if err := maxBytes(f+".table", th.GetTable(), MaxNameBytes); err != nil {
			return err
		}
		if err := maxBytes(f+".rule", th.GetRule(), MaxNameBytes); err != nil {
			return err
		}
	}
	for i, t := range spec.GetTables() {
		if err := tableLimits(fmt.Sprintf("tables[%d]", i), t); err != nil {
			return err
		}
	}
	return nil
}

func tableLimits(f string, t *commonv1.TableSpec) error {
	for _, c := range []struct {
		field string
		v     string
		max   int
	}{
		{".name", t.GetName(), MaxNameBytes},
		{".system", t.GetSystem(), MaxNameBytes},
		{".time_zone", t.GetTimeZone(), MaxNameBytes},
		{".target_table", t.GetTargetTable(), MaxIdentifierBytes},
		{".source.postgres.dsn", t.GetSource().GetPostgres().GetDsn(), MaxDSNBytes},
		{".source.mysql.dsn", t.GetSource().GetMysql().GetDsn(), MaxDSNBytes},
	} {
		if err := maxBytes(f+c.field, c.v, c.max); err != nil {
			return err
		}
	}
	for _, c := range []struct {
		field  string
		n, max int
	}{
		{".columns", len(t.GetColumns()), MaxColumns},
		{".rules", len(t.GetRules()), MaxRules},
		{".filters", len(t.GetFilters()), MaxFilters},
		{".collisions", len(t.GetCollisions()), MaxCollisions},
		{".aggregates", len(t.GetAggregates()), MaxAggregates},
		{".dedupe.keys", len(t.GetDedupe().GetKeys()), MaxMatchKeys},
	} {
		if err := maxItems(f+c.field, c.n, c.max); err != nil {
			return err
		}
	}
	for j, m := range t.GetColumns() {
		cf := fmt.Sprintf("%s.columns[%d]", f, j)
		if err := maxBytes(cf+".target", m.GetTarget(), MaxIdentifierBytes); err != nil {
			return err
		}
		if err := maxBytes(cf+".expr", m.GetExpr(), MaxExprBytes); err != nil {
			return err
		}
		if err := maxItems(cf+".clean", len(m.GetClean()), MaxCleanSteps); err != nil {
			return err
		}
		if err := maxItems(cf+".formats", len(m.GetFormats()), MaxFormats); err != nil {
			return err
		}
	}
	for k, r := range t.GetRules() {
		rf := fmt.Sprintf("%s.rules[%d]", f, k)
		if err := maxBytes(rf+".name", r.GetName(), MaxNameBytes); err != nil {
			return err
		}
		if err := maxBytes(rf+".expr.expr", r.GetExpr().GetExpr(), MaxExprBytes); err != nil {
			return err
		}
		if err := maxBytes(rf+".regex.pattern", r.GetRegex().GetPattern(), MaxExprBytes); err != nil {
			return err
		}
		if err := maxItems(rf+".one_of.values", len(r.GetOneOf().GetValues()), MaxOneOfValues); err != nil {
			return err
		}
		if err := maxItems(rf+".unique.columns", len(r.GetUnique().GetColumns()), MaxKeyColumns); err != nil {
			return err
		}
	}
	for k, fl := range t.GetFilters() {
		if err := maxBytes(fmt.Sprintf("%s.filters[%d].when", f, k), fl.GetWhen(), MaxExprBytes); err != nil {
			return err
		}
		if err := maxBytes(fmt.Sprintf("%s.filters[%d].reason", f, k), fl.GetReason(), MaxNameBytes); err != nil {
			return err
		}
	}
	for k, a := range t.GetAggregates() {
		af := fmt.Sprintf("%s.aggregates[%d]", f, k)
		if err := maxBytes(af+".name", a.GetName(), MaxNameBytes); err != nil {
			return err
		}
		if err := maxItems(af+".group_by", len(a.GetGroupBy()), MaxKeyColumns); err != nil {
			return err
		}
		if err := maxItems(af+".sum", len(a.GetSum()), MaxKeyColumns); err != nil {
			return err
		}
	}
	for k, mk := range t.GetDedupe().GetKeys() {
		kf := fmt.Sprintf("%s.dedupe.keys[%d]", f, k)
		if err := maxBytes(kf+".name", mk.GetName(), MaxNameBytes); err != nil {
			return err
		}
		if err := maxItems(kf+".columns", len(mk.GetColumns()), MaxKeyColumns); err != nil {
			return err
		}
	}
	return nil
}

func maxBytes(field, v string, max int) error {
	if len(v) > max {
		return Invalid(field, "is %d bytes long, at most %d", len(v), max)
	}
	return nil
}

func maxItems(field string, n, max int) error {
	if n > max {
		return Invalid(field, "has %d entries, at most %d", n, max)
	}
	return nil
}

// Guard is what every spec passes before anything else looks at it,
// whether it is created, validated or dry-run: the bounds above, and no
// reserved target schema (CheckReserved). Nothing is asked of a stage
// before it passed.
func Guard(spec *commonv1.JobSpec, defaultTarget string) error {
	if spec == nil {
		return nil // Normalize says "spec: required"
	}
	if err := CheckLimits(spec); err != nil {
		return err
	}
	return CheckReserved(spec, defaultTarget)
}
