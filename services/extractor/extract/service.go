// Package extract implements the ExtractorService: it describes sources,
// plans their partitions and reads them into deterministic columnar batches
// (same cursor, same rows), so a retried batch is exactly the batch it
// replaces.
package extract

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"github.com/cutover/cutover/services/kit/config"
	"github.com/cutover/cutover/services/kit/fsroot"
	"github.com/cutover/cutover/services/kit/telemetry"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// DefaultBatchSize is used when a request leaves batch_size at 0.
const DefaultBatchSize = 10000

// MaxBatchSize bounds the rows of one batch; batch_bytes bounds its bytes
// (limits.go).
const MaxBatchSize = 1_000_000

// Service is the ExtractorService. It is stateless apart from a cache of
// connection pools, one per PostgreSQL DSN.
type Service struct {
	extractorv1.UnimplementedExtractorServiceServer

	mu     sync.Mutex
	pools  map[string]*pgPool
	closed bool
	// caches are other kinds' connection caches by kind name (see
	// kindCache), closed with the service.
	caches map[string]io.Closer
	// snaps are the PostgreSQL snapshots this replica exports, by id: each
	// holds a connection whose open transaction keeps the snapshot alive.
	snaps map[string]*pgSnapshot
	// streams are logical replication streams kept open between reads,
	// by source pool and slot (pgstream.go).
	streams map[string]*liveStream
	// streamOpens counts the streams opened (tests: kept ones are reused).
	streamOpens atomic.Int64

	// files confines file sources; empty disables them.
	files *fsroot.Roots
	// hosts is the allow-list of database source hosts; empty allows any.
	hosts hostAllowList
}

var _ extractorv1.ExtractorServiceServer = (*Service)(nil)

// Options is what an operator decides about the host the extractor runs
// on: which files callers may read and which databases they may reach.
type Options struct {
	// FileRoots are the directories CSV, JSONL, XLSX and SQLite sources
	// must lie in; relative source paths start at the first. None disables
	// file sources.
	FileRoots []string
	// SourceHosts lists the database hosts sources may connect to: "host",
	// "host:port" or "[v6]:port", "*" for any host or any port. Empty
	// allows any host.
	SourceHosts []string
}

// ParseOptions reads the two settings as configured: file roots separated
// by the OS list separator (':'), source hosts by ','. Items are trimmed
// and empty ones dropped (kit/config.List, as for the embedded stack), so
// one environment means the same to every binary.
func ParseOptions(fileRoots, sourceHosts string) Options {
	return Options{FileRoots: config.List(fileRoots, string(filepath.ListSeparator)), SourceHosts: config.List(sourceHosts, ",")}
}

// NewWithOptions returns a Service with no open connections. A root that
// does not exist or a malformed host entry is an error naming the setting.
func NewWithOptions(opts Options) (*Service, error) {
	files, err := fsroot.New(opts.FileRoots)
	if err != nil {
		return nil, fmt.Errorf("file roots (CUTOVER_FILE_ROOTS): %w", err)
	}
	hosts, err := parseSourceHosts(opts.SourceHosts)
	if err != nil {
		return nil, fmt.Errorf("source hosts (CUTOVER_SOURCE_HOSTS): %w", err)
	}
	return &Service{pools: map[string]*pgPool{}, snaps: map[string]*pgSnapshot{}, files: files, hosts: hosts}, nil
}

// New returns a Service with file sources disabled and any source host
// allowed.
func New() *Service {
	s, _ := NewWithOptions(Options{}) // nothing to fail on
	return s
}

// Register registers the ExtractorService on g.
func (s *Service) Register(g *grpc.Server) {
	extractorv1.RegisterExtractorServiceServer(g, s)
}

// Close ends every snapshot this service holds and closes every cached
// pool. Later PostgreSQL requests fail with Unavailable.
func (s *Service) Close() error {
	s.closeStreams("")
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, sn := range s.snaps {
		sn.close()
		delete(s.snaps, id)
	}
	for k, p := range s.pools {
		p.pool.Close()
		delete(s.pools, k)
	}
	for k, c := range s.caches {
		_ = c.Close()
		delete(s.caches, k)
	}
	s.closed = true
	return nil
}

