// Package reserved decides which PostgreSQL schemas are the product's own
// and so never a job's target, however the job names them: as its target
// schema, as the qualifier of a target table, or on the search_path of its
// target DSN.
//
// A job that could write into them could forge the loader's ledger or
// lineage (and have another job's rollback delete rows it never wrote), or
// read and change the orchestrator's control schema when control and target
// share a database. The orchestrator refuses such a spec up front (package
// jobspec) and the loader refuses again before anything is written (package
// load), because no stage trusts the one before it; both ask this package.
//
// The functions here say what is reserved and why; naming the offending
// field and wrapping the error is the caller's.
package reserved

import (
	"maps"
	"net/url"
	"slices"
	"strings"
)

// The product's own schemas.
const (
	// Bookkeeping holds the loader's ledger, lineage, quarantine and the
	// other bookkeeping tables.
	Bookkeeping = "cutover"
	// Stage holds the loader's staging tables.
	Stage = "cutover_stage"
	// Backup holds the loader's backup copies of target tables.
	Backup = "cutover_backup"
	// Control is the orchestrator's control schema, which may share the
	// target's database.
	Control = "cutover_control"
)

// schemas are the reserved names, as Ident gives them, with whose each is;
// any name that starts with pg_ is PostgreSQL's too (Schema).
var schemas = map[string]string{
	Bookkeeping:          "cutover's own bookkeeping",
	Stage:                "cutover's staging tables",
	Backup:               "cutover's backup copies",
	Control:              "the orchestrator's control schema",
	"information_schema": "PostgreSQL's catalog",
}

// blank is the white space that separates libpq keyword/value pairs and the
// arguments of an "options" value.
const blank = " \t\n\r\f\v"

// Ident is a name as it is compared: trimmed, without the double quotes of
// a quoted identifier ("" inside them read as one "), case folded.
// PostgreSQL folds unquoted names to lower case; a quoted "Cutover" is
// another schema, but too close to the product's to allow either.
func Ident(name string) string {
	s := strings.TrimSpace(name)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = strings.ReplaceAll(s[1:len(s)-1], `""`, `"`)
	}
	return strings.ToLower(strings.TrimSpace(s))
}

// Schema says whose schema name is, for a message ("cutover's staging
// tables"), or "" when it is free for jobs. The name may be quoted and in
// any case (Ident).
func Schema(name string) string {
	n := Ident(name)
	if why, ok := schemas[n]; ok {
		return why
	}
	if strings.HasPrefix(n, "pg_") {
		return "PostgreSQL's own"
	}
	return ""
}

// Table checks the qualifiers of a possibly qualified table name
// ("cutover.lineage", `"Cutover".ledger`, "db.cutover_control.jobs"): it
// returns the first qualifier that is reserved, as written, and whose it
// is, or "", "" when none is. A dot inside double quotes is part of a name
// (`"cutover.lineage"` is one unqualified name); a name without a dot has no
// qualifier.
func Table(name string) (schema, why string) {
	parts := splitUnquoted(name, '.')
	for _, q := range parts[:len(parts)-1] {
		if why := Schema(q); why != "" {
			return q, why
		}
	}
	return "", ""
}

// DSNSearchPath checks the search_path a PostgreSQL connection string sets,
// in either form: URL ("postgres://…?search_path=…&options=-csearch_path%3D…",
// scheme postgres:// or postgresql://) or libpq keyword/value
// ("host=… options='-c search_path=…'"). It returns the first search_path
// entry that is reserved, as written (quotes and white space kept), and
// whose schema it is, or "", "" when none is. A DSN that does not parse
// sets nothing here; whoever connects with it refuses it.
func DSNSearchPath(dsn string) (schema, why string) {
	return firstReserved(dsnParams(dsn))
}

// ParamsSearchPath is DSNSearchPath for a connection's run-time parameters
// as a driver parsed them from the DSN and the environment (pgx's
// ConnConfig.RuntimeParams): "search_path" itself, or a search_path set in
// "options", keys in any case.
func ParamsSearchPath(params map[string]string) (schema, why string) {
	m := make(map[string][]string, len(params))
	for k, v := range params {
		m[k] = []string{v}
	}
	return firstReserved(m)
}

