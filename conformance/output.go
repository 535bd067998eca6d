package conformance

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// Table prints results as rows of a human table, one at a time (a run's
// Progress can call Row).
type Table struct {
	w      io.Writer
	header bool
}

// NewTable returns a table writing to w.
func NewTable(w io.Writer) *Table { return &Table{w: w} }

// Row prints one result: ID, status, statement; then for a failure the
// reason, expected and observed values, for a skip the reason.
func (t *Table) Row(r Result) {
	if !t.header {
		fmt.Fprintf(t.w, "%-14s %-5s %s\n", "ID", "", "STATEMENT")
		t.header = true
	}
	fmt.Fprintf(t.w, "%-14s %-5s %s\n", r.ID, strings.ToUpper(string(r.Status)), r.Statement)
	indent := func(label, s string) {
		if s == "" {
			return
		}
		lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
		fmt.Fprintf(t.w, "%21s%-9s %s\n", "", label, lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintf(t.w, "%31s%s\n", "", l)
		}
	}
	switch r.Status {
	case Fail:
		indent("failed:", r.Reason)
		indent("expected:", r.Expected)
		indent("observed:", r.Observed)
		indent("clause:", r.Clause)
		for _, l := range r.Log {
			indent("log:", l)
		}
	case Skip:
		indent("skipped:", r.Reason)
	}
	for _, c := range r.Cleanup {
		indent("cleanup:", c)
	}
}

// Summary prints the counts.
func (t *Table) Summary(rep *Report) {
	fmt.Fprintf(t.w, "\n%s conformance of %s: %d passed, %d failed, %d skipped (%d checks, %.1fs)\n",
		rep.Suite, rep.Target, rep.Passed, rep.Failed, rep.Skipped, len(rep.Results), float64(rep.DurationMS)/1000)
}

// WriteTable prints the report as a human table with a summary.
func WriteTable(w io.Writer, rep *Report) error {
	var b bytes.Buffer
	t := NewTable(&b)
	for _, r := range rep.Results {
		t.Row(r)
	}
	t.Summary(rep)
	_, err := w.Write(b.Bytes())
	return err
}

// WriteJSON prints the report as indented JSON.
func WriteJSON(w io.Writer, rep *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// JUnit XML, as CI systems read it.
type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Name    string       `xml:"name,attr"`
	Tests   int          `xml:"tests,attr"`
	Fail    int          `xml:"failures,attr"`
	Skipped int          `xml:"skipped,attr"`
	Time    string       `xml:"time,attr"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Fail       int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Skipped   *junitSkipped `xml:"skipped"`
	Failure   *junitFailure `xml:"failure"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

func seconds(ms int64) string { return fmt.Sprintf("%.3f", float64(ms)/1000) }

// WriteJUnit prints the report as JUnit XML: one testcase per check, named
// "ID: statement"; a skipped check holds <skipped message=REASON>, a
// failed one <failure message=REASON> with the expected and observed
// values as its text.
func WriteJUnit(w io.Writer, rep *Report) error {
	s := junitSuite{Name: rep.Suite, Tests: len(rep.Results), Fail: rep.Failed, Skipped: rep.Skipped,
		Time: seconds(rep.DurationMS), Timestamp: rep.Started.Format("2006-01-02T15:04:05"),
		Properties: []junitProperty{{Name: "target", Value: rep.Target}}}
	for _, r := range rep.Results {
		c := junitCase{Name: r.ID + ": " + r.Statement, Classname: "conformance." + rep.Suite, Time: seconds(r.DurationMS)}
		switch r.Status {
		case Skip:
			c.Skipped = &junitSkipped{Message: r.Reason}
		case Fail:
			text := fmt.Sprintf("%s\nclause: %s\n", r.Reason, r.Clause)
			if r.Expected != "" || r.Observed != "" {
				text += fmt.Sprintf("expected: %s\nobserved: %s\n", r.Expected, r.Observed)
			}
			c.Failure = &junitFailure{Message: r.Reason, Type: "ConformanceFailure", Text: text}
		}
		var out []string
		out = append(out, r.Log...)
		for _, e := range r.Cleanup {
			out = append(out, "cleanup: "+e)
		}
		c.SystemOut = strings.Join(out, "\n")
		s.Cases = append(s.Cases, c)
	}
	doc := junitSuites{Name: "trent conformance", Tests: s.Tests, Fail: s.Fail, Skipped: s.Skipped, Time: s.Time, Suites: []junitSuite{s}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("conformance: junit: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// CatalogueEntry is a check as --list prints it; the JSON field names are
// stable.
type CatalogueEntry struct {
	ID        string   `json:"id"`
	Statement string   `json:"statement"`
	Clause    string   `json:"clause"`
	Needs     []string `json:"needs,omitempty"`
}

// Catalogue lists the checks without their run functions.
func Catalogue(checks []Check) []CatalogueEntry {
	out := []CatalogueEntry{}
	for _, c := range checks {
		e := CatalogueEntry{ID: c.ID, Statement: c.Statement, Clause: c.Clause}
		for _, n := range c.Needs {
			e.Needs = append(e.Needs, string(n))
		}
		out = append(out, e)
	}
	return out
}

// WriteCatalogue prints the checks' IDs, statements, clauses and needs.
func WriteCatalogue(w io.Writer, checks []Check) error {
	var b bytes.Buffer
	for _, c := range Catalogue(checks) {
		fmt.Fprintf(&b, "%-14s %s\n%15s clause: %s\n", c.ID, c.Statement, "", c.Clause)
		if len(c.Needs) > 0 {
			fmt.Fprintf(&b, "%15s needs: %s\n", "", strings.Join(c.Needs, ", "))
		}
	}
	fmt.Fprintf(&b, "\n%d checks\n", len(checks))
	_, err := w.Write(b.Bytes())
	return err
}

// Markdown renders the catalogue as a Markdown table (docs/ pages are
// generated with it), each cell escaped for a table. When any check names
// a mutation, a last column shows each check's.
func Markdown(checks []Check) []byte {
	cell := func(s string) string {
		return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
	}
	mutations := false
	for _, c := range checks {
		mutations = mutations || c.Mutation != ""
	}
	var b bytes.Buffer
	if mutations {
		b.WriteString("| ID | statement | clause | needs | mutation |\n| --- | --- | --- | --- | --- |\n")
	} else {
		b.WriteString("| ID | statement | clause | needs |\n| --- | --- | --- | --- |\n")
	}
	for i, c := range Catalogue(checks) {
		needs := "—"
		if len(c.Needs) > 0 {
			needs = "`" + strings.Join(c.Needs, "`, `") + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |", c.ID, cell(c.Statement), cell(c.Clause), needs)
		if mutations {
			m := "—"
			if checks[i].Mutation != "" {
				m = "`" + cell(checks[i].Mutation) + "`"
			}
			fmt.Fprintf(&b, " %s |", m)
		}
		b.WriteString("\n")
	}
	return b.Bytes()
}