// kindCache returns the cache a kind keeps under name, creating it on
// first use, or Unavailable once the service is closed.
func (s *Service) kindCache(name string, create func() io.Closer) (io.Closer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("%w: extractor is shutting down", ErrUnavailable)
	}
	if c, ok := s.caches[name]; ok {
		return c, nil
	}
	if s.caches == nil {
		s.caches = map[string]io.Closer{}
	}
	c := create()
	s.caches[name] = c
	return c, nil
}

// DescribeSource returns the columns, primary key and a row estimate.
func (s *Service) DescribeSource(ctx context.Context, req *extractorv1.DescribeSourceRequest) (*extractorv1.DescribeSourceResponse, error) {
	k, err := kindOf(req.GetSource())
	if err != nil {
		return nil, toStatus(err)
	}
	resp, err := k.describe(ctx, s, req.GetSource())
	if err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
}

// PlanPartitions splits a source into key ranges that together cover it.
func (s *Service) PlanPartitions(ctx context.Context, req *extractorv1.PlanPartitionsRequest) (*extractorv1.PlanPartitionsResponse, error) {
	n := int(req.GetPartitions())
	if n < 0 || n > 10000 {
		return nil, toStatus(invalid("partitions", "must be between 0 and 10000, got %d", n))
	}
	if n == 0 {
		n = 1
	}
	k, err := kindOf(req.GetSource())
	if err != nil {
		return nil, toStatus(err)
	}
	if ctx, err = snapshotContext(ctx, k, req.GetSnapshot()); err != nil {
		return nil, toStatus(err)
	}
	ranges, err := k.plan(ctx, s, req.GetSource(), n)
	if err != nil {
		return nil, toStatus(err)
	}
	return &extractorv1.PlanPartitionsResponse{Ranges: ranges}, nil
}

// ReadBatch reads the batch that starts at the request's cursor.
func (s *Service) ReadBatch(ctx context.Context, req *extractorv1.ReadBatchRequest) (*extractorv1.ReadBatchResponse, error) {
	return s.tracedRead(ctx, req, s.readBatch)
}

// tracedRead runs one batch's read under its span.
func (s *Service) tracedRead(ctx context.Context, req *extractorv1.ReadBatchRequest,
	read func(context.Context, *extractorv1.ReadBatchRequest) (*extractorv1.ReadBatchResponse, error)) (*extractorv1.ReadBatchResponse, error) {
	ctx, span := otel.Tracer("cutover/extractor").Start(ctx, "extractor.batch", trace.WithAttributes(
		attribute.String("cutover.job_id", req.GetJobId()),
		attribute.String("cutover.partition", req.GetPartitionId()),
		attribute.Int64("cutover.seq", req.GetSeq()),
		attribute.String("cutover.table", req.GetTable()),
	))
	defer span.End()
	resp, err := read(ctx, req)
	if err != nil {
		st := toStatus(err)
		// The code only: messages may name paths, which is fine, but keep
		// spans free of anything that could be row data.
		span.SetStatus(otelcodes.Error, status.Code(st).String())
		return nil, st
	}
	b := resp.GetBatch()
	span.SetAttributes(telemetry.BatchAttrs(b)...)
	span.SetAttributes(
		attribute.Int("cutover.rows_out", int(b.GetNumRows())),
		attribute.Int("cutover.rows_rejected", len(b.GetRejects())),
		attribute.Bool("cutover.done", resp.GetDone()),
	)
	return resp, nil
}

func (s *Service) readBatch(ctx context.Context, req *extractorv1.ReadBatchRequest) (*extractorv1.ReadBatchResponse, error) {
	lim, err := limitsOf(req)
	if err != nil {
		return nil, err
	}
	k, err := kindOf(req.GetSource())
	if err != nil {
		return nil, err
	}
	if ctx, err = snapshotContext(ctx, k, req.GetSnapshot()); err != nil {
		return nil, err
	}
	b, done, err := k.read(ctx, s, req.GetSource(), req.GetRange(), req.GetCursor(), lim)
	if err != nil {
		return nil, err
	}
	if refs := req.GetOnlyRefs(); len(refs) > 0 {
		if b, done, err = onlyRefs(ctx, s, k, req, lim, refs, b, done); err != nil {
			return nil, err
		}
	}
	return batchResponse(req, b, done), nil
}

