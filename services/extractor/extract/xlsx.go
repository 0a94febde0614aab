package extract

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	"github.com/cutover/cutover/services/kit/batch"
	"github.com/cutover/cutover/services/kit/calendar"
	"github.com/cutover/cutover/services/kit/fsroot"
	"github.com/xuri/excelize/v2"
)

type xlsxKind struct{}

func init() {
	register(&commonv1.SourceSpec_Xlsx{}, "xlsx", xlsxKind{})
}

// rawCells reads cells as stored, not as their number format displays them.
var rawCells = excelize.Options{RawCellValue: true}

// xlsxSheet is an open sheet whose header row has been read; rows is
// positioned on the header row.
type xlsxSheet struct {
	path, sheet string
	f           *excelize.File
	rows        *excelize.Rows
	rowNum      int // Excel row number of the iterator's current row
	headerRow   int
	names       []string
	isDate      []bool
	date1904    bool
}

func openXLSX(roots *fsroot.Roots, spec *commonv1.XlsxSource) (*xlsxSheet, error) {
	x := &xlsxSheet{path: spec.GetPath(), sheet: spec.GetSheet(), headerRow: int(spec.GetHeaderRow())}
	if x.path == "" {
		return nil, invalid("source.xlsx.path", "required")
	}
	if x.headerRow < 0 || x.headerRow > excelize.TotalRows {
		return nil, invalid("source.xlsx.header_row", "must be between 1 and %d, got %d", excelize.TotalRows, x.headerRow)
	}
	if x.headerRow == 0 {
		x.headerRow = 1
	}
	file, err := openSourceFile(roots, "source.xlsx.path", x.path)
	if err != nil {
		return nil, err
	}
	// From the descriptor checked to be inside the roots, not by name again.
	f, err := excelize.OpenReader(file)
	file.Close()
	if err != nil {
		return nil, fmt.Errorf("%w: source.xlsx.path: %s is not a readable XLSX workbook: %v", ErrPrecondition, x.path, err)
	}
	x.f = f
	if err := x.init(spec); err != nil {
		x.Close()
		return nil, err
	}
	return x, nil
}

func (x *xlsxSheet) Close() error {
	if x.rows != nil {
		x.rows.Close()
	}
	return x.f.Close()
}

func (x *xlsxSheet) init(spec *commonv1.XlsxSource) error {
	if x.sheet == "" {
		list := x.f.GetSheetList()
		if len(list) == 0 {
			return fmt.Errorf("%w: source.xlsx.path: %s has no sheets", ErrPrecondition, x.path)
		}
		x.sheet = list[0]
	}
	if props, err := x.f.GetWorkbookProps(); err == nil && props.Date1904 != nil {
		x.date1904 = *props.Date1904
	}
	rows, err := x.f.Rows(x.sheet)
	if err != nil {
		var ne excelize.ErrSheetNotExist
		if errors.As(err, &ne) {
			return fmt.Errorf("%w: source.xlsx.sheet: sheet %q does not exist in %s", ErrNotFound, x.sheet, x.path)
		}
		return fmt.Errorf("%w: source.xlsx.sheet: sheet %q of %s cannot be read: %v", ErrPrecondition, x.sheet, x.path, err)
	}
	x.rows = rows
	var header []string
	for x.rowNum < x.headerRow && rows.Next() {
		x.rowNum++
	}
	if x.rowNum == x.headerRow {
		if header, err = rows.Columns(rawCells); err != nil {
			return x.readErr(err)
		}
	}
	for len(header) > 0 && header[len(header)-1] == "" {
		header = header[:len(header)-1]
	}
	if len(header) == 0 {
		return fmt.Errorf("%w: source.xlsx.header_row: row %d of sheet %q in %s is empty, expected column names", ErrPrecondition, x.headerRow, x.sheet, x.path)
	}
	x.names = make([]string, len(header))
	count := map[string]int{}
	var dups []string
	for i, h := range header {
		if h == "" {
			h = "column_" + strconv.Itoa(i+1)
		}
		x.names[i] = h
		if count[h]++; count[h] == 2 {
			dups = append(dups, strconv.Quote(h))
		}
	}
	if len(dups) > 0 {
		return fmt.Errorf("%w: source.xlsx.header_row: row %d of sheet %q in %s names columns more than once: %s", ErrPrecondition, x.headerRow, x.sheet, x.path, strings.Join(dups, ", "))
	}
	x.isDate = make([]bool, len(x.names))
	for i, dc := range spec.GetDateColumns() {
		k := -1
		for j, n := range x.names {
			if n == dc {
				k = j
			}
		}
		if k < 0 {
			return invalid(fmt.Sprintf("source.xlsx.date_columns[%d]", i), "no column %q in the header of sheet %q", dc, x.sheet)
		}
		x.isDate[k] = true
	}
	return nil
}

