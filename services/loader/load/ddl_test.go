package load

import (
	"context"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestCreateTablesAndConstraints(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	target := &commonv1.TargetSpec{Dsn: e.dsn, Schema: "new shop"}
	defs := []*loaderv1.TableDefinition{
		{Name: "customers", Columns: []*loaderv1.ColumnDefinition{
			{Name: "id", PgType: "numeric(20,0)", NotNull: true}, {Name: "Name", PgType: "character varying(40)"},
			{Name: "seen", PgType: "timestamp(3) without time zone"}, {Name: "tags", PgType: "text[]"}}},
		{Name: "orders", Columns: []*loaderv1.ColumnDefinition{
			{Name: "id", PgType: "bigint", NotNull: true}, {Name: "customer_id", PgType: "numeric(20,0)"}}},
	}
	res, err := e.client.CreateTables(ctx, &loaderv1.CreateTablesRequest{Target: target, Tables: defs})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Statements) != 3 || !strings.Contains(res.Statements[1], `CREATE TABLE "new shop"."customers"`) ||
		!strings.Contains(res.Statements[1], `"Name" character varying(40)`) {
		t.Fatalf("statements: %q", res.Statements)
	}
	var typ string
	if err := e.db.QueryRow(ctx, `SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = '"new shop".customers'::regclass AND attname = 'seen'`).Scan(&typ); err != nil || typ != "timestamp(3) without time zone" {
		t.Fatalf("seen type = %q, %v", typ, err)
	}
	// Running again changes nothing.
	if _, err := e.client.CreateTables(ctx, &loaderv1.CreateTablesRequest{Target: target, Tables: defs}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Exec(ctx, `INSERT INTO "new shop".customers (id) VALUES (1); INSERT INTO "new shop".orders VALUES (10, 1), (11, 2)`); err != nil {
		t.Fatal(err)
	}
	cons := []*loaderv1.TableConstraint{
		{Table: "customers", Name: "customers_pkey", Columns: []string{"id"}},
		{Table: "orders", Name: "orders_pkey", Columns: []string{"id"}},
		{Table: "orders", Name: "orders_customer_fk", Columns: []string{"customer_id"}, ReferencedTable: "customers", ReferencedColumns: []string{"id"}},
		{Table: "customers", Name: "customers_name_seen_idx", Columns: []string{"Name", "seen"}, Index: true},
	}
	_, err = e.client.AddConstraints(ctx, &loaderv1.AddConstraintsRequest{Target: target, Constraints: cons})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(status.Convert(err).Message(), "orders_customer_fk") {
		t.Fatalf("a foreign key the data breaks: %v, want FailedPrecondition naming it", err)
	}
	if _, err := e.db.Exec(ctx, `DELETE FROM "new shop".orders WHERE customer_id = 2`); err != nil {
		t.Fatal(err)
	}
	added, err := e.client.AddConstraints(ctx, &loaderv1.AddConstraintsRequest{Target: target, Constraints: cons})
	if err != nil {
		t.Fatal(err)
	}
	if len(added.Statements) != 5 || !strings.Contains(added.Statements[4], `CREATE INDEX "customers_name_seen_idx" ON "new shop"."customers" ("Name", "seen")`) {
		t.Fatalf("statements: %q", added.Statements)
	}
	again, err := e.client.AddConstraints(ctx, &loaderv1.AddConstraintsRequest{Target: target, Constraints: cons})
	if err != nil || len(again.Statements) != 0 {
		t.Fatalf("second run: %q, %v; want nothing to do", again.GetStatements(), err)
	}
	var n int
	if err := e.db.QueryRow(ctx, `SELECT count(*) FROM pg_constraint WHERE conname IN ('customers_pkey', 'orders_pkey', 'orders_customer_fk') AND convalidated`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("valid constraints = %d, %v", n, err)
	}
}

func TestCreateTablesRefusesUnsafeTypes(t *testing.T) {
	e := newEnv(t)
	for _, typ := range []string{"int); DROP TABLE x; --", "", "text default 'x'", "numeric(1,2,3)"} {
		_, err := e.client.CreateTables(context.Background(), &loaderv1.CreateTablesRequest{
			Target: e.target(), Tables: []*loaderv1.TableDefinition{{Name: "t", Columns: []*loaderv1.ColumnDefinition{{Name: "c", PgType: typ}}}}})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "tables[0].columns[0]") {
			t.Errorf("type %q: %v, want InvalidArgument naming the column", typ, err)
		}
	}
}
