package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
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
	"google.golang.org/grpc/status"
)

// The independent level: the source database and the target database each
// render, hash and total their own rows in SQL (kit/checksum); the
// extractor runs the source's side (ChecksumSource), this file the
// target's, and compares. Columns are compared where the mapping is a
// rename or a cast (no cleaning, expression, formats, default or new id);
// the others are named and make the result a warning. Buckets that differ
// are split on more key-hash bits until they are small, then listed on
// both sides down to the differing keys.

const (
	indBits     = 12   // first level: 4096 buckets
	indStepBits = 4    // each split: 16 sub-buckets
	indMaxBits  = 24   // deepest split
	indLeafRows = 4000 // a bucket this small is listed row by row
)

// errFileSource marks a table whose source has no database (the extractor
// refused the checksum): it is compared by replay instead.
var errFileSource = errors.New("file source")

// indCol is one compared column.
type indCol struct {
	tc   targetCol
	kind checksum.Kind
	src  []string // source column per table spec
}

// indSide is one table spec's source request template.
type indSide struct {
	spec    *commonv1.TableSpec
	exclude []string
	cols    []*extractorv1.ChecksumColumn
	key     []int32
}

type indTable struct {
	ic      *commonv1.IndependentCheck
	cols    []indCol
	key     []int // positions in cols; none: rows are their own key
	sides   []indSide
	target  checksum.Table
	ex      extractorv1.ExtractorServiceClient
	maxDiff int
	diffs   []*rowDiff
	keyName []string
}

// whyNotPlain says why a mapping is more than a rename or a cast ("" when
// it is not).
func whyNotPlain(m *commonv1.ColumnMapping) string {
	switch {
	case m.GetExpr() != "":
		return "computed by an expression"
	case len(m.GetClean()) > 0:
		var fns []string
		for _, c := range m.GetClean() {
			fns = append(fns, c.GetFunction())
		}
		return "cleaned (" + strings.Join(fns, ", ") + ")"
	case len(m.GetFormats()) > 0:
		return "parsed with formats"
	case m.Default != nil:
		return "NULLs replaced by a default"
	case m.GetNewId() != nil:
		return "given new identifiers"
	case m.GetRef() != nil:
		return "an id reference rewritten through the id map"
	case m.GetSource() == "":
		return "not read from a source column"
	}
	return ""
}

