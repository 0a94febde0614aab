package demodata

import (
	"fmt"
	"slices"
	"strings"
)

// TableCounts is the expected accounting of one table spec.
type TableCounts struct {
	Name, System, Source, Target                         string
	Extracted, Loaded, Quarantined, Filtered, MergedAway int64
}

// Quarantined is one row the migration must quarantine.
type Quarantined struct {
	Table, Ref, Rule, Column, Raw, Why string
}

// Filter is the rows of one table spec left out under one reason.
type Filter struct {
	Table, Reason string
	Count         int64
	Refs          []string
}

// Merge is one merged-away row and its survivor.
type Merge struct {
	Key             string
	Survivor, Other *Customer
}

// LineageExample is the merged customer the demo shows lineage for.
type LineageExample struct {
	Phone            string // finds the target row
	Survivor, Merged *Customer
	// The target row: survivor's values, NULLs filled from the merged row.
	Name, Email, Level, City, District, SourceSystem string
	// Loaded orders of either record, all pointing at the target row.
	Orders int64
}

// Expectation is the outcome a correct migration of the dataset gives.
type Expectation struct {
	Tables         []TableCounts
	Quarantine     []Quarantined
	Filters        []Filter
	Merges         []Merge
	MergedByKey    map[string]int64
	FilledFields   int64
	Collisions     []string // order numbers in both systems
	CollisionRows  int64
	CustomersStage int64 // customer rows reaching dedupe (loaded + merged away)
	TargetRows     map[string]int64
	OrderTotals    map[string]string           // source_system → sum of loaded orders' totals
	BySystem       map[string]map[string]int64 // target table → source_system → rows
	Lineage        LineageExample
	// A quarantined source row to ask lineage about.
	QuarantineLineage Quarantined
	QuarantineSystem  string
}

