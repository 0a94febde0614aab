package jobspec

import (
	"fmt"
	"strings"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	"github.com/cutover/cutover/services/kit/batch"
)

// IdentityMapping copies every source column under its own name.
func IdentityMapping(cols []*commonv1.SourceColumn) []*commonv1.ColumnMapping {
	out, _ := DefaultMapping("", cols, commonv1.IdentifierCase_IDENTIFIER_CASE_KEEP)
	return out
}

// DefaultMapping copies every source column under its own name spelled as
// the identifier case says; two source columns whose names become one are
// refused, naming the source (field f).
func DefaultMapping(f string, cols []*commonv1.SourceColumn, c commonv1.IdentifierCase) ([]*commonv1.ColumnMapping, error) {
	out := make([]*commonv1.ColumnMapping, len(cols))
	seen := map[string]string{}
	for i, sc := range cols {
		n := CaseName(c, sc.GetName())
		if old, ok := seen[n]; ok {
			return nil, Invalid(f, "source columns %q and %q both become target column %q under identifier_case %s; map them by hand",
				old, sc.GetName(), n, caseLabel(c))
		}
		seen[n] = sc.GetName()
		out[i] = &commonv1.ColumnMapping{Target: n, Source: sc.GetName()}
	}
	return out, nil
}

// ColumnKinds checks each mapping's enum_as and set_as against its source
// column and fills in the target's (target.enum_as, target.set_as) for
// every mapping of a MySQL/MariaDB ENUM or SET column that does not say,
// so the transformer and the table definitions see one answer.
func ColumnKinds(f string, t *commonv1.TableSpec, src []*commonv1.SourceColumn, target *commonv1.TargetSpec) error {
	byName := map[string]*commonv1.SourceColumn{}
	for _, c := range src {
		byName[c.GetName()] = c
	}
	textual := func(m *commonv1.ColumnMapping) bool {
		return m.GetType() == commonv1.ColumnType_COLUMN_TYPE_UNSPECIFIED || m.GetType() == commonv1.ColumnType_COLUMN_TYPE_TEXT
	}
	for j, m := range t.GetColumns() {
		sc, ok := byName[m.GetSource()]
		if !ok || m.GetSource() == "" {
			continue // an unknown source column is named by the mapping check
		}
		g := fmt.Sprintf("%s.columns[%d]", f, j)
		if m.GetEnumAs() != commonv1.EnumAs_ENUM_AS_UNSPECIFIED && len(sc.GetEnumValues()) == 0 {
			return Invalid(g+".enum_as", "source column %q (%s) is not a MySQL/MariaDB ENUM", sc.GetName(), sc.GetSourceType())
		}
		if m.GetSetAs() != commonv1.SetAs_SET_AS_UNSPECIFIED && len(sc.GetSetValues()) == 0 {
			return Invalid(g+".set_as", "source column %q (%s) is not a MySQL/MariaDB SET", sc.GetName(), sc.GetSourceType())
		}
		if len(sc.GetEnumValues()) > 0 && m.GetEnumAs() == commonv1.EnumAs_ENUM_AS_UNSPECIFIED {
			m.EnumAs = target.GetEnumAs()
		}
		if len(sc.GetSetValues()) > 0 && m.GetSetAs() == commonv1.SetAs_SET_AS_UNSPECIFIED {
			m.SetAs = target.GetSetAs()
		}
		if m.GetEnumAs() == commonv1.EnumAs_ENUM_AS_PG_ENUM && !textual(m) {
			return Invalid(g+".enum_as", "PG_ENUM takes the source's values as they are: the mapping's type must be unset or TEXT, got %s", m.GetType())
		}
		if m.GetSetAs() == commonv1.SetAs_SET_AS_TEXT_ARRAY && !textual(m) {
			return Invalid(g+".set_as", "TEXT_ARRAY loads a text[]: the mapping's type must be unset or TEXT, got %s", m.GetType())
		}
	}
	return nil
}

// EnumTypeName is the name of the enum type create_tables makes for a
// column: "<table>_<column>_enum", within PostgreSQL's 63 bytes.
func EnumTypeName(table, column string) string {
	return cutName(table + "_" + column + "_enum")
}

func cutName(n string) string { return batch.CutUTF8(n, 63) }

