package jobstore

import (
	"context"
	"encoding/base64"
	"fmt"
	"github.com/cutover/cutover/services/kit/batch"
	"strconv"
	"strings"
	"time"
)

// auditDDL is the audit log: one row per call the server's interceptor
// records. It outlives jobs: deleting a job leaves its entries, which go
// only by their own retention (ExpireAudit).
const auditDDL = `
CREATE TABLE IF NOT EXISTS cutover_control.audit (
	id        bigserial PRIMARY KEY,
	at        timestamptz NOT NULL DEFAULT now(),
	principal text NOT NULL,
	role      text NOT NULL,
	method    text NOT NULL,
	job_id    text,
	outcome   text NOT NULL,
	peer      text NOT NULL,
	detail    text
);
CREATE INDEX IF NOT EXISTS audit_job ON cutover_control.audit (job_id, id) WHERE job_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS audit_principal ON cutover_control.audit (principal, id);
CREATE INDEX IF NOT EXISTS audit_at ON cutover_control.audit (at);
`

// AuditRecord is one entry of the audit log. ID is set by ListAudit and
// ignored by AppendAudit.
type AuditRecord struct {
	At                                                    time.Time
	Principal, Role, Method, JobID, Outcome, Peer, Detail string
	ID                                                    int64
}

// AuditFilter selects audit entries, newest first.
type AuditFilter struct {
	// JobID and Principal keep the entries of one job or one caller.
	JobID, Principal string
	// Since keeps entries at or after it; zero keeps all.
	Since time.Time
	// PageSize defaults to DefaultAuditPage and is at most MaxAuditPage.
	PageSize  int
	PageToken string
}

// Bounds of the audit log's entries and pages.
const (
	DefaultAuditPage = 100
	MaxAuditPage     = 1000
	// auditFieldBytes bounds each short field of an entry, auditDetailBytes
	// its detail: an entry is a line, not a document.
	auditFieldBytes  = 256
	auditDetailBytes = 1024
)

// auditText makes s storable and short: valid UTF-8 without NUL (which a
// text column refuses: the entry must never fail on its content), at most
// max bytes, cut at a character.
func auditText(s string, max int) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
	if len(s) <= max {
		return s
	}
	return batch.CutUTF8(s, max-len("…")) + "…"
}

// nullIfEmpty stores "" as NULL.
func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// AppendAudit records one entry; a zero At is the database's now().
func (s *Store) AppendAudit(ctx context.Context, r AuditRecord) error {
	var at *time.Time
	if !r.At.IsZero() {
		at = &r.At
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO cutover_control.audit (at, principal, role, method, job_id, outcome, peer, detail)
		VALUES (coalesce($1, now()), $2, $3, $4, $5, $6, $7, $8)`, at,
		auditText(r.Principal, auditFieldBytes), auditText(r.Role, auditFieldBytes), auditText(r.Method, auditFieldBytes),
		nullIfEmpty(auditText(r.JobID, auditFieldBytes)), auditText(r.Outcome, auditFieldBytes), auditText(r.Peer, auditFieldBytes),
		nullIfEmpty(auditText(scrub(r.Detail), auditDetailBytes)))
	if err != nil {
		return fmt.Errorf("append audit entry: %w", err)
	}
	return nil
}

// ListAudit returns a page of entries matching f, newest first, and the
// token of the next page ("" after the last).
func (s *Store) ListAudit(ctx context.Context, f AuditFilter) ([]AuditRecord, string, error) {
	n := f.PageSize
	switch {
	case n < 0:
		return nil, "", fmt.Errorf("%w: page_size must not be negative, got %d", ErrInvalidArgument, n)
	case n == 0:
		n = DefaultAuditPage
	case n > MaxAuditPage:
		n = MaxAuditPage
	}
	var before *int64
	if f.PageToken != "" {
		id, err := decodeAuditToken(f.PageToken)
		if err != nil {
			return nil, "", err
		}
		before = &id
	}
	var since *time.Time
	if !f.Since.IsZero() {
		since = &f.Since
	}
	rows, err := s.pool.Query(ctx, `SELECT id, at, principal, role, method, coalesce(job_id, ''), outcome, peer, coalesce(detail, '')
		FROM cutover_control.audit
		WHERE ($1 = '' OR job_id = $1) AND ($2 = '' OR principal = $2) AND ($3::timestamptz IS NULL OR at >= $3)
		  AND ($4::bigint IS NULL OR id < $4)
		ORDER BY id DESC LIMIT $5`, f.JobID, f.Principal, since, before, n+1)
	if err != nil {
		return nil, "", fmt.Errorf("list audit entries: %w", err)
	}
	defer rows.Close()
	var out []AuditRecord
	for rows.Next() {
		var r AuditRecord
		if err := rows.Scan(&r.ID, &r.At, &r.Principal, &r.Role, &r.Method, &r.JobID, &r.Outcome, &r.Peer, &r.Detail); err != nil {
			return nil, "", fmt.Errorf("list audit entries: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list audit entries: %w", err)
	}
	next := ""
	if len(out) > n {
		out = out[:n]
		next = base64.RawURLEncoding.EncodeToString([]byte("a" + strconv.FormatInt(out[n-1].ID, 10)))
	}
	return out, next, nil
}

func decodeAuditToken(tok string) (int64, error) {
	bad := fmt.Errorf("%w: page_token: not a token this listing gave out", ErrInvalidArgument)
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) < 2 || raw[0] != 'a' {
		return 0, bad
	}
	id, err := strconv.ParseInt(string(raw[1:]), 10, 64)
	if err != nil {
		return 0, bad
	}
	return id, nil
}

// ExpireAudit removes the entries older than age (audit retention, on
// the database's clock) and says how many.
func (s *Store) ExpireAudit(ctx context.Context, age time.Duration) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM cutover_control.audit WHERE at < now() - $1 * interval '1 second'`, age.Seconds())
	if err != nil {
		return 0, fmt.Errorf("expire audit entries: %w", err)
	}
	return tag.RowsAffected(), nil
}
