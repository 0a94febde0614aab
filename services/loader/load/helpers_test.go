package load

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"github.com/cutover/cutover/services/kit/pgtest"
	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// col is a test column: values are int64, float64, bool, string, []byte or
// nil for NULL.
type col struct {
	name string
	typ  commonv1.ColumnType
	vals []any
}

func mkBatch(seq int64, cols ...col) *commonv1.Batch {
	b := &commonv1.Batch{Seq: seq, LastKey: "key-" + strconv.FormatInt(seq, 10)}
	for _, c := range cols {
		bl := batch.NewBuilder(c.name, c.typ, len(c.vals))
		for _, v := range c.vals {
			switch v := v.(type) {
			case nil:
				bl.AppendNull()
			case int64:
				bl.AppendInt(v)
			case int:
				bl.AppendInt(int64(v))
			case float64:
				bl.AppendFloat(v)
			case bool:
				bl.AppendBool(v)
			case string:
				bl.AppendString(v)
			case []byte:
				bl.AppendBytes(v)
			}
		}
		b.Columns = append(b.Columns, bl.Column())
		b.NumRows = int32(len(c.vals))
	}
	return b
}

func withRefs(b *commonv1.Batch, refs ...string) *commonv1.Batch {
	bl := batch.NewBuilder("ref", commonv1.ColumnType_COLUMN_TYPE_TEXT, len(refs))
	for _, r := range refs {
		bl.AppendString(r)
	}
	b.SourceRefs = bl.Column()
	return b
}

// env is a loader behind a real gRPC server on loopback and a target
// database of its own.
type env struct {
	dsn    string
	db     *pgx.Conn
	client loaderv1.LoaderServiceClient
	svc    *Service
}

func newEnv(t testing.TB, ddl ...string) *env {
	t.Helper()
	dsn := pgtest.NewDatabase(t)
	ctx := context.Background()
	db, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(context.Background()) })
	for _, q := range ddl {
		if _, err := db.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	svc := New()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	svc.Register(g)
	done := make(chan struct{})
	go func() { _ = g.Serve(lis); close(done) }()
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last-in first-out: client, server, then pools, then
	// the database is dropped.
	t.Cleanup(func() { _ = svc.Close() })
	t.Cleanup(func() { g.Stop(); <-done })
	t.Cleanup(func() { _ = cc.Close() })
	return &env{dsn: dsn, db: db, client: loaderv1.NewLoaderServiceClient(cc), svc: svc}
}

func (e *env) target() *commonv1.TargetSpec { return &commonv1.TargetSpec{Dsn: e.dsn} }

func (e *env) config(table, job, part string) *loaderv1.LoadConfig {
	return &loaderv1.LoadConfig{Target: e.target(), Table: table, JobId: job, PartitionId: part}
}

// load sends cfg then the batches on one stream and returns the responses
// received before the stream ended, and the stream's error (nil on a clean
// end).
func (e *env) load(t testing.TB, cfg *loaderv1.LoadConfig, batches ...*commonv1.Batch) ([]*loaderv1.LoadResponse, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := e.client.Load(ctx)
	if err != nil {
		return nil, err
	}
	msgs := []*loaderv1.LoadRequest{}
	if cfg != nil {
		msgs = append(msgs, &loaderv1.LoadRequest{Msg: &loaderv1.LoadRequest_Config{Config: cfg}})
	}
	for _, b := range batches {
		msgs = append(msgs, &loaderv1.LoadRequest{Msg: &loaderv1.LoadRequest_Batch{Batch: b}})
	}
	sendErr := make(chan error, 1)
	go func() {
		for _, m := range msgs {
			if err := st.Send(m); err != nil {
				sendErr <- nil // the receive side reports why
				return
			}
		}
		sendErr <- st.CloseSend()
	}()
	var out []*loaderv1.LoadResponse
	for {
		r, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return out, <-sendErr
		}
		if err != nil {
			<-sendErr
			return out, err
		}
		out = append(out, r)
	}
}

func (e *env) count(t testing.TB, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := e.db.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// checkLedgerBalanced asserts extracted = loaded + quarantined for every
// ledger row.
func (e *env) checkLedgerBalanced(t testing.TB) {
	t.Helper()
	if n := e.count(t, `SELECT count(*) FROM cutover.ledger WHERE extracted <> loaded + quarantined`); n != 0 {
		t.Fatalf("%d ledger rows do not balance", n)
	}
}

func rejectRow(row int32) *commonv1.Reject {
	return &commonv1.Reject{Row: row, Stage: "validate", Rule: "range", Column: "qty", Reason: "column qty: out of range", Raw: "x"}
}
