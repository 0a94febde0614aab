package extract

import (
	"context"
	"errors"
	"fmt"
	"time"

	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DropSlot drops a following table's replication slot, and the publication
// when the extractor named it, on the table's PostgreSQL source. Only the
// extractor touches sources, so the orchestrator asks for this when a
// following table stops for good (StopFollowing, CancelJob, a CreateJob that
// failed after asking for the start).
func (s *Service) DropSlot(ctx context.Context, req *extractorv1.DropSlotRequest) (*extractorv1.DropSlotResponse, error) {
	slot, err := s.dropSlot(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	return &extractorv1.DropSlotResponse{Slot: slot}, nil
}

func (s *Service) dropSlot(ctx context.Context, req *extractorv1.DropSlotRequest) (string, error) {
	pg := req.GetSource().GetPostgres()
	if pg == nil || req.GetSync().GetLogical() == nil {
		return "", nil
	}
	pub, slot, err := logicalNames(req.GetSync(), req.GetJobId(), req.GetTable())
	if err != nil {
		return "", err
	}
	p, err := s.pool(pg.GetDsn())
	if err != nil {
		return "", err
	}
	for tries := 0; ; tries++ {
		_, err = p.pool.Exec(ctx, "SELECT pg_catalog.pg_drop_replication_slot(slot_name) FROM pg_catalog.pg_replication_slots WHERE slot_name = $1", slot)
		var pe *pgconn.PgError
		// 55006: a ReadChanges is reading it this moment; it lets go soon.
		if err == nil || !errors.As(err, &pe) || pe.Code != "55006" || tries >= 50 {
			break
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err != nil {
		return "", fmt.Errorf("%w: drop replication slot %s of table %s: %s", ErrUnavailable, slot, req.GetTable(), scrub(err.Error(), p.password))
	}
	if req.GetSync().GetLogical().GetPublication() == "" {
		if _, err := p.pool.Exec(ctx, "DROP PUBLICATION IF EXISTS "+pgx.Identifier{pub}.Sanitize()); err != nil {
			return "", fmt.Errorf("%w: drop publication %s of table %s: %s", ErrUnavailable, pub, req.GetTable(), scrub(err.Error(), p.password))
		}
	}
	return slot, nil
}
