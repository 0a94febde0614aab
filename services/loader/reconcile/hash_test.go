package reconcile

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestHashesMatchPostgres: the row hash, the key bucket and the
// length-prefixed form are computed identically in Go and in SQL.
func TestHashesMatchPostgres(t *testing.T) {
	ctx := context.Background()
	pool, tgt := testTarget(t)
	if _, err := pool.Exec(ctx, `CREATE TABLE h (id bigint, "Note" text, n numeric(8,2));
		INSERT INTO h VALUES (1, 'a', 1.5), (2, NULL, NULL), (3, '', 0), (4, 'é~:', -2), (5, '3:abc', 1e3), (-4097, 'neg', 1), (NULL, 'no key', 2)`); err != nil {
		t.Fatal(err)
	}
	for _, keyType := range []string{"text", "int8"} {
		t.Run("key "+keyType, func(t *testing.T) { checkHashes(t, tgt, keyType) })
	}
}

func checkHashes(t *testing.T, tgt Target, keyType string) {
	ctx := context.Background()
	p := &tablePlan{ident: "h", compared: []targetCol{{name: "id", typname: keyType}, {name: "Note"}, {name: "n"}}, key: []int{0}}
	n := 0
	err := tgt.query(ctx, "hash", `SELECT ARRAY[(t.id)::text, (t."Note")::text, (t.n)::text], `+p.sqlBucket()+`, `+p.sqlRowHash()+` FROM h t ORDER BY id`, nil, func(rows pgx.Rows) error {
		var vals []*string
		var bucket int
		var h int64
		if err := rows.Scan(&vals, &bucket, &h); err != nil {
			return err
		}
		var lp []byte
		for _, v := range vals {
			if v == nil {
				lp = appendLP(lp, nil, false)
			} else {
				lp = appendLP(lp, []byte(*v), true)
			}
		}
		_, _, klp := p.keyOf(vals)
		if got := rowHash(lp); got != h {
			t.Errorf("row %q: Go hash %d, SQL %d", lp, got, h)
		}
		var key []byte
		if vals[0] != nil {
			key = []byte(*vals[0])
		}
		if got := p.bucketOf([]byte(klp), key); got != bucket || bucket < 0 || bucket >= reconBuckets {
			t.Errorf("key %q: Go bucket %d, SQL %d", klp, got, bucket)
		}
		n++
		return nil
	})
	if err != nil || n != 7 {
		t.Fatalf("rows %d, err %v", n, err)
	}
}
