package extract

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	"github.com/cutover/cutover/services/kit/telemetry"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/status"
)

// Sync after the full load (ReadChanges, ReadKeys).
//
// Watermark sync reads the rows whose (watermark, primary key) comes after
// the position, in that order, a batch at a time. The position is a JSON
// array of texts (see watermarkPosition):
//
//	[]                     every row with a watermark (the table was empty)
//	["<w>"]                rows with watermark >= w: the start, taken as the
//	                       largest watermark before the full load's snapshot
//	                       (ties are read again: an upsert twice is harmless)
//	["<w>", "<k1>", ...]   rows with (watermark, key) > (w, k1, ...)
//
// Values are the source's own text of the watermark and key columns, so
// they compare in the source exactly as stored. A row whose watermark is
// NULL is never read: give such rows a watermark to sync them.
//
// An empty position asks for the start: no rows, the position to follow
// from. The orchestrator asks for it when the job is created, before the
// snapshot of the full load, so no change after the snapshot is missed.

// maxLagCount caps the count behind lag_rows: the lag is exact up to it.
const maxLagCount = 100000

// watermarkKind is implemented by the SQL source kinds that can follow a
// table by a watermark column.
type watermarkKind interface {
	// readWatermark returns the changed rows after position (a batch with
	// Position set; no rows and the start position when position is ""),
	// the rows still pending after it (capped) and the age of the oldest.
	readWatermark(ctx context.Context, s *Service, src *commonv1.SourceSpec, column, position string, size int) (*commonv1.Batch, int64, float64, error)
	// readKeys returns up to limit primary-key texts after the key after.
	readKeys(ctx context.Context, s *Service, src *commonv1.SourceSpec, after string, limit int) ([]string, bool, error)
}

// ReadChanges returns the changes after a position as a change batch.
func (s *Service) ReadChanges(ctx context.Context, req *extractorv1.ReadChangesRequest) (*extractorv1.ReadChangesResponse, error) {
	ctx, span := otel.Tracer("cutover/extractor").Start(ctx, "extractor.changes", trace.WithAttributes(
		attribute.String("cutover.job_id", req.GetJobId()),
		attribute.Int64("cutover.seq", req.GetSeq()),
		attribute.String("cutover.table", req.GetTable()),
	))
	defer span.End()
	resp, err := s.readChanges(ctx, req)
	if err != nil {
		st, ok := status.FromError(err) // a status already (logical side) stands
		if !ok {
			st = status.Convert(toStatus(err))
		}
		span.SetStatus(otelcodes.Error, st.Code().String())
		return nil, st.Err()
	}
	span.SetAttributes(telemetry.BatchAttrs(resp.GetBatch())...)
	span.SetAttributes(attribute.Int("cutover.rows_out", int(resp.GetBatch().GetNumRows())), attribute.Int64("cutover.lag_rows", resp.GetLagRows()))
	return resp, nil
}

func (s *Service) readChanges(ctx context.Context, req *extractorv1.ReadChangesRequest) (*extractorv1.ReadChangesResponse, error) {
	size := int(req.GetBatchSize())
	if size < 0 || size > MaxBatchSize {
		return nil, invalid("batch_size", "must be between 0 and %d, got %d", MaxBatchSize, size)
	}
	if size == 0 {
		size = DefaultBatchSize
	}
	k, err := kindOf(req.GetSource())
	if err != nil {
		return nil, err
	}
	var resp *extractorv1.ReadChangesResponse
	switch {
	case req.GetSync().GetWatermark() != nil:
		col := req.GetSync().GetWatermark().GetColumn()
		if col == "" {
			return nil, invalid("sync.watermark.column", "required")
		}
		wk, ok := k.(watermarkKind)
		if !ok {
			return nil, invalid("sync.watermark", "this source kind cannot be followed by a watermark; only mysql and postgres sources can (sqlite not yet)")
		}
		b, lagRows, lagSeconds, err := wk.readWatermark(ctx, s, req.GetSource(), col, req.GetPosition(), size)
		if err != nil {
			return nil, err
		}
		resp = &extractorv1.ReadChangesResponse{Batch: b, LagRows: lagRows, LagSeconds: lagSeconds}
	case req.GetSync().GetLogical() != nil:
		if req.GetSource().GetPostgres() == nil {
			return nil, invalid("sync.logical", "logical replication needs a postgres source")
		}
		if resp, err = readLogicalChanges(ctx, s, req); err != nil {
			return nil, err
		}
	case req.GetSync().GetBinlog() != nil:
		if req.GetSource().GetMysql() == nil {
			return nil, invalid("sync.binlog", "binlog sync needs a mysql source (MySQL or MariaDB)")
		}
		if resp, err = readBinlogChanges(ctx, s, req, size); err != nil {
			return nil, err
		}
	default:
		return nil, invalid("sync", "watermark, logical or binlog is required")
	}
	b := resp.GetBatch()
	if b == nil {
		b = &commonv1.Batch{Position: req.GetPosition()}
		resp.Batch = b
	}
	b.JobId, b.Seq, b.Table = req.GetJobId(), req.GetSeq(), req.GetTable()
	b.FirstKey = req.GetPosition()
	return resp, nil
}

