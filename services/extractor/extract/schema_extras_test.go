package extract

import (
	"context"
	"fmt"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
)

func TestMySQLDefaultKinds(t *testing.T) {
	lit, now, other, none := commonv1.DefaultKind_DEFAULT_KIND_LITERAL, commonv1.DefaultKind_DEFAULT_KIND_CURRENT_TIMESTAMP,
		commonv1.DefaultKind_DEFAULT_KIND_OTHER, commonv1.DefaultKind_DEFAULT_KIND_UNSPECIFIED
	for _, tc := range []struct {
		expr               string
		mariadb, generated bool
		kind               commonv1.DefaultKind
		value              string
	}{
		{`0`, true, false, lit, "0"},
		{`-1.5e3`, true, false, lit, "-1.5e3"},
		{`'it''s \\ x'`, true, false, lit, `it's \ x`},
		{`'a\'b\nc\%'`, true, false, lit, "a'b\nc\\%"},
		{`'NULL'`, true, false, lit, "NULL"},
		{`NULL`, true, false, none, ""},
		{`current_timestamp()`, true, false, now, ""},
		{`current_timestamp(3)`, true, false, now, ""},
		{`now()`, true, false, now, ""},
		{`'0000-00-00'`, true, false, other, ""},
		{`'0000-00-00 00:00:00'`, true, false, other, ""},
		{`uuid()`, true, false, other, ""},
		{`b'1'`, true, false, other, ""},
		{`'unterminated''`, true, false, other, ""},
		// MySQL: bare values; expressions are DEFAULT_GENERATED.
		{`it's \ x`, false, false, lit, `it's \ x`},
		{`CURRENT_TIMESTAMP`, false, false, now, ""},
		{`CURRENT_TIMESTAMP(6)`, false, true, now, ""},
		{`uuid()`, false, true, other, ""},
		{`0000-00-00`, false, false, other, ""},
	} {
		kind, value := mysqlDefault(tc.expr, tc.mariadb, tc.generated)
		if kind != tc.kind || value != tc.value {
			t.Errorf("mysqlDefault(%q, mariadb=%v) = %v %q, want %v %q", tc.expr, tc.mariadb, kind, value, tc.kind, tc.value)
		}
	}
}

func TestSQLiteDefaultKinds(t *testing.T) {
	lit, now, other, none := commonv1.DefaultKind_DEFAULT_KIND_LITERAL, commonv1.DefaultKind_DEFAULT_KIND_CURRENT_TIMESTAMP,
		commonv1.DefaultKind_DEFAULT_KIND_OTHER, commonv1.DefaultKind_DEFAULT_KIND_UNSPECIFIED
	for _, tc := range []struct {
		in    string
		kind  commonv1.DefaultKind
		value string
	}{
		{"0", lit, "0"}, {"-2.5", lit, "-2.5"}, {"'it''s \\ x'", lit, `it's \ x`}, {"NULL", none, ""},
		{"CURRENT_TIMESTAMP", now, ""}, {"current_timestamp", now, ""}, {"(datetime('now'))", other, ""},
		{"CURRENT_DATE", other, ""}, {"X'00'", other, ""}, {"'a'b'", other, ""},
	} {
		kind, value := sqliteDefault(tc.in)
		if kind != tc.kind || value != tc.value {
			t.Errorf("sqliteDefault(%q) = %v %q, want %v %q", tc.in, kind, value, tc.kind, tc.value)
		}
	}
}

