package orchestrate

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/orchestrator/jobspec"
	"github.com/cutover/cutover/services/orchestrator/stages"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestToStatus(t *testing.T) {
	tests := []struct {
		err  error
		code codes.Code
	}{
		{jobspec.Invalid("tables[0].name", "required"), codes.InvalidArgument},
		{fmt.Errorf("%w: x", ErrTargetMismatch), codes.FailedPrecondition},
		{fmt.Errorf("%w: %q", ErrJobNotFound, "nope"), codes.NotFound},
		{fmt.Errorf("%w: done", ErrJobState), codes.FailedPrecondition},
		{stages.Classify("loader", status.Error(codes.Unavailable, "down")), codes.Unavailable},
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
		{stages.Classify("loader", status.Error(codes.Unavailable, "down")), true},
		{stages.Classify("loader", status.Error(codes.Internal, "boom")), true},
		{stages.Classify("transformer", status.Error(codes.InvalidArgument, "bad config")), false},
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
		st := status.Convert(toStatus(stages.Refusal("tables[0].source", "extractor", tt.err)))
		if st.Code() != tt.code || !strings.Contains(st.Message(), tt.contains) {
			t.Errorf("refusal(%v) = %s %q, want %s containing %q", tt.err, st.Code(), st.Message(), tt.code, tt.contains)
		}
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
