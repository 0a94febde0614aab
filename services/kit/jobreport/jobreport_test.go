package jobreport

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"golang.org/x/net/html"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var (
	t0 = timestamppb.New(time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC))
	t1 = timestamppb.New(time.Date(2026, 3, 1, 9, 30, 12, 500_000_000, time.UTC))
)

// succeeded is a job that used every part of the report.
func succeeded() *orchestratorv1.JobReport {
	return &orchestratorv1.JobReport{
		JobId: "6f1c2a9e-0d1b-4c2a-9a57-3b8e2f41c001", Name: "pos merge", State: orchestratorv1.JobState_JOB_STATE_SUCCEEDED,
		Tables: []*orchestratorv1.TableReport{
			{Name: "customers_a", Source: "pos_a.csv", TargetTable: "public.customers",
				Counts: &commonv1.Counts{Extracted: 120, Loaded: 100, Quarantined: 5, Filtered: 3, MergedAway: 12, Warned: 2, Batches: 3},
				Rejects: []*orchestratorv1.RuleRejects{{Rule: "cast", Count: 4, Examples: []*orchestratorv1.RejectExample{
					{SourceRef: "line 4", Column: "amount", Reason: "line 4: amount: cannot cast \"abc\" to numeric", Raw: "abc"},
					{SourceRef: "line 9", Column: "amount", Reason: "amount: cannot cast \"1,5\" to numeric", Raw: "1,5"},
				}}, {Rule: "email", Count: 1, Examples: []*orchestratorv1.RejectExample{{SourceRef: "line 20", Column: "email", Reason: "not an e-mail address", Raw: "bob@"}}}},
				Warnings: []*orchestratorv1.RuleRejects{{Rule: "phone_format", Count: 2, Examples: []*orchestratorv1.RejectExample{
					{SourceRef: "line 30", Column: "phone", Reason: "line 30: phone: does not match ^1[0-9]{10}$", Raw: "12345"}}}},
				Filtered: []*orchestratorv1.FilterCount{{Reason: "test accounts", Count: 3}}},
			{Name: "customers_b", Source: "shop.customers", TargetTable: "public.customers",
				Counts: &commonv1.Counts{Extracted: 80, Loaded: 80, Batches: 1}},
		},
		Totals:          &commonv1.Counts{Extracted: 200, Loaded: 180, Quarantined: 5, Filtered: 3, MergedAway: 12, Warned: 2, Batches: 4},
		Balanced:        true,
		DurationSeconds: 12.5, RowsPerSecond: 16,
		TraceId: "4bf92f3577b34da6a3ce929d0e0e4736", TraceSink: "traces.jsonl",
		StartedAt: t0, FinishedAt: t1,
		Ddl:      []string{"CREATE SCHEMA IF NOT EXISTS \"public\"", "CREATE TABLE \"public\".\"customers\" (\n  \"id\" bigint PRIMARY KEY,\n  \"email\" text\n)"},
		SpecHash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		Merges: []*orchestratorv1.MergeReport{{TargetTable: "public.customers", MergedAway: 12,
			ByKey:        []*loaderv1.MergeCount{{Key: "email", Rows: 10}, {Key: "phone", Rows: 2}},
			FilledFields: 7, UnresolvedRefs: 1,
			Collisions: []*loaderv1.CollisionCount{{Column: "code", Rule: commonv1.CollisionRule_COLLISION_RULE_PREFIX_SYSTEM, Keys: 2, Rows: 4, Examples: []string{"A-17", "B-17"}}}}},
		Stages: []*orchestratorv1.StageTiming{
			{Stage: "extractor", Batches: 4, Seconds: 1.2, MaxBatchSeconds: 0.5},
			{Stage: "loader", Batches: 4, Seconds: 4, MaxBatchSeconds: 1.75},
			{Stage: "validator"},
		},
		Reconciliation: &orchestratorv1.Reconciliation{JobId: "6f1c2a9e-0d1b-4c2a-9a57-3b8e2f41c001", Ok: false, DurationSeconds: 0.75,
			Tables: []*commonv1.TableReconciliation{{
				TargetTable: "public.customers", Tables: []string{"customers_a", "customers_b"}, Ok: false, ExpectedRows: 180, TargetRows: 179,
				Aggregates: []*commonv1.AggregateCheck{
					{Name: "points per level", Ok: true, Groups: 3},
					{Name: "sales per store per day", Ok: false, Groups: 40, Differences: []*commonv1.GroupDifference{
						{Group: []string{"store 7", "2026-02-28"}, Measure: "sum(amount)", Source: "1200.50", Target: "1200.49"}}},
				},
				Rows: &commonv1.RowCheck{Ok: false, Rows: 180, Ranges: 16, RangesDiffering: 2, Truncated: true, Differences: []*commonv1.RowDifference{
					{Key: "id=4", Kind: "missing", Source: "(4, a@x.cn)"},
					{Key: "id=9", Kind: "changed", Source: "(9, 10.00)", Target: "(9, 10.01)"},
				}},
			}, {
				TargetTable: "public.orders", Tables: []string{"orders"}, Ok: true, ExpectedRows: 10, TargetRows: 10,
				Rows: &commonv1.RowCheck{Ok: true, Skipped: "staged table: rows compared after finalize only"},
			}}},
	}
}

