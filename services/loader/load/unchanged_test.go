package load

import (
	"context"
	"fmt"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// unch marks a value a change left out (Column.unchanged) in changeRows.
type unch struct{}

// crow is one row of a change batch: op, then id, title, big, notes, qty;
// a value unch{} is left out of the change.
type crow struct {
	op                byte
	id                int
	title, big, notes any
	qty               any
}

// changeRows builds change batch seq from rows, marking the unch{} values.
func changeRows(seq int64, rows ...crow) *commonv1.Batch {
	names := []string{"id", "title", "big", "notes", "qty"}
	types := []commonv1.ColumnType{tInt, tText, tText, tText, tInt}
	vals := make([][]any, len(names))
	var ops []byte
	var refs []string
	for _, r := range rows {
		ops = append(ops, r.op)
		refs = append(refs, fmt.Sprintf("id=%d", r.id))
		for k, v := range []any{r.id, r.title, r.big, r.notes, r.qty} {
			if _, ok := v.(unch); ok {
				v = nil
			}
			vals[k] = append(vals[k], v)
		}
	}
	cols := make([]col, len(names))
	for k := range names {
		cols[k] = col{names[k], types[k], vals[k]}
	}
	b := withRefs(mkBatch(seq, cols...), refs...)
	for i, r := range rows {
		for k, v := range []any{r.id, r.title, r.big, r.notes, r.qty} {
			if _, ok := v.(unch); ok {
				b.Columns[k].Unchanged = batch.SetBit(b.Columns[k].Unchanged, i)
			}
		}
	}
	return changeBatch(seq, string(ops), fmt.Sprintf(`["t%d"]`, seq), b)
}

// bigText is a value large enough to be stored out of line (TOASTed).
func bigText(tag string) string { return strings.Repeat(tag+" ", 12000/(len(tag)+1)) }

// TestUnchangedValues: a change batch whose rows leave a big TOASTed
// column out (Column.unchanged) keeps the target's value of it and takes
// the others from the batch, without rewriting the big value; a row that
// leaves a value out and whose key has no target row (the full load
// quarantined it, or it never existed) is quarantined with a reason that
// says so and the rest loads, in bulk and in isolating mode (a row the
// target refuses sends the batch down the isolating path); RollbackJob
// gives the table back as it was before the job. Binary and text COPY.
func TestUnchangedValues(t *testing.T) {
	const noRow = "the value was not in the change (an unchanged TOASTed value, which PostgreSQL leaves out of the log) and the target has no row "
	tests := []struct {
		name   string
		rows   []crow
		loaded int64
		want   []string // id|title|big (tag, length)|notes|qty after the batch
		quar   []string // row|stage|rule|column|reason
		// sameToast: no TOASTed value was rewritten (the kept ones kept
		// their storage).
		sameToast bool
	}{
		{
			name: "kept",
			rows: []crow{
				{op: 'u', id: 1, title: "sync 1", big: unch{}, notes: "n1", qty: 10},
				{op: 'u', id: 3, title: "sync 3", big: unch{}, notes: unch{}, qty: 30},
				{op: 'u', id: 4, title: "sync 4", big: unch{}, notes: nil, qty: nil},
			},
			loaded: 3,
			want: []string{
				"1|sync 1|pre1:12000|n1|10", "2|pre 2|pre2:12000|pre notes 2|2",
				"3|sync 3|full3:12000|full notes 3|30", "4|sync 4|full4:12000|NULL|NULL", "5|full 5|full5:12000|full notes 5|5",
			},
			sameToast: true,
		},
		{
			name: "no target row",
			rows: []crow{
				{op: 'u', id: 3, title: "sync 3", big: unch{}, notes: "n3", qty: 30},
				{op: 'u', id: 6, title: "sync 6", big: unch{}, notes: "n6", qty: 60}, // the full load quarantined 6
				{op: 'u', id: 7, title: "sync 7", big: unch{}, notes: unch{}, qty: 70},
			},
			loaded: 1,
			want: []string{
				"1|pre 1|pre1:12000|pre notes 1|1", "2|pre 2|pre2:12000|pre notes 2|2",
				"3|sync 3|full3:12000|n3|30", "4|full 4|full4:12000|full notes 4|4", "5|full 5|full5:12000|full notes 5|5",
			},
			quar: []string{
				"1|load|unchanged_no_target_row|big|column big: " + noRow + "id=6 to keep it from",
				"2|load|unchanged_no_target_row|big|columns big, notes: the values were not in the change (unchanged TOASTed values, which PostgreSQL leaves out of the log) and the target has no row id=7 to keep them from",
			},
		},
		{
			name: "mixed",
			rows: []crow{
				{op: 'u', id: 1, title: "sync 1", big: unch{}, notes: "n1", qty: 11},
				{op: 'u', id: 4, title: "sync 4", big: bigText("new4"), notes: unch{}, qty: 41},
				{op: 'd', id: 2},
				{op: 'u', id: 8, title: "new 8", big: "small 8", notes: "n8", qty: 8},
				{op: 'u', id: 5, title: "sync 5", big: unch{}, notes: unch{}, qty: 51},
				{op: 'u', id: 9, title: "sync 9", big: unch{}, notes: "n9", qty: 9},
				{op: 'u', id: 3, title: "sync 3", big: nil, notes: "n3", qty: 31},
			},
			loaded: 6,
			want: []string{
				"1|sync 1|pre1:12000|n1|11", "3|sync 3|NULL|n3|31", "4|sync 4|new4:12000|full notes 4|41",
				"5|sync 5|full5:12000|full notes 5|51", "8|new 8|small:7|n8|8",
			},
			quar: []string{"5|load|unchanged_no_target_row|big|column big: " + noRow + "id=9 to keep it from"},
		},
		{
			name: "isolating",
			rows: []crow{
				{op: 'u', id: 1, title: "sync 1", big: unch{}, notes: "n1", qty: 12},
				{op: 'u', id: 6, title: "sync 6", big: unch{}, notes: "n6", qty: 60},
				{op: 'u', id: 3, title: "sync 3", big: unch{}, notes: "n3", qty: -3}, // the CHECK refuses it
				{op: 'u', id: 10, title: "new 10", big: "small 10", notes: "n10", qty: 10},
				{op: 'u', id: 4, title: "sync 4", big: unch{}, notes: unch{}, qty: 42},
			},
			loaded: 3,
			want: []string{
				"1|sync 1|pre1:12000|n1|12", "2|pre 2|pre2:12000|pre notes 2|2",
				"3|full 3|full3:12000|full notes 3|3", "4|sync 4|full4:12000|full notes 4|42", "5|full 5|full5:12000|full notes 5|5",
				"10|new 10|small:8|n10|10",
			},
			quar: []string{
				"1|load|unchanged_no_target_row|big|column big: " + noRow + "id=6 to keep it from",
				`2|load|target_constraint||new row for relation "doc" violates check constraint "doc_qty_check"`,
			},
		},
	}
	for _, tc := range tests {
		for _, textOnly := range []bool{false, true} {
			t.Run(tc.name+"/"+map[bool]string{false: "binary", true: "text"}[textOnly], func(t *testing.T) {
				e := newEnv(t,
					`CREATE TABLE doc (id bigint PRIMARY KEY, title text NOT NULL, big text, notes text, qty int CHECK (qty >= 0))`,
					`ALTER TABLE doc ALTER big SET STORAGE EXTERNAL`,
					`INSERT INTO doc VALUES (1, 'pre 1', repeat('pre1 ', 2400), 'pre notes 1', 1), (2, 'pre 2', repeat('pre2 ', 2400), 'pre notes 2', 2)`)
				e.svc.textOnly.Store(textOnly)
				before := e.checksum(t, "doc")
				const job = "job-toast"
				// The full load inserts 3..5; 6 breaks the CHECK: quarantined.
				full := withRefs(mkBatch(0,
					col{"id", tInt, []any{3, 4, 5, 6}},
					col{"title", tText, []any{"full 3", "full 4", "full 5", "full 6"}},
					col{"big", tText, []any{bigText("full3"), bigText("full4"), bigText("full5"), bigText("full6")}},
					col{"notes", tText, []any{"full notes 3", "full notes 4", "full notes 5", "full notes 6"}},
					col{"qty", tInt, []any{3, 4, 5, -6}}), "id=3", "id=4", "id=5", "id=6")
				if resp, err := e.load(t, e.config("doc", job, "doc-0000"), full); err != nil || resp[0].GetCounts().GetQuarantined() != 1 {
					t.Fatalf("full load: %v %v", resp, err)
				}
				toast := func() string {
					var rel string
					if err := e.db.QueryRow(context.Background(), `SELECT reltoastrelid::regclass::text FROM pg_class WHERE oid = 'doc'::regclass`).Scan(&rel); err != nil {
						t.Fatal(err)
					}
					return strings.Join(e.rows(t, `SELECT chunk_id, count(*) FROM `+rel+` GROUP BY 1 ORDER BY 1`), ";")
				}
				toastBefore := toast()
				bin0, txt0 := e.svc.binaryBatches.Load(), e.svc.textBatches.Load()

				resp, err := e.load(t, e.config("doc", job, "sync:doc"), changeRows(0, tc.rows...))
				if err != nil {
					t.Fatal(err)
				}
				c := resp[0].GetCounts()
				if c.GetExtracted() != int64(len(tc.rows)) || c.GetLoaded() != tc.loaded || c.GetQuarantined() != int64(len(tc.quar)) {
					t.Errorf("counts %v, want loaded %d quarantined %d", c, tc.loaded, len(tc.quar))
				}
				if textOnly && e.svc.textBatches.Load() == txt0 || !textOnly && e.svc.binaryBatches.Load() == bin0 {
					t.Errorf("change batch did not go by %s COPY", map[bool]string{false: "binary", true: "text"}[textOnly])
				}
				got := e.rows(t, `SELECT id, title, CASE WHEN big IS NULL THEN 'NULL' ELSE split_part(big, ' ', 1) || ':' || length(big) END, notes, qty FROM doc ORDER BY id`)
				if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
					t.Errorf("target:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
				}
				q := e.rows(t, `SELECT row_index, stage, rule, column_name, reason FROM cutover.quarantine WHERE partition_id = 'sync:doc' ORDER BY row_index`)
				if len(q) != len(tc.quar) {
					t.Errorf("quarantine:\n%s\nwant:\n%s", strings.Join(q, "\n"), strings.Join(tc.quar, "\n"))
				}
				for i := range min(len(q), len(tc.quar)) {
					if !strings.HasPrefix(q[i], tc.quar[i]) {
						t.Errorf("quarantine row %d:\n%s\nwant prefix:\n%s", i, q[i], tc.quar[i])
					}
				}
				if tc.sameToast {
					if after := toast(); after != toastBefore {
						t.Errorf("TOASTed values rewritten: chunks %s, before %s", after, toastBefore)
					}
				}
				e.checkLedgerBalanced(t)
				r := e.rollback(t, job, "doc")
				if got := e.checksum(t, "doc"); got != before {
					t.Errorf("after rollback (%s): %s, want %s", rolled(r), got, before)
				}
			})
		}
	}
}

// TestUnchangedOutsideChanges: only a change batch may leave a value out;
// any other batch is refused with the column named.
func TestUnchangedOutsideChanges(t *testing.T) {
	e := newEnv(t, `CREATE TABLE k (id bigint PRIMARY KEY, v text)`)
	b := withRefs(mkBatch(0, col{"id", tInt, []any{1, 2}}, col{"v", tText, []any{"a", nil}}), "a", "b")
	b.Columns[1].Unchanged = batch.SetBit(nil, 1)
	for _, cfg := range []string{"insert", "upsert"} {
		t.Run(cfg, func(t *testing.T) {
			c := e.config("k", "job-u", "k-0")
			if cfg == "upsert" {
				c = e.upsertConfig("k", "job-u", "k-0")
			}
			_, err := e.load(t, c, b)
			if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), `columns["v"].unchanged marks row 1`) {
				t.Fatalf("err %v", err)
			}
		})
	}
	if n := e.count(t, `SELECT count(*) FROM k`); n != 0 {
		t.Fatalf("%d rows loaded", n)
	}
}