// ReadKeys lists a source table's primary-key values a page at a time.
func (s *Service) ReadKeys(ctx context.Context, req *extractorv1.ReadKeysRequest) (*extractorv1.ReadKeysResponse, error) {
	limit := int(req.GetLimit())
	if limit < 0 || limit > MaxBatchSize {
		return nil, toStatus(invalid("limit", "must be between 0 and %d, got %d", MaxBatchSize, limit))
	}
	if limit == 0 {
		limit = DefaultBatchSize
	}
	k, err := kindOf(req.GetSource())
	if err != nil {
		return nil, toStatus(err)
	}
	wk, ok := k.(watermarkKind)
	if !ok {
		return nil, toStatus(invalid("source", "this source kind cannot list its primary keys; only mysql and postgres sources can"))
	}
	keys, done, err := wk.readKeys(ctx, s, req.GetSource(), req.GetAfter(), limit)
	if err != nil {
		return nil, toStatus(err)
	}
	return &extractorv1.ReadKeysResponse{Keys: keys, Done: done}, nil
}

// watermarkPosition is a decoded position: the watermark text, and the
// key texts of the last row read (none at the start).
type watermarkPosition struct {
	// empty: no watermark yet (the table had none at the start).
	empty bool
	mark  string
	key   []string
}

// parsePosition decodes a position for a table with nKey key columns.
func parsePosition(pos string, nKey int) (watermarkPosition, error) {
	var parts []string
	if err := json.Unmarshal([]byte(pos), &parts); err != nil {
		return watermarkPosition{}, invalid("position", "want a JSON array of texts (a watermark position), got %q", cut(pos))
	}
	switch len(parts) {
	case 0:
		return watermarkPosition{empty: true}, nil
	case 1:
		return watermarkPosition{mark: parts[0]}, nil
	case 1 + nKey:
		return watermarkPosition{mark: parts[0], key: parts[1:]}, nil
	}
	return watermarkPosition{}, invalid("position", "want 0, 1 or %d texts (watermark and %d key values), got %d", 1+nKey, nKey, len(parts))
}

// encode renders the position in the form parsePosition reads.
func (p watermarkPosition) encode() string {
	if p.empty {
		return "[]"
	}
	parts := append([]string{p.mark}, p.key...)
	j, _ := json.Marshal(parts)
	return string(j)
}

// upserts is the ops vector of n rows that are all upserts.
func upserts(n int) []byte { return bytes.Repeat([]byte{'u'}, n) }

// splitKeyText splits a ReadKeys key ("a,b" for two key columns) into its
// n parts; a text key holding a comma cannot be told apart.
func splitKeyText(field, s string, n int) ([]string, error) {
	if n == 1 {
		return []string{s}, nil
	}
	parts := bytes.Split([]byte(s), []byte{','})
	if len(parts) != n {
		return nil, invalid(field, "want %d key values joined by \",\", got %q", n, cut(s))
	}
	out := make([]string, n)
	for i, p := range parts {
		out[i] = string(p)
	}
	return out, nil
}

// errSyncColumn names an unusable watermark column.
func errSyncColumn(column, table, why string) error {
	return invalid("sync.watermark.column", "%s of %s %s", fmt.Sprintf("%q", column), table, why)
}
