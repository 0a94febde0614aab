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
