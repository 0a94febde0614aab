package validate

import (
	"errors"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	validatorv1 "github.com/cutover/cutover/gen/cutover/validator/v1"
)

func TestCheckRules(t *testing.T) {
	cols := []*commonv1.ColumnMapping{
		{Target: "id", Type: tInt}, {Target: "amount", Type: tNum}, {Target: "status", Type: tText},
		{Target: "created_at", Type: tTS}, {Target: "day", Type: tDate}, {Target: "score", Type: tFloat}, {Target: "later"},
	}
	tests := []struct {
		name string
		rule *commonv1.Rule
		want string // "" = valid
		kind error
	}{
		{"not_null", notNull("id"), "", nil},
		{"regex", regex("status", "^[a-z]+$"), "", nil},
		{"numeric range", rng("amount", "0", "1e4"), "", nil},
		{"int range min only", rng("id", "1", ""), "", nil},
		{"timestamp range", rng("created_at", "2020-01-01", "2030-01-01T00:00:00Z"), "", nil},
		{"date range", rng("day", "2020-01-01", "2020-01-01"), "", nil},
		{"float range", rng("score", "-1.5", "inf"), "", nil},
		{"untyped column range", rng("later", "1", "2"), "", nil},
		{"one_of", oneOf("status", "a"), "", nil},
		{"unknown column", notNull("x"), `t.rules[0].column: unknown column "x" (columns: id, amount, status, created_at, day, score, later)`, ErrUnknownColumn},
		{"empty column", notNull(""), "t.rules[0].column: must not be empty", ErrInvalidRule},
		{"no kind", &commonv1.Rule{Column: "id"}, "t.rules[0]: exactly one of not_null, regex, range, one_of, length, expr, unique or references must be set", ErrInvalidRule},
		{"bad regex", regex("status", "a("), "t.rules[0].regex.pattern: error parsing regexp", ErrInvalidRule},
		{"bad int bound", rng("id", "1.5", ""), `t.rules[0].range.min: "1.5" is not a valid bigint`, ErrInvalidRule},
		{"bad numeric bound", rng("amount", "", "1/3"), `t.rules[0].range.max: "1/3" is not a valid numeric`, ErrInvalidRule},
		{"bad date bound", rng("day", "2023-02-30", ""), `t.rules[0].range.min: "2023-02-30" is not a valid date`, ErrInvalidRule},
		{"bad ts bound", rng("created_at", "soon", ""), `t.rules[0].range.min: "soon" is not a valid timestamptz`, ErrInvalidRule},
		{"min above max", rng("amount", "10", "9.99"), "t.rules[0].range: min 10 is above max 9.99", ErrInvalidRule},
		{"no bounds", rng("amount", "", " "), "t.rules[0].range: min or max must be set", ErrInvalidRule},
		{"range on text", rng("status", "a", "z"), "t.rules[0].range: needs a bigint, double precision, numeric, timestamptz or date column, not text", ErrInvalidRule},
		{"empty one_of", oneOf("status"), "t.rules[0].one_of.values: must not be empty", ErrInvalidRule},
	}
	for _, tt := range tests {
		err := CheckRules(&validatorv1.CheckRulesRequest{Rules: []*commonv1.Rule{tt.rule}, Columns: cols, FieldPrefix: "t"})
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: unexpected %v", tt.name, err)
		case tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want) || !errors.Is(err, tt.kind)):
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestCheckRulesNamesTheRightIndex(t *testing.T) {
	err := CheckRules(&validatorv1.CheckRulesRequest{
		Rules:   []*commonv1.Rule{notNull("a"), notNull("x")},
		Columns: []*commonv1.ColumnMapping{{Target: "a", Type: tText}},
	})
	if err == nil || !strings.HasPrefix(err.Error(), `rules[1].column: unknown column "x"`) {
		t.Errorf("err = %v", err)
	}
}
