package load

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	validatorv1 "github.com/cutover/cutover/gen/cutover/validator/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"github.com/cutover/cutover/services/kit/metrics"
	"github.com/cutover/cutover/services/kit/stage"
	"github.com/cutover/cutover/services/kit/telemetry"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

const (
	ledgerLookupSQL = `SELECT extracted, loaded, quarantined, filtered, warned FROM cutover.ledger WHERE job_id = $1 AND partition_id = $2 AND seq = $3`
	ledgerInsertSQL = `INSERT INTO cutover.ledger (job_id, partition_id, seq, table_name, target_table, last_key, extracted, loaded, quarantined, filtered, warned, position, deletes, epoch)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`
	// One statement for all of a batch's rejects; unnest keeps their order,
	// so ids follow row order.
	quarantineInsertSQL = `INSERT INTO cutover.quarantine
  (job_id, table_name, target_table, partition_id, seq, source, system, row_index, source_ref, stage, rule, column_name, reason, raw)
SELECT $1, $2, $3, $4, $5, $6, $7, q.* FROM unnest($8::int[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[]) AS q`
	filteredInsertSQL = `INSERT INTO cutover.filtered
  (job_id, table_name, target_table, partition_id, seq, source, system, row_index, source_ref, reason)
SELECT $1, $2, $3, $4, $5, $6, $7, q.* FROM unnest($8::int[], $9::text[], $10::text[]) AS q`
	warningInsertSQL = `INSERT INTO cutover.warnings
  (job_id, table_name, target_table, partition_id, seq, source, system, row_index, source_ref, rule, column_name, reason, raw)
SELECT $1, $2, $3, $4, $5, $6, $7, q.* FROM unnest($8::int[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[]) AS q`
	lineageInsertSQL = `INSERT INTO cutover.lineage
  (job_id, table_name, target_table, system, source, partition_id, seq, entries)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`
)

// resolveSQL marks an earlier job's quarantine entries resolved by the
// re-drive that loaded their rows.
const resolveSQL = `UPDATE cutover.quarantine SET resolved_by = $3
WHERE job_id = $1 AND table_name = $2 AND resolved_by = '' AND source_ref = ANY($4::text[])`

// filterStage marks a reject that is a row filter's doing: counted as
// filtered, not quarantined.
const filterStage = "filter"

var tracer = otel.Tracer("cutover/loader")

// Load takes a config message, then batches, and acknowledges each batch in
// order once its transaction committed (or was found in the ledger).
func (s *Service) Load(stream loaderv1.LoaderService_LoadServer) error {
	return toStatus(s.load(stream))
}

