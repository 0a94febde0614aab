package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// SpanRecord is one line of the JSON-lines span file.
type SpanRecord struct {
	TraceID      string            `json:"trace_id"`
	SpanID       string            `json:"span_id"`
	ParentSpanID string            `json:"parent_span_id,omitempty"`
	Name         string            `json:"name"`
	Service      string            `json:"service"`
	Kind         string            `json:"kind"`
	Start        time.Time         `json:"start"`
	End          time.Time         `json:"end"`
	DurationMS   float64           `json:"duration_ms"`
	Attributes   map[string]string `json:"attributes,omitempty"`
	Status       string            `json:"status,omitempty"`
	StatusMsg    string            `json:"status_message,omitempty"`
}

// FileExporter appends one JSON object per span to a file. Several processes
// may share the file: each span is one O_APPEND write.
//
// The file is bounded: an attribute or status text longer than MaxValue
// bytes is cut (a span describes, it does not carry data), and once the
// file passes MaxBytes it is renamed to <path>.1 (replacing the one
// before) and a new one begun, so a long-running stack keeps at most about
// twice MaxBytes. A process whose file another one rotated notices it and
// reopens the path.
type FileExporter struct {
	mu   sync.Mutex
	f    *os.File
	path string
	// MaxBytes is the size past which the file rotates; 0 never.
	MaxBytes int64
	// MaxValue bounds one attribute's text.
	MaxValue int
}

// TraceFileMaxEnv sets the trace file's size in MiB past which it rotates
// (default 256; 0 never rotates).
const TraceFileMaxEnv = "CUTOVER_TRACE_FILE_MAX_MB"

const (
	defaultMaxMiB   = 256
	defaultMaxValue = 1024
)

// NewFileExporter opens (creating) path for appending.
func NewFileExporter(path string) (*FileExporter, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("trace file %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return nil, fmt.Errorf("trace file directory: %w", err)
	}
	f, err := os.OpenFile(abs, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open trace file: %w", err)
	}
	maxMiB := int64(defaultMaxMiB)
	if v := os.Getenv(TraceFileMaxEnv); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			f.Close()
			return nil, fmt.Errorf("%s %q: want a size in MiB (0: never rotate)", TraceFileMaxEnv, v)
		}
		maxMiB = n
	}
	return &FileExporter{f: f, path: abs, MaxBytes: maxMiB << 20, MaxValue: defaultMaxValue}, nil
}

// clip bounds one value's text.
func (e *FileExporter) clip(s string) string {
	if e.MaxValue <= 0 || len(s) <= e.MaxValue {
		return s
	}
	cut := e.MaxValue
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("…(%d bytes)", len(s))
}

// rotate starts a new file when this one is past MaxBytes, and follows a
// rotation another process made.
func (e *FileExporter) rotate() error {
	if e.MaxBytes <= 0 {
		return nil
	}
	mine, err := e.f.Stat()
	if err != nil {
		return err
	}
	cur, err := os.Stat(e.path)
	switch {
	case err == nil && !os.SameFile(mine, cur):
		// Another process rotated: write where the path points now.
	case err != nil && !os.IsNotExist(err):
		return err
	case mine.Size() < e.MaxBytes:
		return nil
	default:
		if err := os.Rename(e.path, e.path+".1"); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	f, err := os.OpenFile(e.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	e.f.Close()
	e.f = f
	return nil
}

// Path is the absolute path of the span file.
func (e *FileExporter) Path() string { return e.path }

// ExportSpans writes the spans.
func (e *FileExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.f == nil {
		return nil
	}
	if err := e.rotate(); err != nil {
		return fmt.Errorf("rotate trace file: %w", err)
	}
	for _, s := range spans {
		rec := SpanRecord{
			TraceID:    s.SpanContext().TraceID().String(),
			SpanID:     s.SpanContext().SpanID().String(),
			Name:       e.clip(s.Name()),
			Kind:       s.SpanKind().String(),
			Start:      s.StartTime().UTC(),
			End:        s.EndTime().UTC(),
			DurationMS: float64(s.EndTime().Sub(s.StartTime()).Microseconds()) / 1000,
			Status:     s.Status().Code.String(),
			StatusMsg:  e.clip(s.Status().Description),
		}
		if p := s.Parent(); p.IsValid() {
			rec.ParentSpanID = p.SpanID().String()
		}
		for _, kv := range s.Resource().Attributes() {
			if kv.Key == "service.name" {
				rec.Service = kv.Value.AsString()
			}
		}
		if attrs := s.Attributes(); len(attrs) > 0 {
			rec.Attributes = make(map[string]string, len(attrs))
			for _, kv := range attrs {
				rec.Attributes[string(kv.Key)] = e.clip(kv.Value.Emit())
			}
		}
		line, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("encode span: %w", err)
		}
		if _, err := e.f.Write(append(line, '\n')); err != nil {
			return fmt.Errorf("write span: %w", err)
		}
	}
	return nil
}

// Shutdown closes the file.
func (e *FileExporter) Shutdown(context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.f == nil {
		return nil
	}
	err := e.f.Close()
	e.f = nil
	return err
}

// ReadSpans reads a span file, for tests and tools.
func ReadSpans(path string) ([]SpanRecord, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []SpanRecord
	dec := json.NewDecoder(bytes.NewReader(data))
	for dec.More() {
		var r SpanRecord
		if err := dec.Decode(&r); err != nil {
			return out, fmt.Errorf("span file %s: %w", path, err)
		}
		out = append(out, r)
	}
	return out, nil
}