func (x *xlsxSheet) readErr(err error) error {
	return fmt.Errorf("%w: source.xlsx.path: %s, sheet %q, row %d: %v", ErrPrecondition, x.path, x.sheet, x.rowNum, err)
}

// nextRow moves to the next row that has a value and returns its cells
// (trailing empty cells dropped); ok is false at the end of the sheet.
func (x *xlsxSheet) nextRow(from int) (cells []string, ok bool, err error) {
	for x.rows.Next() {
		x.rowNum++
		if x.rowNum < from {
			continue
		}
		cells, err := x.rows.Columns(rawCells)
		if err != nil {
			return nil, false, x.readErr(err)
		}
		for len(cells) > 0 && cells[len(cells)-1] == "" {
			cells = cells[:len(cells)-1]
		}
		if len(cells) > 0 {
			return cells, true, nil
		}
	}
	if err := x.rows.Error(); err != nil {
		return nil, false, x.readErr(err)
	}
	return nil, false, nil
}

func (xlsxKind) describe(_ context.Context, s *Service, src *commonv1.SourceSpec) (*extractorv1.DescribeSourceResponse, error) {
	x, err := openXLSX(s.files, src.GetXlsx())
	if err != nil {
		return nil, err
	}
	defer x.Close()
	resp := &extractorv1.DescribeSourceResponse{}
	for i, n := range x.names {
		c := &commonv1.SourceColumn{Name: n, SourceType: "cell", Type: textType, Nullable: true, PgType: "text"}
		if x.isDate[i] {
			// Serials with and without a time part both fit timestamp.
			c.SourceType, c.PgType = "excel serial date", "timestamp"
		}
		resp.Columns = append(resp.Columns, c)
	}
	for {
		_, ok, err := x.nextRow(0)
		if err != nil {
			return nil, err
		}
		if !ok {
			return resp, nil
		}
		resp.EstimatedRows++
	}
}

func (xlsxKind) plan(_ context.Context, s *Service, src *commonv1.SourceSpec, _ int) ([]*commonv1.KeyRange, error) {
	x, err := openXLSX(s.files, src.GetXlsx())
	if err != nil {
		return nil, err
	}
	x.Close()
	// A sheet streams from its start only: one range per sheet.
	return []*commonv1.KeyRange{{}}, nil
}

func (xlsxKind) read(_ context.Context, s *Service, src *commonv1.SourceSpec, _ *commonv1.KeyRange, cursor string, lim readLimits) (*commonv1.Batch, bool, error) {
	x, err := openXLSX(s.files, src.GetXlsx())
	if err != nil {
		return nil, false, err
	}
	defer x.Close()
	return x.read(cursor, lim)
}

