package conformance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/conformance"
)

func sample(order *[]string) []conformance.Check {
	return []conformance.Check{{
		ID: "T-OK-001", Statement: "passes", Clause: "docs/x.md#a",
		Run: func(t *conformance.T) {
			t.Cleanup(func(context.Context) error { *order = append(*order, "ok-1"); return nil })
			t.Cleanup(func(context.Context) error { *order = append(*order, "ok-2"); return nil })
			t.Logf("ran")
		},
	}, {
		ID: "T-BAD-001", Statement: "fails with <xml> & \"quotes\"", Clause: "docs/x.md#b",
		Run: func(t *conformance.T) {
			t.Cleanup(func(context.Context) error { *order = append(*order, "bad"); return errors.New("cleanup went wrong") })
			conformance.Equal(t, "answer", 42, 41)
			*order = append(*order, "not reached")
		},
	}, {
		ID: "T-CAP-001", Statement: "needs a capability", Clause: "docs/x.md#c", Needs: []conformance.Capability{"teleport"},
		Run: func(t *conformance.T) { t.Fatalf("must not run") },
	}, {
		ID: "T-SKIP-001", Statement: "skips itself", Clause: "docs/x.md#d",
		Run: func(t *conformance.T) { t.Skipf("not here: %d", 7) },
	}, {
		ID: "T-PANIC-001", Statement: "panics", Clause: "docs/x.md#e",
		Run: func(t *conformance.T) {
			var md *struct{ KeyID string }
			t.Logf("%s", md.KeyID) // a nil answer dereferenced
		},
	}, {
		ID: "T-DEAD-001", Statement: "runs out of time", Clause: "docs/x.md#f",
		Run: func(t *conformance.T) {
			select {
			case <-t.Context().Done():
				t.Require("waiting", t.Context().Err())
			case <-time.After(10 * time.Second):
			}
		},
	}}
}

func run(t *testing.T, order *[]string) *conformance.Report {
	checks := sample(order)
	require.NoError(t, conformance.Validate(checks))
	var progress []string
	rep := conformance.Run(context.Background(), checks, conformance.Options{Suite: "test", Target: "nowhere",
		Missing: map[conformance.Capability]string{"teleport": "the target cannot teleport"}, Timeout: 200 * time.Millisecond,
		Progress: func(r conformance.Result) { progress = append(progress, r.ID) }})
	assert.Equal(t, []string{"T-OK-001", "T-BAD-001", "T-CAP-001", "T-SKIP-001", "T-PANIC-001", "T-DEAD-001"}, progress)
	return rep
}

func TestRun(t *testing.T) {
	var order []string
	rep := run(t, &order)
	assert.Equal(t, []string{"ok-2", "ok-1", "bad"}, order, "cleanups last first, also after a failure; a failure ends the check")
	assert.Equal(t, 1, rep.Passed)
	assert.Equal(t, 3, rep.Failed)
	assert.Equal(t, 2, rep.Skipped)
	byID := map[string]conformance.Result{}
	for _, r := range rep.Results {
		byID[r.ID] = r
	}
	assert.Equal(t, conformance.Pass, byID["T-OK-001"].Status)
	assert.Equal(t, []string{"ran"}, byID["T-OK-001"].Log)
	bad := byID["T-BAD-001"]
	assert.Equal(t, conformance.Fail, bad.Status)
	assert.Equal(t, "answer", bad.Reason)
	assert.Equal(t, "42", bad.Expected)
	assert.Equal(t, "41", bad.Observed)
	assert.Equal(t, []string{"cleanup went wrong"}, bad.Cleanup)
	capr := byID["T-CAP-001"]
	assert.Equal(t, conformance.Skip, capr.Status, "a missing capability skips, never passes")
	assert.Equal(t, "needs teleport: the target cannot teleport", capr.Reason)
	assert.Equal(t, "not here: 7", byID["T-SKIP-001"].Reason)
	assert.Equal(t, conformance.Fail, byID["T-PANIC-001"].Status)
	assert.Equal(t, "panic: runtime error: invalid memory address or nil pointer dereference", byID["T-PANIC-001"].Reason)
	assert.Contains(t, byID["T-PANIC-001"].Log[0], "runtime/debug.Stack")
	assert.Equal(t, conformance.Fail, byID["T-DEAD-001"].Status)
	assert.Equal(t, "context deadline exceeded", byID["T-DEAD-001"].Observed)

	err := rep.Err()
	require.Error(t, err)
	assert.True(t, errors.Is(err, conformance.ErrFailed))
	assert.Equal(t, "conformance: checks failed: 3 of 6", err.Error())

	ok := conformance.Run(context.Background(), sample(&order)[:1], conformance.Options{})
	assert.NoError(t, ok.Err())
}

func TestValidate(t *testing.T) {
	noop := func(*conformance.T) {}
	for name, c := range map[string][]conformance.Check{
		"bad ID":       {{ID: "KMS-1", Statement: "s", Clause: "c", Run: noop}},
		"lowercase ID": {{ID: "kms-err-001", Statement: "s", Clause: "c", Run: noop}},
		"repeated ID":  {{ID: "A-B-001", Statement: "s", Clause: "c", Run: noop}, {ID: "A-B-001", Statement: "t", Clause: "c", Run: noop}},
		"two lines":    {{ID: "A-B-001", Statement: "s\nt", Clause: "c", Run: noop}},
		"no statement": {{ID: "A-B-001", Clause: "c", Run: noop}},
		"no clause":    {{ID: "A-B-001", Statement: "s", Run: noop}},
		"no run":       {{ID: "A-B-001", Statement: "s", Clause: "c"}},
	} {
		err := conformance.Validate(c)
		require.Error(t, err, name)
		assert.True(t, strings.HasPrefix(err.Error(), "conformance: "), name)
	}
	assert.Len(t, conformance.Select(sample(new([]string)), regexp.MustCompile(`^T-(OK|SKIP)-`)), 2)
	assert.Len(t, conformance.Select(sample(new([]string)), nil), 6)
}

