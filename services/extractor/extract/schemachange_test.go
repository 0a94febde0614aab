package extract

import (
	"errors"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
)

func TestKnownColumns(t *testing.T) {
	known := []*commonv1.SourceColumn{{Name: "id", SourceType: "integer"}, {Name: "v", SourceType: "text"}}
	for _, tc := range []struct {
		name  string
		now   []colDef
		known []*commonv1.SourceColumn
		added string
		err   []string
	}{
		{"same", []colDef{{"id", "integer"}, {"v", "text"}}, known, "", nil},
		{"not checked", []colDef{{"id", "bigint"}}, nil, "", nil},
		{"added", []colDef{{"id", "integer"}, {"v", "text"}, {"w", "date"}}, known, "w", nil},
		{"type case", []colDef{{"id", "INTEGER"}, {"v", "text"}}, known, "", nil},
		{"dropped", []colDef{{"id", "integer"}, {"w", "date"}}, known, "", []string{"column v text", "no longer in the table", "now has id integer, w date"}},
		{"retyped", []colDef{{"id", "integer"}, {"v", "jsonb"}}, known, "", []string{"column v of s.t changed type", "text when the job was created, jsonb now"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			added, err := knownColumns("source.x.table", "s.t", tc.now, tc.known)
			if tc.err == nil {
				if err != nil || strings.Join(added, ",") != tc.added {
					t.Fatalf("added %v, err %v; want %q", added, err, tc.added)
				}
				return
			}
			if !errors.Is(err, ErrPrecondition) {
				t.Fatalf("err %v, want a precondition", err)
			}
			for _, part := range tc.err {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("%q does not say %q", err, part)
				}
			}
		})
	}
}

func TestAddsOnly(t *testing.T) {
	for q, want := range map[string]bool{
		"ALTER TABLE items ADD COLUMN w int NULL":                      true,
		"alter table `db`.`items` add w varchar(10), add index (w)":    true,
		"ALTER TABLE items ADD COLUMN w decimal(10,2) DEFAULT NULL":    true,
		"ALTER TABLE items ADD KEY k (a, b)":                           true,
		"ALTER TABLE items ADD COLUMN w int FIRST":                     false,
		"ALTER TABLE items ADD COLUMN w int AFTER id":                  false,
		"ALTER TABLE items ADD PRIMARY KEY (id)":                       false,
		"ALTER TABLE items ADD COLUMN w int, DROP COLUMN v":            false,
		"ALTER TABLE items MODIFY qty bigint":                          false,
		"ALTER TABLE items ADD CONSTRAINT c CHECK (qty > 0)":           false,
		"ALTER TABLE items ADD UNIQUE (v)":                             false,
		"ALTER TABLE items ADD":                                        false,
		"CREATE TABLE items (id int)":                                  false,
		"ALTER TABLE items ADD COLUMN w enum('a,b', 'c'), ADD KEY (w)": true,
	} {
		if got := addsOnly(q); got != want {
			t.Errorf("addsOnly(%q) = %v, want %v", q, got, want)
		}
	}
}
