package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/cutover/ctl/progress"
	"github.com/cutover/cutover/services/cutover/specfile"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
)

// watchFlags adds --plain and, for create and resume (which follow the job
// only when asked), --watch; follow is nil without it.
func watchFlags(fs *flag.FlagSet, withWatch bool) (follow, plain *bool) {
	if withWatch {
		follow = fs.Bool("watch", false, "then follow the job as `cutoverctl watch` does, with its exit code")
	}
	plain = fs.Bool("plain", false, "plain lines even when stdout is a terminal")
	return follow, plain
}

// bars says whether to draw bars: stdout is a terminal and --plain unset.
func bars(stdout io.Writer, plain bool) bool {
	return !plain && progress.Terminal(stdout)
}

// create submits a spec file (read as validate and `cutover run` read it)
// and prints the new job; with --watch it follows the job to its end.
func create(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	fs := newFlagSet("create")
	var c conn
	c.flags(fs)
	specPath := fs.String("spec", "", "job spec file (JSON or YAML)")
	redrive := fs.String("redrive-of", "", "read only the rows this earlier job quarantined, and resolve them as they load")
	quiet := fs.Bool("quiet", false, "print only the job id")
	follow, plain := watchFlags(fs, true)
	pos, err := parse(fs, args)
	switch {
	case err != nil:
		return 0, err
	case len(pos) > 0:
		return 0, usageError{fmt.Sprintf("create takes no arguments, got %q (the spec goes in --spec)", pos)}
	case *specPath == "":
		return 0, usageError{"create: --spec is required"}
	case *quiet && (c.asJSON || *follow):
		return 0, usageError{"--quiet does not go with --json or --watch"}
	}
	spec, err := specfile.Load(*specPath)
	if err != nil {
		return 0, usageError{err.Error()}
	}
	cc, err := c.dial(ctx)
	if err != nil {
		return 0, err
	}
	defer cc.Close()
	client := orchestratorv1.NewJobServiceClient(cc)
	// CreateJob checks the spec against source and target and plans the
	// partitions: it reads the sources' key ranges.
	cctx, cancel := context.WithTimeout(c.outgoing(ctx), c.deadline(defaultLongTimeout))
	r, err := client.CreateJob(cctx, &orchestratorv1.CreateJobRequest{Spec: spec, RedriveOf: *redrive}, grpc.WaitForReady(false))
	cancel()
	if err != nil {
		return 0, c.callError("CreateJob", err)
	}
	j := r.GetJob()
	switch {
	case *quiet:
		fmt.Fprintln(stdout, j.GetId())
	case c.asJSON && !*follow:
		printJSON(stdout, r)
	case !c.asJSON:
		trace := ""
		if j.GetTraceId() != "" {
			trace = ", trace " + j.GetTraceId()
		}
		fmt.Fprintf(stdout, "created job %s (%s)%s\n", j.GetId(), j.GetName(), trace)
	}
	if !*follow {
		return ExitOK, nil
	}
	return c.watchJob(ctx, client, j.GetId(), stdout, stderr, bars(stdout, *plain))
}

// watch follows a job until it ends, the full load is in (a following
// job) or --timeout passes: a bar per table on a terminal, lines otherwise.
func watch(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	var plain *bool
	j, err := openJob(ctx, "watch", args, func(fs *flag.FlagSet) { _, plain = watchFlags(fs, false) })
	if err != nil {
		return 0, err
	}
	defer j.Close()
	return j.watchJob(ctx, j.jobs, j.id, stdout, stderr, bars(stdout, *plain))
}

