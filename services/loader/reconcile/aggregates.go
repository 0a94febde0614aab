package reconcile

import (
	"context"
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strconv"
	"strings"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"github.com/jackc/pgx/v5"
)

// Group totals (TableSpec.aggregates): the target's from SQL, the source's
// summed exactly in Go from the canonical text, compared group by group.

// aggAcc is one group's totals: row count and exact sums.
type aggAcc struct {
	group   []*string
	count   int64
	sums    []*big.Rat // nil: no non-NULL value (SQL sum is NULL)
	special []string   // NaN or ±Infinity seen, which decide the sum
	scale   []int      // largest number of fraction digits seen, for display
}

func newAcc(group []*string, sums int) *aggAcc {
	return &aggAcc{group: group, sums: make([]*big.Rat, sums), special: make([]string, sums), scale: make([]int, sums)}
}

// addText adds one value's canonical text to sum k.
func (a *aggAcc) addText(k int, v string) {
	x, ok := new(big.Rat).SetString(v)
	if !ok {
		a.special[k] = specialSum(a.special[k], v)
		return
	}
	if dot := strings.IndexByte(v, '.'); dot >= 0 && strings.IndexAny(v, "eE") < 0 {
		a.scale[k] = max(a.scale[k], len(v)-dot-1)
	}
	if a.sums[k] == nil {
		a.sums[k] = x
		return
	}
	a.sums[k].Add(a.sums[k], x)
}

func (a *aggAcc) merge(o *aggAcc) {
	a.count += o.count
	for k := range a.sums {
		if o.special[k] != "" {
			a.special[k] = specialSum(a.special[k], o.special[k])
		}
		a.scale[k] = max(a.scale[k], o.scale[k])
		switch {
		case o.sums[k] == nil:
		case a.sums[k] == nil:
			a.sums[k] = o.sums[k]
		default:
			a.sums[k].Add(a.sums[k], o.sums[k])
		}
	}
}

// specialSum combines non-finite values as numeric sum does.
func specialSum(have, v string) string {
	switch {
	case have == "" || have == v:
		return v
	default: // NaN with anything, or +Infinity with -Infinity
		return "NaN"
	}
}

// text renders sum k as PostgreSQL prints it; "NULL" when SQL sum is NULL.
func (a *aggAcc) text(k int) string {
	switch {
	case a.special[k] != "":
		return a.special[k]
	case a.sums[k] == nil:
		return "NULL"
	}
	for s := a.scale[k]; ; s++ {
		t := a.sums[k].FloatString(s)
		if back, _ := new(big.Rat).SetString(t); back.Cmp(a.sums[k]) == 0 || s > 60 {
			return t
		}
	}
}

// targetAggs totals the target table's groups in SQL.
func (r *reconciler) targetAggs(ctx context.Context, p *tablePlan) ([]map[string]*aggAcc, error) {
	out := make([]map[string]*aggAcc, len(p.aggs))
	for k, a := range p.aggs {
		var sel, groupBy []string
		for g, pos := range a.group {
			sel = append(sel, "(t."+pgx.Identifier{p.compared[pos].name}.Sanitize()+")::text")
			groupBy = append(groupBy, strconv.Itoa(g+1))
		}
		sel = append(sel, "count(*)")
		for s, pos := range a.sums {
			col := "t." + pgx.Identifier{p.compared[pos].name}.Sanitize()
			if a.float[s] {
				col = "(" + col + ")::text::numeric" // the exact decimal its text shows
			}
			sel = append(sel, "sum("+col+")::text")
		}
		q := `SELECT ` + strings.Join(sel, ", ") + ` FROM ` + p.ident + ` t`
		if len(groupBy) > 0 {
			q += ` GROUP BY ` + strings.Join(groupBy, ", ")
		}
		m := map[string]*aggAcc{}
		err := r.db.query(ctx, fmt.Sprintf("aggregate %q on %s", a.name, p.ident), q, nil, func(rows pgx.Rows) error {
			group := make([]*string, len(a.group))
			var count int64
			sums := make([]*string, len(a.sums))
			dst := make([]any, 0, len(group)+1+len(sums))
			for g := range group {
				dst = append(dst, &group[g])
			}
			dst = append(dst, &count)
			for s := range sums {
				dst = append(dst, &sums[s])
			}
			if err := rows.Scan(dst...); err != nil {
				return err
			}
			acc := newAcc(group, len(a.sums))
			acc.count = count
			for s, v := range sums {
				if v != nil {
					acc.addText(s, *v)
				}
			}
			m[groupKey(group)] = acc
			return nil
		})
		if err != nil {
			return nil, err
		}
		out[k] = m
	}
	return out, nil
}

