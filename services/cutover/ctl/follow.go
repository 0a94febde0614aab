package ctl

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"

	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// pollEvery is how often `readiness --watch` asks again.
const pollEvery = time.Second

// jobArg checks that a command got exactly one job id.
func jobArg(cmd string, pos []string) (string, error) {
	if len(pos) != 1 || strings.TrimSpace(pos[0]) == "" {
		return "", usageError{fmt.Sprintf("%s: want exactly one job id: cutoverctl %s JOB", cmd, cmd)}
	}
	return pos[0], nil
}

// callError is rpcError, except that a refusal because of the job's state
// (FailedPrecondition) is exit 1: the command was right, the moment not.
func (c *conn) callError(call string, err error) error {
	if st := status.Convert(err); st.Code() == codes.FailedPrecondition && !notGRPC(err) {
		return refusedError{fmt.Sprintf("%s refused: %s", call, oneLine(st.Message()))}
	}
	return c.rpcError(call, err)
}

func stateName(s orchestratorv1.JobState) string {
	return strings.TrimPrefix(s.String(), "JOB_STATE_")
}

func readiness(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	fs := newFlagSet("readiness")
	var c conn
	c.flags(fs)
	maxRows := fs.Int64("max-lag-rows", 0, "rows a table may be behind its source and count as caught up")
	maxSeconds := fs.Float64("max-lag-seconds", 0, "seconds a table may be behind its source (0 = the server's default, 5)")
	watch := fs.Bool("watch", false, "ask every second until ready or --timeout, printing a line per change")
	pos, err := parse(fs, args)
	if err != nil {
		return 0, err
	}
	id, err := jobArg("readiness", pos)
	switch {
	case err != nil:
		return 0, err
	case *maxRows < 0:
		return 0, usageError{fmt.Sprintf("--max-lag-rows must not be negative, got %d", *maxRows)}
	case *maxSeconds < 0 || math.IsNaN(*maxSeconds) || math.IsInf(*maxSeconds, 0):
		return 0, usageError{fmt.Sprintf("--max-lag-seconds must be a non-negative number, got %v", *maxSeconds)}
	}
	if c.timeout == 0 {
		c.timeout = defaultCheckTimeout
		if *watch {
			c.timeout = defaultLongTimeout
		}
	}
	cc, err := c.dial(ctx)
	if err != nil {
		return 0, err
	}
	defer cc.Close()
	client := orchestratorv1.NewJobServiceClient(cc)
	req := &orchestratorv1.GetReadinessRequest{Id: id, MaxLagRows: *maxRows, MaxLagSeconds: *maxSeconds}
	if *watch {
		return c.watchReadiness(ctx, client, req, stdout, stderr)
	}
	cctx, cancel := context.WithTimeout(c.outgoing(ctx), c.timeout)
	defer cancel()
	r, err := client.GetReadiness(cctx, req, grpc.WaitForReady(false))
	if err != nil {
		return 0, c.rpcError("GetReadiness", err)
	}
	if c.asJSON {
		printJSON(stdout, r)
	} else {
		readinessView(stdout, r)
	}
	return readyCode(r), nil
}

func readyCode(r *orchestratorv1.GetReadinessResponse) int {
	if r.GetReady() {
		return ExitOK
	}
	return ExitFailed
}

// watchReadiness asks every pollEvery until the job is ready or --timeout
// passes, printing a line (or, with --json, a JSON object on one line) each
// time the answer changes. An orchestrator that is briefly unavailable
// (restarting, a replica going away) does not end the watch.
func (c *conn) watchReadiness(ctx context.Context, client orchestratorv1.JobServiceClient, req *orchestratorv1.GetReadinessRequest,
	stdout, stderr io.Writer) (int, error) {
	wctx, cancel := context.WithTimeout(c.outgoing(ctx), c.timeout)
	defer cancel()
	var last *orchestratorv1.GetReadinessResponse
	prev, transient := "", ""
	for {
		pctx, pcancel := context.WithTimeout(wctx, defaultCheckTimeout)
		r, err := client.GetReadiness(pctx, req, grpc.WaitForReady(false))
		pcancel()
		code := status.Code(err)
		switch {
		case err == nil:
			transient, last = "", r
			if line := readinessLine(r); line != prev {
				prev = line
				if c.asJSON {
					b, _ := protojson.MarshalOptions{UseProtoNames: true}.Marshal(r)
					fmt.Fprintln(stdout, string(b))
				} else {
					fmt.Fprintf(stdout, "%s %s\n", time.Now().Format("15:04:05"), line)
				}
			}
			if r.GetReady() || ended(r.GetState()) {
				return c.watchEnd(stdout, last, "")
			}
		case ctx.Err() != nil:
			return 0, usageError{"readiness: cancelled"}
		case wctx.Err() != nil:
			// The deadline ended the call, not the server.
		case (code == codes.Unavailable || code == codes.DeadlineExceeded) && !notGRPC(err):
			msg := c.rpcError("GetReadiness", err).Error()
			if msg != transient {
				transient = msg
				fmt.Fprintf(stderr, "cutoverctl: %s; still watching\n", msg)
			}
		default:
			return 0, c.rpcError("GetReadiness", err)
		}
		select {
		case <-ctx.Done():
			return 0, usageError{"readiness: cancelled"}
		case <-wctx.Done():
			if last == nil {
				return 0, usageError{fmt.Sprintf("readiness: no answer from orchestrator at %s within --timeout %s", c.addr, c.timeout)}
			}
			return c.watchEnd(stdout, last, fmt.Sprintf("still not ready at the deadline (--timeout %s)", c.timeout))
		case <-time.After(pollEvery):
		}
	}
}

