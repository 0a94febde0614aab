// Package ctl is cutoverctl, the command-line client CI and operators
// call: validate a spec (optionally dry-running it) and reconcile a
// finished job against a running orchestrator over gRPC, writing JUnit XML
// and a Markdown report; create, list, watch, cancel, resume and delete
// jobs; ask whether a following job is ready for the switch, stop
// following and roll a job back; read the audit log. It exits 0 (passed,
// ready, done), 1 (checks failed, not ready, refused, job failed) or 2
// (usage or connection error).
package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/cutover/specfile"
	"github.com/cutover/cutover/services/kit/auth"
	"github.com/cutover/cutover/services/kit/config"
	"github.com/cutover/cutover/services/kit/pki"
	"github.com/cutover/cutover/services/kit/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Exit codes.
const (
	ExitOK     = 0
	ExitFailed = 1 // a spec or data check failed, not ready, refused
	ExitUsage  = 2 // bad usage, unreadable spec, unreachable or refusing server
)

// Defaults of the deadlines: a spec check or a readiness poll is quick; a
// dry run, a reconciliation or a rollback reads whole tables, and a watch
// waits for the followers.
const (
	defaultConnectTimeout = 10 * time.Second
	defaultCheckTimeout   = 10 * time.Second
	defaultLongTimeout    = 30 * time.Minute
)

const usage = `usage:
  cutoverctl validate --spec FILE [--dry-run [--sample N] [--rows N]] [--junit FILE] [--report FILE] [--json]
  cutoverctl create --spec FILE [--redrive-of JOB] [--watch [--plain]] [--quiet] [--json]
  cutoverctl status JOB [--json]
  cutoverctl watch JOB [--plain] [--json]          (a bar per table on a terminal, lines otherwise)
  cutoverctl cancel JOB [--json]
  cutoverctl resume JOB [--watch [--plain]] [--json]
  cutoverctl reconcile JOB [--max-differences N] [--junit FILE] [--report FILE] [--json]
  cutoverctl readiness JOB [--max-lag-rows N] [--max-lag-seconds S] [--watch] [--json]
  cutoverctl stop-following JOB [--json]
  cutoverctl cutover JOB [--writes-paused] [--max-lag-rows N] [--max-lag-seconds S] [--wait S] [--json]
                                                   (lag, writes paused, drain, reconcile, sequences, stop following)
  cutoverctl rollback JOB [--json]
  cutoverctl list [--state running,failed] [--limit N | --page-size N [--page-token T]] [--json]
  cutoverctl delete JOB [--json]                   (admin: an ended job and its lineage, backups, staging)
  cutoverctl audit [--job JOB] [--principal P] [--since 24h] [--limit N | --page-size N [--page-token T]] [--json]   (admin)
common flags: --addr HOST:PORT (env CUTOVER_ORCHESTRATOR_ADDR, default 127.0.0.1:7005)
              --ca FILE (env CUTOVER_CA_FILE, default $CUTOVER_TLS_DIR/ca.pem)
              --token-file FILE (env CUTOVER_TOKEN_FILE, default $CUTOVER_TLS_DIR/admin.token)
              or the token itself in env CUTOVER_TOKEN; --timeout D --connect-timeout D
exit codes: 0 passed, ready or done; 1 checks failed, not ready, refused
            (job in the wrong state), or the watched job did not succeed;
            2 usage or connection error`

// usageError is a mistake in the command line or its files.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// refusedError is the orchestrator refusing an operation because of the
// job's state (FailedPrecondition): exit 1, not a usage error, so that a
// script can tell "not now" from "wrong command".
type refusedError struct{ msg string }

func (e refusedError) Error() string { return e.msg }