func (s *Service) load(stream loaderv1.LoaderService_LoadServer) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if err == io.EOF {
		return nil
	}
	if err != nil {
		return err
	}
	cfg := first.GetConfig()
	if cfg == nil {
		return fmt.Errorf("%w: the first message must be config", ErrInvalidArgument)
	}
	l, err := s.open(ctx, cfg)
	if err != nil {
		return err
	}
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		b := req.GetBatch()
		if b == nil {
			return fmt.Errorf("%w: every message after config must be a batch", ErrInvalidArgument)
		}
		resp, err := l.traced(ctx, b)
		if err != nil {
			return err
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

// LoadPartition pulls a partition's batches from the validator named in the
// request and loads each, answering with its acknowledgement.
func (s *Service) LoadPartition(req *loaderv1.LoadPartitionRequest, stream loaderv1.LoaderService_LoadPartitionServer) error {
	return toStatus(s.loadPartition(req, stream))
}

func (s *Service) loadPartition(req *loaderv1.LoadPartitionRequest, stream loaderv1.LoaderService_LoadPartitionServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	l, err := s.open(ctx, req.GetConfig())
	if err != nil {
		return err
	}
	cc, err := s.up.Conn(req.GetUpstream())
	if err != nil {
		return fmt.Errorf("%w: upstream: %v", ErrInvalidArgument, err)
	}
	up, err := validatorv1.NewValidatorServiceClient(cc).Pull(ctx, req.GetValidate())
	if err != nil {
		return &stage.UpstreamError{Stage: "validator", Err: err}
	}
	next := stage.Prefetch(ctx, "validator", func() (*commonv1.Batch, error) {
		r, err := up.Recv()
		return r.GetBatch(), err
	})
	for {
		b, err := next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		start := time.Now()
		resp, err := l.traced(ctx, b)
		if err != nil {
			return fmt.Errorf("batch seq %d: %w", b.GetSeq(), err)
		}
		stage.AddMicros(b, "loader", time.Since(start))
		if err := stream.Send(&loaderv1.LoadPartitionResponse{Ack: resp, LastKey: b.GetLastKey(),
			StageMicros: b.GetStageMicros(), TraceContext: b.GetTraceContext(),
			Position: b.GetPosition(), Ops: int32(len(b.GetOps()))}); err != nil {
			return err
		}
	}
}

// open checks a stream's config and readies the loader for its batches.
func (s *Service) open(ctx context.Context, cfg *loaderv1.LoadConfig) (*loader, error) {
	if cfg.GetTable() == "" {
		return nil, fmt.Errorf("%w: config.table is required", ErrInvalidArgument)
	}
	if cfg.GetJobId() == "" {
		return nil, fmt.Errorf("%w: config.job_id is required", ErrInvalidArgument)
	}
	t, schema, err := s.target(ctx, cfg.GetTarget())
	if err != nil {
		return nil, err
	}
	// A purged job writes nothing more, not even a staging table (each
	// batch checks again, under the job's lock: rollbackGuard).
	var purged bool
	if err := t.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM cutover.purged WHERE job_id = $1)`, cfg.GetJobId()).Scan(&purged); err != nil {
		return nil, t.dbErr("check for a purge of job "+cfg.GetJobId(), err)
	}
	if purged {
		return nil, fmt.Errorf("%w: job %s was deleted (its bookkeeping was purged); it writes nothing more", ErrFailedPrecondition, cfg.GetJobId())
	}
	// Column types decide binary or text COPY; read once per stream.
	var types map[string]string
	if !s.textOnly.Load() {
		if types, err = t.targetTypes(ctx, schema, cfg.GetTable()); err != nil {
			return nil, err
		}
	}
	l := &loader{svc: s, t: t, cfg: cfg, table: pgx.Identifier{schema, cfg.GetTable()}.Sanitize(), types: types}
	// A new owner fences the old one before its first batch, and an old
	// owner is refused before it makes anything: a holder that wakes up
	// after its job ended must not create a staging table the job's end
	// already dropped.
	if err := l.registerEpoch(ctx); err != nil {
		return nil, err
	}
	if cfg.GetStaged() {
		l.stage = stageName(cfg.GetJobId(), cfg.GetTable())
		if err := t.ensureStaging(ctx, schema, cfg.GetTable(), l.stage); err != nil {
			return nil, err
		}
		l.table = pgx.Identifier{stageSchema, l.stage}.Sanitize()
		if types != nil {
			if l.types, err = t.targetTypes(ctx, stageSchema, l.stage); err != nil {
				return nil, err
			}
		}
	} else if l.keyCols, err = t.primaryKey(ctx, schema, cfg.GetTable()); err != nil {
		return nil, err
	}
	if cfg.GetWriteMode() == commonv1.WriteMode_WRITE_MODE_UPSERT {
		if err := l.startUpsert(ctx, schema); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// loader loads the batches of one stream into one table.
type loader struct {
	svc   *Service
	t     *target
	cfg   *loaderv1.LoadConfig
	table string // quoted schema.table
	enc   encoder
	sql   []byte // COPY statement, rebuilt when the columns change
	cols  []string
	rd    sliceReader

	stage   string   // staging table name, "" when loading the target directly
	oldSeen bool     // the staging table has the old-id columns
	keyCols []string // target primary key, for lineage ("" keys without one)
	lin     []byte   // lineage entries of the current batch, reused

	types map[string]string // target column → base type name
	bin   binEncoder

	// Upsert (write_mode): rows go by COPY into a temporary table, then
	// into the target with ON CONFLICT, keeping before images (upsert.go).
	upsert bool
	upSQL  string  // the upsert statement for cols
	binSQL []byte  // binary COPY statement for cols
	binary bool    // the current batch goes as binary COPY
	lines  []int32 // rows the current batch sends, l.enc's or l.bin's

	// Values a change batch leaves out (Column.unchanged, unchanged.go).
	keep    []int  // columns leaving a value out in a line sent
	keepSQL string // the upsert statement keeping the target's values

	// change is what the current batch does row by row when it is a change
	// batch (Batch.ops, changes.go); nil otherwise.
	change *changeSet
}

// outcome is what one batch did.
type outcome struct {
	skipped                    bool
	extracted, loaded, quarant int64              // as committed or as stored in the ledger
	filtered                   int64              // rows a row filter left out
	warned                     int64              // loaded rows with a warning
	loadRejects                []*commonv1.Reject // rows PostgreSQL refused
	preRejected, rowsToLoad    int                // distinct rejected rows from earlier stages; the rest
	copiedRows                 int64
}

func (l *loader) traced(ctx context.Context, b *commonv1.Batch) (*loaderv1.LoadResponse, error) {
	ctx = telemetry.BatchContext(ctx, b)
	ctx, span := tracer.Start(ctx, "loader.batch", trace.WithAttributes(telemetry.BatchAttrs(b)...))
	defer span.End()
	metrics.InFlight(ctx, "loader", 1)
	defer metrics.InFlight(ctx, "loader", -1)
	in, start := metrics.Received(b), time.Now()
	o, err := l.loadBatch(ctx, b)
	metrics.Batch(ctx, "loader", in, nil, time.Since(start))
	if err != nil {
		// The error text may quote PostgreSQL details (row values): keep
		// it out of the span, name only the kind of failure.
		span.SetStatus(otelcodes.Error, errKind(err))
		return nil, err
	}
	metrics.Loaded(ctx, o.loaded, o.quarant, o.filtered, o.loadRejects)
	span.SetAttributes(
		attribute.Int64("cutover.rows_loaded", o.loaded),
		attribute.Int64("cutover.rows_quarantined", o.quarant),
		attribute.Bool("cutover.skipped", o.skipped),
		attribute.Int64("cutover.rows_out", o.loaded),
		attribute.Int64("cutover.rows_rejected", o.quarant),
	)
	if !o.skipped && o.rowsToLoad > 0 {
		format, n := "text", &l.svc.textBatches
		if l.binary {
			format, n = "binary", &l.svc.binaryBatches
		}
		n.Add(1)
		span.SetAttributes(attribute.String("cutover.copy_format", format))
	}
	return &loaderv1.LoadResponse{
		Seq:     b.GetSeq(),
		Skipped: o.skipped,
		Counts:  &commonv1.Counts{Extracted: o.extracted, Loaded: o.loaded, Quarantined: o.quarant, Filtered: o.filtered, Warned: o.warned, Batches: 1},
	}, nil
}

func errKind(err error) string {
	for _, e := range []error{ErrFenced, ErrInvalidArgument, batch.ErrMalformed, ErrNotFound, ErrTargetMismatch, ErrUnavailable, ErrCountMismatch, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return "internal"
}

func (l *loader) loadBatch(ctx context.Context, b *commonv1.Batch) (outcome, error) {
	if err := batch.Check(b); err != nil {
		return outcome{}, fmt.Errorf("batch seq %d: %w", b.GetSeq(), err)
	}
	if j := b.GetJobId(); j != "" && j != l.cfg.GetJobId() {
		return outcome{}, fmt.Errorf("%w: batch seq %d: batch.job_id %q differs from config.job_id %q", ErrInvalidArgument, b.GetSeq(), j, l.cfg.GetJobId())
	}
	if p := b.GetPartitionId(); p != "" && p != l.cfg.GetPartitionId() {
		return outcome{}, fmt.Errorf("%w: batch seq %d: batch.partition_id %q differs from config.partition_id %q", ErrInvalidArgument, b.GetSeq(), p, l.cfg.GetPartitionId())
	}
	rejected := batch.Rejected(b)
	pre := 0
	for _, w := range rejected {
		pre += bits.OnesCount8(w)
	}
	toLoad := int(b.GetNumRows()) - pre
	if toLoad > 0 {
		if len(b.GetColumns()) == 0 {
			return outcome{}, fmt.Errorf("%w: batch seq %d: batch.columns is empty but %d rows are to be loaded", ErrInvalidArgument, b.GetSeq(), toLoad)
		}
		for k, c := range b.GetColumns() {
			if c.GetName() == "" {
				return outcome{}, fmt.Errorf("%w: batch seq %d: batch.columns[%d].name is empty", ErrInvalidArgument, b.GetSeq(), k)
			}
		}
	}
	if err := checkUnchanged(b); err != nil {
		return outcome{}, err
	}
	o := outcome{preRejected: pre, rowsToLoad: toLoad}
	l.change = nil
	// A change batch: rows with ops, or none but a source position (the
	// follower records a position past a TRUNCATE).
	if len(b.GetOps()) > 0 || b.GetPosition() != "" {
		cs, err := l.planChanges(b, rejected)
		if err != nil {
			return o, err
		}
		l.change, o.rowsToLoad = cs, cs.upserts
		if !l.upsert { // changes always upsert: rebuild the statements
			l.upsert, l.sql = true, nil
		}
	}
	if l.stage != "" {
		if !l.oldSeen {
			if err := l.t.ensureOldColumns(ctx, l.stage, b); err != nil {
				return o, err
			}
			if l.types != nil {
				types, err := l.t.targetTypes(ctx, stageSchema, l.stage)
				if err != nil {
					return o, err
				}
				l.types = types
			}
			l.oldSeen = true
		}
		b = l.withMeta(b)
	}

	o, retry, err := l.attempt(ctx, b, rejected, o, false)
	if err != nil || !retry {
		return o, err
	}
	// The bulk COPY hit bad data: redo the batch isolating the bad rows.
	o, _, err = l.attempt(ctx, b, rejected, o, true)
	return o, err
}

// attempt runs the batch in one transaction. In bulk mode a data or
// constraint error rolls back and asks for a retry in isolating mode, where
// rows that PostgreSQL refuses are quarantined and the rest loads.
func (l *loader) attempt(ctx context.Context, b *commonv1.Batch, rejected []byte, o outcome, isolate bool) (outcome, bool, error) {
	conn, err := l.t.pool.Acquire(ctx)
	if err != nil {
		return o, false, l.t.dbErr("acquire connection", err)
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return o, false, l.t.dbErr("begin", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit

	if done, err := l.lookup(ctx, tx, b, &o); err != nil || done {
		return o, false, err
	}
	if err := rollbackGuard(ctx, l.t, tx, l.cfg.GetJobId()); err != nil {
		return o, false, fmt.Errorf("batch seq %d: %w", b.GetSeq(), err)
	}
	// The fence, in the batch's transaction and before anything is
	// written: an owner whose lease was taken over commits nothing (fence.go).
	if err := l.fence(ctx, tx, b.GetSeq()); err != nil {
		if errors.Is(err, ErrFenced) {
			_ = tx.Rollback(context.WithoutCancel(ctx))
			l.refused(ctx, conn, err)
		}
		return o, false, err
	}
	o.loadRejects = o.loadRejects[:0]
	o.copiedRows = 0
	mask := rejected // rows not sent
	if cs := l.change; cs != nil {
		mask = cs.skipU
		if b.GetSeq() == 0 {
			if _, err := tx.Exec(ctx, sealSQL, l.cfg.GetJobId(), l.cfg.GetTable()); err != nil {
				return o, false, l.t.dbErr(fmt.Sprintf("batch seq %d: before images of the rows the full load inserted into %s", b.GetSeq(), l.table), err)
			}
		}
		if err := l.applyDeletes(ctx, tx, b, cs); err != nil {
			return o, false, err
		}
	}
	if o.rowsToLoad > 0 {
		l.prepareSQL(b)
		l.bin.kinds = binPlan(b.GetColumns(), l.types, l.bin.kinds)
		l.binary = l.bin.kinds != nil && l.bin.prepare(b, mask)
		if l.binary {
			l.lines = l.bin.lines
			o.loadRejects = append(o.loadRejects, l.bin.rejects...)
		} else {
			l.enc.encode(b, mask)
			l.lines = l.enc.lines
		}
		l.prepareKeep(b)
		if l.upsert && len(l.lines) > 0 {
			if err := l.upsertTemp(ctx, tx, b); err != nil {
				return o, false, err
			}
		}
		switch {
		case len(l.lines) == 0: // every row was set aside before sending
		case !isolate:
			n, missing, err := l.write(ctx, tx, b, 0, len(l.lines))
			if err != nil {
				if isDataError(err) {
					return o, true, nil
				}
				return o, false, l.t.dbErr(fmt.Sprintf("batch seq %d: copy into %s", b.GetSeq(), l.table), err)
			}
			o.copiedRows = n
			if len(missing) > 0 {
				o.loadRejects = append(o.loadRejects, missing...)
				slices.SortStableFunc(o.loadRejects, func(a, b *commonv1.Reject) int { return int(a.Row - b.Row) })
			}
		default:
			n, err := l.isolate(ctx, tx, b, 0, len(l.lines), &o)
			if err != nil {
				return o, false, err
			}
			o.copiedRows = n
			// Rows set aside before sending come first: keep row order.
			slices.SortStableFunc(o.loadRejects, func(a, b *commonv1.Reject) int { return int(a.Row - b.Row) })
		}
	}
	want := int64(o.rowsToLoad - len(o.loadRejects))
	if o.copiedRows != want {
		return o, false, fmt.Errorf("%w: batch seq %d: PostgreSQL copied %d rows, expected %d", ErrCountMismatch, b.GetSeq(), o.copiedRows, want)
	}
	o.extracted = int64(b.GetNumRows())
	o.loaded = o.copiedRows
	if cs := l.change; cs != nil {
		o.loaded += cs.deletes + cs.superseded
	}
	o.filtered = filteredRows(b)
	o.quarant = int64(o.preRejected+len(o.loadRejects)) - o.filtered
	o.warned = int64(batch.CountBits(loadedWarned(b, rejected, o.loadRejects)))

	if err := l.finish(ctx, tx, b, o); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.TableName == "ledger" {
			// Another loader committed this batch meanwhile: ours rolls
			// back and the stored counts stand.
			// Read back on the same connection: taking a second one from
			// the pool while holding this one can starve the pool.
			if err := tx.Rollback(ctx); err != nil {
				return o, false, l.t.dbErr(fmt.Sprintf("batch seq %d: rollback", b.GetSeq()), err)
			}
			found, err := l.lookup(ctx, conn, b, &o)
			if err == nil && !found {
				err = fmt.Errorf("batch seq %d: ledger entry conflicted but cannot be read back", b.GetSeq())
			}
			return o, false, err
		}
		return o, false, l.t.dbErr(fmt.Sprintf("batch seq %d: record ledger and quarantine", b.GetSeq()), err)
	}
	if err := tx.Commit(ctx); err != nil {
		return o, false, l.t.dbErr(fmt.Sprintf("batch seq %d: commit", b.GetSeq()), err)
	}
	return o, false, nil
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

var _ querier = (*pgxpool.Conn)(nil)

// lookup reports whether the batch is in the ledger, filling o with the
// stored counts if so.
func (l *loader) lookup(ctx context.Context, q querier, b *commonv1.Batch, o *outcome) (bool, error) {
	err := q.QueryRow(ctx, ledgerLookupSQL, l.cfg.GetJobId(), l.cfg.GetPartitionId(), b.GetSeq()).Scan(&o.extracted, &o.loaded, &o.quarant, &o.filtered, &o.warned)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, l.t.dbErr(fmt.Sprintf("batch seq %d: ledger lookup", b.GetSeq()), err)
	}
	o.skipped = true
	return true, nil
}

// prepareSQL builds the COPY statement for the batch's columns, reusing the
// previous one when the columns are the same (the usual case on a stream).
func (l *loader) prepareSQL(b *commonv1.Batch) {
	cols := b.GetColumns()
	same := len(cols) == len(l.cols) && l.sql != nil
	for k := 0; same && k < len(cols); k++ {
		same = cols[k].GetName() == l.cols[k]
	}
	if same {
		return
	}

	l.cols = l.cols[:0]
	l.sql = append(l.sql[:0], "COPY "...)
	if l.upsert {
		l.sql = append(l.sql, upsertTable...)
	} else {
		l.sql = append(l.sql, l.table...)
	}
	l.sql = append(l.sql, " ("...)
	for k, c := range cols {
		if k > 0 {
			l.sql = append(l.sql, ", "...)
		}
		l.sql = append(l.sql, pgx.Identifier{c.GetName()}.Sanitize()...)
		l.cols = append(l.cols, c.GetName())
	}
	l.sql = append(l.sql, ") FROM STDIN"...)
	l.binSQL = append(append(l.binSQL[:0], l.sql...), " WITH (FORMAT binary)"...)
	if l.upsert {
		l.upSQL = upsertSQL(l.table, l.cols, l.keyCols)
	}
}

// copy sends lines [lo, hi) with COPY FROM STDIN. Binary rows are encoded
// while PostgreSQL reads the previous chunk; text lines are encoded already.
func (l *loader) copy(ctx context.Context, pc *pgconn.PgConn, b *commonv1.Batch, lo, hi int) (pgconn.CommandTag, error) {
	if l.binary {
		l.bin.rd.reset(&l.bin, b, l.lines[lo:hi])
		return pc.CopyFrom(ctx, &l.bin.rd, string(l.binSQL))
	}
	l.rd.b = l.enc.span(lo, hi)
	return pc.CopyFrom(ctx, &l.rd, string(l.sql))
}

// isolate loads lines [lo, hi) under a savepoint; when PostgreSQL refuses
// the data it splits the range in two, down to single rows, which are then
// quarantined with PostgreSQL's reason. This gives the same result as
// loading row by row (earlier rows win a duplicate key) at a cost of about
// 2·k·log(n/k) COPYs for k bad rows instead of n.
func (l *loader) isolate(ctx context.Context, tx pgx.Tx, b *commonv1.Batch, lo, hi int, o *outcome) (int64, error) {
	if lo >= hi {
		return 0, nil
	}
	op := fmt.Sprintf("batch seq %d: copy into %s", b.GetSeq(), l.table)
	if _, err := tx.Exec(ctx, "SAVEPOINT cutover_row"); err != nil {
		return 0, l.t.dbErr(op, err)
	}
	n, missing, err := l.write(ctx, tx, b, lo, hi)
	if err == nil {
		if _, err := tx.Exec(ctx, "RELEASE SAVEPOINT cutover_row"); err != nil {
			return 0, l.t.dbErr(op, err)
		}
		o.loadRejects = append(o.loadRejects, missing...)
		return n, nil
	}
	if !isDataError(err) {
		return 0, l.t.dbErr(op, err)
	}
	if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT cutover_row; RELEASE SAVEPOINT cutover_row"); err != nil {
		return 0, l.t.dbErr(op, err)
	}
	if hi-lo == 1 {
		var pgErr *pgconn.PgError
		errors.As(err, &pgErr)
		row := int(l.lines[lo])
		column := pgErr.ColumnName
		if column == "" {
			column = copyColumn(pgErr.Where)
		}
		o.loadRejects = append(o.loadRejects, &commonv1.Reject{
			Row:    int32(row),
			Stage:  "load",
			Rule:   "target_constraint",
			Column: column,
			Reason: l.withValue(pgReason(pgErr, column), pgErr, b, column, row),
			Raw:    batch.RowText(b, row),
		})
		return 0, nil
	}
	mid := lo + (hi-lo)/2
	n1, err := l.isolate(ctx, tx, b, lo, mid, o)
	if err != nil {
		return 0, err
	}
	n2, err := l.isolate(ctx, tx, b, mid, hi, o)
	return n1 + n2, err
}

// withValue names the offending value where binary COPY makes PostgreSQL
// drop it: its timestamp and date receive functions say only "out of range"
// (22008) where the text input functions quote the text; the value is
// appended as text COPY would have sent it. Other errors read the same in
// both formats.
func (l *loader) withValue(reason string, e *pgconn.PgError, b *commonv1.Batch, column string, row int) string {
	if !l.binary || column == "" || e.Code != "22008" || strings.Contains(e.Message, `"`) {
		return reason
	}
	for _, c := range b.GetColumns() {
		if c.GetName() != column || batch.IsNull(c, row) {
			continue
		}
		var v []byte
		switch c.GetType() {
		case commonv1.ColumnType_COLUMN_TYPE_TEXT, commonv1.ColumnType_COLUMN_TYPE_NUMERIC:
			v = batch.Bytes(c, row)
		case commonv1.ColumnType_COLUMN_TYPE_BYTES:
			v = hex.AppendEncode([]byte(`\x`), batch.Bytes(c, row))
		default:
			v = appendValue(nil, c, row)
		}
		if len(v) > 200 {
			return reason + `: "` + strings.ToValidUTF8(string(v[:200]), "") + `…"`
		}
		return reason + `: "` + string(v) + `"`
	}
	return reason
}

