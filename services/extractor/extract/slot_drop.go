package extract

import (
	"context"

	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
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
	if req.GetSource().GetPostgres() == nil || req.GetSync().GetLogical() == nil {
		return "", nil
	}
	_, slot, err := logicalNames(req.GetSync(), req.GetJobId(), req.GetTable())
	if err != nil {
		return "", err
	}
	return slot, s.dropLogicalSlot(ctx, req.GetSource(), req.GetSync(), req.GetJobId(), req.GetTable())
}
