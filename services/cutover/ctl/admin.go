package ctl

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// list prints jobs newest first, following page tokens up to --limit, or
// the one page --page-size and --page-token ask for.
func list(ctx context.Context, args []string, stdout io.Writer) (int, error) {
	fs := newFlagSet("list")
	var c conn
	c.flags(fs)
	state := fs.String("state", "", "only jobs in these states, comma separated (running, failed, succeeded, …)")
	limit := fs.Int("limit", 50, "at most this many jobs, following page tokens (0: all)")
	pg := pageFlags(fs, "jobs", maxJobPage)
	pos, err := parse(fs, args)
	if err != nil {
		return 0, err
	}
	if len(pos) > 0 {
		return 0, usageError{"list takes no arguments"}
	}
	onePage, err := pg.onePage(fs)
	if err != nil {
		return 0, err
	}
	var states []orchestratorv1.JobState
	for _, s := range strings.Split(*state, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		v, ok := orchestratorv1.JobState_value["JOB_STATE_"+strings.ToUpper(s)]
		if !ok {
			return 0, usageError{fmt.Sprintf("--state: unknown state %q (want pending, running, following, succeeded, failed, cancelled, rolled_back or deleting)", s)}
		}
		states = append(states, orchestratorv1.JobState(v))
	}
	cc, err := c.dial(ctx)
	if err != nil {
		return 0, err
	}
	defer cc.Close()
	client := orchestratorv1.NewJobServiceClient(cc)
	var jobs []*orchestratorv1.Job
	req := &orchestratorv1.ListJobsRequest{PageSize: 200, States: states}
	if onePage {
		req.PageSize, req.PageToken = int32(*pg.size), *pg.token
	}
	for {
		cctx, cancel := context.WithTimeout(c.outgoing(ctx), c.deadline(defaultCheckTimeout))
		r, err := client.ListJobs(cctx, req, grpc.WaitForReady(false))
		cancel()
		if err != nil {
			return 0, c.callError("ListJobs", err)
		}
		jobs = append(jobs, r.GetJobs()...)
		req.PageToken = r.GetNextPageToken()
		if onePage || req.PageToken == "" || (*limit > 0 && len(jobs) >= *limit) {
			break
		}
	}
	next := ""
	if onePage {
		next = req.PageToken
	} else if *limit > 0 && len(jobs) > *limit {
		jobs = jobs[:*limit]
	}
	if c.asJSON {
		printJSON(stdout, &orchestratorv1.ListJobsResponse{Jobs: jobs, NextPageToken: next})
		return ExitOK, nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tNAME\tSTATE\tPARTITIONS\tLOADED\tQUARANTINED\tCREATED")
	for _, j := range jobs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%d\t%d\t%s\n", j.GetId(), clip(j.GetName(), 40), stateName(j.GetState()),
			j.GetPartitionsDone(), j.GetPartitionsTotal(), j.GetCounts().GetLoaded(), j.GetCounts().GetQuarantined(), stamp(j.GetCreatedAt()))
	}
	tw.Flush()
	nextPage(stdout, next)
	return ExitOK, nil
}

// deleteJob deletes an ended job with its lineage, quarantine, staging and
// backups; a job that has not ended is refused (exit 1).
func deleteJob(ctx context.Context, args []string, stdout io.Writer) (int, error) {
	j, err := openJob(ctx, "delete", args, nil)
	if err != nil {
		return 0, err
	}
	defer j.Close()
	c, id := &j.conn, j.id
	cctx, cancel := j.call(ctx, defaultLongTimeout)
	defer cancel()
	r, err := j.jobs.DeleteJob(cctx, &orchestratorv1.DeleteJobRequest{Id: id}, grpc.WaitForReady(false))
	if err != nil {
		return 0, c.callError("DeleteJob", err)
	}
	if c.asJSON {
		printJSON(stdout, r)
		return ExitOK, nil
	}
	fmt.Fprintf(stdout, "deleted %s\n", id)
	for _, n := range r.GetPurged().GetCounts() {
		fmt.Fprintf(stdout, "  %s: %d rows\n", n.GetTable(), n.GetRows())
	}
	for _, t := range r.GetPurged().GetDroppedTables() {
		fmt.Fprintf(stdout, "  dropped %s\n", t)
	}
	return ExitOK, nil
}

