package reconcile

import (
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	transformerv1 "github.com/cutover/cutover/gen/cutover/transformer/v1"
	validatorv1 "github.com/cutover/cutover/gen/cutover/validator/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// fakeValidator answers Pull with fixed batches per partition and refuses
// any snapshot, as an extractor whose snapshot is gone does.
type fakeValidator struct {
	validatorv1.UnimplementedValidatorServiceServer
	batches map[string][]*commonv1.Batch

	mu    sync.Mutex
	reads []*extractorv1.StreamBatchesRequest
}

func (f *fakeValidator) Pull(req *validatorv1.PullRequest, st validatorv1.ValidatorService_PullServer) error {
	rd := req.GetTransform().GetRead()
	f.mu.Lock()
	f.reads = append(f.reads, rd)
	f.mu.Unlock()
	if rd.GetRead().GetSnapshot() != "" {
		return status.Error(codes.FailedPrecondition, "snapshot "+rd.GetRead().GetSnapshot()+" does not exist")
	}
	for _, b := range f.batches[rd.GetRead().GetPartitionId()] {
		if err := st.Send(&validatorv1.PullResponse{Batch: b}); err != nil {
			return err
		}
	}
	return nil
}

// startValidator serves f on loopback; the Dialer connects to it.
func startValidator(t *testing.T, f *fakeValidator) (string, Dialer) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	validatorv1.RegisterValidatorServiceServer(g, f)
	go g.Serve(lis) //nolint:errcheck // ends with Stop
	t.Cleanup(g.Stop)
	return lis.Addr().String(), func(addr string) (grpc.ClientConnInterface, error) {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err == nil {
			t.Cleanup(func() { cc.Close() })
		}
		return cc, err
	}
}

// salesBatch is rows id from..to with amount id*1.5 and note "n<id>".
func salesBatch(part string, seq int64, from, to int64) *commonv1.Batch {
	n := int(to - from + 1)
	id := batch.NewBuilder("id", commonv1.ColumnType_COLUMN_TYPE_INT64, n)
	amount := batch.NewBuilder("amount", commonv1.ColumnType_COLUMN_TYPE_NUMERIC, n)
	note := batch.NewBuilder("note", commonv1.ColumnType_COLUMN_TYPE_TEXT, n)
	for k := from; k <= to; k++ {
		id.AppendInt(k)
		amount.AppendString(strconv.FormatFloat(float64(k)*1.5, 'f', -1, 64))
		note.AppendString("n" + strconv.FormatInt(k, 10))
	}
	return &commonv1.Batch{PartitionId: part, Seq: seq, Table: "sales", NumRows: int32(n),
		Columns: []*commonv1.Column{id.Column(), amount.Column(), note.Column()}}
}