const long = "0123456789abcdefghijklmnopqrstuvwxyz"

// hostile puts markup, table breakers, line breaks, fences, control and
// bidi characters and very long values everywhere text comes from data.
func hostile() *orchestratorv1.JobReport {
	evil := "<script>alert(1)</script> | **bold** [x](javascript:alert(1)) <img src=x onerror=alert(1)> &lt;b&gt; `tick` ~~s~~ $x$ _u_\n# heading\n- item"
	longRaw := strings.Repeat(long, 30)
	return &orchestratorv1.JobReport{
		JobId: "job|<b>1</b>", Name: "evil <script>alert('name')</script>\n## not a heading", State: orchestratorv1.JobState_JOB_STATE_FAILED,
		Error: "partition 3: loader: ```\n</details><script>alert(2)</script>\n````` end",
		Tables: []*orchestratorv1.TableReport{{Name: "t|1\nx", Source: "a.csv</td><td>", TargetTable: "public.\"t|1\"",
			Counts: &commonv1.Counts{Extracted: 10, Loaded: 6, Quarantined: 3, Batches: 1},
			Rejects: []*orchestratorv1.RuleRejects{{Rule: "<b>rule</b>|x", Count: 3, Examples: []*orchestratorv1.RejectExample{
				{SourceRef: "line 2", Column: "v|\n", Reason: "line 2: " + evil, Raw: longRaw},
				{SourceRef: "line\r\n3", Column: "v", Reason: "bell\a esc\x1b[31m rtl\u202eevil nul\x00 bad\xff", Raw: "\t|\n|"},
			}}},
			Warnings: []*orchestratorv1.RuleRejects{{Rule: evil, Count: 1, Examples: []*orchestratorv1.RejectExample{{SourceRef: evil, Column: evil, Reason: evil, Raw: evil}}}},
			Filtered: []*orchestratorv1.FilterCount{{Reason: evil, Count: 1}}}},
		Totals:   &commonv1.Counts{Extracted: 10, Loaded: 6, Quarantined: 3, Batches: 1},
		Balanced: false,
		TraceId:  "`trace`", TraceSink: "/tmp/x`` y",
		Ddl:      []string{"CREATE TABLE \"```\" (\"</details>\" text)", "COMMENT ON TABLE x IS '<script>'"},
		SpecHash: "``",
		Stages:   []*orchestratorv1.StageTiming{{Stage: "<i>loader</i>", Batches: 1, Seconds: 0.25, MaxBatchSeconds: 0.25}},
		Reconciliation: &orchestratorv1.Reconciliation{Ok: false, Tables: []*commonv1.TableReconciliation{{
			TargetTable: "public.<t>", Tables: []string{"a|b"}, ExpectedRows: 1, TargetRows: 2,
			Aggregates: []*commonv1.AggregateCheck{{Name: "sum|x", Groups: 1, Differences: []*commonv1.GroupDifference{
				{Group: []string{"<g>", "|"}, Measure: "sum(<x>)", Source: evil, Target: longRaw}}}},
			Rows: &commonv1.RowCheck{Rows: 2, Ranges: 1, RangesDiffering: 1, Differences: []*commonv1.RowDifference{
				{Key: "id=<1>|2", Kind: "extra", Target: evil}}},
		}}},
	}
}

