// Package metrics is the process's OpenTelemetry meter provider exported in
// the Prometheus text format, and the instruments every stage records into.
//
// Labels are bounded by construction: a stage name, a fixed outcome, a rule
// kind from a fixed vocabulary (Rule), a job or partition state. Nothing
// job-specific (ids, table or rule names from a spec) becomes a label, so
// the series stay the same however many jobs run.
package metrics

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	"google.golang.org/protobuf/proto"
)

// Provider is a process's metrics: the meter provider and its /metrics.
type Provider struct {
	provider *sdkmetric.MeterProvider
	// Handler serves the Prometheus text format.
	Handler http.Handler
}

// Setup installs a meter provider whose metrics (and the Go runtime's and
// the process's) are served by the returned Handler, and makes it global:
// otelgrpc's server metrics and this package's instruments record into it.
func Setup(ctx context.Context, service string) (*Provider, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	res, err := resource.New(ctx, resource.WithAttributes(attribute.String("service.name", service)), resource.WithFromEnv())
	if err != nil {
		res = resource.Default()
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res),
		sdkmetric.WithView(sdkmetric.NewView(sdkmetric.Instrument{Name: "cutover.batch.duration"},
			sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{
				Boundaries: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}}})))
	otel.SetMeterProvider(mp)
	resetInstruments()
	return &Provider{provider: mp, Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})}, nil
}

// Shutdown stops the provider.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p == nil {
		return nil
	}
	return p.provider.Shutdown(ctx)
}

// Serve serves Handler at /metrics on addr until ctx ends; empty addr is
// off. A listen error is returned at once (a bad address is a start-up
// error, not a silent gap in the metrics).
func (p *Provider) Serve(ctx context.Context, addr string) error {
	if addr == "" {
		return nil
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", p.Handler)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics-addr %s: %w", addr, err)
	}
	go func() { _ = srv.Serve(lis) }()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	return nil
}

// instruments are created from the global meter provider on first use and
// again after Setup (a test may set a provider after a stage recorded).
type instruments struct {
	rows      metric.Int64Counter
	bytes     metric.Int64Counter
	rejects   metric.Int64Counter
	duration  metric.Float64Histogram
	inFlight  metric.Int64UpDownCounter
	retries   metric.Int64Counter
	resumes   metric.Int64Counter
	followerB metric.Int64Counter
}

var (
	instMu sync.Mutex
	inst   *instruments
)

func resetInstruments() {
	instMu.Lock()
	inst = nil
	instMu.Unlock()
}

func get() *instruments {
	instMu.Lock()
	defer instMu.Unlock()
	if inst != nil {
		return inst
	}
	m := otel.Meter("cutover")
	i := &instruments{}
	// Errors here are only invalid names, fixed below.
	i.rows, _ = m.Int64Counter("cutover.rows", metric.WithUnit("{row}"),
		metric.WithDescription("Rows through a stage by outcome: in, out (passed on or loaded), quarantined, filtered."))
	i.bytes, _ = m.Int64Counter("cutover.batch.size", metric.WithUnit("By"),
		metric.WithDescription("Encoded size of the batches a stage received (in) and passed on (out)."))
	i.rejects, _ = m.Int64Counter("cutover.rejects", metric.WithUnit("{row}"),
		metric.WithDescription("Rows rejected by a stage, by rule kind (a rule named in the spec counts as its kind or as named)."))
	i.duration, _ = m.Float64Histogram("cutover.batch.duration", metric.WithUnit("s"),
		metric.WithDescription("Time a stage spent on one batch."))
	i.inFlight, _ = m.Int64UpDownCounter("cutover.batches.in_flight", metric.WithUnit("{batch}"),
		metric.WithDescription("Batches a stage is working on now."))
	i.retries, _ = m.Int64Counter("cutover.partition.retries", metric.WithUnit("{attempt}"),
		metric.WithDescription("Partition attempts that failed and will be retried."))
	i.resumes, _ = m.Int64Counter("cutover.job.resumes", metric.WithUnit("{job}"),
		metric.WithDescription("Jobs resumed after they failed or were cancelled."))
	i.followerB, _ = m.Int64Counter("cutover.follower.changes", metric.WithUnit("{row}"),
		metric.WithDescription("Changes a follower applied, by op: upsert, delete."))
	inst = i
	return i
}