// TableDefinitions derives each target table from its mapping and source:
// the source's own PostgreSQL type where the value is copied as is, the
// mapping's type where it casts, text for constants.
func TableDefinitions(spec *commonv1.JobSpec, sources []*extractorv1.DescribeSourceResponse) ([]*loaderv1.TableDefinition, error) {
	var defs []*loaderv1.TableDefinition
	for i, t := range spec.GetTables() {
		byName := map[string]*commonv1.SourceColumn{}
		for _, c := range sources[i].GetColumns() {
			byName[c.GetName()] = c
		}
		def := &loaderv1.TableDefinition{Name: t.GetTargetTable()}
		zeroNull := t.GetSource().GetMysql().GetZeroDates() == commonv1.ZeroDatePolicy_ZERO_DATE_POLICY_NULL
		for j, m := range t.GetColumns() {
			col := &loaderv1.ColumnDefinition{Name: m.GetTarget(), PgType: batch.PostgresType(m.GetType())}
			if m.GetSource() != "" {
				sc, ok := byName[m.GetSource()]
				if !ok {
					return nil, Invalid(fmt.Sprintf("tables[%d].columns[%d].source", i, j), "unknown source column %q", m.GetSource())
				}
				if m.GetType() == commonv1.ColumnType_COLUMN_TYPE_UNSPECIFIED {
					col.PgType = sc.GetPgType()
					if col.PgType == "" {
						col.PgType = batch.PostgresType(sc.GetType())
					}
					// Copied as it is: the target fills it in on insert as the
					// source did (the loader checks each default against the type).
					col.Identity = sc.GetIdentity()
					col.DefaultKind, col.DefaultValue, col.DefaultExpression = sc.GetDefaultKind(), sc.GetDefaultValue(), sc.GetDefaultExpression()
					col.OnUpdateCurrentTimestamp = sc.GetOnUpdateCurrentTimestamp()
				}
				if textual := m.GetType() == commonv1.ColumnType_COLUMN_TYPE_UNSPECIFIED || m.GetType() == commonv1.ColumnType_COLUMN_TYPE_TEXT; textual {
					switch {
					case len(sc.GetEnumValues()) > 0 && m.GetEnumAs() == commonv1.EnumAs_ENUM_AS_PG_ENUM:
						col.PgType = "text" // what the loader sees on the wire
						col.EnumValues = sc.GetEnumValues()
						col.EnumType = EnumTypeName(def.GetName(), col.GetName())
					case len(sc.GetSetValues()) > 0 && m.GetSetAs() == commonv1.SetAs_SET_AS_TEXT_ARRAY:
						col.PgType = "text[]"
						if col.DefaultKind == commonv1.DefaultKind_DEFAULT_KIND_LITERAL {
							col.DefaultValue = string(batch.AppendSetArray(nil, []byte(col.DefaultValue)))
						}
					}
				}
				col.NotNull = !sc.GetNullable() && m.Default == nil
				if col.NotNull && zeroNull && canHoldZeroDate(sc) {
					// The extractor reads a zero date as NULL: NOT NULL
					// would quarantine the very rows the policy keeps.
					col.NotNull = false
					col.NotNullDropped = "zero dates load as NULL (zero_dates: NULL)"
				}
			} else {
				col.NotNull = m.Default != nil
			}
			def.Columns = append(def.Columns, col)
		}
		defs = append(defs, def)
	}
	return defs, nil
}

// canHoldZeroDate: a MySQL/MariaDB date, datetime or timestamp column,
// which can hold '0000-00-00' or a date with a zero month or day.
func canHoldZeroDate(c *commonv1.SourceColumn) bool {
	st := strings.ToLower(strings.TrimSpace(c.GetSourceType()))
	return strings.HasPrefix(st, "date") || strings.HasPrefix(st, "timestamp")
}

// sourceTable is the source's table name, for matching foreign keys.
func sourceTable(t *commonv1.TableSpec) string {
	src := t.GetSource()
	switch {
	case src.GetPostgres() != nil:
		return src.GetPostgres().GetTable()
	case src.GetMysql() != nil:
		return src.GetMysql().GetTable()
	case src.GetSqlite() != nil:
		return src.GetSqlite().GetTable()
	}
	return ""
}

