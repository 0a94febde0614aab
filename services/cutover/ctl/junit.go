package ctl

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"
)

// JUnit XML in the common (Ant/Jenkins) form that GitLab, Jenkins and the
// GitHub Actions test reporters read.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string           `xml:"name,attr"`
	Tests      int              `xml:"tests,attr"`
	Failures   int              `xml:"failures,attr"`
	Errors     int              `xml:"errors,attr"`
	Skipped    int              `xml:"skipped,attr"`
	Time       string           `xml:"time,attr"`
	Properties *junitProperties `xml:"properties,omitempty"`
	Cases      []junitCase      `xml:"testcase"`
}

type junitProperties struct {
	Props []junitProperty `xml:"property"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

// seconds formats a duration as JUnit wants it.
func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// buildJUnit turns groups into suites. Only the whole call is timed; the
// server does not time single checks.
func buildJUnit(name, failureType string, groups []group, elapsed time.Duration, props []junitProperty) junitSuites {
	out := junitSuites{Name: name, Time: seconds(elapsed)}
	for _, g := range groups {
		s := junitSuite{Name: g.name, Time: seconds(0)}
		if len(props) > 0 {
			s.Properties = &junitProperties{Props: props}
		}
		for _, c := range g.checks {
			tc := junitCase{Name: c.name, Classname: g.class, Time: seconds(0)}
			switch {
			case c.skipped != "":
				tc.Skipped = &junitSkipped{Message: c.skipped}
				s.Skipped++
			case c.failed:
				tc.Failure = &junitFailure{Message: c.message, Type: failureType, Text: strings.Join(c.detail, "\n")}
				if len(c.detail) == 0 {
					tc.Failure.Text = c.message
				}
				s.Failures++
			default:
				tc.SystemOut = strings.Join(append([]string{c.message}, c.detail...), "\n")
				tc.SystemOut = strings.TrimSpace(tc.SystemOut)
			}
			s.Tests++
			s.Cases = append(s.Cases, tc)
		}
		out.Tests += s.Tests
		out.Failures += s.Failures
		out.Skipped += s.Skipped
		out.Suites = append(out.Suites, s)
	}
	return out
}

func writeJUnit(w io.Writer, s junitSuites) error {
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(s); err != nil {
		return fmt.Errorf("encode JUnit XML: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func (v *validation) junit(w io.Writer) error {
	name, typ := "cutoverctl validate", "spec"
	if v.dryRun {
		name, typ = "cutoverctl validate --dry-run", "dry-run"
	}
	if v.spec.GetName() != "" {
		name += ": " + v.spec.GetName()
	}
	props := []junitProperty{{Name: "spec_hash", Value: v.res.GetSpecHash()}}
	return writeJUnit(w, buildJUnit(name, typ, v.groups(), v.elapsed, props))
}

func (r *reconciliation) junit(w io.Writer) error {
	props := []junitProperty{{Name: "job_id", Value: r.rec.GetJobId()}}
	return writeJUnit(w, buildJUnit("cutoverctl reconcile "+r.rec.GetJobId(), "reconcile", r.groups(), r.elapsed, props))
}
