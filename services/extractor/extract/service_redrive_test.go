package extract

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	"github.com/cutover/cutover/services/kit/batch"
)

// TestReadBatchOnlyRefs reads a CSV for a re-drive: only the listed lines
// come back, in order, batches are never empty before the end, and
// re-reading from any cursor gives the same rows.
func TestReadBatchOnlyRefs(t *testing.T) {
	var sb strings.Builder
	sb.WriteString("id,v\n")
	for i := 1; i <= 50; i++ {
		sb.WriteString(strconv.Itoa(i) + ",x\n")
	}
	path := filepath.Join(t.TempDir(), "in.csv")
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	src := &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Csv{Csv: &commonv1.CsvSource{Path: path}}}
	s := newService(t)
	refs := []string{"line 3", "line 40", "line 41", "line 51", "line 99"}
	var got, cursors []string
	cursor := ""
	for range 100 {
		resp, err := s.ReadBatch(context.Background(), &extractorv1.ReadBatchRequest{Source: src, Cursor: cursor, BatchSize: 4, OnlyRefs: refs})
		if err != nil {
			t.Fatal(err)
		}
		b := resp.GetBatch()
		if b.GetNumRows() == 0 && !resp.GetDone() {
			t.Fatalf("empty batch before the end at cursor %q", cursor)
		}
		cursors = append(cursors, cursor)
		for i := 0; i < int(b.GetNumRows()); i++ {
			got = append(got, batch.SourceRef(b, i))
		}
		cursor = b.GetLastKey()
		if resp.GetDone() {
			break
		}
	}
	if strings.Join(got, ",") != "line 3,line 40,line 41,line 51" {
		t.Fatalf("rows = %v", got)
	}
	again, err := s.ReadBatch(context.Background(), &extractorv1.ReadBatchRequest{Source: src, Cursor: cursors[1], BatchSize: 4, OnlyRefs: refs})
	if err != nil || batch.SourceRef(again.GetBatch(), 0) != "line 40" {
		t.Fatalf("re-read from %q: %v %v", cursors[1], again, err)
	}
}
