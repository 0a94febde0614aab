package extract

import (
	"context"
	"fmt"
	"math/rand"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"github.com/cutover/cutover/services/kit/pgtest"
	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"
)

func logicalSync(pub, slot string) *commonv1.SyncSpec {
	return &commonv1.SyncSpec{Kind: &commonv1.SyncSpec_Logical{Logical: &commonv1.LogicalSync{Publication: pub, Slot: slot}}}
}

// follower reads a table's changes as the orchestrator does: from the
// last applied position, applying each batch to a model of the target.
type follower struct {
	t     testing.TB
	s     *Service
	src   *commonv1.SourceSpec
	sync  *commonv1.SyncSpec
	size  int
	pos   string
	model map[string]row
	seq   int64
	// batches are the ops strings of every batch, in order.
	batches []string
	// changes are every change applied: op, reference and values.
	changes []string
}

func (f *follower) read() *extractorv1.ReadChangesResponse {
	f.t.Helper()
	resp, err := f.s.ReadChanges(context.Background(), &extractorv1.ReadChangesRequest{
		Source: f.src, Sync: f.sync, Position: f.pos, BatchSize: int32(f.size), JobId: "job-1", Table: "items", Seq: f.seq})
	if err != nil {
		f.t.Fatalf("ReadChanges(%q): %v", f.pos, err)
	}
	return resp
}

// step reads and applies one batch; it reports whether it had rows.
func (f *follower) step() bool {
	f.t.Helper()
	resp := f.read()
	b := resp.GetBatch()
	if f.pos != "" {
		again := f.read()
		if !reflect.DeepEqual(rowsOf(f.t, again.GetBatch())[:b.GetNumRows()], rowsOf(f.t, b)) {
			f.t.Fatalf("same position %s, different changes", f.pos)
		}
	}
	if len(b.GetOps()) != int(b.GetNumRows()) {
		f.t.Fatalf("%d ops for %d rows", len(b.GetOps()), b.GetNumRows())
	}
	if b.GetPosition() == "" {
		f.t.Fatal("batch without position")
	}
	if f.pos != "" {
		prev, _ := parseLSN(f.pos)
		next, ok := parseLSN(b.GetPosition())
		if !ok || next < prev || next == prev && b.GetNumRows() > 0 {
			f.t.Fatalf("position went from %s to %s", f.pos, b.GetPosition())
		}
	}
	for i, r := range rowsOf(f.t, b) {
		f.changes = append(f.changes, string(b.GetOps()[i])+" "+r.ref+" "+strings.Join(r.vals, "|"))
		switch b.GetOps()[i] {
		case 'u':
			for k, v := range r.vals {
				if v != unchangedText {
					continue
				}
				old, ok := f.model[r.ref]
				if !ok {
					f.t.Fatalf("%s: a value left unchanged, and the target has no row", r.ref)
				}
				r.vals[k] = old.vals[k] // the target keeps its value
			}
			f.model[r.ref] = r
		case 'd':
			if _, ok := f.model[r.ref]; !ok {
				f.t.Fatalf("delete of %s, which the target does not have", r.ref)
			}
			delete(f.model, r.ref)
		default:
			f.t.Fatalf("op %q", b.GetOps()[i])
		}
	}
	f.pos = b.GetPosition()
	f.seq++
	if b.GetNumRows() > 0 {
		f.batches = append(f.batches, string(b.GetOps()))
	}
	return b.GetNumRows() > 0
}

// drain reads until a batch comes back empty with no lag.
func (f *follower) drain() {
	f.t.Helper()
	for i := 0; ; i++ {
		if i > 10000 {
			f.t.Fatal("changes do not end")
		}
		if !f.step() {
			resp := f.read()
			if resp.GetLagRows() != 0 || resp.GetLagSeconds() != 0 || resp.GetBatch().GetNumRows() != 0 {
				f.t.Fatalf("caught up, yet lag %d rows, %g s, %d rows", resp.GetLagRows(), resp.GetLagSeconds(), resp.GetBatch().GetNumRows())
			}
			return
		}
	}
}

// checkModel compares the model with the source table read in full.
func (f *follower) checkModel() {
	f.t.Helper()
	rows, _ := readAll(f.t, f.s, f.src, nil, 1000)
	want := map[string]row{}
	for _, r := range rows {
		want[r.ref] = r
	}
	if len(want) != len(f.model) {
		f.t.Errorf("target has %d rows, source %d", len(f.model), len(want))
	}
	for ref, w := range want {
		if g, ok := f.model[ref]; !ok {
			f.t.Errorf("%s missing from the target", ref)
		} else if !reflect.DeepEqual(g, w) {
			f.t.Errorf("%s:\n target %v\n source %v", ref, g, w)
		}
	}
}

func newFollower(t testing.TB, s *Service, src *commonv1.SourceSpec, sync *commonv1.SyncSpec, size int) *follower {
	return &follower{t: t, s: s, src: src, sync: sync, size: size, model: map[string]row{}}
}

