package stage

import (
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Fencing of a partition's loads (LoadConfig.epoch): the loader refuses a
// stream or batch whose lease epoch is older than the partition's current
// one with FailedPrecondition carrying an ErrorInfo of this reason and
// domain. The orchestrator reads it as "this replica lost the partition to
// another", not as a failure of the partition.
const (
	FencedReason = "FENCED"
	FencedDomain = "loader.cutover"
)

// FencedStatus is the status of a fenced refusal; md names the job,
// partition and epochs (job_id, partition_id, epoch, current_epoch).
func FencedStatus(msg string, md map[string]string) error {
	st := status.New(codes.FailedPrecondition, msg)
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: FencedReason, Domain: FencedDomain, Metadata: md}); err == nil {
		st = d
	}
	return st.Err()
}

// IsFenced reports whether err is a fenced refusal: a status error with
// that ErrorInfo, anywhere in err's chain (an UpstreamError's own status
// keeps the code but not the details).
func IsFenced(err error) bool {
	for ; err != nil; err = errors.Unwrap(err) {
		se, ok := err.(interface{ GRPCStatus() *status.Status })
		if !ok {
			continue
		}
		st := se.GRPCStatus()
		if st.Code() != codes.FailedPrecondition {
			continue
		}
		for _, d := range st.Details() {
			if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetReason() == FencedReason && info.GetDomain() == FencedDomain {
				return true
			}
		}
	}
	return false
}
