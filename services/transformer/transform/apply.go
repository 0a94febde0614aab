package transform

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	transformerv1 "github.com/cutover/cutover/gen/cutover/transformer/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"github.com/cutover/cutover/services/kit/calendar"
	"github.com/cutover/cutover/services/transformer/clean"
)

const (
	tText   = commonv1.ColumnType_COLUMN_TYPE_TEXT
	tInt    = commonv1.ColumnType_COLUMN_TYPE_INT64
	tFloat  = commonv1.ColumnType_COLUMN_TYPE_FLOAT64
	tBool   = commonv1.ColumnType_COLUMN_TYPE_BOOL
	tNum    = commonv1.ColumnType_COLUMN_TYPE_NUMERIC
	tTS     = commonv1.ColumnType_COLUMN_TYPE_TIMESTAMPTZ
	tDate   = commonv1.ColumnType_COLUMN_TYPE_DATE
	tBytes  = commonv1.ColumnType_COLUMN_TYPE_BYTES
	tUnspec = commonv1.ColumnType_COLUMN_TYPE_UNSPECIFIED
)

// value is one cast value (a default), in the slot its type uses.
type value struct {
	i int64
	f float64
	b bool
	s []byte
}

// colPlan is one mapping prepared once per config: the default already cast
// and the type name used in reject reasons already rendered.
type colPlan struct {
	target, source string
	typ            commonv1.ColumnType
	typeName       string
	hasDef         bool
	def            value
	formats        []string
	notNull        bool
	maxLen         int
	prec, scale    int
	// chain cleans the source value's text before the cast (nil: none).
	chain *clean.Chain
	// expr computes the value instead of a source column (nil: none).
	expr *exprPlan
	// id derives a new identifier from the source value (nil: none).
	id *idPlan
	// tm: formats, the target's time kind and the zone of zone-less values.
	tm timePlan
	// setArray: a MySQL SET's "a,b" becomes the text[] literal {"a","b"}.
	setArray bool
}

// plan is a compiled TransformConfig, reused for every batch of a stream.
type plan struct {
	cols    []colPlan
	filters []filterPlan
	// idCols are the indexes of the new_id and ref columns, in mapping
	// order: each adds a "__old__<target>" column after the mapped ones.
	idCols []int
}

// typeName spells a target type as PostgreSQL does, for reject reasons.
func typeName(m *commonv1.ColumnMapping) string {
	switch m.GetType() {
	case tInt:
		return "bigint"
	case tFloat:
		return "double precision"
	case tBool:
		return "boolean"
	case tNum:
		if m.GetPrecision() > 0 {
			return fmt.Sprintf("numeric(%d,%d)", m.GetPrecision(), m.GetScale())
		}
		return "numeric"
	case tTS:
		return "timestamptz"
	case tDate:
		return "date"
	case tText:
		if m.GetMaxLength() > 0 {
			return fmt.Sprintf("varchar(%d)", m.GetMaxLength())
		}
		return "text"
	case tBytes:
		return "bytea"
	}
	return m.GetType().String()
}

// checkShape refuses mapping settings no value could satisfy; field is the
// path prefix of the mapping ("columns[2]").
func checkShape(field string, m *commonv1.ColumnMapping) error {
	switch {
	case m.GetType() == tUnspec || commonv1.ColumnType_name[int32(m.GetType())] == "":
		return &fieldError{field + ".type", "must be set to a column type", ErrInvalidMapping}
	case m.GetMaxLength() < 0:
		return &fieldError{field + ".max_length", fmt.Sprintf("must not be negative, got %d", m.GetMaxLength()), ErrInvalidMapping}
	case m.GetPrecision() < 0 || m.GetPrecision() > 1000:
		return &fieldError{field + ".precision", fmt.Sprintf("must be 0..1000, got %d", m.GetPrecision()), ErrInvalidMapping}
	case m.GetScale() < 0 || (m.GetPrecision() > 0 && m.GetScale() > m.GetPrecision()):
		return &fieldError{field + ".scale", fmt.Sprintf("must be 0..precision (%d), got %d", m.GetPrecision(), m.GetScale()), ErrInvalidMapping}
	}
	switch {
	case commonv1.SetAs_name[int32(m.GetSetAs())] == "":
		return &fieldError{field + ".set_as", fmt.Sprintf("unknown value %d", m.GetSetAs()), ErrInvalidMapping}
	case commonv1.EnumAs_name[int32(m.GetEnumAs())] == "":
		return &fieldError{field + ".enum_as", fmt.Sprintf("unknown value %d", m.GetEnumAs()), ErrInvalidMapping}
	case m.GetSetAs() == commonv1.SetAs_SET_AS_TEXT_ARRAY && m.GetType() != tText:
		return &fieldError{field + ".set_as", fmt.Sprintf("TEXT_ARRAY loads a text[] (type TEXT), not %s", typeName(m)), ErrInvalidMapping}
	}
	for j, f := range m.GetFormats() {
		if strings.TrimSpace(f) == "" {
			return &fieldError{fmt.Sprintf("%s.formats[%d]", field, j), "must not be empty", ErrInvalidMapping}
		}
	}
	return nil
}