// firstReserved returns the first reserved entry of the search_path values
// params set ("search_path", or "options" with a search_path setting). Keys
// are read in sorted order, so that the answer does not depend on map order.
func firstReserved(params map[string][]string) (schema, why string) {
	for _, k := range slices.Sorted(maps.Keys(params)) {
		var paths []string
		switch strings.ToLower(k) {
		case "search_path":
			paths = params[k]
		case "options":
			for _, v := range params[k] {
				paths = append(paths, optionSearchPaths(v)...)
			}
		}
		for _, p := range paths {
			for _, s := range splitUnquoted(p, ',') {
				if why := Schema(s); why != "" {
					return s, why
				}
			}
		}
	}
	return "", ""
}

// splitUnquoted splits s at each sep outside double quotes: a qualified
// name at its dots, a search_path at its commas. Without a sep, s is one
// part.
func splitUnquoted(s string, sep byte) []string {
	var out []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			quoted = !quoted
		case sep:
			if !quoted {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// dsnParams returns the parameters of a URL DSN's query or of a keyword/value
// DSN; nil for a URL that does not parse.
func dsnParams(d string) map[string][]string {
	if strings.HasPrefix(d, "postgres://") || strings.HasPrefix(d, "postgresql://") {
		u, err := url.Parse(d)
		if err != nil {
			return nil
		}
		return u.Query()
	}
	return keywordValues(d)
}

// keywordValues parses a libpq keyword/value connection string: key=value
// pairs separated by white space, a value in single quotes may hold white
// space, a backslash escapes the next character. It stops at the first
// malformed pair and returns what came before.
func keywordValues(s string) map[string][]string {
	out := map[string][]string{}
	i := 0
	skip := func() {
		for i < len(s) && strings.IndexByte(blank, s[i]) >= 0 {
			i++
		}
	}
	for {
		skip()
		if i >= len(s) {
			return out
		}
		start := i
		for i < len(s) && s[i] != '=' && strings.IndexByte(blank, s[i]) < 0 {
			i++
		}
		key := s[start:i]
		skip()
		if i >= len(s) || s[i] != '=' {
			return out
		}
		i++
		skip()
		var v strings.Builder
		if i < len(s) && s[i] == '\'' {
			i++
			for i < len(s) && s[i] != '\'' {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				v.WriteByte(s[i])
				i++
			}
			i++
		} else {
			for i < len(s) && strings.IndexByte(blank, s[i]) < 0 {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				v.WriteByte(s[i])
				i++
			}
		}
		out[key] = append(out[key], v.String())
	}
}

// optionSearchPaths finds the search_path settings in a libpq "options"
// value as the server reads it: arguments split at unescaped white space,
// each "-c name=value", "-cname=value" or "--name=value", dashes in the
// name read as underscores.
func optionSearchPaths(opts string) []string {
	var args []string
	var cur strings.Builder
	inArg := false
	for i := 0; i < len(opts); i++ {
		c := opts[i]
		switch {
		case c == '\\' && i+1 < len(opts):
			i++
			cur.WriteByte(opts[i])
			inArg = true
		case strings.IndexByte(blank, c) >= 0:
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteByte(c)
			inArg = true
		}
	}
	if inArg {
		args = append(args, cur.String())
	}
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		var setting string
		switch {
		case a == "-c" && i+1 < len(args):
			i++
			setting = args[i]
		case strings.HasPrefix(a, "--"):
			setting = a[2:]
		case strings.HasPrefix(a, "-c"):
			setting = a[2:]
		default:
			continue
		}
		name, value, ok := strings.Cut(setting, "=")
		if ok && strings.ReplaceAll(strings.ToLower(strings.TrimSpace(name)), "-", "_") == "search_path" {
			out = append(out, value)
		}
	}
	return out
}
