package orchestrate

import (
	"context"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/orchestrator/jobstore"
)

// store is what the orchestrator keeps in its control schema. The logic
// depends on this, not on SQL: jobstore.Store implements it on PostgreSQL.
type store interface {
	// Jobs and their lifecycle.
	InsertJob(ctx context.Context, j *jobstore.Job, parts []jobstore.Partition) error
	GetJob(ctx context.Context, id string) (*jobstore.Job, error)
	ListJobs(ctx context.Context, q jobstore.ListQuery) ([]*jobstore.Job, string, error)
	CancelJob(ctx context.Context, id string) (bool, error)
	ResumeJob(ctx context.Context, id string) (bool, error)
	FailJob(ctx context.Context, id, errText string) (bool, error)
	SetReport(ctx context.Context, id string, report []byte) error
	RollBack(ctx context.Context, id string, r *loaderv1.RollbackResponse) (bool, error)
	RollbackOutcome(ctx context.Context, id string) (*loaderv1.RollbackResponse, error)

	// Deleting ended jobs, by request or by retention.
	BeginDelete(ctx context.Context, id string) (string, bool, error)
	DeleteJobRows(ctx context.Context, id string) (bool, error)
	ExpiredJobs(ctx context.Context, age time.Duration, limit int) ([]string, error)
	HeldSnapshots(ctx context.Context, hold time.Duration, limit int) ([]*jobstore.Job, error)
	ReleaseSnapshots(ctx context.Context, id string) (bool, error)

	// The audit log.
	AppendAudit(ctx context.Context, r jobstore.AuditRecord) error
	ListAudit(ctx context.Context, f jobstore.AuditFilter) ([]jobstore.AuditRecord, string, error)
	ExpireAudit(ctx context.Context, age time.Duration) (int64, error)

	// Partitions under a lease: a write by an owner whose lease was taken
	// over does nothing.
	ClaimPartition(ctx context.Context, jobID, part, owner string, lease time.Duration) (*jobstore.Partition, time.Duration, error)
	Progress(ctx context.Context, p *jobstore.Partition, owner string, lease time.Duration, c *commonv1.Counts) (bool, error)
	FinishPartition(ctx context.Context, p *jobstore.Partition, owner string, c *commonv1.Counts) error
	RetryPartition(ctx context.Context, p *jobstore.Partition, owner string, backoff time.Duration, cause error) error
	FailPartition(ctx context.Context, p *jobstore.Partition, owner string, cause error) error
	ReleasePartition(ctx context.Context, p *jobstore.Partition, owner string) error
	LiveClaims(ctx context.Context, jobID string) (int, error)
	Partitions(ctx context.Context, jobID string) ([]jobstore.PartitionCounts, error)
	PartRanges(ctx context.Context, jobID string) (map[int][]jobstore.PartRange, error)

	// The end of a job, by one replica at a time.
	FinishableJobs(ctx context.Context) ([]string, error)
	ClaimFinish(ctx context.Context, id string, lease time.Duration) (bool, error)
	RenewFinish(ctx context.Context, id string, lease time.Duration) error
	ReleaseFinish(ctx context.Context, id string)
	EndJob(ctx context.Context, id, state, errText string, report []byte) (bool, error)
	ConstraintsAdded(ctx context.Context, id string, stmts []string) error
	SetFinalized(ctx context.Context, id, table string, r *loaderv1.FinalizeStagedResponse) error

	// Followers after the full load.
	StartFollowing(ctx context.Context, id string, report []byte, tables []jobstore.Followed) (bool, error)
	ClaimFollower(ctx context.Context, jobID, id, owner string, lease time.Duration) (*jobstore.Follower, error)
	FollowBeat(ctx context.Context, f *jobstore.Follower, owner string, lease time.Duration, b *jobstore.Beat) error
	ReleaseFollower(ctx context.Context, f *jobstore.Follower, owner string, cause error)
	FollowerDone(ctx context.Context, f *jobstore.Follower, owner string) error
	FinishFollowing(ctx context.Context, id string, report []byte) (bool, error)
	RequestStop(ctx context.Context, id string) (bool, error)
	Followers(ctx context.Context, jobID string) ([]jobstore.FollowerLag, error)

	// Reconciliation results.
	SetReconciliation(ctx context.Context, id string, r *orchestratorv1.Reconciliation) error
	Reconciliation(ctx context.Context, id string) (*orchestratorv1.Reconciliation, error)

	Close()
}

var _ store = (*jobstore.Store)(nil)
