package extract

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"unicode/utf8"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	"github.com/cutover/cutover/services/kit/batch"
)

// A batch is bounded by bytes as well as by rows, so that it stays well
// inside the gRPC message limit (64 MiB) whatever the width of the rows.
//
// A batch's bytes are counted as its encoded size will be, from above:
// each value's own bytes, a few bytes per value for its offset or its
// fixed-width number, each row's source reference, each reject, and the
// header (see the cost constants below). Rows are taken while the count
// stays within the limit; the row that would take it past the limit starts
// the next batch, so a batch never holds more than the limit unless its
// first row alone does (a batch always has at least one row, so a read
// always makes progress). The cursor is the last row taken: the same
// cursor gives the same batch.
//
// A single value larger than the limit is never put into a batch: its
// slot is NULL and its row gets a "too_large" reject naming the column and
// the size. A row whose values are each within the limit but together
// over it loses its largest values the same way until it fits, so no row
// alone can overflow a message either.

const (
	// DefaultBatchBytes is used when a request leaves batch_bytes at 0.
	DefaultBatchBytes = 8 << 20
	// MaxBatchBytes bounds batch_bytes, so that a batch (its rows within
	// the limit, plus its header and one row's worth of slack) stays under
	// the 64 MiB gRPC message limit.
	MaxBatchBytes = 48 << 20
)

// Cost model of the encoded batch (protobuf): upper bounds, so that the
// count never falls short of proto.Size.
const (
	costHeader = 1 << 10 // job, partition, table, trace context, tags
	costBytes  = 5       // a packed uint32 offset
	costInts   = 10      // a packed varint int64 (a negative one is 10)
	costFloats = 8       // a packed fixed64
	costBools  = 1       // a bit of the bool bitmap, and of the null bitmap
	costReject = 32      // a reject's row, tags and lengths
)

// rawPrefixBytes is how much of a too-large value its reject keeps.
const rawPrefixBytes = 256

// readLimits bounds one batch.
type readLimits struct {
	// rows is the most rows in a batch (batch_size).
	rows int
	// bytes is the most bytes in a batch, counted as above, and the
	// largest single value (batch_bytes); 0 leaves batches and values
	// unbounded (change batches, which have no byte limit yet).
	bytes int64
}

// limitsOf validates a request's batch_size and batch_bytes.
func limitsOf(req *extractorv1.ReadBatchRequest) (readLimits, error) {
	size := int(req.GetBatchSize())
	if size < 0 || size > MaxBatchSize {
		return readLimits{}, invalid("batch_size", "must be between 0 and %d, got %d", MaxBatchSize, size)
	}
	if size == 0 {
		size = DefaultBatchSize
	}
	n := req.GetBatchBytes()
	if n < 0 || n > MaxBatchBytes {
		return readLimits{}, invalid("batch_bytes", "must be between 0 and %d, got %d", MaxBatchBytes, n)
	}
	if n == 0 {
		n = DefaultBatchBytes
	}
	return readLimits{rows: size, bytes: n}, nil
}

// rowsOnly is a row limit with no byte limit.
func rowsOnly(size int) readLimits { return readLimits{rows: size} }

// firstBytes is the count a batch starts from: its header, with the
// source name and the cursors it carries.
func firstBytes(source, cursor string) int64 {
	return costHeader + int64(len(source)) + 2*int64(len(cursor))
}

// fits reports whether a row of rowBytes may join a batch of rows rows
// and total bytes; a batch's first row always may.
func (l readLimits) fits(rows int, total, rowBytes int64) bool {
	return l.bytes <= 0 || rows == 0 || total+rowBytes <= l.bytes
}

// slotCost is what one value slot of a column type adds besides the
// value's own bytes.
func slotCost(t commonv1.ColumnType) int64 {
	switch batch.Storage(t) {
	case batch.StorageInts:
		return costInts + costBools
	case batch.StorageFloats:
		return costFloats + costBools
	case batch.StorageBools:
		return 2 * costBools
	}
	return costBytes + costBools
}

// refCost is what a row's source reference adds.
func refCost(ref int) int64 { return costBytes + int64(ref) }

// rejectCost is what a reject adds.
func rejectCost(r *commonv1.Reject) int64 {
	return costReject + int64(len(r.GetStage())+len(r.GetRule())+len(r.GetColumn())+len(r.GetReason())+len(r.GetRaw()))
}

// rejectsCost is what the rejects from index i on add.
func rejectsCost(rs []*commonv1.Reject, i int) int64 {
	var n int64
	for _, r := range rs[i:] {
		n += rejectCost(r)
	}
	return n
}

