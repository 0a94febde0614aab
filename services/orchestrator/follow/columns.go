package follow

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"github.com/cutover/cutover/services/orchestrator/jobspec"
	"github.com/cutover/cutover/services/orchestrator/stages"
)

// addedColumns handles the columns a change batch has beyond the ones the
// source had when the job was created and the mapping's (sync
// on_add_column): carried (target column and mapping added, before the
// batch goes through the stages), left out, or a stop naming them. The
// extractor has already refused an added column the follower cannot give
// a value for the rows changed before it (a default, NOT NULL).
func (fl *follower) addedColumns(ctx context.Context, b *commonv1.Batch) error {
	known := fl.tbl.GetSourceColumns()
	if len(known) == 0 {
		return nil // a job made before the source's columns were kept
	}
	var added []*commonv1.Column
	for _, c := range b.GetColumns() {
		if !slices.ContainsFunc(known, func(k *commonv1.SourceColumn) bool { return k.GetName() == c.GetName() }) && !fl.mapped(c.GetName()) {
			added = append(added, c)
		}
	}
	if len(added) == 0 {
		return nil
	}
	names := make([]string, len(added))
	for i, c := range added {
		names[i] = c.GetName()
	}
	switch fl.tbl.GetSync().GetOnAddColumn() {
	case commonv1.AddColumnPolicy_ADD_COLUMN_POLICY_IGNORE:
		return nil
	case commonv1.AddColumnPolicy_ADD_COLUMN_POLICY_STOP:
		return fmt.Errorf("%w: column %s was added to the source of %s while following, and sync.on_add_column is STOP: set CARRY or IGNORE, or start a new job",
			stages.ErrStageFatal, batch.ListNames(names), fl.tbl.GetName())
	}
	src, err := fl.r.cfg.Clients.Extractor.DescribeSource(ctx, &extractorv1.DescribeSourceRequest{Source: fl.tbl.GetSource()})
	if err != nil {
		return stages.Classify("extractor", err)
	}
	idCase := fl.job.Spec.GetTarget().GetIdentifierCase()
	def := &loaderv1.TableDefinition{Name: fl.tbl.GetTargetTable()}
	var maps []*commonv1.ColumnMapping
	var cols []*commonv1.SourceColumn
	for _, c := range added {
		pgType := batch.PostgresType(c.GetType())
		sc := &commonv1.SourceColumn{Name: c.GetName(), Type: c.GetType(), Nullable: true}
		for _, d := range src.GetColumns() {
			if d.GetName() == c.GetName() {
				sc = d
				if d.GetPgType() != "" && len(d.GetEnumValues()) == 0 {
					pgType = d.GetPgType()
				}
			}
		}
		cols = append(cols, sc)
		target := jobspec.CaseName(idCase, c.GetName())
		def.Columns = append(def.Columns, &loaderv1.ColumnDefinition{Name: target, PgType: pgType})
		maps = append(maps, &commonv1.ColumnMapping{Source: c.GetName(), Target: target, Type: c.GetType(), PgType: pgType})
	}
	res, err := fl.r.cfg.Clients.Loader.CreateTables(ctx, &loaderv1.CreateTablesRequest{Target: fl.target, Tables: []*loaderv1.TableDefinition{def}, AddColumns: true})
	if err != nil {
		return stages.Classify("loader", err)
	}
	if err := fl.r.store.AddColumns(ctx, fl.job.ID, fl.f.TableIndex, maps, cols); err != nil {
		return err
	}
	fl.tbl.Columns = append(fl.tbl.Columns, maps...)
	fl.tbl.SourceColumns = append(fl.tbl.SourceColumns, cols...)
	slog.Info("source columns added while following are carried", "job", fl.job.ID, "table", fl.tbl.GetName(), "columns", names, "ddl", res.GetStatements())
	return nil
}

// mapped reports whether a mapping of the table copies source column name.
func (fl *follower) mapped(name string) bool {
	for _, m := range fl.tbl.GetColumns() {
		if m.GetSource() == name {
			return true
		}
	}
	return false
}