// independent compares the target table with its sources' databases.
func (r *reconciler) independent(ctx context.Context, tr *commonv1.TableReconciliation, cols []targetCol, pk []string) error {
	cc, err := r.dial(r.req.GetExtractor())
	if err != nil {
		return fmt.Errorf("%w: extractor: %v", ErrInvalidArgument, err)
	}
	it := &indTable{ic: &commonv1.IndependentCheck{}, ex: extractorv1.NewExtractorServiceClient(cc), maxDiff: r.maxDiff}
	ident := pgx.Identifier{r.schema, r.req.GetTable()}.Sanitize()
	srcs := r.req.GetSources()
	mappings := make([]map[string]*commonv1.ColumnMapping, len(srcs))
	for k, src := range srcs {
		mappings[k] = map[string]*commonv1.ColumnMapping{}
		for _, m := range src.GetTable().GetColumns() {
			mappings[k][m.GetTarget()] = m
		}
		it.sides = append(it.sides, indSide{spec: src.GetTable()})
	}
	skip := func(col, why string) {
		it.ic.SkippedColumns = append(it.ic.SkippedColumns, &commonv1.SkippedColumn{Column: col, Reason: why})
	}
	// Candidates: mapped by a rename or cast in every spec, of a kind.
	for _, c := range cols {
		mapped, why := 0, ""
		var names []string
		for k, src := range srcs {
			m := mappings[k][c.name]
			if m == nil {
				why = "not mapped by table " + src.GetTable().GetName()
				continue
			}
			mapped++
			if w := whyNotPlain(m); w != "" && why == "" {
				why = w
			}
			names = append(names, m.GetSource())
		}
		if mapped == 0 {
			continue // the target's own column (a default, a later addition)
		}
		if why != "" {
			skip(c.name, why)
			continue
		}
		kind, err := targetKind(c)
		if err != nil {
			skip(c.name, err.Error())
			continue
		}
		it.cols = append(it.cols, indCol{tc: c, kind: kind, src: names})
	}
	// Each source says which it can render.
	frac := 6
	drop := map[int]string{}
	for k := range it.sides {
		side := &it.sides[k]
		for _, c := range it.cols {
			side.cols = append(side.cols, &extractorv1.ChecksumColumn{Name: c.src[k], Kind: c.kind.Proto(), TimeZone: side.spec.GetTimeZone()})
		}
		plan, err := it.call(ctx, side, &extractorv1.ChecksumSourceRequest{Ask: &extractorv1.ChecksumSourceRequest_Plan{Plan: &extractorv1.ChecksumPlan{}}})
		if err != nil {
			return err
		}
		frac = min(frac, int(plan.GetFractionDigits()))
		for i, p := range plan.GetColumns() {
			if p.GetUnsupported() != "" && drop[i] == "" {
				drop[i] = "source " + side.spec.GetName() + ": " + p.GetUnsupported()
			}
		}
		if len(r.excluded[side.spec.GetName()]) > 0 {
			if plan.GetCanExclude() {
				side.exclude = r.excluded[side.spec.GetName()]
			} else {
				it.ic.Warnings = append(it.ic.Warnings, fmt.Sprintf("source %s: the %d rows the job quarantined or filtered cannot be told apart in the source (no key to rebuild their references), so they count as missing",
					side.spec.GetName(), len(r.excluded[side.spec.GetName()])))
			}
		}
	}
	var kept []indCol
	keep := []int{}
	for i, c := range it.cols {
		if drop[i] != "" {
			skip(c.tc.name, drop[i])
			continue
		}
		kept = append(kept, c)
		keep = append(keep, i)
	}
	it.cols = kept
	for k := range it.sides {
		var cs []*extractorv1.ChecksumColumn
		for _, i := range keep {
			cs = append(cs, it.sides[k].cols[i])
		}
		it.sides[k].cols = cs
	}
	for _, c := range it.cols {
		it.ic.ComparedColumns = append(it.ic.ComparedColumns, c.tc.name)
	}
	for _, s := range it.ic.SkippedColumns {
		it.ic.Warnings = append(it.ic.Warnings, fmt.Sprintf("column %s not compared: %s", s.Column, s.Reason))
	}
	// The target's side of the same columns.
	it.target = checksum.Table{Ident: ident}
	for _, c := range it.cols {
		cl := targetClass(c.tc)
		e, err := checksum.Postgres.Canon(checksum.Column{Name: c.tc.name, Kind: c.kind, Class: cl, Frac: frac,
			NotNull: c.tc.notNull, NoFraction: cl == checksum.ClassDecimal && c.tc.scale() == 0})
		if err != nil {
			return fmt.Errorf("%w: target column %s: %v", ErrTargetMismatch, c.tc.name, err)
		}
		it.target.Canon = append(it.target.Canon, e)
	}
	// The key: the target's primary key if compared, else the source's.
	pos := map[string]int{}
	for i, c := range it.cols {
		pos[c.tc.name] = i
	}
	key := pk
	if len(key) == 0 {
		mk, _, err := r.rowKey(ctx, &tablePlan{ident: ident, srcs: srcs}, pk, mappings)
		if err != nil {
			return err
		}
		key = mk
	}
	for _, name := range key {
		i, ok := pos[name]
		if !ok {
			it.key = nil
			break
		}
		it.key = append(it.key, i)
		it.keyName = append(it.keyName, name)
	}
	if len(it.key) == 0 {
		it.keyName = nil
		it.ic.RowsSkipped = "no compared key: rows are compared as a multiset of their compared columns"
	}
	it.target.Key = it.key
	if len(it.key) == 1 && it.cols[it.key[0]].kind == checksum.Integer {
		// As the extractor does for the same request: the key's value is
		// its hash.
		it.target.IntKey, it.target.KeyIdent = true, checksum.Postgres.Ident(it.cols[it.key[0]].tc.name)
	}
	for k := range it.sides {
		for _, i := range it.key {
			it.sides[k].key = append(it.sides[k].key, int32(i))
		}
	}
	if len(it.cols) == 0 {
		it.ic.RowsSkipped = "no column can be compared"
	}
	if r.req.GetStaged() {
		it.ic.RowsSkipped = "staged table (dedupe, new ids, references or key collisions): rows are merged and rewritten at finalize, so only counts and totals are computed"
	}
	g, gctx := errgroup.WithContext(ctx)
	if len(it.cols) > 0 && !r.req.GetStaged() {
		g.Go(func() error { return it.rows(gctx, r) })
	} else {
		g.Go(func() error { return it.counts(gctx, r) })
	}
	var totals []*commonv1.AggregateCheck
	g.Go(func() (err error) { totals, err = it.totals(gctx, r, cols, mappings); return err })
	if err := g.Wait(); err != nil {
		return err
	}
	it.ic.Totals = totals
	ok := it.ic.GetSourceRows() == it.ic.GetTargetRows() || r.req.GetStaged()
	ok = ok && it.ic.GetBucketsDiffering() == 0 && len(it.ic.GetDifferences()) == 0
	for _, t := range totals {
		ok = ok && t.GetOk()
	}
	it.ic.Ok = ok
	tr.Independent = it.ic
	return nil
}