// running is a job that has barely started: almost every field unset.
func running() *orchestratorv1.JobReport {
	return &orchestratorv1.JobReport{JobId: "j-2", State: orchestratorv1.JobState_JOB_STATE_RUNNING}
}

type renderer struct {
	ext    string
	render func(io.Writer, *orchestratorv1.JobReport) error
}

var renderers = []renderer{{"md", Markdown}, {"html", HTML}}

var cases = []struct {
	name   string
	report func() *orchestratorv1.JobReport
	// Text each form must contain (after its own escaping: plain words).
	want []string
}{
	{"succeeded", succeeded, []string{"pos merge", "6f1c2a9e-0d1b-4c2a-9a57-3b8e2f41c001", "balanced", "sales per store per day", "store 7, 2026-02-28",
		"1200.49", "id=9", "email 10, phone 2", "prefix system", "4bf92f3577b34da6a3ce929d0e0e4736", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		"test accounts", "Warnings by rule", "does not match", "2 statements run on the target", "staged table: rows compared after finalize only", "1.75 s", "started 2026-03-01 09:30:00 UTC"}},
	{"hostile", hostile, []string{"NOT BALANCED", "FAILED", "…"}},
	{"running", running, []string{"j-2", "RUNNING", "⏳", "extracted 0 = loaded 0"}},
}

func TestGolden(t *testing.T) {
	for _, tc := range cases {
		for _, rd := range renderers {
			t.Run(tc.name+"."+rd.ext, func(t *testing.T) {
				var out bytes.Buffer
				if err := rd.render(&out, tc.report()); err != nil {
					t.Fatal(err)
				}
				var again bytes.Buffer
				if err := rd.render(&again, tc.report()); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(out.Bytes(), again.Bytes()) {
					t.Fatal("two renderings of the same report differ")
				}
				for _, w := range tc.want {
					if !strings.Contains(out.String(), w) {
						t.Errorf("output lacks %q", w)
					}
				}
				golden := filepath.Join("testdata", tc.name+"."+rd.ext)
				if *update {
					if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test -update to create it)", err)
				}
				if !bytes.Equal(out.Bytes(), want) {
					t.Errorf("output differs from %s (go test -update rewrites it); got:\n%s", golden, out.String())
				}
			})
		}
	}
}

// mdLinePrefixes are how the Markdown renderer starts its lines; report
// text never starts one, so it cannot open a heading, list or quote.
var mdLinePrefixes = []string{"# ", "## ", "### ", "| ", "|---", "**Error:**", "**Accounting:**", "Job ", "Examples:", "From table specs:",
	"Rows: ", "Row check ", "More rows differ", "<details>", "<summary>", "</details>", "<pre>", "---", "Spec: ", "Trace: "}

var (
	// A character that needs escaping, not preceded by a backslash and
	// not part of an entity. (Pairs like \\ and entities are consumed
	// first so \\| counts as a bare |.)
	mdBare    = regexp.MustCompile(`\\.|&(?:lt|gt|amp);|[|<>*_\[\]&~$` + "`" + `]`)
	ownTag    = regexp.MustCompile(`^</?(details|summary)>`)
	ownCode   = regexp.MustCompile(`</?code>`)
	reconLine = regexp.MustCompile(`^\d+ target tables? reconciled in `)
)

