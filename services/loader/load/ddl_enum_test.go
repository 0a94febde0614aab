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

// TestCreateTablesEnumsSetsUnique: an enum column gets its own enum type
// (labels quoted safely, the default checked against them), an existing
// enum of that name with the same labels is used, one with other labels is
// a mismatch; a set is text[]; a unique key becomes a UNIQUE constraint; an
// index of another method whose operator class the column lacks is named,
// not failed.
func TestCreateTablesEnumsSetsUnique(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	target := &commonv1.TargetSpec{Dsn: e.dsn, Schema: "app"}
	lit := commonv1.DefaultKind_DEFAULT_KIND_LITERAL
	labels := []string{"new", "it's paid", `x'); DROP TABLE app.orders; --`}
	defs := []*loaderv1.TableDefinition{{Name: "orders", Columns: []*loaderv1.ColumnDefinition{
		{Name: "id", PgType: "integer", NotNull: true, Identity: true},
		{Name: "email", PgType: "text", NotNull: true},
		{Name: "status", PgType: "text", NotNull: true, EnumType: "orders_status_enum", EnumValues: labels, DefaultKind: lit, DefaultValue: "new"},
		{Name: "prior", PgType: "text", EnumType: "orders_status_enum", EnumValues: labels, DefaultKind: lit, DefaultValue: "gone", DefaultExpression: "'gone'"},
		{Name: "tags", PgType: "text[]", NotNull: true, DefaultKind: lit, DefaultValue: `{"a","b c"}`},
		{Name: "body", PgType: "text"},
	}}}
	res, err := e.client.CreateTables(ctx, &loaderv1.CreateTablesRequest{Target: target, Tables: defs})
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(res.Statements, "\n")
	for _, want := range []string{
		`CREATE TYPE "app"."orders_status_enum" AS ENUM (E'new', E'it''s paid', E'x''); DROP TABLE app.orders; --')`,
		`"status" "app"."orders_status_enum" DEFAULT E'new' NOT NULL`,
		`-- not carried over: default of "app"."orders"."prior": 'gone'`,
		`"tags" text[] DEFAULT E'{"a","b c"}' NOT NULL`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("statements lack %q:\n%s", want, all)
		}
	}
	if n := strings.Count(all, "CREATE TYPE"); n != 1 {
		t.Errorf("%d CREATE TYPE for one type", n)
	}
	var st, tags string
	if err := e.db.QueryRow(ctx, `INSERT INTO app.orders (email) VALUES ('a') RETURNING status::text, tags::text`).Scan(&st, &tags); err != nil ||
		st != "new" || tags != `{a,"b c"}` {
		t.Errorf("insert: %q %q %v", st, tags, err)
	}
	cons := []*loaderv1.TableConstraint{
		{Table: "orders", Name: "orders_email_key", Columns: []string{"email"}, Index: true, Unique: true, UniqueConstraint: true},
		{Table: "orders", Name: "orders_tags_gin", Columns: []string{"tags"}, Index: true, Method: "gin"},
		{Table: "orders", Name: "orders_body_gin", Columns: []string{"body"}, Index: true, Method: "gin"}, // text has no gin class
	}
	added, err := e.client.AddConstraints(ctx, &loaderv1.AddConstraintsRequest{Target: target, Constraints: cons})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(added.Statements, "\n")
	for _, want := range []string{`ALTER TABLE "app"."orders" ADD CONSTRAINT "orders_email_key" UNIQUE ("email")`,
		`CREATE INDEX "orders_tags_gin" ON "app"."orders" USING gin ("tags")`,
		`-- not carried over: CREATE INDEX "orders_body_gin" ON "app"."orders" USING gin ("body")`} {
		if !strings.Contains(got, want) {
			t.Errorf("constraints lack %q:\n%s", want, got)
		}
	}
	if n := e.count(t, `SELECT count(*) FROM pg_constraint WHERE conrelid = 'app.orders'::regclass AND contype = 'u'`); n != 1 {
		t.Errorf("%d unique constraints, want 1", n)
	}
	// Again: every constraint exists (the one left out is tried again).
	if again, err := e.client.AddConstraints(ctx, &loaderv1.AddConstraintsRequest{Target: target, Constraints: cons[:2]}); err != nil || len(again.Statements) != 0 {
		t.Errorf("second AddConstraints: %v %v", again.GetStatements(), err)
	}
	_, err = e.client.AddConstraints(ctx, &loaderv1.AddConstraintsRequest{Target: target, Constraints: []*loaderv1.TableConstraint{
		{Table: "orders", Name: "x", Columns: []string{"id"}, Index: true, Method: "gin; DROP"}}})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "constraints[0].method") {
		t.Errorf("bad method: %v", err)
	}

	// Another table with the same enum type and labels uses it; other labels are refused.
	same := &loaderv1.TableDefinition{Name: "again", Columns: []*loaderv1.ColumnDefinition{
		{Name: "status", PgType: "text", EnumType: "orders_status_enum", EnumValues: labels}}}
	if res, err := e.client.CreateTables(ctx, &loaderv1.CreateTablesRequest{Target: target, Tables: []*loaderv1.TableDefinition{same}}); err != nil ||
		strings.Contains(strings.Join(res.Statements, "\n"), "CREATE TYPE") {
		t.Errorf("same enum: %v %v", res.GetStatements(), err)
	}
	other := &loaderv1.TableDefinition{Name: "other", Columns: []*loaderv1.ColumnDefinition{
		{Name: "status", PgType: "text", EnumType: "orders_status_enum", EnumValues: []string{"new"}}}}
	_, err = e.client.CreateTables(ctx, &loaderv1.CreateTablesRequest{Target: target, Tables: []*loaderv1.TableDefinition{other}})
	if status.Code(err) == codes.OK || !strings.Contains(err.Error(), `enum type "app"."orders_status_enum" exists with the values`) {
		t.Errorf("other labels: %v", err)
	}
	for _, bad := range [][]string{{"a", "a"}, {""}, {strings.Repeat("x", 64)}} {
		def := &loaderv1.TableDefinition{Name: "bad", Columns: []*loaderv1.ColumnDefinition{{Name: "s", PgType: "text", EnumType: "bad_s_enum", EnumValues: bad}}}
		if _, err := e.client.CreateTables(ctx, &loaderv1.CreateTablesRequest{Target: target, Tables: []*loaderv1.TableDefinition{def}}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("labels %q: %v", bad, err)
		}
	}
}