// call asks side's extractor with side's columns, key and exclusions.
func (it *indTable) call(ctx context.Context, side *indSide, req *extractorv1.ChecksumSourceRequest) (*extractorv1.ChecksumSourceResponse, error) {
	req.Source, req.Columns, req.Key, req.ExcludeRefs = side.spec.GetSource(), side.cols, side.key, side.exclude
	resp, err := it.ex.ChecksumSource(ctx, req)
	if err != nil {
		if stage.HasReason(err, codes.FailedPrecondition, stage.NoDatabaseReason, stage.NoDatabaseDomain) {
			return nil, errFileSource
		}
		if status.Code(err) == codes.InvalidArgument {
			return nil, fmt.Errorf("%w: source %s: %s", ErrInvalidArgument, side.spec.GetName(), status.Convert(err).Message())
		}
		return nil, &stage.UpstreamError{Stage: "extractor", Err: err}
	}
	return resp, nil
}

func targetKind(c targetCol) (checksum.Kind, error) {
	if c.typname == "" && !strings.HasSuffix(c.pgType, "[]") {
		return checksum.Text, nil // an enum or other user type: its text
	}
	return checksum.KindOf(c.typname)
}

func targetClass(c targetCol) checksum.Class {
	if c.typname == "" {
		return checksum.ClassOther
	}
	return checksum.PostgresClass(c.typname)
}

// digests is one side's buckets: rows and the hash sum (modulo 2^64).
type digests map[int64]bucketDigest

type bucketDigest struct {
	rows int64
	sum  uint64
}

func (d digests) add(b, n int64, sum uint64) {
	v := d[b]
	d[b] = bucketDigest{v.rows + n, v.sum + sum}
}

