package transform

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	transformerv1 "github.com/cutover/cutover/gen/cutover/transformer/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// startServer serves a fresh Service on 127.0.0.1:0 and returns a client.
func startServer(t *testing.T) transformerv1.TransformerServiceClient {
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
	return transformerv1.NewTransformerServiceClient(cc)
}

func TestTransformStream(t *testing.T) {
	client := startServer(t)
	stream, err := client.Transform(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cfg := &transformerv1.TransformConfig{Columns: []*commonv1.ColumnMapping{{Target: "n", Source: "v", Type: tInt}}}
	if err := stream.Send(&transformerv1.TransformRequest{Msg: &transformerv1.TransformRequest_Config{Config: cfg}}); err != nil {
		t.Fatal(err)
	}
	for seq := range 3 {
		b := &commonv1.Batch{Seq: int64(seq), NumRows: 2, Columns: []*commonv1.Column{textCol("v", sp(strconv.Itoa(seq)), sp("bad"))}}
		if err := stream.Send(&transformerv1.TransformRequest{Msg: &transformerv1.TransformRequest_Batch{Batch: b}}); err != nil {
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
		if b.Seq != int64(seq) || b.Columns[0].Ints[0] != int64(seq) || len(b.Rejects) != 1 || b.Rejects[0].Row != 1 {
			t.Errorf("response %d = %v", seq, b)
		}
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Errorf("after 3 responses: %v, want EOF", err)
	}
}

func TestTransformStreamErrors(t *testing.T) {
	client := startServer(t)
	okCfg := &transformerv1.TransformRequest{Msg: &transformerv1.TransformRequest_Config{Config: &transformerv1.TransformConfig{
		Columns: []*commonv1.ColumnMapping{{Target: "n", Source: "v", Type: tInt}}}}}
	batchMsg := func(b *commonv1.Batch) *transformerv1.TransformRequest {
		return &transformerv1.TransformRequest{Msg: &transformerv1.TransformRequest_Batch{Batch: b}}
	}
	good := &commonv1.Batch{NumRows: 1, Columns: []*commonv1.Column{textCol("v", sp("1"))}}
	tests := []struct {
		name string
		msgs []*transformerv1.TransformRequest
		want string
	}{
		{"missing config", []*transformerv1.TransformRequest{batchMsg(good)}, "first message must be config"},
		{"malformed batch", []*transformerv1.TransformRequest{okCfg, batchMsg(&commonv1.Batch{NumRows: 3, Columns: good.Columns})}, "malformed batch"},
		{"unknown source", []*transformerv1.TransformRequest{okCfg, batchMsg(&commonv1.Batch{NumRows: 1, Columns: []*commonv1.Column{textCol("w", sp("1"))}})}, `unknown source column "v"`},
		{"second config", []*transformerv1.TransformRequest{okCfg, okCfg}, "config after the first message"},
		{"bad config", []*transformerv1.TransformRequest{{Msg: &transformerv1.TransformRequest_Config{Config: &transformerv1.TransformConfig{
			Columns: []*commonv1.ColumnMapping{{Target: "n", Source: "v"}}}}}}, "config: columns[0].type: must be set"},
	}
	for _, tt := range tests {
		stream, err := client.Transform(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range tt.msgs {
			if err := stream.Send(m); err != nil {
				break // the server may already have failed the stream
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

func TestCheckMappingRPC(t *testing.T) {
	client := startServer(t)
	_, err := client.CheckMapping(t.Context(), &transformerv1.CheckMappingRequest{
		FieldPrefix:   "tables[1]",
		Columns:       []*commonv1.ColumnMapping{{Target: "a", Source: "amout", Type: tNum}},
		SourceColumns: []*commonv1.SourceColumn{{Name: "amount"}},
	})
	if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument ||
		st.Message() != `tables[1].columns[0].source: unknown source column "amout" (source has: amount)` {
		t.Errorf("CheckMapping = %v", err)
	}
	if _, err := client.CheckMapping(t.Context(), &transformerv1.CheckMappingRequest{
		Columns:       []*commonv1.ColumnMapping{{Target: "a", Source: "amount", Type: tNum}},
		SourceColumns: []*commonv1.SourceColumn{{Name: "amount"}},
	}); err != nil {
		t.Errorf("valid mapping: %v", err)
	}
}
