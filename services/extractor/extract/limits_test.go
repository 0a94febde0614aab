package extract

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
)

// grpcLimit is the gRPC message limit of every service (kit/server's
// MaxMessageBytes), which no batch may reach.
const grpcLimit = 64 << 20

// widePayload is row i's value of n bytes: letters that differ from row to
// row, starting with the row number.
func widePayload(i, n int) string {
	b := make([]byte, n)
	for j := range b {
		b[j] = 'a' + byte((i*7+j)%26)
	}
	copy(b, "row "+strconv.Itoa(i)+" ")
	return string(b)
}

// wideRow is what a test expects of one row: the key, the payload ("" with
// tooLarge set when it must be left out) and a note that must survive.
type wideRow struct {
	id       int
	payload  string
	size     int // the payload's length, also when left out
	tooLarge bool
	note     string
}

// wideRows makes n rows of width bytes; rows in big get bigWidth bytes
// instead, and are expected to be left out when bigWidth is over limit.
func wideRows(n, width, bigWidth int, limit int64, big ...int) []wideRow {
	rows := make([]wideRow, n)
	for i := range rows {
		w := width
		for _, b := range big {
			if b == i+1 {
				w = bigWidth
			}
		}
		rows[i] = wideRow{id: i + 1, payload: widePayload(i+1, w), size: w, tooLarge: int64(w) > limit, note: "note " + strconv.Itoa(i+1)}
	}
	return rows
}

// readBytes reads a partition to its end with a byte limit, checking every
// batch: well formed, within the limit (a batch of one row may exceed it
// only by the row), far under the gRPC limit, never empty before done.
// Then it reads every batch again from its cursor and wants it unchanged.
func readBytes(t *testing.T, s *Service, src *commonv1.SourceSpec, size int32, batchBytes int64, snapshot string) []*commonv1.Batch {
	t.Helper()
	limit := batchBytes
	if limit == 0 {
		limit = DefaultBatchBytes
	}
	var out []*commonv1.Batch
	var cursors []string
	cursor := ""
	for i := 0; ; i++ {
		if i > 10000 {
			t.Fatal("no end after 10000 batches")
		}
		req := &extractorv1.ReadBatchRequest{Source: src, Cursor: cursor, BatchSize: size, BatchBytes: batchBytes, JobId: "job", PartitionId: "p1", Seq: int64(i), Table: "wide", Snapshot: snapshot}
		resp, err := s.ReadBatch(context.Background(), req)
		if err != nil {
			t.Fatalf("ReadBatch(cursor %q): %v", cursor, err)
		}
		b := resp.GetBatch()
		if err := batch.Check(b); err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		n := proto.Size(resp)
		if n >= grpcLimit {
			t.Fatalf("batch %d is %d bytes encoded, the gRPC limit is %d", i, n, grpcLimit)
		}
		if b.GetNumRows() > 1 && int64(proto.Size(b)) > limit {
			t.Fatalf("batch %d of %d rows is %d bytes encoded, more than batch_bytes %d", i, b.GetNumRows(), proto.Size(b), limit)
		}
		if b.GetNumRows() == 0 && !resp.GetDone() {
			t.Fatalf("empty batch without done at cursor %q", cursor)
		}
		out = append(out, b)
		cursors = append(cursors, cursor)
		if resp.GetDone() {
			break
		}
		cursor = b.GetLastKey()
	}
	for i, c := range cursors {
		req := &extractorv1.ReadBatchRequest{Source: src, Cursor: c, BatchSize: size, BatchBytes: batchBytes, JobId: "job", PartitionId: "p1", Seq: int64(i), Table: "wide", Snapshot: snapshot}
		resp, err := s.ReadBatch(context.Background(), req)
		if err != nil {
			t.Fatalf("ReadBatch again (cursor %q): %v", c, err)
		}
		if !proto.Equal(resp.GetBatch(), out[i]) {
			t.Fatalf("batch %d read again from cursor %q differs: %d rows, last key %q; first %d rows, last key %q",
				i, c, resp.GetBatch().GetNumRows(), resp.GetBatch().GetLastKey(), out[i].GetNumRows(), out[i].GetLastKey())
		}
	}
	return out
}

