package validate

import (
	"fmt"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"github.com/cutover/cutover/services/kit/batch"
)

// ordersBatch is the transformer's output for the benchmark orders shape.
func ordersBatch(n int) *commonv1.Batch {
	id := batch.NewBuilder("id", tInt, n)
	cust := batch.NewBuilder("customer_id", tInt, n)
	no := batch.NewBuilder("order_no", tText, n)
	st := batch.NewBuilder("status", tText, n)
	amt := batch.NewBuilder("amount", tNum, n)
	cur := batch.NewBuilder("currency", tText, n)
	at := batch.NewBuilder("created_at", tTS, n)
	note := batch.NewBuilder("note", tText, n)
	statuses := []string{"new", "paid", "shipped"}
	for i := range n {
		id.AppendInt(int64(i + 1))
		cust.AppendInt(int64(1000 + i%977))
		no.AppendString(fmt.Sprintf("ORD-%08d", i))
		st.AppendString(statuses[i%3])
		amt.AppendString(fmt.Sprintf("%d.%02d", i%100000, i%100))
		cur.AppendString("EUR")
		at.AppendInt(1_700_000_000_000_000 + int64(i)*1_000_000)
		note.AppendString("a note of moderate length for the order")
	}
	b := &commonv1.Batch{NumRows: int32(n)}
	for _, bb := range []*batch.Builder{id, cust, no, st, amt, cur, at, note} {
		b.Columns = append(b.Columns, bb.Column())
	}
	return b
}

func ordersRules() []*commonv1.Rule {
	return []*commonv1.Rule{
		notNull("id"),
		rng("id", "1", ""),
		oneOf("status", "new", "paid", "shipped"),
		rng("amount", "0", "100000"),
		regex("order_no", `^ORD-\d{8}$`),
		oneOf("currency", "EUR", "USD"),
		rng("created_at", "2000-01-01", "2100-01-01"),
	}
}

func TestOrdersShapePasses(t *testing.T) {
	out, err := Apply(ordersRules(), ordersBatch(1000))
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
	c, err := Compile(ordersRules())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Apply(in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/row")
}