// The JSON report has the documented, stable field names.
func TestJSON(t *testing.T) {
	rep := run(t, new([]string))
	var b bytes.Buffer
	require.NoError(t, conformance.WriteJSON(&b, rep))
	var raw map[string]any
	require.NoError(t, json.Unmarshal(b.Bytes(), &raw))
	for _, k := range []string{"suite", "target", "started", "duration_ms", "passed", "failed", "skipped", "results"} {
		assert.Contains(t, raw, k)
	}
	results := raw["results"].([]any)
	require.Len(t, results, 6)
	bad := results[1].(map[string]any)
	for k, v := range map[string]any{"id": "T-BAD-001", "status": "fail", "reason": "answer", "expected": "42", "observed": "41",
		"clause": "docs/x.md#b", "cleanup_errors": []any{"cleanup went wrong"}} {
		assert.Equal(t, v, bad[k], k)
	}
	capr := results[2].(map[string]any)
	assert.Equal(t, "skip", capr["status"])
	assert.Equal(t, []any{"teleport"}, capr["needs"])
	var back conformance.Report
	require.NoError(t, json.Unmarshal(b.Bytes(), &back))
	assert.Equal(t, rep.Results, back.Results)
}

// The JUnit XML parses, with a <skipped message> per skip and a <failure>
// per failure.
func TestJUnit(t *testing.T) {
	rep := run(t, new([]string))
	var b bytes.Buffer
	require.NoError(t, conformance.WriteJUnit(&b, rep))
	assert.True(t, strings.HasPrefix(b.String(), xml.Header))
	var doc struct {
		XMLName xml.Name `xml:"testsuites"`
		Tests   int      `xml:"tests,attr"`
		Fail    int      `xml:"failures,attr"`
		Skipped int      `xml:"skipped,attr"`
		Suites  []struct {
			Name  string `xml:"name,attr"`
			Tests int    `xml:"tests,attr"`
			Cases []struct {
				Name    string `xml:"name,attr"`
				Class   string `xml:"classname,attr"`
				Time    string `xml:"time,attr"`
				Skipped *struct {
					Message string `xml:"message,attr"`
				} `xml:"skipped"`
				Failure *struct {
					Message string `xml:"message,attr"`
					Text    string `xml:",chardata"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	dec := xml.NewDecoder(bytes.NewReader(b.Bytes()))
	require.NoError(t, dec.Decode(&doc))
	assert.Equal(t, 6, doc.Tests)
	assert.Equal(t, 3, doc.Fail)
	assert.Equal(t, 2, doc.Skipped)
	require.Len(t, doc.Suites, 1)
	cases := doc.Suites[0].Cases
	require.Len(t, cases, 6)
	assert.Equal(t, "T-OK-001: passes", cases[0].Name)
	assert.Equal(t, "conformance.test", cases[0].Class)
	assert.Nil(t, cases[0].Skipped)
	assert.Nil(t, cases[0].Failure)
	assert.Equal(t, `T-BAD-001: fails with <xml> & "quotes"`, cases[1].Name, "escaped and read back")
	require.NotNil(t, cases[1].Failure)
	assert.Equal(t, "answer", cases[1].Failure.Message)
	assert.Contains(t, cases[1].Failure.Text, "expected: 42\nobserved: 41")
	require.NotNil(t, cases[2].Skipped)
	assert.Equal(t, "needs teleport: the target cannot teleport", cases[2].Skipped.Message)
	assert.Nil(t, cases[2].Failure)
	require.NotNil(t, cases[3].Skipped)
	// Nothing after the document.
	_, err := dec.Token()
	for err == nil {
		var tok xml.Token
		tok, err = dec.Token()
		if cd, ok := tok.(xml.CharData); ok {
			assert.Empty(t, strings.TrimSpace(string(cd)))
		}
	}
}

func TestTableAndCatalogue(t *testing.T) {
	rep := run(t, new([]string))
	var b bytes.Buffer
	require.NoError(t, conformance.WriteTable(&b, rep))
	out := b.String()
	assert.Contains(t, out, "T-BAD-001      FAIL  fails with")
	assert.Contains(t, out, "expected: 42")
	assert.Contains(t, out, "observed: 41")
	assert.Contains(t, out, "skipped:  needs teleport: the target cannot teleport")
	assert.Contains(t, out, "cleanup:  cleanup went wrong")
	assert.Contains(t, out, "test conformance of nowhere: 1 passed, 3 failed, 2 skipped (6 checks")

	b.Reset()
	checks := sample(new([]string))
	require.NoError(t, conformance.WriteCatalogue(&b, checks))
	assert.Contains(t, b.String(), "T-CAP-001      needs a capability\n                clause: docs/x.md#c\n                needs: teleport\n")
	assert.Contains(t, b.String(), "\n6 checks\n")
	md := string(conformance.Markdown(checks))
	assert.Contains(t, md, "| `T-CAP-001` | needs a capability | docs/x.md#c | `teleport` |\n")
	assert.Contains(t, md, "| `T-OK-001` | passes | docs/x.md#a | — |\n")
}