// read returns up to lim.rows non-empty rows starting at Excel row cursor
// (empty: after the header). The cursor after a batch is the row number
// after its last row. A batch ends before the row that would take it past
// lim.bytes (limits.go).
func (x *xlsxSheet) read(cursor string, lim readLimits) (*commonv1.Batch, bool, error) {
	size := lim.rows
	from := x.headerRow + 1
	if cursor != "" {
		n, err := strconv.Atoi(cursor)
		if err != nil || n <= x.headerRow {
			return nil, false, invalid("cursor", "%q is not a row number after the header row %d", cursor, x.headerRow)
		}
		from = n
	}
	ncol := len(x.names)
	capRows := min(size, 1<<14)
	cols := make([]*batch.Builder, ncol)
	for i, n := range x.names {
		cols[i] = batch.NewBuilder(n, textType, capRows)
	}
	refs := batch.NewBuilder("source_ref", textType, capRows)
	b := &commonv1.Batch{Source: x.path + ":" + x.sheet}
	var buf, dbuf []byte // the row's ref, a date's text
	last := cursor
	rows := 0
	sizer := newRowSizer(lim, ncol)
	fixed := int64(ncol) * slotCost(textType)
	for _, d := range x.isDate {
		if d {
			fixed += 32 // the date's text, whatever the serial's
		}
	}
	total := firstBytes(b.Source, cursor)
	for {
		cells, ok, err := x.nextRow(from)
		if err != nil {
			return nil, false, err
		}
		if !ok {
			break
		}
		if rows == size {
			// A row is left: not done. It is read again from the cursor.
			b.NumRows = int32(rows)
			return x.finish(b, cols, refs, last), false, nil
		}
		buf = strconv.AppendInt(append(buf[:0], "row "...), int64(x.rowNum), 10)
		nrej := len(b.Rejects)
		rowBytes := fixed + refCost(len(buf))
		var rej *commonv1.Reject
		if len(cells) > ncol {
			rej = &commonv1.Reject{Row: int32(rows), Stage: stageExtract, Rule: "ragged_row",
				Raw:    cut(strings.Join(cells, "\t")),
				Reason: fmt.Sprintf("row %d: %d cells, the header row %d has %d columns", x.rowNum, len(cells), x.headerRow, ncol)}
			rowBytes += rejectCost(rej)
		} else {
			for k := range sizer.sizes {
				sizer.sizes[k] = -1
				if k < len(cells) && cells[k] != "" {
					sizer.sizes[k] = int64(len(cells[k]))
				}
			}
			rowBytes = sizer.pick(rowBytes)
			for k, big := range sizer.big {
				if big && sizer.nbig > 0 {
					r := sizer.reject("row "+strconv.Itoa(x.rowNum)+": ", x.names[k], k, []byte(cells[k][:min(len(cells[k]), rawPrefixBytes)]), false)
					r.Row = int32(rows)
					b.Rejects = append(b.Rejects, r)
				}
			}
			rowBytes += rejectsCost(b.Rejects, nrej)
		}
		if !lim.fits(rows, total, rowBytes) {
			// The row starts the next batch: not done.
			b.Rejects = b.Rejects[:nrej]
			b.NumRows = int32(rows)
			return x.finish(b, cols, refs, last), false, nil
		}
		total += rowBytes
		if rej != nil {
			for k := range cols {
				cols[k].AppendNull()
			}
			b.Rejects = append(b.Rejects, rej)
		} else {
			for k := range cols {
				v := ""
				if k < len(cells) {
					v = cells[k]
				}
				switch {
				case v == "" || sizer.nbig > 0 && sizer.big[k]:
					cols[k].AppendNull()
				case x.isDate[k]:
					var rej string
					dbuf, rej = appendExcelDate(dbuf[:0], v, x.date1904)
					if rej != "" {
						cols[k].AppendNull()
						r := &commonv1.Reject{Row: int32(rows), Stage: stageExtract, Rule: "excel_date",
							Column: x.names[k], Raw: cut(v),
							Reason: fmt.Sprintf("row %d: column %s: %s %s", x.rowNum, x.names[k], batch.QuoteShort([]byte(v)), rej)}
						b.Rejects = append(b.Rejects, r)
						total += rejectCost(r)
						continue
					}
					cols[k].AppendBytes(dbuf)
				default:
					cols[k].AppendString(v)
				}
			}
		}
		refs.AppendBytes(buf)
		last = strconv.Itoa(x.rowNum + 1)
		rows++
	}
	b.NumRows = int32(rows)
	return x.finish(b, cols, refs, last), true, nil
}