// Run runs cutoverctl with args (without the program name) and returns the
// exit code. Problems go to stderr as one line each.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return ExitUsage
	}
	var code int
	var err error
	switch args[0] {
	case "validate":
		code, err = validate(ctx, args[1:], stdout)
	case "create":
		code, err = create(ctx, args[1:], stdout, stderr)
	case "status":
		code, err = jobStatus(ctx, args[1:], stdout)
	case "watch":
		code, err = watch(ctx, args[1:], stdout, stderr)
	case "cancel":
		code, err = cancelJob(ctx, args[1:], stdout)
	case "resume":
		code, err = resume(ctx, args[1:], stdout, stderr)
	case "reconcile":
		code, err = reconcile(ctx, args[1:], stdout)
	case "readiness":
		code, err = readiness(ctx, args[1:], stdout, stderr)
	case "stop-following":
		code, err = stopFollowing(ctx, args[1:], stdout)
	case "cutover":
		code, err = cutoverJob(ctx, args[1:], stdout)
	case "rollback":
		code, err = rollback(ctx, args[1:], stdout)
	case "list":
		code, err = list(ctx, args[1:], stdout)
	case "delete":
		code, err = deleteJob(ctx, args[1:], stdout)
	case "audit":
		code, err = audit(ctx, args[1:], stdout)
	case "help", "-h", "-help", "--help":
		fmt.Fprintln(stdout, usage)
		return ExitOK
	default:
		err = usageError{fmt.Sprintf("unknown command %q (want validate, create, list, status, watch, cancel, resume, delete, audit, reconcile, readiness, stop-following, cutover or rollback); run cutoverctl help", args[0])}
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, usage)
			return ExitOK
		}
		fmt.Fprintf(stderr, "cutoverctl: %s\n", oneLine(err.Error()))
		var refused refusedError
		if errors.As(err, &refused) {
			return ExitFailed
		}
		return ExitUsage
	}
	return code
}

// conn holds what every command shares: where the orchestrator is, the
// token and the deadlines.
type conn struct {
	addr, token, tokenFile  string
	caFile                  string
	timeout, connectTimeout time.Duration
	asJSON                  bool
	junit, report           string
}

func (c *conn) flags(fs *flag.FlagSet) {
	addr := config.OrchestratorAddr
	if v := os.Getenv("CUTOVER_ORCHESTRATOR_ADDR"); v != "" {
		addr = v
	}
	fs.StringVar(&c.addr, "addr", addr, "orchestrator gRPC address (env CUTOVER_ORCHESTRATOR_ADDR)")
	dir := config.DefaultTLSDir()
	fs.StringVar(&c.token, "token", os.Getenv("CUTOVER_TOKEN"), "bearer token (env CUTOVER_TOKEN; prefer the env or --token-file: argv is visible to other users)")
	fs.StringVar(&c.tokenFile, "token-file", envOr("CUTOVER_TOKEN_FILE", filepath.Join(dir, auth.AdminTokenFileName)), "file holding the bearer token, used when no token is given (env CUTOVER_TOKEN_FILE)")
	fs.StringVar(&c.caFile, "ca", envOr("CUTOVER_CA_FILE", filepath.Join(dir, "ca.pem")), "CA bundle the orchestrator's certificate is verified against (env CUTOVER_CA_FILE; default from CUTOVER_TLS_DIR)")
	fs.DurationVar(&c.timeout, "timeout", 0,
		"deadline of the call (default 10s for validate, readiness, status, list, cancel, resume and audit; 30m for --dry-run, reconcile, create, stop-following, cutover, rollback, delete and readiness --watch; none for watch and --watch)")
	fs.DurationVar(&c.connectTimeout, "connect-timeout", defaultConnectTimeout, "deadline for reaching the orchestrator")
	fs.BoolVar(&c.asJSON, "json", false, "print the response as JSON instead of a summary")
}

// reportFlags are the flags of the commands that write JUnit and Markdown.
func (c *conn) reportFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.junit, "junit", "", "write JUnit XML to this file")
	fs.StringVar(&c.report, "report", "", "write a Markdown report to this file")
}