func compile(cfg *transformerv1.TransformConfig) (*plan, error) {
	return compileWith(cfg, nil)
}

// compileWith compiles cfg; sources, when known (CheckMapping), are the
// source columns an expression may reference.
func compileWith(cfg *transformerv1.TransformConfig, sources map[string]bool) (*plan, error) {
	p := &plan{cols: make([]colPlan, len(cfg.GetColumns()))}
	for k, m := range cfg.GetColumns() {
		field := fmt.Sprintf("columns[%d]", k)
		if err := checkShape(field, m); err != nil {
			return nil, err
		}
		if err := checkID(field, m); err != nil {
			return nil, err
		}
		c := &p.cols[k]
		*c = colPlan{
			target: m.GetTarget(), source: m.GetSource(), typ: m.GetType(), typeName: typeName(m),
			formats: m.GetFormats(), notNull: m.GetNotNull(), maxLen: int(m.GetMaxLength()),
			prec: int(m.GetPrecision()), scale: int(m.GetScale()),
			id:       newIDPlan(m, cfg.GetSystem()),
			setArray: m.GetSetAs() == commonv1.SetAs_SET_AS_TEXT_ARRAY,
		}
		if c.id != nil {
			p.idCols = append(p.idCols, k)
		}
		tm, err := newTimePlan(field, m, cfg.GetReportFormats() && m.GetExpr() == "" && c.id == nil)
		if err != nil {
			return nil, err
		}
		c.tm = tm
		if m.GetExpr() != "" {
			if m.GetSource() != "" {
				return nil, &fieldError{field + ".expr", fmt.Sprintf("target column %q: both source %q and expr are set; use one", m.GetTarget(), m.GetSource()), ErrInvalidMapping}
			}
			ep, err := compileExpr(m.GetExpr(), sources)
			if err != nil {
				kind := ErrInvalidMapping
				if errors.Is(err, ErrUnknownSourceColumn) {
					kind = ErrUnknownSourceColumn
				}
				return nil, &fieldError{field + ".expr", fmt.Sprintf("target column %q: %v", m.GetTarget(), err), kind}
			}
			c.expr = ep
		}
		if len(m.GetClean()) > 0 {
			steps := make([]clean.Step, len(m.GetClean()))
			for j, st := range m.GetClean() {
				steps[j] = clean.Step{Name: st.GetFunction(), Args: st.GetArgs()}
			}
			chain, err := clean.CompileChain(steps)
			if err != nil {
				return nil, &fieldError{field + ".clean", fmt.Sprintf("target column %q: %v", m.GetTarget(), err), ErrInvalidMapping}
			}
			c.chain = chain
		}
		if m.Default != nil {
			bld := batch.NewBuilder("", c.typ, 1)
			if err := c.castBytes(bld, []byte(m.GetDefault()), true, nil); err != nil {
				return nil, &fieldError{field + ".default", fmt.Sprintf("cannot cast %s to %s: %v", batch.QuoteShort([]byte(m.GetDefault())), c.typeName, err), ErrInvalidMapping}
			}
			col := bld.Column()
			c.hasDef = true
			c.def = value{b: batch.Bit(col.Bools, 0)}
			switch batch.Storage(c.typ) {
			case batch.StorageInts:
				c.def.i = col.Ints[0]
			case batch.StorageFloats:
				c.def.f = col.Floats[0]
			case batch.StorageBytes:
				c.def.s = batch.Bytes(col, 0)
			}
		}
	}
	// The "__old__" columns share the batch with the mapped ones.
	if len(p.idCols) > 0 {
		targets := make(map[string]bool, len(p.cols))
		for _, c := range p.cols {
			targets[c.target] = true
		}
		for _, k := range p.idCols {
			if name := oldPrefix + p.cols[k].target; targets[name] {
				return nil, &fieldError{fmt.Sprintf("columns[%d].target", k), fmt.Sprintf("target column %q: the old-id column %q is also a mapped target", p.cols[k].target, name), ErrInvalidMapping}
			}
		}
	}
	p.filters = make([]filterPlan, len(cfg.GetFilters()))
	for j, f := range cfg.GetFilters() {
		fp, err := compileFilter(j, f, sources)
		if err != nil {
			return nil, err
		}
		p.filters[j] = fp
	}
	return p, nil
}

