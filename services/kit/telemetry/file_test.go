package telemetry

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// The span file stays bounded: a huge attribute is cut, the file rotates
// past its size to <path>.1, and a second process sharing the path follows
// the rotation instead of writing on into the renamed file.
func TestFileIsBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spans.jsonl")
	open := func() (*FileExporter, *sdktrace.TracerProvider) {
		exp, err := NewFileExporter(path)
		if err != nil {
			t.Fatal(err)
		}
		exp.MaxBytes = 64 << 10
		return exp, sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	}
	a, tpa := open()
	_, tpb := open()
	huge := strings.Repeat("job name ", 1<<20) // 9 MiB
	for i := 0; i < 400; i++ {
		tp := tpa
		if i%2 == 1 {
			tp = tpb
		}
		_, span := tp.Tracer("test").Start(context.Background(), "batch")
		if i == 0 {
			span.SetAttributes(attribute.String("cutover.job_name", huge))
		}
		span.SetAttributes(attribute.Int("i", i))
		span.End()
	}
	for _, tp := range []*sdktrace.TracerProvider{tpa, tpb} {
		if err := tp.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}

	total := int64(0)
	for _, p := range []string{path, path + ".1"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s: %v (no rotation?)", p, err)
		}
		// One batch of spans may land past the limit before the next
		// export rotates: a little over, never far.
		if st.Size() > 2*a.MaxBytes {
			t.Errorf("%s is %d bytes, limit %d", p, st.Size(), a.MaxBytes)
		}
		total += st.Size()
	}
	spans, err := ReadSpans(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(spans) == 0 {
		t.Fatal("the current file holds no spans: a writer kept writing into the rotated one")
	}
	odd, even := 0, 0
	for _, s := range spans {
		if n := s.Attributes["i"]; n != "" && (n[len(n)-1]-'0')%2 == 1 {
			odd++
		} else {
			even++
		}
	}
	if odd == 0 || even == 0 {
		t.Errorf("the current file holds %d spans of one writer and %d of the other: both must follow the rotation", even, odd)
	}
	last := spans[len(spans)-1].Attributes["i"]
	if last != "399" && last != "398" {
		t.Errorf("the last span in the current file is i=%s, want one of the last two written", last)
	}
	old, _ := ReadSpans(path + ".1")
	for _, s := range append(old, spans...) {
		if v := s.Attributes["cutover.job_name"]; v != "" && (len(v) > 2048 || !strings.Contains(v, "bytes)")) {
			t.Errorf("the huge attribute was kept: %d bytes", len(v))
		}
	}
}

func TestTraceFileMaxSetting(t *testing.T) {
	t.Setenv(TraceFileMaxEnv, "lots")
	if _, err := NewFileExporter(filepath.Join(t.TempDir(), "x.jsonl")); err == nil || !strings.Contains(err.Error(), TraceFileMaxEnv) {
		t.Fatalf("a bad %s: %v", TraceFileMaxEnv, err)
	}
	t.Setenv(TraceFileMaxEnv, "3")
	e, err := NewFileExporter(filepath.Join(t.TempDir(), "x.jsonl"))
	if err != nil || e.MaxBytes != 3<<20 {
		t.Fatalf("3 MiB: %v %v", e, err)
	}
	_ = e.Shutdown(context.Background())
}
