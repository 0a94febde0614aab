package batch

import (
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
)

func TestPostgresTypes(t *testing.T) {
	for typname, want := range map[string]commonv1.ColumnType{
		"int2": commonv1.ColumnType_COLUMN_TYPE_INT64, "int8": commonv1.ColumnType_COLUMN_TYPE_INT64,
		"float4": commonv1.ColumnType_COLUMN_TYPE_FLOAT64, "numeric": commonv1.ColumnType_COLUMN_TYPE_NUMERIC,
		"bool": commonv1.ColumnType_COLUMN_TYPE_BOOL, "timestamp": commonv1.ColumnType_COLUMN_TYPE_TIMESTAMPTZ,
		"date": commonv1.ColumnType_COLUMN_TYPE_DATE, "bytea": commonv1.ColumnType_COLUMN_TYPE_BYTES,
		"uuid": commonv1.ColumnType_COLUMN_TYPE_TEXT, "jsonb": commonv1.ColumnType_COLUMN_TYPE_TEXT,
	} {
		if got := FromPostgres(typname); got != want {
			t.Errorf("FromPostgres(%q) = %s, want %s", typname, got, want)
		}
	}
	// Every wire type's PostgreSQL type maps back to the same wire type.
	for t2 := range commonv1.ColumnType_name {
		ct := commonv1.ColumnType(t2)
		if ct == commonv1.ColumnType_COLUMN_TYPE_UNSPECIFIED {
			continue
		}
		back := map[string]string{"bigint": "int8", "double precision": "float8", "boolean": "bool", "numeric": "numeric",
			"timestamp with time zone": "timestamptz", "date": "date", "bytea": "bytea", "text": "text"}[PostgresType(ct)]
		if FromPostgres(back) != ct {
			t.Errorf("%s → %s → %s", ct, PostgresType(ct), FromPostgres(back))
		}
	}
}
