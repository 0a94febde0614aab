package extract

import (
	"context"
	"net"
	"path/filepath"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
)

// TestGRPCRoundTrip goes through a real server and client: batches survive
// the wire and errors keep their codes.
func TestGRPCRoundTrip(t *testing.T) {
	url := newDB(t, `CREATE TABLE nokey (a int)`, `CREATE TABLE t (id int PRIMARY KEY, v text)`, `INSERT INTO t VALUES (1, 'x'), (2, NULL)`)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	s := newService(t)
	s.Register(g)
	served := make(chan error, 1)
	go func() { served <- g.Serve(lis) }()
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cc.Close()
		g.Stop()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
		s.Close()
	})
	client := extractorv1.NewExtractorServiceClient(cc)
	ctx := context.Background()

	csvPath := writeFile(t, "id,name\n1,a\n2,b\"x\n3,c\n")
	resp, err := client.ReadBatch(ctx, &extractorv1.ReadBatchRequest{Source: csvSource(&commonv1.CsvSource{Path: csvPath}), BatchSize: 100, JobId: "j", Seq: 4})
	if err != nil {
		t.Fatal(err)
	}
	rows := rowsOf(t, resp.GetBatch())
	if !resp.GetDone() || len(rows) != 3 || rows[0].vals[1] != "a" || rows[1].reject == "" || rows[2].ref != "line 4" || resp.GetBatch().GetSeq() != 4 {
		t.Fatalf("done %v rows %q", resp.GetDone(), rows)
	}
	resp, err = client.ReadBatch(ctx, &extractorv1.ReadBatchRequest{Source: pgSource(url, "", "t"), BatchSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if rows := rowsOf(t, resp.GetBatch()); resp.GetDone() || len(rows) != 1 || rows[0].ref != "id=1" || resp.GetBatch().GetLastKey() != "1" {
		t.Fatalf("done %v rows %q", resp.GetDone(), rows)
	}

	tests := []struct {
		name string
		call func() error
		code codes.Code
		part string
	}{
		{"missing file", func() error {
			_, err := client.DescribeSource(ctx, &extractorv1.DescribeSourceRequest{Source: csvSource(&commonv1.CsvSource{Path: filepath.Join(t.TempDir(), "x.csv")})})
			return err
		}, codes.InvalidArgument, "source.csv.path"},
		{"bad delimiter", func() error {
			_, err := client.ReadBatch(ctx, &extractorv1.ReadBatchRequest{Source: csvSource(&commonv1.CsvSource{Path: csvPath, Delimiter: "ab"})})
			return err
		}, codes.InvalidArgument, "source.csv.delimiter"},
		{"no source", func() error {
			_, err := client.PlanPartitions(ctx, &extractorv1.PlanPartitionsRequest{})
			return err
		}, codes.InvalidArgument, "source"},
		{"no primary key", func() error {
			_, err := client.PlanPartitions(ctx, &extractorv1.PlanPartitionsRequest{Source: pgSource(url, "", "nokey"), Partitions: 2})
			return err
		}, codes.FailedPrecondition, "public.nokey"},
		{"missing table", func() error {
			_, err := client.ReadBatch(ctx, &extractorv1.ReadBatchRequest{Source: pgSource(url, "", "gone")})
			return err
		}, codes.NotFound, "public.gone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantCode(t, tt.call(), tt.code, tt.part) })
	}
}
