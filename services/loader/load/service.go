// Package load implements cutover.loader.v1.LoaderService, the only writer to
// the target PostgreSQL database. Each batch is one transaction holding the
// rows (COPY), the quarantined rows and the ledger row, so a batch is in the
// target exactly once however often it is retried.
package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	"github.com/cutover/cutover/services/kit/dsn"
	"github.com/cutover/cutover/services/kit/migrate"
	"github.com/cutover/cutover/services/kit/server"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"
)

// Service serves LoaderService. It keeps one connection pool per target DSN,
// created on first use.
type Service struct {
	loaderv1.UnimplementedLoaderServiceServer

	mu      sync.Mutex
	targets map[string]*target
	closed  bool
	up      server.Upstreams // validators it pulls partitions from

	// textOnly turns binary COPY off (tests compare both paths with it);
	// the counters say which format the loaded batches went in.
	textOnly                   atomic.Bool
	binaryBatches, textBatches atomic.Int64
}

// New returns a loader with no open connections.
func New() *Service {
	return &Service{targets: map[string]*target{}}
}

// Register adds the loader's handlers to g.
func (s *Service) Register(g *grpc.Server) {
	loaderv1.RegisterLoaderServiceServer(g, s)
}

// Close closes every pool.
func (s *Service) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	_ = s.up.Close()
	for k, t := range s.targets {
		t.pool.Close()
		delete(s.targets, k)
	}
	return nil
}

// defaultMaxConns bounds each target pool unless the DSN sets pool_max_conns.
const defaultMaxConns = 16

// target is one target database: its pool and what error messages may say
// about it.
type target struct {
	pool     *pgxpool.Pool
	redacted string // DSN with the password masked
	secret   string // password, scrubbed from any error text

	// reservedPath is a reserved schema the DSN's search_path names, ""
	// when none: such a target is refused (reserved.go).
	reservedPath string

	mu    sync.Mutex
	ready bool // bookkeeping tables exist
}

// target returns the pool of spec's DSN, creating the bookkeeping tables on
// first use, and the schema to load into.
// A schema that is cutover's own or PostgreSQL's is refused (reserved.go)
// before anything is written, as is a DSN whose search_path names one.
func (s *Service) target(ctx context.Context, spec *commonv1.TargetSpec) (*target, string, error) {
	d := spec.GetDsn()
	if d == "" {
		return nil, "", fmt.Errorf("%w: target.dsn is required", ErrInvalidArgument)
	}
	schema := spec.GetSchema()
	if schema == "" {
		schema = "public"
	}
	if err := checkSchema("target.schema", schema); err != nil {
		return nil, "", err
	}
	t, err := s.pool(d)
	if err != nil {
		return nil, "", err
	}
	if t.reservedPath != "" {
		return nil, "", fmt.Errorf("%w: target.dsn: its search_path names schema %q, which is reserved for %s",
			ErrInvalidArgument, t.reservedPath, reservedSchema(t.reservedPath))
	}
	if err := t.ensure(ctx); err != nil {
		return nil, "", err
	}
	return t, schema, nil
}

// bookkeeping returns the pool of spec's DSN for work on the bookkeeping
// tables alone (PurgeJob), whatever the job's schema was.
func (s *Service) bookkeeping(ctx context.Context, spec *commonv1.TargetSpec) (*target, error) {
	if spec.GetDsn() == "" {
		return nil, fmt.Errorf("%w: target.dsn is required", ErrInvalidArgument)
	}
	t, err := s.pool(spec.GetDsn())
	if err != nil {
		return nil, err
	}
	return t, t.ensure(ctx)
}

func (s *Service) pool(d string) (*target, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if t, ok := s.targets[d]; ok {
		return t, nil
	}
	cfg, err := pgxpool.ParseConfig(d)
	if err != nil {
		// The parse error may quote the DSN; say only which one, redacted.
		return nil, fmt.Errorf("%w: target.dsn %s cannot be parsed", ErrInvalidArgument, dsn.Redact(d))
	}
	if !strings.Contains(d, "pool_max_conns") {
		// pgxpool's default (max(4, NumCPU)) would queue the parallel
		// partition streams of one job behind each other.
		cfg.MaxConns = defaultMaxConns
	}
	// NewWithConfig does not connect; an unreachable target shows on use.
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: target %s: pool: %s", ErrInvalidArgument, dsn.Redact(d), scrub(err.Error(), cfg.ConnConfig.Password))
	}
	t := &target{pool: p, redacted: dsn.Redact(d), secret: cfg.ConnConfig.Password, reservedPath: reservedSearchPath(cfg.ConnConfig.RuntimeParams)}
	s.targets[d] = t
	return t, nil
}