// In is a batch as a stage received it, taken before the stage works on
// it (a stage may change the batch in place).
type In struct {
	rows, rejects, size int
}

// Received notes b as it arrives.
func Received(b *commonv1.Batch) *In {
	return &In{rows: int(b.GetNumRows()), rejects: len(b.GetRejects()), size: proto.Size(b)}
}

// Batch records one batch a stage finished: rows in and out, the rows it
// rejected by rule, sizes and time. in is nil for the stage that makes
// batches (the extractor); out nil for the one that ends them (the loader,
// which records its outcome with Loaded).
func Batch(ctx context.Context, stage string, in *In, out *commonv1.Batch, d time.Duration) {
	i := get()
	s := attribute.String("stage", stage)
	before := 0
	if in != nil {
		i.rows.Add(ctx, int64(in.rows), metric.WithAttributes(s, outcomeIn))
		i.bytes.Add(ctx, int64(in.size), metric.WithAttributes(s, outcomeIn))
		before = in.rejects
	}
	if out != nil {
		// out: rows no stage rejected; quarantined: rows this one did.
		rejected, mine := map[int32]bool{}, map[int32]bool{}
		for k, r := range out.GetRejects() {
			if k >= before {
				i.rejects.Add(ctx, 1, metric.WithAttributes(s, attribute.String("rule", Rule(r.GetRule()))))
			}
			if r.GetWarning() || rejected[r.GetRow()] {
				continue
			}
			rejected[r.GetRow()] = true
			if k >= before {
				mine[r.GetRow()] = true
			}
		}
		i.rows.Add(ctx, int64(out.GetNumRows())-int64(len(rejected)), metric.WithAttributes(s, outcomeOut))
		if len(mine) > 0 {
			i.rows.Add(ctx, int64(len(mine)), metric.WithAttributes(s, outcomeQuarantined))
		}
		i.bytes.Add(ctx, int64(proto.Size(out)), metric.WithAttributes(s, outcomeOut))
	}
	i.duration.Record(ctx, d.Seconds(), metric.WithAttributes(s))
}

// Loaded records the loader's outcome of one batch.
func Loaded(ctx context.Context, loaded, quarantined, filtered int64, rejects []*commonv1.Reject) {
	i := get()
	s := attribute.String("stage", "loader")
	i.rows.Add(ctx, loaded, metric.WithAttributes(s, outcomeOut))
	if quarantined > 0 {
		i.rows.Add(ctx, quarantined, metric.WithAttributes(s, outcomeQuarantined))
	}
	if filtered > 0 {
		i.rows.Add(ctx, filtered, metric.WithAttributes(s, outcomeFiltered))
	}
	for _, r := range rejects {
		i.rejects.Add(ctx, 1, metric.WithAttributes(s, attribute.String("rule", Rule(r.GetRule()))))
	}
}

// InFlight counts a batch in (+1) or out (-1) of a stage's hands.
func InFlight(ctx context.Context, stage string, delta int64) {
	get().inFlight.Add(ctx, delta, metric.WithAttributes(attribute.String("stage", stage)))
}

// Retry counts a failed partition attempt that will be retried.
func Retry(ctx context.Context) { get().retries.Add(ctx, 1) }

// Resume counts a resumed job.
func Resume(ctx context.Context) { get().resumes.Add(ctx, 1) }

// FollowerChanges counts changes a follower applied.
func FollowerChanges(ctx context.Context, upserts, deletes int64) {
	i := get()
	if upserts > 0 {
		i.followerB.Add(ctx, upserts, metric.WithAttributes(attribute.String("op", "upsert")))
	}
	if deletes > 0 {
		i.followerB.Add(ctx, deletes, metric.WithAttributes(attribute.String("op", "delete")))
	}
}

var (
	outcomeIn          = attribute.String("outcome", "in")
	outcomeOut         = attribute.String("outcome", "out")
	outcomeQuarantined = attribute.String("outcome", "quarantined")
	outcomeFiltered    = attribute.String("outcome", "filtered")
)

