package transform

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"github.com/cutover/cutover/services/kit/ident"
	"github.com/cutover/cutover/services/transformer/clean"
)

// oldPrefix names the extra column carrying a new_id or ref column's old id;
// the loader stages it to fill and apply the id map.
const oldPrefix = "__old__"

// idPlan derives a column's value from its source value, the old id.
type idPlan struct {
	rule           string // "new_id" or "ref": the reject rule and spec field
	system, entity string
}

const (
	uuidLen     = 36 // characters of a UUID in text form
	int64Digits = 19 // decimal digits of the largest identifier
)

// checkID refuses a new_id or ref setting that cannot work; field is the
// mapping's path ("columns[2]"). An unspecified type is left to checkShape.
func checkID(field string, m *commonv1.ColumnMapping) error {
	rule, entity := "", ""
	switch {
	case m.GetNewId() != nil && m.GetRef() != nil:
		return &fieldError{field + ".ref", fmt.Sprintf("target column %q: both new_id and ref are set; use one", m.GetTarget()), ErrInvalidMapping}
	case m.GetNewId() != nil:
		rule, entity = "new_id", m.GetNewId().GetEntity()
	case m.GetRef() != nil:
		rule, entity = "ref", m.GetRef().GetEntity()
	default:
		return nil
	}
	field += "." + rule
	switch {
	case entity == "":
		return &fieldError{field + ".entity", fmt.Sprintf("target column %q: must not be empty", m.GetTarget()), ErrInvalidMapping}
	case m.GetExpr() != "" || m.GetSource() == "":
		return &fieldError{field, fmt.Sprintf("target column %q: needs a source column holding the old id (not expr)", m.GetTarget()), ErrInvalidMapping}
	case rule == "new_id" && m.Default != nil:
		// A constant would give every row without an old id the same new id.
		return &fieldError{field, fmt.Sprintf("target column %q: a default cannot stand in for the old id", m.GetTarget()), ErrInvalidMapping}
	}
	switch t := m.GetType(); {
	case t == tUnspec || t == tInt:
	case t == tNum:
		if m.GetPrecision() > 0 && m.GetPrecision()-m.GetScale() < int64Digits {
			return &fieldError{field, fmt.Sprintf("target column %q: %s cannot hold a %d-digit identifier", m.GetTarget(), typeName(m), int64Digits), ErrInvalidMapping}
		}
	case t == tText:
		if m.GetMaxLength() > 0 && m.GetMaxLength() < uuidLen {
			return &fieldError{field, fmt.Sprintf("target column %q: %s cannot hold a %d-character UUID", m.GetTarget(), typeName(m), uuidLen), ErrInvalidMapping}
		}
	default:
		return &fieldError{field, fmt.Sprintf("target column %q: type %s cannot hold an identifier (bigint, numeric, or text/uuid)", m.GetTarget(), typeName(m)), ErrInvalidMapping}
	}
	return nil
}

// newIDPlan is the idPlan of m, nil when it has neither new_id nor ref;
// system is the config's system, the default of ref.system.
func newIDPlan(m *commonv1.ColumnMapping, system string) *idPlan {
	switch {
	case m.GetNewId() != nil:
		return &idPlan{rule: "new_id", system: system, entity: m.GetNewId().GetEntity()}
	case m.GetRef() != nil:
		if s := m.GetRef().GetSystem(); s != "" {
			system = s
		}
		return &idPlan{rule: "ref", system: system, entity: m.GetRef().GetEntity()}
	}
	return nil
}

// oldIDs collects one id column's old ids while its column is built; the
// "__old__" column is made from it once every reject of the batch is known.
type oldIDs struct {
	data  []byte
	spans [][2]int // [start, end) into data; start -1 for NULL
}

func (o *oldIDs) null() { o.spans = append(o.spans, [2]int{-1, -1}) }

func (o *oldIDs) add(v []byte) {
	o.spans = append(o.spans, [2]int{len(o.data), len(o.data) + len(v)})
	o.data = append(o.data, v...)
}