// Expect computes the expected outcome from what Generate planted.
func (d *Data) Expect() *Expectation {
	e := &Expectation{MergedByKey: map[string]int64{}, TargetRows: map[string]int64{}, OrderTotals: map[string]string{},
		BySystem: map[string]map[string]int64{"customers": {}, "orders": {}, "order_items": {}}}
	filters := map[string]*Filter{}
	addFilter := func(table, reason, ref string) {
		k := table + "\x00" + reason
		if filters[k] == nil {
			filters[k] = &Filter{Table: table, Reason: reason}
		}
		filters[k].Count++
		filters[k].Refs = append(filters[k].Refs, ref)
	}
	customers := func(name, system, source string, cs []*Customer) {
		t := TableCounts{Name: name, System: system, Source: source, Target: "customers"}
		for _, c := range cs {
			t.Extracted++
			switch {
			case c.Filtered != "":
				t.Filtered++
				addFilter(name, c.Filtered, c.Ref)
			case c.QRule != "":
				t.Quarantined++
				e.Quarantine = append(e.Quarantine, Quarantined{Table: name, Ref: c.Ref, Rule: c.QRule, Column: c.QColumn,
					Raw: customerRaw(c), Why: customerWhy(c)})
			case c.Survivor != c:
				t.MergedAway++
				e.MergedByKey[c.MergedBy]++
				e.Merges = append(e.Merges, Merge{Key: c.MergedBy, Survivor: c.Survivor, Other: c})
			default:
				t.Loaded++
				e.BySystem["customers"][system]++
			}
		}
		e.CustomersStage += t.Loaded + t.MergedAway
		e.Tables = append(e.Tables, t)
	}
	customers("customers_a", SystemA, "csv members_a.csv (GBK)", d.CustomersA)
	customers("customers_b", SystemB, "xlsx customers_b.xlsx, sheet customers", d.CustomersB)

	orders := func(name, system, source string, os []*Order) {
		t := TableCounts{Name: name, System: system, Source: source, Target: "orders"}
		var fen int64
		defer func() { e.OrderTotals[system] = fmt.Sprintf("%d.%02d", fen/100, fen%100) }()
		for _, o := range os {
			t.Extracted++
			switch {
			case o.Filtered != "":
				t.Filtered++
				addFilter(name, o.Filtered, o.Ref)
			case o.QRule != "":
				t.Quarantined++
				e.Quarantine = append(e.Quarantine, Quarantined{Table: name, Ref: o.Ref, Rule: o.QRule, Column: o.QColumn,
					Raw: orderRaw(o), Why: orderWhy(o)})
			default:
				t.Loaded++
				fen += o.TotalFen
				e.BySystem["orders"][system]++
				if o.Collides {
					e.CollisionRows++
					if system == SystemA {
						e.Collisions = append(e.Collisions, o.OrderNo)
					}
				}
			}
		}
		e.Tables = append(e.Tables, t)
	}
	items := func(name, system, source string, its []*Item) {
		t := TableCounts{Name: name, System: system, Source: source, Target: "order_items"}
		for _, it := range its {
			t.Extracted++
			if it.QRule != "" {
				t.Quarantined++
				e.Quarantine = append(e.Quarantine, Quarantined{Table: name, Ref: it.Ref, Rule: it.QRule, Column: it.QColumn,
					Raw: itemRaw(it), Why: itemWhy(it)})
				continue
			}
			t.Loaded++
			e.BySystem["order_items"][system]++
		}
		e.Tables = append(e.Tables, t)
	}
	orders("orders_a", SystemA, "mysql orders", d.OrdersA)
	orders("orders_b", SystemB, "jsonl orders_b.jsonl", d.OrdersB)
	items("items_a", SystemA, "mysql order_items", d.ItemsA)
	items("items_b", SystemB, "jsonl orders_b.jsonl, explode items", d.ItemsB)
	slices.Sort(e.Collisions)

	for _, f := range filters {
		e.Filters = append(e.Filters, *f)
	}
	slices.SortFunc(e.Filters, func(a, b Filter) int { return strings.Compare(a.Table+a.Reason, b.Table+b.Reason) })
	for _, t := range e.Tables {
		e.TargetRows[t.Target] += t.Loaded
	}
	for _, m := range e.Merges {
		e.FilledFields += int64(len(filled(m.Survivor, m.Other)))
	}

	// Lineage: the first shop-b survivor that took over a POS member with an
	// address, so the target row shows values from both records.
	for _, m := range e.Merges {
		s, o := m.Survivor, m.Other
		if s.System == SystemB && o.System == SystemA && o.Address != "" && m.Key == "phone" {
			e.Lineage = LineageExample{Phone: s.Phone, Survivor: s, Merged: o, Name: s.Name, Email: s.Email,
				Level: o.Level, City: o.City, District: o.District, SourceSystem: s.System}
			for _, os := range [][]*Order{d.OrdersA, d.OrdersB} {
				for _, ord := range os {
					if ord.Filtered == "" && ord.QRule == "" && (ord.System == s.System && ord.CustomerOld == s.OldID || ord.System == o.System && ord.CustomerOld == o.OldID) {
						e.Lineage.Orders++
					}
				}
			}
			break
		}
	}
	for _, q := range e.Quarantine {
		if q.Table == "orders_a" && q.Rule == "clean" {
			e.QuarantineLineage, e.QuarantineSystem = q, SystemA
		}
	}
	return e
}

// filled lists the survivor's NULL columns the merged row has a value for.
func filled(s, o *Customer) []string {
	var cols []string
	for _, f := range []struct {
		col  string
		s, o string
	}{
		{"phone", s.Phone, o.Phone}, {"email", s.Email, o.Email}, {"level", s.Level, o.Level},
		{"province", s.Province, o.Province}, {"city", s.City, o.City}, {"district", s.District, o.District},
		{"address", s.Address, o.Address},
	} {
		if f.s == "" && f.o != "" {
			cols = append(cols, f.col)
		}
	}
	return cols
}

