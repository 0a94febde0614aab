package checksum

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// KeyBits is the width of the key hash buckets are cut from.
const KeyBits = 32

// Table is what a query reads.
type Table struct {
	// Ident is the quoted, qualified table.
	Ident string
	// Canon holds the compared columns' canonical values (Canon).
	Canon []Value
	// Key are the key's positions in Canon; none makes the row its own
	// key (a keyless table is compared as a multiset of rows).
	Key []int
	// IntKey is set when the key is one column compared as Integer: its
	// value (mod 2^32) is the key hash, so no md5 of the key is needed and
	// sequential ids spread evenly over the buckets.
	IntKey bool
	// KeyIdent is the quoted key column of an IntKey table.
	KeyIdent string
	// RefExpr renders a row's source reference (RefExpr); rows whose
	// reference is in Exclude are left out (the pipeline quarantined or
	// filtered them, so the target must not have them).
	RefExpr string
	Exclude []string
	// Range, when set, limits the rows to Lo <= key < Hi (an IntKey
	// table's key), so a digest can run as several queries at once.
	Range *Range
}

// Range is a half-open range of an integer key.
type Range struct{ Lo, Hi int64 }

// RefKey is one column of a source reference ("id=7,line=2").
type RefKey struct {
	Name string
	// Hex: the value appears in lower-case hex (MySQL binary keys).
	Hex bool
}

// RefExpr is the SQL of the source reference the extractor writes for a
// row: name=value per key column, joined by ",".
func (d Dialect) RefExpr(keys []RefKey) string {
	parts := make([]string, 0, 2*len(keys))
	for k, c := range keys {
		prefix := c.Name + "="
		if k > 0 {
			prefix = "," + prefix
		}
		v := d.Ident(c.Name)
		switch {
		case c.Hex && d == MySQL:
			v = "LOWER(HEX(" + v + "))"
		case d == MySQL:
			v = "CAST(" + v + " AS CHAR)"
		default:
			v = "CAST(" + v + " AS TEXT)"
		}
		parts = append(parts, strLit(d, prefix), v)
	}
	return d.concat(parts)
}