// ruleKinds is every rule a stage writes into a Reject by itself; a rule
// a spec names (a validator rule's name) is not among them.
var ruleKinds = map[string]bool{
	"cast": true, "clean": true, "csv_syntax": true, "email_format": true, "encoding": true, "excel_date": true,
	"filter": true, "filter_error": true, "infinity": true, "json_syntax": true, "json_type": true, "not_null": true,
	"one_of": true, "phone_format": true, "ragged_row": true, "range": true, "regex": true, "target_constraint": true,
	"too_large": true, "type_mismatch": true, "wire_format": true, "length": true, "expr": true, "unique": true,
	"references": true, "new_id": true, "ref": true, "zero_date": true,
}

// Rule is a reject rule as a label: its kind, or "named" for a rule the
// spec named (free text, which must not become a label).
func Rule(rule string) string {
	if ruleKinds[rule] {
		return rule
	}
	return "named"
}

// Control is the orchestrator's view of the control database at a scrape.
type Control struct {
	// Jobs and Partitions count by state (pending partitions are the queue).
	Jobs, Partitions map[string]int64
	// Followers is the number of tables following their source; LagRows
	// their summed lag in rows, LagSeconds the largest lag in seconds.
	Followers  int64
	LagRows    int64
	LagSeconds float64
	// CommitDelaySeconds is the largest delay, source commit to target
	// commit, of the followers' last applied batches.
	CommitDelaySeconds float64
	// Queue counts the work queue's jobs (River) by kind and state.
	Queue map[QueueKey]int64
}

// QueueKey is a kind of queued work and a state of it.
type QueueKey struct{ Kind, State string }

// ObserveControl reports read's figures at every scrape (the orchestrator
// reads them from the control database). It returns the unregister func.
func ObserveControl(read func(ctx context.Context) (*Control, error)) (func() error, error) {
	m := otel.Meter("cutover")
	jobs, err1 := m.Int64ObservableGauge("cutover.jobs", metric.WithUnit("{job}"), metric.WithDescription("Jobs by state."))
	parts, err2 := m.Int64ObservableGauge("cutover.partitions", metric.WithUnit("{partition}"),
		metric.WithDescription("Partitions by state; pending is the queue replicas claim from."))
	fols, err3 := m.Int64ObservableGauge("cutover.followers", metric.WithUnit("{table}"), metric.WithDescription("Tables following their source."))
	lagRows, err4 := m.Int64ObservableGauge("cutover.follower.lag.rows", metric.WithUnit("{row}"),
		metric.WithDescription("Rows the followers are behind their sources, summed."))
	lagSecs, err5 := m.Float64ObservableGauge("cutover.follower.lag.seconds", metric.WithUnit("s"),
		metric.WithDescription("The largest follower lag: source commit to target commit."))
	queue, err6 := m.Int64ObservableGauge("cutover.queue.jobs", metric.WithUnit("{job}"),
		metric.WithDescription("Work queue (River) jobs by kind and state: partitions, followers, job ends, retention."))
	delay, err7 := m.Float64ObservableGauge("cutover.follower.commit.delay.seconds", metric.WithUnit("s"),
		metric.WithDescription("The largest end-to-end delay of the followers' last applied batches: source commit to target commit."))
	for _, err := range []error{err1, err2, err3, err4, err5, err6, err7} {
		if err != nil {
			return nil, err
		}
	}
	reg, err := m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		c, err := read(ctx)
		if err != nil {
			return err
		}
		for st, n := range c.Jobs {
			o.ObserveInt64(jobs, n, metric.WithAttributes(attribute.String("state", st)))
		}
		for st, n := range c.Partitions {
			o.ObserveInt64(parts, n, metric.WithAttributes(attribute.String("state", st)))
		}
		o.ObserveInt64(fols, c.Followers)
		o.ObserveInt64(lagRows, c.LagRows)
		o.ObserveFloat64(lagSecs, c.LagSeconds)
		o.ObserveFloat64(delay, c.CommitDelaySeconds)
		for k, n := range c.Queue {
			o.ObserveInt64(queue, n, metric.WithAttributes(attribute.String("kind", k.Kind), attribute.String("state", k.State)))
		}
		return nil
	}, jobs, parts, fols, lagRows, lagSecs, queue, delay)
	if err != nil {
		return nil, err
	}
	return reg.Unregister, nil
}
