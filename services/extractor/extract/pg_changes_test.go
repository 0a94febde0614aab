package extract

import (
	"context"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	"google.golang.org/grpc/codes"
)

func watermarkSync(col string) *commonv1.SyncSpec {
	return &commonv1.SyncSpec{Kind: &commonv1.SyncSpec_Watermark{Watermark: &commonv1.WatermarkSync{Column: col}}}
}

// TestPGReadChanges: the start is the largest watermark; rows after a
// position come in (watermark, key) order, ties on the watermark split
// across batches without loss or repeat, the same position gives the same
// batch, and rows with a NULL watermark are never read.
func TestPGReadChanges(t *testing.T) {
	url := newDB(t,
		`CREATE TABLE items (id int PRIMARY KEY, name text, updated_at timestamp(6))`,
		`CREATE INDEX ON items (updated_at)`,
		`INSERT INTO items VALUES (1, 'a', '2024-01-01 00:00:01'), (2, 'b', '2024-01-01 00:00:02'), (3, 'c', NULL)`)
	s := newService(t)
	src := pgSource(url, "", "items")
	sync := watermarkSync("updated_at")
	ctx := context.Background()
	start, err := s.ReadChanges(ctx, &extractorv1.ReadChangesRequest{Source: src, Sync: sync})
	if err != nil {
		t.Fatal(err)
	}
	if got := start.GetBatch().GetPosition(); got != `["2024-01-01 00:00:02"]` || start.GetBatch().GetNumRows() != 0 {
		t.Fatalf("start position %s with %d rows", got, start.GetBatch().GetNumRows())
	}
	// Ties: five rows share one watermark, read one, two or all at a time.
	pgExec(t, url,
		`UPDATE items SET name = 'a2', updated_at = '2024-01-01 00:00:05' WHERE id = 1`,
		`INSERT INTO items VALUES (9, 'i', '2024-01-01 00:00:05'), (4, 'd', '2024-01-01 00:00:05'), (7, 'g', '2024-01-01 00:00:05'), (5, 'e', '2024-01-01 00:00:05')`,
		`INSERT INTO items VALUES (6, 'f', NULL), (8, 'h', '2024-01-01 00:00:03.5')`)
	for _, tc := range []struct {
		name string
		size int32
	}{{"one at a time", 1}, {"two at a time", 2}, {"all at once", 100}} {
		t.Run(tc.name, func(t *testing.T) {
			ids, end := changesOf(t, s, src, sync, start.GetBatch().GetPosition(), tc.size)
			// id=2 again: the start is inclusive (ties at the start are read again).
			want := "id=2 id=8 id=1 id=4 id=5 id=7 id=9"
			if strings.Join(ids, " ") != want {
				t.Fatalf("changes %q, want %q", strings.Join(ids, " "), want)
			}
			if end != `["2024-01-01 00:00:05","9"]` {
				t.Fatalf("end position %s", end)
			}
		})
	}
	// Exactness and lag: the same position gives the same batch, with the
	// row values and the rows still pending after it.
	req := &extractorv1.ReadChangesRequest{Source: src, Sync: sync, Position: `["2024-01-01 00:00:03.5","8"]`, BatchSize: 2}
	a, err := s.ReadChanges(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.ReadChanges(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	ra, rb := rowsOf(t, a.GetBatch()), rowsOf(t, b.GetBatch())
	if len(ra) != 2 || len(rb) != 2 || ra[0].ref != rb[0].ref || ra[1].ref != rb[1].ref ||
		a.GetBatch().GetPosition() != b.GetBatch().GetPosition() || a.GetBatch().GetPosition() != `["2024-01-01 00:00:05","4"]` {
		t.Fatalf("retried read differs or is wrong: %v %s vs %v %s", ra, a.GetBatch().GetPosition(), rb, b.GetBatch().GetPosition())
	}
	if got := strings.Join(ra[0].vals, "|"); ra[0].ref != "id=1" || !strings.HasPrefix(got, "1|a2|") {
		t.Fatalf("first row %s %s", ra[0].ref, got)
	}
	if a.GetLagRows() != 3 || a.GetLagSeconds() <= 0 {
		t.Fatalf("lag %d rows, %f s; want 3 rows and a positive age", a.GetLagRows(), a.GetLagSeconds())
	}
	// An empty table starts at [] and then reads every row with a watermark.
	url2 := newDB(t, `CREATE TABLE e (id int PRIMARY KEY, v bigint)`)
	src2 := pgSource(url2, "", "e")
	sync2 := watermarkSync("v")
	st2, err := s.ReadChanges(ctx, &extractorv1.ReadChangesRequest{Source: src2, Sync: sync2})
	if err != nil || st2.GetBatch().GetPosition() != "[]" {
		t.Fatalf("empty table start %v %v", st2, err)
	}
	pgExec(t, url2, `INSERT INTO e VALUES (1, 10), (2, NULL), (3, 5), (4, 10)`)
	if ids, end := changesOf(t, s, src2, sync2, "[]", 1); strings.Join(ids, " ") != "id=3 id=1 id=4" || end != `["10","4"]` {
		t.Fatalf("changes %q end %s", ids, end)
	}
	// Refusals name the field.
	url3 := newDB(t, `CREATE TABLE nokey (id int, v int)`)
	for _, tc := range []struct {
		name string
		req  *extractorv1.ReadChangesRequest
		code codes.Code
		want string
	}{
		{"unknown column", &extractorv1.ReadChangesRequest{Source: src, Sync: watermarkSync("nope")}, codes.InvalidArgument, "sync.watermark.column"},
		{"text watermark", &extractorv1.ReadChangesRequest{Source: src, Sync: watermarkSync("name")}, codes.InvalidArgument, "must be an integer, a date or a time"},
		{"bad position", &extractorv1.ReadChangesRequest{Source: src, Sync: sync, Position: `{"x":1}`}, codes.InvalidArgument, "position"},
		{"wrong arity", &extractorv1.ReadChangesRequest{Source: src, Sync: sync, Position: `["2024-01-01","1","2"]`}, codes.InvalidArgument, "position"},
		{"not a time", &extractorv1.ReadChangesRequest{Source: src, Sync: sync, Position: `["yesterday-ish"]`}, codes.InvalidArgument, "position"},
		{"no primary key", &extractorv1.ReadChangesRequest{Source: pgSource(url3, "", "nokey"), Sync: watermarkSync("v")}, codes.FailedPrecondition, "primary key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.ReadChanges(ctx, tc.req)
			wantCode(t, err, tc.code, tc.want)
		})
	}
}

// TestPGReadChangesTypes: watermarks of each accepted type compare in the
// source's own type, so the text position round-trips exactly.
func TestPGReadChangesTypes(t *testing.T) {
	for _, tc := range []struct {
		name, typ string
		vals      []string // in watermark order, one row each
	}{
		{"timestamptz", "timestamptz", []string{"2024-01-01 00:00:00.000001+00", "2024-01-01 03:00:00+02", "2024-06-01 00:00:00+00"}},
		{"date", "date", []string{"2023-12-31", "2024-01-01", "2024-02-29"}},
		{"integer numeric", "numeric(30,0)", []string{"9", "10", "100000000000000000000"}},
		{"smallint", "int2", []string{"-3", "2", "10"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := newDB(t, `CREATE TABLE w (id int PRIMARY KEY, m `+tc.typ+`)`)
			s := newService(t)
			src, sync := pgSource(url, "", "w"), watermarkSync("m")
			// Rows inserted in reverse order, so key order is not watermark order.
			var stmts []string
			for i := range tc.vals {
				v := tc.vals[len(tc.vals)-1-i]
				stmts = append(stmts, "INSERT INTO w VALUES ("+string(rune('1'+i))+", '"+v+"')")
			}
			pgExec(t, url, stmts...)
			ids, _ := changesOf(t, s, src, sync, "[]", 1)
			if got := strings.Join(ids, " "); got != "id=3 id=2 id=1" {
				t.Fatalf("changes %q", got)
			}
		})
	}
}

// TestPGReadKeys pages through a composite primary key in key order.
func TestPGReadKeys(t *testing.T) {
	url := newDB(t, `CREATE TABLE k (a int, b text COLLATE "C", PRIMARY KEY (a, b))`,
		`INSERT INTO k VALUES (2, 'x'), (1, 'z'), (1, 'y'), (3, 'a'), (10, 'b')`,
		`CREATE TABLE one (id bigint PRIMARY KEY)`, `INSERT INTO one SELECT generate_series(1, 7)`)
	s := newService(t)
	for _, tc := range []struct {
		table string
		limit int32
		want  string
	}{
		{"k", 3, "1,y 1,z 2,x 3,a 10,b"},
		{"k", 5, "1,y 1,z 2,x 3,a 10,b"},
		{"one", 2, "1 2 3 4 5 6 7"},
	} {
		t.Run(tc.table, func(t *testing.T) {
			var all []string
			after := ""
			for range 10 {
				resp, err := s.ReadKeys(context.Background(), &extractorv1.ReadKeysRequest{Source: pgSource(url, "", tc.table), After: after, Limit: tc.limit})
				if err != nil {
					t.Fatal(err)
				}
				all = append(all, resp.GetKeys()...)
				if resp.GetDone() {
					break
				}
				after = resp.GetKeys()[len(resp.GetKeys())-1]
			}
			if got := strings.Join(all, " "); got != tc.want {
				t.Fatalf("keys %q, want %q", got, tc.want)
			}
		})
	}
	_, err := s.ReadKeys(context.Background(), &extractorv1.ReadKeysRequest{Source: pgSource(url, "", "k"), After: "1"})
	wantCode(t, err, codes.InvalidArgument, "after")
	_, err = s.ReadKeys(context.Background(), &extractorv1.ReadKeysRequest{Source: pgSource(url, "", "one"), After: "x"})
	wantCode(t, err, codes.InvalidArgument, "after")
}