// ended says the job is over: it will never be ready, so a watch stops.
func ended(s orchestratorv1.JobState) bool {
	switch s {
	case orchestratorv1.JobState_JOB_STATE_SUCCEEDED, orchestratorv1.JobState_JOB_STATE_FAILED,
		orchestratorv1.JobState_JOB_STATE_CANCELLED, orchestratorv1.JobState_JOB_STATE_ROLLED_BACK:
		return true
	}
	return false
}

// watchEnd prints the last answer in full after a note on why the watch
// stopped (with --json the change lines said it all) and gives the exit
// code.
func (c *conn) watchEnd(stdout io.Writer, r *orchestratorv1.GetReadinessResponse, note string) (int, error) {
	if !c.asJSON {
		if note == "" && !r.GetReady() {
			note = fmt.Sprintf("the job is %s and will not become ready", stateName(r.GetState()))
		}
		if note != "" {
			fmt.Fprintln(stdout, note)
		}
		readinessView(stdout, r)
	}
	return readyCode(r), nil
}

// readinessLine is a one-line digest of an answer: what the watch compares
// and prints. Lag seconds are whole, so that a clock ticking under the
// limit is not a change.
func readinessLine(r *orchestratorv1.GetReadinessResponse) string {
	var b strings.Builder
	if r.GetReady() {
		b.WriteString("READY")
	} else {
		b.WriteString("NOT READY")
	}
	fmt.Fprintf(&b, " (%s)", stateName(r.GetState()))
	var tables []string
	for _, t := range r.GetTables() {
		tables = append(tables, fmt.Sprintf("%s lag %d rows %.0fs", t.GetTable(), t.GetLagRows(), t.GetLagSeconds()))
	}
	if len(tables) > 0 {
		b.WriteString(": " + strings.Join(tables, ", "))
	}
	if r.GetReconciled() {
		b.WriteString("; reconciled")
	}
	if len(r.GetReasons()) > 0 {
		b.WriteString("; " + strings.Join(r.GetReasons(), "; "))
	}
	return b.String()
}

// readinessView prints the answer in full: a table of the followed tables,
// the reconciliation, the verdict and why.
func readinessView(w io.Writer, r *orchestratorv1.GetReadinessResponse) {
	fmt.Fprintf(w, "readiness of job %s (%s)\n", r.GetJobId(), stateName(r.GetState()))
	if len(r.GetTables()) == 0 {
		fmt.Fprintln(w, "  no followed tables")
	} else {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  TABLE\tPOSITION\tLAG ROWS\tLAG SECONDS\tUPSERTS\tDELETES\tLAST APPLIED\tLAST KEY CHECK")
		for _, t := range r.GetTables() {
			position := t.GetPosition()
			if position == "" {
				position = "-"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%.1f\t%d\t%d\t%s\t%s\n", t.GetTable(), position, t.GetLagRows(), t.GetLagSeconds(),
				t.GetUpserts(), t.GetDeletes(), when(t.GetLastAppliedAt()), when(t.GetLastCheckedAt()))
		}
		tw.Flush()
		for _, t := range r.GetTables() {
			if n := t.GetKeptValues(); n > 0 {
				fmt.Fprintf(w, "  %s relies on the target's copy of %d large values its updates left out of the log (unchanged TOAST without REPLICA IDENTITY FULL)\n", t.GetTable(), n)
			}
		}
	}
	if r.GetReconciled() {
		fmt.Fprintln(w, "  reconciled: yes")
	} else {
		fmt.Fprintln(w, "  reconciled: no")
	}
	if r.GetReady() {
		fmt.Fprintln(w, "READY")
		return
	}
	fmt.Fprintln(w, "NOT READY")
	for _, reason := range r.GetReasons() {
		fmt.Fprintf(w, "  - %s\n", reason)
	}
}

func when(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "never"
	}
	return ts.AsTime().UTC().Format("2006-01-02T15:04:05.000Z")
}