// TestLogicalEveryType follows inserts, updates and deletes of every
// column type the extractor maps: each change reads exactly as the full
// load reads the row (values, NULLs, rejects), in a session time zone
// that is not UTC.
func TestLogicalEveryType(t *testing.T) {
	url := pgtest.NewLogicalDatabase(t)
	pgExec(t, url,
		`DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET timezone = %L', current_database(), 'Asia/Kolkata'); END $$`,
		`CREATE DOMAIN posint AS int4 CHECK (VALUE > 0)`,
		`CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')`,
		`CREATE TABLE items (id int8 PRIMARY KEY, i2 int2, i4 int4, f4 real, f8 double precision, n numeric(12,3),
			b bool, ts timestamp, tstz timestamptz, d date, by bytea, tx text, vc varchar(20), js jsonb, u uuid,
			arr int4[], iv interval, dom posint, en mood, tm time)`)
	s := newService(t)
	src := pgSource(url, "", "items")
	sync := logicalSync("", "")
	f := newFollower(t, s, src, sync, 100)
	f.step() // the start: makes the slot
	pgExec(t, url,
		`INSERT INTO items VALUES
		 (1, -32768, 2147483647, 1.1, 0.1, 123456789.125, true, '2024-02-29 23:59:59.999999', '2024-01-02 03:04:05.5+00', '2024-02-29',
		  '\x00ff10', 'héllo, "world"', 'x', '{"a": [1, 2]}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{1,NULL,3}', '1 day 02:03:04', 7, 'happy', '12:34:56.789'),
		 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
		 (3, 0, 0, 'NaN', '-Infinity', 'NaN', false, '0044-03-15 12:00:00 BC', '1800-01-01 00:00:00+00', '0001-01-01 BC',
		  '', '', '', 'null', '00000000-0000-0000-0000-000000000000', '{}', '-1 mons', 1, 'sad', '00:00:00'),
		 (4, 1, 1, 3.4028235e38, 1.7976931348623157e308, '-0.001', true, 'infinity', '-infinity', 'infinity',
		  '\x5c', E'tab\tnew\nline', 'z', '[]', 'ffffffff-ffff-ffff-ffff-ffffffffffff', '{{1,2},{3,4}}', '0', 2, 'ok', '24:00:00'),
		 (5, 5, 5, 5e-45, 5e-324, 0, false, '12345-06-07 01:02:03', '2262-04-11 23:47:16.854775+05:30', '5874897-12-31',
		  NULL, repeat('x', 3000), NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
		`UPDATE items SET tx = 'changed', f8 = 2.5 WHERE id = 1`,
		`DELETE FROM items WHERE id = 2`,
		`INSERT INTO items (id, tstz) VALUES (6, '1900-01-01 00:00:00 America/Caracas')`)
	f.drain()
	f.checkModel()
	if len(f.model) != 5 {
		t.Fatalf("model has %d rows, want 5", len(f.model))
	}
	// The infinities were rejected as the full load rejects them.
	if r := f.model["id=4"]; !strings.Contains(r.reject, "infinity") {
		t.Errorf("row 4's reject = %q, want the infinity rule", r.reject)
	}
}

// TestLogicalOrderAndWholeTransactions runs transactions of several
// sizes, with key moves, deletes and re-inserts: batches never split a
// transaction (one larger than a batch goes alone), changes come in
// commit order, and the target ends equal to the source.
func TestLogicalOrderAndWholeTransactions(t *testing.T) {
	url := pgtest.NewLogicalDatabase(t)
	pgExec(t, url, `CREATE TABLE items (id int PRIMARY KEY, v text, n int)`)
	s := newService(t)
	src := pgSource(url, "", "items")
	f := newFollower(t, s, src, logicalSync("", ""), 4)
	f.step()
	pgExec(t, url,
		`INSERT INTO items SELECT g, 'v' || g, g FROM generate_series(1, 10) g`, // 10 rows: one batch alone
		`UPDATE items SET v = 'w' WHERE id = 1`,
		`UPDATE items SET id = 100 WHERE id = 2`, // key move: delete 2, upsert 100
		`BEGIN; DELETE FROM items WHERE id = 3; INSERT INTO items VALUES (3, 'again', 3); COMMIT`,
		`BEGIN; UPDATE items SET n = n + 1 WHERE id <= 4; DELETE FROM items WHERE id = 5; COMMIT`, // 4 rows: fills a batch
		`UPDATE items SET v = NULL WHERE id = 6`,
		`UPDATE items SET id = id + 1000 WHERE id IN (7, 8)`)
	f.drain()
	f.checkModel()
	// Batches of up to 4 rows: the 10-row transaction alone; "u" (id 1)
	// with the key move "du" (a third "du" would make 5); the update of 1,
	// 3 and 4 with the delete of 5; "u" (id 6), as the two key moves of 7
	// and 8, one transaction, would make 5.
	want := []string{"uuuuuuuuuu", "udu", "du", "uuud", "u", "dudu"}
	if !reflect.DeepEqual(f.batches, want) {
		t.Errorf("batches %q, want %q", f.batches, want)
	}
}

// TestLogicalKilledReader stops followers at random points (a new Service
// with nothing in memory, as after SIGKILL) and resumes from the position
// last applied, while the source keeps changing: the changes applied are
// exactly those an uninterrupted follower of a twin slot applies, none
// lost, none twice.
func TestLogicalKilledReader(t *testing.T) {
	url := pgtest.NewLogicalDatabase(t)
	pgExec(t, url, `CREATE TABLE items (id int PRIMARY KEY, v int)`)
	src := pgSource(url, "", "items")
	sync := logicalSync("", "cutover_killed")
	twin := newFollower(t, newService(t), src, logicalSync("", "cutover_twin"), 1000)
	twin.step()
	first := newFollower(t, newService(t), src, sync, 3)
	first.step()
	rng := rand.New(rand.NewSource(7))
	var stmts []string
	for i := 0; i < 80; i++ {
		k := rng.Intn(20)
		switch rng.Intn(4) {
		case 0:
			stmts = append(stmts, fmt.Sprintf("INSERT INTO items VALUES (%d, %d) ON CONFLICT (id) DO UPDATE SET v = excluded.v", k, i))
		case 1:
			stmts = append(stmts, fmt.Sprintf("UPDATE items SET v = %d WHERE id = %d", i, k))
		case 2:
			to := 20 + rng.Intn(20)
			stmts = append(stmts, fmt.Sprintf("UPDATE items SET id = %d WHERE id = %d AND NOT EXISTS (SELECT FROM items WHERE id = %d)", to, k, to))
		default:
			stmts = append(stmts, fmt.Sprintf("DELETE FROM items WHERE id = %d", k))
		}
	}
	pgExec(t, url, stmts[:40]...)
	model, pos := first.model, first.pos
	var changes []string
	for round := 0; ; round++ {
		if round == 4 {
			pgExec(t, url, stmts[40:]...)
		}
		if round > 200 {
			t.Fatal("followers do not catch up")
		}
		f := newFollower(t, New(), src, sync, 1+rng.Intn(4))
		f.model, f.pos = model, pos
		had := f.step()
		if had && rng.Intn(2) == 0 {
			had = f.step()
		}
		_ = f.s.Close() // killed: only the position and the target stay
		model, pos = f.model, f.pos
		changes = append(changes, f.changes...)
		if !had && round > 4 {
			break
		}
	}
	f := newFollower(t, newService(t), src, sync, 3)
	f.model, f.pos = model, pos
	f.drain()
	f.checkModel()
	changes = append(changes, f.changes...)
	twin.drain()
	twin.checkModel()
	if !reflect.DeepEqual(changes, twin.changes) {
		t.Errorf("killed followers applied %d changes, an uninterrupted one %d:\n%q\n%q", len(changes), len(twin.changes), changes, twin.changes)
	}
}

// TestLogicalSnapshotMeetsSlot opens the full load's snapshot from the
// slot's creation: rows before it are in the load and not in the slot,
// changes after it are in the slot and not in the load.
func TestLogicalSnapshotMeetsSlot(t *testing.T) {
	url := pgtest.NewLogicalDatabase(t)
	pgExec(t, url, `CREATE TABLE items (id int PRIMARY KEY, v text)`,
		`INSERT INTO items SELECT g, 'before' FROM generate_series(1, 50) g`)
	s := newService(t)
	src := pgSource(url, "", "items")
	sync := logicalSync("", "")
	ctx := context.Background()
	snap, slot, err := s.openLogicalSnapshot(ctx, src, sync, "job-1", "items")
	if err != nil {
		t.Fatal(err)
	}
	if slot != "cutover_job_1_items" {
		t.Errorf("slot %q", slot)
	}
	pgExec(t, url, `UPDATE items SET v = 'after' WHERE id <= 10`, `DELETE FROM items WHERE id > 45`,
		`INSERT INTO items VALUES (100, 'after')`)
	load, _ := readJob(t, s, src, snap, 3, 7)
	f := newFollower(t, s, src, sync, 1000)
	for _, r := range load {
		if r.vals[1] != "before" {
			t.Fatalf("the load saw a change after the slot: %v", r)
		}
		f.model[r.ref] = r
	}
	if len(load) != 50 {
		t.Fatalf("load has %d rows", len(load))
	}
	if _, err := s.CloseSnapshot(ctx, &extractorv1.CloseSnapshotRequest{Source: src, Snapshot: snap}); err != nil {
		t.Fatal(err)
	}
	f.step() // the start: the slot's consistent point
	f.drain()
	f.checkModel()
	if got := strings.Join(f.batches, ""); got != strings.Repeat("u", 10)+strings.Repeat("d", 5)+"u" {
		t.Errorf("changes %q: each change exactly once", got)
	}
	// A slot that exists cannot give a snapshot any more.
	if _, _, err := s.openLogicalSnapshot(ctx, src, sync, "job-1", "items"); err == nil || !strings.Contains(err.Error(), "exists already") {
		t.Errorf("second open: %v", err)
	}
	if err := s.dropLogicalSlot(ctx, src, sync, "job-1", "items"); err != nil {
		t.Fatal(err)
	}
	var n int
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, "SELECT (SELECT count(*) FROM pg_replication_slots) + (SELECT count(*) FROM pg_publication)").Scan(&n); err != nil || n != 0 {
		t.Errorf("slots and publications left: %d (%v)", n, err)
	}
}

// TestLogicalToast: an update that leaves a large value unchanged does not
// log it. With REPLICA IDENTITY FULL the old row has it; without, the
// batch marks it unchanged (the target keeps its value) unless an earlier
// change in the same read has it, and a key move, which no target row can
// keep it for, stops the follower naming the column and the fix.
func TestLogicalToast(t *testing.T) {
	big := func(id int) string {
		// Random text does not compress, so it is stored out of line.
		return fmt.Sprintf(`INSERT INTO items SELECT %d, string_agg(md5((g * %d)::text), ''), 0 FROM generate_series(1, 2000) g`, id, id)
	}
	for _, full := range []bool{true, false} {
		t.Run(fmt.Sprintf("full=%v", full), func(t *testing.T) {
			url := pgtest.NewLogicalDatabase(t)
			pgExec(t, url, `CREATE TABLE items (id int PRIMARY KEY, big text, n int)`)
			if full {
				pgExec(t, url, `ALTER TABLE items REPLICA IDENTITY FULL`)
			}
			s := newService(t)
			src := pgSource(url, "", "items")
			f := newFollower(t, s, src, logicalSync("", ""), 10)
			f.step()
			pgExec(t, url, big(1))
			f.drain()
			pgExec(t, url, `UPDATE items SET n = 1`)
			resp := f.read()
			wantLeft := int64(1)
			if full {
				wantLeft = 0
			}
			if got := resp.GetUnchangedValues(); got != wantLeft {
				t.Errorf("unchanged values %d, want %d", got, wantLeft)
			}
			f.drain()
			f.checkModel()
			// An insert and its update in one read: the insert has the value.
			pgExec(t, url, "BEGIN; "+big(3)+"; UPDATE items SET n = 3 WHERE id = 3; COMMIT")
			if got := f.read().GetUnchangedValues(); got != 0 {
				t.Errorf("unchanged values %d after an insert in the same read", got)
			}
			f.drain()
			f.checkModel()
			pgExec(t, url, `UPDATE items SET id = 2 WHERE id = 1`)
			if !full {
				_, err := s.ReadChanges(context.Background(), &extractorv1.ReadChangesRequest{Source: src, Sync: f.sync, Position: f.pos, BatchSize: 10, JobId: "job-1", Table: "items"})
				wantCode(t, err, codes.FailedPrecondition, "moved", "column big", "REPLICA IDENTITY FULL")
				return
			}
			pgExec(t, url, `DELETE FROM items WHERE id = 3`)
			f.drain()
			f.checkModel()
			// insert, update, insert+update, key move and delete
			if got := strings.Join(f.batches, "|"); got != "u|u|uu|dud" {
				t.Errorf("batches %q", got)
			}
		})
	}
}

// TestLogicalRefusals: what cannot be followed stops with the reason.
func TestLogicalRefusals(t *testing.T) {
	url := pgtest.NewLogicalDatabase(t)
	pgExec(t, url, `CREATE TABLE items (id int PRIMARY KEY, v int)`, `CREATE TABLE nokey (v int)`,
		`CREATE TABLE other (id int PRIMARY KEY)`, `CREATE PUBLICATION both_tables FOR TABLE items, other`)
	s := newService(t)
	ctx := context.Background()
	src := pgSource(url, "", "items")
	read := func(src *commonv1.SourceSpec, sync *commonv1.SyncSpec, pos string) (*extractorv1.ReadChangesResponse, error) {
		return s.ReadChanges(ctx, &extractorv1.ReadChangesRequest{Source: src, Sync: sync, Position: pos, JobId: "job-1", Table: "items"})
	}
	_, err := read(pgSource(url, "", "nokey"), logicalSync("", ""), "")
	wantCode(t, err, codes.FailedPrecondition, "nokey has no primary key")
	_, err = read(src, logicalSync("", "Bad-Slot"), "")
	wantCode(t, err, codes.InvalidArgument, "sync.logical.slot")
	_, err = read(src, logicalSync("", ""), "zz/1")
	wantCode(t, err, codes.InvalidArgument, "position")
	_, err = read(src, logicalSync("", "cutover_missing"), "0/1000000")
	wantCode(t, err, codes.FailedPrecondition, "cutover_missing does not exist")
	_, err = read(src, logicalSync("no_such_pub", ""), "")
	wantCode(t, err, codes.InvalidArgument, "sync.logical.publication", "no_such_pub does not exist")
	pgExec(t, url, `CREATE PUBLICATION other_only FOR TABLE other`)
	_, err = read(src, logicalSync("other_only", ""), "")
	wantCode(t, err, codes.InvalidArgument, "does not cover")
	_, err = s.ReadChanges(ctx, &extractorv1.ReadChangesRequest{Source: src, Sync: logicalSync("", "")})
	wantCode(t, err, codes.InvalidArgument, "job_id")

	// A publication of two tables: the other's changes are left out, and
	// its TRUNCATE too; the followed table's TRUNCATE stops the follower.
	sync := logicalSync("both_tables", "cutover_refusals")
	f := newFollower(t, s, src, sync, 10)
	f.step()
	start := f.pos
	pgExec(t, url, `INSERT INTO other SELECT generate_series(1, 30)`, `INSERT INTO items VALUES (1, 1)`, `TRUNCATE other`,
		`INSERT INTO items VALUES (2, 2)`)
	f.drain()
	f.checkModel()
	pgExec(t, url, `TRUNCATE items`)
	_, err = read(src, sync, f.pos)
	wantCode(t, err, codes.FailedPrecondition, "items was truncated")
	// The ledger cannot go back behind what was confirmed.
	_, err = read(src, sync, start)
	wantCode(t, err, codes.FailedPrecondition, "is behind replication slot cutover_refusals")
}

// TestLogicalLag: pending changes show as lag until they are read.
func TestLogicalLag(t *testing.T) {
	url := pgtest.NewLogicalDatabase(t)
	pgExec(t, url, `CREATE TABLE items (id int PRIMARY KEY)`)
	s := newService(t)
	f := newFollower(t, s, pgSource(url, "", "items"), logicalSync("", ""), 5)
	f.step()
	var stmts []string
	for i := 0; i < 12; i++ {
		stmts = append(stmts, fmt.Sprintf("INSERT INTO items VALUES (%d)", i))
	}
	pgExec(t, url, stmts...)
	resp := f.read()
	if resp.GetBatch().GetNumRows() != 5 || resp.GetLagRows() != 7 || resp.GetLagSeconds() < 0 {
		t.Errorf("rows %d lag %d rows %g s, want 5 rows and lag 7", resp.GetBatch().GetNumRows(), resp.GetLagRows(), resp.GetLagSeconds())
	}
	f.drain()
	f.checkModel()
}

func TestLSNText(t *testing.T) {
	for _, c := range []struct {
		in   string
		want lsn
		ok   bool
	}{{"0/16B3748", 0x16B3748, true}, {"16/b374d848", 0x16_B374D848, true}, {"FFFFFFFF/FFFFFFFF", 1<<64 - 1, true},
		{"", 0, false}, {"0/", 0, false}, {"/1", 0, false}, {"1/2/3", 0, false}, {"123456789/0", 0, false}, {"-1/0", 0, false}, {"g/0", 0, false}} {
		got, ok := parseLSN(c.in)
		if ok != c.ok || got != c.want {
			t.Errorf("parseLSN(%q) = %v, %v", c.in, got, ok)
		}
		if ok && !strings.EqualFold(got.String(), c.in) {
			t.Errorf("%q formats as %q", c.in, got)
		}
	}
}

func TestISOTimestamps(t *testing.T) {
	ref := func(s string) int64 {
		tm, err := time.Parse("2006-01-02 15:04:05.999999Z07:00", s)
		if err != nil {
			t.Fatal(err)
		}
		return tm.UnixMicro()
	}
	for _, c := range []struct {
		in    string
		tz    bool
		want  int64
		inf   int
		wrong bool
	}{
		{in: "2024-01-02 03:04:05", want: ref("2024-01-02 03:04:05Z")},
		{in: "2024-01-02 03:04:05.5+05:30", tz: true, want: ref("2024-01-01 21:34:05.5Z")},
		{in: "1900-01-01 00:00:00-04:27:40", tz: true, want: ref("1900-01-01 04:27:40Z")},
		{in: "1970-01-01 00:00:00.000001+00", tz: true, want: 1},
		{in: "0001-01-01 00:00:00 BC", want: ref("0000-01-01 00:00:00Z")},
		{in: "infinity", inf: 1}, {in: "-infinity", tz: true, inf: -1},
		{in: "2024-01-02", wrong: true}, {in: "2024-01-02 03:04", wrong: true}, {in: "2024-13-02 03:04:05", wrong: true},
		{in: "2024-01-02 03:04:05", tz: true, wrong: true}, {in: "2024-01-02 03:04:05.1234567", wrong: true},
	} {
		us, inf, ok := parseISOTimestamp(c.in, c.tz)
		if ok == c.wrong || ok && (us != c.want || inf != c.inf) {
			t.Errorf("parseISOTimestamp(%q, %v) = %d, %d, %v; want %d, %d", c.in, c.tz, us, inf, ok, c.want, c.inf)
		}
	}
	for _, c := range []struct {
		in   string
		want int64
	}{{"1970-01-01", 0}, {"2000-01-01", 10957}, {"0001-01-01 BC", -719528}, {"1969-12-31", -1}} {
		if d, _, ok := parseISODate(c.in); !ok || d != c.want {
			t.Errorf("parseISODate(%q) = %d, %v; want %d", c.in, d, ok, c.want)
		}
	}
	for in, want := range map[string]string{`\x00ff`: "\x00\xff", `a\\b\001`: "a\\b\x01", ``: ``} {
		if got, ok := decodeBytea([]byte(in)); !ok || string(got) != want {
			t.Errorf("decodeBytea(%q) = %q, %v", in, got, ok)
		}
	}
}

func TestDefaultLogicalNames(t *testing.T) {
	long := strings.Repeat("Table-", 20)
	a, b := defaultSlot("job-1", long), defaultSlot("job-1", long+"x")
	if len(a) > 63 || a == b || !slotNameRE.MatchString(a) {
		t.Errorf("slot names %q, %q", a, b)
	}
	if got := defaultSlot("job-20240101-000000-ab12", "Orders"); got != "cutover_job_20240101_000000_ab12_orders" {
		t.Errorf("slot %q", got)
	}
	// DropSlot derives the same names from the job and table.
	if p, s := defaultPublication("job-1", "items"), defaultSlot("job-1", "Items.Ünï"); p != "cutover_6bb1c25baabd3920" || s != "cutover_job_1_items___n__" {
		t.Errorf("names %q, %q", p, s)
	}
	if defaultPublication("j", "t") == defaultPublication("j", "u") {
		t.Error("publications of two tables share a name")
	}
}

// pgoutputSeeds are well-formed messages of every kind.
func pgoutputSeeds() [][]byte {
	be := func(parts ...any) []byte {
		var out []byte
		for _, p := range parts {
			switch v := p.(type) {
			case byte:
				out = append(out, v)
			case uint16:
				out = append(out, byte(v>>8), byte(v))
			case uint32:
				out = append(out, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
			case uint64:
				for i := 7; i >= 0; i-- {
					out = append(out, byte(v>>(8*i)))
				}
			case string:
				out = append(append(out, v...), 0)
			case []byte:
				out = append(out, v...)
			}
		}
		return out
	}
	tuple := be(uint16(3), byte('t'), uint32(1), []byte("1"), byte('n'), byte('u'))
	return [][]byte{
		be(byte('B'), uint64(0x16B3748), uint64(1), uint32(727)),
		be(byte('C'), byte(0), uint64(0x16B3748), uint64(0x16B3778), uint64(2)),
		be(byte('O'), uint64(5), "origin"),
		be(byte('Y'), uint32(16400), "public", "mood"),
		be(byte('R'), uint32(16385), "public", "items", byte('d'), uint16(2), byte(1), "id", uint32(23), uint32(0xffffffff), byte(0), "v", uint32(25), uint32(0xffffffff)),
		be(byte('I'), uint32(16385), byte('N'), tuple),
		be(byte('U'), uint32(16385), byte('O'), tuple, byte('N'), tuple),
		be(byte('U'), uint32(16385), byte('N'), tuple),
		be(byte('D'), uint32(16385), byte('K'), tuple),
		be(byte('T'), uint32(2), byte(0), uint32(16385), uint32(16390)),
	}
}

func TestParsePgoutputSeeds(t *testing.T) {
	for _, m := range pgoutputSeeds() {
		if _, err := parsePgoutput(m); err != nil {
			t.Errorf("%q: %v", m, err)
		}
		// A short message is refused with its name, never a panic.
		for i := 0; i < len(m); i++ {
			if _, err := parsePgoutput(m[:i]); err != nil && !strings.Contains(err.Error(), "pgoutput") {
				t.Errorf("prefix %q of %q: %v", m[:i], m, err)
			}
		}
	}
}

// TestDecodeEveryKindFromServer decodes what a real server sends, every
// kind of message included (Origin from a replication origin, Type from an
// enum, Truncate).
func TestDecodeEveryKindFromServer(t *testing.T) {
	url := pgtest.NewLogicalDatabase(t)
	pgExec(t, url, `CREATE TYPE mood AS ENUM ('sad', 'ok')`, `CREATE TABLE items (id int PRIMARY KEY, m mood)`,
		`CREATE PUBLICATION p FOR TABLE items`, `SELECT pg_create_logical_replication_slot('kinds', 'pgoutput')`,
		`INSERT INTO items VALUES (1, 'sad')`, `UPDATE items SET m = 'ok'`, `UPDATE items SET id = 2`, `DELETE FROM items`,
		`SELECT pg_replication_origin_create('elsewhere')`,
		`SELECT pg_replication_origin_session_setup('elsewhere'); INSERT INTO items VALUES (3, 'ok')`,
		`TRUNCATE items`)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT data FROM pg_logical_slot_peek_binary_changes('kinds', NULL, NULL, 'proto_version', '1', 'publication_names', 'p')`)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[byte]int{}
	for rows.Next() {
		data := rows.RawValues()[0]
		if _, err := parsePgoutput(data); err != nil {
			t.Errorf("%q: %v", data, err)
		}
		kinds[data[0]]++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for k := range kinds {
		got = append(got, string(k))
	}
	sort.Strings(got)
	if s := strings.Join(got, ""); s != "BCDIORTUY" {
		t.Errorf("message kinds %q, want every one of BCDIORTUY", s)
	}
	_, _ = conn.Exec(ctx, "SELECT pg_drop_replication_slot('kinds')")
}

// FuzzParsePgoutput: whatever the bytes, a message decodes or is refused
// with an error naming pgoutput; pglogrepl's panics do not escape.
func FuzzParsePgoutput(f *testing.F) {
	for _, m := range pgoutputSeeds() {
		f.Add(m)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parsePgoutput(b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "pgoutput ") {
				t.Fatalf("error does not say what it decodes: %v", err)
			}
			return
		}
		if m == nil {
			t.Fatalf("no message and no error for %q", b)
		}
	})
}

