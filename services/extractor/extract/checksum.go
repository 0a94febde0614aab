package extract

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	"github.com/cutover/cutover/services/kit/checksum"
	"github.com/cutover/cutover/services/kit/stage"
	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"
	"modernc.org/sqlite"
)

// ChecksumSource: the source side of the independent reconciliation. The
// source database renders, hashes and totals its own rows with the SQL of
// kit/checksum; nothing here reads a row through the pipeline's decoders.

// maxExcluded bounds the references a request may leave out.
const maxExcluded = 1_000_000

const defaultMaxRows = 100_000

func init() {
	// SQLite has no md5 and no hex parsing: the same functions in Go.
	sqlite.MustRegisterDeterministicScalarFunction("cutover_md5", 1, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		switch v := args[0].(type) {
		case nil:
			return nil, nil
		case string:
			return checksum.MD5Hex(v), nil
		case []byte:
			return checksum.MD5Hex(string(v)), nil
		default:
			return checksum.MD5Hex(fmt.Sprint(v)), nil
		}
	})
	sqlite.MustRegisterDeterministicScalarFunction("cutover_hex32", 1, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		s, _ := args[0].(string)
		return checksum.Hex32(s), nil
	})
	// A digest's hash sum wraps at 2^64; SQLite's sum() would fail there.
	if err := sqlite.RegisterFunction("cutover_hsum", &sqlite.FunctionImpl{NArgs: 1, Deterministic: true,
		MakeAggregate: func(sqlite.FunctionContext) (sqlite.AggregateFunction, error) { return &hashSum{}, nil }}); err != nil {
		panic(err)
	}
}

// hashSum is cutover_hsum: the sum modulo 2^64 of rows' 60-bit hashes, as
// decimal text (as MySQL and PostgreSQL give it).
type hashSum struct{ v uint64 }

func (h *hashSum) Step(_ *sqlite.FunctionContext, args []driver.Value) error {
	if s, ok := args[0].(string); ok {
		h.v += checksum.Hash60(s)
	}
	return nil
}

func (h *hashSum) WindowInverse(_ *sqlite.FunctionContext, args []driver.Value) error {
	if s, ok := args[0].(string); ok {
		h.v -= checksum.Hash60(s)
	}
	return nil
}

func (h *hashSum) WindowValue(*sqlite.FunctionContext) (driver.Value, error) {
	return strconv.FormatUint(h.v, 10), nil
}

func (h *hashSum) Final(*sqlite.FunctionContext) {}

// csTable is a source table opened for checksums.
type csTable struct {
	dialect checksum.Dialect
	ident   string
	classes map[string]checksum.Class
	names   []string
	// refKeys rebuild the extractor's source references in SQL; nil when
	// they cannot be (a keyless MySQL table's references are positions).
	refKeys   []checksum.RefKey
	zeroDates bool
	// utf8 names the text columns already in UTF-8 (MySQL).
	utf8 map[string]bool
	// notNull and noFraction name the columns declared NOT NULL and
	// those whose type keeps no fraction (checksum.Column), where known.
	notNull, noFraction map[string]bool
	query               func(ctx context.Context, q string, args []any, each func([]sql.NullString) error) error
	close               func()
	// parallel: the source takes several queries at once (not SQLite's
	// one connection).
	parallel bool
	// zoneErr says why zone-less values cannot be read in zone here.
	zoneErr func(ctx context.Context, zone string) error
}

// checksummer is a source kind with a database to compute in.
type checksummer interface {
	openChecksum(ctx context.Context, s *Service, src *commonv1.SourceSpec) (*csTable, error)
}

// ChecksumSource implements ExtractorService.ChecksumSource.
func (s *Service) ChecksumSource(ctx context.Context, req *extractorv1.ChecksumSourceRequest) (*extractorv1.ChecksumSourceResponse, error) {
	resp, err := s.checksumSource(ctx, req)
	if errors.Is(err, errNoDatabase) {
		return nil, stage.ReasonStatus(codes.FailedPrecondition, err.Error(), stage.NoDatabaseReason, stage.NoDatabaseDomain, nil)
	}
	return resp, toStatus(err)
}