func stopFollowing(ctx context.Context, args []string, stdout io.Writer) (int, error) {
	fs := newFlagSet("stop-following")
	var c conn
	c.flags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return 0, err
	}
	id, err := jobArg("stop-following", pos)
	if err != nil {
		return 0, err
	}
	// The orchestrator waits for the followers to drain (at most 5 minutes).
	if c.timeout == 0 {
		c.timeout = defaultLongTimeout
	}
	cc, err := c.dial(ctx)
	if err != nil {
		return 0, err
	}
	defer cc.Close()
	cctx, cancel := context.WithTimeout(c.outgoing(ctx), c.timeout)
	defer cancel()
	r, err := orchestratorv1.NewJobServiceClient(cc).StopFollowing(cctx, &orchestratorv1.StopFollowingRequest{Id: id}, grpc.WaitForReady(false))
	if err != nil {
		return 0, c.callError("StopFollowing", err)
	}
	j := r.GetJob()
	if c.asJSON {
		printJSON(stdout, r)
	} else {
		n := j.GetCounts()
		fmt.Fprintf(stdout, "stop-following %s: %s\n", id, stateName(j.GetState()))
		fmt.Fprintf(stdout, "  extracted %d, loaded %d, quarantined %d, merged away %d, filtered %d\n",
			n.GetExtracted(), n.GetLoaded(), n.GetQuarantined(), n.GetMergedAway(), n.GetFiltered())
		if j.GetError() != "" {
			fmt.Fprintf(stdout, "  error: %s\n", oneLine(j.GetError()))
		}
	}
	if j.GetState() != orchestratorv1.JobState_JOB_STATE_SUCCEEDED {
		return ExitFailed, nil
	}
	return ExitOK, nil
}

func rollback(ctx context.Context, args []string, stdout io.Writer) (int, error) {
	fs := newFlagSet("rollback")
	var c conn
	c.flags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return 0, err
	}
	id, err := jobArg("rollback", pos)
	if err != nil {
		return 0, err
	}
	// Restoring rows (or whole tables from their backups) reads them all.
	if c.timeout == 0 {
		c.timeout = defaultLongTimeout
	}
	cc, err := c.dial(ctx)
	if err != nil {
		return 0, err
	}
	defer cc.Close()
	cctx, cancel := context.WithTimeout(c.outgoing(ctx), c.timeout)
	defer cancel()
	r, err := orchestratorv1.NewJobServiceClient(cc).RollbackJob(cctx, &orchestratorv1.RollbackJobRequest{Id: id}, grpc.WaitForReady(false))
	if err != nil {
		return 0, c.callError("RollbackJob", err)
	}
	if c.asJSON {
		printJSON(stdout, r)
	} else {
		rollbackView(stdout, id, r)
	}
	if r.GetJob().GetState() != orchestratorv1.JobState_JOB_STATE_ROLLED_BACK {
		return ExitFailed, nil
	}
	return ExitOK, nil
}

func rollbackView(w io.Writer, id string, r *orchestratorv1.RollbackJobResponse) {
	fmt.Fprintf(w, "rollback %s: %s\n", id, stateName(r.GetJob().GetState()))
	if len(r.GetTables()) == 0 {
		fmt.Fprintln(w, "  nothing to undo")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  TABLE\tDELETED\tRESTORED\tFROM BACKUP")
	for _, t := range r.GetTables() {
		backup := "no"
		if t.GetFromBackup() {
			backup = "yes"
		}
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%s\n", t.GetTable(), t.GetDeleted(), t.GetRestored(), backup)
	}
	tw.Flush()
}

// cutoverJob runs a following job's guided switch-over (CutoverJob) and
// prints each step; exit 1 when a step failed (the job keeps following).
func cutoverJob(ctx context.Context, args []string, stdout io.Writer) (int, error) {
	var maxRows *int64
	var maxSeconds *float64
	var paused *bool
	var wait *int
	j, err := openJob(ctx, "cutover", args, func(fs *flag.FlagSet) {
		maxRows = fs.Int64("max-lag-rows", 0, "lag in rows at or under which the switch begins")
		maxSeconds = fs.Float64("max-lag-seconds", 0, "lag in seconds at or under which the switch begins (0: 5)")
		paused = fs.Bool("writes-paused", false, "the application's writes on the source are paused (the drain then ends with nothing left)")
		wait = fs.Int("wait", 0, "seconds the lag and drain steps may wait (0: 60)")
	})
	if err != nil {
		return 0, err
	}
	defer j.Close()
	c := &j.conn
	cctx, cancel := j.call(ctx, defaultLongTimeout)
	defer cancel()
	r, err := j.jobs.CutoverJob(cctx, &orchestratorv1.CutoverJobRequest{Id: j.id, MaxLagRows: *maxRows, MaxLagSeconds: *maxSeconds,
		WritesPaused: *paused, WaitSeconds: int32(*wait)}, grpc.WaitForReady(false))
	if err != nil {
		return 0, c.callError("CutoverJob", err)
	}
	if c.asJSON {
		printJSON(stdout, r)
	} else {
		fmt.Fprintf(stdout, "cutover %s: %s\n", j.id, stateName(r.GetJob().GetState()))
		for _, st := range r.GetSteps() {
			outcome := strings.ToLower(strings.TrimPrefix(st.GetOutcome().String(), "OUTCOME_"))
			line := fmt.Sprintf("  %-15s %-8s %6d ms  %s", st.GetName(), outcome, st.GetTookMs(), oneLine(st.GetDetail()))
			fmt.Fprintln(stdout, strings.TrimRight(line, " "))
		}
	}
	if !r.GetOk() {
		return ExitFailed, nil
	}
	return ExitOK, nil
}
