package extract

import (
	"context"

	"reflect"
	"sort"
	"strings"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
)

// sourceKind reads one kind of source (one SourceSpec oneof case). Each
// kind lives in its own file and registers itself, so adding a source
// touches no shared switch.
type sourceKind interface {
	describe(ctx context.Context, s *Service, src *commonv1.SourceSpec) (*extractorv1.DescribeSourceResponse, error)
	plan(ctx context.Context, s *Service, src *commonv1.SourceSpec, n int) ([]*commonv1.KeyRange, error)
	// read returns the batch after cursor within rng and whether the range
	// is exhausted. The same cursor (and limits) always yields the same
	// rows. done is true only when no row is left after the batch.
	read(ctx context.Context, s *Service, src *commonv1.SourceSpec, rng *commonv1.KeyRange, cursor string, lim readLimits) (*commonv1.Batch, bool, error)
}

var kinds = map[reflect.Type]sourceKind{}
var kindNames = map[reflect.Type]string{}

// register adds a kind for the oneof wrapper type of example, e.g.
// &commonv1.SourceSpec_Csv{}; name is the spec field name.
func register(example any, name string, k sourceKind) {
	t := reflect.TypeOf(example)
	kinds[t] = k
	kindNames[t] = name
}

func kindOf(src *commonv1.SourceSpec) (sourceKind, error) {
	if src.GetKind() != nil {
		if k, ok := kinds[reflect.TypeOf(src.GetKind())]; ok {
			return k, nil
		}
	}
	names := make([]string, 0, len(kindNames))
	for _, n := range kindNames {
		names = append(names, n)
	}
	sort.Strings(names)
	return nil, invalid("source", "one of %s is required", strings.Join(names, ", "))
}

type csvKind struct{}

func (csvKind) describe(_ context.Context, s *Service, src *commonv1.SourceSpec) (*extractorv1.DescribeSourceResponse, error) {
	return describeCSV(s, src.GetCsv())
}

func (csvKind) plan(ctx context.Context, s *Service, src *commonv1.SourceSpec, n int) ([]*commonv1.KeyRange, error) {
	return planCSV(ctx, s, src.GetCsv(), n)
}

func (csvKind) read(_ context.Context, s *Service, src *commonv1.SourceSpec, rng *commonv1.KeyRange, cursor string, lim readLimits) (*commonv1.Batch, bool, error) {
	return readCSVRange(s.files, s, src.GetCsv(), rng, cursor, lim)
}

type pgKind struct{}

func (pgKind) describe(ctx context.Context, s *Service, src *commonv1.SourceSpec) (*extractorv1.DescribeSourceResponse, error) {
	return s.describePG(ctx, src.GetPostgres())
}

func (pgKind) plan(ctx context.Context, s *Service, src *commonv1.SourceSpec, n int) ([]*commonv1.KeyRange, error) {
	return s.planPG(ctx, src.GetPostgres(), n)
}

func (pgKind) read(ctx context.Context, s *Service, src *commonv1.SourceSpec, rng *commonv1.KeyRange, cursor string, lim readLimits) (*commonv1.Batch, bool, error) {
	return s.readPG(ctx, src.GetPostgres(), rng, cursor, lim)
}

func init() {
	register(&commonv1.SourceSpec_Csv{}, "csv", csvKind{})
	register(&commonv1.SourceSpec_Postgres{}, "postgres", pgKind{})
}
