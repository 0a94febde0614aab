package jobspec

import (
	"errors"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
)

// TestTimeZoneIsChecked: a zone that is not an IANA name is refused with
// the field and the value, for the job and for a table.
func TestTimeZoneIsChecked(t *testing.T) {
	csv := &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Csv{Csv: &commonv1.CsvSource{Path: "a.csv"}}}
	for _, tc := range []struct {
		job, table, field string
	}{
		{"Europe/Berlin", "Asia/Shanghai", ""},
		{"", "", ""},
		{"UTC", "", ""},
		{"Europe/Berln", "", "time_zone"},
		{"Local", "", "time_zone"},
		{"", "+02:00", "tables[0].time_zone"},
		{"Europe/Berlin", "CEST", "tables[0].time_zone"},
	} {
		spec := &commonv1.JobSpec{TimeZone: tc.job, Target: &commonv1.TargetSpec{Dsn: "postgres://h/db"},
			Tables: []*commonv1.TableSpec{{TargetTable: "t", TimeZone: tc.table, Source: csv}}}
		n, err := Normalize(spec, "")
		if err == nil {
			err = TableDefaults("tables[0]", n.Tables[0], map[string]bool{})
		}
		bad := tc.job
		if tc.field != "time_zone" {
			bad = tc.table
		}
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%q/%q refused: %v", tc.job, tc.table, err)
		case tc.field != "" && (!errors.Is(err, ErrInvalidSpec) || !strings.HasPrefix(strings.TrimPrefix(err.Error(), ErrInvalidSpec.Error()+": "), tc.field+": ") ||
			!strings.Contains(err.Error(), `"`+bad+`"`)):
			t.Errorf("%q/%q: got %v, want %s naming %q", tc.job, tc.table, err, tc.field, bad)
		}
	}
}

// TestFillTimeZones: every mapping whose source may be zone-less gets the
// table's zone (else the job's); a source column of instants gets none.
func TestFillTimeZones(t *testing.T) {
	ts := commonv1.ColumnType_COLUMN_TYPE_TIMESTAMPTZ
	src := []*commonv1.SourceColumn{
		{Name: "my_datetime", SourceType: "datetime(6)", Type: ts, PgType: "timestamp(6)"},
		{Name: "my_timestamp", SourceType: "timestamp(3)", Type: ts, PgType: "timestamptz(3)"},
		{Name: "pg_tz", SourceType: "timestamp(3) with time zone", Type: ts, PgType: "timestamp(3) with time zone"},
		{Name: "pg_wall", SourceType: "timestamp without time zone", Type: ts, PgType: "timestamp without time zone"},
		{Name: "sqlite", SourceType: "DATETIME", Type: ts, PgType: "timestamp"},
		{Name: "day", SourceType: "date", Type: commonv1.ColumnType_COLUMN_TYPE_DATE, PgType: "date"},
		{Name: "txt", SourceType: "text", Type: commonv1.ColumnType_COLUMN_TYPE_TEXT, PgType: "text"},
	}
	var cols []*commonv1.ColumnMapping
	for _, c := range src {
		cols = append(cols, &commonv1.ColumnMapping{Target: c.Name, Source: c.Name, TimeZone: "Asia/Tokyo"})
	}
	cols = append(cols, &commonv1.ColumnMapping{Target: "computed", Expr: "txt"})
	want := map[string]bool{"my_datetime": true, "pg_wall": true, "sqlite": true, "day": true, "txt": true, "computed": true}
	for _, tc := range []struct{ job, table, zone string }{
		{"Europe/Berlin", "", "Europe/Berlin"},
		{"Europe/Berlin", "America/New_York", "America/New_York"},
		{"", "", ""},
		{"UTC", "", ""},
	} {
		spec := &commonv1.JobSpec{TimeZone: tc.job}
		tbl := &commonv1.TableSpec{TimeZone: tc.table, Columns: cols}
		FillTimeZones(spec, tbl, src)
		for _, m := range tbl.Columns {
			w := ""
			if want[m.Target] {
				w = tc.zone
			}
			if m.TimeZone != w {
				t.Errorf("job %q table %q: %s got %q, want %q", tc.job, tc.table, m.Target, m.TimeZone, w)
			}
		}
	}
}