// parse parses flags that may come before and after positional arguments
// (`reconcile JOB --junit f` as well as `reconcile --junit f JOB`).
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// newFlagSet's parse errors come back as errors, printed by Run as one
// line; the flag package itself prints nothing.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("cutoverctl "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// dial connects and makes sure the orchestrator answers and serves
// ValidationService before the real call, so an unreachable address fails
// within the connect timeout whatever the call's deadline is.
func (c *conn) dial(ctx context.Context) (*grpc.ClientConn, error) {
	if strings.TrimSpace(c.addr) == "" {
		return nil, usageError{"--addr must not be empty"}
	}
	roots, err := pki.RootsOnly(c.caFile)
	if err != nil {
		return nil, usageError{fmt.Sprintf("%v (set --ca or CUTOVER_CA_FILE, or CUTOVER_TLS_DIR to the directory `cutover certs` made)", err)}
	}
	if c.token == "" {
		if tok, err := auth.ReadTokenFile(c.tokenFile); err == nil {
			c.token = tok
		}
	}
	cc, err := server.Dial(c.addr, grpc.WithTransportCredentials(credentials.NewTLS(roots.Client())))
	if err != nil {
		return nil, usageError{fmt.Sprintf("cannot reach orchestrator at %s: %v", c.addr, err)}
	}
	hctx, cancel := context.WithTimeout(c.outgoing(ctx), c.connectTimeout)
	defer cancel()
	svc := orchestratorv1.ValidationService_ServiceDesc.ServiceName
	res, err := healthpb.NewHealthClient(cc).Check(hctx, &healthpb.HealthCheckRequest{Service: svc}, grpc.WaitForReady(false))
	switch {
	case status.Code(err) == codes.Unimplemented && !notGRPC(err):
		// No health service (e.g. behind a proxy): let the call find out.
	case status.Code(err) == codes.NotFound:
		cc.Close()
		return nil, usageError{fmt.Sprintf("the server at %s does not serve %s (is it the orchestrator?)", c.addr, svc)}
	case err != nil:
		cc.Close()
		return nil, c.rpcError("health check", err)
	case res.GetStatus() != healthpb.HealthCheckResponse_SERVING:
		cc.Close()
		return nil, usageError{fmt.Sprintf("orchestrator at %s is %s", c.addr, res.GetStatus())}
	}
	return cc, nil
}

// outgoing adds the token to ctx's metadata (over TLS only).
func (c *conn) outgoing(ctx context.Context) context.Context {
	if c.token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.token)
}

// rpcError turns a failed call into a one-line usage/connection error.
func (c *conn) rpcError(call string, err error) error {
	st := status.Convert(err)
	msg := oneLine(st.Message())
	switch {
	case notGRPC(err):
		return usageError{fmt.Sprintf("the server at %s does not speak gRPC (is it the REST gateway?)", c.addr)}
	case st.Code() == codes.Unavailable && noAddress(msg):
		return usageError{fmt.Sprintf("cannot reach orchestrator at %s: the name resolves to no address", c.addr)}
	}
	switch st.Code() {
	case codes.Unavailable:
		return usageError{fmt.Sprintf("cannot reach orchestrator at %s: %s", c.addr, rootCause(msg))}
	case codes.DeadlineExceeded:
		return usageError{fmt.Sprintf("%s: no answer from orchestrator at %s in time (raise --timeout or --connect-timeout)", call, c.addr)}
	case codes.Canceled:
		return usageError{fmt.Sprintf("%s: cancelled", call)}
	case codes.Unimplemented:
		return usageError{fmt.Sprintf("the orchestrator at %s does not implement %s", c.addr, call)}
	case codes.Unauthenticated, codes.PermissionDenied:
		return usageError{fmt.Sprintf("%s: orchestrator at %s refused the token: %s", call, c.addr, msg)}
	}
	return usageError{fmt.Sprintf("%s: %s", call, msg)}
}

// notGRPC says the peer answered HTTP but not gRPC (a REST server, a web
// proxy), which gRPC reports as Unimplemented (HTTP/2) or Unavailable
// (HTTP/1.1): both would mislead.
func notGRPC(err error) bool {
	msg := status.Convert(err).Message()
	switch status.Code(err) {
	case codes.Unimplemented:
		return strings.Contains(msg, "unexpected HTTP status code")
	case codes.Unavailable:
		// Over TLS an HTTPS server without HTTP/2 fails ALPN instead.
		return strings.Contains(msg, "looked like an HTTP/1.1 header") || strings.Contains(msg, "missing selected ALPN property")
	}
	return false
}

// noAddress is how round-robin says the name resolved to nothing.
func noAddress(msg string) bool {
	return strings.Contains(msg, "no children to pick from") || strings.Contains(msg, "produced zero addresses")
}

