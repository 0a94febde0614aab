// Package progress shows a job's progress as WatchJob streams it, for
// `cutoverctl watch` and `cutover run` alike: on a terminal a bar per table
// redrawn in place; otherwise (a log, a pipe, CI) plain lines, printed only
// for what changed and at most once a second, so a long job does not flood
// the log.
package progress

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
)

// plainEvery paces plain lines; a change of the job's state is printed at
// once, so the first and the final state are never skipped.
const plainEvery = time.Second

// barWidth is the width of a table's bar, in cells.
const barWidth = 20

// Printer draws successive WatchJob answers of one job to one writer. It
// is not safe for concurrent use.
type Printer struct {
	w     io.Writer
	tty   bool
	width int              // tty: lines are cut to it so that redraws stay aligned
	now   func() time.Time // a test's clock

	drawn   int                              // tty: lines of the last frame, drawn over by the next
	state   orchestratorv1.JobState          // of the last frame shown
	shownAt time.Time                        // plain: when the last frame was printed
	lines   map[string]string                // plain: last line printed per table, "" for the job
	pending *orchestratorv1.WatchJobResponse // plain: an answer held back by the pace
}

// New draws to w: bars redrawn in place when tty, plain lines otherwise.
func New(w io.Writer, tty bool) *Printer {
	width := 80 // the usual terminal; COLUMNS, when exported, says better
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 20 {
		width = n
	}
	return &Printer{w: w, tty: tty, width: width, now: time.Now, lines: map[string]string{}}
}