// Apply maps one batch onto the target columns of cfg. Bad row data never
// fails the call: the row gets a Reject and NULL in the failing slot. The
// error is for a malformed batch, an unknown source column or a bad config.
func Apply(cfg *transformerv1.TransformConfig, in *commonv1.Batch) (*commonv1.Batch, error) {
	p, err := compile(cfg)
	if err != nil {
		return nil, err
	}
	return p.apply(in)
}

// castError carries why a value failed; its text goes into the reason.
type castError struct {
	rule, why string
}

func (p *plan) apply(in *commonv1.Batch) (*commonv1.Batch, error) {
	if err := batch.Check(in); err != nil {
		return nil, err
	}
	n := int(in.GetNumRows())
	byName := make(map[string]*commonv1.Column, len(in.GetColumns()))
	for _, c := range in.GetColumns() {
		byName[c.GetName()] = c
	}
	// Filters first: a row they leave out or quarantine is skipped by every
	// column, as a row rejected upstream is.
	// Delete rows of a change batch carry only their key: filters,
	// expressions and new ids skip them, and a NULL in another column is
	// NULL, not a missing value (no default, no not_null reject).
	// An upsert's unchanged value (Column.unchanged) stays unchanged in a
	// column mapped from it; a filter, expression or id reading it rejects
	// the row (rule unchanged_value): its result is unknown.
	dels := deleteRows(in)
	skipped, rejects, err := p.applyFilters(in, byName, orBits(batch.Rejected(in), dels))
	if err != nil {
		return nil, err
	}
	rejected := skipped // skipped: also the delete rows, which computed columns leave NULL
	if dels != nil {
		rejected = make([]byte, len(skipped))
		for i, w := range skipped {
			rejected[i] = w
			if i < len(dels) {
				rejected[i] &^= dels[i]
			}
		}
	}
	out := &commonv1.Batch{
		JobId: in.GetJobId(), PartitionId: in.GetPartitionId(), Seq: in.GetSeq(),
		Table: in.GetTable(), Source: in.GetSource(), FirstKey: in.GetFirstKey(), LastKey: in.GetLastKey(),
		NumRows: in.GetNumRows(), SourceRefs: in.GetSourceRefs(), TraceContext: in.GetTraceContext(),
		Columns: make([]*commonv1.Column, len(p.cols), len(p.cols)+len(p.idCols)),
		Ops:     in.GetOps(), Position: in.GetPosition(), StageMicros: in.GetStageMicros(),
	}
	olds := make([]*oldIDs, 0, len(p.idCols))
	var scratch, text, cleanBuf []byte // reused: casts append into them, then copy out
	for k := range p.cols {
		c := &p.cols[k]
		if c.expr != nil {
			col, rj, err := c.applyExpr(k, in, byName, skipped, rejects)
			if err != nil {
				return nil, err
			}
			out.Columns[k], rejects = col, rj
			continue
		}
		if c.id != nil {
			col, old, rj, err := c.applyID(k, in, byName, skipped, rejects)
			if err != nil {
				return nil, err
			}
			out.Columns[k], rejects = col, rj
			olds = append(olds, old)
			continue
		}
		var src *commonv1.Column
		if c.source != "" {
			var ok bool
			if src, ok = byName[c.source]; !ok {
				return nil, fmt.Errorf("columns[%d].source: %w %q: batch has %s", k, ErrUnknownSourceColumn, c.source, batch.ColumnNames(in))
			}
		}
		bld := batch.NewBuilder(c.target, c.typ, n)
		if src != nil && batch.Storage(c.typ) == batch.StorageBytes && batch.Storage(src.GetType()) == batch.StorageBytes {
			bld.Column().Data = make([]byte, 0, len(src.GetData()))
		} else if batch.Storage(c.typ) == batch.StorageBytes {
			bld.Column().Data = make([]byte, 0, 16*n)
		}
		srcText := src != nil && (src.GetType() == tText || src.GetType() == tUnspec)
		// A time or interval column with formats casts its text as a
		// timestamp column does: empty is missing, the rest is parsed.
		typed := c.typ != tText || c.tm.reformats()
		if c.tm.rec != nil {
			c.tm.rec.reset(c.target, c.tm.layouts)
			out.FormatMatches = append(out.FormatMatches, c.tm.rec.matches...)
		}
		// Text to text: validate the whole buffer once instead of per value;
		// a value is then valid when both its ends fall on rune starts.
		bulkText := srcText && !typed && !c.setArray && c.chain == nil && bytes.IndexByte(src.GetData(), 0) < 0 && utf8.Valid(src.GetData())
		for i := 0; i < n; i++ {
			if c.tm.rec != nil {
				c.tm.rec.row = i
			}
			if batch.Bit(rejected, i) {
				bld.AppendNull() // rejected upstream: already reported once
				continue
			}
			if batch.Bit(dels, i) && (src == nil || batch.IsNull(src, i)) {
				bld.AppendNull() // a delete row's non-key column
				continue
			}
			if src != nil && batch.IsUnchanged(src, i) {
				// Left out of the change: the target keeps its value, so
				// there is nothing to clean, cast or default.
				bld.AppendUnchanged()
				continue
			}
			// Cleaning works on the value's text; its output is text to cast.
			var cleaned []byte
			haveCleaned, cleanedNull := false, false
			if c.chain != nil && src != nil && !batch.IsNull(src, i) {
				in := text[:0]
				if batch.Storage(src.GetType()) == batch.StorageBytes {
					in = batch.Bytes(src, i)
				} else {
					text = batch.AppendText(text[:0], src, i)
					in = text
				}
				out, err := c.chain.Apply(in, cleanBuf[:0])
				switch {
				case errors.Is(err, clean.ErrNull):
					cleanedNull = true
				case err != nil:
					bld.AppendNull()
					rejects = append(rejects, &commonv1.Reject{Row: int32(i), Stage: "transform", Rule: "clean", Column: c.target,
						Reason: "column " + c.target + ": " + err.Error(), Raw: batch.SafeRaw(in)})
					continue
				default:
					cleanBuf, cleaned, haveCleaned = out, out, true
				}
			}
			if src == nil || cleanedNull || batch.IsNull(src, i) || (haveCleaned && typed && len(cleaned) == 0) ||
				(!haveCleaned && srcText && typed && src.Offsets[i] == src.Offsets[i+1]) {
				rejects = c.appendMissing(bld, i, rejects)
				continue
			}
			if haveCleaned {
				if err := c.castBytes(bld, cleaned, true, &scratch); err != nil {
					bld.AppendNull()
					rejects = append(rejects, &commonv1.Reject{Row: int32(i), Stage: "transform", Rule: "cast", Column: c.target,
						Reason: fmt.Sprintf("column %s: cannot cast cleaned value %s to %s: %v", c.target, batch.QuoteShort(cleaned), c.typeName, err),
						Raw:    batch.SafeRaw(cleaned)})
				}
				continue
			}
			if bulkText {
				lo, hi := src.Offsets[i], src.Offsets[i+1]
				if runeStartAt(src.Data, lo) && runeStartAt(src.Data, hi) {
					v := src.Data[lo:hi]
					if c.maxLen == 0 || len(v) <= c.maxLen || utf8.RuneCount(v) <= c.maxLen {
						bld.AppendBytes(v)
						continue
					}
				}
			}
			var err error
			var raw []byte
			if batch.Storage(src.GetType()) == batch.StorageBytes {
				raw = batch.Bytes(src, i)
				err = c.castBytes(bld, raw, srcText, &scratch)
			} else {
				var done bool
				if done, err = c.castTyped(bld, src, i); !done {
					text = batch.AppendText(text[:0], src, i)
					raw = text
					err = c.castBytes(bld, raw, true, &scratch)
				}
				if err != nil && raw == nil {
					raw = batch.AppendText(nil, src, i)
				}
			}
			if err != nil {
				bld.AppendNull()
				rejects = append(rejects, &commonv1.Reject{Row: int32(i), Stage: "transform", Rule: "cast", Column: c.target,
					Reason: fmt.Sprintf("column %s: cannot cast %s to %s: %v", c.target, batch.QuoteShort(raw), c.typeName, err),
					Raw:    batch.SafeRaw(raw)})
			}
		}
		out.Columns[k] = bld.Column()
	}
	if len(olds) > 0 {
		// An old id of a row rejected by any column is not staged.
		for _, r := range rejects {
			rejected = batch.SetBit(rejected, int(r.GetRow()))
		}
		for j, k := range p.idCols {
			out.Columns = append(out.Columns, olds[j].column(p.cols[k].target, rejected))
		}
	}
	slices.SortStableFunc(rejects, func(a, b *commonv1.Reject) int { return int(a.Row - b.Row) })
	out.Rejects = append(slices.Clip(in.GetRejects()), rejects...)
	return out, nil
}

