package load

import (
	"context"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func changeBatch(seq int64, ops, position string, b *commonv1.Batch) *commonv1.Batch {
	b.Seq, b.Ops, b.Position = seq, []byte(ops), position
	return b
}

// TestChangeBatches: after an insert-mode full load, change batches upsert
// and delete by key in one transaction each, the last change of a key in a
// batch wins, the ledger holds each batch once with its position (GetLedger
// gives it as last_key) and its deletes, and RollbackJob gives the table
// back as it was before the job: rows the full load inserted and the sync
// changed go, rows that were there before come back.
func TestChangeBatches(t *testing.T) {
	for _, textOnly := range []bool{false, true} {
		t.Run(map[bool]string{false: "binary", true: "text"}[textOnly], func(t *testing.T) {
			e := newEnv(t,
				`CREATE TABLE item (id bigint PRIMARY KEY, name text NOT NULL, qty int)`,
				`INSERT INTO item VALUES (1, 'before 1', 1), (2, 'before 2', 2)`)
			e.svc.textOnly.Store(textOnly)
			before := e.checksum(t, "item")
			const job = "job-sync"
			// The full load inserts 3..5 (insert mode).
			full := withRefs(mkBatch(0, col{"id", tInt, []any{3, 4, 5}}, col{"name", tText, []any{"full 3", "full 4", "full 5"}}, col{"qty", tInt, []any{3, 4, 5}}), "id=3", "id=4", "id=5")
			if _, err := e.load(t, e.config("item", job, "item-0000"), full); err != nil {
				t.Fatal(err)
			}
			// Changes: 3 updated, 6 new, 2 (there before) deleted, 4 deleted
			// then re-inserted in one batch, 5 updated then deleted, one row
			// quarantined upstream; then 1 (there before) updated, 3 deleted.
			c0 := changeBatch(0, "uuduuddu", `["t1","9"]`, withRefs(mkBatch(0,
				col{"id", tInt, []any{3, 6, 2, 4, 4, 5, 5, 9}},
				col{"name", tText, []any{"sync 3", "sync 6", nil, "sync 4", "again 4", "sync 5", nil, "bad"}},
				col{"qty", tInt, []any{30, 60, nil, 40, 41, 50, nil, 90}}), "id=3", "id=6", "id=2", "id=4", "id=4", "id=5", "id=5", "id=9"))
			c0.Rejects = []*commonv1.Reject{rejectRow(7)}
			c0.Ops[3] = 'd' // 4: deleted, then upserted ("again 4")
			c1 := changeBatch(1, "ud", `["t2","3"]`, withRefs(mkBatch(1,
				col{"id", tInt, []any{1, 3}}, col{"name", tText, []any{"sync 1", nil}}, col{"qty", tInt, []any{10, nil}}), "id=1", "id=3"))
			cfg := e.config("item", job, "sync:item")
			resp, err := e.load(t, cfg, c0, c1)
			if err != nil {
				t.Fatal(err)
			}
			// c0: 8 rows = 1 quarantined + 2 deletes (2, 5) + 3 upserts (3, 6, 4) + 2 superseded.
			if c := resp[0].GetCounts(); c.GetExtracted() != 8 || c.GetLoaded() != 7 || c.GetQuarantined() != 1 {
				t.Errorf("change batch 0 counts %v", c)
			}
			if got := strings.Join(e.rows(t, `SELECT id, name, qty FROM item ORDER BY id`), ";"); got != "1|sync 1|10;4|again 4|41;6|sync 6|60" {
				t.Errorf("target after changes: %s", got)
			}
			// A retried batch is skipped: the ledger makes it exactly once.
			again, err := e.load(t, cfg, c0)
			if err != nil || !again[0].GetSkipped() {
				t.Fatalf("retried change batch: %v %v", again, err)
			}
			led, err := e.client.GetLedger(context.Background(), &loaderv1.GetLedgerRequest{Target: e.target(), JobId: job, PartitionId: "sync:item"})
			if err != nil {
				t.Fatal(err)
			}
			if n := len(led.GetEntries()); n != 2 || led.Entries[0].GetLastKey() != `["t1","9"]` || led.Entries[1].GetLastKey() != `["t2","3"]` {
				t.Fatalf("ledger %v", led.GetEntries())
			}
			if got := e.rows(t, `SELECT seq, deletes FROM cutover.ledger WHERE partition_id = 'sync:item' ORDER BY seq`); strings.Join(got, ";") != "0|2;1|1" {
				t.Errorf("ledger deletes %v", got)
			}
			e.checkLedgerBalanced(t)
			r := e.rollback(t, job, "item")
			if got := e.checksum(t, "item"); got != before {
				t.Errorf("after rollback (%s): %s, want %s: %v", rolled(r), got, before, e.rows(t, `SELECT id, name, qty FROM item ORDER BY id`))
			}
		})
	}
}

// TestChangeBatchRefusals: bad ops and a target without a key are refused
// with the field named.
func TestChangeBatchRefusals(t *testing.T) {
	e := newEnv(t, `CREATE TABLE k (id bigint PRIMARY KEY, v text)`, `CREATE TABLE nokey (id bigint, v text)`)
	for _, tc := range []struct {
		name, table string
		b           *commonv1.Batch
		want        string
	}{
		{"ops length", "k", changeBatch(0, "u", "p", withRefs(mkBatch(0, col{"id", tInt, []any{1, 2}}), "a", "b")), "ops has 1 entries for 2 rows"},
		{"bad op", "k", changeBatch(0, "ux", "p", withRefs(mkBatch(0, col{"id", tInt, []any{1, 2}}), "a", "b")), "ops[1]"},
		{"null key", "k", changeBatch(0, "d", "p", withRefs(mkBatch(0, col{"id", tInt, []any{nil}}), "a")), "primary-key column id is NULL"},
		{"no key", "nokey", changeBatch(0, "u", "p", withRefs(mkBatch(0, col{"id", tInt, []any{1}}), "a")), "need a target table with a primary key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.load(t, e.config(tc.table, "job-bad", "sync:"+tc.table), tc.b)
			if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}
