package extract

import (
	"context"
	"math"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	"github.com/xuri/excelize/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// xlsxBook writes a workbook: sheet name → rows of cells (nil skips a
// cell); the first sheet replaces the default one.
func xlsxBook(t testing.TB, date1904 bool, sheets map[string][][]any, order ...string) string {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	for i, name := range order {
		if i == 0 {
			if err := f.SetSheetName("Sheet1", name); err != nil {
				t.Fatal(err)
			}
		} else if _, err := f.NewSheet(name); err != nil {
			t.Fatal(err)
		}
		for r, cells := range sheets[name] {
			for c, v := range cells {
				if v == nil {
					continue
				}
				cell, _ := excelize.CoordinatesToCellName(c+1, r+1)
				if err := f.SetCellValue(name, cell, v); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if date1904 {
		yes := true
		if err := f.SetWorkbookProps(&excelize.WorkbookPropsOptions{Date1904: &yes}); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(t.TempDir(), "book.xlsx")
	if err := f.SaveAs(p); err != nil {
		t.Fatal(err)
	}
	return p
}

func xlsxSource(path, sheet string, header int32, dates ...string) *commonv1.SourceSpec {
	return &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Xlsx{Xlsx: &commonv1.XlsxSource{Path: path, Sheet: sheet, HeaderRow: header, DateColumns: dates}}}
}

func TestReadXLSX(t *testing.T) {
	sheets := map[string][][]any{
		"Orders": {
			{"id", "when", "note", nil, "amount"},
			{1, 1, "serial 1"},
			{2, 59, "serial 59", nil, 12.5},
			{3, 60, "serial 60"},
			{4, 61, "serial 61", nil, "text"},
			{},
			{5, 45000.5, nil, nil, 0.1},
			{6, "2023-01-05"},
			{7, 45000 + 1.5/86400, "µs"},
			{8, -1},
			{nil, nil, nil, nil, nil, "beyond"},
			{9, 45000.25},
		},
		"Other": {{"title row"}, {"a", "b"}, {"x"}},
	}
	p := xlsxBook(t, false, sheets, "Orders", "Other")
	s := newService(t)
	src := xlsxSource(p, "", 0, "when")
	d, err := s.DescribeSource(context.Background(), &extractorv1.DescribeSourceRequest{Source: src})
	if err != nil {
		t.Fatal(err)
	}
	var names, pg []string
	for _, c := range d.GetColumns() {
		names, pg = append(names, c.GetName()), append(pg, c.GetPgType())
	}
	if !reflect.DeepEqual(names, []string{"id", "when", "note", "column_4", "amount"}) ||
		!reflect.DeepEqual(pg, []string{"text", "timestamp", "text", "text", "text"}) || d.GetEstimatedRows() != 10 {
		t.Errorf("describe: %q %q %d", names, pg, d.GetEstimatedRows())
	}
	want := []row{
		{ref: "row 2", vals: []string{"1", "1900-01-01", "serial 1", null, null}},
		{ref: "row 3", vals: []string{"2", "1900-02-28", "serial 59", null, "12.5"}},
		{ref: "row 4", vals: []string{"3", null, "serial 60", null, null},
			reject: `excel_date|when|row 4: column when: "60" is serial 60, Excel's 1900-02-29, a day that never was (the 1900 leap-year bug)|60`},
		{ref: "row 5", vals: []string{"4", "1900-03-01", "serial 61", null, "text"}},
		{ref: "row 7", vals: []string{"5", "2023-03-15T12:00:00", null, null, "0.1"}},
		{ref: "row 8", vals: []string{"6", null, null, null, null},
			reject: `excel_date|when|row 8: column when: "2023-01-05" is not an Excel serial date number|2023-01-05`},
		{ref: "row 9", vals: []string{"7", "2023-03-15T00:00:01.500000", "µs", null, null}},
		{ref: "row 10", vals: []string{"8", null, null, null, null},
			reject: `excel_date|when|row 10: column when: "-1" is outside Excel's dates (serials 0 to 2958465)|-1`},
		{ref: "row 11", vals: []string{null, null, null, null, null},
			reject: "ragged_row||row 11: 6 cells, the header row 1 has 5 columns|\t\t\t\t\tbeyond"},
		{ref: "row 12", vals: []string{"9", "2023-03-15T06:00:00", null, null, null}},
	}
	for _, size := range []int{1, 3, 100} {
		got, _ := readAll(t, s, src, nil, size)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("batch size %d:\n got %q\nwant %q", size, got, want)
		}
	}
	// Header on row 2 of another sheet.
	got, _ := readAll(t, s, xlsxSource(p, "Other", 2), nil, 10)
	if want := []row{{ref: "row 3", vals: []string{"x", null}}}; !reflect.DeepEqual(got, want) {
		t.Errorf("sheet Other: %q", got)
	}
	// Same cursor, same batch.
	_, cursors := readAll(t, s, src, nil, 4)
	for _, c := range cursors {
		a, err1 := s.ReadBatch(context.Background(), &extractorv1.ReadBatchRequest{Source: src, Cursor: c, BatchSize: 4})
		b, err2 := s.ReadBatch(context.Background(), &extractorv1.ReadBatchRequest{Source: src, Cursor: c, BatchSize: 4})
		if err1 != nil || err2 != nil || !proto.Equal(a, b) {
			t.Fatalf("cursor %q: %v %v", c, err1, err2)
		}
	}
}

func TestXLSXRawValues(t *testing.T) {
	f := excelize.NewFile()
	defer f.Close()
	pct, _ := f.NewStyle(&excelize.Style{NumFmt: 10}) // 0.00%
	dt, _ := f.NewStyle(&excelize.Style{NumFmt: 14})  // m/d/yy
	for cell, v := range map[string]any{"A1": "pct", "B1": "date", "A2": 0.125, "B2": 45000} {
		if err := f.SetCellValue("Sheet1", cell, v); err != nil {
			t.Fatal(err)
		}
	}
	_ = f.SetCellStyle("Sheet1", "A2", "A2", pct)
	_ = f.SetCellStyle("Sheet1", "B2", "B2", dt)
	p := filepath.Join(t.TempDir(), "fmt.xlsx")
	if err := f.SaveAs(p); err != nil {
		t.Fatal(err)
	}
	got, _ := readAll(t, newService(t), xlsxSource(p, "Sheet1", 1), nil, 10)
	if want := []row{{ref: "row 2", vals: []string{"0.125", "45000"}}}; !reflect.DeepEqual(got, want) {
		t.Errorf("formatted cells: %q, want the stored values %q", got, want)
	}
}

func TestXLSX1904(t *testing.T) {
	p := xlsxBook(t, true, map[string][][]any{"S": {{"d"}, {0}, {1}, {45000}, {45000.75}}}, "S")
	got, _ := readAll(t, newService(t), xlsxSource(p, "", 0, "d"), nil, 10)
	want := []row{
		{ref: "row 2", vals: []string{"1904-01-01"}},
		{ref: "row 3", vals: []string{"1904-01-02"}},
		{ref: "row 4", vals: []string{"2027-03-16"}},
		{ref: "row 5", vals: []string{"2027-03-16T18:00:00"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("1904 system:\n got %q\nwant %q", got, want)
	}
}

func TestXLSXErrors(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	dup := xlsxBook(t, false, map[string][][]any{"S": {{"a", "b", "a", "b", "c"}, {1}}}, "S")
	empty := xlsxBook(t, false, map[string][][]any{"S": {{"a"}}}, "S")
	tests := []struct {
		name  string
		src   *commonv1.SourceSpec
		code  codes.Code
		parts []string
	}{
		{"no path", xlsxSource("", "", 0), codes.InvalidArgument, []string{"source.xlsx.path"}},
		{"missing file", xlsxSource(filepath.Join(t.TempDir(), "gone.xlsx"), "", 0), codes.InvalidArgument, []string{"source.xlsx.path", "gone.xlsx", notInRoots}},
		{"missing sheet", xlsxSource(dup, "Nope", 0), codes.NotFound, []string{"source.xlsx.sheet", `"Nope"`}},
		{"duplicates", xlsxSource(dup, "", 0), codes.FailedPrecondition, []string{`"a", "b"`}},
		{"empty header", xlsxSource(empty, "", 5), codes.FailedPrecondition, []string{"source.xlsx.header_row", "row 5"}},
		{"negative header", xlsxSource(empty, "", -1), codes.InvalidArgument, []string{"source.xlsx.header_row"}},
		{"unknown date column", xlsxSource(empty, "", 0, "x"), codes.InvalidArgument, []string{"source.xlsx.date_columns[0]"}},
		{"not a workbook", xlsxSource(writeFile(t, "a,b\n"), "", 0), codes.FailedPrecondition, []string{"source.xlsx.path"}},
	}
	for _, tc := range tests {
		_, err := s.DescribeSource(ctx, &extractorv1.DescribeSourceRequest{Source: tc.src})
		t.Run(tc.name, func(t *testing.T) { wantCode(t, err, tc.code, tc.parts...) })
	}
	_, err := s.ReadBatch(ctx, &extractorv1.ReadBatchRequest{Source: xlsxSource(empty, "", 0), Cursor: "1"})
	wantCode(t, err, codes.InvalidArgument, "cursor")
}

func TestExcelSerial(t *testing.T) {
	tests := []struct {
		serial float64
		d1904  bool
		want   string // "" = refused
	}{
		{1, false, "1900-01-01"}, {59, false, "1900-02-28"}, {59.5, false, "1900-02-28T12:00:00"},
		{60, false, ""}, {60.25, false, ""}, {61, false, "1900-03-01"}, {0, false, ""}, {0.5, false, ""},
		{25569, false, "1970-01-01"}, {45000.5, false, "2023-03-15T12:00:00"}, {2958465, false, "9999-12-31"},
		{2958466, false, ""}, {-1, false, ""}, {math.NaN(), false, ""}, {math.Inf(1), false, ""},
		{59.999999999999, false, ""}, {59.99999999999, false, "1900-02-28T23:59:59.999999"}, // rounds into the fictional day
		{0, true, "1904-01-01"}, {45000.5, true, "2027-03-16T12:00:00"}, {2957003, true, "9999-12-31"}, {2957004, true, ""},
		{45000 + 1.0/3, false, "2023-03-15T08:00:00"}, {45000.123456789, false, "2023-03-15T02:57:46.666569"},
	}
	for _, tc := range tests {
		d, us, err := excelSerial(tc.serial, tc.d1904)
		got := ""
		if err == nil {
			got = time.UnixMicro(d*86_400_000_000 + us).UTC().Format("2006-01-02T15:04:05.999999")
			got = strings.TrimSuffix(got, "T00:00:00")
		}
		if got != tc.want {
			t.Errorf("excelSerial(%v, 1904=%v) = %q (%v), want %q", tc.serial, tc.d1904, got, err, tc.want)
		}
	}
}

func FuzzExcelSerial(f *testing.F) {
	for _, s := range []string{"1", "59", "60", "61", "45000.5", "0.999999999999", "2958465.99999", "1e3", "-0", "4.5E-3", "abc", "0x10", "Inf"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, cell string, d1904 bool) {
		out, why := appendExcelDate(nil, cell, d1904)
		if why != "" {
			return
		}
		v, err := strconv.ParseFloat(cell, 64)
		if err != nil {
			t.Fatalf("%q accepted but does not parse: %v", cell, err)
		}
		layout := "2006-01-02"
		if len(out) > 10 {
			layout = "2006-01-02T15:04:05.999999"
		}
		tm, err := time.Parse(layout, string(out))
		if err != nil {
			t.Fatalf("%q gave %q: %v", cell, out, err)
		}
		// Back to a serial: within a microsecond or the double's own
		// resolution at that magnitude.
		base := time.Date(1899, 12, 30, 0, 0, 0, 0, time.UTC)
		if d1904 {
			base = time.Date(1904, 1, 1, 0, 0, 0, 0, time.UTC)
		} else if tm.Before(time.Date(1900, 3, 1, 0, 0, 0, 0, time.UTC)) {
			// Before the fictional 1900-02-29, serials count one day more.
			base = base.AddDate(0, 0, 1)
			if v >= 60 {
				t.Fatalf("%q (in the fictional day) accepted as %q", cell, out)
			}
		}
		back := float64(tm.UnixMicro()-base.UnixMicro()) / 86_400_000_000
		tol := math.Max(1e-6/86400, 4*(math.Nextafter(v, math.Inf(1))-v))
		if math.Abs(back-v) > tol {
			t.Fatalf("%q → %q → serial %v, off by %g", cell, out, back, back-v)
		}
	})
}
