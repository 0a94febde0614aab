package extract

import (
	"context"
	"fmt"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
)

// maxPlanScan caps the bytes a plan scans for record boundaries. A
// boundary is only certain after reading the file from its start (a quoted
// field may hold newlines), so a larger file gets its chunk boundaries in
// its first maxPlanScan bytes and the last chunk takes the rest.
var maxPlanScan int64 = 4 << 30

// chunks splits the data into up to n byte ranges of about equal size that
// start on record boundaries. It runs the scanner itself over the file,
// without keeping any field, so a boundary is exactly where a sequential
// read ends a record: the ranges read together what one read reads.
// Range k is {lower: "<offset>:<line>" (empty for the first), upper: the
// offset where range k+1 starts (empty for the last)}.
func (cf *csvFile) chunks(ctx context.Context, n int) ([]*commonv1.KeyRange, error) {
	data := cf.size - cf.dataStart
	ranges := []*commonv1.KeyRange{{}}
	if data <= 0 {
		return ranges, nil
	}
	target := func(k int) int64 { return cf.dataStart + data*int64(k)/int64(n) }
	k := 1
	sc := cf.scanner(cf.dataStart, cf.dataLine, 1<<20)
	defer sc.release()
	sink := fieldSink{discard: true}
	end := cf.dataStart + maxPlanScan
	for recs := 0; k < n; recs++ {
		off, line := sc.offset(), sc.line
		if off >= end {
			break
		}
		if recs&4095 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		st, err := sc.next(&sink)
		sink.clear()
		if err != nil {
			return nil, fmt.Errorf("source.csv.path: read %s: %w", cf.spec.path, err)
		}
		if st == scanEOF {
			break
		}
		// off is before a record, so no range is empty.
		if off > cf.dataStart && off >= target(k) {
			ranges[len(ranges)-1].Upper = formatOffset(off)
			ranges = append(ranges, &commonv1.KeyRange{Lower: formatCursor(off, line)})
			for k < n && target(k) <= off {
				k++
			}
		}
	}
	return ranges, nil
}