func customerRaw(c *Customer) string {
	switch c.QColumn {
	case "level":
		return c.Raw["等级"]
	case "phone":
		return c.Raw["手机"]
	case "email":
		return c.Raw["email"]
	}
	return ""
}

func customerWhy(c *Customer) string {
	switch c.QColumn {
	case "level":
		return "level code not in the map 1/2/3 (clean step map: unknown code)"
	case "phone":
		return "a note in the phone column, not a phone number (clean step phone)"
	case "email":
		return "two @ in the e-mail address (clean step email)"
	}
	return ""
}

func orderRaw(o *Order) string {
	switch o.QColumn {
	case "ordered_at":
		return o.RawCreated
	case "total":
		return o.RawTotal
	case "customer_id":
		return o.CustomerOld
	}
	return ""
}

func orderWhy(o *Order) string {
	switch o.QColumn {
	case "ordered_at":
		return "impossible date: there is no 30 February (clean step date)"
	case "total":
		return "the total is not a number (cast to numeric)"
	case "customer_id":
		return "member " + o.CustomerOld + " is in no member list: the reference resolves to no customer"
	}
	return ""
}

func itemRaw(it *Item) string {
	switch it.QColumn {
	case "qty":
		return fmt.Sprint(it.Qty)
	case "order_id":
		return it.OrderOld
	}
	return ""
}

func itemWhy(it *Item) string {
	switch it.QColumn {
	case "qty":
		return "negative quantity (rule range min 1)"
	case "order_id":
		return "order " + it.OrderOld + " was deleted from the POS; its line was not: the reference resolves to no order"
	}
	return ""
}