// rowSizer picks the values of one row to leave out of the batch. It is
// reused from row to row.
type rowSizer struct {
	lim readLimits
	// sizes[k] is value k's length in bytes, -1 for a value that cannot be
	// left out (NULL, or a fixed-width number, whose bytes are in fixed).
	sizes []int64
	// big[k] is set by pick for the values to leave out; whole[k] is the
	// row's bytes that made value k go (0: the value alone is too large).
	big   []bool
	whole []int64
	nbig  int
}

func newRowSizer(lim readLimits, ncol int) *rowSizer {
	return &rowSizer{lim: lim, sizes: make([]int64, ncol), big: make([]bool, ncol), whole: make([]int64, ncol)}
}

// pick marks the values to leave out: each one larger than the limit,
// then, while the row is still larger than the limit, the largest left
// (the first of equals). fixed is the rest of the row's bytes. It returns
// the row's bytes without the values left out (their rejects not counted).
func (rs *rowSizer) pick(fixed int64) int64 {
	rs.nbig = 0
	row := fixed
	for k, n := range rs.sizes {
		rs.big[k], rs.whole[k] = false, 0
		if n < 0 {
			continue
		}
		if rs.lim.bytes > 0 && n > rs.lim.bytes {
			rs.big[k] = true
			rs.nbig++
			continue
		}
		row += n
	}
	for rs.lim.bytes > 0 && row > rs.lim.bytes {
		at := -1
		for k, n := range rs.sizes {
			if !rs.big[k] && n > 0 && (at < 0 || n > rs.sizes[at]) {
				at = k
			}
		}
		if at < 0 {
			break
		}
		rs.big[at], rs.whole[at] = true, row
		rs.nbig++
		row -= rs.sizes[at]
	}
	return row
}

// reject is the "too_large" reject of value k, whose first bytes are
// prefix; where ("line 3: ", "") says where the row is, as the kind's other
// rejects do.
func (rs *rowSizer) reject(where, column string, k int, prefix []byte, binary bool) *commonv1.Reject {
	n := rs.sizes[k]
	reason := fmt.Sprintf("%svalue of column %s is %d bytes, more than the batch limit of %d", where, strconv.Quote(column), n, rs.lim.bytes)
	if w := rs.whole[k]; w > 0 {
		reason = fmt.Sprintf("%svalue of column %s is %d bytes and its row %d bytes, more than the batch limit of %d", where, strconv.Quote(column), n, w, rs.lim.bytes)
	}
	return &commonv1.Reject{Stage: stageExtract, Rule: "too_large", Column: column, Reason: reason, Raw: rawPrefix(prefix, n, binary)}
}

// rawPrefix is the start of a value of size bytes for a reject: text cut
// on a character boundary, bytes as hex, marked "…" where cut.
func rawPrefix(v []byte, size int64, binary bool) string {
	if binary {
		n := min(len(v), rawPrefixBytes/2)
		s := `\x` + hex.EncodeToString(v[:n])
		if int64(n) < size {
			s += "…"
		}
		return s
	}
	n := min(len(v), rawPrefixBytes)
	if n < len(v) {
		for c := n; c > n-utf8.UTFMax && c > 0; c-- {
			if utf8.RuneStart(v[c]) {
				n = c
				break
			}
		}
	}
	s := escapeInvalid(string(v[:n]))
	if int64(n) < size {
		s += "…"
	}
	return s
}

// nextChunk is how many rows the next query of a database batch asks for,
// given the rows taken so far and their bytes (total, of which first is
// the header). A driver reads a result to its end even when the batch is
// full before it, so a query asks for about what the batch can still hold:
// a few rows to begin with, then as many as the bytes left hold at the
// average row so far and two more (one of them shows the batch is full),
// and at most chunkGrowth times the rows so far, in case later rows are
// wider than the first.
func (l readLimits) nextChunk(rows int, total, first int64) int {
	left := l.rows - rows
	if l.bytes <= 0 || left <= 0 {
		return max(left, 0)
	}
	if rows == 0 {
		return min(left, firstChunk)
	}
	avg := max((total-first)/int64(rows), 1)
	want := min((l.bytes-total)/avg+2, chunkGrowth*int64(rows)+firstChunk)
	return int(min(int64(left), max(want, 1)))
}

const (
	// firstChunk is the rows the first query of a database batch asks for.
	firstChunk = 4
	// chunkGrowth bounds the next query's rows by the rows so far.
	chunkGrowth = 8
)
