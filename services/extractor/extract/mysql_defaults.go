package extract

import (
	"regexp"
	"strings"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
)

var (
	// myNowRe matches the spellings of the insert time: CURRENT_TIMESTAMP,
	// current_timestamp(), current_timestamp(3), now(), LOCALTIMESTAMP….
	myNowRe    = regexp.MustCompile(`(?i)^(current_timestamp|now|localtimestamp|localtime)(\(\d?\))?$`)
	myNumberRe = regexp.MustCompile(`^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$`)
	myOnUpdate = regexp.MustCompile(`(?i)\bon update (current_timestamp|now|localtimestamp|localtime)\b`)
)

// mysqlColumnExtras fills in what a column does on insert and update:
// AUTO_INCREMENT, its default and ON UPDATE CURRENT_TIMESTAMP.
// MariaDB (10.2.7 and later) spells COLUMN_DEFAULT as SQL: strings quoted,
// NULL as NULL, expressions as written; MySQL gives a literal's bare value
// and marks expressions DEFAULT_GENERATED.
func mysqlColumnExtras(sc *commonv1.SourceColumn, c myCol, mariadb bool) {
	extra := strings.ToLower(c.extra)
	sc.Identity = strings.Contains(extra, "auto_increment")
	sc.OnUpdateCurrentTimestamp = myOnUpdate.MatchString(extra)
	if !c.colDefault.Valid || sc.Identity {
		return
	}
	expr := c.colDefault.String
	kind, value := mysqlDefault(expr, mariadb, strings.Contains(extra, "default_generated"))
	if kind == commonv1.DefaultKind_DEFAULT_KIND_UNSPECIFIED {
		return
	}
	sc.DefaultExpression, sc.DefaultKind, sc.DefaultValue = expr, kind, value
}

func mysqlDefault(expr string, mariadb, generated bool) (commonv1.DefaultKind, string) {
	bare := strings.TrimSpace(expr)
	switch {
	case myNowRe.MatchString(bare) && (mariadb || generated || strings.EqualFold(bare, "CURRENT_TIMESTAMP")):
		return commonv1.DefaultKind_DEFAULT_KIND_CURRENT_TIMESTAMP, ""
	case mariadb && strings.EqualFold(bare, "NULL"):
		return commonv1.DefaultKind_DEFAULT_KIND_UNSPECIFIED, ""
	case generated:
		return commonv1.DefaultKind_DEFAULT_KIND_OTHER, ""
	}
	value := expr
	if mariadb {
		switch {
		case myNumberRe.MatchString(bare):
			value = bare
		case len(bare) >= 2 && bare[0] == '\'' && bare[len(bare)-1] == '\'':
			v, ok := unquoteMySQL(bare)
			if !ok {
				return commonv1.DefaultKind_DEFAULT_KIND_OTHER, ""
			}
			value = v
		default: // b'1', uuid(), (1 + 2)…
			return commonv1.DefaultKind_DEFAULT_KIND_OTHER, ""
		}
	}
	// A zero date means "no date" in MySQL and nothing in PostgreSQL.
	if strings.HasPrefix(value, "0000-00-00") {
		return commonv1.DefaultKind_DEFAULT_KIND_OTHER, ""
	}
	return commonv1.DefaultKind_DEFAULT_KIND_LITERAL, value
}

// unquoteMySQL reads one single-quoted MySQL string literal: ” is a quote,
// backslash escapes as MySQL reads them (\% and \_ keep the backslash).
func unquoteMySQL(s string) (string, bool) {
	in := s[1 : len(s)-1]
	var b strings.Builder
	for i := 0; i < len(in); i++ {
		ch := in[i]
		switch {
		case ch == '\'':
			if i+1 >= len(in) || in[i+1] != '\'' {
				return "", false
			}
			b.WriteByte('\'')
			i++
		case ch == '\\':
			if i+1 >= len(in) {
				return "", false
			}
			i++
			switch e := in[i]; e {
			case '0':
				b.WriteByte(0)
			case 'b':
				b.WriteByte('\b')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'Z':
				b.WriteByte(0x1a)
			case '%', '_':
				b.WriteByte('\\')
				b.WriteByte(e)
			default:
				b.WriteByte(e)
			}
		default:
			b.WriteByte(ch)
		}
	}
	return b.String(), true
}
