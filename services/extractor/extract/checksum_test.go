package extract

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	"github.com/cutover/cutover/services/kit/checksum"
	"github.com/cutover/cutover/services/kit/pgtest"
	"github.com/cutover/cutover/services/kit/stage"
	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"
)

// The three dialects must render equal values into equal canonical text and
// so equal digests: the same rows in PostgreSQL, MariaDB and SQLite, each
// typed as its database types them. The expected canonical texts are
// written out here, not taken from any of the three.
var csRows = []string{
	`(1, 12.30, 'Ann', 1, '2024-01-15', '2024-01-15 10:00:00.250', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', 7)`,
	`(2, 0.00, 'Zoë ß', 0, '1999-12-31', '1999-12-31 23:59:59', NULL, -3)`,
	`(3, -5.5, '', NULL, NULL, NULL, 'x', 0)`,
	`(4, NULL, NULL, 1, '2000-02-29', '2000-02-29 00:00:00.001', NULL, 9000000000)`,
}

var csWant = [][]string{
	{"1", "12.3", "Ann", "true", "2024-01-15", "2024-01-15 10:00:00.25", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "7"},
	{"2", "0", "Zoë ß", "false", "1999-12-31", "1999-12-31 23:59:59", "NULL", "-3"},
	{"3", "-5.5", "", "NULL", "NULL", "NULL", "x", "0"},
	{"4", "NULL", "NULL", "true", "2000-02-29", "2000-02-29 00:00:00.001", "NULL", "9000000000"},
}

var csColumns = []*extractorv1.ChecksumColumn{
	{Name: "id", Kind: extractorv1.ChecksumKind_CHECKSUM_KIND_INTEGER},
	{Name: "amount", Kind: extractorv1.ChecksumKind_CHECKSUM_KIND_DECIMAL},
	{Name: "name", Kind: extractorv1.ChecksumKind_CHECKSUM_KIND_TEXT},
	{Name: "flag", Kind: extractorv1.ChecksumKind_CHECKSUM_KIND_BOOLEAN},
	{Name: "born", Kind: extractorv1.ChecksumKind_CHECKSUM_KIND_DATE},
	{Name: "seen", Kind: extractorv1.ChecksumKind_CHECKSUM_KIND_TIMESTAMP},
	{Name: "code", Kind: extractorv1.ChecksumKind_CHECKSUM_KIND_UUID},
	{Name: "big", Kind: extractorv1.ChecksumKind_CHECKSUM_KIND_INTEGER},
}

