package load

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"github.com/jackc/pgx/v5"
)

// Staged loads: a target table fed by dedupe, new identifiers or references
// is loaded into a staging table first, because what survives and which id
// a reference gets is known only when every batch of the job is in.
// FinalizeStaged then moves the rows into the target in one transaction.

const (
	stageSchema = "cutover_stage"
	// oldPrefix marks the transformer's columns holding a row's old ids.
	oldPrefix = "__old__"
)

// Metadata columns of a staging table, beside the target's columns.
const (
	metaTable  = "_cutover_table"
	metaSystem = "_cutover_system"
	metaSource = "_cutover_source"
	metaRef    = "_cutover_ref"
	metaPart   = "_cutover_part"
	metaSeq    = "_cutover_seq"
	metaIdx    = "_cutover_idx"
	metaRow    = "_cutover_row"
)

// stageName is the staging table of a job's target table: readable when it
// fits PostgreSQL's 63-byte names, else the job id and a hash.
func stageName(jobID, table string) string {
	n := jobID + "_" + table
	if len(n) <= 63 {
		return n
	}
	h := sha256.Sum256([]byte(table))
	return jobID[:min(len(jobID), 46)] + "_" + hex.EncodeToString(h[:8])
}

// ensureStaging creates the staging table of table: the target's columns
// and defaults (an unmapped column gets its default here, as it would in the
// target), without its keys and constraints (duplicates are the point), and
// the metadata columns. The advisory lock serialises partitions starting at
// once.
func (t *target) ensureStaging(ctx context.Context, schema, table, stage string) error {
	tgt := pgx.Identifier{schema, table}.Sanitize()
	st := pgx.Identifier{stageSchema, stage}.Sanitize()
	sql := fmt.Sprintf(`BEGIN;
SELECT pg_advisory_xact_lock(7306247002);
CREATE TABLE IF NOT EXISTS %s (LIKE %s INCLUDING DEFAULTS,
	%s text NOT NULL, %s text NOT NULL, %s text NOT NULL, %s text NOT NULL,
	%s text NOT NULL, %s bigint NOT NULL, %s int NOT NULL, %s bigserial);
-- Identity and generated columns are the target's to fill: LIKE keeps
-- their NOT NULL but not what fills them.
DO $$ DECLARE c record; BEGIN
	FOR c IN SELECT a.attname FROM pg_attribute a
		WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped AND (a.attidentity <> '' OR a.attgenerated <> '')
	LOOP
		EXECUTE format('ALTER TABLE %%s ALTER COLUMN %%I DROP NOT NULL', %s, c.attname);
	END LOOP;
END $$;
COMMIT;`, st, tgt, metaTable, metaSystem, metaSource, metaRef, metaPart, metaSeq, metaIdx, metaRow, quoteLit(tgt), quoteLit(st))
	if _, err := t.pool.Exec(ctx, sql); err != nil {
		return t.dbErr("create staging table for "+schema+"."+table, err)
	}
	return nil
}

// ensureOldColumns adds the batch's old-id columns to the staging table.
func (t *target) ensureOldColumns(ctx context.Context, stage string, b *commonv1.Batch) error {
	var adds []string
	for _, c := range b.GetColumns() {
		if strings.HasPrefix(c.GetName(), oldPrefix) {
			adds = append(adds, "ADD COLUMN IF NOT EXISTS "+pgx.Identifier{c.GetName()}.Sanitize()+" text")
		}
	}
	if len(adds) == 0 {
		return nil
	}
	sql := fmt.Sprintf("BEGIN; SELECT pg_advisory_xact_lock(7306247002); ALTER TABLE %s %s; COMMIT;",
		pgx.Identifier{stageSchema, stage}.Sanitize(), strings.Join(adds, ", "))
	if _, err := t.pool.Exec(ctx, sql); err != nil {
		return t.dbErr("add old-id columns to staging table "+stage, err)
	}
	return nil
}

// withMeta returns b with the metadata columns appended, for COPY into the
// staging table. The row order and rejects stay those of b.
func (l *loader) withMeta(b *commonv1.Batch) *commonv1.Batch {
	n := int(b.GetNumRows())
	name := b.GetTable()
	if name == "" {
		name = l.cfg.GetTableName()
	}
	if name == "" {
		name = l.cfg.GetTable()
	}
	konst := func(col, v string) *commonv1.Column {
		bld := batch.NewBuilder(col, commonv1.ColumnType_COLUMN_TYPE_TEXT, n)
		bld.Column().Data = make([]byte, 0, len(v)*n)
		for i := 0; i < n; i++ {
			bld.AppendString(v)
		}
		return bld.Column()
	}
	refs := batch.NewBuilder(metaRef, commonv1.ColumnType_COLUMN_TYPE_TEXT, n)
	seq := batch.NewBuilder(metaSeq, commonv1.ColumnType_COLUMN_TYPE_INT64, n)
	idx := batch.NewBuilder(metaIdx, commonv1.ColumnType_COLUMN_TYPE_INT64, n)
	for i := 0; i < n; i++ {
		refs.AppendString(batch.SourceRef(b, i))
		seq.AppendInt(b.GetSeq())
		idx.AppendInt(int64(i))
	}
	return &commonv1.Batch{
		JobId: b.GetJobId(), PartitionId: b.GetPartitionId(), Seq: b.GetSeq(), Table: b.GetTable(), Source: b.GetSource(),
		FirstKey: b.GetFirstKey(), LastKey: b.GetLastKey(), NumRows: b.GetNumRows(), SourceRefs: b.GetSourceRefs(),
		Rejects: b.GetRejects(), TraceContext: b.GetTraceContext(),
		Columns: append(append([]*commonv1.Column(nil), b.GetColumns()...),
			konst(metaTable, name), konst(metaSystem, l.cfg.GetSystem()), konst(metaSource, b.GetSource()),
			refs.Column(), konst(metaPart, l.cfg.GetPartitionId()), seq.Column(), idx.Column()),
	}
}