// Constraints maps the sources' primary keys, and foreign keys between
// tables of this job, onto the target tables. They are added after the data
// (faster loads; a broken reference is reported, not half-loaded).
func Constraints(spec *commonv1.JobSpec, sources []*extractorv1.DescribeSourceResponse) []*loaderv1.TableConstraint {
	targetOf := func(t *commonv1.TableSpec) map[string]string {
		m := map[string]string{}
		for _, c := range t.GetColumns() {
			if c.GetSource() != "" {
				m[c.GetSource()] = c.GetTarget()
			}
		}
		return m
	}
	mapAll := func(cols []string, m map[string]string) ([]string, bool) {
		out := make([]string, len(cols))
		for i, c := range cols {
			t, ok := m[c]
			if !ok {
				return nil, false
			}
			out[i] = t
		}
		return out, true
	}
	byTable := map[string]int{}
	for i, t := range spec.GetTables() {
		if st := sourceTable(t); st != "" {
			byTable[st] = i
		}
	}
	var out []*loaderv1.TableConstraint
	for i, t := range spec.GetTables() {
		if cols, ok := mapAll(sources[i].GetPrimaryKey(), targetOf(t)); ok && len(cols) > 0 {
			out = append(out, &loaderv1.TableConstraint{Table: t.GetTargetTable(), Name: t.GetTargetTable() + "_pkey", Columns: cols})
		}
	}
	// Indexes are named per schema: a name already taken by a table or
	// another index of the job gets a number.
	taken := map[string]bool{}
	for _, t := range spec.GetTables() {
		taken[t.GetTargetTable()] = true
	}
	for _, c := range out {
		taken[c.Name] = true
	}
	names := Case(spec)
	for i, t := range spec.GetTables() {
		for _, ix := range sources[i].GetIndexes() {
			cols, ok := mapAll(ix.GetColumns(), targetOf(t))
			if !ok || len(cols) == 0 {
				continue
			}
			ixName := CaseName(names, ix.GetName())
			name := indexName(t.GetTargetTable(), ixName)
			for n := 2; taken[name]; n++ {
				name = indexName(t.GetTargetTable(), fmt.Sprintf("%s_%d", ixName, n))
			}
			taken[name] = true
			out = append(out, &loaderv1.TableConstraint{Table: t.GetTargetTable(), Name: name,
				Columns: cols, Index: true, Unique: ix.GetUnique(), UniqueConstraint: ix.GetUnique() && ix.GetConstraint(),
				Method: ix.GetMethod()})
		}
	}
	// Identity columns go on from past the largest id loaded.
	for i, t := range spec.GetTables() {
		for _, c := range sources[i].GetColumns() {
			if !c.GetIdentity() {
				continue
			}
			for _, m := range t.GetColumns() {
				if m.GetSource() == c.GetName() && m.GetType() == commonv1.ColumnType_COLUMN_TYPE_UNSPECIFIED {
					out = append(out, &loaderv1.TableConstraint{Table: t.GetTargetTable(), Name: t.GetTargetTable() + "_" + m.GetTarget() + "_identity",
						Columns: []string{m.GetTarget()}, RestartIdentity: true})
				}
			}
		}
	}
	for i, t := range spec.GetTables() {
		for _, fk := range sources[i].GetForeignKeys() {
			ref := fk.GetReferencedTable()
			if k := strings.LastIndexByte(ref, '.'); k >= 0 {
				ref = ref[k+1:]
			}
			j, ok := byTable[ref]
			if !ok {
				continue
			}
			cols, ok1 := mapAll(fk.GetColumns(), targetOf(t))
			refCols, ok2 := mapAll(fk.GetReferencedColumns(), targetOf(spec.Tables[j]))
			if !ok1 || !ok2 {
				continue
			}
			name := CaseName(names, fk.GetName())
			if name == "" {
				name = t.GetTargetTable() + "_" + strings.Join(cols, "_") + "_fkey"
			}
			out = append(out, &loaderv1.TableConstraint{Table: t.GetTargetTable(), Name: name, Columns: cols,
				ReferencedTable: spec.Tables[j].GetTargetTable(), ReferencedColumns: refCols})
		}
	}
	return out
}