// finish writes the quarantine rows, the filtered rows, the lineage and
// the ledger row in one round trip.
func (l *loader) finish(ctx context.Context, tx pgx.Tx, b *commonv1.Batch, o outcome) error {
	table := b.GetTable()
	if table == "" { // as withMeta names staged rows
		table = l.cfg.GetTableName()
	}
	if table == "" {
		table = l.cfg.GetTable()
	}
	system := clean(l.cfg.GetSystem())
	var pb pgx.Batch
	// The ledger row first: a concurrent loader's commit of this batch
	// shows as its unique violation, before any other insert conflicts.
	var position *string
	var deletes int64
	if l.change != nil {
		p := clean(b.GetPosition())
		position, deletes = &p, l.change.deletes
	}
	pb.Queue(ledgerInsertSQL, l.cfg.GetJobId(), l.cfg.GetPartitionId(), b.GetSeq(), clean(table), l.cfg.GetTable(), clean(b.GetLastKey()),
		o.extracted, o.loaded, o.quarant, o.filtered, o.warned, position, deletes, l.cfg.GetEpoch())
	var q, f, w rejectCols
	var loadedWarn []byte
	if o.warned > 0 {
		loadedWarn = loadedWarned(b, batch.Rejected(b), o.loadRejects)
	}
	for _, rs := range [][]*commonv1.Reject{b.GetRejects(), o.loadRejects} {
		for _, r := range rs {
			switch {
			case r.GetWarning():
				// A warned row that did not load is quarantined for
				// its other rejects: its warnings are not recorded.
				if batch.Bit(loadedWarn, int(r.GetRow())) {
					w.add(b, r)
				}
			case r.GetStage() == filterStage:
				f.add(b, r)
			default:
				q.add(b, r)
			}
		}
	}
	if len(q.rows) > 0 {
		pb.Queue(quarantineInsertSQL, l.cfg.GetJobId(), clean(table), l.cfg.GetTable(), l.cfg.GetPartitionId(), b.GetSeq(), clean(b.GetSource()), system,
			q.rows, q.refs, q.stages, q.rules, q.cols, q.reasons, q.raws)
	}
	if len(f.rows) > 0 {
		pb.Queue(filteredInsertSQL, l.cfg.GetJobId(), clean(table), l.cfg.GetTable(), l.cfg.GetPartitionId(), b.GetSeq(), clean(b.GetSource()), system,
			f.rows, f.refs, f.reasons)
	}
	if len(w.rows) > 0 {
		pb.Queue(warningInsertSQL, l.cfg.GetJobId(), clean(table), l.cfg.GetTable(), l.cfg.GetPartitionId(), b.GetSeq(), clean(b.GetSource()), system,
			w.rows, w.refs, w.rules, w.cols, w.reasons, w.raws)
	}
	// A re-drive resolves the earlier job's entries of the rows it loads.
	if old := l.cfg.GetRedriveOf(); old != "" && o.loaded > 0 {
		pb.Queue(resolveSQL, old, clean(table), l.cfg.GetJobId(), loadedRefs(b, o.loadRejects))
	}
	// Staged rows get their lineage when they are finalized: only then is
	// their target row known.
	if l.stage == "" && o.loaded > 0 {
		pb.Queue(lineageInsertSQL, l.cfg.GetJobId(), clean(table), l.cfg.GetTable(), system, clean(b.GetSource()), l.cfg.GetPartitionId(), b.GetSeq(),
			l.lineage(b, o.loadRejects))
	}
	return tx.SendBatch(ctx, &pb).Close()
}