// rootCause keeps the last part of a gRPC transport message, e.g.
// "connection refused" from `connection error: desc = "transport: Error
// while dialing: dial tcp 127.0.0.1:1: connect: connection refused"`.
func rootCause(msg string) string {
	msg = strings.Trim(msg, `" `)
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return strings.Trim(msg, `" `)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func validate(ctx context.Context, args []string, stdout io.Writer) (int, error) {
	fs := newFlagSet("validate")
	var c conn
	c.flags(fs)
	c.reportFlags(fs)
	specPath := fs.String("spec", "", "job spec file (JSON or YAML)")
	dry := fs.Bool("dry-run", false, "also run the rows through extractor, transformer and validator into nothing")
	sample := fs.Int64("sample", 0, "with --dry-run: source rows read per table (0 = all)")
	rows := fs.Int("rows", 5, "with --dry-run: transformed rows shown per table (at most 100)")
	pos, err := parse(fs, args)
	if err != nil {
		return 0, err
	}
	switch {
	case len(pos) > 0:
		return 0, usageError{fmt.Sprintf("validate takes no arguments, got %q", pos)}
	case *specPath == "":
		return 0, usageError{"validate: --spec is required"}
	case *sample < 0:
		return 0, usageError{fmt.Sprintf("--sample must not be negative, got %d", *sample)}
	case *rows < 0 || *rows > 100:
		return 0, usageError{fmt.Sprintf("--rows must be between 0 and 100, got %d", *rows)}
	}
	if !*dry {
		var bad []string
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "sample" || f.Name == "rows" {
				bad = append(bad, "--"+f.Name)
			}
		})
		if len(bad) > 0 {
			verb := " needs"
			if len(bad) > 1 {
				verb = " need"
			}
			return 0, usageError{strings.Join(bad, " and ") + verb + " --dry-run"}
		}
	}
	spec, err := specfile.Load(*specPath)
	if err != nil {
		return 0, usageError{err.Error()}
	}
	if c.timeout == 0 {
		c.timeout = defaultCheckTimeout
		if *dry {
			c.timeout = defaultLongTimeout
		}
	}
	cc, err := c.dial(ctx)
	if err != nil {
		return 0, err
	}
	defer cc.Close()
	client := orchestratorv1.NewValidationServiceClient(cc)
	cctx, cancel := context.WithTimeout(c.outgoing(ctx), c.timeout)
	defer cancel()
	started := time.Now()
	var res *orchestratorv1.DryRunResponse
	var raw proto.Message
	if *dry {
		r, err := client.DryRun(cctx, &orchestratorv1.DryRunRequest{Spec: spec, Sample: *sample, Rows: int32(*rows)}, grpc.WaitForReady(false))
		if err != nil {
			return 0, c.rpcError("DryRun", err)
		}
		res, raw = r, r
	} else {
		r, err := client.ValidateSpec(cctx, &orchestratorv1.ValidateSpecRequest{Spec: spec}, grpc.WaitForReady(false))
		if err != nil {
			return 0, c.rpcError("ValidateSpec", err)
		}
		res, raw = fromValidate(r), r
	}
	out := &validation{spec: spec, res: res, dryRun: *dry, sample: *sample, elapsed: time.Since(started)}
	if err := c.write(out.junit, out.markdown); err != nil {
		return 0, err
	}
	if c.asJSON {
		printJSON(stdout, raw)
	} else {
		out.summary(stdout)
	}
	if !res.GetOk() {
		return ExitFailed, nil
	}
	return ExitOK, nil
}

