package extract

import (
	"context"
	"database/sql"
	"regexp"
	"strings"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
)

var sqliteNumberRe = regexp.MustCompile(`^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$`)

// sqliteDefault reads a column default as pragma table_info gives it (the
// text of the CREATE TABLE): numbers and single-quoted strings are
// literals, CURRENT_TIMESTAMP the insert time, NULL none, anything else
// (expressions, CURRENT_DATE, blobs) not carried over.
func sqliteDefault(d string) (commonv1.DefaultKind, string) {
	d = strings.TrimSpace(d)
	switch {
	case strings.EqualFold(d, "NULL"):
		return commonv1.DefaultKind_DEFAULT_KIND_UNSPECIFIED, ""
	case strings.EqualFold(d, "CURRENT_TIMESTAMP"):
		return commonv1.DefaultKind_DEFAULT_KIND_CURRENT_TIMESTAMP, ""
	case sqliteNumberRe.MatchString(d):
		return commonv1.DefaultKind_DEFAULT_KIND_LITERAL, d
	case len(d) >= 2 && d[0] == '\'' && d[len(d)-1] == '\'':
		in := d[1 : len(d)-1]
		if strings.Count(in, "'")%2 != 0 || strings.Contains(strings.ReplaceAll(in, "''", ""), "'") {
			return commonv1.DefaultKind_DEFAULT_KIND_OTHER, ""
		}
		return commonv1.DefaultKind_DEFAULT_KIND_LITERAL, strings.ReplaceAll(in, "''", "'")
	}
	return commonv1.DefaultKind_DEFAULT_KIND_OTHER, ""
}

// sqliteIndexes lists the table's CREATE INDEX indexes and the indexes
// behind its UNIQUE constraints (named <table>_<columns>_key, as
// PostgreSQL would, and marked as constraints), columns in index order.
// The primary key's is left out; partial indexes and indexes on
// expressions come back in other with their CREATE INDEX statement.
func sqliteIndexes(ctx context.Context, db *sql.DB, t *sqliteTable) (kept, other []*commonv1.SourceIndex, err error) {
	if t.kind != "table" {
		return nil, nil, nil
	}
	kept, err = sqliteIndexList(ctx, db, t, &other)
	return kept, other, err
}

func sqliteIndexList(ctx context.Context, db *sql.DB, t *sqliteTable, other *[]*commonv1.SourceIndex) ([]*commonv1.SourceIndex, error) {
	definition := func(name string) string {
		var def sql.NullString
		_ = db.QueryRowContext(ctx, `SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?`, name).Scan(&def)
		return def.String
	}
	rows, err := db.QueryContext(ctx, `SELECT name, "unique", origin, partial FROM pragma_index_list(?) ORDER BY name`, t.name)
	if err != nil {
		return nil, err
	}
	type ix struct {
		name    string
		unique  bool
		origin  string
		partial bool
	}
	var list []ix
	for rows.Next() {
		var i ix
		if err := rows.Scan(&i.name, &i.unique, &i.origin, &i.partial); err != nil {
			rows.Close()
			return nil, err
		}
		list = append(list, i)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []*commonv1.SourceIndex
	for _, i := range list {
		if i.origin == "pk" {
			continue
		}
		if i.partial {
			*other = append(*other, &commonv1.SourceIndex{Name: i.name, Unique: i.unique, Definition: definition(i.name)})
			continue
		}
		cols, err := db.QueryContext(ctx, `SELECT cid, name FROM pragma_index_info(?) ORDER BY seqno`, i.name)
		if err != nil {
			return nil, err
		}
		si := &commonv1.SourceIndex{Name: i.name, Unique: i.unique}
		plain := true
		for cols.Next() {
			var cid int
			var name sql.NullString
			if err := cols.Scan(&cid, &name); err != nil {
				cols.Close()
				return nil, err
			}
			if cid < 0 || !name.Valid { // the rowid or an expression
				plain = false
			}
			si.Columns = append(si.Columns, name.String)
		}
		cols.Close()
		if err := cols.Err(); err != nil {
			return nil, err
		}
		if !plain || len(si.Columns) == 0 {
			si.Columns, si.Definition = nil, definition(i.name)
			*other = append(*other, si)
			continue
		}
		if i.origin == "u" {
			si.Name = t.name + "_" + strings.Join(si.Columns, "_") + "_key"
			si.Constraint = true
		}
		out = append(out, si)
	}
	return out, nil
}
