package ctl

import (
	"fmt"
	"io"
)

// The summary on stdout is for CI logs: the verdict, then each check that
// failed or has something to say, one line each.

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

func writeGroups(w io.Writer, groups []group) {
	for _, g := range groups {
		for _, c := range g.checks {
			switch {
			case c.failed:
				fmt.Fprintf(w, "  FAIL %s / %s: %s\n", g.name, c.name, c.message)
				for _, d := range c.detail {
					if d != c.message {
						fmt.Fprintf(w, "         %s\n", d)
					}
				}
			case c.skipped != "":
				fmt.Fprintf(w, "  skip %s / %s: %s\n", g.name, c.name, c.skipped)
			case c.message != "":
				fmt.Fprintf(w, "  ok   %s / %s: %s\n", g.name, c.name, c.message)
			default:
				fmt.Fprintf(w, "  ok   %s / %s\n", g.name, c.name)
			}
		}
	}
}

func (v *validation) summary(w io.Writer) {
	what := "validate"
	if v.dryRun {
		what = "dry run"
	}
	fmt.Fprintf(w, "%s %s (spec hash %s)\n", what, verdict(v.res.GetOk()), v.res.GetSpecHash())
	if v.dryRun {
		for _, dt := range v.res.GetTables() {
			c := dt.GetCounts()
			fmt.Fprintf(w, "  %s: extracted %d, would load %d, quarantined %d, filtered %d, warned %d\n",
				dt.GetTable(), c.GetExtracted(), c.GetLoaded(), c.GetQuarantined(), c.GetFiltered(), c.GetWarned())
		}
	}
	writeGroups(w, v.groups())
}

func (r *reconciliation) summary(w io.Writer) {
	v := verdict(r.rec.GetOk())
	if r.rec.GetWarning() {
		v += " with warnings"
	}
	fmt.Fprintf(w, "reconcile %s: %s in %.1fs\n", r.rec.GetJobId(), v, r.rec.GetDurationSeconds())
	writeGroups(w, r.groups())
}
