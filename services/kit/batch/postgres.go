package batch

import commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"

// FromPostgres is the wire type for values of a PostgreSQL base type
// (pg_type.typname): the one the extractor reads it as and the loader
// loads into it without loss. Everything else travels as text.
func FromPostgres(typname string) commonv1.ColumnType {
	switch typname {
	case "int2", "int4", "int8":
		return commonv1.ColumnType_COLUMN_TYPE_INT64
	case "float4", "float8":
		return commonv1.ColumnType_COLUMN_TYPE_FLOAT64
	case "numeric":
		return commonv1.ColumnType_COLUMN_TYPE_NUMERIC
	case "bool":
		return commonv1.ColumnType_COLUMN_TYPE_BOOL
	case "timestamptz", "timestamp":
		return commonv1.ColumnType_COLUMN_TYPE_TIMESTAMPTZ
	case "date":
		return commonv1.ColumnType_COLUMN_TYPE_DATE
	case "bytea":
		return commonv1.ColumnType_COLUMN_TYPE_BYTES
	}
	return commonv1.ColumnType_COLUMN_TYPE_TEXT
}

// PostgresType is the PostgreSQL type that holds every value of a wire
// type, for a target column created without a source type to copy.
func PostgresType(t commonv1.ColumnType) string {
	switch t {
	case commonv1.ColumnType_COLUMN_TYPE_INT64:
		return "bigint"
	case commonv1.ColumnType_COLUMN_TYPE_FLOAT64:
		return "double precision"
	case commonv1.ColumnType_COLUMN_TYPE_BOOL:
		return "boolean"
	case commonv1.ColumnType_COLUMN_TYPE_NUMERIC:
		return "numeric"
	case commonv1.ColumnType_COLUMN_TYPE_TIMESTAMPTZ:
		return "timestamp with time zone"
	case commonv1.ColumnType_COLUMN_TYPE_DATE:
		return "date"
	case commonv1.ColumnType_COLUMN_TYPE_BYTES:
		return "bytea"
	}
	return "text"
}

// AppendSetArray appends a MySQL SET value ("a,b": its members joined by
// commas, "" for none) as a PostgreSQL text[] literal ({"a","b"}, {} for
// none), each member double-quoted with '"' and '\' escaped, so any member
// text reads back as itself.
func AppendSetArray(dst, v []byte) []byte {
	dst = append(dst, '{')
	if len(v) > 0 {
		start := 0
		for i := 0; i <= len(v); i++ {
			if i < len(v) && v[i] != ',' {
				continue
			}
			if start > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, '"')
			for _, c := range v[start:i] {
				if c == '"' || c == '\\' {
					dst = append(dst, '\\')
				}
				dst = append(dst, c)
			}
			dst = append(dst, '"')
			start = i + 1
		}
	}
	return append(dst, '}')
}