// TestTableReplaysTheSource: a table reconciles against batches pulled
// from the validator, leaving out the rows the validator rejected and those
// the loader quarantined; a partition whose snapshot is gone is read again
// as the source is now; damage in the target is named by key.
func TestTableReplaysTheSource(t *testing.T) {
	ctx := context.Background()
	pool, tgt := testTarget(t)
	if _, err := pool.Exec(ctx, `CREATE TABLE sales (id bigint PRIMARY KEY, amount numeric(10,2), note text);
		INSERT INTO sales SELECT g, g * 1.5, 'n' || g FROM generate_series(1, 20) g WHERE g NOT IN (5, 17);
		CREATE SCHEMA cutover;
		CREATE TABLE cutover.quarantine (job_id text, partition_id text, seq bigint, row_index int, stage text);
		INSERT INTO cutover.quarantine VALUES ('job-1', 'p2', 0, 6, 'load'), ('job-1', 'p1', 0, 0, 'transform'), ('job-2', 'p1', 0, 1, 'load')`); err != nil {
		t.Fatal(err)
	}
	p1 := salesBatch("p1", 0, 1, 10)
	p1.Rejects = []*commonv1.Reject{{Row: 4, Rule: "range"}, {Row: 2, Rule: "note", Warning: true}}
	f := &fakeValidator{batches: map[string][]*commonv1.Batch{"p1": {p1}, "p2": {salesBatch("p2", 0, 11, 20)}}}
	addr, dial := startValidator(t, f)
	spec := &commonv1.TableSpec{Name: "sales", TargetTable: "sales",
		Columns: []*commonv1.ColumnMapping{{Target: "id", Source: "id", Type: commonv1.ColumnType_COLUMN_TYPE_INT64},
			{Target: "amount", Source: "amount", Type: commonv1.ColumnType_COLUMN_TYPE_NUMERIC},
			{Target: "note", Source: "note", Type: commonv1.ColumnType_COLUMN_TYPE_TEXT}},
		Aggregates: []*commonv1.Aggregate{{Name: "total", Sum: []string{"amount"}}}}
	part := func(id, snapshot string) *validatorv1.PullRequest {
		return &validatorv1.PullRequest{Transform: &transformerv1.PullRequest{Source: &transformerv1.PullRequest_Read{
			Read: &extractorv1.StreamBatchesRequest{Read: &extractorv1.ReadBatchRequest{JobId: "job-1", PartitionId: id, Snapshot: snapshot}}}}}
	}
	req := &loaderv1.ReconcileTableRequest{Table: "sales", JobId: "job-1", Upstream: addr, Parallelism: 2, Level: commonv1.ReconcileLevel_RECONCILE_LEVEL_REPLAY,
		Sources: []*loaderv1.ReconcileSource{{TableIndex: 0, Table: spec, Partitions: []*validatorv1.PullRequest{part("p1", "snap"), part("p2", "")}}}}

	tr, err := Table(ctx, tgt, dial, req)
	if err != nil {
		t.Fatal(err)
	}
	if !tr.Ok || tr.TargetRows != 18 || tr.Rows.Rows != 18 || tr.Rows.RangesDiffering != 0 || len(tr.Aggregates) != 1 || !tr.Aggregates[0].Ok {
		t.Fatalf("clean table does not reconcile: %v", tr)
	}
	if tr.TargetTable != "public.sales" || !slices.Equal(tr.Tables, []string{"sales"}) {
		t.Fatalf("names: %s %v", tr.TargetTable, tr.Tables)
	}
	var snapshots []string
	for _, rd := range f.reads {
		if rd.GetRead().GetPartitionId() == "p1" {
			snapshots = append(snapshots, rd.GetRead().GetSnapshot())
		}
	}
	if !slices.Equal(snapshots, []string{"snap", ""}) {
		t.Fatalf("p1 read with snapshots %q, want the job's, then none", snapshots)
	}

	if _, err := pool.Exec(ctx, `UPDATE sales SET note = 'x' WHERE id = 3; DELETE FROM sales WHERE id = 12; INSERT INTO sales VALUES (17, 25.5, 'n17')`); err != nil {
		t.Fatal(err)
	}
	tr, err = Table(ctx, tgt, dial, req)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range tr.Rows.Differences {
		got = append(got, d.Key+" "+d.Kind)
	}
	if want := []string{"id=3 changed", "id=12 missing", "id=17 extra"}; tr.Ok || !slices.Equal(got, want) {
		t.Fatalf("differences %v, want %v: %v", got, want, tr)
	}
	if a := tr.Aggregates[0]; a.Ok || len(a.Differences) != 1 || a.Differences[0].Measure != "sum(amount)" {
		t.Fatalf("aggregate: %v", a)
	}
}

// TestTableRefusesBadRequests: a request that cannot be reconciled is
// InvalidArgument naming the field, before anything is read.
func TestTableRefusesBadRequests(t *testing.T) {
	spec := &commonv1.TableSpec{Name: "t"}
	tests := []struct {
		req   *loaderv1.ReconcileTableRequest
		field string
	}{
		{&loaderv1.ReconcileTableRequest{Table: "t", MaxDifferences: 1001}, "max_differences"},
		{&loaderv1.ReconcileTableRequest{Sources: []*loaderv1.ReconcileSource{{Table: spec}}}, "table"},
		{&loaderv1.ReconcileTableRequest{Table: "t"}, "sources"},
		{&loaderv1.ReconcileTableRequest{Table: "t", Sources: []*loaderv1.ReconcileSource{{Table: spec, Partitions: []*validatorv1.PullRequest{{}}}}},
			"sources[0].partitions[0].transform.read"},
	}
	for _, tt := range tests {
		_, err := Table(context.Background(), Target{}, nil, tt.req)
		if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), tt.field+": ") {
			t.Errorf("%v: err %v, want invalid %s", tt.req, err, tt.field)
		}
	}
}
