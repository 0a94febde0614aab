package jobspec

import (
	"regexp"
	"strings"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"github.com/cutover/cutover/services/kit/calendar"
)

// checkTimeZone refuses a JobSpec.time_zone or TableSpec.time_zone that is
// not an IANA zone name, naming the field and the value.
func checkTimeZone(field, name string) error {
	if _, err := calendar.LoadZone(name); err != nil {
		return Invalid(field, "%v", err)
	}
	return nil
}

// TimeZone is the zone of a table's zone-less source timestamps: its own,
// else the job's; "" is UTC.
func TimeZone(spec *commonv1.JobSpec, t *commonv1.TableSpec) string {
	if tz := t.GetTimeZone(); tz != "" {
		return tz
	}
	return spec.GetTimeZone()
}

// FillTimeZones sets each mapping's time_zone (for the transformer's cast)
// to the table's zone where the source value may be a wall time without a
// zone: text, a zone-less timestamp, a date, an expression. A source
// column that holds instants (timestamptz, MySQL TIMESTAMP) gets none, so
// it is never shifted. A time_zone given in the spec is replaced.
func FillTimeZones(spec *commonv1.JobSpec, t *commonv1.TableSpec, src []*commonv1.SourceColumn) {
	zone := TimeZone(spec, t)
	if zone == "UTC" {
		zone = ""
	}
	byName := make(map[string]*commonv1.SourceColumn, len(src))
	for _, c := range src {
		byName[c.GetName()] = c
	}
	for _, m := range t.GetColumns() {
		m.TimeZone = zone
		if sc, ok := byName[m.GetSource()]; ok && m.GetSource() != "" && holdsInstants(sc) {
			m.TimeZone = ""
		}
	}
}

var typeMods = regexp.MustCompile(`\([0-9, ]*\)`)

// holdsInstants: the source column's timestamps are instants, not wall times.
func holdsInstants(c *commonv1.SourceColumn) bool {
	if c.GetType() != commonv1.ColumnType_COLUMN_TYPE_TIMESTAMPTZ {
		return false
	}
	for _, t := range []string{c.GetPgType(), c.GetSourceType()} {
		t = strings.Join(strings.Fields(strings.ToLower(typeMods.ReplaceAllString(t, ""))), " ")
		if t == "timestamptz" || t == "timestamp with time zone" {
			return true
		}
	}
	return false
}