// rejectCols holds rejects column-wise, as the unnest inserts take them.
type rejectCols struct {
	rows                                     []int32
	refs, stages, rules, cols, reasons, raws []string
}

func (c *rejectCols) add(b *commonv1.Batch, r *commonv1.Reject) {
	c.rows = append(c.rows, r.GetRow())
	c.refs = append(c.refs, clean(batch.SourceRef(b, int(r.GetRow()))))
	c.stages = append(c.stages, clean(r.GetStage()))
	c.rules = append(c.rules, clean(r.GetRule()))
	c.cols = append(c.cols, clean(r.GetColumn()))
	c.reasons = append(c.reasons, clean(r.GetReason()))
	c.raws = append(c.raws, clean(r.GetRaw()))
}

// loadedWarned returns the rows with a warning that neither an earlier
// stage (rejected) nor the target (loadRejects) refused: they loaded.
func loadedWarned(b *commonv1.Batch, rejected []byte, loadRejects []*commonv1.Reject) []byte {
	bm := batch.Warned(b)
	if bm == nil {
		return nil
	}
	for k := range bm {
		if k < len(rejected) {
			bm[k] &^= rejected[k]
		}
	}
	for _, r := range loadRejects {
		if i := int(r.GetRow()); batch.Bit(bm, i) {
			bm[i/8] &^= 1 << (i % 8)
		}
	}
	return bm
}