// errNoDatabase: the source is a file; the caller compares it otherwise.
var errNoDatabase = errors.New("no database")

func (s *Service) checksumSource(ctx context.Context, req *extractorv1.ChecksumSourceRequest) (*extractorv1.ChecksumSourceResponse, error) {
	k, err := kindOf(req.GetSource())
	if err != nil {
		return nil, err
	}
	cs, ok := k.(checksummer)
	if !ok {
		return nil, fmt.Errorf("%w: source: a %s source has %w to compute checksums in", ErrPrecondition, kindNames[reflect.TypeOf(req.GetSource().GetKind())], errNoDatabase)
	}
	if req.GetAsk() == nil {
		return nil, invalid("ask", "required: plan, digest, rows or totals")
	}
	if n := len(req.GetExcludeRefs()); n > maxExcluded {
		return nil, invalid("exclude_refs", "%d references, at most %d", n, maxExcluded)
	}
	t, err := cs.openChecksum(ctx, s, req.GetSource())
	if err != nil {
		return nil, err
	}
	defer t.close()
	resp := &extractorv1.ChecksumSourceResponse{CanExclude: t.refKeys != nil, FractionDigits: int32(t.dialect.Frac())}
	tbl := checksum.Table{Ident: t.ident}
	if t.refKeys != nil {
		tbl.RefExpr, tbl.Exclude = t.dialect.RefExpr(t.refKeys), req.GetExcludeRefs()
	}
	cols := make([]checksum.Column, len(req.GetColumns()))
	// A column only summed needs no canonical text.
	canonErr := make([]error, len(cols))
	for i, c := range req.GetColumns() {
		f := fmt.Sprintf("columns[%d]", i)
		class, ok := t.classes[c.GetName()]
		if !ok {
			return nil, invalid(f+".name", "source table has no column %q (it has %v)", c.GetName(), t.names)
		}
		kind := checksum.KindFromProto(c.GetKind())
		if kind == checksum.KindNone {
			return nil, invalid(f+".kind", "required")
		}
		cols[i] = checksum.Column{Name: c.GetName(), Kind: kind, Class: class, Frac: t.dialect.Frac(), Zone: c.GetTimeZone(), ZeroDates: t.zeroDates, UTF8: t.utf8[c.GetName()],
			NotNull: t.notNull[c.GetName()], NoFraction: t.noFraction[c.GetName()]}
		val, err := t.dialect.Canon(cols[i])
		if err == nil && t.zoneErr != nil && kind == checksum.TimestampTZ && c.GetTimeZone() != "" && (class == checksum.ClassDateTime || class == checksum.ClassDate) {
			err = t.zoneErr(ctx, c.GetTimeZone())
		}
		_, exact, noSum := t.dialect.Sum(cols[i])
		if req.GetPlan() != nil {
			p := &extractorv1.ChecksumColumnPlan{ExactSum: exact}
			if err != nil {
				p.Unsupported = err.Error()
			}
			if noSum != nil {
				p.NoSum = noSum.Error()
			}
			resp.Columns = append(resp.Columns, p)
			continue
		}
		tbl.Canon = append(tbl.Canon, val)
		if err != nil {
			canonErr[i] = invalid(f, "column %s: %v", c.GetName(), err)
		}
	}
	if req.GetPlan() != nil {
		return resp, nil
	}
	for i, k := range req.GetKey() {
		if k < 0 || int(k) >= len(cols) {
			return nil, invalid(fmt.Sprintf("key[%d]", i), "position %d is not a column (0 to %d)", k, len(cols)-1)
		}
		tbl.Key = append(tbl.Key, int(k))
	}
	if len(tbl.Key) == 1 && cols[tbl.Key[0]].Kind == checksum.Integer {
		tbl.IntKey, tbl.KeyIdent = true, t.dialect.Ident(cols[tbl.Key[0]].Name)
	}
	if req.GetTotals() == nil {
		for _, err := range canonErr {
			if err != nil {
				return nil, err
			}
		}
	}
	switch a := req.GetAsk().(type) {
	case *extractorv1.ChecksumSourceRequest_Digest:
		d := a.Digest
		if d.GetBits() <= d.GetPrefixBits() || d.GetBits() > 24 {
			return nil, invalid("digest.bits", "must be above prefix_bits (%d) and at most 24, got %d", d.GetPrefixBits(), d.GetBits())
		}
		resp.Buckets, err = digest(ctx, t, tbl, d)
	case *extractorv1.ChecksumSourceRequest_Rows:
		limit := int(a.Rows.GetMaxRows())
		if limit <= 0 {
			limit = defaultMaxRows
		}
		q, args := t.dialect.Rows(tbl, int(a.Rows.GetPrefixBits()), a.Rows.GetPrefixes())
		err = t.query(ctx, q, args, func(v []sql.NullString) error {
			if len(resp.Rows) == limit {
				return fmt.Errorf("%w: rows: more than max_rows (%d) rows in the asked buckets", ErrPrecondition, limit)
			}
			r := &extractorv1.ChecksumRow{KeyHash: v[0].String, RowHash: v[1].String}
			for _, x := range v[2:] {
				r.Values = append(r.Values, &extractorv1.CanonValue{Text: x.String, Null: !x.Valid})
			}
			resp.Rows = append(resp.Rows, r)
			return nil
		})
	case *extractorv1.ChecksumSourceRequest_Totals:
		var groups []checksum.Group
		for i, g := range a.Totals.GetGroups() {
			if g.GetColumn() < 0 || int(g.GetColumn()) >= len(cols) {
				return nil, invalid(fmt.Sprintf("totals.groups[%d].column", i), "position %d is not a column", g.GetColumn())
			}
			if err := canonErr[g.GetColumn()]; err != nil {
				return nil, err
			}
			groups = append(groups, checksum.Group{Pos: int(g.GetColumn()), Prefix: int(g.GetPrefix())})
		}
		var sums []string
		for i, pos := range a.Totals.GetSums() {
			if pos < 0 || int(pos) >= len(cols) {
				return nil, invalid(fmt.Sprintf("totals.sums[%d]", i), "position %d is not a column", pos)
			}
			e, _, err := t.dialect.Sum(cols[pos])
			if err != nil {
				return nil, invalid(fmt.Sprintf("totals.sums[%d]", i), "column %s: %v", cols[pos].Name, err)
			}
			sums = append(sums, e)
		}
		q, args := t.dialect.Totals(tbl, groups, sums)
		err = t.query(ctx, q, args, func(v []sql.NullString) error {
			g := &extractorv1.GroupTotal{}
			for _, x := range v[:len(groups)] {
				g.Group = append(g.Group, &extractorv1.CanonValue{Text: x.String, Null: !x.Valid})
			}
			n, err := strconv.ParseInt(v[len(groups)].String, 10, 64)
			if err != nil {
				return fmt.Errorf("count %q is not an integer", v[len(groups)].String)
			}
			g.Rows = n
			for _, x := range v[len(groups)+1:] {
				g.Sums = append(g.Sums, x.String)
			}
			resp.Totals = append(resp.Totals, g)
			return nil
		})
	}
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// sqlQuery runs q on db and hands each row's columns, as text, to each.
func sqlQuery(ctx context.Context, db *sql.DB, q string, args []any, each func([]sql.NullString) error) error {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		if err := each(vals); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ---- per kind ----

func (mysqlKind) openChecksum(ctx context.Context, s *Service, src *commonv1.SourceSpec) (*csTable, error) {
	spec := src.GetMysql()
	d, db, name, err := s.mysqlTarget(spec)
	if err != nil {
		return nil, err
	}
	t, err := loadMySQLTable(ctx, d.db, db, name, false)
	if err != nil {
		return nil, mysqlErr(err, d, "describe")
	}
	cs := &csTable{dialect: checksum.MySQL, ident: t.ident(), classes: map[string]checksum.Class{}, utf8: map[string]bool{}, zeroDates: true, parallel: true, close: func() {},
		notNull: map[string]bool{}, noFraction: map[string]bool{}}
	for _, c := range t.cols {
		cs.names = append(cs.names, c.name)
		cs.classes[c.name] = myClass(c)
		cs.notNull[c.name] = !c.nullable
		switch c.kind {
		case myNumeric:
			cs.noFraction[c.name] = c.scale == 0
		case myDatetime, myTimestamp:
			cs.noFraction[c.name] = c.precision == 0
		}
		switch c.charset {
		case "utf8mb4", "utf8mb3", "utf8", "ascii":
			cs.utf8[c.name] = true
		}
	}
	if len(t.pk) > 0 {
		cs.refKeys = []checksum.RefKey{}
		for _, k := range t.pk {
			c := t.cols[k]
			cs.refKeys = append(cs.refKeys, checksum.RefKey{Name: c.name, Hex: c.kind == myBytes || c.kind == myBits || c.kind == myBit1})
		}
	}
	cs.query = func(ctx context.Context, q string, args []any, each func([]sql.NullString) error) error {
		if err := sqlQuery(ctx, d.db, q, args, each); err != nil {
			return mysqlErr(err, d, "checksum")
		}
		return nil
	}
	cs.zoneErr = func(ctx context.Context, zone string) error {
		var ok sql.NullBool
		if err := d.db.QueryRowContext(ctx, `SELECT CONVERT_TZ('2000-01-01 00:00:00', ?, '+00:00') IS NOT NULL`, zone).Scan(&ok); err != nil {
			return mysqlErr(err, d, "checksum")
		}
		if !ok.Bool {
			return fmt.Errorf("the server has no time zone tables to read zone-less times in %s (load them with mysql_tzinfo_to_sql)", zone)
		}
		return nil
	}
	return cs, nil
}

func myClass(c myCol) checksum.Class {
	switch c.kind {
	case myInt:
		return checksum.ClassInt
	case myBool, myBit1:
		return checksum.ClassBool
	case myNumeric:
		return checksum.ClassDecimal
	case myFloat32, myFloat64:
		return checksum.ClassFloat
	case myDate:
		return checksum.ClassDate
	case myDatetime:
		return checksum.ClassDateTime
	case myTimestamp:
		return checksum.ClassInstant
	case myText:
		return checksum.ClassText
	case myBytes:
		return checksum.ClassBytes
	}
	return checksum.ClassOther
}

func (pgKind) openChecksum(ctx context.Context, s *Service, src *commonv1.SourceSpec) (*csTable, error) {
	p, schema, name, err := s.pgTarget(src.GetPostgres())
	if err != nil {
		return nil, err
	}
	t, err := loadTable(ctx, p.pool, schema, name)
	if err != nil {
		return nil, pgErr(err, p, "describe")
	}
	cs := &csTable{dialect: checksum.Postgres, ident: t.ident(), classes: map[string]checksum.Class{}, parallel: true, close: func() {},
		notNull: map[string]bool{}, noFraction: map[string]bool{}}
	for _, c := range t.cols {
		cs.names = append(cs.names, c.name)
		cs.classes[c.name] = checksum.PostgresClass(c.base)
		cs.notNull[c.name] = !c.nullable
		// format_type spells numeric(p) as numeric(p,0).
		cs.noFraction[c.name] = c.base == "numeric" && strings.HasSuffix(c.sourceType, ",0)")
	}
	cs.refKeys = []checksum.RefKey{{Name: "ctid"}}
	if len(t.pk) > 0 {
		cs.refKeys = nil
		for _, k := range t.pk {
			cs.refKeys = append(cs.refKeys, checksum.RefKey{Name: t.cols[k].name})
		}
	}
	cs.query = func(ctx context.Context, q string, args []any, each func([]sql.NullString) error) error {
		tx, err := p.pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
		if err != nil {
			return pgErr(err, p, "checksum")
		}
		defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only: nothing to keep
		if _, err := tx.Exec(ctx, checksum.PostgresSettings); err != nil {
			return pgErr(err, p, "checksum")
		}
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return pgErr(err, p, "checksum")
		}
		defer rows.Close()
		var vals []sql.NullString
		for rows.Next() {
			raw := rows.RawValues()
			vals = vals[:0]
			for _, r := range raw {
				vals = append(vals, sql.NullString{String: string(r), Valid: r != nil})
			}
			if err := each(vals); err != nil {
				return err
			}
		}
		if err := rows.Err(); err != nil {
			return pgErr(err, p, "checksum")
		}
		return nil
	}
	return cs, nil
}

func (sqliteKind) openChecksum(ctx context.Context, s *Service, src *commonv1.SourceSpec) (*csTable, error) {
	spec := src.GetSqlite()
	db, err := openSQLite(s.files, spec)
	if err != nil {
		return nil, err
	}
	t, err := loadSQLiteTable(ctx, db, spec)
	if err != nil {
		db.Close()
		return nil, sqliteErr(err, spec.GetPath())
	}
	cs := &csTable{dialect: checksum.SQLite, ident: sqliteIdent(t.name), classes: map[string]checksum.Class{}, close: func() { db.Close() }}
	for _, c := range t.cols {
		cs.names = append(cs.names, c.name)
		cs.classes[c.name] = liteClass(c.class)
	}
	if key, err := t.key(); err == nil {
		parts := key.parts
		if len(parts) == 0 {
			parts = []sqliteKey{key}
		}
		cs.refKeys = []checksum.RefKey{}
		for _, p := range parts {
			cs.refKeys = append(cs.refKeys, checksum.RefKey{Name: strings.TrimSuffix(p.ref, "=")})
		}
	}
	cs.query = func(ctx context.Context, q string, args []any, each func([]sql.NullString) error) error {
		if err := sqlQuery(ctx, db, q, args, each); err != nil {
			return sqliteErr(err, spec.GetPath())
		}
		return nil
	}
	return cs, nil
}

func liteClass(c sqlClass) checksum.Class {
	switch c {
	case sqlInteger:
		return checksum.ClassInt
	case sqlReal:
		return checksum.ClassFloat
	case sqlText:
		return checksum.ClassText
	case sqlBlob:
		return checksum.ClassBytes
	case sqlNumeric:
		return checksum.ClassDecimal
	case sqlBool:
		return checksum.ClassBool
	case sqlDate:
		return checksum.ClassDate
	case sqlTimestamp:
		return checksum.ClassDateTime
	}
	return checksum.ClassOther
}

// digest runs a digest ask, split by key range where it can be, and adds
// the parts' buckets.
func digest(ctx context.Context, t *csTable, tbl checksum.Table, d *extractorv1.ChecksumDigest) ([]*extractorv1.BucketDigest, error) {
	parts := []*checksum.Range{nil}
	if tbl.IntKey && t.parallel {
		err := t.query(ctx, t.dialect.Bounds(tbl), nil, func(v []sql.NullString) error {
			parts = checksum.Parts(v[0].String, v[1].String)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	type bucketSum struct {
		rows int64
		sum  uint64
	}
	var mu sync.Mutex
	sums := map[int64]*bucketSum{}
	g, gctx := errgroup.WithContext(ctx)
	for _, r := range parts {
		part := tbl
		part.Range = r
		g.Go(func() error {
			q, args := t.dialect.Digest(part, int(d.GetPrefixBits()), d.GetPrefixes(), int(d.GetBits()))
			return t.query(gctx, q, args, func(v []sql.NullString) error {
				bucket, err1 := strconv.ParseInt(v[0].String, 10, 64)
				rows, err2 := strconv.ParseInt(v[1].String, 10, 64)
				sum, err3 := strconv.ParseUint(v[2].String, 10, 64)
				if err1 != nil || err2 != nil || err3 != nil {
					return fmt.Errorf("digest row %q, %q, %q is not three integers", v[0].String, v[1].String, v[2].String)
				}
				mu.Lock()
				defer mu.Unlock()
				b := sums[bucket]
				if b == nil {
					b = &bucketSum{}
					sums[bucket] = b
				}
				b.rows += rows
				b.sum += sum // modulo 2^64, as each part's
				return nil
			})
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := make([]*extractorv1.BucketDigest, 0, len(sums))
	for k, b := range sums {
		out = append(out, &extractorv1.BucketDigest{Bucket: k, Rows: b.rows, SumHi: int64(b.sum >> 32), SumLo: int64(b.sum & 0xffffffff)})
	}
	return out, nil
}