// bookkeepingDDL creates the ledger, quarantine and warnings tables, once
// per version under an advisory lock (kit/migrate): loaders starting on a
// fresh database at the same moment would collide on the catalog, and one
// starting beside a busy one would wait on its locks.
const bookkeepingDDL = `CREATE SCHEMA IF NOT EXISTS cutover;
CREATE TABLE IF NOT EXISTS cutover.ledger (
	job_id text NOT NULL,
	partition_id text NOT NULL,
	seq bigint NOT NULL,
	table_name text NOT NULL,
	target_table text NOT NULL,
	last_key text NOT NULL,
	extracted bigint NOT NULL,
	loaded bigint NOT NULL,
	quarantined bigint NOT NULL,
	committed_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (job_id, partition_id, seq)
);
CREATE TABLE IF NOT EXISTS cutover.quarantine (
	id bigserial PRIMARY KEY,
	job_id text NOT NULL,
	table_name text NOT NULL,
	target_table text NOT NULL,
	partition_id text NOT NULL,
	seq bigint NOT NULL,
	row_index int NOT NULL,
	source text NOT NULL,
	source_ref text NOT NULL,
	stage text NOT NULL,
	rule text NOT NULL,
	column_name text NOT NULL,
	reason text NOT NULL,
	raw text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS quarantine_job_table_rule_idx ON cutover.quarantine (job_id, table_name, rule);
ALTER TABLE cutover.ledger ADD COLUMN IF NOT EXISTS filtered bigint NOT NULL DEFAULT 0;
ALTER TABLE cutover.quarantine ADD COLUMN IF NOT EXISTS system text NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS quarantine_job_ref_idx ON cutover.quarantine (job_id, source_ref);
-- The re-drive job that loaded the row later ('' while unresolved).
ALTER TABLE cutover.quarantine ADD COLUMN IF NOT EXISTS resolved_by text NOT NULL DEFAULT '';
CREATE TABLE IF NOT EXISTS cutover.filtered (
	id bigserial PRIMARY KEY,
	job_id text NOT NULL,
	table_name text NOT NULL,
	target_table text NOT NULL,
	system text NOT NULL,
	partition_id text NOT NULL,
	seq bigint NOT NULL,
	row_index int NOT NULL,
	source text NOT NULL,
	source_ref text NOT NULL,
	reason text NOT NULL
);
CREATE INDEX IF NOT EXISTS filtered_job_ref_idx ON cutover.filtered (job_id, source_ref);
-- One row per batch: entries holds a line "ref<TAB>key" per loaded row
-- (source reference, target primary key, '' without one; '%', tab and
-- newline %-escaped). One text value, stored uncompressed, costs a fraction
-- of two arrays or an index per row (make bench); a lineage question scans
-- the job's batches.
DO $$ BEGIN
	IF to_regclass('cutover.lineage') IS NULL THEN
		CREATE TABLE cutover.lineage (
			job_id text NOT NULL,
			table_name text NOT NULL,
			target_table text NOT NULL,
			system text NOT NULL,
			source text NOT NULL,
			partition_id text NOT NULL,
			seq bigint NOT NULL,
			entries text NOT NULL,
			PRIMARY KEY (job_id, table_name, partition_id, seq)
		);
		ALTER TABLE cutover.lineage ALTER COLUMN entries SET STORAGE EXTERNAL;
	END IF;
END $$;
-- Rows merged into a survivor by dedupe.
CREATE TABLE IF NOT EXISTS cutover.merges (
	job_id text NOT NULL,
	target_table text NOT NULL,
	table_name text NOT NULL,
	system text NOT NULL,
	source text NOT NULL,
	source_ref text NOT NULL,
	winner_table text NOT NULL,
	winner_system text NOT NULL,
	winner_ref text NOT NULL,
	winner_key text NOT NULL,
	match_key text NOT NULL
);
CREATE INDEX IF NOT EXISTS merges_job_ref_idx ON cutover.merges (job_id, system, source_ref);
-- Old identifiers of each source system's records and their new ones.
CREATE TABLE IF NOT EXISTS cutover.id_map (
	system text NOT NULL,
	entity text NOT NULL,
	old_id text NOT NULL,
	new_id text NOT NULL,
	job_id text NOT NULL,
	PRIMARY KEY (system, entity, old_id)
);
-- Finalized staged tables and what finalizing did (FinalizeStagedResponse).
CREATE TABLE IF NOT EXISTS cutover.finalized (
	job_id text NOT NULL,
	target_table text NOT NULL,
	outcome jsonb NOT NULL,
	finalized_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (job_id, target_table)
);
CREATE SCHEMA IF NOT EXISTS cutover_stage;
-- Rows loaded although they break a rule of severity warn, one row per
-- warning; a row the target refuses after all is quarantined instead.
CREATE TABLE IF NOT EXISTS cutover.warnings (
	id bigserial PRIMARY KEY,
	job_id text NOT NULL,
	table_name text NOT NULL,
	target_table text NOT NULL,
	system text NOT NULL,
	partition_id text NOT NULL,
	seq bigint NOT NULL,
	row_index int NOT NULL,
	source text NOT NULL,
	source_ref text NOT NULL,
	rule text NOT NULL,
	column_name text NOT NULL,
	reason text NOT NULL,
	raw text NOT NULL
);
CREATE INDEX IF NOT EXISTS warnings_job_table_rule_idx ON cutover.warnings (job_id, table_name, rule);
ALTER TABLE cutover.ledger ADD COLUMN IF NOT EXISTS warned bigint NOT NULL DEFAULT 0;
-- Change batches (sync after the full load): the source position after the
-- batch (NULL for other batches) and how many of its loaded rows were deletes.
ALTER TABLE cutover.ledger ADD COLUMN IF NOT EXISTS position text;
ALTER TABLE cutover.ledger ADD COLUMN IF NOT EXISTS deletes bigint NOT NULL DEFAULT 0;
-- Upsert: each target row as it was before a job first changed it; row is
-- NULL when the job inserted the key (first image wins). key is rendered
-- like the lineage's ("id=5").
CREATE TABLE IF NOT EXISTS cutover.before_images (
	job_id text NOT NULL,
	target_table text NOT NULL,
	key text NOT NULL,
	row jsonb,
	PRIMARY KEY (job_id, target_table, key)
);
-- Staged target tables a job upserts into (FinalizeStaged reads it).
CREATE TABLE IF NOT EXISTS cutover.upserts (
	job_id text NOT NULL,
	target_table text NOT NULL,
	PRIMARY KEY (job_id, target_table)
);
-- Full copies of target tables taken before a job (target.backup).
CREATE SCHEMA IF NOT EXISTS cutover_backup;
CREATE TABLE IF NOT EXISTS cutover.backups (
	job_id text NOT NULL,
	target_table text NOT NULL,
	backup_table text NOT NULL,
	rows bigint NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (job_id, target_table)
);
-- target.if_exists truncate: the table was emptied after its copy.
ALTER TABLE cutover.backups ADD COLUMN IF NOT EXISTS truncated boolean NOT NULL DEFAULT false;
-- Rolled back jobs and what the rollback did (RollbackResponse).
CREATE TABLE IF NOT EXISTS cutover.rollbacks (
	job_id text PRIMARY KEY,
	rolled_back_at timestamptz NOT NULL DEFAULT now(),
	outcome jsonb NOT NULL
);
-- Fencing (fence.go): the highest lease epoch seen per partition
-- (LoadConfig.epoch); a stream or batch of a lower one is refused. refused
-- counts the refusals, refused_epoch is the epoch last refused.
CREATE TABLE IF NOT EXISTS cutover.fences (
	job_id text NOT NULL,
	partition_id text NOT NULL,
	epoch bigint NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now(),
	refused bigint NOT NULL DEFAULT 0,
	refused_epoch bigint NOT NULL DEFAULT 0,
	refused_at timestamptz,
	PRIMARY KEY (job_id, partition_id)
);
-- The lease epoch the batch was committed under (0: not fenced).
ALTER TABLE cutover.ledger ADD COLUMN IF NOT EXISTS epoch bigint NOT NULL DEFAULT 0;
-- Jobs whose bookkeeping PurgeJob removed: they write nothing more.
CREATE TABLE IF NOT EXISTS cutover.purged (
	job_id text PRIMARY KEY,
	purged_at timestamptz NOT NULL DEFAULT now()
);`

