package jobreport

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"

	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
)

// report.html.tmpl is one page with its CSS inline: no scripts, fonts or
// images, so it can be mailed, archived or printed as is.
//
//go:embed report.html.tmpl
var htmlSource string

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"plural": plural,
	"args":   func(v *view, c counts) countsCell { return countsCell{V: v, C: c} },
	"rules": func(title, count string, rules []rejectRow, examples []exampleRow) rulesSection {
		return rulesSection{title, count, rules, examples}
	},
}).Parse(htmlSource))

// rulesSection is the input of the "rules" template: rejects or warnings.
type rulesSection struct {
	Title, Count string
	Rules        []rejectRow
	Examples     []exampleRow
}

// countsCell hands the "counts" template a row's counts and the page's
// choice of columns.
type countsCell struct {
	V *view
	C counts
}

// HTML writes r as one self-contained HTML page. html/template escapes
// every value from the report for the context it is in.
func HTML(w io.Writer, r *orchestratorv1.JobReport) error {
	v, err := build(r)
	if err != nil {
		return err
	}
	if err := page.Execute(w, v); err != nil {
		return fmt.Errorf("jobreport: write html: %w", err)
	}
	return nil
}
