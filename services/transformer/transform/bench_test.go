package transform

import (
	"fmt"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	transformerv1 "github.com/cutover/cutover/gen/cutover/transformer/v1"
	"github.com/cutover/cutover/services/kit/batch"
)

// ordersBatch is the benchmark shape: 8 text columns as a CSV extract gives.
func ordersBatch(n int) *commonv1.Batch {
	names := []string{"id", "customer_id", "order_no", "status", "amount", "currency", "created_at", "note"}
	bs := make([]*batch.Builder, len(names))
	for k, name := range names {
		bs[k] = batch.NewBuilder(name, tText, n)
	}
	statuses := []string{"new", "paid", "shipped"}
	for i := range n {
		bs[0].AppendString(fmt.Sprint(i + 1))
		bs[1].AppendString(fmt.Sprint(1000 + i%977))
		bs[2].AppendString(fmt.Sprintf("ORD-%08d", i))
		bs[3].AppendString(statuses[i%3])
		bs[4].AppendString(fmt.Sprintf("%d.%02d", i%100000, i%100))
		bs[5].AppendString("EUR")
		bs[6].AppendString(fmt.Sprintf("2024-%02d-%02d %02d:%02d:%02d.%06d+00", 1+i%12, 1+i%28, i%24, i%60, i%60, i%1000000))
		bs[7].AppendString("a note of moderate length for the order")
	}
	b := &commonv1.Batch{NumRows: int32(n)}
	for _, bb := range bs {
		b.Columns = append(b.Columns, bb.Column())
	}
	return b
}

func ordersConfig() *transformerv1.TransformConfig {
	return &transformerv1.TransformConfig{Columns: []*commonv1.ColumnMapping{
		{Target: "id", Source: "id", Type: tInt, NotNull: true},
		{Target: "customer_id", Source: "customer_id", Type: tInt},
		{Target: "order_no", Source: "order_no", Type: tText, MaxLength: 20},
		{Target: "status", Source: "status", Type: tText},
		{Target: "amount", Source: "amount", Type: tNum, Precision: 12, Scale: 2},
		{Target: "currency", Source: "currency", Type: tText, MaxLength: 3},
		{Target: "created_at", Source: "created_at", Type: tTS},
		{Target: "note", Source: "note", Type: tText},
	}}
}

func TestOrdersShapeHasNoRejects(t *testing.T) {
	out, err := Apply(ordersConfig(), ordersBatch(1000))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Rejects) != 0 {
		t.Fatalf("rejects: %v", out.Rejects[0])
	}
}

func BenchmarkApply(b *testing.B) {
	const rows = 10_000
	in := ordersBatch(rows)
	p, err := compile(ordersConfig())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(in.Columns[0].Data) + len(in.Columns[1].Data) + len(in.Columns[2].Data) + len(in.Columns[3].Data) +
		len(in.Columns[4].Data) + len(in.Columns[5].Data) + len(in.Columns[6].Data) + len(in.Columns[7].Data)))
	for b.Loop() {
		if _, err := p.apply(in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/row")
}

// BenchmarkApplyIDsFilter: the orders shape with a new id, a reference and a
// row filter that leaves a third of the rows out.
func BenchmarkApplyIDsFilter(b *testing.B) {
	const rows = 10_000
	in := ordersBatch(rows)
	cfg := ordersConfig()
	cfg.System = "pos-a"
	cfg.Columns[0].NewId = &commonv1.NewId{Entity: "order"}
	cfg.Columns[1].Ref = &commonv1.IdRef{Entity: "customer"}
	cfg.Filters = []*commonv1.RowFilter{{When: `status == "shipped"`, Reason: "shipped"}}
	p, err := compile(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.apply(in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/row")
}