// batchResponse answers req with b, its header filled in from req.
func batchResponse(req *extractorv1.ReadBatchRequest, b *commonv1.Batch, done bool) *extractorv1.ReadBatchResponse {
	b.JobId = req.GetJobId()
	b.PartitionId = req.GetPartitionId()
	b.Seq = req.GetSeq()
	b.Table = req.GetTable()
	b.FirstKey = req.GetCursor()
	return &extractorv1.ReadBatchResponse{Batch: b, Done: done}
}

// readPass is a partition read in one pass: the batches come one after
// the other from one query in one transaction, each the batch ReadBatch
// would read at the previous one's last key.
type readPass interface {
	// next reads the batch after the previous one (the first: after the
	// cursor the pass was opened at) and whether the partition is done.
	next(ctx context.Context) (*commonv1.Batch, bool, error)
	close()
}

// passKind is implemented by the kinds that read some sources in one pass
// per partition (a MySQL table without primary key).
type passKind interface {
	// openPass starts the pass at cursor, or returns nil when the source
	// is read batch by batch.
	openPass(ctx context.Context, s *Service, src *commonv1.SourceSpec, rng *commonv1.KeyRange, cursor string, lim readLimits) (readPass, error)
}

// openPass starts the pass a partition is streamed through, or returns nil
// when its batches are read one by one (ReadBatch). A re-drive (only_refs)
// reads batch by batch.
func (s *Service) openPass(ctx context.Context, req *extractorv1.ReadBatchRequest) (readPass, error) {
	if len(req.GetOnlyRefs()) > 0 {
		return nil, nil
	}
	lim, err := limitsOf(req)
	if err != nil {
		return nil, err
	}
	k, err := kindOf(req.GetSource())
	if err != nil {
		return nil, err
	}
	pk, ok := k.(passKind)
	if !ok {
		return nil, nil
	}
	if ctx, err = snapshotContext(ctx, k, req.GetSnapshot()); err != nil {
		return nil, err
	}
	return pk.openPass(ctx, s, req.GetSource(), req.GetRange(), req.GetCursor(), lim)
}

// snapshotKind is implemented by the kinds whose sources can pin one
// consistent view for a whole job. It is separate from sourceKind so that
// kinds without shared snapshots need nothing.
type snapshotKind interface {
	// openSnapshot returns an opaque id for PlanPartitions and ReadBatch.
	openSnapshot(ctx context.Context, s *Service, src *commonv1.SourceSpec) (string, error)
	// closeSnapshot releases a snapshot; an unknown id is not an error.
	closeSnapshot(ctx context.Context, s *Service, src *commonv1.SourceSpec, id string) error
	// checkSnapshot validates an id's shape (InvalidArgument otherwise).
	checkSnapshot(id string) error
}

// OpenSnapshot pins one consistent view of a source for a whole job. Kinds
// without shared snapshots answer with an empty id.
func (s *Service) OpenSnapshot(ctx context.Context, req *extractorv1.OpenSnapshotRequest) (*extractorv1.OpenSnapshotResponse, error) {
	k, err := kindOf(req.GetSource())
	if err != nil {
		return nil, toStatus(err)
	}
	// A table that will follow a PostgreSQL slot loads from the slot's own
	// snapshot: the changes read later start exactly where it ends.
	if req.GetSync().GetLogical() != nil && req.GetSource().GetPostgres() != nil {
		id, _, err := s.openLogicalSnapshot(ctx, req.GetSource(), req.GetSync(), req.GetJobId(), req.GetTable())
		if err != nil {
			return nil, toStatus(err)
		}
		return &extractorv1.OpenSnapshotResponse{Snapshot: id}, nil
	}
	sk, ok := k.(snapshotKind)
	if !ok {
		return &extractorv1.OpenSnapshotResponse{}, nil
	}
	id, err := sk.openSnapshot(ctx, s, req.GetSource())
	if err != nil {
		return nil, toStatus(err)
	}
	return &extractorv1.OpenSnapshotResponse{Snapshot: id}, nil
}