// watchJob shows WatchJob's answers (with --json, each on one line). A
// stream the orchestrator drops (a restart, a replica going away) is
// opened again, as readiness --watch asks again. Exit 0 when the job
// succeeded or follows its sources, 1 when it ended otherwise or was still
// running at the deadline.
func (c *conn) watchJob(ctx context.Context, client orchestratorv1.JobServiceClient, id string, stdout, stderr io.Writer, tty bool) (int, error) {
	wctx, cancel := c.outgoing(ctx), context.CancelFunc(func() {})
	if c.timeout > 0 { // no default: a load takes as long as it takes
		wctx, cancel = context.WithTimeout(wctx, c.timeout)
	}
	defer cancel()
	pr := progress.New(stdout, tty && !c.asJSON)
	var last *orchestratorv1.WatchJobResponse
	transient := ""
	for {
		stream, err := client.WatchJob(wctx, &orchestratorv1.WatchJobRequest{Id: id}, grpc.WaitForReady(false))
		for err == nil {
			var m *orchestratorv1.WatchJobResponse
			if m, err = stream.Recv(); err != nil {
				break
			}
			last, transient = m, ""
			if c.asJSON {
				b, _ := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
				fmt.Fprintln(stdout, string(b))
			} else {
				pr.Update(m)
			}
			if m.GetJob().GetState() == orchestratorv1.JobState_JOB_STATE_FOLLOWING {
				err = io.EOF // WatchJob goes on while the job follows; the load is in
			}
		}
		code := status.Code(err)
		switch {
		case errors.Is(err, io.EOF) && last != nil:
			return c.jobWatchEnd(stdout, pr, last, ""), nil
		case errors.Is(err, io.EOF):
			return 0, usageError{fmt.Sprintf("WatchJob: the orchestrator at %s ended the stream without an answer", c.addr)}
		case ctx.Err() != nil:
			return 0, usageError{"watch: cancelled"}
		case wctx.Err() != nil || code == codes.DeadlineExceeded: // gRPC may see the deadline before wctx says so
			if last == nil {
				return 0, usageError{fmt.Sprintf("watch: no answer from orchestrator at %s within --timeout %s", c.addr, c.timeout)}
			}
			return c.jobWatchEnd(stdout, pr, last, fmt.Sprintf("job %s is still %s at the deadline (--timeout %s)", id, stateName(last.GetJob().GetState()), c.timeout)), nil
		case code == codes.Unavailable && !notGRPC(err):
			if msg := c.rpcError("WatchJob", err).Error(); msg != transient {
				transient = msg
				fmt.Fprintf(stderr, "cutoverctl: %s; still watching\n", msg)
			}
		default:
			return 0, c.rpcError("WatchJob", err)
		}
		select {
		case <-ctx.Done():
			return 0, usageError{"watch: cancelled"}
		case <-wctx.Done(): // the next round says so
		case <-time.After(pollEvery):
		}
	}
}

// jobWatchEnd shows what the pace held back and a note on why the watch
// stopped, and gives the exit code.
func (c *conn) jobWatchEnd(stdout io.Writer, pr *progress.Printer, last *orchestratorv1.WatchJobResponse, note string) int {
	state := last.GetJob().GetState()
	if note == "" && state == orchestratorv1.JobState_JOB_STATE_FOLLOWING {
		note = fmt.Sprintf("the full load is in and the job follows its sources: cutoverctl readiness %s --watch", last.GetJob().GetId())
	}
	if !c.asJSON {
		pr.Flush()
		if note != "" {
			fmt.Fprintln(stdout, note)
		}
	}
	if state == orchestratorv1.JobState_JOB_STATE_SUCCEEDED || state == orchestratorv1.JobState_JOB_STATE_FOLLOWING {
		return ExitOK
	}
	return ExitFailed
}

// jobStatus prints a job with its progress per table: the first answer of
// WatchJob, so that status and watch show the same numbers.
func jobStatus(ctx context.Context, args []string, stdout io.Writer) (int, error) {
	j, err := openJob(ctx, "status", args, nil)
	if err != nil {
		return 0, err
	}
	defer j.Close()
	c := &j.conn
	cctx, cancel := j.call(ctx, defaultCheckTimeout)
	defer cancel()
	stream, err := j.jobs.WatchJob(cctx, &orchestratorv1.WatchJobRequest{Id: j.id}, grpc.WaitForReady(false))
	var m *orchestratorv1.WatchJobResponse
	if err == nil {
		m, err = stream.Recv()
	}
	if errors.Is(err, io.EOF) {
		return 0, usageError{fmt.Sprintf("WatchJob: the orchestrator at %s ended the stream without an answer", c.addr)}
	}
	if err != nil {
		return 0, c.rpcError("WatchJob", err)
	}
	if c.asJSON {
		printJSON(stdout, m)
	} else {
		statusView(stdout, m)
	}
	return ExitOK, nil
}

