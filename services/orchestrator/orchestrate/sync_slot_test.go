package orchestrate

import (
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
)

// TestLogicalSlotNames pins the names to the extractor's (the extractor's
// TestDefaultLogicalNames and these must agree: both sides derive them).
func TestLogicalSlotNames(t *testing.T) {
	logical := func(pub, slot string) *commonv1.SyncSpec {
		return &commonv1.SyncSpec{Kind: &commonv1.SyncSpec_Logical{Logical: &commonv1.LogicalSync{Publication: pub, Slot: slot}}}
	}
	for _, c := range []struct {
		sync             *commonv1.SyncSpec
		job, table       string
		wantPub, wantSlo string
	}{
		{logical("", ""), "job-1", "items", "cutover_6bb1c25baabd3920", "cutover_job_1_items"},
		{logical("", ""), "job-1", "Items.Ünï", "", "cutover_job_1_items___n__"},
		{logical("pub", "my_slot"), "job-1", "items", "pub", "my_slot"},
	} {
		pub, slot := LogicalSlotNames(c.sync, c.job, c.table)
		if c.wantPub != "" && pub != c.wantPub || slot != c.wantSlo {
			t.Errorf("LogicalSlotNames(%q, %q) = %q, %q; want %q, %q", c.job, c.table, pub, slot, c.wantPub, c.wantSlo)
		}
	}
	_, long := LogicalSlotNames(logical("", ""), "job-1", string(make([]byte, 100)))
	if len(long) != 63 {
		t.Errorf("long slot name %q has %d bytes", long, len(long))
	}
}