// CloseSnapshot releases a snapshot this replica holds; an unknown (for
// example already closed) snapshot is not an error.
func (s *Service) CloseSnapshot(ctx context.Context, req *extractorv1.CloseSnapshotRequest) (*extractorv1.CloseSnapshotResponse, error) {
	k, err := kindOf(req.GetSource())
	if err != nil {
		return nil, toStatus(err)
	}
	if req.GetSnapshot() == "" {
		return &extractorv1.CloseSnapshotResponse{}, nil
	}
	sk, ok := k.(snapshotKind)
	if !ok {
		return nil, toStatus(invalid("snapshot", "this source kind has no snapshots, so it must be empty"))
	}
	if err := sk.checkSnapshot(req.GetSnapshot()); err != nil {
		return nil, toStatus(err)
	}
	if err := sk.closeSnapshot(ctx, s, req.GetSource(), req.GetSnapshot()); err != nil {
		return nil, toStatus(err)
	}
	return &extractorv1.CloseSnapshotResponse{}, nil
}

type snapshotKey struct{}

// withSnapshot carries a request's snapshot id to the kind, which keeps
// sourceKind's signatures the same for kinds that have none.
func withSnapshot(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, snapshotKey{}, id)
}

// snapshotFrom is the snapshot id of the request, "" for none.
func snapshotFrom(ctx context.Context) string {
	id, _ := ctx.Value(snapshotKey{}).(string)
	return id
}

// snapshotContext validates a request's snapshot for its kind and puts it
// into ctx.
func snapshotContext(ctx context.Context, k sourceKind, id string) (context.Context, error) {
	if id == "" {
		return ctx, nil
	}
	sk, ok := k.(snapshotKind)
	if !ok {
		return ctx, invalid("snapshot", "this source kind has no snapshots, so it must be empty")
	}
	if err := sk.checkSnapshot(id); err != nil {
		return ctx, err
	}
	return withSnapshot(ctx, id), nil
}

// pool returns the cached pool for a DSN, creating it on first use.
func (s *Service) pool(dsnStr string) (*pgPool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("%w: extractor is shutting down", ErrUnavailable)
	}
	if p, ok := s.pools[dsnStr]; ok {
		return p, nil
	}
	cfg, err := pgxpool.ParseConfig(dsnStr)
	if err != nil {
		// pgx redacts the password in its parse errors; keep only our text.
		return nil, invalid("source.postgres.dsn", "cannot parse the connection string")
	}
	// Before any connection: the pool dials lazily, the check may not.
	if err := s.hosts.checkPG(&cfg.ConnConfig.Config); err != nil {
		return nil, err
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "cutover-extractor"
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		// As for MySQL: an address that never answers fails like one that
		// refuses, not after the kernel's minutes.
		cfg.ConnConfig.ConnectTimeout = 10 * time.Second
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, invalid("source.postgres.dsn", "%s", scrub(err.Error(), cfg.ConnConfig.Password))
	}
	p := &pgPool{pool: pool, password: cfg.ConnConfig.Password, dsn: dsnStr}
	s.pools[dsnStr] = p
	return p, nil
}

// onlyRefs keeps the rows of a re-drive: those whose source reference is
// listed. It reads on past batches with none of them, so that a batch comes
// back empty only when the range is done (an empty batch ends a
// partition); the cursor stays the raw read's, so retries are exact.
func onlyRefs(ctx context.Context, s *Service, k sourceKind, req *extractorv1.ReadBatchRequest, lim readLimits, refs []string,
	b *commonv1.Batch, done bool) (*commonv1.Batch, bool, error) {
	want := make(map[string]struct{}, len(refs))
	for _, r := range refs {
		want[r] = struct{}{}
	}
	for {
		var keep []int
		for i := 0; i < int(b.GetNumRows()); i++ {
			if _, ok := want[batch.SourceRef(b, i)]; ok {
				keep = append(keep, i)
			}
		}
		if len(keep) > 0 || done || b.GetNumRows() == 0 {
			out := batch.Select(b, keep)
			return out, done, nil
		}
		next, nextDone, err := k.read(ctx, s, req.GetSource(), req.GetRange(), b.GetLastKey(), lim)
		if err != nil {
			return nil, false, err
		}
		b, done = next, nextDone
	}
}