// checkWide compares the batches with the rows the test made: every row in
// order, payloads whole, left-out payloads NULL with a too_large reject
// that names the column and the size, notes intact. With full it also
// wants every batch but the last full: the next row would not have fitted.
func checkWide(t *testing.T, batches []*commonv1.Batch, want []wideRow, limit int64, where func(r wideRow) string, full bool) {
	t.Helper()
	k := 0
	for bi, b := range batches {
		cols := map[string]*commonv1.Column{}
		for _, c := range b.GetColumns() {
			cols[c.GetName()] = c
		}
		rejects := map[int32][]*commonv1.Reject{}
		for _, r := range b.GetRejects() {
			rejects[r.GetRow()] = append(rejects[r.GetRow()], r)
		}
		var kept int64
		for i := 0; i < int(b.GetNumRows()); i, k = i+1, k+1 {
			if k >= len(want) {
				t.Fatalf("more rows than the %d made", len(want))
			}
			w := want[k]
			id, _ := batch.Text(cols["id"], i)
			note, _ := batch.Text(cols["note"], i)
			if id != strconv.Itoa(w.id) || note != w.note {
				t.Fatalf("batch %d row %d: id %q note %q, want %d %q", bi, i, id, note, w.id, w.note)
			}
			p, ok := batch.Text(cols["payload"], i)
			rs := rejects[int32(i)]
			if !w.tooLarge {
				if !ok || p != w.payload || len(rs) != 0 {
					t.Fatalf("batch %d row %d (id %d): payload of %d bytes (null %v), want %d bytes; rejects %v", bi, i, w.id, len(p), !ok, len(w.payload), rs)
				}
				kept += int64(len(p))
				continue
			}
			if ok {
				t.Fatalf("batch %d row %d (id %d): a too large payload of %d bytes is in the batch", bi, i, w.id, len(p))
			}
			if len(rs) != 1 {
				t.Fatalf("batch %d row %d (id %d): rejects %v, want one too_large", bi, i, w.id, rs)
			}
			r := rs[0]
			reason := fmt.Sprintf(`value of column "payload" is %d bytes, more than the batch limit of %d`, w.size, limit)
			if r.GetStage() != "extract" || r.GetRule() != "too_large" || r.GetColumn() != "payload" || r.GetReason() != where(w)+reason {
				t.Fatalf("reject %s/%s/%s %q, want extract/too_large/payload %q", r.GetStage(), r.GetRule(), r.GetColumn(), r.GetReason(), where(w)+reason)
			}
			if !strings.HasSuffix(r.GetRaw(), "…") || len(r.GetRaw()) > rawPrefixBytes+len("…") || !strings.HasPrefix(w.payload, strings.TrimSuffix(r.GetRaw(), "…")) {
				t.Fatalf("reject raw %q is not a short prefix of the value", r.GetRaw())
			}
		}
		if full && bi < len(batches)-1 && b.GetNumRows() > 0 && k < len(want) && !want[k].tooLarge && kept+int64(want[k].size) < limit*9/10 {
			t.Fatalf("batch %d ends with %d payload bytes, but the next row's %d would have fitted in %d", bi, kept, want[k].size, limit)
		}
	}
	if k != len(want) {
		t.Fatalf("got %d rows, made %d", k, len(want))
	}
}

