package load

import (
	"context"
	"fmt"
	"strings"

	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	"github.com/cutover/cutover/services/kit/stage"
	"github.com/jackc/pgx/v5"
)

// defaultKeyPage is the keys asked of the extractor at a time.
const defaultKeyPage = 10000

// MissingKeys finds the target rows whose key the source no longer has. The
// source's keys come from the extractor (the sources' one owner) by COPY
// into a temporary table, in one read-only transaction that takes the
// table with it.
func (s *Service) MissingKeys(ctx context.Context, req *loaderv1.MissingKeysRequest) (*loaderv1.MissingKeysResponse, error) {
	resp, err := s.missingKeys(ctx, req)
	return resp, toStatus(err)
}

func (s *Service) missingKeys(ctx context.Context, req *loaderv1.MissingKeysRequest) (*loaderv1.MissingKeysResponse, error) {
	if req.GetTable() == "" || len(req.GetKeyColumns()) == 0 {
		return nil, fmt.Errorf("%w: table and key_columns are required", ErrInvalidArgument)
	}
	page := req.GetPageSize()
	if page <= 0 {
		page = defaultKeyPage
	}
	t, schema, err := s.target(ctx, req.GetTarget())
	if err != nil {
		return nil, err
	}
	cc, err := s.up.Conn(req.GetUpstream())
	if err != nil {
		return nil, fmt.Errorf("%w: upstream: %v", ErrInvalidArgument, err)
	}
	ex := extractorv1.NewExtractorServiceClient(cc)
	what := "key check of " + schema + "." + req.GetTable()
	tx, err := t.pool.Begin(ctx)
	if err != nil {
		return nil, t.dbErr(what, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only; the temporary table goes with it
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE _cutover_src_keys (k text) ON COMMIT DROP`); err != nil {
		return nil, t.dbErr(what, err)
	}
	resp := &loaderv1.MissingKeysResponse{}
	for after := ""; ; {
		res, err := ex.ReadKeys(ctx, &extractorv1.ReadKeysRequest{Source: req.GetSource(), After: after, Limit: page})
		if err != nil {
			return nil, &stage.UpstreamError{Stage: "extractor", Err: err}
		}
		keys := res.GetKeys()
		rows := make([][]any, len(keys))
		for i, k := range keys {
			rows[i] = []any{k}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"_cutover_src_keys"}, []string{"k"}, pgx.CopyFromRows(rows)); err != nil {
			return nil, t.dbErr(what, err)
		}
		resp.SourceKeys += int64(len(keys))
		if res.GetDone() || len(keys) == 0 {
			break
		}
		after = keys[len(keys)-1]
	}
	if _, err := tx.Exec(ctx, `CREATE INDEX ON _cutover_src_keys (k); ANALYZE _cutover_src_keys`); err != nil {
		return nil, t.dbErr(what, err)
	}
	// The source's keys are text joined by ","; the target's are rendered so.
	texts := make([]string, len(req.GetKeyColumns()))
	for i, c := range req.GetKeyColumns() {
		texts[i] = "t." + pgx.Identifier{c}.Sanitize() + "::text"
	}
	list := strings.Join(texts, ", ")
	rows, err := tx.Query(ctx, fmt.Sprintf(`SELECT %s FROM %s t WHERE NOT EXISTS (SELECT 1 FROM _cutover_src_keys s WHERE s.k = concat_ws(',', %s)) ORDER BY %s`,
		list, pgx.Identifier{schema, req.GetTable()}.Sanitize(), list, list))
	if err != nil {
		return nil, t.dbErr(what, err)
	}
	defer rows.Close()
	for rows.Next() {
		vals := make([]string, len(texts))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, t.dbErr(what, err)
		}
		resp.Keys = append(resp.Keys, &loaderv1.MissingKey{Values: vals})
	}
	if err := rows.Err(); err != nil {
		return nil, t.dbErr(what, err)
	}
	return resp, nil
}