// loadedRefs returns the source references of the rows that loaded.
func loadedRefs(b *commonv1.Batch, loadRejects []*commonv1.Reject) []string {
	skip := batch.Rejected(b)
	for _, r := range loadRejects {
		skip = batch.SetBit(skip, int(r.GetRow()))
	}
	var refs []string
	for i := 0; i < int(b.GetNumRows()); i++ {
		if !batch.Bit(skip, i) {
			refs = append(refs, clean(batch.SourceRef(b, i)))
		}
	}
	return refs
}

// filteredRows counts the distinct rows a row filter left out.
func filteredRows(b *commonv1.Batch) int64 {
	var bm []byte
	for _, r := range b.GetRejects() {
		if r.GetStage() == filterStage {
			bm = batch.SetBit(bm, int(r.GetRow()))
		}
	}
	return int64(batch.CountBits(bm))
}

// lineage returns the lineage entries of the loaded rows: "ref\tkey\n"
// each, escaped by appendLineage.
func (l *loader) lineage(b *commonv1.Batch, loadRejects []*commonv1.Reject) string {
	skip := batch.Rejected(b)
	for _, r := range loadRejects {
		skip = batch.SetBit(skip, int(r.GetRow()))
	}
	if l.change != nil { // a deleted or overwritten row is no target row's source
		for i := range int(b.GetNumRows()) {
			if batch.Bit(l.change.skipU, i) {
				skip = batch.SetBit(skip, i)
			}
		}
	}
	var keyCols []*commonv1.Column
	for _, name := range l.keyCols {
		var found *commonv1.Column
		for _, c := range b.GetColumns() {
			if c.GetName() == name {
				found = c
			}
		}
		if found == nil { // a key column the target fills itself
			keyCols = nil
			break
		}
		keyCols = append(keyCols, found)
	}
	n := int(b.GetNumRows())
	out := l.lin[:0]
	var key []byte
	for i := 0; i < n; i++ {
		if batch.Bit(skip, i) {
			continue
		}
		out = appendLineage(out, []byte(clean(batch.SourceRef(b, i))))
		out = append(out, '\t')
		key = key[:0]
		for k, c := range keyCols {
			if k > 0 {
				key = append(key, ',')
			}
			key = append(append(key, c.GetName()...), '=')
			key = batch.AppendText(key, c, i)
		}
		out = appendLineage(out, key)
		out = append(out, '\n')
	}
	l.lin = out
	return strings.ToValidUTF8(string(out), "\uFFFD")
}

