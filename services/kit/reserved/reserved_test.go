package reserved

import (
	"slices"
	"strings"
	"testing"
)

const (
	bookkeeping = "cutover's own bookkeeping"
	staging     = "cutover's staging tables"
	backups     = "cutover's backup copies"
	control     = "the orchestrator's control schema"
	catalog     = "PostgreSQL's catalog"
	postgres    = "PostgreSQL's own"
)

func TestIdent(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"cutover", "cutover"},
		{"Cutover", "cutover"},
		{" CUTOVER ", "cutover"},
		{`"Cutover"`, "cutover"},
		{`"CUTOVER"`, "cutover"},
		{` "Cutover_Stage"`, "cutover_stage"},
		{`" cutover "`, "cutover"}, // another schema to PostgreSQL, too close to allow
		{`"a""b"`, `a"b`},
		{`"cutover.lineage"`, "cutover.lineage"},
		{`""`, ""},
		{`"`, `"`},
		{`"Cutover`, `"cutover`},
		{"", ""},
	} {
		if got := Ident(tc.in); got != tc.want {
			t.Errorf("Ident(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestSchema: every spelling of a reserved schema is reserved, and names
// that only look alike are free.
func TestSchema(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"cutover", bookkeeping},
		{"Cutover", bookkeeping},
		{`"Cutover"`, bookkeeping},
		{`"CUTOVER"`, bookkeeping},
		{" CUTOVER ", bookkeeping},
		{" CUTOVER", bookkeeping},
		{"cutover_stage", staging},
		{` "Cutover_Stage"`, staging},
		{"cutover_backup", backups},
		{"cutover_control", control},
		{"information_schema", catalog},
		{"pg_catalog", postgres},
		{"PG_CATALOG", postgres},
		{`"pg_catalog"`, postgres},
		{"pg_toast", postgres},
		{"pg_temp_1", postgres},
		{"pg_temp_3", postgres},
		{"pg_", postgres},
		// Free: names that only look alike.
		{"", ""},
		{"public", ""},
		{"sales", ""},
		{"cutover_data", ""},
		{"cutovers", ""},
		{"pgcatalog", ""},
		{`"cutover.lineage"`, ""},
		{"cutover.lineage", ""},
		{`"a,cutover"`, ""},
	} {
		if got := Schema(tc.name); got != tc.want {
			t.Errorf("Schema(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
	for _, s := range []string{Bookkeeping, Stage, Backup, Control} {
		if Schema(s) == "" {
			t.Errorf("%s is not reserved", s)
		}
	}
}

// TestTable: a reserved qualifier of a table name, as written.
func TestTable(t *testing.T) {
	for _, tc := range []struct{ name, schema, why string }{
		{"cutover.lineage", "cutover", bookkeeping},
		{`"Cutover".ledger`, `"Cutover"`, bookkeeping},
		{`"Cutover"."ledger"`, `"Cutover"`, bookkeeping},
		{"db.cutover_control.jobs", "cutover_control", control},
		{"cutover_stage.x.y", "cutover_stage", staging},
		{"public.pg_catalog.pg_class", "pg_catalog", postgres},
		{` CUTOVER .lineage`, " CUTOVER ", bookkeeping},
		{".cutover.x", "cutover", bookkeeping},
		// Free.
		{"", "", ""},
		{"orders", "", ""},
		{"cutover", "", ""}, // a table named cutover, unqualified
		{"lineage", "", ""},
		{`"cutover.lineage"`, "", ""}, // one quoted name with a dot in it
		{`"cutover.x".y`, "", ""},
		{"public.orders", "", ""},
		{"public.cutover", "", ""},
		{"cutover_data.orders", "", ""},
		{`"unterminated.cutover.x`, "", ""},
	} {
		schema, why := Table(tc.name)
		if schema != tc.schema || why != tc.why {
			t.Errorf("Table(%q) = %q, %q; want %q, %q", tc.name, schema, why, tc.schema, tc.why)
		}
	}
}

// TestDSNSearchPath: a search_path that names a reserved schema, however a
// DSN writes it, is found; the entry is returned as written.
func TestDSNSearchPath(t *testing.T) {
	for _, tc := range []struct{ dsn, schema, why string }{
		// URL form.
		{"postgres://u@h/db?options=-csearch_path%3Dcutover", "cutover", bookkeeping},
		{"postgres://u@h/db?options=-c%20search_path%3Dpublic,Cutover", "Cutover", bookkeeping},
		{"postgres://u@h/db?search_path=cutover_control", "cutover_control", control},
		{"postgres://u@h/db?search_path=public,%22Cutover%22", `"Cutover"`, bookkeeping},
		{"postgres://u@h/db?options=--search-path%3D%22pg_catalog%22", `"pg_catalog"`, postgres},
		{"postgres://u@h/db?SEARCH_PATH=information_schema", "information_schema", catalog},
		{"postgres://u@h/db?Options=-csearch_path%3Dcutover_backup", "cutover_backup", backups},
		{"postgresql://u@h/db?options=-c%20search_path%3Dcutover_stage", "cutover_stage", staging},
		{"postgres://u:p@h:5432/db?sslmode=disable&options=-c%20statement_timeout%3D5%20-c%20search_path%3Dpublic,%5C%20cutover", " cutover", bookkeeping},
		{"postgres://u@h/db?search_path=public&search_path=cutover", "cutover", bookkeeping},
		// Both keys: "options" is read before "search_path", whatever the map order.
		{"postgres://u@h/db?search_path=cutover_stage&options=-csearch_path%3Dcutover", "cutover", bookkeeping},
		// Keyword/value form.
		{"host=h dbname=db options='-c search_path=cutover_control'", "cutover_control", control},
		{"host=h dbname=db options='-c search_path=public,cutover_control'", "cutover_control", control},
		{`host=h options=--search_path=pg_catalog`, "pg_catalog", postgres},
		{`host=h options=-c\ search_path=cutover`, "cutover", bookkeeping},
		{"host = h\toptions = '-csearch_path=cutover'", "cutover", bookkeeping},
		{`host=h options='-c search_path=public,\'x\',cutover'`, "cutover", bookkeeping},
		{`host=h options='-c search_path=cutover`, "cutover", bookkeeping}, // unterminated quote: to the end
		{`search_path=Cutover_Backup`, "Cutover_Backup", backups},
		{`host=h options='-c search_path=public,\\ cutover'`, " cutover", bookkeeping}, // the options' escape survives the DSN's
		{`options='-c search_path=public' options='-c search_path=cutover'`, "cutover", bookkeeping},
		// Free.
		{"", "", ""},
		{"postgres://default/db", "", ""},
		{"postgres://u@h/db?options=-csearch_path%3Dsales", "", ""},
		{"postgres://u@h/db?options=-csearch_path%3Dpublic", "", ""},
		{"postgres://u@h/db?search_path=%22a,cutover%22,b", "", ""},
		{"postgres://u@h/db?application_name=cutover", "", ""},
		{"postgres://cutover@h/cutover", "", ""},
		{"postgres://u@h:badport/db?search_path=cutover", "", ""}, // does not parse: the loader refuses it
		{"host=h application_name=cutover", "", ""},
		{"host=h dbname=cutover options='-c statement_timeout=5'", "", ""},
		{`host=h options='-c search_path=public\ cutover'`, "", ""}, // the DSN's quoting takes the backslash: "cutover" is a stray argument
		{`host=h options='-c search_path'`, "", ""},
		{`host=h options='-c'`, "", ""},
		{`host=h options='search_path=cutover'`, "", ""},  // not an option the server reads
		{`host options='-c search_path=cutover'`, "", ""}, // malformed: the parse stops, the loader refuses it
	} {
		schema, why := DSNSearchPath(tc.dsn)
		if schema != tc.schema || why != tc.why {
			t.Errorf("DSNSearchPath(%q) = %q, %q; want %q, %q", tc.dsn, schema, why, tc.schema, tc.why)
		}
	}
}

// TestParamsSearchPath: the same for run-time parameters a driver parsed.
func TestParamsSearchPath(t *testing.T) {
	for _, tc := range []struct {
		params      map[string]string
		schema, why string
	}{
		{map[string]string{"options": "-c search_path=cutover"}, "cutover", bookkeeping},
		{map[string]string{"options": "-csearch_path=public,cutover"}, "cutover", bookkeeping},
		{map[string]string{"options": `-c search_path=public,\ "Cutover_Stage"`}, ` "Cutover_Stage"`, staging},
		{map[string]string{"options": "--search_path=pg_catalog"}, "pg_catalog", postgres},
		{map[string]string{"options": "-c statement_timeout=5 -c Search-Path=cutover_backup"}, "cutover_backup", backups},
		{map[string]string{"SEARCH_PATH": "information_schema"}, "information_schema", catalog},
		{map[string]string{"search_path": "cutover_stage", "options": "-c search_path=cutover"}, "cutover", bookkeeping},
		{map[string]string{"search_path": `"a,cutover",b`}, "", ""},
		{map[string]string{"options": "-c search_path=public,sales"}, "", ""},
		{map[string]string{"application_name": "cutover"}, "", ""},
		{nil, "", ""},
	} {
		schema, why := ParamsSearchPath(tc.params)
		if schema != tc.schema || why != tc.why {
			t.Errorf("ParamsSearchPath(%v) = %q, %q; want %q, %q", tc.params, schema, why, tc.schema, tc.why)
		}
	}
}

func TestOptionSearchPaths(t *testing.T) {
	for _, tc := range []struct {
		opts string
		want []string
	}{
		{"-c search_path=a", []string{"a"}},
		{"-csearch_path=a,b", []string{"a,b"}},
		{"--search-path=a", []string{"a"}},
		{"--SEARCH_PATH=a", []string{"a"}},
		{"-c search_path=a -c search_path=b", []string{"a", "b"}},
		{`-c search_path=a,\ b`, []string{"a, b"}},
		{`-c\ search_path=a`, []string{"a"}}, // one argument, read as "-c" glued to " search_path=a" (refusing more is safe)
		{"-c search_path=", []string{""}},
		{"-c statement_timeout=5", nil},
		{"search_path=a", nil},
		{"-c", nil},
		{"-c search_path", nil},
		{"", nil},
		{`\`, nil},
	} {
		if got := optionSearchPaths(tc.opts); !slices.Equal(got, tc.want) {
			t.Errorf("optionSearchPaths(%q) = %q, want %q", tc.opts, got, tc.want)
		}
	}
}

func TestSplitUnquoted(t *testing.T) {
	for _, tc := range []struct {
		v    string
		sep  byte
		want []string
	}{
		{"a", ',', []string{"a"}},
		{"a,b", ',', []string{"a", "b"}},
		{`"a,cutover",b`, ',', []string{`"a,cutover"`, "b"}},
		{`public, "Cutover"`, ',', []string{"public", ` "Cutover"`}},
		{"", ',', []string{""}},
		{",", ',', []string{"", ""}},
		{`"a,b`, ',', []string{`"a,b`}},
		{"a.b", '.', []string{"a", "b"}},
		{"db.cutover_control.jobs", '.', []string{"db", "cutover_control", "jobs"}},
		{`"Cutover"."ledger"`, '.', []string{`"Cutover"`, `"ledger"`}},
		{`"cutover.lineage"`, '.', []string{`"cutover.lineage"`}},
		{`"a""b.c".d`, '.', []string{`"a""b.c"`, "d"}},
	} {
		if got := splitUnquoted(tc.v, tc.sep); !slices.Equal(got, tc.want) {
			t.Errorf("splitUnquoted(%q, %q) = %q, want %q", tc.v, tc.sep, got, tc.want)
		}
	}
}

// FuzzSearchPath: no DSN, options value or name makes the parsers panic,
// and what they report is reserved for the reason they give.
func FuzzSearchPath(f *testing.F) {
	for _, s := range []string{
		"", "postgres://u@h/db?options=-csearch_path%3Dcutover", "postgresql://u@h/db?search_path=public,%22Cutover%22",
		"host=h dbname=db options='-c search_path=public,cutover_control'", `host=h options=-c\ search_path=cutover`,
		`host=h options='-c search_path=cutover`, `-c search_path=public,\ "Cutover_Stage"`, `--search-path=pg_catalog`,
		`"Cutover".ledger`, `"cutover.lineage"`, `\`, `'`, `"`, "-c", "=", "postgres://%zz", "a='\\",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		check := func(what, schema, why string) {
			if why != Schema(schema) {
				t.Fatalf("%s(%q) = %q, %q, but Schema(%q) = %q", what, s, schema, why, schema, Schema(schema))
			}
		}
		schema, why := DSNSearchPath(s)
		check("DSNSearchPath", schema, why)
		schema, why = DSNSearchPath("postgres://u@h/db?options=" + s)
		check("DSNSearchPath URL", schema, why)
		schema, why = DSNSearchPath("host=h options=" + s)
		check("DSNSearchPath keyword/value", schema, why)
		schema, why = ParamsSearchPath(map[string]string{"options": s, "search_path": s})
		check("ParamsSearchPath", schema, why)
		schema, why = Table(s)
		check("Table", schema, why)
		if why != "" && !strings.Contains(s, schema) {
			t.Fatalf("Table(%q) = %q, not part of the name", s, schema)
		}
	})
}
