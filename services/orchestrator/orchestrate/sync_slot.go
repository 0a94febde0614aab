package orchestrate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Logical replication slots of following tables (TableSpec.sync.logical).
//
// The extractor makes a table's publication and slot when ReadChanges is
// first asked for the start (empty position), at CreateJob; from then on
// the slot keeps the source's WAL until it is dropped. DropLogicalSlot is
// what ends that: call it when a following table stops for good
// (StopFollowing, CancelJob of a following job, a CreateJob that fails
// after asking for the start), never while the job may still follow.

// LogicalSlotNames returns the publication and slot a table's logical sync
// uses: the spec's, or the defaults the extractor derives from the job id
// and the table spec's name (keep the two in step: extract/pglogical.go).
func LogicalSlotNames(sync *commonv1.SyncSpec, jobID, table string) (publication, slot string) {
	l := sync.GetLogical()
	publication, slot = l.GetPublication(), l.GetSlot()
	if publication == "" {
		sum := sha256.Sum256([]byte(jobID + "\x00" + table))
		publication = "cutover_" + hex.EncodeToString(sum[:8])
	}
	if slot == "" {
		full := "cutover_" + jobID + "_" + table
		b := []byte(strings.ToLower(full))
		for i, c := range b {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
				b[i] = '_'
			}
		}
		slot = string(b)
		if len(b) > 63 {
			sum := sha256.Sum256([]byte(full))
			slot = string(b[:54]) + "_" + hex.EncodeToString(sum[:4])
		}
	}
	return publication, slot
}

// DropLogicalSlot drops a following table's slot on its PostgreSQL source
// and, when the extractor made it (sync.logical.publication empty), its
// publication. Missing ones are not an error, so it can be repeated.
func DropLogicalSlot(ctx context.Context, src *commonv1.SourceSpec, sync *commonv1.SyncSpec, jobID, table string) error {
	pg := src.GetPostgres()
	if pg == nil || sync.GetLogical() == nil {
		return nil
	}
	pub, slot := LogicalSlotNames(sync, jobID, table)
	conn, err := pgx.Connect(ctx, pg.GetDsn())
	if err != nil {
		// pgx errors may carry the host but not the password; say which.
		return fmt.Errorf("drop replication slot %s of table %s: connect to the source: %w", slot, table, scrubConnErr(err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for tries := 0; ; tries++ {
		_, err = conn.Exec(ctx, "SELECT pg_catalog.pg_drop_replication_slot(slot_name) FROM pg_catalog.pg_replication_slots WHERE slot_name = $1", slot)
		var pe *pgconn.PgError
		// 55006: an extractor is reading it this moment; it lets go soon.
		if err == nil || !errors.As(err, &pe) || pe.Code != "55006" || tries >= 50 {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err != nil {
		return fmt.Errorf("drop replication slot %s of table %s: %w", slot, table, err)
	}
	if sync.GetLogical().GetPublication() == "" {
		if _, err := conn.Exec(ctx, "DROP PUBLICATION IF EXISTS "+pgx.Identifier{pub}.Sanitize()); err != nil {
			return fmt.Errorf("drop publication %s of table %s: %w", pub, table, err)
		}
	}
	return nil
}

// scrubConnErr keeps a connection error's kind without its text, which
// can quote the connection string.
func scrubConnErr(err error) error {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return errors.New("cannot connect")
	}
	return err
}
