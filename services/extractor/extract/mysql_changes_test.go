package extract

import (
	"context"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"google.golang.org/grpc/codes"
)

func TestWatermarkPositionEncoding(t *testing.T) {
	for _, tc := range []struct {
		name string
		pos  string
		nKey int
		want watermarkPosition
		err  string
	}{
		{"empty table at the start", `[]`, 1, watermarkPosition{empty: true}, ""},
		{"start", `["2024-01-02 03:04:05.000006"]`, 1, watermarkPosition{mark: "2024-01-02 03:04:05.000006"}, ""},
		{"after a row", `["17","a,b"]`, 1, watermarkPosition{mark: "17", key: []string{"a,b"}}, ""},
		{"composite key", `["5","1","x"]`, 2, watermarkPosition{mark: "5", key: []string{"1", "x"}}, ""},
		{"wrong arity", `["5","1"]`, 2, watermarkPosition{}, "want 0, 1 or 3 texts"},
		{"not json", `5`, 1, watermarkPosition{}, "JSON array"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parsePosition(tc.pos, tc.nKey)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.empty != tc.want.empty || got.mark != tc.want.mark || strings.Join(got.key, "|") != strings.Join(tc.want.key, "|") {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			if got.encode() != tc.pos {
				t.Fatalf("encode %s, want %s", got.encode(), tc.pos)
			}
		})
	}
}

// changesOf reads every change after pos in batches of size and returns
// the ids in order and the final position.
func changesOf(t *testing.T, s *Service, src *commonv1.SourceSpec, sync *commonv1.SyncSpec, pos string, size int32) ([]string, string) {
	t.Helper()
	var ids []string
	for range 100 {
		resp, err := s.ReadChanges(context.Background(), &extractorv1.ReadChangesRequest{Source: src, Sync: sync, Position: pos, BatchSize: size})
		if err != nil {
			t.Fatalf("ReadChanges(%s): %v", pos, err)
		}
		b := resp.GetBatch()
		if b.GetNumRows() == 0 {
			if b.GetPosition() != pos || resp.GetLagRows() != 0 {
				t.Fatalf("empty batch moved the position %s → %s (lag %d)", pos, b.GetPosition(), resp.GetLagRows())
			}
			return ids, pos
		}
		if string(b.GetOps()) != strings.Repeat("u", int(b.GetNumRows())) {
			t.Fatalf("ops %q", b.GetOps())
		}
		for i := range int(b.GetNumRows()) {
			ids = append(ids, batch.SourceRef(b, i))
		}
		pos = b.GetPosition()
	}
	t.Fatal("no end of changes")
	return nil, ""
}

