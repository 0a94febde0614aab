package reconcile

import (
	"context"
	"fmt"
	"math/big"
	"strings"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	"github.com/cutover/cutover/services/kit/checksum"
	"github.com/jackc/pgx/v5"
)

// Declared totals (TableSpec.aggregates) at the independent level: count
// and sums per group, each database summing its own rows in SQL; the
// source's sums times the aggregate's factor must equal the target's.

// indTotal is one aggregate as both sides compute it.
type indTotal struct {
	name    string
	groups  []indCol // compared columns grouped by
	day     []bool   // group by the day of the column
	sums    []targetCol
	srcSums [][]string // per table spec, the source column of each sum
	factor  *big.Rat
}

// parseGroup reads a group_by entry: "col" or "day(col)".
func parseGroup(s string) (string, bool) {
	if strings.HasPrefix(s, "day(") && strings.HasSuffix(s, ")") {
		return strings.TrimSpace(s[4 : len(s)-1]), true
	}
	return s, false
}

// totals computes and compares every declared aggregate; one that cannot
// be computed independently is a warning.
func (it *indTable) totals(ctx context.Context, r *reconciler, cols []targetCol, mappings []map[string]*commonv1.ColumnMapping) ([]*commonv1.AggregateCheck, error) {
	byName := map[string]targetCol{}
	for _, c := range cols {
		byName[c.name] = c
	}
	compared := map[string]indCol{}
	for _, c := range it.cols {
		compared[c.tc.name] = c
	}
	var out []*commonv1.AggregateCheck
	seen := map[string]bool{}
	for k := range it.sides {
		spec := it.sides[k].spec
		for a, ag := range spec.GetAggregates() {
			f := fmt.Sprintf("tables[%d].aggregates[%d]", r.req.GetSources()[k].GetTableIndex(), a)
			t := &indTotal{name: aggName(ag), factor: big.NewRat(1, 1)}
			if seen[t.name] {
				continue
			}
			seen[t.name] = true
			if ag.GetFactor() != "" {
				if _, ok := t.factor.SetString(ag.GetFactor()); !ok {
					return nil, invalid(f+".factor", "%q is not a decimal number", ag.GetFactor())
				}
			}
			why := ""
			for g, e := range ag.GetGroupBy() {
				name, day := parseGroup(e)
				c, ok := compared[name]
				if _, exists := byName[name]; !exists {
					return nil, invalid(fmt.Sprintf("%s.group_by[%d]", f, g), "unknown column %q in target table %s", name, it.target.Ident)
				}
				if !ok && why == "" {
					why = "group column " + name + " is not compared"
				}
				if day && c.kind != checksum.Date && c.kind != checksum.Timestamp && c.kind != checksum.TimestampTZ && why == "" {
					why = "day() of " + name + ", which is not a date or time"
				}
				t.groups = append(t.groups, c)
				t.day = append(t.day, day)
			}
			if len(ag.GetSourceSum()) > 0 && len(ag.GetSourceSum()) != len(ag.GetSum()) {
				return nil, invalid(f+".source_sum", "%d source columns for %d sums; give one per sum or none", len(ag.GetSourceSum()), len(ag.GetSum()))
			}
			t.srcSums = make([][]string, len(it.sides))
			for s, name := range ag.GetSum() {
				c, ok := byName[name]
				if !ok {
					return nil, invalid(fmt.Sprintf("%s.sum[%d]", f, s), "unknown column %q in target table %s", name, it.target.Ident)
				}
				t.sums = append(t.sums, c)
				for j := range it.sides {
					src := ""
					if len(ag.GetSourceSum()) > 0 {
						src = ag.GetSourceSum()[s]
					} else if m := mappings[j][name]; m != nil {
						src = m.GetSource()
					}
					if src == "" && why == "" {
						why = "sum of " + name + ": no source column (set source_sum)"
					}
					t.srcSums[j] = append(t.srcSums[j], src)
				}
			}
			if why != "" {
				it.ic.Warnings = append(it.ic.Warnings, fmt.Sprintf("total %q not computed independently: %s", t.name, why))
				continue
			}
			chk, err := it.total(ctx, r, t)
			if err != nil {
				return nil, err
			}
			out = append(out, chk)
		}
	}
	return out, nil
}

func aggName(ag *commonv1.Aggregate) string {
	if ag.GetName() != "" {
		return ag.GetName()
	}
	name := "count"
	if len(ag.GetSum()) > 0 {
		name = "sum(" + strings.Join(ag.GetSum(), ", ") + ")"
	}
	if len(ag.GetGroupBy()) > 0 {
		name += " by " + strings.Join(ag.GetGroupBy(), ", ")
	}
	return name
}

