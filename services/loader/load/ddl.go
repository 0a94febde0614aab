package load

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	"github.com/jackc/pgx/v5"
)

// pgTypeRe admits the type names the extractors produce ("numeric(20,0)",
// "timestamp(3) without time zone", "character varying(40)", "text[]") and
// nothing that could smuggle SQL into a CREATE TABLE.
var pgTypeRe = regexp.MustCompile(`^[a-z][a-z0-9_]*( [a-z][a-z0-9_]*)*(\(\d{1,4}(,\s?\d{1,4})?\))?( with(out)? time zone)?(\[\])*$`)

// CreateTables creates the schema and each table that does not exist yet,
// in one transaction, and answers with the statements it ran.
func (s *Service) CreateTables(ctx context.Context, req *loaderv1.CreateTablesRequest) (*loaderv1.CreateTablesResponse, error) {
	resp, err := s.createTables(ctx, req)
	return resp, toStatus(err)
}

func (s *Service) createTables(ctx context.Context, req *loaderv1.CreateTablesRequest) (*loaderv1.CreateTablesResponse, error) {
	t, schema, err := s.target(ctx, req.GetTarget())
	if err != nil {
		return nil, err
	}
	var stmts, notes []string
	stmts = append(stmts, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize())
	enums := map[string][]string{} // enum types made by this request
	for i, def := range req.GetTables() {
		if def.GetName() == "" || len(def.GetColumns()) == 0 {
			return nil, fmt.Errorf("%w: tables[%d]: a name and at least one column are required", ErrInvalidArgument, i)
		}
		for j, c := range def.GetColumns() {
			typ := strings.ToLower(strings.TrimSpace(c.GetPgType()))
			if c.GetName() == "" || !pgTypeRe.MatchString(typ) && c.GetEnumType() == "" {
				return nil, fmt.Errorf("%w: tables[%d].columns[%d]: column %q has an unusable type %q", ErrInvalidArgument, i, j, c.GetName(), c.GetPgType())
			}
			if err := checkEnum(c); err != nil {
				return nil, fmt.Errorf("%w: tables[%d].columns[%d]: column %q: %v", ErrInvalidArgument, i, j, c.GetName(), err)
			}
		}
		// An existing table is never touched (no defaults or triggers are
		// added to it), except for missing columns with add_columns.
		var exists bool
		if err := t.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = $1 AND c.relname = $2)`, schema, def.GetName()).Scan(&exists); err != nil {
			return nil, t.dbErr("create tables", err)
		}
		if exists && req.GetAddColumns() {
			st, err := addColumnsDDL(ctx, t.pool, schema, def)
			if err != nil {
				return nil, t.dbErr("create tables", err)
			}
			stmts = append(stmts, st...)
		}
		if exists {
			continue
		}
		st, nt, err := tableDDL(ctx, t.pool, schema, def, enums)
		if errors.Is(err, ErrTargetMismatch) {
			return nil, err
		}
		if err != nil {
			return nil, t.dbErr("create tables", err)
		}
		stmts = append(stmts, st...)
		notes = append(notes, nt...)
	}
	tx, err := t.pool.Begin(ctx)
	if err != nil {
		return nil, t.dbErr("create tables", err)
	}
	defer tx.Rollback(ctx)
	var ran []string
	for _, st := range stmts {
		if _, err := tx.Exec(ctx, st); err != nil {
			return nil, t.dbErr("create tables: "+firstLine(st), err)
		}
		ran = append(ran, st)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, t.dbErr("create tables", err)
	}
	// What the source had and the target does not, as comments after the
	// statements (they are not run).
	ran = append(ran, notes...)
	return &loaderv1.CreateTablesResponse{Statements: ran}, nil
}

// AddConstraints adds each primary or foreign key that the table does not
// have yet (by name), in one transaction. Foreign keys are added NOT VALID
// and then validated, so a violation names the constraint and the rows stay.
func (s *Service) AddConstraints(ctx context.Context, req *loaderv1.AddConstraintsRequest) (*loaderv1.AddConstraintsResponse, error) {
	resp, err := s.addConstraints(ctx, req)
	return resp, toStatus(err)
}

func (s *Service) addConstraints(ctx context.Context, req *loaderv1.AddConstraintsRequest) (*loaderv1.AddConstraintsResponse, error) {
	t, schema, err := s.target(ctx, req.GetTarget())
	if err != nil {
		return nil, err
	}
	tx, err := t.pool.Begin(ctx)
	if err != nil {
		return nil, t.dbErr("add constraints", err)
	}
	defer tx.Rollback(ctx)
	var ran []string
	for i, c := range req.GetConstraints() {
		if c.GetTable() == "" || c.GetName() == "" || len(c.GetColumns()) == 0 {
			return nil, fmt.Errorf("%w: constraints[%d]: table, name and columns are required", ErrInvalidArgument, i)
		}
		if c.GetReferencedTable() != "" && len(c.GetReferencedColumns()) != len(c.GetColumns()) {
			return nil, fmt.Errorf("%w: constraints[%d]: %d columns reference %d columns", ErrInvalidArgument, i, len(c.GetColumns()), len(c.GetReferencedColumns()))
		}
		var exists bool
		// Constraints are named per table, indexes per schema.
		if c.GetRestartIdentity() {
			if len(c.GetColumns()) != 1 {
				return nil, fmt.Errorf("%w: constraints[%d]: restart_identity takes one column", ErrInvalidArgument, i)
			}
			// A column without an identity or owned sequence is left alone.
			var seq *string
			if err := tx.QueryRow(ctx, `SELECT pg_get_serial_sequence($1, $2)`,
				pgx.Identifier{schema, c.GetTable()}.Sanitize(), c.GetColumns()[0]).Scan(&seq); err != nil {
				return nil, fmt.Errorf("%w: constraints[%d]: %s", ErrTargetMismatch, i, scrub(err.Error(), t.secret))
			}
			exists = seq == nil
		} else if err := tx.QueryRow(ctx, `SELECT CASE WHEN $4 THEN EXISTS (SELECT 1 FROM pg_class i JOIN pg_namespace n ON n.oid = i.relnamespace
				WHERE n.nspname = $1 AND i.relname = $3)
			ELSE EXISTS (SELECT 1 FROM pg_constraint k JOIN pg_class r ON r.oid = k.conrelid
				JOIN pg_namespace n ON n.oid = r.relnamespace WHERE n.nspname = $1 AND r.relname = $2 AND k.conname = $3) END`,
			schema, c.GetTable(), c.GetName(), c.GetIndex()).Scan(&exists); err != nil {
			return nil, t.dbErr("add constraints", err)
		}
		if exists {
			continue
		}
		table := pgx.Identifier{schema, c.GetTable()}.Sanitize()
		name := pgx.Identifier{c.GetName()}.Sanitize()
		method := strings.ToLower(c.GetMethod())
		if c.GetIndex() && !indexMethods[method] {
			return nil, fmt.Errorf("%w: constraints[%d].method: %q is not one of btree, hash, gin, gist, brin, spgist", ErrInvalidArgument, i, c.GetMethod())
		}
		var stmts []string
		switch {
		case c.GetRestartIdentity():
			stmts = []string{restartIdentity(schema, c.GetTable(), c.GetColumns()[0])}
		case c.GetIndex() && c.GetUnique() && c.GetUniqueConstraint():
			stmts = []string{fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s UNIQUE (%s)", table, name, idents(c.GetColumns()))}
		case c.GetIndex() && method != "" && method != "btree":
			// Another access method needs an operator class for the
			// column's type, which the target type may not have (a source
			// type that became text): left out and named, not failed.
			unique := ""
			if c.GetUnique() {
				unique = "UNIQUE "
			}
			st := fmt.Sprintf("CREATE %sINDEX %s ON %s USING %s (%s)", unique, name, table, method, idents(c.GetColumns()))
			if _, err := tx.Exec(ctx, "SAVEPOINT other_method"); err != nil {
				return nil, t.dbErr("add constraints", err)
			}
			if _, err := tx.Exec(ctx, st); err != nil {
				if _, rerr := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT other_method"); rerr != nil {
					return nil, t.dbErr("add constraints", rerr)
				}
				ran = append(ran, fmt.Sprintf("-- not carried over: %s (%s)", st, oneLine(scrub(err.Error(), t.secret))))
				continue
			}
			ran = append(ran, st)
			continue
		case c.GetIndex():
			unique := ""
			if c.GetUnique() {
				unique = "UNIQUE "
			}
			stmts = []string{fmt.Sprintf("CREATE %sINDEX %s ON %s (%s)", unique, name, table, idents(c.GetColumns()))}
		case c.GetReferencedTable() == "":
			stmts = []string{fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s PRIMARY KEY (%s)", table, name, idents(c.GetColumns()))}
		default:
			stmts = []string{
				fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s FOREIGN KEY (%s) REFERENCES %s (%s) NOT VALID", table, name,
					idents(c.GetColumns()), pgx.Identifier{schema, c.GetReferencedTable()}.Sanitize(), idents(c.GetReferencedColumns())),
				fmt.Sprintf("ALTER TABLE %s VALIDATE CONSTRAINT %s", table, name),
			}
		}
		for _, st := range stmts {
			if _, err := tx.Exec(ctx, st); err != nil {
				return nil, fmt.Errorf("%w: %s: %s", ErrTargetMismatch, st, scrub(err.Error(), t.secret))
			}
			ran = append(ran, st)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, t.dbErr("add constraints", err)
	}
	return &loaderv1.AddConstraintsResponse{Statements: ran}, nil
}

// indexMethods are the access methods an index may name ("" is btree).
var indexMethods = map[string]bool{"": true, "btree": true, "hash": true, "gin": true, "gist": true, "brin": true, "spgist": true}

func idents(names []string) string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = pgx.Identifier{n}.Sanitize()
	}
	return strings.Join(out, ", ")
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// addColumnsDDL adds def's columns that the existing table lacks, nullable
// and without a default (the rows there have no value for them); an enum
// column is text, as on the wire.
func addColumnsDDL(ctx context.Context, q querier, schema string, def *loaderv1.TableDefinition) ([]string, error) {
	var stmts []string
	for _, c := range def.GetColumns() {
		var has bool
		if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = $1 AND c.relname = $2 AND a.attname = $3 AND a.attnum > 0 AND NOT a.attisdropped)`, schema, def.GetName(), c.GetName()).Scan(&has); err != nil {
			return nil, err
		}
		if has {
			continue
		}
		typ := strings.ToLower(strings.TrimSpace(c.GetPgType()))
		if c.GetEnumType() != "" {
			typ = "text"
		}
		stmts = append(stmts, fmt.Sprintf("ALTER TABLE %s ADD COLUMN IF NOT EXISTS %s %s",
			pgx.Identifier{schema, def.GetName()}.Sanitize(), pgx.Identifier{c.GetName()}.Sanitize(), typ))
	}
	return stmts, nil
}