func strLit(d Dialect, s string) string {
	if d == MySQL {
		s = strings.ReplaceAll(s, `\`, `\\`)
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

func (d Dialect) concat(parts []string) string {
	if len(parts) == 1 {
		return parts[0]
	}
	if d == MySQL {
		return "CONCAT(" + strings.Join(parts, ", ") + ")"
	}
	return "(" + strings.Join(parts, " || ") + ")"
}

// join is the one text a row's (or a key's) values hash as: joined by ",",
// NULL as "~", a text value prefixed by its length in bytes. CONCAT_WS and
// concat_ws skip a NULL argument, so a NULL text adds "~" alone, as the
// spelled-out form for SQLite does.
func (d Dialect) join(vals []Value) string {
	args := make([]string, 0, 2*len(vals))
	for _, v := range vals {
		e := v.Expr
		switch {
		case v.Text && d == SQLite:
			args = append(args, d.orTilde("length(CAST("+e+" AS BLOB)) || ',' || "+e, v.NotNull))
		case v.Text && d == MySQL:
			args = append(args, d.orTilde("LENGTH("+e+")", v.NotNull), e)
		case v.Text:
			args = append(args, d.orTilde("octet_length("+e+")::text", v.NotNull), e)
		default:
			args = append(args, d.orTilde(e, v.NotNull))
		}
	}
	switch d {
	case MySQL:
		return "CONCAT_WS(',', " + strings.Join(args, ", ") + ")"
	case SQLite:
		return strings.Join(args, " || ',' || ")
	}
	return "concat_ws(',', " + strings.Join(args, ", ") + ")"
}

// orTilde is e with NULL read as "~"; a value never NULL needs no call.
func (d Dialect) orTilde(e string, notNull bool) string {
	switch {
	case notNull:
		return e
	case d == MySQL:
		return "IFNULL(" + e + ", '~')"
	}
	return "coalesce(" + e + ", '~')"
}

func (d Dialect) md5(e string) string {
	switch d {
	case MySQL:
		return "MD5(" + e + ")"
	case SQLite:
		return "cutover_md5(" + e + ")"
	}
	return "md5(" + e + ")"
}

// hex32 is the unsigned integer of 8 hex digits.
func (d Dialect) hex32(e string) string {
	switch d {
	case MySQL:
		return "CAST(CONV(" + e + ", 16, 10) AS UNSIGNED)"
	case SQLite:
		return "cutover_hex32(" + e + ")"
	}
	return "('x' || " + e + ")::bit(32)::bigint"
}

func (d Dialect) text(e string) string {
	switch d {
	case MySQL:
		return "CAST(" + e + " AS CHAR)"
	case SQLite:
		return "CAST(" + e + " AS TEXT)"
	}
	return "(" + e + ")::text"
}

// source is the inner query: m (the row's md5), kx (the key: its md5, or
// its value for an IntKey table; none for a keyless one) and, with values,
// the canonical values v0… of the rows not excluded.
func (d Dialect) source(t Table, values bool) (string, []any) {
	var sb strings.Builder
	sb.WriteString("SELECT " + d.md5(d.join(t.Canon)) + " AS m")
	switch {
	case t.IntKey:
		sb.WriteString(", t." + t.KeyIdent + " AS kx")
	case len(t.Key) > 0:
		keys := make([]Value, len(t.Key))
		for i, pos := range t.Key {
			keys[i] = t.Canon[pos]
		}
		sb.WriteString(", " + d.md5(d.join(keys)) + " AS kx")
	}
	if values {
		for i, v := range t.Canon {
			fmt.Fprintf(&sb, ", %s AS v%d", v.Expr, i)
		}
	}
	sb.WriteString(" FROM " + t.Ident + " t")
	where, args := d.where(t)
	sb.WriteString(where)
	return sb.String(), args
}

// keyHash is the 32-bit key hash over the inner query's columns.
func (d Dialect) keyHash(t Table) string {
	switch {
	case t.IntKey:
		return "((kx % 4294967296 + 4294967296) % 4294967296)"
	case len(t.Key) > 0:
		return d.hex32("substr(kx, 1, 8)")
	}
	return d.hex32("substr(m, 17, 8)")
}

// keyText is the key's identity in a listing.
func (d Dialect) keyText(t Table) string {
	switch {
	case t.IntKey:
		return d.text("kx")
	case len(t.Key) > 0:
		return "kx"
	}
	return "m"
}

// where leaves out the excluded rows and those outside the range.
func (d Dialect) where(t Table) (string, []any) {
	var conds []string
	var args []any
	if t.Range != nil {
		k := "t." + t.KeyIdent
		conds = append(conds, fmt.Sprintf("%s >= %d AND %s < %d", k, t.Range.Lo, k, t.Range.Hi))
	}
	if len(t.Exclude) > 0 && t.RefExpr != "" {
		switch d {
		case MySQL:
			list, _ := json.Marshal(t.Exclude)
			conds = append(conds, "CAST("+t.RefExpr+" AS BINARY) NOT IN (SELECT CAST(r AS BINARY) FROM JSON_TABLE(?, '$[*]' COLUMNS (r TEXT PATH '$')) j)")
			args = append(args, string(list))
		case SQLite:
			list, _ := json.Marshal(t.Exclude)
			conds = append(conds, t.RefExpr+" NOT IN (SELECT value FROM json_each(?))")
			args = append(args, string(list))
		default:
			conds = append(conds, t.RefExpr+" NOT IN (SELECT unnest($1::text[]))")
			args = append(args, t.Exclude)
		}
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// bucket is the bucket at bits bits: the key hash's low bits.
func (d Dialect) bucket(t Table, bits int) string {
	if bits <= 0 {
		return "0"
	}
	return "(" + d.keyHash(t) + " % " + strconv.FormatInt(int64(1)<<bits, 10) + ")"
}

func (d Dialect) inPrefixes(t Table, prefixBits int, prefixes []int64) string {
	if prefixBits <= 0 {
		return ""
	}
	list := make([]string, len(prefixes))
	for k, p := range prefixes {
		list[k] = strconv.FormatInt(p, 10)
	}
	return " WHERE " + d.bucket(t, prefixBits) + " IN (" + strings.Join(list, ", ") + ")"
}

// Digest is the query of the per-bucket digests of t's rows: bucket, row
// count and the sum modulo 2^64 of the rows' 60-bit hashes (md5's first 15
// hex digits), all as text; buckets are the key hash's low bits bits, of
// the rows whose low prefixBits are one of prefixes (prefixBits 0: every
// row). The row's md5 is used once, so a database that inlines the inner
// query still computes it once per row.
func (d Dialect) Digest(t Table, prefixBits int, prefixes []int64, bits int) (string, []any) {
	src, args := d.source(t, false)
	var sum string
	switch d {
	case MySQL:
		sum = "CAST(MOD(SUM(CAST(CONV(SUBSTR(m, 1, 15), 16, 10) AS UNSIGNED)), 18446744073709551616) AS CHAR)"
	case SQLite:
		sum = "cutover_hsum(m)"
	default:
		sum = "(sum(('x' || substr(m, 1, 15))::bit(60)::bigint) % 18446744073709551616)::text"
	}
	q := "SELECT " + d.text("b") + ", " + d.text("count(*)") + ", " + sum +
		" FROM (SELECT " + d.bucket(t, bits) + " AS b, m FROM (" + src + ") s" + d.inPrefixes(t, prefixBits, prefixes) + ") x GROUP BY b"
	return q, args
}

// Rows is the query of the rows whose key hash's low prefixBits are one
// of prefixes: key identity, row hash (md5 hex) and canonical values.
func (d Dialect) Rows(t Table, prefixBits int, prefixes []int64) (string, []any) {
	src, args := d.source(t, true)
	cols := []string{d.keyText(t), "m"}
	for i := range t.Canon {
		cols = append(cols, "v"+strconv.Itoa(i))
	}
	return "SELECT " + strings.Join(cols, ", ") + " FROM (" + src + ") s" + d.inPrefixes(t, prefixBits, prefixes), args
}

// Group is a grouping expression over a canonical value: the whole value,
// or its first Prefix characters (10 of a timestamp: its day).
type Group struct {
	Pos    int
	Prefix int
}

// Totals is the query of the row count and the sums of the numeric
// expressions sums, per group of canonical values, as text.
func (d Dialect) Totals(t Table, groups []Group, sums []string) (string, []any) {
	var inner, outer, by []string
	for k, g := range groups {
		e := t.Canon[g.Pos].Expr
		if g.Prefix > 0 {
			e = "substr(" + e + ", 1, " + strconv.Itoa(g.Prefix) + ")"
		}
		inner = append(inner, fmt.Sprintf("%s AS g%d", e, k))
		outer = append(outer, fmt.Sprintf("g%d", k))
		by = append(by, fmt.Sprintf("g%d", k))
	}
	outer = append(outer, d.text("count(*)"))
	for k, e := range sums {
		inner = append(inner, fmt.Sprintf("%s AS s%d", e, k))
		outer = append(outer, d.text(fmt.Sprintf("sum(s%d)", k)))
	}
	if len(inner) == 0 {
		inner = append(inner, "1 AS one")
	}
	where, args := d.where(t)
	q := "SELECT " + strings.Join(outer, ", ") + " FROM (SELECT " + strings.Join(inner, ", ") + " FROM " + t.Ident + " t" + where + ") x"
	if len(by) > 0 {
		q += " GROUP BY " + strings.Join(by, ", ")
	}
	return q, args
}

// Sum is the numeric expression a column is summed through: its value,
// exact where the dialect sums it exactly.
func (d Dialect) Sum(c Column) (string, bool, error) {
	x := d.Ident(c.Name)
	switch c.Class {
	case ClassInt, ClassBool:
		return x, true, nil
	case ClassDecimal:
		if d == SQLite {
			// SQLite keeps decimals as doubles: their sum is approximate.
			return x, false, nil
		}
		return x, true, nil
	case ClassFloat:
		return x, false, nil
	}
	return "", false, fmt.Errorf("a %s cannot be summed", c.Class)
}

// Bounds is the query of an IntKey table's smallest and largest key, as
// text (NULLs when it is empty).
func (d Dialect) Bounds(t Table) string {
	k := "t." + t.KeyIdent
	return "SELECT " + d.text("min("+k+")") + ", " + d.text("max("+k+")") + " FROM " + t.Ident + " t"
}

// DigestParts is how many queries at once a digest of an IntKey table
// runs as, on either side, each over a key range: a MySQL query runs on
// one core.
const DigestParts = 4

// Parts are the key ranges a digest of an IntKey table runs over, from its
// Bounds (text, empty for NULL): DigestParts ranges of about equal width,
// or the one nil range (the whole table) when there is nothing to split.
func Parts(lo, hi string) []*Range {
	l, err1 := strconv.ParseInt(lo, 10, 64)
	h, err2 := strconv.ParseInt(hi, 10, 64)
	rs := split(l, h, DigestParts)
	if err1 != nil || err2 != nil || len(rs) == 0 {
		return []*Range{nil}
	}
	out := make([]*Range, len(rs))
	for i := range rs {
		out[i] = &rs[i]
	}
	return out
}

// split cuts [lo, hi] into at most n ranges of about equal width.
func split(lo, hi int64, n int) []Range {
	if n < 2 || hi < lo || hi == 1<<63-1 {
		return nil // one query: nothing to split, or no end past the last key
	}
	width := (hi-lo)/int64(n) + 1
	var out []Range
	for start := lo; start <= hi; start += width {
		end := start + width
		if end > hi || end < start { // the last (or past MaxInt64)
			out = append(out, Range{Lo: start, Hi: hi + 1})
			break
		}
		out = append(out, Range{Lo: start, Hi: end})
	}
	return out
}