func TestSQLiteDescribeIdentityDefaultsIndexes(t *testing.T) {
	p := sqliteDB(t, `CREATE TABLE items (
		id INTEGER PRIMARY KEY,
		sku TEXT NOT NULL UNIQUE,
		name TEXT DEFAULT 'it''s',
		qty INT DEFAULT 0,
		made DATETIME DEFAULT CURRENT_TIMESTAMP,
		odd TEXT DEFAULT (lower('X')),
		a INT, b INT,
		UNIQUE (a, b))`,
		`CREATE INDEX items_name ON items (name)`,
		`CREATE INDEX items_qty_made ON items (qty DESC, made)`,
		`CREATE INDEX items_expr ON items (lower(name))`,
		`CREATE INDEX items_part ON items (qty) WHERE qty > 0`,
		`CREATE TABLE tagged (code TEXT PRIMARY KEY, n INT)`)
	s := newService(t)
	resp, err := s.DescribeSource(context.Background(), &extractorv1.DescribeSourceRequest{Source: sqliteSource(p, "items")})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range resp.Columns {
		got[c.Name] = fmt.Sprintf("%v %v %q %q", c.Identity, c.DefaultKind, c.DefaultValue, c.DefaultExpression)
	}
	want := map[string]string{
		"id":   `true DEFAULT_KIND_UNSPECIFIED "" ""`,
		"sku":  `false DEFAULT_KIND_UNSPECIFIED "" ""`,
		"name": `false DEFAULT_KIND_LITERAL "it's" "'it''s'"`,
		"qty":  `false DEFAULT_KIND_LITERAL "0" "0"`,
		"made": `false DEFAULT_KIND_CURRENT_TIMESTAMP "" "CURRENT_TIMESTAMP"`,
		"odd":  `false DEFAULT_KIND_OTHER "" "lower('X')"`,
		"a":    `false DEFAULT_KIND_UNSPECIFIED "" ""`,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("column %s: %s, want %s", k, got[k], v)
		}
	}
	var ixs []string
	for _, ix := range resp.Indexes {
		ixs = append(ixs, fmt.Sprintf("%s%v unique=%v", ix.Name, ix.Columns, ix.Unique))
	}
	wantIx := []string{"items_a_b_key[a b] unique=true", "items_sku_key[sku] unique=true", "items_name[name] unique=false", "items_qty_made[qty made] unique=false"}
	if fmt.Sprint(sortStrings(ixs)) != fmt.Sprint(sortStrings(wantIx)) {
		t.Errorf("indexes %q, want %q", ixs, wantIx)
	}
	// A text primary key is no rowid alias.
	resp, err = s.DescribeSource(context.Background(), &extractorv1.DescribeSourceRequest{Source: sqliteSource(p, "tagged")})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Columns[0].Identity || len(resp.Indexes) != 0 {
		t.Errorf("tagged: identity %v, indexes %v; want none", resp.Columns[0].Identity, resp.Indexes)
	}
}

func TestMySQLDescribeIdentityDefaults(t *testing.T) {
	dsn := newMySQLDB(t, "CREATE TABLE items (id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20) NOT NULL DEFAULT 'it''s \\\\ x',"+
		" qty INT DEFAULT 0, made DATETIME DEFAULT CURRENT_TIMESTAMP, changed TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,"+
		" born DATE DEFAULT '0000-00-00', note VARCHAR(5) DEFAULT NULL)")
	s := newService(t)
	resp, err := s.DescribeSource(context.Background(), &extractorv1.DescribeSourceRequest{Source: mysqlSource(dsn, "items")})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range resp.Columns {
		got[c.Name] = fmt.Sprintf("%v %v %q %v", c.Identity, c.DefaultKind, c.DefaultValue, c.OnUpdateCurrentTimestamp)
	}
	want := map[string]string{
		"id":      `true DEFAULT_KIND_UNSPECIFIED "" false`,
		"name":    `false DEFAULT_KIND_LITERAL "it's \\ x" false`,
		"qty":     `false DEFAULT_KIND_LITERAL "0" false`,
		"made":    `false DEFAULT_KIND_CURRENT_TIMESTAMP "" false`,
		"changed": `false DEFAULT_KIND_CURRENT_TIMESTAMP "" true`,
		"born":    `false DEFAULT_KIND_OTHER "" false`,
		"note":    `false DEFAULT_KIND_UNSPECIFIED "" false`,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("column %s: %s, want %s", k, got[k], v)
		}
	}
}

func sortStrings(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}