func FuzzTextValues(f *testing.F) {
	for _, s := range []string{"2024-01-02 03:04:05.5+05:30", "0044-03-15 BC", `\x00ff`, `a\001`, "infinity", "1e308", "t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		parseISOTimestamp(s, true)
		parseISOTimestamp(s, false)
		parseISODate(s)
		decodeBytea([]byte(s))
		parseLSN(s)
	})
}

// TestLogicalSchemaChange: a nullable column added while following is in
// the batches from then on (NULL in changes made before it); a dropped or
// retyped column, or one added with a default, stops the follower naming
// the column and both definitions.
func TestLogicalSchemaChange(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ddl   string
		after string
		want  []string // error parts; none: carried
	}{
		{"add nullable", `ALTER TABLE items ADD COLUMN note text`, `INSERT INTO items VALUES (3, 3, 'three')`, nil},
		{"drop", `ALTER TABLE items DROP COLUMN v`, `INSERT INTO items VALUES (3)`, []string{"column v integer", "no longer in the table", "id integer"}},
		{"retype", `ALTER TABLE items ALTER COLUMN v TYPE text`, `INSERT INTO items VALUES (3, 'x')`, []string{"column v", "integer in the replicated changes, text in the table now"}},
		{"add with default", `ALTER TABLE items ADD COLUMN note text DEFAULT 'n/a'`, `INSERT INTO items VALUES (3, 3)`, []string{"column note text", "with a default or NOT NULL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := pgtest.NewLogicalDatabase(t)
			pgExec(t, url, `CREATE TABLE items (id int PRIMARY KEY, v int)`)
			s := newService(t)
			src := pgSource(url, "", "items")
			f := newFollower(t, s, src, logicalSync("", ""), 10)
			f.step()
			pgExec(t, url, `INSERT INTO items VALUES (1, 1)`)
			f.drain()
			pgExec(t, url, `INSERT INTO items VALUES (2, 2)`, tc.ddl, tc.after)
			if tc.want != nil {
				_, err := s.ReadChanges(context.Background(), &extractorv1.ReadChangesRequest{Source: src, Sync: f.sync, Position: f.pos, BatchSize: 10, JobId: "job-1", Table: "items"})
				wantCode(t, err, codes.FailedPrecondition, tc.want...)
				return
			}
			b := f.read().GetBatch()
			if got := batch.ColumnNames(b); got != "id, v, note" {
				t.Fatalf("columns %s", got)
			}
			rows := rowsOf(t, b)
			if len(rows) != 2 || rows[0].vals[2] != null || rows[1].vals[2] != "three" {
				t.Errorf("rows %v: want note NULL before the column was added, then its value", rows)
			}
			f.model = map[string]row{} // the model's rows have a column less
			pgExec(t, url, `UPDATE items SET note = 'n' WHERE id < 3`)
			f.drain()
			f.checkModel()
		})
	}
}

