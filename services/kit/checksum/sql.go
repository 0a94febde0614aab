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
	// Canon holds the compared columns' canonical expressions (Canon).
	Canon []string
	// Key are the key's positions in Canon; none makes the row its own
	// key (a keyless table is compared as a multiset of rows).
	Key []int
	// RefExpr renders a row's source reference (RefExpr); rows whose
	// reference is in Exclude are left out (the pipeline quarantined or
	// filtered them, so the target must not have them).
	RefExpr string
	Exclude []string
}

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

// lp is e length-prefixed in bytes, NULL as "~".
func (d Dialect) lp(e string) string {
	switch d {
	case MySQL:
		return "IFNULL(CONCAT(LENGTH(" + e + "), ':', " + e + "), '~')"
	case SQLite:
		return "coalesce(length(CAST(" + e + " AS BLOB)) || ':' || " + e + ", '~')"
	}
	return "coalesce(octet_length(" + e + ")::text || ':' || " + e + ", '~')"
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

func (d Dialect) shift(e string, bits int) string {
	if bits <= 0 {
		return "0"
	}
	div := strconv.FormatInt(int64(1)<<(KeyBits-bits), 10)
	if d == MySQL {
		return "(" + e + " DIV " + div + ")"
	}
	return "(" + e + " / " + div + ")"
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

// source is the inner query: k (the key's md5), m (the row's md5) and,
// with values, the canonical values v0… of the rows not excluded.
func (d Dialect) source(t Table, values bool) (string, []any) {
	lps := make([]string, len(t.Canon))
	for k, e := range t.Canon {
		lps[k] = d.lp(e)
	}
	m := d.md5(d.concat(lps))
	k := m
	if len(t.Key) > 0 {
		keys := make([]string, len(t.Key))
		for i, pos := range t.Key {
			keys[i] = lps[pos]
		}
		k = d.md5(d.concat(keys))
	}
	var sb strings.Builder
	sb.WriteString("SELECT " + k + " AS k, " + m + " AS m")
	if values {
		for i, e := range t.Canon {
			fmt.Fprintf(&sb, ", %s AS v%d", e, i)
		}
	}
	sb.WriteString(" FROM " + t.Ident + " t")
	where, args := d.exclude(t)
	sb.WriteString(where)
	return sb.String(), args
}

func (d Dialect) exclude(t Table) (string, []any) {
	if len(t.Exclude) == 0 || t.RefExpr == "" {
		return "", nil
	}
	switch d {
	case MySQL:
		list, _ := json.Marshal(t.Exclude)
		return " WHERE CAST(" + t.RefExpr + " AS BINARY) NOT IN (SELECT CAST(r AS BINARY) FROM JSON_TABLE(?, '$[*]' COLUMNS (r TEXT PATH '$')) j)", []any{string(list)}
	case SQLite:
		list, _ := json.Marshal(t.Exclude)
		return " WHERE " + t.RefExpr + " NOT IN (SELECT value FROM json_each(?))", []any{string(list)}
	}
	return " WHERE " + t.RefExpr + " NOT IN (SELECT unnest($1::text[]))", []any{t.Exclude}
}

func (d Dialect) keyHash() string { return d.hex32("substr(k, 1, 8)") }

func (d Dialect) inPrefixes(prefixBits int, prefixes []int64) string {
	if prefixBits <= 0 {
		return ""
	}
	list := make([]string, len(prefixes))
	for k, p := range prefixes {
		list[k] = strconv.FormatInt(p, 10)
	}
	return " WHERE " + d.shift(d.keyHash(), prefixBits) + " IN (" + strings.Join(list, ", ") + ")"
}

// Digest is the query of the per-bucket digests of t's rows: bucket, row
// count and the sums of the rows' two hash halves, all as text; buckets
// are the key hash's top bits bits, of the rows whose top prefixBits are
// one of prefixes (prefixBits 0: every row).
func (d Dialect) Digest(t Table, prefixBits int, prefixes []int64, bits int) (string, []any) {
	src, args := d.source(t, false)
	q := "SELECT " + d.text("b") + ", " + d.text("count(*)") + ", " + d.text("sum(h1)") + ", " + d.text("sum(h2)") +
		" FROM (SELECT " + d.shift(d.keyHash(), bits) + " AS b, " + d.hex32("substr(m, 1, 8)") + " AS h1, " + d.hex32("substr(m, 9, 8)") + " AS h2" +
		" FROM (" + src + ") s" + d.inPrefixes(prefixBits, prefixes) + ") x GROUP BY b"
	return q, args
}

// Rows is the query of the rows whose key hash's top prefixBits are one of
// prefixes: key hash (md5 hex), row hash (md5 hex) and canonical values.
func (d Dialect) Rows(t Table, prefixBits int, prefixes []int64) (string, []any) {
	src, args := d.source(t, true)
	cols := []string{"k", "m"}
	for i := range t.Canon {
		cols = append(cols, "v"+strconv.Itoa(i))
	}
	return "SELECT " + strings.Join(cols, ", ") + " FROM (" + src + ") s" + d.inPrefixes(prefixBits, prefixes), args
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
		e := t.Canon[g.Pos]
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
	where, args := d.exclude(t)
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
