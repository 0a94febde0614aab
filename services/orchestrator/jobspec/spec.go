// Package jobspec checks and completes a job spec on its own: defaults,
// limits, the target tables it creates, the order staged tables finalize
// in, the tables that follow their sources. Nothing here calls a service.
package jobspec

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"github.com/cutover/cutover/services/kit/dsn"
	"github.com/cutover/cutover/services/orchestrator/secrets"
	"google.golang.org/protobuf/proto"
)

// Limits on a spec; beyond them a request is refused rather than trusted.
const (
	defaultBatchSize = 10000
	maxBatchSize     = 200000
	// Bytes per batch: the extractor's default and bound (the bound keeps
	// a batch under the 64 MiB gRPC message limit).
	defaultBatchBytes  = 8 << 20
	maxBatchBytes      = 48 << 20
	defaultParallelism = 2
	maxParallelism     = 64
	maxPartitions      = 1024
)

// Invalid builds an ErrInvalidSpec error whose message starts with the field.
func Invalid(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidSpec, field, fmt.Sprintf(format, args...))
}

// Normalize clones a spec, fills the job-wide defaults and checks the
// job-wide limits (Guard first).
func Normalize(in *commonv1.JobSpec, defaultTarget string) (*commonv1.JobSpec, error) {
	if in == nil {
		return nil, Invalid("spec", "required")
	}
	if err := Guard(in, defaultTarget); err != nil {
		return nil, err
	}
	spec := proto.Clone(in).(*commonv1.JobSpec)
	if spec.BatchSize == 0 {
		spec.BatchSize = defaultBatchSize
	}
	if spec.BatchSize < 0 || spec.BatchSize > maxBatchSize {
		return nil, Invalid("batch_size", "must be between 1 and %d, got %d", maxBatchSize, spec.BatchSize)
	}
	if spec.BatchBytes == 0 {
		spec.BatchBytes = defaultBatchBytes
	}
	if spec.BatchBytes < 1<<10 || spec.BatchBytes > maxBatchBytes {
		return nil, Invalid("batch_bytes", "must be between 1024 and %d, got %d", maxBatchBytes, spec.BatchBytes)
	}
	if spec.Parallelism == 0 {
		spec.Parallelism = defaultParallelism
	}
	if spec.Parallelism < 0 || spec.Parallelism > maxParallelism {
		return nil, Invalid("parallelism", "must be between 1 and %d, got %d", maxParallelism, spec.Parallelism)
	}
	if spec.Target == nil {
		spec.Target = &commonv1.TargetSpec{}
	}
	if spec.Target.Schema == "" {
		spec.Target.Schema = "public"
	}
	if spec.Target.Dsn == "" && defaultTarget == "" {
		return nil, Invalid("target.dsn", "required: this orchestrator has no default target")
	}
	if len(spec.Tables) == 0 {
		return nil, Invalid("tables", "at least one table is required")
	}
	if err := checkTimeZone("time_zone", spec.TimeZone); err != nil {
		return nil, err
	}
	if err := applyIfExists(spec); err != nil {
		return nil, err
	}
	if err := checkTargetOptions(spec); err != nil {
		return nil, err
	}
	if err := applyIdentifierCase(spec); err != nil {
		return nil, err
	}
	return spec, nil
}

// TableDefaults fills a table spec's defaults and checks what needs no
// service to check.
func TableDefaults(f string, t *commonv1.TableSpec, seen map[string]bool) error {
	if t.Name == "" {
		t.Name = t.TargetTable
	}
	if t.Name == "" {
		return Invalid(f+".name", "required")
	}
	if seen[t.Name] {
		return Invalid(f+".name", "duplicate table name %q", t.Name)
	}
	seen[t.Name] = true
	if t.TargetTable == "" {
		return Invalid(f+".target_table", "required")
	}
	if t.Partitions == 0 {
		t.Partitions = 1
	}
	if t.System == "" {
		t.System = t.Name
	}
	for k, fl := range t.Filters {
		if strings.TrimSpace(fl.GetWhen()) == "" {
			return Invalid(fmt.Sprintf("%s.filters[%d].when", f, k), "required: a CEL condition over the source row")
		}
	}
	if t.Partitions < 0 || t.Partitions > maxPartitions {
		return Invalid(f+".partitions", "must be between 1 and %d, got %d", maxPartitions, t.Partitions)
	}
	if err := checkTimeZone(f+".time_zone", t.TimeZone); err != nil {
		return err
	}
	return checkSource(f+".source", t.Source)
}

// checkSource catches an empty source before asking the extractor, which
// checks the rest against the live source.
func checkSource(f string, src *commonv1.SourceSpec) error {
	switch k := src.GetKind().(type) {
	case *commonv1.SourceSpec_Csv:
		return Required(f+".csv.path", k.Csv.GetPath())
	case *commonv1.SourceSpec_Jsonl:
		return Required(f+".jsonl.path", k.Jsonl.GetPath())
	case *commonv1.SourceSpec_Xlsx:
		return Required(f+".xlsx.path", k.Xlsx.GetPath())
	case *commonv1.SourceSpec_Sqlite:
		if err := Required(f+".sqlite.path", k.Sqlite.GetPath()); err != nil {
			return err
		}
		return Required(f+".sqlite.table", k.Sqlite.GetTable())
	case *commonv1.SourceSpec_Postgres:
		if err := Required(f+".postgres.dsn", k.Postgres.GetDsn()); err != nil {
			return err
		}
		return Required(f+".postgres.table", k.Postgres.GetTable())
	case *commonv1.SourceSpec_Mysql:
		if err := Required(f+".mysql.dsn", k.Mysql.GetDsn()); err != nil {
			return err
		}
		return Required(f+".mysql.table", k.Mysql.GetTable())
	}
	return Invalid(f, "one of csv, jsonl, xlsx, sqlite, postgres or mysql is required")
}