// Markdown is expected.md.
func (e *Expectation) Markdown() string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p(`# What the merge demo must produce

<!-- Generated by services/cutover/demodata from what it planted
     (CUTOVER_REGEN_DEMO=1 go test ./demodata in services/cutover); do not edit. -->

Two systems become one shop: **pos-a**, a legacy POS (member export
` + "`members_a.csv`" + `, GBK; orders and order lines in MariaDB, ` + "`system_a.sql`" + `), and
**shop-b**, a web shop (customer sheet ` + "`customers_b.xlsx`" + `; orders with their lines in
` + "`orders_b.jsonl`" + `). ` + "`spec.yaml`" + ` migrates both into the schema ` + "`shop_v2`" + ` of
` + "`target.sql`" + `. Customers are merged across and within the systems by cleaned
phone (E.164) or e-mail (lowercased); the newest record by ` + "`updated_at`" + `
survives and takes the merged record's values where its own are NULL. Order
and customer references follow the merge through the id map. Order numbers
taken in both systems become ` + "`<system>-<number>`" + `.

Every figure below holds for any partitioning (the test runs with 1 and 8
partitions per table), and for every table spec
extracted = loaded + quarantined + merged_away + filtered.

## Per table spec

| table spec | system | source | target | extracted | loaded | quarantined | filtered | merged_away |
|---|---|---|---|---:|---:|---:|---:|---:|
`)
	for _, t := range e.Tables {
		p("| %s | %s | %s | %s | %d | %d | %d | %d | %d |\n", t.Name, t.System, t.Source, t.Target, t.Extracted, t.Loaded, t.Quarantined, t.Filtered, t.MergedAway)
	}
	p("\n## Quarantined rows (%d)\n\nOne reject each; source references as the extractor writes them.\n\n| table spec | source ref | rule | column | raw | why |\n|---|---|---|---|---|---|\n", len(e.Quarantine))
	for _, q := range e.Quarantine {
		p("| %s | %s | %s | %s | `%s` | %s |\n", q.Table, q.Ref, q.Rule, q.Column, q.Raw, q.Why)
	}
	p("\nRows quarantined while finalizing (rule `%s`) are references to records that\nare in no source at all; every other fault is planted on a parent without children\n(the voided and faulty orders have no lines, the faulty and test customers no\norders), so no fault cascades into a second one.\n", RuleUnresolvedRef)
	p("\n## Filtered rows\n\n| table spec | reason | rows | source refs |\n|---|---|---:|---|\n")
	for _, f := range e.Filters {
		p("| %s | %s | %d | %s |\n", f.Table, f.Reason, f.Count, strings.Join(f.Refs, ", "))
	}
	p("\n## Customers: dedupe\n\n")
	p("- rows reaching dedupe (loaded + merged away): %d; customers after dedupe: %d\n", e.CustomersStage, e.TargetRows["customers"])
	p("- merged away: %d, by key: phone %d, email %d (no row matched through another row: every group is a pair joined by exactly one key)\n",
		len(e.Merges), e.MergedByKey["phone"], e.MergedByKey["email"])
	p("- survivor fields filled from the merged row: %d\n", e.FilledFields)
	cross, withinA, withinB := 0, 0, 0
	for _, m := range e.Merges {
		switch {
		case m.Survivor.System != m.Other.System:
			cross++
		case m.Survivor.System == SystemA:
			withinA++
		default:
			withinB++
		}
	}
	p("- pairs across the systems: %d; within pos-a (a member registered twice): %d; within shop-b (signed up twice): %d\n\n", cross, withinA, withinB)
	p("| key | survivor | merged away | filled |\n|---|---|---|---|\n")
	for _, m := range e.Merges {
		f := strings.Join(filled(m.Survivor, m.Other), ", ")
		p("| %s | %s %s (%s) | %s %s (%s) | %s |\n", m.Key, m.Survivor.System, m.Survivor.Ref, m.Survivor.OldID, m.Other.System, m.Other.Ref, m.Other.OldID, f)
	}
	p("\n## Orders: key collisions\n\n")
	p("%d order numbers are taken in both systems (%d rows); with COLLISION_RULE_PREFIX_SYSTEM\nboth rows load, as `pos-a-<no>` and `shop-b-<no>`: %s.\n",
		len(e.Collisions), e.CollisionRows, strings.Join(e.Collisions, ", "))
	p("\n## The target\n\n| table | rows | pos-a | shop-b |\n|---|---:|---:|---:|\n")
	for _, t := range []string{"customers", "orders", "order_items"} {
		p("| shop_v2.%s | %d | %d | %d |\n", t, e.TargetRows[t], e.BySystem[t][SystemA], e.BySystem[t][SystemB])
	}
	p("\nSum of `total` over the loaded orders: pos-a %s, shop-b %s.\n", e.OrderTotals[SystemA], e.OrderTotals[SystemB])
	l := e.Lineage
	p("\n## Lineage example\n\nThe customer with phone `%s` is one person in both systems:\n\n", l.Phone)
	p("- %s %s (%s, `%s`), updated %s: the survivor (outcome `loaded`)\n", l.Survivor.System, l.Survivor.Ref, l.Survivor.Table, l.Survivor.OldID, l.Survivor.Updated.Format("2006-01-02 15:04:05"))
	p("- %s %s (%s, member `%s`), updated %s: outcome `merged`, merged into the survivor\n", l.Merged.System, l.Merged.Ref, l.Merged.Table, l.Merged.OldID, l.Merged.Updated.Format("2006-01-02 15:04:05"))
	p("\nThe target row: name %s, e-mail %s, source_system %s, and from the POS\nrecord (NULL in the shop's): level %s, city %s, district %s. Its %d orders (from both\nsystems) all point at it.\n", l.Name, l.Email, l.SourceSystem, l.Level, l.City, l.District, l.Orders)
	q := e.QuarantineLineage
	p("\nAsked about the source row %s %s, lineage answers outcome `quarantined`,\nrule `%s`, with the reason naming column %s.\n", e.QuarantineSystem, q.Ref, q.Rule, q.Column)
	return b.String()
}