// audit prints the audit log, newest first (admins only).
func audit(ctx context.Context, args []string, stdout io.Writer) (int, error) {
	fs := newFlagSet("audit")
	var c conn
	c.flags(fs)
	job := fs.String("job", "", "only calls about this job")
	who := fs.String("principal", "", "only calls by this user or service (service:<name>)")
	since := fs.Duration("since", 0, "only calls in this past duration (e.g. 24h)")
	limit := fs.Int("limit", 100, "at most this many entries, following page tokens (0: all)")
	pg := pageFlags(fs, "entries", maxAuditPage)
	pos, err := parse(fs, args)
	if err != nil {
		return 0, err
	}
	if len(pos) > 0 {
		return 0, usageError{"audit takes no arguments (use --job)"}
	}
	onePage, err := pg.onePage(fs)
	if err != nil {
		return 0, err
	}
	cc, err := c.dial(ctx)
	if err != nil {
		return 0, err
	}
	defer cc.Close()
	req := &orchestratorv1.ListAuditEventsRequest{JobId: *job, Principal: *who, PageSize: 500}
	if onePage {
		req.PageSize, req.PageToken = int32(*pg.size), *pg.token
	}
	if *since > 0 {
		req.Since = timestamppb.New(time.Now().Add(-*since))
	}
	client := orchestratorv1.NewJobServiceClient(cc)
	var events []*orchestratorv1.AuditEvent
	for {
		cctx, cancel := context.WithTimeout(c.outgoing(ctx), c.deadline(defaultCheckTimeout))
		r, err := client.ListAuditEvents(cctx, req, grpc.WaitForReady(false))
		cancel()
		if err != nil {
			return 0, c.callError("ListAuditEvents", err)
		}
		events = append(events, r.GetEvents()...)
		req.PageToken = r.GetNextPageToken()
		if onePage || req.PageToken == "" || (*limit > 0 && len(events) >= *limit) {
			break
		}
	}
	next := ""
	if onePage {
		next = req.PageToken
	} else if *limit > 0 && len(events) > *limit {
		events = events[:*limit]
	}
	if c.asJSON {
		printJSON(stdout, &orchestratorv1.ListAuditEventsResponse{Events: events, NextPageToken: next})
		return ExitOK, nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tPRINCIPAL\tROLE\tMETHOD\tJOB\tOUTCOME\tPEER")
	for _, e := range events {
		m := e.GetMethod()
		if i := strings.LastIndexByte(m, '/'); i >= 0 {
			m = m[i+1:]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", stamp(e.GetAt()), e.GetPrincipal(), e.GetRole(), m, e.GetJobId(), e.GetOutcome(), e.GetPeer())
	}
	tw.Flush()
	nextPage(stdout, next)
	return ExitOK, nil
}

// The orchestrator's largest pages (ListJobsRequest, ListAuditEventsRequest).
const (
	maxJobPage   = 500
	maxAuditPage = 1000
)

// pager is --page-size and --page-token: one page of the listing and the
// token of the next, for a script (or a person) paging by hand, instead of
// every page up to --limit.
type pager struct {
	size  *int
	token *string
	max   int
}

func pageFlags(fs *flag.FlagSet, what string, max int) *pager {
	return &pager{
		size:  fs.Int("page-size", 0, fmt.Sprintf("print one page of this many %s (at most %d; 0: the server's default) and the next page's token", what, max)),
		token: fs.String("page-token", "", "print the page this token (from a previous page) names"),
		max:   max,
	}
}

// onePage says whether a page was asked for, and refuses a page together
// with --limit, which means "follow the pages".
func (p *pager) onePage(fs *flag.FlagSet) (bool, error) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case *p.size < 0 || *p.size > p.max:
		return false, usageError{fmt.Sprintf("--page-size must be between 0 and %d, got %d", p.max, *p.size)}
	case set["limit"] && (set["page-size"] || set["page-token"]):
		return false, usageError{"--limit follows the pages; --page-size and --page-token print one: give one or the other"}
	}
	return set["page-size"] || set["page-token"], nil
}

// nextPage tells how to get the next page, after the table.
func nextPage(w io.Writer, token string) {
	if token != "" {
		fmt.Fprintf(w, "next page: --page-token %s\n", token)
	}
}

// deadline is --timeout when given, else def.
func (c *conn) deadline(def time.Duration) time.Duration {
	if c.timeout > 0 {
		return c.timeout
	}
	return def
}

func stamp(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	return ts.AsTime().UTC().Format(time.RFC3339)
}
