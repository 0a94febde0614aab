package orchestrate

import (
	"errors"

	"github.com/cutover/cutover/services/orchestrator/jobspec"
	"github.com/cutover/cutover/services/orchestrator/jobstore"
	"github.com/cutover/cutover/services/orchestrator/stages"
)

// Domain errors of the orchestrator; status.go maps them to gRPC codes.
var (
	// ErrInvalidSpec: the job spec is wrong; the message names the field.
	ErrInvalidSpec = jobspec.ErrInvalidSpec
	// ErrTargetMismatch: the target cannot take the data as specified.
	ErrTargetMismatch = jobspec.ErrTargetMismatch
	// ErrSourceRefused: the source cannot be read as specified.
	ErrSourceRefused = jobspec.ErrSourceRefused
	// ErrJobNotFound: no job with that id.
	ErrJobNotFound = jobstore.ErrJobNotFound
	// ErrInvalidArgument: a malformed request other than a spec (a page
	// token, a filter); the message names the field.
	ErrInvalidArgument = jobstore.ErrInvalidArgument
	// ErrJobState: the job is in a state that does not allow the call.
	ErrJobState = errors.New("job state does not allow this")
	// ErrUnbalanced: extracted != loaded + quarantined; the job fails.
	ErrUnbalanced = stages.ErrUnbalanced
	// ErrStage: a stage service failed in a way a retry may fix.
	ErrStage = stages.ErrStage
	// ErrStageFatal: a stage refused the work; retrying cannot help.
	ErrStageFatal = stages.ErrStageFatal
	// ErrLeaseLost: another claim took the partition over while this one
	// ran (its lease ran out: the replica was paused or cut off); the
	// control schema refused its writes. The partition is the new holder's:
	// this one writes nothing more about it (leaseLost).
	ErrLeaseLost = jobstore.ErrLeaseLost
	// ErrFenced: the loader refused this claim's batches for the same
	// reason (a higher epoch of the partition registered there).
	ErrFenced = stages.ErrFenced
	// ErrCancelled: the job was cancelled while a partition ran.
	ErrCancelled = errors.New("job cancelled")
	// ErrSealed: the job's stored secrets do not open with this replica's
	// --secret-key-file; the job stays until a replica with its key reads it.
	ErrSealed = jobstore.ErrSealed
)

// leaseLost says whether err means the partition was taken over by
// another claim, as the control schema or the loader's fence found.
func leaseLost(err error) bool {
	return errors.Is(err, ErrLeaseLost) || errors.Is(err, ErrFenced)
}