func runeStartAt(data []byte, off uint32) bool {
	return int(off) >= len(data) || utf8.RuneStart(data[off])
}

// appendMissing fills the slot of a row without a value: the default when
// there is one, else NULL, which a NOT NULL column rejects.
func (c *colPlan) appendMissing(bld *batch.Builder, row int, rejects []*commonv1.Reject) []*commonv1.Reject {
	if c.hasDef {
		c.appendDefault(bld)
		return rejects
	}
	bld.AppendNull()
	if c.notNull {
		rejects = append(rejects, &commonv1.Reject{Row: int32(row), Stage: "transform", Rule: "not_null", Column: c.target,
			Reason: "column " + c.target + ": NULL in a NOT NULL column"})
	}
	return rejects
}

func (c *colPlan) appendDefault(bld *batch.Builder) {
	switch c.typ {
	case tInt, tTS, tDate:
		bld.AppendInt(c.def.i)
	case tFloat:
		bld.AppendFloat(c.def.f)
	case tBool:
		bld.AppendBool(c.def.b)
	default:
		bld.AppendBytes(c.def.s)
	}
}

var (
	errNUL      = errors.New("contains a NUL byte")
	errUTF8     = errors.New("is not valid UTF-8")
	errHex      = errors.New(`invalid hex after \x`)
	errNotInt   = errors.New("has a fractional part")
	errNotFinit = errors.New("is not finite")
)