// Terminal says whether w is a terminal that takes cursor movements: a
// character device, and TERM is not "dumb".
func Terminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("TERM") == "dumb" {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Update shows m. Plain lines held back by the pace are shown by the next
// Update or by Flush.
func (p *Printer) Update(m *orchestratorv1.WatchJobResponse) {
	if p.tty {
		p.redraw(m)
		return
	}
	state := m.GetJob().GetState()
	if state == p.state && p.now().Sub(p.shownAt) < plainEvery {
		p.pending = m
		return
	}
	p.print(m)
}

// Flush shows the last answer if the pace held it back.
func (p *Printer) Flush() {
	if p.pending != nil {
		p.print(p.pending)
	}
}

// print writes the lines that changed: the tables first, then the job, so
// that the last line printed is always the job's state.
func (p *Printer) print(m *orchestratorv1.WatchJobResponse) {
	p.pending = nil
	p.state, p.shownAt = m.GetJob().GetState(), p.now()
	stamp := p.shownAt.Format("15:04:05")
	for _, t := range m.GetTables() {
		line := "table " + t.GetTable() + ": " + partitions(t.GetPartitionsDone(), t.GetPartitionsTotal()) + ", " + counts(t.GetCounts(), false)
		if p.lines["t:"+t.GetTable()] != line {
			p.lines["t:"+t.GetTable()] = line
			fmt.Fprintf(p.w, "%s %s\n", stamp, line)
		}
	}
	line := JobLine(m.GetJob())
	if p.lines[""] != line {
		p.lines[""] = line
		fmt.Fprintf(p.w, "%s %s\n", stamp, line)
	}
}

// JobLine is the job in one line: state, partitions, counts and, once the
// job has failed, why.
func JobLine(j *orchestratorv1.Job) string {
	line := "job " + stateName(j.GetState()) + ": " + partitions(j.GetPartitionsDone(), j.GetPartitionsTotal()) + ", " + counts(j.GetCounts(), false)
	if e := j.GetError(); e != "" {
		line += "; error: " + clip(strings.Join(strings.Fields(e), " "), 300)
	}
	return line
}

// redraw moves the cursor back over the last frame and draws m over it.
func (p *Printer) redraw(m *orchestratorv1.WatchJobResponse) {
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\r\x1b[%dA", p.drawn)
	}
	b.WriteString("\x1b[J") // clear what is below: the frame may have fewer lines
	lines := p.frame(m)
	for _, l := range lines {
		b.WriteString(clip(l, p.width-1))
		b.WriteByte('\n')
	}
	io.WriteString(p.w, b.String())
	p.drawn = len(lines)
	p.state = m.GetJob().GetState()
}

// frame is the terminal picture: the job, then a bar per table (rows read
// against the source's estimate where it gave one, else partitions done of
// planned) with its rows.
func (p *Printer) frame(m *orchestratorv1.WatchJobResponse) []string {
	j := m.GetJob()
	head := fmt.Sprintf("job %s  %s  %s", stateName(j.GetState()), partitions(j.GetPartitionsDone(), j.GetPartitionsTotal()), counts(j.GetCounts(), true))
	if r := p.rate(j); r != "" {
		head += "  " + r
	}
	lines := []string{head}
	if e := j.GetError(); e != "" {
		lines = append(lines, "  error: "+strings.Join(strings.Fields(e), " "))
	}
	name := 0
	for _, t := range m.GetTables() {
		name = max(name, min(utf8.RuneCountInString(t.GetTable()), 24))
	}
	for _, t := range m.GetTables() {
		// Extracted is left to the job's line: the rest fits 80 columns.
		c := t.GetCounts()
		line := fmt.Sprintf("  %-*s %s %d/%d  loaded %s, quarantined %s", name, clip(t.GetTable(), 24),
			tableBar(t), t.GetPartitionsDone(), t.GetPartitionsTotal(), group(c.GetLoaded()), group(c.GetQuarantined()))
		if e := t.GetEstimatedRows(); e > 0 {
			line += fmt.Sprintf(", read %s of ~%s", group(c.GetExtracted()), group(e))
		}
		if c.GetFiltered() > 0 || c.GetMergedAway() > 0 {
			line += fmt.Sprintf(", filtered %s, merged away %s", group(c.GetFiltered()), group(c.GetMergedAway()))
		}
		lines = append(lines, line)
	}
	return lines
}

// rate is the rows read per second since the job started, up to its end.
func (p *Printer) rate(j *orchestratorv1.Job) string {
	if j.GetStartedAt() == nil {
		return ""
	}
	end := p.now()
	if j.GetFinishedAt() != nil {
		end = j.GetFinishedAt().AsTime()
	}
	secs := end.Sub(j.GetStartedAt().AsTime()).Seconds()
	if secs < 1 {
		return ""
	}
	return group(int64(float64(j.GetCounts().GetExtracted())/secs)) + " rows/s"
}

// tableBar is a table's bar: rows read of the source's estimate (an
// estimate: held under 100% until every partition is done), or partitions
// done of planned when the source gave none.
func tableBar(t *orchestratorv1.TableProgress) string {
	done, total := t.GetPartitionsDone(), t.GetPartitionsTotal()
	est := t.GetEstimatedRows()
	if est <= 0 || total <= 0 || done == total {
		return bar(done, total)
	}
	pct := min(t.GetCounts().GetExtracted()*100/est, 99)
	return bar(int32(pct), 100)
}

// bar is "[#####-----] 50%"; "[          ]   -" before partitions are planned.
func bar(done, total int32) string {
	if total <= 0 {
		return "[" + strings.Repeat(" ", barWidth) + "]    -"
	}
	full := int(int64(done) * barWidth / int64(total))
	return fmt.Sprintf("[%s%s] %3d%%", strings.Repeat("#", full), strings.Repeat("-", barWidth-full), int64(done)*100/int64(total))
}

func partitions(done, total int32) string {
	return fmt.Sprintf("partitions %d/%d", done, total)
}

// counts lists the accounting's terms; filtered and merged away only when
// they happened. Grouped digits are for people, plain ones for logs.
func counts(c *commonv1.Counts, grouped bool) string {
	n := func(v int64) string {
		if grouped {
			return group(v)
		}
		return strconv.FormatInt(v, 10)
	}
	s := fmt.Sprintf("extracted %s, loaded %s, quarantined %s", n(c.GetExtracted()), n(c.GetLoaded()), n(c.GetQuarantined()))
	if c.GetFiltered() > 0 || c.GetMergedAway() > 0 {
		s += fmt.Sprintf(", filtered %s, merged away %s", n(c.GetFiltered()), n(c.GetMergedAway()))
	}
	return s
}

// group writes 1234567 as 1,234,567.
func group(v int64) string {
	s := strconv.FormatInt(v, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// stateName is a job state without its JOB_STATE_ prefix.
func stateName(s orchestratorv1.JobState) string {
	return strings.TrimPrefix(s.String(), "JOB_STATE_")
}

// clip cuts s to n runes, marking the cut.
func clip(s string, n int) string {
	if n <= 1 || utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
