package stage

import "google.golang.org/grpc/codes"

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
	return ReasonStatus(codes.FailedPrecondition, msg, FencedReason, FencedDomain, md)
}

// IsFenced reports whether err is a fenced refusal.
func IsFenced(err error) bool {
	return HasReason(err, codes.FailedPrecondition, FencedReason, FencedDomain)
}