// appendLineage appends v with '%', tab and newline %-escaped, so entries
// split on tab and newline; lineageUnescape (Go) and lineageUnescapeSQL
// undo it.
func appendLineage(dst, v []byte) []byte {
	for _, c := range v {
		switch c {
		case '%':
			dst = append(dst, "%25"...)
		case '\t':
			dst = append(dst, "%09"...)
		case '\n':
			dst = append(dst, "%0A"...)
		case 0:
			dst = append(dst, `\x00`...)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// isDataError reports a PostgreSQL data exception (class 22) or integrity
// violation (class 23): the rows are at fault, not the connection.
func isDataError(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (strings.HasPrefix(pgErr.Code, "22") || strings.HasPrefix(pgErr.Code, "23"))
}

// copyColumn extracts the column from a COPY error context such as
// `COPY orders, line 1, column amount: "12,x"`.
func copyColumn(where string) string {
	const marker = ", column "
	i := strings.Index(where, marker)
	if i < 0 {
		return ""
	}
	rest := where[i+len(marker):]
	if j := strings.IndexByte(rest, ':'); j >= 0 {
		rest = rest[:j]
	}
	if j := strings.IndexByte(rest, '\n'); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// pgReason renders a PostgreSQL error as a quarantine reason: the column,
// the message (which names the value or the constraint) and the detail.
func pgReason(e *pgconn.PgError, column string) string {
	var sb strings.Builder
	if column != "" {
		sb.WriteString("column ")
		sb.WriteString(column)
		sb.WriteString(": ")
	}
	sb.WriteString(e.Message)
	if e.ConstraintName != "" && !strings.Contains(e.Message, e.ConstraintName) {
		sb.WriteString(" (constraint ")
		sb.WriteString(e.ConstraintName)
		sb.WriteString(")")
	}
	if e.Detail != "" {
		sb.WriteString(": ")
		sb.WriteString(e.Detail)
	}
	if sb.Len() > 2000 {
		return sb.String()[:2000] + "…"
	}
	return sb.String()
}

// clean makes a string storable as PostgreSQL text, which refuses NUL.
func clean(s string) string {
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", `\x00`)
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return s
}

// sliceReader is a reusable io.Reader over a byte slice.
type sliceReader struct{ b []byte }

func (r *sliceReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}