func (x *xlsxSheet) finish(b *commonv1.Batch, cols []*batch.Builder, refs *batch.Builder, last string) *commonv1.Batch {
	b.Columns = make([]*commonv1.Column, len(cols))
	for i, c := range cols {
		b.Columns[i] = c.Column()
	}
	b.SourceRefs = refs.Column()
	if last == "" {
		last = strconv.Itoa(x.headerRow + 1)
	}
	b.LastKey = last
	return b
}

// isExcelNumber accepts the number forms a cell stores:
// -?digits[.digits][E[+-]digits]. ParseFloat alone would also take "Inf",
// "NaN", hex and underscores.
func isExcelNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	d := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i, d = i+1, d+1
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i, d = i+1, d+1
		}
	}
	if d == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		e := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i, e = i+1, e+1
		}
		if e == 0 {
			return false
		}
	}
	return i == len(s)
}

// maxExcelSerial is 9999-12-31, the last day Excel has.
const maxExcelSerial = 2958465

// excelSerial converts an Excel serial date-time to days since 1970-01-01
// and microseconds into the day. In the 1900 system serial 1 is 1900-01-01
// and Excel counts a 1900-02-29 that never was (serial 60, after Lotus
// 1-2-3), so serials below 60 are one day later than a plain count from
// 1899-12-30 gives; in the 1904 system serial 0 is 1904-01-01. The
// fraction is the time of day, rounded to the microsecond (a double holds
// Excel's millisecond times only approximately).
func excelSerial(v float64, date1904 bool) (days, micros int64, err error) {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v >= maxExcelSerial+1 {
		return 0, 0, fmt.Errorf("is outside Excel's dates (serials 0 to %d)", maxExcelSerial)
	}
	whole := math.Floor(v)
	d := int64(whole)
	micros = int64(math.Round((v - whole) * 86_400_000_000))
	if micros >= 86_400_000_000 {
		d, micros = d+1, micros-86_400_000_000
	}
	if date1904 {
		if d > maxExcelSerial-1462 {
			return 0, 0, fmt.Errorf("is after 9999-12-31 in the 1904 date system")
		}
		return calendar.Days(1904, 1, 1) + d, micros, nil
	}
	switch {
	case d == 0:
		return 0, 0, errors.New("has no date: serial 0 is Excel's 1900-01-00")
	case d == 60:
		return 0, 0, errors.New("is serial 60, Excel's 1900-02-29, a day that never was (the 1900 leap-year bug)")
	case d < 60:
		return calendar.Days(1899, 12, 31) + d, micros, nil
	case d > maxExcelSerial:
		return 0, 0, fmt.Errorf("is after 9999-12-31")
	}
	return calendar.Days(1899, 12, 30) + d, micros, nil
}

// appendExcelDate appends the ISO form of a serial date cell:
// "YYYY-MM-DD", or "YYYY-MM-DDTHH:MM:SS[.ffffff]" when it has a time of
// day. A non-empty second result explains why the cell is not a date.
func appendExcelDate(dst []byte, cell string, date1904 bool) ([]byte, string) {
	if !isExcelNumber(cell) {
		return dst, "is not an Excel serial date number"
	}
	v, err := strconv.ParseFloat(cell, 64)
	if err != nil {
		return dst, "is not an Excel serial date number"
	}
	days, micros, err := excelSerial(v, date1904)
	if err != nil {
		return dst, err.Error()
	}
	t := time.UnixMicro(days*86_400_000_000 + micros).UTC()
	switch {
	case micros == 0:
		return t.AppendFormat(dst, "2006-01-02"), ""
	case micros%1_000_000 == 0:
		return t.AppendFormat(dst, "2006-01-02T15:04:05"), ""
	}
	return t.AppendFormat(dst, "2006-01-02T15:04:05.000000"), ""
}