// total computes one aggregate on every source and on the target.
func (it *indTable) total(ctx context.Context, r *reconciler, t *indTotal) (*commonv1.AggregateCheck, error) {
	ng, ns := len(t.groups), len(t.sums)
	src := map[string]*aggAcc{}
	exact := make([]bool, ns)
	for s := range exact {
		exact[s] = true
	}
	for k := range it.sides {
		side := it.sides[k]
		req := &extractorv1.ChecksumSourceRequest{}
		tot := &extractorv1.ChecksumTotals{}
		var cs []*extractorv1.ChecksumColumn
		for g, c := range t.groups {
			cs = append(cs, &extractorv1.ChecksumColumn{Name: c.src[k], Kind: c.kind.Proto(), TimeZone: side.spec.GetTimeZone()})
			prefix := int32(0)
			if t.day[g] {
				prefix = 10
			}
			tot.Groups = append(tot.Groups, &extractorv1.ChecksumGroup{Column: int32(g), Prefix: prefix})
		}
		for s, name := range t.srcSums[k] {
			cs = append(cs, &extractorv1.ChecksumColumn{Name: name, Kind: extractorv1.ChecksumKind_CHECKSUM_KIND_DECIMAL})
			tot.Sums = append(tot.Sums, int32(ng+s))
		}
		side.cols, side.key = cs, nil
		plan, err := it.call(ctx, &side, &extractorv1.ChecksumSourceRequest{Ask: &extractorv1.ChecksumSourceRequest_Plan{Plan: &extractorv1.ChecksumPlan{}}})
		if err != nil {
			return nil, err
		}
		for s := range ns {
			p := plan.GetColumns()[ng+s]
			if p.GetNoSum() != "" {
				return nil, fmt.Errorf("%w: total %q: source %s column %s: %s", ErrInvalidArgument, t.name, side.spec.GetName(), t.srcSums[k][s], p.GetNoSum())
			}
			exact[s] = exact[s] && p.GetExactSum()
		}
		req.Ask = &extractorv1.ChecksumSourceRequest_Totals{Totals: tot}
		resp, err := it.call(ctx, &side, req)
		if err != nil {
			return nil, err
		}
		for _, gt := range resp.GetTotals() {
			group := make([]*string, ng)
			for g, v := range gt.GetGroup() {
				if !v.GetNull() {
					s := v.GetText()
					group[g] = &s
				}
			}
			acc := newAcc(group, ns)
			acc.count = gt.GetRows()
			for s, v := range gt.GetSums() {
				if v != "" {
					acc.addText(s, v)
				}
			}
			if have := src[groupKey(group)]; have != nil {
				have.merge(acc)
			} else {
				src[groupKey(group)] = acc
			}
		}
	}
	for _, acc := range src {
		for s := range acc.sums {
			if acc.sums[s] != nil {
				acc.sums[s].Mul(acc.sums[s], t.factor)
				acc.scale[s] += decimals(t.factor)
			}
		}
	}
	// The target's side.
	tbl := checksum.Table{Ident: it.target.Ident}
	var groups []checksum.Group
	for g, c := range t.groups {
		e, err := checksum.Postgres.Canon(checksum.Column{Name: c.tc.name, Kind: c.kind, Class: targetClass(c.tc), Frac: 6})
		if err != nil {
			return nil, fmt.Errorf("%w: target column %s: %v", ErrTargetMismatch, c.tc.name, err)
		}
		tbl.Canon = append(tbl.Canon, e)
		prefix := 0
		if t.day[g] {
			prefix = 10
		}
		groups = append(groups, checksum.Group{Pos: g, Prefix: prefix})
	}
	var sums []string
	for s, c := range t.sums {
		e, ex, err := checksum.Postgres.Sum(checksum.Column{Name: c.name, Class: targetClass(c)})
		if err != nil {
			return nil, fmt.Errorf("%w: total %q: target column %s: %v", ErrInvalidArgument, t.name, c.name, err)
		}
		exact[s] = exact[s] && ex
		sums = append(sums, e)
	}
	q, args := checksum.Postgres.Totals(tbl, groups, sums)
	tgt := map[string]*aggAcc{}
	err := r.db.query(ctx, fmt.Sprintf("total %q on %s", t.name, tbl.Ident), q, args, func(rows pgx.Rows) error {
		raw := rows.RawValues()
		group := make([]*string, ng)
		for g, v := range raw[:ng] {
			if v != nil {
				s := string(v)
				group[g] = &s
			}
		}
		acc := newAcc(group, ns)
		fmt.Sscan(string(raw[ng]), &acc.count)
		for s, v := range raw[ng+1:] {
			if v != nil {
				acc.addText(s, string(v))
			}
		}
		tgt[groupKey(group)] = acc
		return nil
	})
	if err != nil {
		return nil, err
	}
	ap := aggPlan{name: t.name}
	p := &tablePlan{}
	for s, c := range t.sums {
		ap.sums = append(ap.sums, s)
		p.compared = append(p.compared, c)
		ap.float = append(ap.float, false)
		ap.approx = append(ap.approx, !exact[s])
	}
	for g := range t.groups {
		ap.group = append(ap.group, g)
	}
	return r.compareAggs(p, ap, src, tgt), nil
}

// decimals is the fraction digits of a factor like 0.01 (2), for display.
func decimals(f *big.Rat) int {
	s := f.FloatString(20)
	s = strings.TrimRight(s, "0")
	if i := strings.IndexByte(s, '.'); i >= 0 {
		return len(s) - i - 1
	}
	return 0
}
