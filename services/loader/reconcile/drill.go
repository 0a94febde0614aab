package reconcile

import (
	"context"
	"math/big"
	"slices"
	"sort"
	"strings"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"
)

// digest is one side's rows per key bucket: how many, and the XOR of their
// row hashes.
type digest struct {
	n [reconBuckets]int64
	x [reconBuckets]int64
}

func (d *digest) add(o *digest) {
	for b := range reconBuckets {
		d.n[b] += o.n[b]
		d.x[b] ^= o.x[b]
	}
}

func (d *digest) rows() int64 {
	var n int64
	for _, c := range d.n {
		n += c
	}
	return n
}

// targetDigest digests the target table's rows in SQL.
func (r *reconciler) targetDigest(ctx context.Context, p *tablePlan) (*digest, error) {
	q := `SELECT b, count(*), bit_xor(h) FROM (SELECT ` + p.sqlBucket() + ` AS b, ` + p.sqlRowHash() + ` AS h FROM ` + p.ident + ` t) s GROUP BY b`
	d := &digest{}
	err := r.db.query(ctx, "hash the rows of "+p.ident, q, nil, func(rows pgx.Rows) error {
		var b int
		var n, x int64
		if err := rows.Scan(&b, &n, &x); err != nil {
			return err
		}
		d.n[b], d.x[b] = n, x
		return nil
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// rowDiff is a differing key and its values, to order the differences by.
type rowDiff struct {
	*commonv1.RowDifference
	keyVals []string
}

type sideRow struct {
	h       int64
	display string
}

type keyRows struct {
	key     string
	keyVals []string
	src     []sideRow
	tgt     []sideRow
}

// drill finds the differing keys of the selected buckets: the target's rows
// of those buckets from SQL, the source's from a pass that keeps only them.
func (r *reconciler) drill(ctx context.Context, p *tablePlan, sel map[int]bool) ([]*rowDiff, error) {
	byKey := map[string]*keyRows{}
	get := func(vals []*string) *keyRows {
		key, kv, lp := p.keyOf(vals)
		kr := byKey[lp]
		if kr == nil {
			kr = &keyRows{key: key, keyVals: kv}
			byKey[lp] = kr
		}
		return kr
	}
	var src *sourceResult
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { src, err = r.source(gctx, p, sel); return err })
	var tgt []struct {
		h    int64
		vals []*string
	}
	g.Go(func() error {
		buckets := make([]int32, 0, len(sel))
		for b := range sel {
			buckets = append(buckets, int32(b))
		}
		vals := make([]string, len(p.compared))
		for k, c := range p.compared {
			vals[k] = "(t." + pgx.Identifier{c.name}.Sanitize() + ")::text"
		}
		q := `SELECT h, v FROM (SELECT ` + p.sqlBucket() + ` AS b, ` + p.sqlRowHash() + ` AS h, ARRAY[` + strings.Join(vals, ", ") + `] AS v FROM ` +
			p.ident + ` t) s WHERE b = ANY($1)`
		return r.db.query(gctx, "read the differing rows of "+p.ident, q, []any{buckets}, func(rows pgx.Rows) error {
			var h int64
			var v []*string
			if err := rows.Scan(&h, &v); err != nil {
				return err
			}
			tgt = append(tgt, struct {
				h    int64
				vals []*string
			}{h, v})
			return nil
		})
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, row := range src.rows {
		kr := get(row.vals)
		kr.src = append(kr.src, sideRow{row.h, p.display(row.vals)})
	}
	for _, row := range tgt {
		kr := get(row.vals)
		kr.tgt = append(kr.tgt, sideRow{row.h, p.display(row.vals)})
	}
	var out []*rowDiff
	for _, kr := range byKey {
		kind := differs(kr.src, kr.tgt)
		if kind == "" {
			continue
		}
		out = append(out, &rowDiff{RowDifference: &commonv1.RowDifference{Key: kr.key, Kind: kind,
			Source: joinRows(kr.src), Target: joinRows(kr.tgt)}, keyVals: kr.keyVals})
	}
	return out, nil
}

// differs says how one key's rows differ between the sides: missing (more
// in the source), extra (more in the target), changed (as many, other
// hashes), or "" (the same).
func differs(src, tgt []sideRow) string {
	switch ns, nt := len(src), len(tgt); {
	case ns > nt:
		return "missing"
	case nt > ns:
		return "extra"
	}
	hs, ht := make([]int64, len(src)), make([]int64, len(tgt))
	for k := range src {
		hs[k], ht[k] = src[k].h, tgt[k].h
	}
	slices.Sort(hs)
	slices.Sort(ht)
	if slices.Equal(hs, ht) {
		return ""
	}
	return "changed"
}

func joinRows(rows []sideRow) string {
	s := make([]string, len(rows))
	for k, r := range rows {
		s[k] = r.display
	}
	sort.Strings(s)
	return strings.Join(s, " | ")
}

// lessKey orders keys column by column, numbers as numbers.
func lessKey(a, b []string) bool {
	for k := range min(len(a), len(b)) {
		if a[k] == b[k] {
			continue
		}
		x, ok1 := new(big.Rat).SetString(a[k])
		y, ok2 := new(big.Rat).SetString(b[k])
		if ok1 && ok2 {
			if c := x.Cmp(y); c != 0 {
				return c < 0
			}
		}
		return a[k] < b[k]
	}
	return len(a) < len(b)
}
