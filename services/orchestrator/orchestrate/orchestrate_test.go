package orchestrate

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
)

func TestToStatus(t *testing.T) {
	tests := []struct {
		err  error
		code codes.Code
	}{
		{invalid("tables[0].name", "required"), codes.InvalidArgument},
		{fmt.Errorf("%w: x", ErrTargetMismatch), codes.FailedPrecondition},
		{fmt.Errorf("%w: %q", ErrJobNotFound, "nope"), codes.NotFound},
		{fmt.Errorf("%w: done", ErrJobState), codes.FailedPrecondition},
		{stageErr("loader", status.Error(codes.Unavailable, "down")), codes.Unavailable},
		{errors.New("boom"), codes.Internal},
	}
	for _, tt := range tests {
		if got := status.Code(toStatus(tt.err)); got != tt.code {
			t.Errorf("toStatus(%v) = %s, want %s", tt.err, got, tt.code)
		}
	}
}

func TestRetryable(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{stageErr("loader", status.Error(codes.Unavailable, "down")), true},
		{stageErr("loader", status.Error(codes.Internal, "boom")), true},
		{stageErr("transformer", status.Error(codes.InvalidArgument, "bad config")), false},
		{fmt.Errorf("%w: x", ErrUnbalanced), false},
		{fmt.Errorf("%w: x", ErrCancelled), false},
	}
	for _, tt := range tests {
		if got := retryable(tt.err); got != tt.want {
			t.Errorf("retryable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestRefusalNamesTheField(t *testing.T) {
	tests := []struct {
		err      error
		code     codes.Code
		contains string
	}{
		{status.Error(codes.NotFound, "open /x.csv: no such file"), codes.InvalidArgument, "tables[0].source: open /x.csv"},
		{status.Error(codes.InvalidArgument, "tables[0].columns[1].source: unknown source column"), codes.InvalidArgument, "tables[0].columns[1].source"},
		{status.Error(codes.InvalidArgument, "delimiter must be one character"), codes.InvalidArgument, "tables[0].source: delimiter"},
		{status.Error(codes.FailedPrecondition, "no primary key"), codes.FailedPrecondition, "tables[0].source: no primary key"},
		{status.Error(codes.Unavailable, "connection refused"), codes.Unavailable, "connection refused"},
	}
	for _, tt := range tests {
		st := status.Convert(toStatus(refusal("tables[0].source", "extractor", tt.err)))
		if st.Code() != tt.code || !strings.Contains(st.Message(), tt.contains) {
			t.Errorf("refusal(%v) = %s %q, want %s containing %q", tt.err, st.Code(), st.Message(), tt.code, tt.contains)
		}
	}
}

func TestRedactedSpecHidesPasswords(t *testing.T) {
	spec := &commonv1.JobSpec{
		Target: &commonv1.TargetSpec{Dsn: "postgres://u:hunter2@h/db"},
		Tables: []*commonv1.TableSpec{{Source: &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Postgres{
			Postgres: &commonv1.PostgresSource{Dsn: "host=h password=hunter2 dbname=x"}}}}},
	}
	b, _ := protojson.Marshal(redacted(spec))
	if strings.Contains(string(b), "hunter2") {
		t.Fatalf("redacted spec leaks: %s", b)
	}
	if !strings.Contains(spec.Target.Dsn, "hunter2") {
		t.Fatal("redacted changed the original spec")
	}
}

func TestFillTargetTypes(t *testing.T) {
	cols := []*loaderv1.TargetColumn{
		{Name: "id", Type: commonv1.ColumnType_COLUMN_TYPE_INT64, NotNull: true},
		{Name: "amount", Type: commonv1.ColumnType_COLUMN_TYPE_NUMERIC, Precision: 12, Scale: 2},
		{Name: "code", Type: commonv1.ColumnType_COLUMN_TYPE_TEXT, MaxLength: 5},
		{Name: "created", Type: commonv1.ColumnType_COLUMN_TYPE_TIMESTAMPTZ, NotNull: true, HasDefault: true},
	}
	tbl := &commonv1.TableSpec{TargetTable: "t", Columns: []*commonv1.ColumnMapping{
		{Target: "id", Source: "a"}, {Target: "amount", Source: "b"}, {Target: "code", Source: "c", Type: commonv1.ColumnType_COLUMN_TYPE_TEXT}}}
	if err := fillTargetTypes("tables[0]", tbl, cols, "public"); err != nil {
		t.Fatal(err)
	}
	m := tbl.Columns
	if m[0].Type != commonv1.ColumnType_COLUMN_TYPE_INT64 || !m[0].NotNull || m[1].Precision != 12 || m[1].Scale != 2 || m[2].MaxLength != 5 {
		t.Fatalf("filled mappings: %v", m)
	}
	bad := &commonv1.TableSpec{TargetTable: "t", Columns: []*commonv1.ColumnMapping{{Target: "idd", Source: "a"}}}
	err := fillTargetTypes("tables[3]", bad, cols, "public")
	if !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), "tables[3].columns[0].target") || !strings.Contains(err.Error(), "idd") {
		t.Fatalf("unknown target column: %v", err)
	}
	missing := &commonv1.TableSpec{TargetTable: "t", Columns: []*commonv1.ColumnMapping{{Target: "amount", Source: "a"}}}
	if err := fillTargetTypes("tables[0]", missing, cols, "public"); !errors.Is(err, ErrTargetMismatch) || !strings.Contains(err.Error(), `"id"`) {
		t.Fatalf("unmapped NOT NULL column: %v", err)
	}
}

func TestFormatReport(t *testing.T) {
	r := &orchestratorv1.JobReport{JobId: "job-1", Name: "demo", State: orchestratorv1.JobState_JOB_STATE_SUCCEEDED, Balanced: true,
		Totals: &commonv1.Counts{Extracted: 10, Loaded: 8, Quarantined: 2, Batches: 1}, TraceId: "abc", TraceSink: "/tmp/t.jsonl",
		Tables: []*orchestratorv1.TableReport{{Name: "orders", Source: "csv o.csv", TargetTable: "public.orders",
			Counts:  &commonv1.Counts{Extracted: 10, Loaded: 8, Quarantined: 2, Batches: 1},
			Rejects: []*orchestratorv1.RuleRejects{{Rule: "cast", Count: 2, Examples: []*orchestratorv1.RejectExample{{SourceRef: "line 3", Reason: "column amount: cannot cast"}}}}}}}
	var b bytes.Buffer
	FormatReport(&b, r)
	for _, want := range []string{"job-1", "SUCCEEDED", "extracted 10 = loaded 8 + quarantined 2: balanced", "rejects orders / cast: 2", "line 3: column amount", "abc", "/tmp/t.jsonl"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
	r.Totals.Loaded = 7
	b.Reset()
	FormatReport(&b, r)
	if !strings.Contains(b.String(), "NOT BALANCED") {
		t.Errorf("an unbalanced total is not flagged:\n%s", b.String())
	}
}
