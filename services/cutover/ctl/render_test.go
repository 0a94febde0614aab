package ctl

import (
	"bytes"
	"context"
	"encoding/xml"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"google.golang.org/grpc/metadata"
)

// parsedJUnit reads JUnit XML back: what a CI reporter sees.
type parsedJUnit struct {
	XMLName  xml.Name `xml:"testsuites"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Suites   []struct {
		Name     string `xml:"name,attr"`
		Tests    int    `xml:"tests,attr"`
		Failures int    `xml:"failures,attr"`
		Skipped  int    `xml:"skipped,attr"`
		Cases    []struct {
			Name      string `xml:"name,attr"`
			Classname string `xml:"classname,attr"`
			Failure   *struct {
				Message string `xml:"message,attr"`
				Type    string `xml:"type,attr"`
				Text    string `xml:",chardata"`
			} `xml:"failure"`
			Skipped *struct {
				Message string `xml:"message,attr"`
			} `xml:"skipped"`
			SystemOut string `xml:"system-out"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

func parseJUnit(t *testing.T, data []byte) parsedJUnit {
	t.Helper()
	var p parsedJUnit
	if err := xml.Unmarshal(data, &p); err != nil {
		t.Fatalf("JUnit XML does not parse: %v\n%s", err, data)
	}
	return p
}

// outcome is "pass", "fail: <message>" or "skip" per suite/case.
func (p parsedJUnit) outcomes() map[string]string {
	out := map[string]string{}
	for _, s := range p.Suites {
		for _, c := range s.Cases {
			k := s.Name + "/" + c.Name
			switch {
			case c.Failure != nil:
				out[k] = "fail: " + c.Failure.Message
			case c.Skipped != nil:
				out[k] = "skip"
			default:
				out[k] = "pass"
			}
		}
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func rulesSpec(thresholds ...*commonv1.Threshold) *commonv1.JobSpec {
	return &commonv1.JobSpec{
		Name: "shop <&> \"orders\"",
		Tables: []*commonv1.TableSpec{
			{Name: "orders", Rules: []*commonv1.Rule{
				{Column: "status", Kind: &commonv1.Rule_OneOf{OneOf: &commonv1.OneOfRule{Values: []string{"new"}}}},
				{Column: "total", Kind: &commonv1.Rule_Range{Range: &commonv1.RangeRule{Min: "0"}}},
				{Column: "email", Name: "email_format", Severity: commonv1.Severity_SEVERITY_WARN, Kind: &commonv1.Rule_Regex{Regex: &commonv1.RegexRule{Pattern: "@"}}},
				{Column: "order_no", Kind: &commonv1.Rule_Unique{Unique: &commonv1.UniqueRule{}}},
			}, Filters: []*commonv1.RowFilter{{When: "test", Reason: "test orders"}}},
			{Name: "customers"},
		},
		Thresholds: thresholds,
	}
}

func dryRunAnswer(ok bool, problems ...*orchestratorv1.Problem) *orchestratorv1.DryRunResponse {
	return &orchestratorv1.DryRunResponse{
		Ok: ok, SpecHash: "abc123", Problems: problems,
		Tables: []*orchestratorv1.DryRunTable{
			{Table: "orders", Ok: ok, Counts: &commonv1.Counts{Extracted: 10, Loaded: 6, Quarantined: 3, Filtered: 1, Warned: 2},
				Rules: []*orchestratorv1.RuleOutcome{
					{Rule: "cast", Severity: "error", Rows: 2, Examples: []*orchestratorv1.RejectExample{
						{SourceRef: "line 4", Column: "total", Reason: `cannot cast "a|b" to numeric`, Raw: "a|b"},
						{SourceRef: "line 5", Column: "total", Reason: "cannot cast", Raw: "<script>"},
					}},
					{Rule: "email_format", Severity: "warn", Rows: 2, Examples: []*orchestratorv1.RejectExample{{SourceRef: "line 7", Column: "email", Reason: "no @"}}},
					{Rule: "one_of", Severity: "error", Rows: 1, Examples: []*orchestratorv1.RejectExample{{SourceRef: "line 9", Column: "status", Reason: `column status: "lost?" is not one of [new]`}}},
				},
				Filtered: []*orchestratorv1.FilterCount{{Reason: "test orders", Count: 1}},
				Columns:  []string{"id", "note"},
				Rows: []*orchestratorv1.SampleRow{{SourceRef: "line 2", Values: []*orchestratorv1.NullableText{
					{Text: "1"}, {Text: "a | b\nc"}}}, {SourceRef: "line 3", Values: []*orchestratorv1.NullableText{{Text: "2"}, {Null: true}}}},
			},
			{Table: "customers", Ok: true, Counts: &commonv1.Counts{Extracted: 4, Loaded: 4}},
		},
	}
}

// TestValidationJUnit: the JUnit XML of spec checks and dry runs, read
// back as a CI reporter would.
func TestValidationJUnit(t *testing.T) {
	tests := []struct {
		name     string
		v        *validation
		failures int
		want     map[string]string // suite/case → outcome prefix
		absent   []string
	}{
		{
			name: "spec check with a broken column",
			v: &validation{spec: rulesSpec(), res: fromValidate(&orchestratorv1.ValidateSpecResponse{
				SpecHash: "abc123",
				Tables: []*orchestratorv1.TableCheck{
					{Table: "orders", Problems: []*orchestratorv1.Problem{{Table: "orders", Field: "tables[0].columns[2].source", Column: "total", Message: `unknown source column "amout"`}}},
					{Table: "customers", Ok: true},
				},
			})},
			failures: 1,
			want: map[string]string{
				"orders/spec":    `fail: tables[0].columns[2].source: unknown source column "amout" (column total)`,
				"customers/spec": "pass",
				"job/spec":       "pass",
			},
			absent: []string{"orders/rule cast", "orders/filters", "job/thresholds"},
		},
		{
			name:     "dry run without thresholds: quarantined rows fail their rules",
			v:        &validation{spec: rulesSpec(), dryRun: true, res: dryRunAnswer(false)},
			failures: 2,
			want: map[string]string{
				"orders/spec":              "pass",
				"orders/rule one_of":       "fail: 1 row quarantined by rule one_of",
				"orders/rule range":        "pass",
				"orders/rule email_format": "pass",
				"orders/rule unique":       "skip",
				"orders/rule cast":         "fail: 2 rows quarantined by rule cast",
				"orders/filters":           "pass",
				"customers/spec":           "pass",
				"job/spec":                 "pass",
			},
			absent: []string{"orders/thresholds", "job/thresholds"},
		},
		{
			name: "dry run with thresholds that allow the rows",
			v: &validation{spec: rulesSpec(&commonv1.Threshold{MaxRatio: ptr(0.5)}), dryRun: true,
				res: func() *orchestratorv1.DryRunResponse { r := dryRunAnswer(true); return r }()},
			failures: 0,
			want: map[string]string{
				"orders/rule one_of": "pass",
				"orders/rule cast":   "pass",
				"job/thresholds":     "pass",
			},
			absent: []string{"orders/thresholds"},
		},
		{
			name: "dry run with a table threshold passed",
			v: &validation{spec: rulesSpec(&commonv1.Threshold{Table: "orders", MaxRows: ptr(int64(0))}), dryRun: true,
				res: dryRunAnswer(false, &orchestratorv1.Problem{Table: "orders", Field: "thresholds[0]", Message: "3 rows quarantined in table orders, more than the threshold of 0"})},
			failures: 1,
			want: map[string]string{
				"orders/thresholds": "fail: thresholds[0]: 3 rows quarantined in table orders",
				"orders/rule cast":  "pass",
				"job/spec":          "pass",
			},
			absent: []string{"job/thresholds"},
		},
		{
			name: "dry run of a job without a spec",
			v: &validation{spec: nil, dryRun: true, res: &orchestratorv1.DryRunResponse{
				Problems: []*orchestratorv1.Problem{{Field: "spec", Message: "is required"}}}},
			failures: 1,
			want:     map[string]string{"job/spec": "fail: spec: is required"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tc.v.junit(&b); err != nil {
				t.Fatal(err)
			}
			p := parseJUnit(t, b.Bytes())
			got := p.outcomes()
			if p.Failures != tc.failures {
				t.Errorf("failures = %d, want %d: %v", p.Failures, tc.failures, got)
			}
			sum := 0
			for _, s := range p.Suites {
				sum += s.Tests
				if s.Tests != len(s.Cases) {
					t.Errorf("suite %s: tests=%d but %d cases", s.Name, s.Tests, len(s.Cases))
				}
			}
			if sum != p.Tests {
				t.Errorf("testsuites tests=%d, suites sum to %d", p.Tests, sum)
			}
			if last := p.Suites[len(p.Suites)-1].Name; last != jobGroup {
				t.Errorf("last suite %q, want the job suite", last)
			}
			for k, want := range tc.want {
				if !strings.HasPrefix(got[k], want) {
					t.Errorf("%s = %q, want %q…", k, got[k], want)
				}
			}
			for _, k := range tc.absent {
				if _, ok := got[k]; ok {
					t.Errorf("unexpected case %s", k)
				}
			}
		})
	}
}

// TestValidationJUnitDetails: failure text lists the examples; a warn rule
// passes with a note; classnames say what ran.
func TestValidationJUnitDetails(t *testing.T) {
	v := &validation{spec: rulesSpec(), dryRun: true, res: dryRunAnswer(false)}
	var b bytes.Buffer
	if err := v.junit(&b); err != nil {
		t.Fatal(err)
	}
	p := parseJUnit(t, b.Bytes())
	for _, s := range p.Suites {
		for _, c := range s.Cases {
			if c.Classname != "dry-run."+s.Name {
				t.Errorf("%s/%s classname %q", s.Name, c.Name, c.Classname)
			}
			switch s.Name + "/" + c.Name {
			case "orders/rule cast":
				if c.Failure.Type != "dry-run" || !strings.Contains(c.Failure.Text, `line 4, column total: cannot cast "a|b" to numeric (raw "a|b")`) ||
					!strings.Contains(c.Failure.Text, `(raw "<script>")`) {
					t.Errorf("cast failure: %+v", c.Failure)
				}
			case "orders/rule email_format":
				if !strings.Contains(c.SystemOut, "2 rows would load with a warning") || !strings.Contains(c.SystemOut, "line 7, column email: no @") {
					t.Errorf("warn rule system-out: %q", c.SystemOut)
				}
			case "orders/rule unique":
				if !strings.Contains(c.Skipped.Message, "job runs") {
					t.Errorf("unique skipped: %+v", c.Skipped)
				}
			case "orders/filters":
				if !strings.Contains(c.SystemOut, "test orders: 1") {
					t.Errorf("filters: %q", c.SystemOut)
				}
			}
		}
	}
	// The raw XML escapes what the data holds.
	if strings.Contains(b.String(), "<script>") {
		t.Error("raw <script> in the XML")
	}
}

// TestValidationMarkdown: the report names tables, columns, rules and the
// spec hash, and data cannot break its tables.
func TestValidationMarkdown(t *testing.T) {
	tests := []struct {
		name    string
		v       *validation
		want    []string
		notWant []string
	}{
		{
			name: "spec check",
			v: &validation{spec: rulesSpec(), res: fromValidate(&orchestratorv1.ValidateSpecResponse{
				SpecHash: "abc123",
				Problems: []*orchestratorv1.Problem{{Field: "target.schema", Message: "schema shop does not exist"}},
				Tables: []*orchestratorv1.TableCheck{
					{Table: "orders", Problems: []*orchestratorv1.Problem{{Field: "tables[0].columns[2].source", Column: "total", Message: `unknown source column "amout"`}}},
					{Table: "customers", Ok: true},
				},
			})},
			want: []string{"## ❌ Spec check failed: shop &lt;&&gt; \"orders\"", "`abc123`", "| orders | ❌ |", "| customers | ✅ |",
				"- `target.schema`: schema shop does not exist", "### ❌ Table `orders`",
				"- `tables[0].columns[2].source`: unknown source column \"amout\" (column `total`)"},
			notWant: []string{"Rejects by rule", "### ✅ Table `customers`"},
		},
		{
			name: "dry run",
			v:    &validation{spec: rulesSpec(), dryRun: true, sample: 100, res: dryRunAnswer(false)},
			want: []string{"## ❌ Dry run failed", "the first 100 source rows", "| orders | ❌ | 10 | 6 | 3 | 1 | 2 |", "| customers | ✅ | 4 | 4 | 0 | 0 | 0 |",
				"| cast | error | 2 | line 4, total: cannot cast \"a\\|b\" to numeric<br>line 5, total: cannot cast |",
				"| one_of | error | 1 | line 9, status: \"lost?\" is not one of [new] |",
				"- test orders: 1 row", "| source | id | note |", "| line 2 | 1 | a \\| b c |", "| line 3 | 2 | *null* |"},
		},
		{
			name: "passing dry run",
			v:    &validation{spec: rulesSpec(&commonv1.Threshold{MaxRatio: ptr(0.5)}), dryRun: true, res: dryRunAnswer(true)},
			want: []string{"## ✅ Dry run passed", "all source rows"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			tc.v.markdown(&b)
			md := b.String()
			for _, w := range tc.want {
				if !strings.Contains(md, w) {
					t.Errorf("report lacks %q:\n%s", w, md)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(md, w) {
					t.Errorf("report has %q:\n%s", w, md)
				}
			}
		})
	}
}

func reconciliationAnswer() *orchestratorv1.Reconciliation {
	return &orchestratorv1.Reconciliation{JobId: "job-1", DurationSeconds: 1.25, Tables: []*commonv1.TableReconciliation{
		{TargetTable: "shop.orders", Tables: []string{"orders"}, ExpectedRows: 100, TargetRows: 100,
			Aggregates: []*commonv1.AggregateCheck{
				{Name: "sales per store", Groups: 3, Differences: []*commonv1.GroupDifference{{Group: []string{"7", "2023-01-05"}, Measure: "total", Source: "10.00", Target: "10.01"}}},
				{Name: "orders", Ok: true, Groups: 1},
			},
			Rows: &commonv1.RowCheck{Rows: 100, Ranges: 8, RangesDiffering: 2, Truncated: true, Differences: []*commonv1.RowDifference{
				{Key: "id=17", Kind: "missing", Source: "(17, 5.00)"},
				{Key: "id=18", Kind: "changed", Source: "(18, 5.00)", Target: "(18, 5.01)"},
			}}},
		{TargetTable: "shop.customers", Tables: []string{"crm", "pos"}, Ok: true, ExpectedRows: 5, TargetRows: 5,
			Rows: &commonv1.RowCheck{Ok: true, Skipped: "the table is merged from several systems"}},
		{TargetTable: "shop.items", Tables: []string{"items"}, ExpectedRows: 5, TargetRows: 4,
			Rows: &commonv1.RowCheck{Ok: true, Rows: 4, Ranges: 1}},
	}}
}

func TestReconciliationReports(t *testing.T) {
	r := &reconciliation{rec: reconciliationAnswer()}
	var b bytes.Buffer
	if err := r.junit(&b); err != nil {
		t.Fatal(err)
	}
	p := parseJUnit(t, b.Bytes())
	got := p.outcomes()
	for k, want := range map[string]string{
		"shop.orders/counts":                    "pass",
		"shop.orders/aggregate sales per store": "fail: 3 groups compared, 1 differ",
		"shop.orders/aggregate orders":          "pass",
		"shop.orders/rows":                      "fail: 100 rows in 8 key ranges, 2 ranges differ, 2 differing keys listed (more not listed)",
		"shop.customers/counts":                 "pass",
		"shop.customers/rows":                   "skip",
		"shop.items/counts":                     "fail: expected 5 rows, target has 4",
		"shop.items/rows":                       "pass",
	} {
		if !strings.HasPrefix(got[k], want) {
			t.Errorf("%s = %q, want %q…", k, got[k], want)
		}
	}
	if p.Failures != 3 || len(p.Suites) != 3 {
		t.Errorf("failures %d suites %d: %v", p.Failures, len(p.Suites), got)
	}
	for _, s := range p.Suites {
		for _, c := range s.Cases {
			if s.Name == "shop.orders" && c.Name == "rows" && !strings.Contains(c.Failure.Text, "changed id=18: source (18, 5.00), target (18, 5.01)") {
				t.Errorf("rows failure text: %q", c.Failure.Text)
			}
		}
	}

	b.Reset()
	r.markdown(&b)
	md := b.String()
	for _, w := range []string{"## ❌ Reconciliation failed: job `job-1`", "| shop.orders | ❌ | orders | 100 | 100 | 8 | 2 |",
		"- ❌ Aggregate `sales per store`: 3 groups, 1 differ.", "| 7, 2023-01-05 | total | 10.00 | 10.01 |",
		"| missing | id=17 | (17, 5.00) | - |", "| changed | id=18 | (18, 5.00) | (18, 5.01) |", "More keys differ than are listed",
		"- Rows not compared: the table is merged from several systems.", "- Counts differ: the job loaded 5 rows, the target holds 4."} {
		if !strings.Contains(md, w) {
			t.Errorf("report lacks %q:\n%s", w, md)
		}
	}
}

// TestUsageErrors: bad command lines exit 2 with one line on stderr and
// never reach a server (the address is never dialled).
func TestUsageErrors(t *testing.T) {
	good := writeSpec(t, &commonv1.JobSpec{Name: "x"})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "usage:"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"validate"}, "--spec is required"},
		{[]string{"validate", "--spec", good, "--sample", "10"}, "--sample needs --dry-run"},
		{[]string{"validate", "--spec", good, "extra"}, "validate takes no arguments"},
		{[]string{"validate", "--spec", good, "--dry-run", "--sample", "-1"}, "--sample must not be negative"},
		{[]string{"validate", "--spec", good, "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"validate", "--spec", "/nonexistent/spec.json"}, "read spec"},
		{[]string{"validate", "--spec", tempFile(t, "bad.json", `{"tables": [{"nmae": "x"}]}`)}, "nmae"},
		{[]string{"reconcile"}, "want exactly one job id"},
		{[]string{"reconcile", "a", "b"}, "want exactly one job id"},
		{[]string{"reconcile", "a", "--max-differences", "5000"}, "--max-differences must be between 0 and 1000"},
		{[]string{"validate", "--spec", good, "--addr", ""}, "--addr must not be empty"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Run(context.Background(), tc.args, &out, &errb)
			if code != ExitUsage {
				t.Errorf("exit %d, want %d", code, ExitUsage)
			}
			if !strings.Contains(errb.String(), tc.want) {
				t.Errorf("stderr %q lacks %q", errb.String(), tc.want)
			}
			if tc.args != nil && (strings.Count(errb.String(), "\n") != 1 || !strings.HasPrefix(errb.String(), "cutoverctl: ")) {
				t.Errorf("stderr is not one line: %q", errb.String())
			}
			if out.Len() > 0 {
				t.Errorf("stdout: %q", out.String())
			}
		})
	}
}

// TestHelp: help is on stdout and exits 0.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"validate", "-h"}, {"reconcile", "--help"}} {
		var out, errb bytes.Buffer
		if code := Run(context.Background(), args, &out, &errb); code != ExitOK || !strings.Contains(out.String(), "cutoverctl validate --spec FILE") || errb.Len() > 0 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out.String(), errb.String())
		}
	}
}

// TestTokenMetadata: the token goes out as a bearer authorization header.
func TestTokenMetadata(t *testing.T) {
	for _, tc := range []struct {
		token string
		want  []string
	}{{"s3cret", []string{"Bearer s3cret"}}, {"", nil}} {
		c := &conn{token: tc.token}
		md, _ := metadata.FromOutgoingContext(c.outgoing(context.Background()))
		if got := md.Get("authorization"); strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("token %q: authorization %v, want %v", tc.token, got, tc.want)
		}
	}
}

func TestRootCause(t *testing.T) {
	for in, want := range map[string]string{
		`connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:1: connect: connection refused"`: "connection refused",
		`name resolver error: produced zero addresses`:                                                                 "produced zero addresses",
		`plain`: "plain",
	} {
		if got := rootCause(in); got != want {
			t.Errorf("rootCause(%q) = %q, want %q", in, got, want)
		}
	}
}