// writeWideCSV writes id,payload,note rows, each payload written in pieces
// so that a huge one is never whole in memory.
func writeWideCSV(t testing.TB, rows []wideRow) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "wide.csv")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString("id,payload,note\n")
	for _, r := range rows {
		fmt.Fprintf(w, "%d,%s,%s\n", r.id, r.payload, r.note)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBatchBytesCSV reads 200 rows of 512 KiB, which made one 100 MB batch
// when only rows bounded a batch: now batches stay within batch_bytes, so
// within the gRPC limit, at the default, a smaller limit and the largest.
func TestBatchBytesCSV(t *testing.T) {
	rows := wideRows(200, 512<<10, 0, MaxBatchBytes)
	src := csvSource(&commonv1.CsvSource{Path: writeWideCSV(t, rows)})
	line := func(r wideRow) string { return fmt.Sprintf("line %d: ", r.id+1) }
	s := newService(t)
	for _, tc := range []struct {
		name       string
		size       int32
		batchBytes int64
		minBatches int
	}{
		{"default 8 MiB", 0, 0, 13},
		{"3 MiB", 0, 3 << 20, 34},
		{"rows bound first", 5, 0, 40},
		{"largest", 0, MaxBatchBytes, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bs := readBytes(t, s, src, tc.size, tc.batchBytes, "")
			if len(bs) < tc.minBatches {
				t.Errorf("%d batches, want at least %d", len(bs), tc.minBatches)
			}
			limit := tc.batchBytes
			if limit == 0 {
				limit = DefaultBatchBytes
			}
			// Rows end the batches when batch_size is set here, not bytes.
			checkWide(t, bs, rows, limit, line, tc.size == 0)
		})
	}

	t.Run("over gRPC", func(t *testing.T) {
		// A real server and client with the services' message limit: every
		// batch of the file gets through, even at the largest batch_bytes.
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		g := grpc.NewServer(grpc.MaxRecvMsgSize(grpcLimit), grpc.MaxSendMsgSize(grpcLimit))
		s.Register(g)
		go g.Serve(lis)
		defer g.Stop()
		cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(grpcLimit)))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		client := extractorv1.NewExtractorServiceClient(cc)
		for _, bb := range []int64{0, MaxBatchBytes} {
			cursor, n := "", 0
			for i := 0; ; i++ {
				resp, err := client.ReadBatch(context.Background(), &extractorv1.ReadBatchRequest{Source: src, Cursor: cursor, BatchBytes: bb})
				if err != nil {
					t.Fatalf("batch_bytes %d, batch %d: %v", bb, i, err)
				}
				n += int(resp.GetBatch().GetNumRows())
				if resp.GetDone() {
					break
				}
				cursor = resp.GetBatch().GetLastKey()
			}
			if n != len(rows) {
				t.Fatalf("batch_bytes %d: %d rows over gRPC, want %d", bb, n, len(rows))
			}
		}
	})

	t.Run("only refs", func(t *testing.T) {
		// A re-drive reads on through the byte-bounded batches to its rows.
		var got []string
		cursor := ""
		for range 100 {
			resp, err := s.ReadBatch(context.Background(), &extractorv1.ReadBatchRequest{Source: src, Cursor: cursor, OnlyRefs: []string{"line 100", "line 181"}})
			if err != nil {
				t.Fatal(err)
			}
			b := resp.GetBatch()
			if b.GetNumRows() == 0 && !resp.GetDone() {
				t.Fatalf("empty batch before the end at cursor %q", cursor)
			}
			for i := 0; i < int(b.GetNumRows()); i++ {
				p, _ := batch.Text(b.GetColumns()[1], i)
				if id, _ := batch.Text(b.GetColumns()[0], i); p != rows[mustAtoi(t, id)-1].payload {
					t.Fatalf("row %s: payload differs", id)
				}
				got = append(got, batch.SourceRef(b, i))
			}
			if resp.GetDone() {
				break
			}
			cursor = b.GetLastKey()
		}
		if strings.Join(got, ",") != "line 100,line 181" {
			t.Fatalf("re-driven rows %v", got)
		}
	})
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestTooLargeField reads a CSV and a JSON Lines file whose second row
// holds a 200 MB value: the row keeps its place with the value NULL and a
// too_large reject, the other rows are intact, and the read holds the value
// about once in memory, not copy upon copy.
func TestTooLargeField(t *testing.T) {
	const big = 200 << 20
	chunk := []byte(widePayload(2, 1<<20))
	for _, tc := range []struct {
		name string
		// head and tail go around the big value, written in pieces.
		head, tail string
		src        func(path string) *commonv1.SourceSpec
		refs       [3]string
	}{
		{"csv", "id,payload,note\n1,small,a\n2,", ",b\n3,also small,c\n",
			func(p string) *commonv1.SourceSpec { return csvSource(&commonv1.CsvSource{Path: p}) },
			[3]string{"line 2", "line 3", "line 4"}},
		{"jsonl", `{"id": 1, "payload": "small", "note": "a"}` + "\n" + `{"id": 2, "payload": "`, `", "note": "b"}` + "\n" + `{"id": 3, "payload": "also small", "note": "c"}` + "\n",
			func(p string) *commonv1.SourceSpec { return jsonlSource(p, "id", "payload", "note") },
			[3]string{"line 1", "line 2", "line 3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "big")
			f, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			w := bufio.NewWriterSize(f, 1<<20)
			w.WriteString(tc.head)
			for range big / len(chunk) {
				w.Write(chunk)
			}
			w.WriteString(tc.tail)
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}

			s := newService(t)
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			base, total := ms.HeapAlloc, ms.TotalAlloc
			peak := sampleHeap(t)
			resp, err := s.ReadBatch(context.Background(), &extractorv1.ReadBatchRequest{Source: tc.src(p)})
			top := peak()
			if err != nil {
				t.Fatal(err)
			}
			runtime.ReadMemStats(&ms)
			allocated := ms.TotalAlloc - total
			if !resp.GetDone() {
				t.Fatal("not done")
			}
			got := rowsOf(t, resp.GetBatch())
			want := []row{
				{ref: tc.refs[0], vals: []string{"1", "small", "a"}},
				{ref: tc.refs[1], vals: []string{"2", null, "b"}, reject: "too_large|payload|" +
					fmt.Sprintf(`%s: value of column "payload" is %d bytes, more than the batch limit of %d`, tc.refs[1], big, DefaultBatchBytes) +
					"|" + string(chunk[:rawPrefixBytes]) + "…"},
				{ref: tc.refs[2], vals: []string{"3", "also small", "c"}},
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("rows\n got %q\nwant %q", got, want)
			}
			if n := proto.Size(resp); n > 64<<10 {
				t.Errorf("the batch is %d bytes", n)
			}
			// The read buffer holds the record once, grown by doubling: about
			// twice the value allocated in all, and briefly the old and the
			// new buffer. Copying the value into its column as well (as the
			// CSV reader did before) allocates about 3.3 times the value and
			// peaks at about 2.6 times.
			used := int64(top) - int64(base)
			t.Logf("%d MiB value: %d MiB allocated, heap peak %d MiB over the start", big>>20, allocated>>20, used>>20)
			if allocated > 5*big/2 {
				t.Errorf("the read allocated %d MiB for a %d MiB value", allocated>>20, big>>20)
			}
			if used > 3*big {
				t.Errorf("the read took %d MiB of heap at its peak for a %d MiB value", used>>20, big>>20)
			}
		})
	}
}

