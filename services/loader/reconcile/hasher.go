package reconcile

import (
	"fmt"

	"github.com/cutover/cutover/services/kit/batch"
)

// rowHasher renders, hashes and totals the rows of batches; one per worker.
type rowHasher struct {
	p    *tablePlan
	sel  map[int]bool
	res  *sourceResult
	row  canonRow
	lp   []byte
	klp  []byte
	cols []int // batch column index per compared column
}

func newRowHasher(p *tablePlan, sel map[int]bool) *rowHasher {
	h := &rowHasher{p: p, sel: sel, res: &sourceResult{digest: &digest{}, aggs: make([]map[string]*aggAcc, len(p.aggs))}}
	for k := range h.res.aggs {
		h.res.aggs[k] = map[string]*aggAcc{}
	}
	h.row.ends = make([]int, len(p.compared))
	h.row.nulls = make([]bool, len(p.compared))
	h.cols = make([]int, len(p.compared))
	return h
}

func (h *rowHasher) batch(sb srcBatch) error {
	p, b := h.p, sb.b
	byName := make(map[string]int, len(b.GetColumns()))
	for k, c := range b.GetColumns() {
		byName[c.GetName()] = k
	}
	renders := make([]renderFn, len(p.compared))
	for k, c := range p.compared {
		at, ok := byName[c.name]
		if !ok {
			return fmt.Errorf("%w: table %s: batch %d of partition %s has no column %s", ErrUpstream, b.GetTable(), b.GetSeq(), b.GetPartitionId(), c.name)
		}
		h.cols[k] = at
		renders[k] = p.renders[k][sb.k]
	}
	for i := range int(b.GetNumRows()) {
		if batch.Bit(sb.skip, i) {
			continue
		}
		row := &h.row
		row.buf = row.buf[:0]
		for k := range p.compared {
			c := b.Columns[h.cols[k]]
			row.nulls[k] = batch.IsNull(c, i)
			if !row.nulls[k] {
				row.buf = renders[k](row.buf, c, i)
			}
			row.ends[k] = len(row.buf)
		}
		if len(p.key) > 0 {
			h.klp = h.klp[:0]
			for _, pos := range p.key {
				v, ok := row.value(pos)
				h.klp = appendLP(h.klp, v, ok)
			}
			var key []byte
			if len(p.key) == 1 {
				key, _ = row.value(p.key[0])
			}
			bucket := p.bucketOf(h.klp, key)
			if h.sel != nil {
				if h.sel[bucket] {
					h.res.rows = append(h.res.rows, srcRow{h: h.rowHash(), vals: h.values()})
				}
				continue
			}
			h.res.digest.n[bucket]++
			h.res.digest.x[bucket] ^= h.rowHash()
		}
		for k, a := range p.aggs {
			h.klp = h.klp[:0]
			for _, pos := range a.group {
				v, ok := row.value(pos)
				h.klp = appendLP(h.klp, v, ok)
			}
			acc := h.res.aggs[k][string(h.klp)]
			if acc == nil {
				group := make([]*string, len(a.group))
				for g, pos := range a.group {
					if v, ok := row.value(pos); ok {
						s := string(v)
						group[g] = &s
					}
				}
				acc = newAcc(group, len(a.sums))
				h.res.aggs[k][string(h.klp)] = acc
			}
			acc.count++
			for s, pos := range a.sums {
				if v, ok := row.value(pos); ok {
					acc.addText(s, string(v))
				}
			}
		}
	}
	return nil
}

func (h *rowHasher) rowHash() int64 {
	h.lp = h.lp[:0]
	for k := range h.p.compared {
		v, ok := h.row.value(k)
		h.lp = appendLP(h.lp, v, ok)
	}
	return rowHash(h.lp)
}

func (h *rowHasher) values() []*string {
	out := make([]*string, len(h.p.compared))
	for k := range h.p.compared {
		if v, ok := h.row.value(k); ok {
			s := string(v)
			out[k] = &s
		}
	}
	return out
}