// TestMarkdownStructure: whatever the report says, the Markdown has only
// the structure the renderer made: known line starts, <pre> blocks that
// close where they were meant to and hold no markup, table rows with as
// many cells as their header, and no unescaped markup character.
func TestMarkdownStructure(t *testing.T) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := Markdown(&out, tc.report()); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			inPre, cells := false, 0
			for i, line := range lines {
				if inPre {
					if line == "</pre>" {
						inPre = false
					} else if strings.ContainsAny(line, "<>") {
						t.Errorf("line %d in <pre> has markup: %q", i+1, line)
					}
					continue
				}
				if line == "<pre>" {
					inPre = true
					continue
				}
				if line == "" || reconLine.MatchString(line) {
					cells = 0
					continue
				}
				known := false
				for _, p := range mdLinePrefixes {
					known = known || strings.HasPrefix(line, p)
				}
				if !known {
					t.Errorf("line %d starts with report text: %q", i+1, line)
				}
				if ownTag.MatchString(line) {
					continue
				}
				text := line
				// Our own markup: bold labels, <code>, table pipes.
				text = ownCode.ReplaceAllString(text, "")
				text = strings.ReplaceAll(text, "**", "")
				table := strings.HasPrefix(line, "|")
				for _, m := range mdBare.FindAllString(text, -1) {
					if !strings.HasPrefix(m, `\`) && !(len(m) > 1 && m[0] == '&') && !(table && m == "|") {
						t.Errorf("line %d has a bare %q: %q", i+1, m, line)
						break
					}
				}
				if strings.HasPrefix(line, "| ") || strings.HasPrefix(line, "|---") {
					n := countBarePipes(line)
					if cells == 0 {
						cells = n
					} else if n != cells {
						t.Errorf("line %d has %d cell borders, its header %d: %q", i+1, n, cells, line)
					}
				}
			}
			if inPre {
				t.Error("<pre> never closed")
			}
			if strings.Contains(out.String(), strings.Repeat(long, 6)) {
				t.Error("a long value came through uncut")
			}
		})
	}
}

func countBarePipes(line string) int {
	n := 0
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '\\':
			i++
		case '|':
			n++
		}
	}
	return n
}

// allowed is every element and attribute the page is made of.
var allowed = map[string][]string{
	"html": {"lang"}, "head": nil, "meta": {"charset", "name", "content"}, "title": nil, "style": nil, "body": nil,
	"header": nil, "h1": nil, "h2": nil, "h3": nil, "p": {"class"}, "code": nil, "pre": {"class"}, "strong": nil, "span": {"class"},
	"table": nil, "thead": nil, "tbody": nil, "tr": {"class"}, "th": {"class"}, "td": {"class"}, "details": nil, "summary": nil, "br": nil,
}

// TestHTMLStructure parses the page: only the page's own elements and
// attributes, every one closed, nothing loaded from elsewhere.
func TestHTMLStructure(t *testing.T) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := HTML(&out, tc.report()); err != nil {
				t.Fatal(err)
			}
			z := html.NewTokenizer(bytes.NewReader(out.Bytes()))
			var open []string
			for {
				tt := z.Next()
				if tt == html.ErrorToken {
					if !errors.Is(z.Err(), io.EOF) {
						t.Fatal(z.Err())
					}
					break
				}
				tok := z.Token()
				switch tt {
				case html.StartTagToken, html.SelfClosingTagToken:
					attrs, ok := allowed[tok.Data]
					if !ok {
						t.Errorf("element <%s> is not the page's own", tok.Data)
					}
					for _, a := range tok.Attr {
						found := false
						for _, name := range attrs {
							found = found || a.Key == name
						}
						if !found {
							t.Errorf("<%s %s=%q> is not the page's own", tok.Data, a.Key, a.Val)
						}
					}
					if tt == html.StartTagToken && tok.Data != "meta" && tok.Data != "br" {
						open = append(open, tok.Data)
					}
				case html.TextToken:
					if len(open) > 0 && open[len(open)-1] == "style" && (strings.Contains(tok.Data, "url(") || strings.Contains(tok.Data, "@import")) {
						t.Error("the style sheet loads something from elsewhere")
					}
				case html.EndTagToken:
					if len(open) == 0 || open[len(open)-1] != tok.Data {
						t.Fatalf("</%s> closes %v", tok.Data, open)
					}
					open = open[:len(open)-1]
				}
			}
			if len(open) > 0 {
				t.Errorf("left open: %v", open)
			}
			if strings.Contains(out.String(), strings.Repeat(long, 6)) {
				t.Error("a long value came through uncut")
			}
		})
	}
}

func TestClip(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"eleven runes", 10, "eleven ru…"},
		{"汉字汉字汉字", 4, "汉字汉…"},
		{"a\r\nb\tc\x00d\u202ee", 20, "a\nb c\uFFFDd\uFFFDe"},
		{"bad\xffutf8", 20, "bad\uFFFDutf8"},
	}
	for _, tt := range tests {
		if got := clip(tt.in, tt.max); got != tt.want {
			t.Errorf("clip(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestErrors(t *testing.T) {
	for _, rd := range renderers {
		if err := rd.render(io.Discard, nil); err == nil {
			t.Errorf("%s: no error for a nil report", rd.ext)
		}
		if err := rd.render(failingWriter{}, succeeded()); err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("%s: write error = %v, want disk full", rd.ext, err)
		}
	}
}

// everywhere puts s in every field of a report that comes from data, the
// spec or an error.
func everywhere(s string) *orchestratorv1.JobReport {
	ex := []*orchestratorv1.RejectExample{{SourceRef: s, Column: s, Reason: s, Raw: s}}
	return &orchestratorv1.JobReport{
		JobId: s, Name: s, State: orchestratorv1.JobState_JOB_STATE_FAILED, Error: s,
		Tables: []*orchestratorv1.TableReport{{Name: s, Source: s, TargetTable: s,
			Counts:   &commonv1.Counts{Extracted: 3, Loaded: 1, Quarantined: 1, Filtered: 1, Warned: 1, Batches: 1},
			Rejects:  []*orchestratorv1.RuleRejects{{Rule: s, Count: 1, Examples: ex}},
			Warnings: []*orchestratorv1.RuleRejects{{Rule: s, Count: 1, Examples: ex}},
			Filtered: []*orchestratorv1.FilterCount{{Reason: s, Count: 1}}}},
		Totals:  &commonv1.Counts{Extracted: 3, Loaded: 1, Quarantined: 1, Filtered: 1, Warned: 1, Batches: 1},
		TraceId: s, TraceSink: s, SpecHash: s, Ddl: []string{s},
		StartedAt: t0, FinishedAt: t1,
		Merges: []*orchestratorv1.MergeReport{{TargetTable: s, ByKey: []*loaderv1.MergeCount{{Key: s, Rows: 1}},
			Collisions: []*loaderv1.CollisionCount{{Column: s, Keys: 1, Rows: 2, Examples: []string{s, s}}}}},
		Stages:   []*orchestratorv1.StageTiming{{Stage: s, Batches: 1, Seconds: 1}},
		Rollback: []*loaderv1.TableRollback{{Table: s, Deleted: 1}},
		Reconciliation: &orchestratorv1.Reconciliation{Tables: []*commonv1.TableReconciliation{{
			TargetTable: s, Tables: []string{s}, ExpectedRows: 1, TargetRows: 1,
			Aggregates: []*commonv1.AggregateCheck{{Name: s, Groups: 1, Differences: []*commonv1.GroupDifference{
				{Group: []string{s}, Measure: s, Source: s, Target: s}}}},
			Rows: &commonv1.RowCheck{Rows: 1, Ranges: 1, Differences: []*commonv1.RowDifference{{Key: s, Kind: s, Source: s, Target: s}}},
		}}},
	}
}

var (
	// ownTags are the only tags the Markdown renderer writes.
	ownTags       = regexp.MustCompile(`</?(code|pre|details|summary)>`)
	backslashPair = regexp.MustCompile(`\\.`)
)

// TestMarkdownHostileInput: markup, links, pipes, backticks and line
// breaks in any field come out as text: no tag but the renderer's own, no
// link, and every table row keeps its header's number of cells.
func TestMarkdownHostileInput(t *testing.T) {
	tests := []struct {
		name, in string
		want     string // how the input must read (escaped) somewhere
	}{
		{"script", "<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"},
		{"script upper", "<SCRIPT SRC=//evil.example/x.js></SCRIPT>", "&lt;SCRIPT SRC=//evil.example/x.js&gt;"},
		{"img", "<img src=x onerror=alert(1)//>", "&lt;img src=x onerror=alert(1)//&gt;"},
		{"link", "[x](javascript:alert(1))", `\[x\](javascript:alert(1))`},
		{"image", "![x](javascript:alert(1))", `!\[x\](javascript:alert(1))`},
		{"autolink", "<javascript:alert(1)>", "&lt;javascript:alert(1)&gt;"},
		{"pipes", "a|b||c", `a\|b\|\|c`},
		{"backticks", "`x` ``` ````", "\\`x\\`"},
		{"newlines", "one\ntwo\n| x | y |\n# h", `one ↵ two ↵ \| x \| y \| ↵ # h`},
		{"entity", "&lt;script&gt;", "&amp;lt;script&amp;gt;"},
		{"close pre", "</pre><script>alert(1)</script>", "&lt;/pre&gt;"},
		{"comment", "<!-- swallow the rest", "&lt;!-- swallow"},
		{"emphasis", "**b** _i_ ~~s~~ $m$", `\*\*b\*\* \_i\_ \~\~s\~\~ \$m\$`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := Markdown(&out, everywhere(tt.in)); err != nil {
				t.Fatal(err)
			}
			md := out.String()
			// Backslash pairs are escaped characters, not markup.
			low := strings.ToLower(backslashPair.ReplaceAllString(md, "~"))
			for _, bad := range []string{"<script", "<img", "](javascript:", "<javascript:", "<!--", "</pre><"} {
				if strings.Contains(low, bad) {
					t.Errorf("output holds raw %q:\n%s", bad, md)
				}
			}
			if rest := ownTags.ReplaceAllString(md, ""); strings.ContainsAny(rest, "<>") {
				i := strings.IndexAny(rest, "<>")
				t.Errorf("output holds a '<' or '>' of its input: …%s…", rest[max(0, i-40):min(len(rest), i+40)])
			}
			if !strings.Contains(md, tt.want) {
				t.Errorf("output lacks %q:\n%s", tt.want, md)
			}
			cells, tables, inPre := 0, 0, false
			for i, line := range strings.Split(md, "\n") {
				// <pre> holds text, not Markdown.
				if line == "<pre>" || line == "</pre>" {
					inPre = line == "<pre>"
				}
				if inPre || !strings.HasPrefix(line, "|") {
					cells = 0
					continue
				}
				n := countBarePipes(line)
				switch {
				case cells == 0:
					cells = n
					tables++
				case n != cells:
					t.Errorf("line %d has %d cell borders, its header %d: %q", i+1, n, cells, line)
				}
			}
			// Volume, rejects (+examples), warnings (+examples), filtered,
			// merges, collisions, stages, aggregates, group and row diffs,
			// rollback.
			if tables != 13 {
				t.Errorf("%d tables, want 13:\n%s", tables, md)
			}
		})
	}
}