// sampleHeap samples the heap in use until the returned function is
// called, which returns the largest sample.
func sampleHeap(t *testing.T) func() uint64 {
	var top atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > top.Load() {
				top.Store(ms.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	return func() uint64 {
		close(stop)
		wg.Wait()
		return top.Load()
	}
}

// TestTooLargeCSV covers the other ways a CSV value is too large: a quoted
// field over several lines, a legacy encoding whose text outgrows its
// bytes, and a row whose values each fit but not together.
func TestTooLargeCSV(t *testing.T) {
	quoted := strings.Repeat(`ab""c`, 300000) // 1.2 MB as text, 1.5 MB in the file
	latin := strings.Repeat("\xe9", 600000)   // é: 600 KB in the file, 1.2 MB as UTF-8
	half := strings.Repeat("x", 700000)
	// The row's bytes as counted (limits.go): three slots, the ref, the
	// values.
	rowBytes := 3*slotCost(textType) + refCost(len("line 2")) + 1 + 2*700000
	for _, tc := range []struct {
		name     string
		content  string
		encoding string
		limit    int64
		want     []row
	}{
		{"quoted over lines", "id,payload,note\n1,\"x\ny\",a\n2,\"" + quoted + "\nz\",b\n3,c,d\n", "", 1 << 20, []row{
			{ref: "line 2", vals: []string{"1", "x\ny", "a"}},
			{ref: "line 4", vals: []string{"2", null, "b"}, reject: `too_large|payload|line 4: value of column "payload" is 1200002 bytes, more than the batch limit of 1048576|` + strings.Repeat(`ab"c`, 64) + "…"},
			{ref: "line 6", vals: []string{"3", "c", "d"}},
		}},
		{"latin1", "id,payload,note\n1,\xe9t\xe9,a\n2," + latin + ",b\n", "latin1", 1 << 20, []row{
			{ref: "line 2", vals: []string{"1", "été", "a"}},
			{ref: "line 3", vals: []string{"2", null, "b"}, reject: `too_large|payload|line 3: value of column "payload" is 1200000 bytes, more than the batch limit of 1048576|` + strings.Repeat("é", 128) + "…"},
		}},
		{"row over the limit", "id,payload,note\n1," + half + "," + half + "\n2,y,z\n", "", 1 << 20, []row{
			{ref: "line 2", vals: []string{"1", null, half}, reject: fmt.Sprintf(`too_large|payload|line 2: value of column "payload" is 700000 bytes and its row %d bytes, more than the batch limit of 1048576|`, rowBytes) + half[:256] + "…"},
			{ref: "line 3", vals: []string{"2", "y", "z"}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := csvSource(&commonv1.CsvSource{Path: writeFile(t, tc.content), Encoding: tc.encoding})
			s := newService(t)
			var got []row
			for _, b := range readBytes(t, s, src, 0, tc.limit, "") {
				got = append(got, rowsOf(t, b)...)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("rows\n got %.2000q\nwant %.2000q", got, tc.want)
			}
		})
	}
}

// wideSource builds one kind's source holding rows.
type wideSource struct {
	name string
	make func(t *testing.T, rows []wideRow) *commonv1.SourceSpec
	// where is how the kind's rejects say where a row is.
	where func(r wideRow) string
}

func noWhere(wideRow) string { return "" }

func wideSources() []wideSource {
	return []wideSource{
		{"jsonl", func(t *testing.T, rows []wideRow) *commonv1.SourceSpec {
			p := filepath.Join(t.TempDir(), "wide.jsonl")
			f, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			w := bufio.NewWriterSize(f, 1<<20)
			for _, r := range rows {
				payload, _ := json.Marshal(r.payload)
				fmt.Fprintf(w, `{"id": %d, "payload": %s, "note": "%s"}`+"\n", r.id, payload, r.note)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			f.Close()
			return jsonlSource(p, "id", "payload", "note")
		}, func(r wideRow) string { return fmt.Sprintf("line %d: ", r.id) }},
		{"sqlite", func(t *testing.T, rows []wideRow) *commonv1.SourceSpec {
			p := sqliteDB(t, `CREATE TABLE wide (id INTEGER PRIMARY KEY, payload TEXT, note TEXT)`)
			db, err := sql.Open("sqlite", p)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			for _, r := range rows {
				if _, err := db.Exec(`INSERT INTO wide VALUES (?, ?, ?)`, r.id, r.payload, r.note); err != nil {
					t.Fatal(err)
				}
			}
			return sqliteSource(p, "wide")
		}, noWhere},
		{"postgres", func(t *testing.T, rows []wideRow) *commonv1.SourceSpec {
			return pgSource(widePG(t, rows, "id int8 PRIMARY KEY, payload text, note text"), "", "wide")
		}, noWhere},
		{"postgres without key", func(t *testing.T, rows []wideRow) *commonv1.SourceSpec {
			// Read in ctid order, which is insertion order here.
			return pgSource(widePG(t, rows, "id int8, payload text, note text"), "", "wide")
		}, noWhere},
		{"mysql", func(t *testing.T, rows []wideRow) *commonv1.SourceSpec {
			dsn := newMySQLDB(t, `CREATE TABLE wide (id BIGINT PRIMARY KEY, payload LONGTEXT, note TEXT)`)
			db, err := sql.Open("mysql", dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			for _, r := range rows {
				if _, err := db.Exec(`INSERT INTO wide VALUES (?, ?, ?)`, r.id, r.payload, r.note); err != nil {
					t.Fatal(err)
				}
			}
			return mysqlSource(dsn, "wide")
		}, noWhere},
	}
}

func widePG(t *testing.T, rows []wideRow, cols string) string {
	url := newDB(t, `CREATE TABLE wide (`+cols+`)`)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, r := range rows {
		if _, err := conn.Exec(ctx, `INSERT INTO wide VALUES ($1, $2, $3)`, r.id, r.payload, r.note); err != nil {
			t.Fatal(err)
		}
	}
	return url
}

// TestBatchBytesKinds holds every kind to the byte limit: 50 rows of 1 MiB
// with batch_bytes 4 MiB make several batches, all rows come back in order
// and the same cursor gives the same batch; a 5 MiB value, over the limit,
// is left out of its row with a too_large reject.
func TestBatchBytesKinds(t *testing.T) {
	const limit = 4 << 20
	rows := wideRows(50, 1<<20, 5<<20, limit, 7)
	// Escapes make a JSON string longer in the file than as text; the
	// JSON Lines reader must size the text.
	rows[8].payload = strings.Repeat("<\n", 1000) + rows[8].payload[2000:]
	for _, ks := range wideSources() {
		t.Run(ks.name, func(t *testing.T) {
			src := ks.make(t, rows)
			s := newService(t)
			// Kinds with snapshots read in one, as a job does (a table
			// without a key must).
			snap, err := s.OpenSnapshot(context.Background(), &extractorv1.OpenSnapshotRequest{Source: src})
			if err != nil {
				t.Fatal(err)
			}
			bs := readBytes(t, s, src, 0, limit, snap.GetSnapshot())
			if len(bs) < 13 {
				t.Errorf("%d batches, want at least 13", len(bs))
			}
			checkWide(t, bs, rows, limit, ks.where, true)
		})
	}
}

// TestBatchBytesXLSX: a cell holds at most 32767 characters, so the rows
// are narrower and the limit lower.
func TestBatchBytesXLSX(t *testing.T) {
	const limit = 100 << 10
	rows := wideRows(60, 30000, 30000, limit)
	big := wideRows(3, 30000, 30000, 20000)
	for _, tc := range []struct {
		name  string
		rows  []wideRow
		limit int64
		min   int
	}{
		{"bounded", rows, limit, 19},
		{"too large", big, 20000, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cells := [][]any{{"id", "payload", "note"}}
			for _, r := range tc.rows {
				cells = append(cells, []any{strconv.Itoa(r.id), r.payload, r.note})
			}
			p := xlsxBook(t, false, map[string][][]any{"S": cells}, "S")
			s := newService(t)
			bs := readBytes(t, s, xlsxSource(p, "S", 0), 0, tc.limit, "")
			if len(bs) < tc.min {
				t.Errorf("%d batches, want at least %d", len(bs), tc.min)
			}
			checkWide(t, bs, tc.rows, tc.limit, func(r wideRow) string { return fmt.Sprintf("row %d: ", r.id+1) }, true)
		})
	}
}

// TestBatchBytesJSONLExplode: with explode a batch ends on a line, so a
// line's rows never split, even when the bytes end the batch.
func TestBatchBytesJSONLExplode(t *testing.T) {
	var sb strings.Builder
	var want []string
	for i := 1; i <= 10; i++ {
		sb.WriteString(`{"order": ` + strconv.Itoa(i) + `, "items": [`)
		for k := range 3 {
			if k > 0 {
				sb.WriteString(", ")
			}
			v := widePayload(i*10+k, 200<<10)
			sb.WriteString(`{"v": "` + v + `"}`)
			want = append(want, fmt.Sprintf("line %d item %d %d %s", i, k, i, v[:12]))
		}
		sb.WriteString("]}\n")
	}
	src := &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Jsonl{Jsonl: &commonv1.JsonlSource{Path: writeJSONL(t, sb.String()), Explode: "items",
		Fields: []*commonv1.JsonField{{Name: "order"}, {Name: "v", Path: "item.v"}}}}}
	s := newService(t)
	bs := readBytes(t, s, src, 0, 1<<20, "")
	var got []string
	for _, b := range bs {
		if b.GetNumRows()%3 != 0 {
			t.Errorf("a batch of %d rows splits a line", b.GetNumRows())
		}
		for _, r := range rowsOf(t, b) {
			got = append(got, fmt.Sprintf("%s %s %s", r.ref, r.vals[0], r.vals[1][:12]))
		}
	}
	if len(bs) < 5 || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%d batches, rows\n%s\nwant\n%s", len(bs), strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestBatchBytesInvalid: batch_bytes outside 0..MaxBatchBytes is refused
// up front, naming the field.
func TestBatchBytesInvalid(t *testing.T) {
	src := csvSource(&commonv1.CsvSource{Path: writeFile(t, "id\n1\n2\n")})
	s := newService(t)
	for _, tc := range []struct {
		bytes int64
		rows  int // rows in the first batch; 0: refused
	}{
		{-1, 0},
		{MaxBatchBytes + 1, 0},
		{1 << 40, 0},
		{0, 2},
		{1, 1},
		{MaxBatchBytes, 2},
	} {
		t.Run(strconv.FormatInt(tc.bytes, 10), func(t *testing.T) {
			resp, err := s.ReadBatch(context.Background(), &extractorv1.ReadBatchRequest{Source: src, BatchBytes: tc.bytes})
			if tc.rows == 0 {
				wantCode(t, err, codes.InvalidArgument, "batch_bytes", strconv.Itoa(MaxBatchBytes))
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if int(resp.GetBatch().GetNumRows()) != tc.rows {
				t.Fatalf("%d rows in the first batch, want %d", resp.GetBatch().GetNumRows(), tc.rows)
			}
		})
	}
}

// TestRowSizer checks which values a row leaves out.
func TestRowSizer(t *testing.T) {
	for _, tc := range []struct {
		limit int64
		sizes []int64
		fixed int64
		big   string
		row   int64
	}{
		{100, []int64{10, -1, 20}, 5, "---", 35},
		{100, []int64{101, 10}, 5, "x-", 15},
		{100, []int64{60, 60, 10}, 5, "x--", 75},
		{100, []int64{50, 70, 60}, 5, "-xx", 55},
		{100, []int64{-1, -1}, 500, "--", 500},
		{0, []int64{1 << 40}, 5, "-", 5 + 1<<40},
	} {
		rs := newRowSizer(readLimits{rows: 10, bytes: tc.limit}, len(tc.sizes))
		copy(rs.sizes, tc.sizes)
		row := rs.pick(tc.fixed)
		var big strings.Builder
		for _, b := range rs.big {
			big.WriteString(map[bool]string{true: "x", false: "-"}[b])
		}
		if big.String() != tc.big || row != tc.row {
			t.Errorf("limit %d sizes %v: big %s row %d, want %s %d", tc.limit, tc.sizes, big.String(), row, tc.big, tc.row)
		}
	}
}

// TestTextColTruncate: dropping rows drops their NULL bits too.
func TestTextColTruncate(t *testing.T) {
	c := newTextCol(4, 16)
	for i := range 20 {
		if i%3 == 0 {
			c.nullRow()
		} else {
			c.add([]byte{'a' + byte(i)})
			c.endRow()
		}
	}
	for _, n := range []int{17, 9, 8, 3} {
		c.truncate(n)
		col := c.column("c")
		if err := batch.Check(&commonv1.Batch{NumRows: int32(n), Columns: []*commonv1.Column{col}}); err != nil {
			t.Fatalf("truncate(%d): %v", n, err)
		}
		for i := range 24 {
			if want := i < n && i%3 == 0; batch.Bit(col.Nulls, i) != want {
				t.Fatalf("truncate(%d): null bit %d is %v", n, i, !want)
			}
		}
	}
}