func (t *target) ensure(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ready {
		return nil
	}
	if err := migrate.Apply(ctx, t.pool, 7306247001, "cutover", "bookkeeping", bookkeepingDDL); err != nil {
		return t.dbErr("create bookkeeping tables", err)
	}
	t.ready = true
	return nil
}

// dbErr classifies a database error into a domain error. The message names
// the target by its redacted DSN and never carries the password.
func (t *target) dbErr(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", op, ctxErr(err))
	}
	msg := scrub(err.Error(), t.secret)
	var connErr *pgconn.ConnectError
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &connErr):
		return fmt.Errorf("%w: %s: cannot connect to %s: %s", ErrUnavailable, op, t.redacted, msg)
	case errors.As(err, &pgErr):
		switch class := pgErr.Code[:min(2, len(pgErr.Code))]; {
		case pgErr.Code == "42P01" || pgErr.Code == "3F000" || pgErr.Code == "3D000":
			return fmt.Errorf("%w: %s: %s", ErrNotFound, op, msg)
		case class == "42":
			return fmt.Errorf("%w: %s: %s", ErrTargetMismatch, op, msg)
		case class == "08" || class == "53" || class == "57" || class == "40":
			// connection, resources, shutdown, serialization: retryable
			return fmt.Errorf("%w: %s: %s: %s", ErrUnavailable, op, t.redacted, msg)
		}
		return fmt.Errorf("%s: %s", op, msg)
	}
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, pgconn.ErrConnClosed) || pgconn.SafeToRetry(err) || pgconn.Timeout(err) {
		return fmt.Errorf("%w: %s: %s: %s", ErrUnavailable, op, t.redacted, msg)
	}
	return fmt.Errorf("%s: %s", op, msg)
}

// ctxErr returns the context error err wraps, so status.go can map it.
func ctxErr(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return context.DeadlineExceeded
	}
	return context.Canceled
}

// scrub masks a password should any error text ever quote it.
func scrub(s, secret string) string { return dsn.RedactSecret(s, secret) }

// UseDialOptions takes the process's credentials for calls upstream.
func (s *Service) UseDialOptions(opts ...grpc.DialOption) { s.up.Options = opts }