// castBytes casts a value held as bytes (TEXT, NUMERIC or BYTES input, or
// the text form of a typed value) and appends it. fromText says the input is
// text, so "\x…" means hex for a bytea target. scratch is reused per column.
func (c *colPlan) castBytes(bld *batch.Builder, v []byte, fromText bool, scratch *[]byte) error {
	switch c.typ {
	case tInt:
		x, err := parseInt(v)
		if err != nil {
			return err
		}
		bld.AppendInt(x)
	case tFloat:
		x, err := parseFloat(v)
		if err != nil {
			return err
		}
		bld.AppendFloat(x)
	case tBool:
		x, err := parseBool(v)
		if err != nil {
			return err
		}
		bld.AppendBool(x)
	case tNum:
		var buf []byte
		if scratch != nil {
			buf = (*scratch)[:0]
		}
		buf, err := appendNumeric(buf, v, c.prec, c.scale)
		if scratch != nil {
			*scratch = buf
		}
		if err != nil {
			return err
		}
		bld.AppendBytes(buf)
	case tTS:
		if c.tm.rec != nil {
			c.tm.try(v)
		}
		x, zoned, err := parseTimestampZ(v)
		if err != nil {
			x, zoned, err = c.parseFormats(v, err, false)
			if err != nil {
				return err
			}
		}
		if !zoned {
			if x, err = c.tm.inZone(x); err != nil {
				return err
			}
		}
		bld.AppendInt(x)
	case tDate:
		if c.tm.rec != nil {
			c.tm.try(v)
		}
		x, err := parseDate(v)
		if err != nil {
			x, _, err = c.parseFormats(v, err, true)
			if err != nil {
				return err
			}
		}
		bld.AppendInt(x)
	case tText:
		if bytes.IndexByte(v, 0) >= 0 {
			return errNUL
		}
		if !utf8.Valid(v) {
			return errUTF8
		}
		if c.tm.reformats() {
			if c.tm.rec != nil {
				c.tm.try(v)
			}
			var buf []byte
			if scratch != nil {
				buf = (*scratch)[:0]
			}
			buf, err := c.tm.appendClock(buf, v)
			if scratch != nil {
				*scratch = buf
			}
			if err != nil {
				return err
			}
			bld.AppendBytes(buf)
			return nil
		}
		if c.setArray {
			var buf []byte
			if scratch != nil {
				buf = (*scratch)[:0]
			}
			buf = batch.AppendSetArray(buf, v)
			if scratch != nil {
				*scratch = buf
			}
			bld.AppendBytes(buf)
			return nil
		}
		if c.maxLen > 0 && len(v) > c.maxLen && utf8.RuneCount(v) > c.maxLen {
			return fmt.Errorf("longer than %d characters", c.maxLen)
		}
		bld.AppendBytes(v)
	case tBytes:
		if fromText && len(v) >= 2 && v[0] == '\\' && (v[1] == 'x' || v[1] == 'X') {
			h := v[2:]
			if len(h)%2 != 0 {
				return errHex
			}
			var buf []byte
			if scratch != nil {
				buf = (*scratch)[:0]
			}
			buf = slices.Grow(buf, len(h)/2)[:len(h)/2]
			if _, err := hex.Decode(buf, h); err != nil {
				return errHex
			}
			if scratch != nil {
				*scratch = buf
			}
			bld.AppendBytes(buf)
			return nil
		}
		bld.AppendBytes(v)
	default:
		return fmt.Errorf("unsupported target type %s", c.typ)
	}
	return nil
}