func statusView(w io.Writer, m *orchestratorv1.WatchJobResponse) {
	j := m.GetJob()
	fmt.Fprintf(w, "job %s (%s): %s\n", j.GetId(), j.GetName(), stateName(j.GetState()))
	fmt.Fprintf(w, "  created %s, started %s, finished %s\n", stamp(j.GetCreatedAt()), stamp(j.GetStartedAt()), stamp(j.GetFinishedAt()))
	n := j.GetCounts()
	fmt.Fprintf(w, "  partitions %d/%d; extracted %d, loaded %d, quarantined %d, merged away %d, filtered %d\n", j.GetPartitionsDone(), j.GetPartitionsTotal(),
		n.GetExtracted(), n.GetLoaded(), n.GetQuarantined(), n.GetMergedAway(), n.GetFiltered())
	fmt.Fprintf(w, "  trace %s, spec %s\n", orDash(j.GetTraceId()), orDash(j.GetSpecHash()))
	if e := j.GetError(); e != "" {
		fmt.Fprintf(w, "  error: %s\n", oneLine(e))
	}
	if len(m.GetTables()) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  TABLE\tPARTITIONS\tEXTRACTED\tLOADED\tQUARANTINED\tMERGED AWAY\tFILTERED")
	for _, t := range m.GetTables() {
		n := t.GetCounts()
		fmt.Fprintf(tw, "  %s\t%d/%d\t%d\t%d\t%d\t%d\t%d\n", t.GetTable(), t.GetPartitionsDone(), t.GetPartitionsTotal(),
			n.GetExtracted(), n.GetLoaded(), n.GetQuarantined(), n.GetMergedAway(), n.GetFiltered())
	}
	tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// cancelJob stops a pending, running or following job; what it loaded
// stays (rollback undoes it, resume finishes it). Any other state is
// refused (exit 1).
func cancelJob(ctx context.Context, args []string, stdout io.Writer) (int, error) {
	j, err := openJob(ctx, "cancel", args, nil)
	if err != nil {
		return 0, err
	}
	defer j.Close()
	c, id := &j.conn, j.id
	cctx, cancel := j.call(ctx, defaultCheckTimeout)
	defer cancel()
	r, err := j.jobs.CancelJob(cctx, &orchestratorv1.CancelJobRequest{Id: id}, grpc.WaitForReady(false))
	if err != nil {
		return 0, c.callError("CancelJob", err)
	}
	if c.asJSON {
		printJSON(stdout, r)
	} else {
		fmt.Fprintf(stdout, "cancelled %s\n  %s\n", id, progress.JobLine(r.GetJob()))
	}
	return ExitOK, nil
}

// resume re-runs the unfinished partitions of a failed or cancelled job
// (the loader's ledger skips batches already in); any other state is
// refused (exit 1). With --watch it follows the job to its end.
func resume(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	var follow, plain *bool
	j, err := openJob(ctx, "resume", args, func(fs *flag.FlagSet) { follow, plain = watchFlags(fs, true) })
	if err != nil {
		return 0, err
	}
	defer j.Close()
	c, id, client := &j.conn, j.id, j.jobs
	cctx, cancel := j.call(ctx, defaultCheckTimeout)
	r, err := client.ResumeJob(cctx, &orchestratorv1.ResumeJobRequest{Id: id}, grpc.WaitForReady(false))
	cancel()
	if err != nil {
		return 0, c.callError("ResumeJob", err)
	}
	switch {
	case c.asJSON && !*follow:
		printJSON(stdout, r)
	case !c.asJSON:
		fmt.Fprintf(stdout, "resumed %s\n  %s\n", id, progress.JobLine(r.GetJob()))
	}
	if !*follow {
		return ExitOK, nil
	}
	return c.watchJob(ctx, client, id, stdout, stderr, bars(stdout, *plain))
}

// jobCmd is a command on one job: its flags parsed, the job's id and a
// client on the orchestrator; Close when done.
type jobCmd struct {
	conn
	id   string
	cc   *grpc.ClientConn
	jobs orchestratorv1.JobServiceClient
}

// openJob parses a one-job command's flags (more adds the command's own)
// and dials the orchestrator.
func openJob(ctx context.Context, name string, args []string, more func(*flag.FlagSet)) (*jobCmd, error) {
	fs := newFlagSet(name)
	j := &jobCmd{}
	j.flags(fs)
	if more != nil {
		more(fs)
	}
	pos, err := parse(fs, args)
	if err != nil {
		return nil, err
	}
	if j.id, err = jobArg(name, pos); err != nil {
		return nil, err
	}
	if j.cc, err = j.dial(ctx); err != nil {
		return nil, err
	}
	j.jobs = orchestratorv1.NewJobServiceClient(j.cc)
	return j, nil
}

// call is one call's context: the command's deadline, def by default.
func (j *jobCmd) call(ctx context.Context, def time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(j.outgoing(ctx), j.deadline(def))
}

func (j *jobCmd) Close() { j.cc.Close() }
