package jobspec

import (
	"fmt"
	"strings"
	"unicode/utf8"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	"github.com/cutover/cutover/services/kit/batch"
)

// IdentityMapping copies every source column under its own name.
func IdentityMapping(cols []*commonv1.SourceColumn) []*commonv1.ColumnMapping {
	out := make([]*commonv1.ColumnMapping, len(cols))
	for i, c := range cols {
		out[i] = &commonv1.ColumnMapping{Target: c.GetName(), Source: c.GetName()}
	}
	return out
}

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
	for i, t := range spec.GetTables() {
		for _, ix := range sources[i].GetIndexes() {
			cols, ok := mapAll(ix.GetColumns(), targetOf(t))
			if !ok || len(cols) == 0 {
				continue
			}
			name := indexName(t.GetTargetTable(), ix.GetName())
			for n := 2; taken[name]; n++ {
				name = indexName(t.GetTargetTable(), fmt.Sprintf("%s_%d", ix.GetName(), n))
			}
			taken[name] = true
			out = append(out, &loaderv1.TableConstraint{Table: t.GetTargetTable(), Name: name,
				Columns: cols, Index: true, Unique: ix.GetUnique()})
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
			name := fk.GetName()
			if name == "" {
				name = t.GetTargetTable() + "_" + strings.Join(cols, "_") + "_fkey"
			}
			out = append(out, &loaderv1.TableConstraint{Table: t.GetTargetTable(), Name: name, Columns: cols,
				ReferencedTable: spec.Tables[j].GetTargetTable(), ReferencedColumns: refCols})
		}
	}
	return out
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
	if len(n) > 63 {
		cut := 63
		for cut > 0 && !utf8.RuneStart(n[cut]) {
			cut--
		}
		n = n[:cut]
	}
	return n
}
