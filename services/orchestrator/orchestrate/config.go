package orchestrate

import (
	"flag"
	"time"

	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	transformerv1 "github.com/cutover/cutover/gen/cutover/transformer/v1"
	validatorv1 "github.com/cutover/cutover/gen/cutover/validator/v1"
	"github.com/cutover/cutover/services/kit/config"
	"github.com/cutover/cutover/services/kit/server"
	"google.golang.org/grpc"
)

// Flags registers the replica's settings (env CUTOVER_*).
func (c *Config) Flags(fs *flag.FlagSet) {
	config.StringVar(fs, &c.ControlURL, "control-url", "", "PostgreSQL URL of the control schema")
	config.StringVar(fs, &c.DefaultTarget, "target-url", "", "default target PostgreSQL URL")
	config.IntVar(fs, &c.Workers, "workers", 4, "partitions run at once by this replica")
	config.DurationVar(fs, &c.Lease, "lease", 30*time.Second, "partition lease")
	config.IntVar(fs, &c.MaxAttempts, "max-attempts", 5, "tries per partition before the job fails")
	config.DurationVar(fs, &c.BatchTimeout, "batch-timeout", 2*time.Minute, "longest wait for one batch before the attempt fails and is retried")
}

// StageAddrs are the stage services' addresses (env CUTOVER_<STAGE>_ADDR).
type StageAddrs struct {
	Extractor, Transformer, Validator, Loader string
}

// Flags registers the stage addresses.
func (a *StageAddrs) Flags(fs *flag.FlagSet) {
	config.StringVar(fs, &a.Extractor, "extractor-addr", config.ExtractorAddr, "extractor gRPC address")
	config.StringVar(fs, &a.Transformer, "transformer-addr", config.TransformerAddr, "transformer gRPC address")
	config.StringVar(fs, &a.Validator, "validator-addr", config.ValidatorAddr, "validator gRPC address")
	config.StringVar(fs, &a.Loader, "loader-addr", config.LoaderAddr, "loader gRPC address")
}

// Dial connects to the four stage services; close releases the connections.
func (a StageAddrs) Dial() (c Clients, close func(), err error) {
	var conns []*grpc.ClientConn
	close = func() {
		for _, cc := range conns {
			_ = cc.Close()
		}
	}
	for _, addr := range []string{a.Extractor, a.Transformer, a.Validator, a.Loader} {
		cc, err := server.Dial(addr, server.PeerOptions()...)
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

type closer struct {
	*Service
	extra func()
}

func (c closer) Close() error {
	err := c.Service.Close()
	c.extra()
	return err
}

// WithCloser returns the service with extra cleanup run after Close.
func WithCloser(s *Service, extra func()) server.Service { return closer{s, extra} }
