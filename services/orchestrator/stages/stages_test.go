package stages

import (
	"context"
	"errors"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A refusal is not retried, an outage is; a message over the size limit
// would be too large again, so it is a refusal.
func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err   error
		fatal bool
	}{
		{status.Error(codes.Unavailable, "connection refused"), false},
		{status.Error(codes.DeadlineExceeded, "deadline"), false},
		{status.Error(codes.Internal, "terminating connection"), false},
		{errors.New("EOF"), false},
		{status.Error(codes.InvalidArgument, "columns[0]: bad"), true},
		{status.Error(codes.FailedPrecondition, "no table"), true},
		{status.Error(codes.ResourceExhausted, "message larger than max"), true},
		{status.Error(codes.Unimplemented, "unknown method"), true},
	} {
		err := Classify("loader", tc.err)
		if errors.Is(err, ErrStageFatal) != tc.fatal || errors.Is(err, ErrStage) == tc.fatal {
			t.Errorf("Classify(%v) = %v, fatal want %v", tc.err, err, tc.fatal)
		}
	}
	if Classify("loader", nil) != nil {
		t.Error("Classify(nil) is not nil")
	}
}

// The chain's request tells each stage its upstream's address and carries
// the table's rules, mapping and read.
func TestPullReadChain(t *testing.T) {
	c := Clients{Addrs: Addrs{Extractor: "e:1", Transformer: "t:2", Validator: "v:3", Loader: "l:4"}}
	spec := &commonv1.JobSpec{BatchSize: 500, BatchBytes: 1 << 20}
	tbl := &commonv1.TableSpec{Name: "orders", System: "pos", Rules: []*commonv1.Rule{{Column: "a"}},
		Columns: []*commonv1.ColumnMapping{{Target: "a", Source: "b"}}}
	rd := Read(context.Background(), spec, tbl, &extractorv1.ReadBatchRequest{Seq: 7, Cursor: "k"})
	p := c.PullRead(tbl, rd)
	if p.GetUpstream() != "t:2" || p.GetTransform().GetUpstream() != "e:1" {
		t.Fatalf("upstreams: validator pulls from %q, transformer from %q", p.GetUpstream(), p.GetTransform().GetUpstream())
	}
	r := p.GetTransform().GetRead().GetRead()
	if r.GetTable() != "orders" || r.GetBatchSize() != 500 || r.GetBatchBytes() != 1<<20 || r.GetSeq() != 7 || r.GetCursor() != "k" {
		t.Fatalf("read: %v", r)
	}
	if len(p.GetConfig().GetRules()) != 1 || p.GetTransform().GetConfig().GetSystem() != "pos" || len(p.GetTransform().GetConfig().GetColumns()) != 1 {
		t.Fatalf("configs: %v", p)
	}
}

// A stage's message that quotes a DSN loses the password on the way to
// logs, spans, the control schema and callers, whatever the code or form.
func TestStageErrorsHideCredentials(t *testing.T) {
	const planted = "Pl4nted"
	for _, msg := range []string{
		"failed to connect to postgres://postgres:" + planted + "@127.0.0.1:5432/db: refused",
		"cannot connect (host=127.0.0.1 user=postgres password=" + planted + " dbname=db)",
		"dial root:" + planted + "@tcp(127.0.0.1:3306)/shop: refused",
	} {
		for _, code := range []codes.Code{codes.Unavailable, codes.InvalidArgument, codes.NotFound, codes.FailedPrecondition, codes.Internal} {
			for name, err := range map[string]error{
				"classify":       Classify("loader", status.Error(code, msg)),
				"refusal":        Refusal("tables[0].source", "extractor", status.Error(code, msg)),
				"refusal tables": Refusal("tables[0].source", "extractor", status.Error(code, "tables[0].source: "+msg)),
			} {
				if strings.Contains(err.Error(), planted) {
					t.Errorf("%s, %s: %q", name, code, err)
				}
				if !strings.Contains(err.Error(), "127.0.0.1") {
					t.Errorf("%s, %s: %q lost more than the password", name, code, err)
				}
			}
		}
		if err := Classify("loader", errors.New(msg)); strings.Contains(err.Error(), planted) {
			t.Errorf("classify, not a status: %q", err)
		}
	}
}
