package transform

import (
	"errors"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	transformerv1 "github.com/cutover/cutover/gen/cutover/transformer/v1"
)

func TestCheckMapping(t *testing.T) {
	source := []*commonv1.SourceColumn{{Name: "id"}, {Name: "amount"}, {Name: "created"}}
	ok := func() []*commonv1.ColumnMapping {
		return []*commonv1.ColumnMapping{
			{Target: "id", Source: "id", Type: tInt},
			{Target: "amount", Source: "amount", Type: tNum, Precision: 12, Scale: 2, Default: sp("0")},
			{Target: "created_at", Source: "created", Type: tTS, Formats: []string{"02/01/2006"}},
			{Target: "origin", Type: tText, Default: sp("legacy")},
		}
	}
	tests := []struct {
		name   string
		change func(m []*commonv1.ColumnMapping) []*commonv1.ColumnMapping
		want   string // "" = valid
		kind   error
	}{
		{"valid", func(m []*commonv1.ColumnMapping) []*commonv1.ColumnMapping { return m }, "", nil},
		{"unknown source", func(m []*commonv1.ColumnMapping) []*commonv1.ColumnMapping { m[1].Source = "amout"; return m },
			`tables[0].columns[1].source: unknown source column "amout" (source has: id, amount, created)`, ErrUnknownSourceColumn},
		{"empty target", func(m []*commonv1.ColumnMapping) []*commonv1.ColumnMapping { m[2].Target = ""; return m },
			"tables[0].columns[2].target: must not be empty", ErrInvalidMapping},
		{"duplicate target", func(m []*commonv1.ColumnMapping) []*commonv1.ColumnMapping { m[3].Target = "id"; return m },
			`tables[0].columns[3].target: duplicate target "id" (also tables[0].columns[0])`, ErrInvalidMapping},
		{"constant without default", func(m []*commonv1.ColumnMapping) []*commonv1.ColumnMapping { m[3].Default = nil; return m },
			"tables[0].columns[3].source: empty source needs a default", ErrInvalidMapping},
		{"no type", func(m []*commonv1.ColumnMapping) []*commonv1.ColumnMapping { m[0].Type = tUnspec; return m },
			"tables[0].columns[0].type: must be set", ErrInvalidMapping},
		{"bad default", func(m []*commonv1.ColumnMapping) []*commonv1.ColumnMapping { m[1].Default = sp("1.234"); return m },
			`tables[0].columns[1].default: cannot cast "1.234" to numeric(12,2): would be rounded to 2 decimal places`, ErrInvalidMapping},
		{"empty format", func(m []*commonv1.ColumnMapping) []*commonv1.ColumnMapping {
			m[2].Formats = append(m[2].Formats, " ")
			return m
		},
			"tables[0].columns[2].formats[1]: must not be empty", ErrInvalidMapping},
		{"scale above precision", func(m []*commonv1.ColumnMapping) []*commonv1.ColumnMapping { m[1].Scale = 13; return m },
			"tables[0].columns[1].scale: must be 0..precision", ErrInvalidMapping},
		{"negative max length", func(m []*commonv1.ColumnMapping) []*commonv1.ColumnMapping { m[3].MaxLength = -1; return m },
			"tables[0].columns[3].max_length: must not be negative", ErrInvalidMapping},
		{"default too long", func(m []*commonv1.ColumnMapping) []*commonv1.ColumnMapping { m[3].MaxLength = 3; return m },
			`tables[0].columns[3].default: cannot cast "legacy" to varchar(3): longer than 3 characters`, ErrInvalidMapping},
		{"no columns", func([]*commonv1.ColumnMapping) []*commonv1.ColumnMapping { return nil },
			"tables[0].columns: at least one column mapping is needed", ErrInvalidMapping},
	}
	for _, tt := range tests {
		err := CheckMapping(&transformerv1.CheckMappingRequest{Columns: tt.change(ok()), SourceColumns: source, FieldPrefix: "tables[0]"})
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: unexpected error %v", tt.name, err)
		case tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want) || !errors.Is(err, tt.kind)):
			t.Errorf("%s: err = %v, want %q (%v)", tt.name, err, tt.want, tt.kind)
		}
	}
}

func TestCheckMappingNoPrefix(t *testing.T) {
	err := CheckMapping(&transformerv1.CheckMappingRequest{Columns: []*commonv1.ColumnMapping{{Target: "a", Source: "x", Type: tInt}}})
	if err == nil || !strings.HasPrefix(err.Error(), `columns[0].source: unknown source column "x" (source has: no columns)`) {
		t.Errorf("err = %v", err)
	}
}