// TestLogicalTruncate: with on_truncate APPLY the transactions before a
// TRUNCATE come first, then its own transaction as a batch that says so
// (holding the rows it wrote after the TRUNCATE), then the rest; with STOP
// (the default) the read stops naming the setting.
func TestLogicalTruncate(t *testing.T) {
	url := pgtest.NewLogicalDatabase(t)
	pgExec(t, url, `CREATE TABLE items (id int PRIMARY KEY)`)
	s := newService(t)
	src := pgSource(url, "", "items")
	sync := logicalSync("", "")
	sync.OnTruncate = commonv1.TruncatePolicy_TRUNCATE_POLICY_APPLY
	f := newFollower(t, s, src, sync, 100)
	f.step()
	pgExec(t, url, `INSERT INTO items VALUES (1)`, `TRUNCATE items`, `INSERT INTO items VALUES (2)`,
		`BEGIN; INSERT INTO items VALUES (3); TRUNCATE items; INSERT INTO items VALUES (4), (5); COMMIT`, `INSERT INTO items VALUES (6)`)
	var got []string
	for range 6 {
		r := f.read()
		b := r.GetBatch()
		step := fmt.Sprintf("%s truncated=%v", b.GetOps(), r.GetSourceTruncated())
		got = append(got, step)
		if b.GetPosition() == f.pos {
			break
		}
		f.pos = b.GetPosition()
	}
	want := "u truncated=false| truncated=true|u truncated=false|uu truncated=true|u truncated=false| truncated=false"
	if g := strings.Join(got, "|"); g != want {
		t.Errorf("batches %q, want %q", g, want)
	}
	sync.OnTruncate = commonv1.TruncatePolicy_TRUNCATE_POLICY_STOP
	pgExec(t, url, `TRUNCATE items`)
	_, err := s.ReadChanges(context.Background(), &extractorv1.ReadChangesRequest{Source: src, Sync: sync, Position: f.pos, JobId: "job-1", Table: "items"})
	wantCode(t, err, codes.FailedPrecondition, "items was truncated", "on_truncate is STOP")
}