// TestMySQLReadChanges: the start is the largest watermark; rows after a
// position come in (watermark, key) order, ties on the watermark split
// across batches without loss or repeat, the same position gives the same
// batch, and rows with a NULL watermark are never read.
func TestMySQLReadChanges(t *testing.T) {
	dsn := newMySQLDB(t,
		`CREATE TABLE items (id int PRIMARY KEY, name varchar(20), updated_at datetime(6) NULL, KEY (updated_at))`,
		`INSERT INTO items VALUES (1, 'a', '2024-01-01 00:00:01'), (2, 'b', '2024-01-01 00:00:02'), (3, 'c', NULL)`)
	s := newService(t)
	src := mysqlSource(dsn, "items")
	sync := &commonv1.SyncSpec{Kind: &commonv1.SyncSpec_Watermark{Watermark: &commonv1.WatermarkSync{Column: "updated_at"}}}
	ctx := context.Background()
	start, err := s.ReadChanges(ctx, &extractorv1.ReadChangesRequest{Source: src, Sync: sync})
	if err != nil {
		t.Fatal(err)
	}
	if got := start.GetBatch().GetPosition(); got != `["2024-01-01 00:00:02.000000"]` || start.GetBatch().GetNumRows() != 0 {
		t.Fatalf("start position %s with %d rows", got, start.GetBatch().GetNumRows())
	}
	// Ties: five rows share one watermark, read two at a time.
	mysqlExec(t, dsn,
		`UPDATE items SET name = 'a2', updated_at = '2024-01-01 00:00:05' WHERE id = 1`,
		`INSERT INTO items VALUES (9, 'i', '2024-01-01 00:00:05'), (4, 'd', '2024-01-01 00:00:05'), (7, 'g', '2024-01-01 00:00:05'), (5, 'e', '2024-01-01 00:00:05')`,
		`INSERT INTO items VALUES (6, 'f', NULL), (8, 'h', '2024-01-01 00:00:03')`)
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
			if end != `["2024-01-01 00:00:05.000000","9"]` {
				t.Fatalf("end position %s", end)
			}
		})
	}
	// Exactness and lag: the same position gives the same batch.
	req := &extractorv1.ReadChangesRequest{Source: src, Sync: sync, Position: `["2024-01-01 00:00:03.000000","8"]`, BatchSize: 2}
	a, err := s.ReadChanges(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.ReadChanges(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if a.GetBatch().GetPosition() != b.GetBatch().GetPosition() || batch.SourceRef(a.GetBatch(), 0) != batch.SourceRef(b.GetBatch(), 0) ||
		a.GetBatch().GetPosition() != `["2024-01-01 00:00:05.000000","4"]` {
		t.Fatalf("retried read differs or is wrong: %s vs %s", a.GetBatch().GetPosition(), b.GetBatch().GetPosition())
	}
	if a.GetLagRows() != 3 || a.GetLagSeconds() <= 0 {
		t.Fatalf("lag %d rows, %f s; want 3 rows and a positive age", a.GetLagRows(), a.GetLagSeconds())
	}
	// An empty table starts at [] and then reads every row with a watermark.
	dsn2 := newMySQLDB(t, `CREATE TABLE e (id int PRIMARY KEY, v bigint NULL)`)
	src2 := mysqlSource(dsn2, "e")
	sync2 := &commonv1.SyncSpec{Kind: &commonv1.SyncSpec_Watermark{Watermark: &commonv1.WatermarkSync{Column: "v"}}}
	st2, err := s.ReadChanges(ctx, &extractorv1.ReadChangesRequest{Source: src2, Sync: sync2})
	if err != nil || st2.GetBatch().GetPosition() != "[]" {
		t.Fatalf("empty table start %v %v", st2, err)
	}
	mysqlExec(t, dsn2, `INSERT INTO e VALUES (1, 10), (2, NULL), (3, 5)`)
	if ids, end := changesOf(t, s, src2, sync2, "[]", 10); strings.Join(ids, " ") != "id=3 id=1" || end != `["10","1"]` {
		t.Fatalf("changes %q end %s", ids, end)
	}
	// Refusals name the field.
	for _, tc := range []struct {
		name string
		req  *extractorv1.ReadChangesRequest
		want string
	}{
		{"unknown column", &extractorv1.ReadChangesRequest{Source: src, Sync: &commonv1.SyncSpec{Kind: &commonv1.SyncSpec_Watermark{Watermark: &commonv1.WatermarkSync{Column: "nope"}}}}, "sync.watermark.column"},
		{"text watermark", &extractorv1.ReadChangesRequest{Source: src, Sync: &commonv1.SyncSpec{Kind: &commonv1.SyncSpec_Watermark{Watermark: &commonv1.WatermarkSync{Column: "name"}}}}, "must be an integer, a date or a time"},
		{"bad position", &extractorv1.ReadChangesRequest{Source: src, Sync: sync, Position: `{"x":1}`}, "position"},
		{"logical on mysql", &extractorv1.ReadChangesRequest{Source: src, Sync: &commonv1.SyncSpec{Kind: &commonv1.SyncSpec_Logical{Logical: &commonv1.LogicalSync{}}}}, "sync.logical"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.ReadChanges(ctx, tc.req)
			wantCode(t, err, codes.InvalidArgument, tc.want)
		})
	}
}

// TestMySQLReadKeys pages through the primary key.
func TestMySQLReadKeys(t *testing.T) {
	dsn := newMySQLDB(t, `CREATE TABLE k (a int, b varchar(5), PRIMARY KEY (a, b))`,
		`INSERT INTO k VALUES (2, 'x'), (1, 'z'), (1, 'y'), (3, 'a')`)
	s := newService(t)
	var all []string
	after := ""
	for range 10 {
		resp, err := s.ReadKeys(context.Background(), &extractorv1.ReadKeysRequest{Source: mysqlSource(dsn, "k"), After: after, Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, resp.GetKeys()...)
		if resp.GetDone() {
			break
		}
		after = resp.GetKeys()[len(resp.GetKeys())-1]
	}
	if got := strings.Join(all, " "); got != "1,y 1,z 2,x 3,a" {
		t.Fatalf("keys %q", got)
	}
}
