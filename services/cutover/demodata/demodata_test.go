package demodata

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"github.com/cutover/cutover/services/transformer/clean"
	"github.com/xuri/excelize/v2"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"
)

// examples/merge, from this package's directory.
var exampleDir = filepath.Join("..", "..", "..", "examples", "merge")

// TestDemoDataIsCurrent regenerates the dataset and compares it with the
// committed files (the workbook by cell values: its zip bytes carry
// timestamps). CUTOVER_REGEN_DEMO=1 rewrites examples/merge instead.
func TestDemoDataIsCurrent(t *testing.T) {
	d := Generate()
	if os.Getenv("CUTOVER_REGEN_DEMO") == "1" {
		if err := d.Write(exampleDir); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote %s", exampleDir)
	}
	dir := t.TempDir()
	if err := d.Write(dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{MembersA, SystemASQL, OrdersB, Expected} {
		got, err := os.ReadFile(filepath.Join(exampleDir, name))
		if err != nil {
			t.Fatalf("%v (run with CUTOVER_REGEN_DEMO=1 to write it)", err)
		}
		want, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("examples/merge/%s is stale: regenerate with CUTOVER_REGEN_DEMO=1 go test ./demodata", name)
		}
	}
	got, want := sheetCells(t, filepath.Join(exampleDir, CustomersB)), sheetCells(t, filepath.Join(dir, CustomersB))
	if len(got) != len(want) {
		t.Fatalf("examples/merge/%s has %d rows, want %d: regenerate with CUTOVER_REGEN_DEMO=1", CustomersB, len(got), len(want))
	}
	for i := range want {
		if fmt.Sprint(got[i]) != fmt.Sprint(want[i]) {
			t.Fatalf("examples/merge/%s row %d = %q, want %q: regenerate with CUTOVER_REGEN_DEMO=1", CustomersB, i+1, got[i], want[i])
		}
	}
}

// TestGenerateIsDeterministic: two runs plant the same data.
func TestGenerateIsDeterministic(t *testing.T) {
	a, b := Generate().Expect().Markdown(), Generate().Expect().Markdown()
	if a != b {
		t.Fatal("two generations differ")
	}
}