// column renders the old ids as a TEXT column named "__old__<target>",
// NULL for every row in rejected.
func (o *oldIDs) column(target string, rejected []byte) *commonv1.Column {
	bld := batch.NewBuilder(oldPrefix+target, tText, len(o.spans))
	bld.Column().Data = make([]byte, 0, len(o.data))
	for i, s := range o.spans {
		if s[0] < 0 || batch.Bit(rejected, i) {
			bld.AppendNull()
			continue
		}
		bld.AppendBytes(o.data[s[0]:s[1]])
	}
	return bld.Column()
}

// applyID fills an id column: each row's source text, cleaned when the
// mapping has a chain, is the old id, and the value is derived from
// (system, entity, old id). A ref's value is provisional: the loader maps it
// through the id map at the end of the job.
func (c *colPlan) applyID(k int, in *commonv1.Batch, byName map[string]*commonv1.Column, rejected []byte, rejects []*commonv1.Reject) (*commonv1.Column, *oldIDs, []*commonv1.Reject, error) {
	src, ok := byName[c.source]
	if !ok {
		return nil, nil, nil, fmt.Errorf("columns[%d].source: %w %q: batch has %s", k, ErrUnknownSourceColumn, c.source, batch.ColumnNames(in))
	}
	n := int(in.GetNumRows())
	bld := batch.NewBuilder(c.target, c.typ, n)
	if batch.Storage(c.typ) == batch.StorageBytes {
		bld.Column().Data = make([]byte, 0, uuidLen*n)
	}
	old := &oldIDs{spans: make([][2]int, 0, n)}
	var text, cleanBuf, num []byte
	reject := func(i int, rule, reason string, raw []byte) {
		bld.AppendNull()
		old.null()
		rejects = append(rejects, &commonv1.Reject{Row: int32(i), Stage: "transform", Rule: rule, Column: c.target,
			Reason: "column " + c.target + ": " + reason, Raw: batch.SafeRaw(raw)})
	}
	for i := 0; i < n; i++ {
		if batch.Bit(rejected, i) {
			bld.AppendNull()
			old.null()
			continue
		}
		if batch.IsUnchanged(src, i) {
			reject(i, ruleUnchanged, "the identifier is derived from "+unchangedReason(c.source), nil)
			continue
		}
		var v []byte
		missing := batch.IsNull(src, i)
		if !missing {
			if batch.Storage(src.GetType()) == batch.StorageBytes {
				v = batch.Bytes(src, i)
			} else {
				text = batch.AppendText(text[:0], src, i)
				v = text
			}
			if c.chain != nil {
				out, err := c.chain.Apply(v, cleanBuf[:0])
				switch {
				case errors.Is(err, clean.ErrNull):
					missing = true
				case err != nil:
					reject(i, "clean", err.Error(), v)
					continue
				default:
					cleanBuf, v = out, out
				}
			}
			missing = missing || len(v) == 0
		}
		if missing {
			if c.id.rule == "new_id" {
				reject(i, "new_id", "no old id to derive a new identifier from", nil)
				continue
			}
			old.null()
			rejects = c.appendMissing(bld, i, rejects)
			continue
		}
		// The old id is stored as text in the id map and the staging table.
		if bytes.IndexByte(v, 0) >= 0 || !utf8.Valid(v) {
			reject(i, c.id.rule, fmt.Sprintf("old id %s is not valid text", batch.QuoteShort(v)), v)
			continue
		}
		old.add(v)
		s := string(v)
		switch c.typ {
		case tInt:
			bld.AppendInt(ident.Int64(c.id.system, c.id.entity, s))
		case tNum:
			num = strconv.AppendInt(num[:0], ident.Int64(c.id.system, c.id.entity, s), 10)
			bld.AppendBytes(num)
		default: // tText, checked at compile time
			bld.AppendString(ident.UUID(c.id.system, c.id.entity, s))
		}
	}
	return bld.Column(), old, rejects, nil
}
