package batch

import (
	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
)

// Select returns a batch of b's rows at the given indexes (ascending), with
// their source references and rejects (renumbered); the header is b's.
func Select(b *commonv1.Batch, rows []int) *commonv1.Batch {
	out := &commonv1.Batch{
		JobId: b.GetJobId(), PartitionId: b.GetPartitionId(), Seq: b.GetSeq(), Table: b.GetTable(), Source: b.GetSource(),
		FirstKey: b.GetFirstKey(), LastKey: b.GetLastKey(), NumRows: int32(len(rows)), TraceContext: b.GetTraceContext(),
		StageMicros: b.GetStageMicros(),
	}
	for _, c := range b.GetColumns() {
		out.Columns = append(out.Columns, selectColumn(c, rows))
	}
	if b.GetSourceRefs() != nil {
		out.SourceRefs = selectColumn(b.GetSourceRefs(), rows)
	}
	if len(b.GetRejects()) > 0 {
		at := make(map[int32]int32, len(rows))
		for k, i := range rows {
			at[int32(i)] = int32(k)
		}
		for _, r := range b.GetRejects() {
			if k, ok := at[r.GetRow()]; ok {
				c := &commonv1.Reject{Row: k, Stage: r.GetStage(), Rule: r.GetRule(), Column: r.GetColumn(), Reason: r.GetReason(), Raw: r.GetRaw(), Warning: r.GetWarning()}
				out.Rejects = append(out.Rejects, c)
			}
		}
	}
	return out
}

func selectColumn(c *commonv1.Column, rows []int) *commonv1.Column {
	bld := NewBuilder(c.GetName(), c.GetType(), len(rows))
	for _, i := range rows {
		if IsUnchanged(c, i) {
			bld.AppendUnchanged()
			continue
		}
		if IsNull(c, i) {
			bld.AppendNull()
			continue
		}
		switch Storage(c.GetType()) {
		case StorageInts:
			bld.AppendInt(c.Ints[i])
		case StorageFloats:
			bld.AppendFloat(c.Floats[i])
		case StorageBools:
			bld.AppendBool(Bit(c.Bools, i))
		default:
			bld.AppendBytes(Bytes(c, i))
		}
	}
	return bld.Column()
}
