package jobspec

import (
	"errors"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
)

func TestSnake(t *testing.T) {
	for in, want := range map[string]string{
		"OrderID": "order_id", "orderId": "order_id", "customerName": "customer_name", "HTTPServer": "http_server",
		"order_items": "order_items", "Order Items": "order_items", "order-items": "order_items", "ID": "id",
		"Address2": "address2", "address2Line": "address2_line", "__x__": "x", "A": "a", "TotalUSD": "total_usd",
		"StraßeName": "straße_name", "_": "_", "": "", "already__two": "already_two",
	} {
		if got := Snake(in); got != want {
			t.Errorf("Snake(%q) = %q, want %q", in, got, want)
		}
		if got := Snake(Snake(in)); got != Snake(in) {
			t.Errorf("Snake not idempotent on %q: %q", in, got)
		}
	}
}

// TestIdentifierCase: target_table and every mapping target are spelled
// as the case says; names that collide after the change are refused,
// naming the field; unknown values are refused naming theirs.
func TestIdentifierCase(t *testing.T) {
	spec := func(c commonv1.IdentifierCase, tables ...*commonv1.TableSpec) *commonv1.JobSpec {
		return &commonv1.JobSpec{Target: &commonv1.TargetSpec{Dsn: "postgres://x/y", IdentifierCase: c, CreateTables: true}, Tables: tables}
	}
	out, err := Normalize(spec(commonv1.IdentifierCase_IDENTIFIER_CASE_SNAKE,
		&commonv1.TableSpec{TargetTable: "OrderItems", Columns: []*commonv1.ColumnMapping{{Target: "OrderID", Source: "OrderID"}, {Target: "unitPrice", Source: "p"}}}),
		"")
	if err != nil {
		t.Fatal(err)
	}
	tb := out.Tables[0]
	if tb.TargetTable != "order_items" || tb.Columns[0].Target != "order_id" || tb.Columns[1].Target != "unit_price" || tb.Columns[0].Source != "OrderID" {
		t.Errorf("snake: %s %v", tb.TargetTable, tb.Columns)
	}
	_, err = Normalize(spec(commonv1.IdentifierCase_IDENTIFIER_CASE_LOWER,
		&commonv1.TableSpec{TargetTable: "t", Columns: []*commonv1.ColumnMapping{{Target: "Name", Source: "a"}, {Target: "NAME", Source: "b"}}}), "")
	if !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), "tables[0].columns[1].target") || !strings.Contains(err.Error(), `"Name" and "NAME" both become "name"`) {
		t.Errorf("column collision: %v", err)
	}
	_, err = Normalize(spec(commonv1.IdentifierCase_IDENTIFIER_CASE_SNAKE,
		&commonv1.TableSpec{TargetTable: "OrderItems"}, &commonv1.TableSpec{TargetTable: "order_items"}), "")
	if !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), "tables[1].target_table") {
		t.Errorf("table collision: %v", err)
	}
	// Two specs into the very same table are not a collision.
	if _, err = Normalize(spec(commonv1.IdentifierCase_IDENTIFIER_CASE_SNAKE,
		&commonv1.TableSpec{TargetTable: "Orders"}, &commonv1.TableSpec{TargetTable: "Orders"}), ""); err != nil {
		t.Errorf("same table twice: %v", err)
	}
	_, err = Normalize(spec(commonv1.IdentifierCase(9), &commonv1.TableSpec{TargetTable: "t"}), "")
	if !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), "target.identifier_case") {
		t.Errorf("unknown case: %v", err)
	}
	bad := spec(commonv1.IdentifierCase_IDENTIFIER_CASE_KEEP, &commonv1.TableSpec{TargetTable: "t", Columns: []*commonv1.ColumnMapping{{Target: "a", Source: "a", SetAs: 7}}})
	if _, err = Normalize(bad, ""); !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), "tables[0].columns[0].set_as") {
		t.Errorf("unknown set_as: %v", err)
	}
	bad = spec(commonv1.IdentifierCase_IDENTIFIER_CASE_KEEP, &commonv1.TableSpec{TargetTable: "t"})
	bad.Target.CreateTables, bad.Target.EnumAs = false, commonv1.EnumAs_ENUM_AS_PG_ENUM
	if _, err = Normalize(bad, ""); !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), "target.enum_as") {
		t.Errorf("pg_enum without create_tables: %v", err)
	}

	// Default mappings: source names collide after the change.
	cols := []*commonv1.SourceColumn{{Name: "OrderID"}, {Name: "order_id"}}
	if _, err := DefaultMapping("tables[0].source", cols, commonv1.IdentifierCase_IDENTIFIER_CASE_SNAKE); !errors.Is(err, ErrInvalidSpec) ||
		!strings.Contains(err.Error(), `tables[0].source: source columns "OrderID" and "order_id" both become target column "order_id"`) {
		t.Errorf("source collision: %v", err)
	}
	m, err := DefaultMapping("f", cols, commonv1.IdentifierCase_IDENTIFIER_CASE_KEEP)
	if err != nil || m[0].Target != "OrderID" || m[1].Target != "order_id" {
		t.Errorf("keep: %v %v", m, err)
	}
}

