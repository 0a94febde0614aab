// Package checksum writes the SQL with which a source database and the
// target database each hash their own rows, for the reconciliation that does
// not trust the pipeline (LoaderService.ReconcileTable's independent level,
// ExtractorService.ChecksumSource).
//
// Every compared value is rendered by the database that holds it into one
// canonical text per kind (Kind: what the target column is), so that a
// value the pipeline converted correctly reads the same on both sides and a
// wrong cast, a lost digit or a shifted zone does not. A row hashes to md5
// of its values joined by "," (Value: NULL is "~", a text is prefixed by
// its length in bytes, which makes the join unambiguous; no other kind's
// text holds a "," or reads "~"); a key likewise. A bucket is the low bits
// of the key hash, and its digest is its row count and the sum of its rows'
// hashes (sums add across sources and need no bitwise aggregate, which
// SQLite lacks). The forms are what each database renders cheaply (its own
// cast to text where that is already canonical): the digest is one pass
// over every row on both sides. One implementation for the three dialects
// keeps the canonical forms in one place.
package checksum

import (
	"fmt"
	"strings"

	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
)

// Dialect is the SQL a database speaks.
type Dialect int

const (
	Postgres Dialect = iota + 1
	MySQL
	SQLite
)

func (d Dialect) String() string {
	switch d {
	case Postgres:
		return "PostgreSQL"
	case MySQL:
		return "MySQL"
	case SQLite:
		return "SQLite"
	}
	return "unknown"
}

// Kind is the canonical form a column is compared in, chosen by the target
// column's type.
type Kind int

const (
	KindNone Kind = iota
	// Integer: decimal digits, "-" for negatives.
	Integer
	// Decimal: exact decimal, trailing fractional zeros and a trailing
	// point removed ("12.30" → "12.3", "5.00" → "5").
	Decimal
	// Text: the characters, UTF-8.
	Text
	// Boolean: "true" or "false".
	Boolean
	// Date: YYYY-MM-DD.
	Date
	// Timestamp: wall time, YYYY-MM-DD HH:MM:SS[.f], the fraction (at
	// most Frac digits) without trailing zeros, none when it is zero.
	Timestamp
	// TimestampTZ: the instant in UTC, as Timestamp.
	TimestampTZ
	// UUID: lower-case hex with hyphens.
	UUID
	// Bytes: lower-case hex.
	Bytes
)

var kindNames = map[Kind]string{Integer: "integer", Decimal: "decimal", Text: "text", Boolean: "boolean", Date: "date",
	Timestamp: "timestamp", TimestampTZ: "timestamptz", UUID: "uuid", Bytes: "bytes"}

func (k Kind) String() string { return kindNames[k] }

// Class is what a source column holds, as its database types it.
type Class int

const (
	ClassOther Class = iota
	ClassInt
	ClassDecimal
	ClassFloat
	ClassText
	ClassBytes
	ClassBool
	ClassDate
	// ClassDateTime is a zone-less date and time (MySQL DATETIME,
	// PostgreSQL timestamp, SQLite text).
	ClassDateTime
	// ClassInstant is a point in time (PostgreSQL timestamptz, MySQL
	// TIMESTAMP read in the session zone).
	ClassInstant
	ClassUUID
)

// Column is one compared column on one side.
type Column struct {
	// Name is the column's name in its table.
	Name  string
	Kind  Kind
	Class Class
	// Frac is the fractional second digits of time kinds: 6, or 3 where
	// the source keeps milliseconds (SQLite).
	Frac int
	// Zone is the IANA zone of zone-less values compared as TimestampTZ;
	// empty is UTC.
	Zone string
	// ZeroDates: MySQL zero dates ('0000-00-00', a zero month or day)
	// read as NULL, as the pipeline's zero-date policy loads them.
	ZeroDates bool
	// UTF8: a MySQL text column's bytes are UTF-8 already (utf8mb4,
	// utf8mb3, ascii), so it needs no conversion before hashing.
	UTF8 bool
	// NotNull: the column is declared NOT NULL, so its canonical text
	// needs no NULL marker (unless a zero date reads as NULL).
	NotNull bool
	// NoFraction: the column's declared type keeps no fractional digits
	// (DECIMAL(p,0), DATETIME(0), numeric(p,0)), so its text has no
	// trailing zeros to trim. Both cost a function call per row, and
	// the digest is one pass over every row.
	NoFraction bool
}

