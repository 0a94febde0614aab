// Package stages is how the orchestrator reaches the stage services: their
// addresses and clients, the one chain of pulls a partition runs through
// (loader ← validator ← transformer ← extractor) and what a stage's error
// means for a retry.
package stages

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"regexp"
	"strings"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"

	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	transformerv1 "github.com/cutover/cutover/gen/cutover/transformer/v1"
	validatorv1 "github.com/cutover/cutover/gen/cutover/validator/v1"
	"github.com/cutover/cutover/services/kit/config"
	"github.com/cutover/cutover/services/kit/dsn"
	"github.com/cutover/cutover/services/kit/server"
	"github.com/cutover/cutover/services/kit/stage"
	"github.com/cutover/cutover/services/orchestrator/jobspec"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// StageAddrs are the stage services' addresses (env CUTOVER_<STAGE>_ADDR).
type Addrs struct {
	Extractor, Transformer, Validator, Loader string
}

// Flags registers the stage addresses.
func (a *Addrs) Flags(fs *flag.FlagSet) {
	config.StringVar(fs, &a.Extractor, "extractor-addr", config.ExtractorAddr, "extractor gRPC address")
	config.StringVar(fs, &a.Transformer, "transformer-addr", config.TransformerAddr, "transformer gRPC address")
	config.StringVar(fs, &a.Validator, "validator-addr", config.ValidatorAddr, "validator gRPC address")
	config.StringVar(fs, &a.Loader, "loader-addr", config.LoaderAddr, "loader gRPC address")
}

// Dial connects to the four stage services (opts carry the mTLS
// credentials); close releases the connections.
func (a Addrs) Dial(opts ...grpc.DialOption) (c Clients, close func(), err error) {
	var conns []*grpc.ClientConn
	close = func() {
		for _, cc := range conns {
			_ = cc.Close()
		}
	}
	for _, addr := range []string{a.Extractor, a.Transformer, a.Validator, a.Loader} {
		cc, err := server.Dial(addr, append(server.PeerOptions(), opts...)...)
		if err != nil {
			close()
			return Clients{}, nil, err
		}
		conns = append(conns, cc)
	}
	c = Clients{
		Extractor:   extractorv1.NewExtractorServiceClient(conns[0]),
		Transformer: transformerv1.NewTransformerServiceClient(conns[1]),
		Validator:   validatorv1.NewValidatorServiceClient(conns[2]),
		Loader:      loaderv1.NewLoaderServiceClient(conns[3]),
		Addrs:       a,
	}
	return c, close, nil
}

// stageWait bounds how long a call waits for a stage that is down.
const Wait = 30 * time.Second

// Opened opens a stream, giving up (by cancelling the partition) when the
// stage does not answer within stageWait: WaitForReady would wait forever.
func Opened[T any](cancel context.CancelFunc, name string, open func() (T, error)) (T, error) {
	s, err := stage.Open(cancel, name, Wait, open)
	return s, upstreamErr(err)
}

// upstreamErr classifies what the kit's stream helpers return: an
// upstream's failure by its code, a bad batch as a refusal; anything else
// (the caller's own error, or nil) as it is.
func upstreamErr(err error) error {
	var up *stage.UpstreamError
	switch {
	case errors.As(err, &up):
		return Classify(up.Stage, up.Err)
	case errors.Is(err, stage.ErrBadBatch):
		return fmt.Errorf("%w: %s", ErrStageFatal, dsn.Scrub(err.Error()))
	}
	return err
}

// Clients are the stage services the orchestrator drives.
type Clients struct {
	Extractor   extractorv1.ExtractorServiceClient
	Transformer transformerv1.TransformerServiceClient
	Validator   validatorv1.ValidatorServiceClient
	Loader      loaderv1.LoaderServiceClient
	// Addrs are the same services' addresses: each stage is told its
	// upstream's in the partition's request, and batches flow between
	// them without passing through the orchestrator.
	Addrs Addrs
}

// Refusal turns a stage's answer to a spec check into the caller's error:
// a refusal names the spec field; an outage stays an outage. The stage's
// message is scrubbed of credentials (see Classify).
func Refusal(field, stage string, err error) error {
	st, _ := status.FromError(err)
	msg := dsn.Scrub(st.Message())
	switch st.Code() {
	case codes.InvalidArgument:
		if strings.HasPrefix(msg, "tables[") {
			return fmt.Errorf("%w: %s", jobspec.ErrInvalidSpec, msg)
		}
		return jobspec.Invalid(field, "%s", msg)
	case codes.NotFound:
		return jobspec.Invalid(field, "%s", msg)
	case codes.FailedPrecondition:
		if stage == "extractor" {
			// The source is what refuses: say so, not that the target
			// cannot take the data.
			return fmt.Errorf("%w: %s: %s", jobspec.ErrSourceRefused, field, sourceField.ReplaceAllString(msg, ""))
		}
		return fmt.Errorf("%w: %s: %s", jobspec.ErrTargetMismatch, field, msg)
	}
	return fmt.Errorf("%w: %s: %s: %s", ErrStage, stage, st.Code(), msg)
}

// sourceField is the extractor's class and own name for a source field at
// the start of its message ("failed precondition: source.mysql.table: "):
// the caller's class and field (tables[i].source) say them already.
var sourceField = regexp.MustCompile(`^(?:failed precondition: )?(?:source(?:\.[a-z_]+)*: )?`)

// Classify classifies an error returned by a stage service. A stage's
// message may quote a driver's error and so a DSN: what comes back is
// scrubbed of credentials, since it goes on to logs, spans, the control
// schema and callers.
func Classify(name string, err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%w: %s: %s", ErrStage, name, dsn.Scrub(err.Error()))
	}
	msg := dsn.Scrub(st.Message())
	if stage.IsFenced(err) {
		return fmt.Errorf("%w: %s: %s", ErrFenced, name, msg)
	}
	if stage.Refused(st.Code()) {
		return fmt.Errorf("%w: %s: %s", ErrStageFatal, name, msg)
	}
	return fmt.Errorf("%w: %s: %s: %s", ErrStage, name, st.Code(), msg)
}

// Balanced is the accounting equation of a batch or partition as the
// ledger records it (merges happen later, per target table).
func Balanced(c *commonv1.Counts) bool {
	return c.GetExtracted() == c.GetLoaded()+c.GetQuarantined()+c.GetFiltered()
}

// Backoff is the wait before try attempts+1: exponential from 100ms,
// capped at 5s, with jitter (u in [0,1) spreads it over [d/2, d)) so that
// partitions failed by one outage do not all come back at the same moment.
func Backoff(attempts int, u float64) time.Duration {
	d := 5 * time.Second
	if attempts < 6 {
		d = min(time.Duration(1<<max(attempts, 0))*100*time.Millisecond, d)
	}
	return d/2 + time.Duration(u*float64(d/2))
}
