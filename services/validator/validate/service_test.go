package validate

import (
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	validatorv1 "github.com/cutover/cutover/gen/cutover/validator/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

func startServer(t *testing.T) validatorv1.ValidatorServiceClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	svc := New()
	svc.Register(g)
	done := make(chan struct{})
	go func() { _ = g.Serve(lis); close(done) }()
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cc.Close()
		g.Stop()
		<-done
		_ = svc.Close()
	})
	return validatorv1.NewValidatorServiceClient(cc)
}

func TestValidateStream(t *testing.T) {
	client := startServer(t)
	stream, err := client.Validate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cfg := &validatorv1.ValidateConfig{Rules: []*commonv1.Rule{rng("n", "0", "1")}}
	if err := stream.Send(&validatorv1.ValidateRequest{Msg: &validatorv1.ValidateRequest_Config{Config: cfg}}); err != nil {
		t.Fatal(err)
	}
	for seq := range 3 {
		// Row seq-1 (if any) is out of range: batch 0 passes, 1 and 2 fail once.
		b := &commonv1.Batch{Seq: int64(seq), NumRows: 2, Columns: []*commonv1.Column{intCol("n", tInt, ip(int64(seq)), ip(0))}}
		if err := stream.Send(&validatorv1.ValidateRequest{Msg: &validatorv1.ValidateRequest_Batch{Batch: b}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	for seq := range 3 {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		b := resp.GetBatch()
		wantRejects := 0
		if seq == 2 {
			wantRejects = 1
		}
		if b.Seq != int64(seq) || len(b.Rejects) != wantRejects || b.Columns[0].Ints[0] != int64(seq) {
			t.Errorf("response %d = %v", seq, b)
		}
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Errorf("after 3 responses: %v, want EOF", err)
	}
}

func TestValidateStreamErrors(t *testing.T) {
	client := startServer(t)
	cfgMsg := func(rules ...*commonv1.Rule) *validatorv1.ValidateRequest {
		return &validatorv1.ValidateRequest{Msg: &validatorv1.ValidateRequest_Config{Config: &validatorv1.ValidateConfig{Rules: rules}}}
	}
	batchMsg := func(b *commonv1.Batch) *validatorv1.ValidateRequest {
		return &validatorv1.ValidateRequest{Msg: &validatorv1.ValidateRequest_Batch{Batch: b}}
	}
	good := &commonv1.Batch{NumRows: 1, Columns: []*commonv1.Column{intCol("n", tInt, ip(1))}}
	tests := []struct {
		name string
		msgs []*validatorv1.ValidateRequest
		want string
	}{
		{"missing config", []*validatorv1.ValidateRequest{batchMsg(good)}, "first message must be config"},
		{"bad rules", []*validatorv1.ValidateRequest{cfgMsg(regex("n", "("))}, "config: rules[0].regex.pattern"},
		{"unknown column", []*validatorv1.ValidateRequest{cfgMsg(notNull("m")), batchMsg(good)}, `unknown column "m"`},
		{"malformed", []*validatorv1.ValidateRequest{cfgMsg(notNull("n")), batchMsg(&commonv1.Batch{NumRows: 5, Columns: good.Columns})}, "malformed batch"},
		{"second config", []*validatorv1.ValidateRequest{cfgMsg(notNull("n")), cfgMsg(notNull("n"))}, "config after the first message"},
	}
	for _, tt := range tests {
		stream, err := client.Validate(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range tt.msgs {
			if err := stream.Send(m); err != nil {
				break
			}
		}
		_ = stream.CloseSend()
		_, err = stream.Recv()
		st, _ := status.FromError(err)
		if st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), tt.want) {
			t.Errorf("%s: %v, want InvalidArgument %q", tt.name, err, tt.want)
		}
	}
}

func TestCheckRulesRPC(t *testing.T) {
	client := startServer(t)
	_, err := client.CheckRules(t.Context(), &validatorv1.CheckRulesRequest{
		FieldPrefix: "tables[2]", Rules: []*commonv1.Rule{notNull("id"), notNull("x")},
		Columns: []*commonv1.ColumnMapping{{Target: "id", Type: tInt}},
	})
	if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument || st.Message() != `tables[2].rules[1].column: unknown column "x" (columns: id)` {
		t.Errorf("CheckRules = %v", err)
	}
	if _, err := client.CheckRules(t.Context(), &validatorv1.CheckRulesRequest{
		Rules: []*commonv1.Rule{rng("id", "1", strconv.Itoa(10))}, Columns: []*commonv1.ColumnMapping{{Target: "id", Type: tInt}},
	}); err != nil {
		t.Errorf("valid rules: %v", err)
	}
}
