package stages

import "errors"

// Errors of a stage call, mapped to retries by the orchestrator.
var (
	// ErrStage: a stage service failed in a way a retry may fix.
	ErrStage = errors.New("stage failed")
	// ErrStageFatal: a stage refused the work; retrying cannot help.
	ErrStageFatal = errors.New("stage refused the work")
	// ErrUnbalanced: extracted != loaded + quarantined + filtered, or the
	// ledger disagrees with the acknowledgements; the job fails.
	ErrUnbalanced = errors.New("accounting does not balance")
	// ErrFenced: the loader refused the partition's work because another
	// claim of the partition (a higher epoch) took it over: the caller lost
	// its lease and gives the partition up, neither retrying nor failing it.
	ErrFenced = errors.New("fenced: the partition was taken over")
)