func sheetCells(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := excelize.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := f.GetRows(SheetB, excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// TestExpectationBalances: the planted figures are consistent with
// themselves: every extracted row is accounted for once, and the target
// counts follow from the table specs.
func TestExpectationBalances(t *testing.T) {
	e := Generate().Expect()
	var quarantined int64
	for _, tc := range e.Tables {
		if tc.Extracted != tc.Loaded+tc.Quarantined+tc.Filtered+tc.MergedAway {
			t.Errorf("%s: %+v does not balance", tc.Name, tc)
		}
		quarantined += tc.Quarantined
	}
	if int(quarantined) != len(e.Quarantine) {
		t.Errorf("%d quarantined in the counts, %d listed", quarantined, len(e.Quarantine))
	}
	if int64(len(e.Merges)) != e.MergedByKey["phone"]+e.MergedByKey["email"] {
		t.Errorf("merges by key %v, %d merges", e.MergedByKey, len(e.Merges))
	}
	if len(e.Collisions) != nCollisions || e.CollisionRows != 2*nCollisions {
		t.Errorf("collisions %v (%d rows)", e.Collisions, e.CollisionRows)
	}
	if e.Lineage.Survivor == nil || e.QuarantineLineage.Ref == "" {
		t.Fatalf("no lineage examples: %+v %+v", e.Lineage, e.QuarantineLineage)
	}
	for table, bySys := range e.BySystem {
		if bySys[SystemA]+bySys[SystemB] != e.TargetRows[table] {
			t.Errorf("%s: by system %v, total %d", table, bySys, e.TargetRows[table])
		}
	}
}

// specRow is one source row as the extractor hands it to the transformer
// (a missing key is NULL) and the target values a correct cleaning gives
// ("" is NULL); bad names the column whose chain must refuse the row.
type specRow struct {
	ref  string
	raw  map[string]string
	want map[string]string
	bad  string
}

// TestSpecCleansTheData runs every clean chain of examples/merge/spec.yaml
// over the generated source values: each good value must clean to what the
// generator meant, and each planted bad value must be refused by its
// column's chain. This ties the data, the spec and expected.md together
// without the engine.
func TestSpecCleansTheData(t *testing.T) {
	// Read as runjob.LoadSpec does, minus the ${ENV} substitution (the
	// DSN is not needed here), so this test does not need the engine.
	raw, err := os.ReadFile(filepath.Join(exampleDir, "spec.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		t.Fatalf("spec.yaml: %v", err)
	}
	spec := &commonv1.JobSpec{}
	if err := protojson.Unmarshal(js, spec); err != nil {
		t.Fatalf("spec.yaml: %v", err)
	}
	d := Generate()
	rows := map[string][]specRow{}
	ts := func(tm time.Time) string { return tm.In(shanghai).Format(time.RFC3339) }
	for _, c := range d.CustomersA {
		if c.Filtered != "" {
			continue
		}
		r := specRow{ref: c.Ref, raw: c.Raw, want: map[string]string{"name": c.Name, "phone": c.Phone, "email": c.Email, "joined": c.Joined,
			"level": c.Level, "province": c.Province, "city": c.City, "district": c.District, "address": c.Address, "updated_at": ts(c.Updated)}}
		if c.QRule == "clean" {
			r.bad = c.QColumn
		}
		rows["customers_a"] = append(rows["customers_a"], r)
	}
	for _, c := range d.CustomersB {
		if c.Filtered != "" {
			continue
		}
		raw := map[string]string{}
		for k, v := range c.Raw {
			if v != "" {
				raw[k] = v
			}
		}
		r := specRow{ref: c.Ref, raw: raw, want: map[string]string{"name": c.Name, "phone": c.Phone, "email": c.Email, "joined": c.Joined,
			"updated_at": ts(c.Updated)}}
		if c.QRule == "clean" {
			r.bad = c.QColumn
		}
		rows["customers_b"] = append(rows["customers_b"], r)
	}
	for _, o := range d.OrdersA {
		if o.Filtered != "" {
			continue
		}
		r := specRow{ref: o.Ref, raw: map[string]string{"status": o.RawStatus, "amount_fen": fmt.Sprint(o.TotalFen), "created": o.RawCreated},
			want: map[string]string{"status": o.Status, "total": yuan(o.TotalFen)}}
		if o.QRule == "clean" {
			r.bad = o.QColumn
		} else {
			at, err := time.ParseInLocation("2006/1/2 15:04:05", o.RawCreated, shanghai)
			if err != nil {
				t.Fatalf("%s: %v", o.Ref, err)
			}
			r.want["ordered_at"] = ts(at)
		}
		rows["orders_a"] = append(rows["orders_a"], r)
	}
	for _, o := range d.OrdersB {
		at, err := time.ParseInLocation("02-01-2006", o.RawCreated, shanghai)
		if err != nil {
			t.Fatalf("%s: %v", o.Ref, err)
		}
		rows["orders_b"] = append(rows["orders_b"], specRow{ref: o.Ref, raw: map[string]string{"status": o.RawStatus, "date": o.RawCreated},
			want: map[string]string{"status": o.Status, "ordered_at": ts(at)}})
	}
	for _, it := range d.ItemsA {
		rows["items_a"] = append(rows["items_a"], specRow{ref: it.Ref, raw: map[string]string{"price_fen": fmt.Sprint(it.PriceFen)},
			want: map[string]string{"unit_price": yuan(it.PriceFen)}})
	}
	checked := 0
	for _, table := range spec.GetTables() {
		for _, r := range rows[table.GetName()] {
			for _, col := range table.GetColumns() {
				if len(col.GetClean()) == 0 {
					continue
				}
				got, err := runChain(col.GetClean(), r.raw, col.GetSource())
				checked++
				if col.GetTarget() == r.bad {
					if !errors.Is(err, clean.ErrBadValue) {
						t.Errorf("%s %s: column %s = %q, %v; want the planted bad value refused", table.GetName(), r.ref, col.GetTarget(), got, err)
					}
					continue
				}
				want, known := r.want[col.GetTarget()]
				if err != nil || (known && got != want) {
					t.Errorf("%s %s: column %s = %q, %v; want %q", table.GetName(), r.ref, col.GetTarget(), got, err, want)
				}
			}
		}
	}
	if checked < 5000 {
		t.Fatalf("only %d values checked: does the spec still name the tables?", checked)
	}
}

func yuan(fen int64) string { return fmt.Sprintf("%d.%02d", fen/100, fen%100) }

// runChain cleans the source value like the transformer: NULL bypasses the
// chain, ErrNull gives NULL ("").
func runChain(steps []*commonv1.CleanStep, raw map[string]string, source string) (string, error) {
	v, ok := raw[source]
	if !ok {
		return "", nil
	}
	var cs []clean.Step
	for _, s := range steps {
		cs = append(cs, clean.Step{Name: s.GetFunction(), Args: s.GetArgs()})
	}
	ch, err := clean.CompileChain(cs)
	if err != nil {
		return "", fmt.Errorf("compile: %w", err)
	}
	out, err := ch.Apply([]byte(v), nil)
	if errors.Is(err, clean.ErrNull) {
		return "", nil
	}
	return string(out), err
}