func csSources(t *testing.T) map[string]*commonv1.SourceSpec {
	insert := "INSERT INTO t VALUES " + strings.Join(csRows, ", ")
	pgURL := pgtest.NewDatabase(t)
	conn, err := pgx.Connect(context.Background(), pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, q := range []string{`CREATE TABLE t (id int PRIMARY KEY, amount numeric(12,2), name text, flag boolean, born date, seen timestamp(3), code text, big bigint)`,
		strings.ReplaceAll(strings.ReplaceAll(insert, ", 1, '", ", true, '"), ", 0, '", ", false, '")} {
		if _, err := conn.Exec(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	my := newMySQLDB(t, `CREATE TABLE t (id int PRIMARY KEY, amount decimal(12,2), name varchar(20), flag tinyint(1), born date, seen datetime(3), code char(36), big bigint) CHARACTER SET utf8mb4`, insert)
	lite := sqliteDB(t, `CREATE TABLE t (id INTEGER PRIMARY KEY, amount DECIMAL(12,2), name TEXT, flag BOOLEAN, born DATE, seen DATETIME, code TEXT, big INTEGER)`, insert)
	return map[string]*commonv1.SourceSpec{"postgres": pgSource(pgURL, "public", "t"), "mysql": mysqlSource(my, "t"), "sqlite": sqliteSource(lite, "t")}
}

func TestChecksumDialectsAgree(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	srcs := csSources(t)
	ask := func(src *commonv1.SourceSpec, mod func(*extractorv1.ChecksumSourceRequest)) *extractorv1.ChecksumSourceResponse {
		t.Helper()
		req := &extractorv1.ChecksumSourceRequest{Source: src, Columns: csColumns, Key: []int32{0}}
		mod(req)
		resp, err := s.ChecksumSource(ctx, req)
		if err != nil {
			t.Fatalf("%v: %v", src.GetKind(), err)
		}
		return resp
	}
	digests := map[string]string{}
	totals := map[string]string{}
	for name, src := range srcs {
		plan := ask(src, func(r *extractorv1.ChecksumSourceRequest) {
			r.Ask = &extractorv1.ChecksumSourceRequest_Plan{Plan: &extractorv1.ChecksumPlan{}}
		})
		for i, c := range plan.GetColumns() {
			if c.GetUnsupported() != "" {
				t.Fatalf("%s: column %s: %s", name, csColumns[i].GetName(), c.GetUnsupported())
			}
		}
		if !plan.GetCanExclude() {
			t.Errorf("%s: cannot exclude by reference", name)
		}
		rows := ask(src, func(r *extractorv1.ChecksumSourceRequest) {
			r.Ask = &extractorv1.ChecksumSourceRequest_Rows{Rows: &extractorv1.ChecksumRows{}}
		})
		var got [][]string
		for _, r := range rows.GetRows() {
			var vals []string
			for _, v := range r.GetValues() {
				if v.GetNull() {
					vals = append(vals, "NULL")
				} else {
					vals = append(vals, v.GetText())
				}
			}
			// The row hash is md5 of the documented join, computed here.
			if want := checksum.MD5Hex(csJoin(vals)); r.GetRowHash() != want {
				t.Errorf("%s: row %s hashes to %s, want md5(%q) = %s", name, vals[0], r.GetRowHash(), csJoin(vals), want)
			}
			got = append(got, vals)
		}
		slices.SortFunc(got, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
		if fmt.Sprint(got) != fmt.Sprint(csWant) {
			t.Errorf("%s canonical rows:\n got %q\nwant %q", name, got, csWant)
		}
	}
	// Digests and totals agree between dialects.
	for name, src := range srcs {
		cols := csColumns
		d, err := s.ChecksumSource(ctx, &extractorv1.ChecksumSourceRequest{Source: src, Columns: cols, Key: []int32{0},
			Ask: &extractorv1.ChecksumSourceRequest_Digest{Digest: &extractorv1.ChecksumDigest{Bits: 4}}})
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(d.Buckets, func(a, b *extractorv1.BucketDigest) int { return int(a.Bucket - b.Bucket) })
		digests[name] = fmt.Sprint(d.GetBuckets())
		tot, err := s.ChecksumSource(ctx, &extractorv1.ChecksumSourceRequest{Source: src, Columns: cols, Key: []int32{0},
			Ask: &extractorv1.ChecksumSourceRequest_Totals{Totals: &extractorv1.ChecksumTotals{
				Groups: []*extractorv1.ChecksumGroup{{Column: 3}}, Sums: []int32{0, 7}}}})
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(tot.Totals, func(a, b *extractorv1.GroupTotal) int {
			return strings.Compare(a.Group[0].GetText()+fmt.Sprint(a.Group[0].GetNull()), b.Group[0].GetText()+fmt.Sprint(b.Group[0].GetNull()))
		})
		totals[name] = fmt.Sprint(tot.GetTotals())
	}
	if digests["postgres"] != digests["mysql"] || digests["mysql"] != digests["sqlite"] {
		t.Errorf("digests differ:\n%v", digests)
	}
	if totals["postgres"] != totals["mysql"] || totals["mysql"] != totals["sqlite"] {
		t.Errorf("totals differ:\n%v", totals)
	}
	// Rows leave out by their source reference.
	for name, src := range srcs {
		ref := "id=2" // SQLite's INTEGER PRIMARY KEY is its rowid, named id
		d, err := s.ChecksumSource(ctx, &extractorv1.ChecksumSourceRequest{Source: src, Columns: csColumns[:1], Key: []int32{0}, ExcludeRefs: []string{ref, "id=99"},
			Ask: &extractorv1.ChecksumSourceRequest_Totals{Totals: &extractorv1.ChecksumTotals{}}})
		if err != nil {
			t.Fatal(err)
		}
		if n := d.GetTotals()[0].GetRows(); n != 3 {
			t.Errorf("%s: %d rows after excluding %s, want 3", name, n, ref)
		}
	}
}

// csJoin is the row text of kit/checksum's package comment: values joined
// by ",", NULL as "~", the text column (name) prefixed by its byte length.
func csJoin(vals []string) string {
	parts := make([]string, len(vals))
	for i, v := range vals {
		switch {
		case v == "NULL":
			parts[i] = "~"
		case csColumns[i].GetKind() == extractorv1.ChecksumKind_CHECKSUM_KIND_TEXT:
			parts[i] = fmt.Sprintf("%d,%s", len(v), v)
		default:
			parts[i] = v
		}
	}
	return strings.Join(parts, ",")
}

func TestChecksumRefusals(t *testing.T) {
	s := newService(t)
	lite := sqliteDB(t, `CREATE TABLE t (id INTEGER PRIMARY KEY, price REAL)`)
	src := sqliteSource(lite, "t")
	for _, c := range []struct {
		name string
		req  *extractorv1.ChecksumSourceRequest
		code codes.Code
		want string
	}{
		{"no ask", &extractorv1.ChecksumSourceRequest{Source: src}, codes.InvalidArgument, "ask"},
		{"unknown column", &extractorv1.ChecksumSourceRequest{Source: src, Columns: []*extractorv1.ChecksumColumn{{Name: "nope", Kind: extractorv1.ChecksumKind_CHECKSUM_KIND_TEXT}},
			Ask: &extractorv1.ChecksumSourceRequest_Plan{Plan: &extractorv1.ChecksumPlan{}}}, codes.InvalidArgument, `no column "nope"`},
		{"float as decimal", &extractorv1.ChecksumSourceRequest{Source: src, Columns: []*extractorv1.ChecksumColumn{{Name: "price", Kind: extractorv1.ChecksumKind_CHECKSUM_KIND_DECIMAL}},
			Ask: &extractorv1.ChecksumSourceRequest_Digest{Digest: &extractorv1.ChecksumDigest{Bits: 8}}}, codes.InvalidArgument, "floating-point"},
		{"file source", &extractorv1.ChecksumSourceRequest{Source: csvSource(&commonv1.CsvSource{Path: writeFile(t, "a\n1\n")}),
			Ask: &extractorv1.ChecksumSourceRequest_Plan{Plan: &extractorv1.ChecksumPlan{}}}, codes.FailedPrecondition, "no database"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.ChecksumSource(context.Background(), c.req)
			wantCode(t, err, c.code, c.want)
			// The loader falls back to replay on the reason, not the text.
			if file := c.name == "file source"; stage.HasReason(err, codes.FailedPrecondition, stage.NoDatabaseReason, stage.NoDatabaseDomain) != file {
				t.Errorf("%v: NO_DATABASE reason attached: %v, want %v", err, !file, file)
			}
		})
	}
}

// A column declared NOT NULL, or with no fraction (DECIMAL(p,0),
// DATETIME(0)), is rendered without the NULL marker and the trim: its
// digest and row hashes must equal those of a twin table holding the same
// values in nullable, fractional columns (rendered the general way, which
// TestChecksumDialectsAgree holds to the written-out texts), in MariaDB and
// in PostgreSQL. A NOT NULL MariaDB zero date still reads as NULL.
func TestChecksumDeclaredForms(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	cols := []*extractorv1.ChecksumColumn{
		{Name: "id", Kind: extractorv1.ChecksumKind_CHECKSUM_KIND_INTEGER},
		{Name: "n", Kind: extractorv1.ChecksumKind_CHECKSUM_KIND_DECIMAL},
		{Name: "d", Kind: extractorv1.ChecksumKind_CHECKSUM_KIND_TIMESTAMP},
		{Name: "s", Kind: extractorv1.ChecksumKind_CHECKSUM_KIND_TEXT},
		{Name: "z", Kind: extractorv1.ChecksumKind_CHECKSUM_KIND_TIMESTAMP},
	}
	rows := []string{`(1, 120, '2024-01-15 10:00:00', 'a,b', '2024-01-01 00:00:00')`, `(2, -7, '1999-12-31 23:59:59', '', '2000-02-29 12:00:00')`,
		`(3, 0, '2000-01-01 00:00:00', 'Zoë', %s)`}
	values := func(zero string) string { return strings.Join(rows[:2], ", ") + ", " + fmt.Sprintf(rows[2], zero) }
	my := newMySQLDB(t,
		`CREATE TABLE fast (id int PRIMARY KEY, n decimal(12,0) NOT NULL, d datetime NOT NULL, s varchar(10) NOT NULL, z datetime NOT NULL) CHARACTER SET utf8mb4`,
		`CREATE TABLE slow (id int PRIMARY KEY, n decimal(14,2), d datetime(6), s varchar(10), z datetime(3)) CHARACTER SET utf8mb4`,
		`INSERT INTO fast VALUES `+values(`'0000-00-00 00:00:00'`), `INSERT INTO slow VALUES `+values(`NULL`))
	pgURL := pgtest.NewDatabase(t)
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range []string{
		`CREATE TABLE fast (id int PRIMARY KEY, n numeric(12) NOT NULL, d timestamp(0) NOT NULL, s text NOT NULL, z timestamp)`,
		`CREATE TABLE slow (id int PRIMARY KEY, n numeric, d timestamp(6), s text, z timestamp)`,
		`INSERT INTO fast VALUES ` + values(`NULL`), `INSERT INTO slow VALUES ` + values(`NULL`)} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	ask := func(src *commonv1.SourceSpec, a *extractorv1.ChecksumSourceRequest) string {
		t.Helper()
		a.Source, a.Columns, a.Key = src, cols, []int32{0}
		resp, err := s.ChecksumSource(ctx, a)
		if err != nil {
			t.Fatalf("%v: %v", src.GetKind(), err)
		}
		slices.SortFunc(resp.Buckets, func(a, b *extractorv1.BucketDigest) int { return int(a.Bucket - b.Bucket) })
		var hashes []string
		for _, r := range resp.GetRows() {
			hashes = append(hashes, r.GetKeyHash()+":"+r.GetRowHash())
		}
		slices.Sort(hashes)
		return fmt.Sprint(resp.GetBuckets(), hashes)
	}
	var digests, listings []string
	for _, src := range []*commonv1.SourceSpec{mysqlSource(my, "fast"), mysqlSource(my, "slow"), pgSource(pgURL, "public", "fast"), pgSource(pgURL, "public", "slow")} {
		digests = append(digests, ask(src, &extractorv1.ChecksumSourceRequest{Ask: &extractorv1.ChecksumSourceRequest_Digest{Digest: &extractorv1.ChecksumDigest{Bits: 4}}}))
		listings = append(listings, ask(src, &extractorv1.ChecksumSourceRequest{Ask: &extractorv1.ChecksumSourceRequest_Rows{Rows: &extractorv1.ChecksumRows{}}}))
	}
	for i, name := range []string{"MariaDB slow", "PostgreSQL fast", "PostgreSQL slow"} {
		if digests[i+1] != digests[0] {
			t.Errorf("digest of %s differs from MariaDB fast's:\n%s\n%s", name, digests[i+1], digests[0])
		}
		if listings[i+1] != listings[0] {
			t.Errorf("row hashes of %s differ from MariaDB fast's:\n%s\n%s", name, listings[i+1], listings[0])
		}
	}
	if strings.Count(listings[0], ":") != 3 {
		t.Errorf("want 3 rows listed, got %s", listings[0])
	}
}