// TestLogicalQuietTable: when only other tables change, an empty batch
// moves the position past their WAL (every 16 MiB), so the slot can free
// it; a change of the table after that is still read.
func TestLogicalQuietTable(t *testing.T) {
	url := pgtest.NewLogicalDatabase(t)
	pgExec(t, url, `CREATE TABLE items (id int PRIMARY KEY)`, `CREATE TABLE other (id int, pad text)`)
	s := newService(t)
	f := newFollower(t, s, pgSource(url, "", "items"), logicalSync("", ""), 10)
	f.step()
	start := f.pos
	pgExec(t, url, `INSERT INTO other SELECT g, repeat('x', 200) FROM generate_series(1, 100000) g`)
	var moved string
	for range 20 {
		r := f.read()
		if r.GetBatch().GetNumRows() != 0 {
			t.Fatalf("%d rows of items, none written", r.GetBatch().GetNumRows())
		}
		if r.GetBatch().GetPosition() != f.pos {
			moved = r.GetBatch().GetPosition()
			break
		}
	}
	from, _ := parseLSN(start)
	to, ok := parseLSN(moved)
	if !ok || to < from+quietAdvance {
		t.Fatalf("position %q after 20 MB of another table's WAL, from %s: want it moved by at least 16 MiB", moved, start)
	}
	f.pos = moved
	pgExec(t, url, `INSERT INTO items VALUES (1)`)
	f.drain()
	f.checkModel()
}

