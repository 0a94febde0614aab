package extract

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
)

// BenchmarkReadCSV reads 1e5 order rows (~100 bytes, 8 columns) in batches
// of 10000, the hot path of a CSV job.
func BenchmarkReadCSV(b *testing.B) {
	path := filepath.Join(b.TempDir(), "orders.csv")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "id,customer_id,order_no,status,amount,currency,created_at,note")
	for i := range 100000 {
		fmt.Fprintf(w, "%d,%d,ORD-%08d,shipped,%d.%02d,EUR,2024-03-%02dT10:%02d:00Z,\"note, with comma %d\"\n",
			i+1, i%5000, i, i%997, i%100, i%28+1, i%60, i)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	st, _ := f.Stat()
	f.Close()
	spec := &commonv1.CsvSource{Path: path}
	b.SetBytes(st.Size())
	b.ReportAllocs()
	for b.Loop() {
		cursor, rows := "", 0
		for {
			bt, done, err := readCSV(spec, cursor, 10000)
			if err != nil {
				b.Fatal(err)
			}
			rows += int(bt.GetNumRows())
			if done {
				break
			}
			cursor = bt.GetLastKey()
		}
		if rows != 100000 {
			b.Fatalf("read %d rows", rows)
		}
	}
}