// parseFormats tries the mapping's Go layouts in order after the built-in
// shapes failed; first is the built-in parser's error, kept when no layout
// matches because it usually says more (a day that does not exist). zoned
// says the layout read a zone; else the result is the wall time as if UTC.
func (c *colPlan) parseFormats(v []byte, first error, date bool) (us int64, zoned bool, err error) {
	if t, zoned, ok := c.tm.parseLayouts(strings.TrimSpace(string(v))); ok {
		if date {
			y, m, d := t.Date()
			return calendar.Days(y, int(m), d), false, nil
		}
		if !zoned {
			t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
		}
		us = t.UnixMicro()
		if us < minTS || us >= maxTS {
			return 0, false, errYear
		}
		return us, zoned, nil
	}
	if len(c.formats) > 0 && (first == errTSSyntax || first == errDateSyntax) {
		return 0, false, fmt.Errorf("%w; none of the formats %q matched", first, c.formats)
	}
	return 0, false, first
}

// castTyped handles the typed-input casts that need no text round trip;
// done is false when the caller should cast the value's text form instead.
func (c *colPlan) castTyped(bld *batch.Builder, src *commonv1.Column, i int) (done bool, err error) {
	st := src.GetType()
	switch {
	case st == tTS && c.typ == tTS && c.tm.loc != nil:
		// ColumnMapping.time_zone is set only for a zone-less source
		// column: its micros are a wall time.
		us, err := c.tm.inZone(src.Ints[i])
		if err != nil {
			return true, err
		}
		bld.AppendInt(us)
	case st == c.typ && (st == tInt || st == tTS || st == tDate):
		bld.AppendInt(src.Ints[i])
	case st == tFloat && c.typ == tFloat:
		bld.AppendFloat(src.Floats[i])
	case st == tBool && c.typ == tBool:
		bld.AppendBool(batch.Bit(src.Bools, i))
	case st == tInt && c.typ == tFloat:
		bld.AppendFloat(float64(src.Ints[i]))
	case st == tBool && c.typ == tInt:
		x := int64(0)
		if batch.Bit(src.Bools, i) {
			x = 1
		}
		bld.AppendInt(x)
	case st == tFloat && c.typ == tInt:
		f := src.Floats[i]
		switch {
		case math.IsNaN(f) || math.IsInf(f, 0):
			return true, errNotFinit
		case f != math.Trunc(f):
			return true, errNotInt
		case f < -(1<<63) || f >= 1<<63:
			return true, errIntRange
		}
		bld.AppendInt(int64(f))
	case st == tDate && c.typ == tTS:
		us, err := c.tm.inZone(src.Ints[i] * usPerDay) // midnight, in the zone
		if err != nil {
			return true, err
		}
		bld.AppendInt(us)
	case st == tTS && c.typ == tDate:
		us := src.Ints[i]
		d := us / usPerDay
		if us%usPerDay < 0 {
			d--
		}
		bld.AppendInt(d)
	default:
		return false, nil
	}
	return true, nil
}

// deleteRows is the bitmap of a change batch's delete rows ('d' ops), nil
// for a batch without any.
func deleteRows(b *commonv1.Batch) []byte {
	var bm []byte
	for i, op := range b.GetOps() {
		if op == 'd' {
			bm = batch.SetBit(bm, i)
		}
	}
	return bm
}

// orBits returns a | b in a new bitmap.
func orBits(a, b []byte) []byte {
	if b == nil {
		return a
	}
	out := make([]byte, max(len(a), len(b)))
	copy(out, a)
	for i, w := range b {
		out[i] |= w
	}
	return out
}
