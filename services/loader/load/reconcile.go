package load

import (
	"context"

	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	"github.com/cutover/cutover/services/loader/reconcile"
	"google.golang.org/grpc"
)

// ReconcileTable compares one target table of a finished job with its
// source (package reconcile), reading the target through the loader's pool
// and the source from the validator named in the request.
func (s *Service) ReconcileTable(ctx context.Context, req *loaderv1.ReconcileTableRequest) (*loaderv1.ReconcileTableResponse, error) {
	resp, err := s.reconcileTable(ctx, req)
	return resp, toStatus(err)
}

func (s *Service) reconcileTable(ctx context.Context, req *loaderv1.ReconcileTableRequest) (*loaderv1.ReconcileTableResponse, error) {
	t, schema, err := s.target(ctx, req.GetTarget())
	if err != nil {
		return nil, err
	}
	dial := func(addr string) (grpc.ClientConnInterface, error) { return s.up.Conn(addr) }
	tr, err := reconcile.Table(ctx, reconcile.Target{Pool: t.pool, Schema: schema, Err: t.dbErr}, dial, req)
	if err != nil {
		return nil, err
	}
	return &loaderv1.ReconcileTableResponse{Reconciliation: tr}, nil
}