// IndexNotes lists, as comments for the report's DDL, the source indexes
// and constraints create_tables does not carry over: those the source
// itself says do not translate (expressions, partial, prefix, full-text,
// spatial, exclusion), and those on a column the mapping leaves out.
func IndexNotes(spec *commonv1.JobSpec, sources []*extractorv1.DescribeSourceResponse) []string {
	var out []string
	for i, t := range spec.GetTables() {
		if i >= len(sources) {
			break
		}
		mapped := map[string]bool{}
		for _, c := range t.GetColumns() {
			if c.GetSource() != "" {
				mapped[c.GetSource()] = true
			}
		}
		where := SourceName(t)
		for _, ix := range sources[i].GetOtherIndexes() {
			out = append(out, fmt.Sprintf("-- not carried over: index %s of %s: %s", ix.GetName(), where, oneLine(ix.GetDefinition())))
		}
		for _, ix := range sources[i].GetIndexes() {
			for _, c := range ix.GetColumns() {
				if !mapped[c] {
					out = append(out, fmt.Sprintf("-- not carried over: index %s of %s: column %s is not mapped", ix.GetName(), where, c))
					break
				}
			}
		}
	}
	return out
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// castable says which wire types a value may be cast from into a target
// type; anything else cannot succeed for any row, so it is refused up front.
var castable = map[commonv1.ColumnType][]commonv1.ColumnType{
	commonv1.ColumnType_COLUMN_TYPE_INT64:       {commonv1.ColumnType_COLUMN_TYPE_INT64, commonv1.ColumnType_COLUMN_TYPE_NUMERIC, commonv1.ColumnType_COLUMN_TYPE_FLOAT64, commonv1.ColumnType_COLUMN_TYPE_BOOL},
	commonv1.ColumnType_COLUMN_TYPE_NUMERIC:     {commonv1.ColumnType_COLUMN_TYPE_INT64, commonv1.ColumnType_COLUMN_TYPE_NUMERIC, commonv1.ColumnType_COLUMN_TYPE_FLOAT64},
	commonv1.ColumnType_COLUMN_TYPE_FLOAT64:     {commonv1.ColumnType_COLUMN_TYPE_INT64, commonv1.ColumnType_COLUMN_TYPE_NUMERIC, commonv1.ColumnType_COLUMN_TYPE_FLOAT64},
	commonv1.ColumnType_COLUMN_TYPE_BOOL:        {commonv1.ColumnType_COLUMN_TYPE_BOOL, commonv1.ColumnType_COLUMN_TYPE_INT64},
	commonv1.ColumnType_COLUMN_TYPE_TIMESTAMPTZ: {commonv1.ColumnType_COLUMN_TYPE_TIMESTAMPTZ, commonv1.ColumnType_COLUMN_TYPE_DATE},
	commonv1.ColumnType_COLUMN_TYPE_DATE:        {commonv1.ColumnType_COLUMN_TYPE_DATE, commonv1.ColumnType_COLUMN_TYPE_TIMESTAMPTZ},
	commonv1.ColumnType_COLUMN_TYPE_BYTES:       {commonv1.ColumnType_COLUMN_TYPE_BYTES},
}

// CheckCompatible refuses (FailedPrecondition, naming the column) a mapping
// whose source type can never fit the existing target column. Text goes
// anywhere (each value is cast and quarantined when it does not parse), and
// anything renders as text.
func CheckCompatible(f string, t *commonv1.TableSpec, src []*commonv1.SourceColumn, schema string) error {
	byName := map[string]*commonv1.SourceColumn{}
	for _, c := range src {
		byName[c.GetName()] = c
	}
	for j, m := range t.GetColumns() {
		sc, ok := byName[m.GetSource()]
		if !ok {
			continue
		}
		from, to := sc.GetType(), m.GetType()
		if from == commonv1.ColumnType_COLUMN_TYPE_TEXT || from == commonv1.ColumnType_COLUMN_TYPE_UNSPECIFIED || to == commonv1.ColumnType_COLUMN_TYPE_TEXT {
			continue
		}
		ok = false
		for _, a := range castable[to] {
			ok = ok || a == from
		}
		if !ok {
			return fmt.Errorf("%w: %s.columns[%d]: source column %q (%s) cannot be loaded into %s.%s.%s (%s)", ErrTargetMismatch,
				f, j, sc.GetName(), sc.GetSourceType(), schema, t.GetTargetTable(), m.GetTarget(), batch.PostgresType(to))
		}
	}
	return nil
}

// indexName prefixes the source's index name with the target table, since
// PostgreSQL names indexes per schema and MySQL per table, and keeps it
// within PostgreSQL's 63 bytes.
func indexName(table, index string) string {
	n := table + "_" + index
	if !strings.HasPrefix(index, table) && len(n) <= 63 {
		return n
	}
	if strings.HasPrefix(index, table) {
		n = index
	}
	return cutName(n)
}