func Required(field, v string) error {
	if v == "" {
		return Invalid(field, "required")
	}
	return nil
}

// FillTargetTypes takes each mapped column's type and limits from the target
// table, so casts and NOT NULL checks happen before COPY could fail a batch.
func FillTargetTypes(f string, t *commonv1.TableSpec, cols []*loaderv1.TargetColumn, schema string) error {
	byName := make(map[string]*loaderv1.TargetColumn, len(cols))
	names := make([]string, 0, len(cols))
	for _, c := range cols {
		byName[c.Name] = c
		names = append(names, c.Name)
	}
	mapped := map[string]bool{}
	for j, m := range t.Columns {
		tc, ok := byName[m.Target]
		if !ok {
			return Invalid(fmt.Sprintf("%s.columns[%d].target", f, j), "unknown column %q in target table %s.%s (it has: %s)",
				m.Target, schema, t.TargetTable, strings.Join(names, ", "))
		}
		mapped[m.Target] = true
		if m.Type == commonv1.ColumnType_COLUMN_TYPE_UNSPECIFIED {
			m.Type = tc.Type
		}
		m.NotNull = tc.NotNull
		m.MaxLength = tc.MaxLength
		m.Precision = tc.Precision
		m.Scale = tc.Scale
		m.PgType = tc.PgType
	}
	for _, c := range cols {
		if c.NotNull && !c.HasDefault && !mapped[c.Name] {
			return fmt.Errorf("%w: %s.columns: target column %q of %s.%s is NOT NULL without a default and nothing maps to it",
				ErrTargetMismatch, f, c.Name, schema, t.TargetTable)
		}
	}
	return nil
}

// Redacted returns a copy of spec safe to show: no DSN passwords. Every
// credential field is found by name (package secrets), so a source kind
// added later is redacted too; a DSN keeps its shape, a bare password or
// token is masked whole.
func Redacted(spec *commonv1.JobSpec) *commonv1.JobSpec {
	c := proto.Clone(spec).(*commonv1.JobSpec)
	_ = secrets.Rewrite(c, func(_ string, k secrets.Kind, v string) (string, error) {
		if k == secrets.ConnString {
			return dsn.Redact(v), nil
		}
		return redactedMask, nil
	})
	return c
}

// redactedMask stands for a secret shown nowhere (as dsn.Redact's mask).
const redactedMask = "xxxxx"

// SourceName describes a table's source for reports, without secrets.
func SourceName(t *commonv1.TableSpec) string {
	src := t.GetSource()
	switch k := src.GetKind().(type) {
	case *commonv1.SourceSpec_Csv:
		return "csv " + filepath.Base(k.Csv.GetPath())
	case *commonv1.SourceSpec_Jsonl:
		return "jsonl " + filepath.Base(k.Jsonl.GetPath())
	case *commonv1.SourceSpec_Xlsx:
		return "xlsx " + filepath.Base(k.Xlsx.GetPath())
	case *commonv1.SourceSpec_Sqlite:
		return "sqlite " + filepath.Base(k.Sqlite.GetPath()) + ":" + k.Sqlite.GetTable()
	case *commonv1.SourceSpec_Postgres:
		schema := k.Postgres.GetSchema()
		if schema == "" {
			schema = "public"
		}
		return "postgres " + schema + "." + k.Postgres.GetTable()
	case *commonv1.SourceSpec_Mysql:
		if db := k.Mysql.GetDatabase(); db != "" {
			return "mysql " + db + "." + k.Mysql.GetTable()
		}
		return "mysql " + k.Mysql.GetTable()
	}
	return "?"
}

// tableField finds the first spec path into a table ("tables[2].columns[1].expr").
var TableField = regexp.MustCompile(`tables\[(\d+)\](?:\.[a-z_]+(?:\[\d+\])?)*`)

// namedErr is an error whose text also names the table by its name.
type namedErr struct {
	msg string
	err error
}

func (e *namedErr) Error() string { return e.msg }

func (e *namedErr) Unwrap() error { return e.err }

// NamingTable adds the table's name after each spec path that points into
// a table, so "tables[2].columns[1].expr: …" reads
// "tables[2].columns[1].expr (table "orders_b"): …" (an error listing
// several problems names the table of each).
func NamingTable(spec *commonv1.JobSpec, err error) error {
	msg := err.Error()
	var b strings.Builder
	last := 0
	for _, m := range TableField.FindAllStringSubmatchIndex(msg, -1) {
		i, convErr := strconv.Atoi(msg[m[2]:m[3]])
		if convErr != nil || i >= len(spec.GetTables()) || strings.HasPrefix(msg[m[1]:], " (table ") {
			continue
		}
		name := spec.GetTables()[i].GetName()
		if name == "" {
			name = spec.GetTables()[i].GetTargetTable()
		}
		if name == "" {
			continue
		}
		if len(name) > MaxNameBytes { // the error is about its length: quote a start
			name = batch.CutUTF8(name, MaxNameBytes) + "…"
		}
		b.WriteString(msg[last:m[1]])
		fmt.Fprintf(&b, " (table %q)", name)
		last = m[1]
	}
	if last == 0 {
		return err
	}
	b.WriteString(msg[last:])
	return &namedErr{msg: b.String(), err: err}
}

// Hash is the mapping version: SHA-256 of the submitted spec in
// deterministic protobuf encoding, credentials masked first so that a
// changed password is not a new mapping.
func Hash(spec *commonv1.JobSpec) string {
	if spec == nil {
		return ""
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(Redacted(spec))
	if err != nil {
		return ""
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