func reconcile(ctx context.Context, args []string, stdout io.Writer) (int, error) {
	fs := newFlagSet("reconcile")
	var c conn
	c.flags(fs)
	c.reportFlags(fs)
	maxDiff := fs.Int("max-differences", 0, "differing keys listed per table (0 = the server's default, 20; at most 1000)")
	levelName := fs.String("level", "independent", "independent (source and target databases each hash their own rows), replay (the job's partitions through the stages again) or both")
	failOnWarning := fs.Bool("fail-on-warning", false, "exit 1 when something was not compared (a skipped column, a file source), as when a check fails")
	pos, err := parse(fs, args)
	if err != nil {
		return 0, err
	}
	switch {
	case len(pos) != 1 || strings.TrimSpace(pos[0]) == "":
		return 0, usageError{"reconcile: want exactly one job id: cutoverctl reconcile JOB"}
	case *maxDiff < 0 || *maxDiff > 1000:
		return 0, usageError{fmt.Sprintf("--max-differences must be between 0 and 1000, got %d", *maxDiff)}
	}
	level, ok := reconcileLevels[*levelName]
	if !ok {
		return 0, usageError{fmt.Sprintf("--level must be independent, replay or both, got %q", *levelName)}
	}
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
	started := time.Now()
	r, err := orchestratorv1.NewValidationServiceClient(cc).Reconcile(cctx,
		&orchestratorv1.ReconcileRequest{Id: pos[0], MaxDifferences: int32(*maxDiff), Level: level}, grpc.WaitForReady(false))
	if err != nil {
		return 0, c.rpcError("Reconcile", err)
	}
	if r.GetReconciliation() == nil {
		return 0, usageError{fmt.Sprintf("Reconcile of %s: the orchestrator at %s answered without a reconciliation", pos[0], c.addr)}
	}
	out := &reconciliation{rec: r.GetReconciliation(), elapsed: time.Since(started)}
	if err := c.write(out.junit, out.markdown); err != nil {
		return 0, err
	}
	if c.asJSON {
		printJSON(stdout, r)
	} else {
		out.summary(stdout)
	}
	if !r.GetReconciliation().GetOk() || *failOnWarning && r.GetReconciliation().GetWarning() {
		return ExitFailed, nil
	}
	return ExitOK, nil
}

var reconcileLevels = map[string]commonv1.ReconcileLevel{
	"independent": commonv1.ReconcileLevel_RECONCILE_LEVEL_INDEPENDENT,
	"replay":      commonv1.ReconcileLevel_RECONCILE_LEVEL_REPLAY,
	"both":        commonv1.ReconcileLevel_RECONCILE_LEVEL_BOTH,
}

// write writes the requested JUnit and Markdown files.
func (c *conn) write(junit func(io.Writer) error, markdown func(io.Writer)) error {
	if c.junit != "" {
		if err := writeFile(c.junit, junit); err != nil {
			return usageError{fmt.Sprintf("write --junit %s: %v", c.junit, err)}
		}
	}
	if c.report != "" {
		err := writeFile(c.report, func(w io.Writer) error { markdown(w); return nil })
		if err != nil {
			return usageError{fmt.Sprintf("write --report %s: %v", c.report, err)}
		}
	}
	return nil
}

func writeFile(path string, fill func(io.Writer) error) error {
	var b strings.Builder
	if err := fill(&b); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func printJSON(w io.Writer, m proto.Message) {
	b, _ := protojson.MarshalOptions{Multiline: true, UseProtoNames: true, EmitUnpopulated: false}.Marshal(m)
	fmt.Fprintln(w, string(b))
}

// fromValidate puts a ValidateSpec answer in the shape of a dry run's, so
// one renderer serves both; counts stay empty.
func fromValidate(r *orchestratorv1.ValidateSpecResponse) *orchestratorv1.DryRunResponse {
	out := &orchestratorv1.DryRunResponse{Ok: r.GetOk(), Problems: r.GetProblems(), SpecHash: r.GetSpecHash()}
	for _, t := range r.GetTables() {
		out.Tables = append(out.Tables, &orchestratorv1.DryRunTable{Table: t.GetTable(), Ok: t.GetOk(), Problems: t.GetProblems()})
	}
	return out
}

// validation is the outcome of `cutoverctl validate`, with the spec it
// checked (for the rule names and thresholds the answer does not repeat).
type validation struct {
	spec    *commonv1.JobSpec
	res     *orchestratorv1.DryRunResponse
	dryRun  bool
	sample  int64
	elapsed time.Duration
}

// reconciliation is the outcome of `cutoverctl reconcile`.
type reconciliation struct {
	rec     *orchestratorv1.Reconciliation
	elapsed time.Duration
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
