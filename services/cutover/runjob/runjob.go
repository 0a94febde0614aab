// Package runjob is `cutover run --spec FILE`: one job on the embedded
// stack, with progress on stderr (a bar per table on a terminal, lines
// otherwise, as `cutoverctl watch` shows it), the report on stdout and an
// exit code a script or CI can act on.
package runjob

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/cutover/ctl/progress"
	"github.com/cutover/cutover/services/cutover/specfile"
	"github.com/cutover/cutover/services/cutover/stack"
	"github.com/cutover/cutover/services/kit/config"
	"github.com/cutover/cutover/services/kit/jobreport"
	"github.com/cutover/cutover/services/kit/telemetry"
	"github.com/cutover/cutover/services/orchestrator/orchestrate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
)

// Exit codes of `cutover run`.
const (
	ExitOK      = 0
	ExitFailed  = 1
	ExitBadSpec = 2
)

// Main runs `cutover run` with args (after "run") and returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cutover run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	specPath := fs.String("spec", "", "job spec file (JSON or YAML)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	reportMD := fs.String("report-md", "", "also write the report as Markdown to this file")
	reportHTML := fs.String("report-html", "", "also write the report as a self-contained HTML page to this file")
	traceFile := config.String(fs, "trace-file", "", "JSON-lines span file when OTLP is not configured")
	roots := config.String(fs, "file-roots", "", "more directories file sources may be read from besides the spec's own, separated by "+string(os.PathListSeparator))
	hosts := config.String(fs, "source-hosts", "", "comma-separated source hosts the extractor may dial (empty: any)")
	var oc orchestrate.Config
	oc.Flags(fs)
	if err := fs.Parse(args); err != nil {
		return ExitBadSpec
	}
	if *specPath == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: cutover run --spec FILE [--json] [--report-md FILE] [--report-html FILE]")
		return ExitBadSpec
	}
	if oc.ControlURL == "" {
		fmt.Fprintln(stderr, "cutover run: the control database is required: set --control-url or CUTOVER_CONTROL_URL")
		return ExitBadSpec
	}
	// The report is the output; service chatter only when it matters.
	slog.SetDefault(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	spec, err := LoadSpec(*specPath)
	if err != nil {
		fmt.Fprintf(stderr, "cutover run: %v\n", err)
		return ExitBadSpec
	}
	tel, err := telemetry.Setup(ctx, "cutover", *traceFile)
	if err != nil {
		fmt.Fprintf(stderr, "cutover run: %v\n", err)
		return ExitFailed
	}
	defer tel.Shutdown(context.WithoutCancel(ctx))
	oc.TraceSink = tel.Sink
	// File sources are read from the spec's directory (where its relative
	// paths point) and the roots named, nowhere else.
	specDir, err := filepath.Abs(filepath.Dir(*specPath))
	if err != nil {
		fmt.Fprintf(stderr, "cutover run: %v\n", err)
		return ExitBadSpec
	}
	st, err := stack.Start(ctx, stack.Config{Addrs: stack.EphemeralAddrs(), Orchestrator: oc,
		FileRoots: append([]string{specDir}, config.List(*roots, string(os.PathListSeparator))...), SourceHosts: config.List(*hosts, ",")})
	if err != nil {
		fmt.Fprintf(stderr, "cutover run: start embedded stack: %v\n", err)
		return ExitFailed
	}
	defer st.Close()
	conn, err := st.Conn()
	if err != nil {
		fmt.Fprintf(stderr, "cutover run: %v\n", err)
		return ExitFailed
	}
	defer conn.Close()
	jobs := orchestratorv1.NewJobServiceClient(conn)
	created, err := jobs.CreateJob(ctx, &orchestratorv1.CreateJobRequest{Spec: spec})
	if err != nil {
		fmt.Fprintf(stderr, "cutover run: %s\n", status.Convert(err).Message())
		switch status.Code(err) {
		case codes.InvalidArgument, codes.FailedPrecondition:
			return ExitBadSpec
		}
		return ExitFailed
	}
	id := created.GetJob().GetId()
	fmt.Fprintf(stderr, "job %s started: %d partitions, trace %s\n", id, created.GetJob().GetPartitionsTotal(), created.GetJob().GetTraceId())
	if err := watch(ctx, jobs, id, stderr); err != nil {
		fmt.Fprintf(stderr, "cutover run: watch %s: %v\n", id, err)
		return ExitFailed
	}
	_ = tel.ForceFlush(ctx)
	rep, err := jobs.GetJobReport(ctx, &orchestratorv1.GetJobReportRequest{Id: id})
	if err != nil {
		fmt.Fprintf(stderr, "cutover run: report of %s: %v\n", id, err)
		return ExitFailed
	}
	r := rep.GetReport()
	if *asJSON {
		b, _ := protojson.MarshalOptions{Multiline: true, UseProtoNames: true}.Marshal(r)
		fmt.Fprintln(stdout, string(b))
	} else {
		orchestrate.FormatReport(stdout, r)
	}
	// A failed job's report is the one most worth keeping: written either way.
	for _, f := range []struct {
		path   string
		render func(io.Writer, *orchestratorv1.JobReport) error
	}{{*reportMD, jobreport.Markdown}, {*reportHTML, jobreport.HTML}} {
		if f.path == "" {
			continue
		}
		if err := writeReport(f.path, r, f.render); err != nil {
			fmt.Fprintf(stderr, "cutover run: %v\n", err)
			return ExitFailed
		}
	}
	if r.GetState() != orchestratorv1.JobState_JOB_STATE_SUCCEEDED {
		return ExitFailed
	}
	return ExitOK
}

func writeReport(path string, r *orchestratorv1.JobReport, render func(io.Writer, *orchestratorv1.JobReport) error) error {
	var b bytes.Buffer
	if err := render(&b, r); err != nil {
		return fmt.Errorf("report %s: %w", path, err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// watch shows the job's progress on stderr until it ends: a bar per table
// on a terminal, lines otherwise (as `cutoverctl watch` does).
func watch(ctx context.Context, jobs orchestratorv1.JobServiceClient, id string, stderr io.Writer) error {
	stream, err := jobs.WatchJob(ctx, &orchestratorv1.WatchJobRequest{Id: id})
	if err != nil {
		return err
	}
	pr := progress.New(stderr, progress.Terminal(stderr))
	defer pr.Flush()
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		pr.Update(m)
	}
}

// LoadSpec reads a JSON or YAML job spec; see specfile.Load.
func LoadSpec(path string) (*commonv1.JobSpec, error) { return specfile.Load(path) }
