package secrets

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// specWithEverySource has one table per source kind of SourceSpec, each
// with every secret field of that kind set, found by reflection: a source
// kind added later is in it without a change here.
func specWithEverySource(t *testing.T, v string) (*commonv1.JobSpec, []string) {
	t.Helper()
	spec := &commonv1.JobSpec{Name: "all", Target: &commonv1.TargetSpec{Dsn: v, Schema: "public"}}
	want := []string{"target.dsn"}
	kinds := (&commonv1.SourceSpec{}).ProtoReflect().Descriptor().Oneofs().ByName("kind").Fields()
	for i := 0; i < kinds.Len(); i++ {
		fd := kinds.Get(i)
		src := &commonv1.SourceSpec{}
		kind := src.ProtoReflect().Mutable(fd).Message()
		fields := kind.Descriptor().Fields()
		for j := 0; j < fields.Len(); j++ {
			if f := fields.Get(j); FieldKind(f) != None && !f.IsList() {
				kind.Set(f, protoreflect.ValueOfString(v))
				want = append(want, "tables["+strconv.Itoa(i)+"].source."+string(fd.Name())+"."+string(f.Name()))
			}
		}
		spec.Tables = append(spec.Tables, &commonv1.TableSpec{Name: string(fd.Name()), TargetTable: "t", Source: src,
			Columns: []*commonv1.ColumnMapping{{Target: "id", Source: "id"}}})
	}
	return spec, want
}

func TestRewriteFindsEverySecretField(t *testing.T) {
	const dsn = "postgres://u:Pl4nted@h/db"
	spec, want := specWithEverySource(t, dsn)
	if !slices.Contains(want, "tables[1].source.postgres.dsn") || !slices.Contains(want, "tables[2].source.mysql.dsn") {
		t.Fatalf("the spec misses a known DSN field: %v", want)
	}
	orig := proto.Clone(spec)
	var got []string
	err := Rewrite(spec, func(path string, k Kind, v string) (string, error) {
		if k != ConnString || v != dsn {
			t.Errorf("%s: kind %v value %q", path, k, v)
		}
		got = append(got, path)
		return "sealed", nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("rewrote %v, want %v", got, want)
	}
	if strings.Contains(spec.String(), "Pl4nted") {
		t.Fatalf("a secret is left: %v", spec)
	}
	// Nothing else changed.
	back := proto.Clone(spec).(*commonv1.JobSpec)
	if err := Rewrite(back, func(string, Kind, string) (string, error) { return dsn, nil }); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(back, orig) {
		t.Fatalf("round trip changed the spec:\n%v\nwant\n%v", back, orig)
	}
}

// Empty values and non-secret fields are left alone; an error names the
// field and stops the walk.
func TestRewriteSkipsAndStops(t *testing.T) {
	spec := &commonv1.JobSpec{Name: "dsn", Target: &commonv1.TargetSpec{Schema: "dsn"}, Tables: []*commonv1.TableSpec{
		{Name: "a", Source: &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Csv{Csv: &commonv1.CsvSource{Path: "/x.csv"}}}},
		{Name: "b", Source: &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Postgres{Postgres: &commonv1.PostgresSource{Dsn: "x"}}}},
		{Name: "c", Source: &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Mysql{Mysql: &commonv1.MysqlSource{Dsn: "y"}}}},
	}}
	boom := errors.New("boom")
	calls := 0
	err := Rewrite(spec, func(string, Kind, string) (string, error) { calls++; return "", boom })
	if !errors.Is(err, boom) || err.Error() != "tables[1].source.postgres.dsn: boom" || calls != 1 {
		t.Fatalf("err %v after %d calls", err, calls)
	}
	if err := Rewrite(nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := Rewrite((*commonv1.JobSpec)(nil), nil); err != nil {
		t.Fatal(err)
	}
}