func (it *indTable) targetDigest(ctx context.Context, r *reconciler, prefixBits int, prefixes []int64, bits int) (digests, error) {
	parts := []*checksum.Range{nil}
	if it.target.IntKey {
		err := r.db.query(ctx, "read the key range of "+it.target.Ident, checksum.Postgres.Bounds(it.target), nil, func(rows pgx.Rows) error {
			raw := rows.RawValues()
			parts = checksum.Parts(string(raw[0]), string(raw[1]))
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	var mu sync.Mutex
	d := digests{}
	g, gctx := errgroup.WithContext(ctx)
	for _, rg := range parts {
		tbl := it.target
		tbl.Range = rg
		g.Go(func() error {
			q, args := checksum.Postgres.Digest(tbl, prefixBits, prefixes, bits)
			return r.db.query(gctx, "hash the rows of "+tbl.Ident, q, args, func(rows pgx.Rows) error {
				raw := rows.RawValues()
				b, err1 := strconv.ParseInt(string(raw[0]), 10, 64)
				n, err2 := strconv.ParseInt(string(raw[1]), 10, 64)
				sum, err3 := strconv.ParseUint(string(raw[2]), 10, 64)
				if err1 != nil || err2 != nil || err3 != nil {
					return fmt.Errorf("digest row %q, %q, %q is not three integers", raw[0], raw[1], raw[2])
				}
				mu.Lock()
				d.add(b, n, sum)
				mu.Unlock()
				return nil
			})
		})
	}
	return d, g.Wait()
}

func (it *indTable) sourceDigest(ctx context.Context, prefixBits int, prefixes []int64, bits int) (digests, error) {
	d := digests{}
	for k := range it.sides {
		resp, err := it.call(ctx, &it.sides[k], &extractorv1.ChecksumSourceRequest{Ask: &extractorv1.ChecksumSourceRequest_Digest{
			Digest: &extractorv1.ChecksumDigest{PrefixBits: int32(prefixBits), Prefixes: prefixes, Bits: int32(bits)}}})
		if err != nil {
			return nil, err
		}
		for _, b := range resp.GetBuckets() {
			d.add(b.GetBucket(), b.GetRows(), uint64(b.GetSumHi())<<32|uint64(b.GetSumLo())&0xffffffff)
		}
	}
	return d, nil
}

// rows compares the digests level by level and lists the small differing
// buckets.
func (it *indTable) rows(ctx context.Context, r *reconciler) error {
	prefixBits, bits := 0, indBits
	var prefixes []int64
	for level := 0; ; level++ {
		var src, tgt digests
		g, gctx := errgroup.WithContext(ctx)
		g.Go(func() (err error) { src, err = it.sourceDigest(gctx, prefixBits, prefixes, bits); return err })
		g.Go(func() (err error) { tgt, err = it.targetDigest(gctx, r, prefixBits, prefixes, bits); return err })
		if err := g.Wait(); err != nil {
			return err
		}
		if level == 0 {
			it.ic.Buckets = 1 << bits
			for _, v := range src {
				it.ic.SourceRows += v.rows
			}
			for _, v := range tgt {
				it.ic.TargetRows += v.rows
			}
		}
		var split, leaf []int64
		for b := range unionKeys(src, tgt) {
			if src[b] == tgt[b] {
				continue
			}
			if level == 0 {
				it.ic.BucketsDiffering++
			}
			if max(src[b].rows, tgt[b].rows) > indLeafRows && bits+indStepBits <= indMaxBits {
				split = append(split, b)
			} else {
				leaf = append(leaf, b)
			}
		}
		slices.Sort(leaf)
		slices.Sort(split)
		// List the small buckets a few at a time until enough
		// differences are known.
		for len(leaf) > 0 && len(it.diffs) <= it.maxDiff {
			n := min(len(leaf), 16)
			if err := it.list(ctx, r, bits, leaf[:n]); err != nil {
				return err
			}
			leaf = leaf[n:]
		}
		if len(leaf) > 0 || len(it.diffs) > it.maxDiff {
			it.ic.Truncated = true
			break
		}
		if len(split) == 0 {
			break
		}
		if len(split) > 64 {
			split, it.ic.Truncated = split[:64], true
		}
		prefixBits, prefixes, bits = bits, split, bits+indStepBits
	}
	sort.Slice(it.diffs, func(a, b int) bool { return lessKey(it.diffs[a].keyVals, it.diffs[b].keyVals) })
	for k, d := range it.diffs {
		if k == it.maxDiff {
			it.ic.Truncated = true
			break
		}
		it.ic.Differences = append(it.ic.Differences, d.RowDifference)
	}
	return nil
}

func unionKeys(a, b digests) map[int64]bool {
	out := map[int64]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// list reads both sides' rows of some buckets and records the keys whose
// rows differ.
func (it *indTable) list(ctx context.Context, r *reconciler, bits int, buckets []int64) error {
	type side struct{ src, tgt []sideRow }
	byKey := map[string]*side{}
	keyVals := map[string][]string{}
	display := func(vals []*string) string {
		var sb strings.Builder
		for k, c := range it.cols {
			if k > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString(c.tc.name + "=")
			if vals[k] == nil {
				sb.WriteString("NULL")
			} else {
				sb.WriteString(*vals[k])
			}
		}
		return sb.String()
	}
	add := func(k, h string, vals []*string, target bool) {
		s := byKey[k]
		if s == nil {
			s = &side{}
			byKey[k] = s
			kv := make([]string, len(it.key))
			for i, pos := range it.key {
				kv[i] = "NULL"
				if vals[pos] != nil {
					kv[i] = *vals[pos]
				}
			}
			keyVals[k] = kv
		}
		row := sideRow{h: checksum.RowHash(h), display: display(vals)}
		if target {
			s.tgt = append(s.tgt, row)
		} else {
			s.src = append(s.src, row)
		}
	}
	for k := range it.sides {
		resp, err := it.call(ctx, &it.sides[k], &extractorv1.ChecksumSourceRequest{Ask: &extractorv1.ChecksumSourceRequest_Rows{
			Rows: &extractorv1.ChecksumRows{PrefixBits: int32(bits), Prefixes: buckets, MaxRows: 16 * 2 * indLeafRows}}})
		if err != nil {
			return err
		}
		for _, row := range resp.GetRows() {
			vals := make([]*string, len(row.GetValues()))
			for i, v := range row.GetValues() {
				if !v.GetNull() {
					s := v.GetText()
					vals[i] = &s
				}
			}
			add(row.GetKeyHash(), row.GetRowHash(), vals, false)
		}
	}
	q, args := checksum.Postgres.Rows(it.target, bits, buckets)
	err := r.db.query(ctx, "read the differing rows of "+it.target.Ident, q, args, func(rows pgx.Rows) error {
		raw := rows.RawValues()
		vals := make([]*string, len(raw)-2)
		for i, v := range raw[2:] {
			if v != nil {
				s := string(v)
				vals[i] = &s
			}
		}
		add(string(raw[0]), string(raw[1]), vals, true)
		return nil
	})
	if err != nil {
		return err
	}
	for k, s := range byKey {
		kind := differs(s.src, s.tgt)
		if kind == "" {
			continue
		}
		key := ""
		for i, name := range it.keyName {
			if i > 0 {
				key += ","
			}
			key += name + "=" + keyVals[k][i]
		}
		if key == "" {
			key = "row " + k[:12]
		}
		it.diffs = append(it.diffs, &rowDiff{RowDifference: &commonv1.RowDifference{Key: key, Kind: kind, Source: joinRows(s.src), Target: joinRows(s.tgt)},
			keyVals: keyVals[k]})
	}
	return nil
}

// counts fills the row counts when rows are not compared.
func (it *indTable) counts(ctx context.Context, r *reconciler) error {
	for k := range it.sides {
		resp, err := it.call(ctx, &it.sides[k], &extractorv1.ChecksumSourceRequest{Ask: &extractorv1.ChecksumSourceRequest_Totals{Totals: &extractorv1.ChecksumTotals{}}})
		if err != nil {
			return err
		}
		for _, t := range resp.GetTotals() {
			it.ic.SourceRows += t.GetRows()
		}
	}
	n, err := r.count(ctx, it.target.Ident)
	it.ic.TargetRows = n
	return err
}
