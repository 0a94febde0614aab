package extract

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"github.com/cutover/cutover/services/kit/pgtest"
	"github.com/jackc/pgx/v5"
)

// BenchmarkReadCSV reads 1e5 order rows (~100 bytes, 8 columns) in batches
// of 10000, the hot path of a CSV job.
func BenchmarkReadCSV(b *testing.B) {
	roots := testRoots(b)
	benchReadCSV(b, func(s *commonv1.CsvSource, cursor string, size int) (*commonv1.Batch, bool, error) {
		return readCSV(roots, s, cursor, size)
	})
}

// BenchmarkReadCSVReference runs the same reads through the encoding/csv
// reader the scanner replaced, to compare both on one machine.
func BenchmarkReadCSVReference(b *testing.B) { benchReadCSV(b, refReadCSV) }

func benchReadCSV(b *testing.B, read func(*commonv1.CsvSource, string, int) (*commonv1.Batch, bool, error)) {
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
			bt, done, err := read(spec, cursor, 10000)
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

// BenchmarkReadPG reads 1e5 order rows from PostgreSQL in batches of 10000.
func BenchmarkReadPG(b *testing.B) {
	url := pgtest.NewDatabase(b)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE orders (id int8 PRIMARY KEY, customer_id int8, order_no text, status text,
		  amount numeric(12,2), currency text, created_at timestamptz, note text)`,
		`INSERT INTO orders SELECT g, g % 5000, 'ORD-' || lpad(g::text, 8, '0'), 'shipped', (g % 997) + 0.25, 'EUR',
		  timestamptz '2024-03-01 10:00:00+00' + g * interval '1 minute', 'note, with comma ' || g
		  FROM generate_series(1, 100000) g`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	conn.Close(ctx)
	s := New()
	defer s.Close()
	spec := &commonv1.PostgresSource{Dsn: url, Table: "orders"}
	b.ReportAllocs()
	for b.Loop() {
		cursor, rows := "", 0
		for {
			bt, done, err := s.readPG(ctx, spec, nil, cursor, readLimits{rows: 10000, bytes: DefaultBatchBytes})
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
