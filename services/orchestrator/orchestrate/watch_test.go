package orchestrate

import (
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/orchestrator/jobstore"
	"google.golang.org/protobuf/proto"
)

// TestTableProgress: WatchJob's progress per table sums each table's
// partitions in spec order, counts done ones, leaves following ones out
// and moves what finalizing a staged table merged away or quarantined out
// of its loaded rows, as the job's totals do.
func TestTableProgress(t *testing.T) {
	n := func(extracted, loaded, quarantined int64) *commonv1.Counts {
		return &commonv1.Counts{Extracted: extracted, Loaded: loaded, Quarantined: quarantined, Batches: 1}
	}
	j := &jobstore.Job{
		Spec:      &commonv1.JobSpec{Tables: []*commonv1.TableSpec{{Name: "people"}, {Name: "orders"}, {Name: "empty"}}},
		Estimates: []int64{20, 0, 3},
		Finalized: map[string]*loaderv1.FinalizeStagedResponse{"people": {Tables: []*loaderv1.StagedOutcome{
			{Table: "people", Loaded: 12, MergedAway: 2, Quarantined: 1}}}},
	}
	parts := []jobstore.PartitionCounts{
		{Table: "orders", State: jobstore.StateDone, Counts: n(5, 4, 1)},
		{Table: "people", State: jobstore.StateDone, Counts: n(10, 10, 0)},
		{Table: "people", State: "running", Counts: n(5, 5, 0)},
		{Table: "orders", State: jobstore.StateFollowing, Counts: n(7, 7, 0)},
		{Table: "gone", State: jobstore.StateDone, Counts: n(1, 1, 0)},
	}
	got := tableProgress(j, parts)
	want := []*orchestratorv1.TableProgress{
		{Table: "people", PartitionsTotal: 2, PartitionsDone: 1, EstimatedRows: 20, Counts: &commonv1.Counts{Extracted: 15, Loaded: 12, Quarantined: 1, MergedAway: 2, Batches: 2}},
		{Table: "orders", PartitionsTotal: 1, PartitionsDone: 1, Counts: &commonv1.Counts{Extracted: 5, Loaded: 4, Quarantined: 1, Batches: 1}},
		{Table: "empty", EstimatedRows: 3, Counts: &commonv1.Counts{}},
	}
	if len(got) != len(want) {
		t.Fatalf("%d tables, want %d: %v", len(got), len(want), got)
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Errorf("table %d = %v\nwant %v", i, got[i], want[i])
		}
	}
}
