package load

import (
	"context"
	"testing"

	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
)

// TestLineageOfDirectLoadsKeepsOddKeys loads rows whose keys and source
// references hold the characters lineage entries are split on, and asks
// for each row both ways.
func TestLineageOfDirectLoadsKeepsOddKeys(t *testing.T) {
	e := newEnv(t, `CREATE TABLE t (k text PRIMARY KEY, v int)`)
	keys := []any{"a\tb", "50%09", "line\nbreak", "plain"}
	refs := []string{"k=a\tb", "k=50%09", "k=line\nbreak", "line 7"}
	b := withRefs(mkBatch(0, col{"k", tText, keys}, col{"v", tInt, []any{1, 2, 3, 4}}), refs...)
	cfg := e.config("t", "job-l", "p")
	cfg.System = "legacy"
	if _, err := e.load(t, cfg, b); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, k := range keys {
		res, err := e.client.GetLineage(ctx, &loaderv1.GetLineageRequest{Target: e.target(), JobId: "job-l", TargetTable: "t", TargetKey: "k=" + k.(string)})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.GetRecords()) != 1 || res.GetRecords()[0].GetSourceRef() != refs[i] || res.GetRecords()[0].GetOutcome() != "loaded" {
			t.Errorf("lineage of k=%q = %v, want source ref %q", k, res.GetRecords(), refs[i])
		}
		res, err = e.client.GetLineage(ctx, &loaderv1.GetLineageRequest{Target: e.target(), JobId: "job-l", System: "legacy", SourceRef: refs[i]})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.GetRecords()) != 1 || res.GetRecords()[0].GetTargetKey() != "k="+k.(string) || res.GetRecords()[0].GetTargetTable() != "t" {
			t.Errorf("lineage of %q = %v, want target key k=%q", refs[i], res.GetRecords(), k)
		}
	}
	// "50%09" must not be read as "50\t": no entry has that key.
	res, err := e.client.GetLineage(ctx, &loaderv1.GetLineageRequest{Target: e.target(), JobId: "job-l", TargetTable: "t", TargetKey: "k=50\t"})
	if err != nil || len(res.GetRecords()) != 0 {
		t.Errorf("lineage of an absent key = %v, %v; want none", res.GetRecords(), err)
	}
}