func groupKey(group []*string) string {
	var lp []byte
	for _, v := range group {
		if v == nil {
			lp = appendLP(lp, nil, false)
		} else {
			lp = appendLP(lp, []byte(*v), true)
		}
	}
	return string(lp)
}

// compareAggs compares one aggregate's groups, the first maxDiff
// differences in group order.
func (r *reconciler) compareAggs(p *tablePlan, a aggPlan, src, tgt map[string]*aggAcc) *commonv1.AggregateCheck {
	if len(a.group) == 0 { // one total, present on both sides even over no rows
		for _, m := range []map[string]*aggAcc{src, tgt} {
			if m[""] == nil {
				m[""] = newAcc(nil, len(a.sums))
			}
		}
	}
	keys := map[string][]*string{}
	for k, v := range src {
		keys[k] = v.group
	}
	for k, v := range tgt {
		keys[k] = v.group
	}
	type diff struct {
		vals []string
		d    *commonv1.GroupDifference
	}
	var diffs []diff
	for k, group := range keys {
		s, t := src[k], tgt[k]
		if s == nil {
			s = newAcc(group, len(a.sums))
		}
		if t == nil {
			t = newAcc(group, len(a.sums))
		}
		vals := make([]string, len(group))
		for g, v := range group {
			vals[g] = "NULL"
			if v != nil {
				vals[g] = *v
			}
		}
		if s.count != t.count {
			diffs = append(diffs, diff{vals, &commonv1.GroupDifference{Group: vals, Measure: "count",
				Source: strconv.FormatInt(s.count, 10), Target: strconv.FormatInt(t.count, 10)}})
		}
		for m, pos := range a.sums {
			if ss, ts := s.text(m), t.text(m); !sumEqual(s, t, m) && (a.approx == nil || !a.approx[m] || !nearlyEqual(s, t, m)) {
				diffs = append(diffs, diff{vals, &commonv1.GroupDifference{Group: vals,
					Measure: "sum(" + p.compared[pos].name + ")", Source: ss, Target: ts}})
			}
		}
	}
	sort.SliceStable(diffs, func(x, y int) bool {
		if !slices.Equal(diffs[x].vals, diffs[y].vals) {
			return lessKey(diffs[x].vals, diffs[y].vals)
		}
		return diffs[x].d.Measure < diffs[y].d.Measure
	})
	out := &commonv1.AggregateCheck{Name: a.name, Ok: len(diffs) == 0, Groups: int64(len(keys))}
	for k, d := range diffs {
		if k == r.maxDiff {
			break
		}
		out.Differences = append(out.Differences, d.d)
	}
	return out
}

func sumEqual(a, b *aggAcc, k int) bool {
	if a.special[k] != "" || b.special[k] != "" {
		return a.special[k] == b.special[k]
	}
	if a.sums[k] == nil || b.sums[k] == nil {
		return a.sums[k] == nil && b.sums[k] == nil
	}
	return a.sums[k].Cmp(b.sums[k]) == 0
}

// nearlyEqual compares sums of floating-point values, whose last digits
// depend on the order of addition: equal to 1e-9 of the larger.
func nearlyEqual(a, b *aggAcc, k int) bool {
	if a.sums[k] == nil || b.sums[k] == nil || a.special[k] != "" || b.special[k] != "" {
		return false
	}
	d := new(big.Rat).Sub(a.sums[k], b.sums[k])
	d.Abs(d)
	m := new(big.Rat).Abs(a.sums[k])
	if n := new(big.Rat).Abs(b.sums[k]); n.Cmp(m) > 0 {
		m = n
	}
	return d.Cmp(m.Mul(m, big.NewRat(1, 1_000_000_000))) <= 0
}