// Value is a column's canonical text as one side's SQL renders it.
type Value struct {
	Expr string
	// Text values can hold anything, so the row's join prefixes them by
	// their length.
	Text bool
	// NotNull: the expression is never NULL.
	NotNull bool
}

func utc(zone string) bool {
	return zone == "" || zone == "UTC" || zone == "Etc/UTC" || zone == "+00:00"
}

// Ident quotes a name.
func (d Dialect) Ident(name string) string {
	if d == MySQL {
		return "`" + strings.ReplaceAll(name, "`", "``") + "`"
	}
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// Canon is the SQL expression of c's canonical text (NULL for NULL), or
// why c cannot be rendered canonically in this dialect.
func (d Dialect) Canon(c Column) (Value, error) {
	x := d.Ident(c.Name)
	var e string
	err := fmt.Errorf("unknown dialect")
	switch d {
	case Postgres:
		e, err = pgCanon(x, c)
	case MySQL:
		e, err = myCanon(x, c)
	case SQLite:
		e, err = liteCanon(x, c)
	}
	// A MySQL zero date reads as NULL from a NOT NULL column.
	zero := d == MySQL && c.ZeroDates && (c.Class == ClassDate || c.Class == ClassDateTime || c.Class == ClassInstant)
	return Value{Expr: e, Text: c.Kind == Text, NotNull: c.NotNull && !zero}, err
}

func cannot(c Column, what string) error {
	return fmt.Errorf("a %s compared as %s has no canonical text in SQL here", what, c.Kind)
}

var classNames = map[Class]string{ClassOther: "value of an untranslated type", ClassInt: "integer", ClassDecimal: "decimal",
	ClassFloat: "floating-point number (no exact text that both databases share)", ClassText: "text", ClassBytes: "binary string", ClassBool: "boolean",
	ClassDate: "date", ClassDateTime: "date and time", ClassInstant: "timestamp with zone", ClassUUID: "uuid"}

func (c Class) String() string { return classNames[c] }

func pgCanon(x string, c Column) (string, error) {
	switch c.Kind {
	case Integer:
		if c.Class == ClassInt {
			return x + "::text", nil
		}
	case Decimal:
		switch c.Class {
		case ClassInt:
			return x + "::text", nil
		case ClassDecimal:
			if c.NoFraction {
				return x + "::text", nil
			}
			return "trim_scale(" + x + ")::text", nil
		}
	case Text:
		switch c.Class {
		case ClassText, ClassInt, ClassDecimal, ClassUUID, ClassOther:
			return x + "::text", nil
		}
	case Boolean:
		if c.Class == ClassBool {
			return "CASE WHEN " + x + " IS NULL THEN NULL WHEN " + x + " THEN 'true' ELSE 'false' END", nil
		}
	case Date:
		switch c.Class {
		case ClassDate, ClassDateTime:
			return x + "::date::text", nil
		case ClassInstant:
			return "(" + x + " AT TIME ZONE 'UTC')::date::text", nil
		}
	case Timestamp, TimestampTZ:
		// The session's DateStyle is ISO (PostgresSettings): a
		// timestamp's own text is the canonical form.
		var ts string
		switch {
		case c.Class == ClassInstant:
			ts = "(" + x + " AT TIME ZONE 'UTC')"
		case c.Class == ClassDate || c.Class == ClassDateTime:
			ts = x + "::timestamp"
			if c.Kind == TimestampTZ && !utc(c.Zone) {
				ts = "((" + ts + " AT TIME ZONE " + pgQuote(c.Zone) + ") AT TIME ZONE 'UTC')"
			}
		default:
			return "", cannot(c, c.Class.String())
		}
		if c.Frac == 3 {
			ts = "date_trunc('milliseconds', " + ts + ")"
		}
		return ts + "::text", nil
	case UUID:
		switch c.Class {
		case ClassUUID, ClassText:
			return "lower(" + x + "::text)", nil
		}
	case Bytes:
		if c.Class == ClassBytes {
			return "encode(" + x + ", 'hex')", nil
		}
	}
	return "", cannot(c, c.Class.String())
}

func pgQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func myTrim(s string) string {
	return "CASE WHEN LOCATE('.', " + s + ") > 0 THEN TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM " + s + ")) ELSE " + s + " END"
}

func myCanon(x string, c Column) (string, error) {
	zero := func(e string) string {
		if !c.ZeroDates {
			return e
		}
		return "CASE WHEN MONTH(" + x + ") = 0 OR DAY(" + x + ") = 0 THEN NULL ELSE " + e + " END"
	}
	trim := myTrim
	if c.NoFraction {
		trim = func(s string) string { return s }
	}
	// A number or a time in CONCAT_WS is its CAST AS CHAR: the casts are
	// left out where the cast's text is the canonical one.
	switch c.Kind {
	case Integer:
		if c.Class == ClassInt {
			return x, nil
		}
	case Decimal:
		switch c.Class {
		case ClassInt:
			return x, nil
		case ClassDecimal:
			return trim(x), nil
		}
	case Text:
		switch c.Class {
		case ClassText, ClassUUID:
			if c.UTF8 {
				return x, nil
			}
			return "CONVERT(" + x + " USING utf8mb4)", nil
		case ClassInt:
			return "CAST(" + x + " AS CHAR)", nil
		}
	case Boolean:
		if c.Class == ClassBool || c.Class == ClassInt {
			return "CASE WHEN " + x + " IS NULL THEN NULL WHEN " + x + " <> 0 THEN 'true' ELSE 'false' END", nil
		}
	case Date:
		switch c.Class {
		case ClassDate:
			return zero("CAST(" + x + " AS CHAR)"), nil
		case ClassDateTime:
			return zero("CAST(CAST(" + x + " AS DATE) AS CHAR)"), nil
		case ClassInstant:
			return "CAST(CAST(CONVERT_TZ(" + x + ", @@session.time_zone, '+00:00') AS DATE) AS CHAR)", nil
		}
	case Timestamp, TimestampTZ:
		switch c.Class {
		case ClassInstant:
			// The session zone is the source spec's time_zone: convert
			// the wall time it shows back to UTC.
			return trim("CAST(CONVERT_TZ(" + x + ", @@session.time_zone, '+00:00') AS CHAR)"), nil
		case ClassDate, ClassDateTime:
			v := x
			if c.Class == ClassDate {
				v = "CAST(" + x + " AS DATETIME)"
			}
			if c.Kind == TimestampTZ && !utc(c.Zone) {
				v = "CONVERT_TZ(" + v + ", " + pgQuote(c.Zone) + ", '+00:00')"
			}
			if v == x && c.NoFraction {
				return zero(x), nil // as CAST(x AS CHAR) in a CONCAT_WS
			}
			return zero(trim("CAST(" + v + " AS CHAR)")), nil
		}
	case UUID:
		if c.Class == ClassText || c.Class == ClassUUID {
			return "LOWER(CONVERT(" + x + " USING utf8mb4))", nil
		}
	case Bytes:
		if c.Class == ClassBytes {
			return "LOWER(HEX(" + x + "))", nil
		}
	}
	return "", cannot(c, c.Class.String())
}

func liteCanon(x string, c Column) (string, error) {
	null := func(e string) string { return "CASE WHEN " + x + " IS NULL THEN NULL ELSE " + e + " END" }
	switch c.Kind {
	case Integer:
		if c.Class == ClassInt || c.Class == ClassDecimal {
			return null("CAST(CAST(" + x + " AS INTEGER) AS TEXT)"), nil
		}
	case Decimal:
		switch c.Class {
		case ClassInt, ClassDecimal:
			s := "CAST(" + x + " AS TEXT)"
			return "CASE WHEN instr(" + s + ", '.') > 0 THEN rtrim(rtrim(" + s + ", '0'), '.') ELSE " + s + " END", nil
		}
	case Text:
		switch c.Class {
		case ClassText, ClassInt, ClassUUID, ClassOther:
			return "CAST(" + x + " AS TEXT)", nil
		}
	case Boolean:
		if c.Class == ClassBool || c.Class == ClassInt {
			return null("CASE WHEN lower(CAST(" + x + " AS TEXT)) IN ('1', 't', 'true', 'y', 'yes', 'on') THEN 'true' ELSE 'false' END"), nil
		}
	case Date:
		switch c.Class {
		case ClassDate, ClassDateTime, ClassText:
			return "date(" + x + ")", nil
		}
	case Timestamp, TimestampTZ:
		if c.Kind == TimestampTZ && !utc(c.Zone) {
			return "", fmt.Errorf("SQLite has no time zone rules to read %s in %s", c.Name, c.Zone)
		}
		switch c.Class {
		case ClassDate, ClassDateTime, ClassText:
			// %f is always SS.SSS: the "." stops the zeros' trim.
			return "rtrim(rtrim(strftime('%Y-%m-%d %H:%M:%f', " + x + "), '0'), '.')", nil
		}
	case UUID:
		if c.Class == ClassText || c.Class == ClassUUID {
			return "lower(CAST(" + x + " AS TEXT))", nil
		}
	case Bytes:
		if c.Class == ClassBytes {
			return "lower(hex(" + x + "))", nil
		}
	}
	return "", cannot(c, c.Class.String())
}

// Frac is the fractional second digits a source of this dialect keeps.
func (d Dialect) Frac() int {
	if d == SQLite {
		return 3
	}
	return 6
}

// PostgresClass is the class of a PostgreSQL column by its base type name
// (domains resolved).
func PostgresClass(base string) Class {
	switch base {
	case "int2", "int4", "int8":
		return ClassInt
	case "numeric":
		return ClassDecimal
	case "float4", "float8":
		return ClassFloat
	case "text", "varchar", "bpchar", "name", "citext":
		return ClassText
	case "bytea":
		return ClassBytes
	case "bool":
		return ClassBool
	case "date":
		return ClassDate
	case "timestamp":
		return ClassDateTime
	case "timestamptz":
		return ClassInstant
	case "uuid":
		return ClassUUID
	}
	return ClassOther
}

// KindOf is the kind a target column of this PostgreSQL base type is
// compared in, or why it is not compared.
func KindOf(base string) (Kind, error) {
	switch base {
	case "int2", "int4", "int8":
		return Integer, nil
	case "numeric":
		return Decimal, nil
	case "text", "varchar", "bpchar", "citext":
		return Text, nil
	case "bool":
		return Boolean, nil
	case "date":
		return Date, nil
	case "timestamp":
		return Timestamp, nil
	case "timestamptz":
		return TimestampTZ, nil
	case "uuid":
		return UUID, nil
	case "bytea":
		return Bytes, nil
	case "float4", "float8":
		return KindNone, fmt.Errorf("floating-point values have no exact text that both databases share")
	}
	return KindNone, fmt.Errorf("type %s has no canonical text here", base)
}

// The kinds as ExtractorService.ChecksumSource names them.
var protoKinds = map[Kind]extractorv1.ChecksumKind{
	Integer: extractorv1.ChecksumKind_CHECKSUM_KIND_INTEGER, Decimal: extractorv1.ChecksumKind_CHECKSUM_KIND_DECIMAL,
	Text: extractorv1.ChecksumKind_CHECKSUM_KIND_TEXT, Boolean: extractorv1.ChecksumKind_CHECKSUM_KIND_BOOLEAN,
	Date: extractorv1.ChecksumKind_CHECKSUM_KIND_DATE, Timestamp: extractorv1.ChecksumKind_CHECKSUM_KIND_TIMESTAMP,
	TimestampTZ: extractorv1.ChecksumKind_CHECKSUM_KIND_TIMESTAMPTZ, UUID: extractorv1.ChecksumKind_CHECKSUM_KIND_UUID,
	Bytes: extractorv1.ChecksumKind_CHECKSUM_KIND_BYTES,
}

// Proto is k as the RPC names it.
func (k Kind) Proto() extractorv1.ChecksumKind { return protoKinds[k] }

// KindFromProto is the kind the RPC names; KindNone for none.
func KindFromProto(p extractorv1.ChecksumKind) Kind {
	for k, v := range protoKinds {
		if v == p {
			return k
		}
	}
	return KindNone
}

// PostgresSettings pins, for the transaction it runs in, what the
// PostgreSQL forms read: a date's and a timestamp's own text is canonical
// only in DateStyle ISO.
const PostgresSettings = "SELECT set_config('DateStyle', 'ISO, YMD', true), set_config('TimeZone', 'UTC', true)"