// TestLogicalStreamKept: a follower that reads on from each batch's end
// continues one replication stream (transactions read past a batch are
// kept for the next read), and applies every change once in order: the
// target equals the source, with far fewer streams opened than reads.
func TestLogicalStreamKept(t *testing.T) {
	url := pgtest.NewLogicalDatabase(t)
	pgExec(t, url, `CREATE TABLE items (id int PRIMARY KEY, v int)`)
	s := newService(t)
	f := newFollower(t, s, pgSource(url, "", "items"), logicalSync("", ""), 7)
	f.step()
	rng := rand.New(rand.NewSource(3))
	var stmts []string
	for i := 0; i < 60; i++ {
		var b strings.Builder
		b.WriteString("BEGIN;")
		for j := rng.Intn(12); j >= 0; j-- {
			k := rng.Intn(50)
			switch rng.Intn(3) {
			case 0:
				fmt.Fprintf(&b, "INSERT INTO items VALUES (%d, %d) ON CONFLICT (id) DO UPDATE SET v = excluded.v;", k, i)
			case 1:
				fmt.Fprintf(&b, "UPDATE items SET v = v + 1 WHERE id = %d;", k)
			default:
				fmt.Fprintf(&b, "DELETE FROM items WHERE id = %d;", k)
			}
		}
		b.WriteString("COMMIT")
		stmts = append(stmts, b.String())
	}
	pgExec(t, url, stmts...)
	before := s.streamOpens.Load()
	reads := 0
	for {
		r := f.read()
		reads++
		b := r.GetBatch()
		for i, row := range rowsOf(t, b) {
			switch b.GetOps()[i] {
			case 'u':
				f.model[row.ref] = row
			case 'd':
				delete(f.model, row.ref)
			}
		}
		f.pos = b.GetPosition()
		if b.GetNumRows() == 0 && r.GetLagRows() == 0 {
			break
		}
		if reads > 1000 {
			t.Fatal("changes do not end")
		}
	}
	f.checkModel()
	if opened := s.streamOpens.Load() - before; reads < 5 || opened > 2 {
		t.Errorf("%d reads opened %d streams; want one stream continued", reads, opened)
	}
}
