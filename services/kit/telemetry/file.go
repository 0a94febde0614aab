package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

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
type FileExporter struct {
	mu   sync.Mutex
	f    *os.File
	path string
}

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
	return &FileExporter{f: f, path: abs}, nil
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
	for _, s := range spans {
		rec := SpanRecord{
			TraceID:    s.SpanContext().TraceID().String(),
			SpanID:     s.SpanContext().SpanID().String(),
			Name:       s.Name(),
			Kind:       s.SpanKind().String(),
			Start:      s.StartTime().UTC(),
			End:        s.EndTime().UTC(),
			DurationMS: float64(s.EndTime().Sub(s.StartTime()).Microseconds()) / 1000,
			Status:     s.Status().Code.String(),
			StatusMsg:  s.Status().Description,
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
				rec.Attributes[string(kv.Key)] = kv.Value.Emit()
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