// TestEnumSetKinds: the target's enum_as/set_as reach every ENUM/SET
// mapping that does not say; the definitions get an enum type or text[];
// a mapping asking for it on another column is refused naming the field.
func TestEnumSetKinds(t *testing.T) {
	cols := []*commonv1.SourceColumn{
		{Name: "id", SourceType: "int", PgType: "integer"},
		{Name: "Status", SourceType: "enum('new','paid')", PgType: "text", EnumValues: []string{"new", "paid"}},
		{Name: "tags", SourceType: "set('a','b')", PgType: "text", SetValues: []string{"a", "b"},
			DefaultKind: commonv1.DefaultKind_DEFAULT_KIND_LITERAL, DefaultValue: "a,b"},
		{Name: "kind", SourceType: "enum('x')", PgType: "text", EnumValues: []string{"x"}},
	}
	target := &commonv1.TargetSpec{CreateTables: true, EnumAs: commonv1.EnumAs_ENUM_AS_PG_ENUM, SetAs: commonv1.SetAs_SET_AS_TEXT_ARRAY}
	ts := &commonv1.TableSpec{TargetTable: "orders", Columns: IdentityMapping(cols)}
	ts.Columns[3].EnumAs = commonv1.EnumAs_ENUM_AS_TEXT
	if err := ColumnKinds("tables[0]", ts, cols, target); err != nil {
		t.Fatal(err)
	}
	defs, err := TableDefinitions(&commonv1.JobSpec{Target: target, Tables: []*commonv1.TableSpec{ts}}, []*extractorv1.DescribeSourceResponse{{Columns: cols}})
	if err != nil {
		t.Fatal(err)
	}
	c := defs[0].Columns
	if c[1].EnumType != "orders_Status_enum" || strings.Join(c[1].EnumValues, "|") != "new|paid" {
		t.Errorf("enum column: %v", c[1])
	}
	if c[2].PgType != "text[]" || c[2].DefaultValue != `{"a","b"}` {
		t.Errorf("set column: %v", c[2])
	}
	if c[3].EnumType != "" || c[3].PgType != "text" {
		t.Errorf("enum kept as text: %v", c[3])
	}
	ts = &commonv1.TableSpec{TargetTable: "orders", Columns: []*commonv1.ColumnMapping{{Target: "id", Source: "id", SetAs: commonv1.SetAs_SET_AS_TEXT_ARRAY}}}
	if err := ColumnKinds("tables[2]", ts, cols, target); !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), `tables[2].columns[0].set_as: source column "id" (int) is not a MySQL/MariaDB SET`) {
		t.Errorf("set_as on an int: %v", err)
	}
	ts = &commonv1.TableSpec{TargetTable: "orders", Columns: []*commonv1.ColumnMapping{{Target: "s", Source: "Status", Type: commonv1.ColumnType_COLUMN_TYPE_INT64}}}
	if err := ColumnKinds("tables[0]", ts, cols, target); !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), "tables[0].columns[0].enum_as") {
		t.Errorf("pg_enum with an int type: %v", err)
	}
}

// TestIndexKinds: unique keys become UNIQUE constraints, unique indexes
// stay indexes, a method is carried, names follow the identifier case,
// and what does not translate is named.
func TestIndexKinds(t *testing.T) {
	spec := &commonv1.JobSpec{Target: &commonv1.TargetSpec{IdentifierCase: commonv1.IdentifierCase_IDENTIFIER_CASE_SNAKE},
		Tables: []*commonv1.TableSpec{{TargetTable: "orders", Source: &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Mysql{Mysql: &commonv1.MysqlSource{Table: "Orders"}}},
			Columns: []*commonv1.ColumnMapping{{Target: "id", Source: "ID"}, {Target: "email", Source: "Email"}, {Target: "doc", Source: "Doc"}}}}}
	src := []*extractorv1.DescribeSourceResponse{{PrimaryKey: []string{"ID"},
		Indexes: []*commonv1.SourceIndex{
			{Name: "EmailKey", Columns: []string{"Email"}, Unique: true, Constraint: true},
			{Name: "ByEmail", Columns: []string{"Email"}, Unique: true},
			{Name: "DocGin", Columns: []string{"Doc"}, Method: "gin"},
			{Name: "Unmapped", Columns: []string{"Other"}},
		},
		OtherIndexes: []*commonv1.SourceIndex{{Name: "ft", Definition: "FULLTEXT KEY `ft` (`Doc`)"}}}}
	var got []string
	for _, c := range Constraints(spec, src) {
		got = append(got, c.Name+":"+strings.Join(c.Columns, ",")+map[bool]string{true: " unique_constraint"}[c.UniqueConstraint]+
			map[bool]string{true: " unique"}[c.Unique]+" "+c.Method)
	}
	want := "orders_pkey:id |orders_email_key:email unique_constraint unique |orders_by_email:email unique |orders_doc_gin:doc gin"
	if strings.Join(got, "|") != want {
		t.Errorf("constraints:\n%s\nwant\n%s", strings.Join(got, "|"), want)
	}
	notes := strings.Join(IndexNotes(spec, src), "\n")
	for _, w := range []string{"-- not carried over: index ft of mysql Orders: FULLTEXT KEY `ft` (`Doc`)", "-- not carried over: index Unmapped of mysql Orders: column Other is not mapped"} {
		if !strings.Contains(notes, w) {
			t.Errorf("notes lack %q:\n%s", w, notes)
		}
	}
}
