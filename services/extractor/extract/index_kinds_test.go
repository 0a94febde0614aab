package extract

import (
	"context"
	"fmt"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
)

func describeIndexes(ix, other []*commonv1.SourceIndex) (string, string) {
	var a, b []string
	for _, i := range ix {
		a = append(a, fmt.Sprintf("%s(%s) unique=%v constraint=%v %s", i.GetName(), strings.Join(i.GetColumns(), ","), i.GetUnique(), i.GetConstraint(), i.GetMethod()))
	}
	for _, i := range other {
		b = append(b, i.GetName()+": "+i.GetDefinition())
	}
	return strings.Join(a, "\n"), strings.Join(b, "\n")
}

// TestPGIndexKinds: a UNIQUE constraint is told from a unique index, a gin
// index carries its method, and expression, partial, INCLUDE and exclusion
// indexes come back as others with their definition.
func TestPGIndexKinds(t *testing.T) {
	url := newDB(t, `CREATE TABLE t (id int PRIMARY KEY, email text, name text, tags text[], at tsrange, n int,
			CONSTRAINT t_email_key UNIQUE (email))`,
		`CREATE UNIQUE INDEX t_name_uq ON t (name)`,
		`CREATE INDEX t_tags ON t USING gin (tags)`,
		`CREATE INDEX t_lower ON t (lower(name))`,
		`CREATE INDEX t_part ON t (n) WHERE n > 0`,
		`CREATE INDEX t_incl ON t (n) INCLUDE (name)`,
		`ALTER TABLE t ADD CONSTRAINT t_no_overlap EXCLUDE USING gist (at WITH &&)`)
	s := newService(t)
	resp, err := s.DescribeSource(context.Background(), &extractorv1.DescribeSourceRequest{Source: pgSource(url, "", "t")})
	if err != nil {
		t.Fatal(err)
	}
	kept, other := describeIndexes(resp.Indexes, resp.OtherIndexes)
	if want := "t_email_key(email) unique=true constraint=true \nt_name_uq(name) unique=true constraint=false \nt_tags(tags) unique=false constraint=false gin"; kept != want {
		t.Errorf("indexes:\n%s\nwant\n%s", kept, want)
	}
	for _, w := range []string{"t_incl: CREATE INDEX t_incl ON public.t USING btree (n) INCLUDE (name)", "t_lower: CREATE INDEX t_lower ON public.t USING btree (lower(name))",
		"t_no_overlap: CREATE INDEX t_no_overlap ON public.t USING gist (at)", "t_part: CREATE INDEX t_part ON public.t USING btree (n) WHERE (n > 0)"} {
		if !strings.Contains(other, w) {
			t.Errorf("other indexes lack %q:\n%s", w, other)
		}
	}
}

// TestMySQLEnumSetIndexKinds: enum and set values in order (a quote in a
// value read back), unique keys as constraints, prefix and full-text
// indexes as others with their definition.
func TestMySQLEnumSetIndexKinds(t *testing.T) {
	dsn := newMySQLDB(t, "CREATE TABLE items (id INT PRIMARY KEY, st ENUM('new','it''s done','a,b') NOT NULL, tags SET('x','y z'),"+
		" name VARCHAR(40), body TEXT, UNIQUE KEY name_uq (name), KEY st_name (st, name), KEY name_prefix (name(5)), FULLTEXT KEY body_ft (body))")
	s := newService(t)
	resp, err := s.DescribeSource(context.Background(), &extractorv1.DescribeSourceRequest{Source: mysqlSource(dsn, "items")})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range resp.Columns {
		switch c.Name {
		case "st":
			if strings.Join(c.EnumValues, "|") != "new|it's done|a,b" || len(c.SetValues) != 0 {
				t.Errorf("enum values %q", c.EnumValues)
			}
		case "tags":
			if strings.Join(c.SetValues, "|") != "x|y z" || len(c.EnumValues) != 0 {
				t.Errorf("set values %q", c.SetValues)
			}
		default:
			if len(c.EnumValues)+len(c.SetValues) != 0 {
				t.Errorf("%s: values %q %q", c.Name, c.EnumValues, c.SetValues)
			}
		}
	}
	kept, other := describeIndexes(resp.Indexes, resp.OtherIndexes)
	if want := "name_uq(name) unique=true constraint=true \nst_name(st,name) unique=false constraint=false "; kept != want {
		t.Errorf("indexes:\n%s\nwant\n%s", kept, want)
	}
	if want := "body_ft: FULLTEXT KEY `body_ft` (`body`)\nname_prefix: KEY `name_prefix` (`name`(5))"; other != want {
		t.Errorf("other indexes:\n%s\nwant\n%s", other, want)
	}
}
