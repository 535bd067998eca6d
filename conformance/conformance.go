package conformance

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"time"
)

// Status is a check's outcome.
type Status string

// The outcomes.
const (
	Pass Status = "pass"
	Fail Status = "fail"
	Skip Status = "skip"
)

// Capability names something a target may lack (asymmetric keys, a second
// principal, a trusted attestation root); a check that needs a capability
// the target lacks is skipped with the reason.
type Capability string

// Check is one statement about the target and the code that tests it.
type Check struct {
	ID        string       // stable, SUITE-AREA-NNN
	Statement string       // one line: what a conforming target does
	Clause    string       // the specification clause it tests
	Needs     []Capability // capabilities the check needs
	Run       func(t *T)
	// Mutation names the internal/mutation hook that breaks exactly the
	// behaviour this check tests: a test build with it on must fail this
	// check and pass the others (the suite's mutation test).
	Mutation string
}

// ErrFailed is Report.Err's answer when a check failed.
var ErrFailed = errors.New("conformance: checks failed")

var idPattern = regexp.MustCompile(`^[A-Z][A-Z0-9]*-[A-Z][A-Z0-9]*-[0-9]{3}$`)

// Validate checks a catalogue: IDs well-formed and unique, a statement of
// one line, a clause and a run function for every check.
func Validate(checks []Check) error {
	seen := map[string]bool{}
	var errs []error
	for i, c := range checks {
		switch {
		case !idPattern.MatchString(c.ID):
			errs = append(errs, fmt.Errorf("conformance: check %d: ID %q is not SUITE-AREA-NNN", i, c.ID))
		case seen[c.ID]:
			errs = append(errs, fmt.Errorf("conformance: %s: ID used twice", c.ID))
		}
		seen[c.ID] = true
		if strings.TrimSpace(c.Statement) == "" || strings.ContainsAny(c.Statement, "\r\n") {
			errs = append(errs, fmt.Errorf("conformance: %s: the statement must be one non-empty line", c.ID))
		}
		if strings.TrimSpace(c.Clause) == "" {
			errs = append(errs, fmt.Errorf("conformance: %s: no clause", c.ID))
		}
		if c.Run == nil {
			errs = append(errs, fmt.Errorf("conformance: %s: no run function", c.ID))
		}
	}
	return errors.Join(errs...)
}

// Select returns the checks whose ID matches re (all of them if re is nil).
func Select(checks []Check, re *regexp.Regexp) []Check {
	if re == nil {
		return checks
	}
	var out []Check
	for _, c := range checks {
		if re.MatchString(c.ID) {
			out = append(out, c)
		}
	}
	return out
}

// Result is one check's outcome. The JSON field names are stable.
type Result struct {
	ID         string   `json:"id"`
	Statement  string   `json:"statement"`
	Clause     string   `json:"clause"`
	Needs      []string `json:"needs,omitempty"`
	Status     Status   `json:"status"`
	Reason     string   `json:"reason,omitempty"`   // why it failed or was skipped
	Expected   string   `json:"expected,omitempty"` // fail: what the statement requires
	Observed   string   `json:"observed,omitempty"` // fail: what the target did
	DurationMS int64    `json:"duration_ms"`
	Cleanup    []string `json:"cleanup_errors,omitempty"`
	Log        []string `json:"log,omitempty"`
}

// Report is the outcome of a run. The JSON field names are stable.
type Report struct {
	Suite      string    `json:"suite"`
	Target     string    `json:"target"`
	Started    time.Time `json:"started"`
	DurationMS int64     `json:"duration_ms"`
	Passed     int       `json:"passed"`
	Failed     int       `json:"failed"`
	Skipped    int       `json:"skipped"`
	Results    []Result  `json:"results"`
}

// Err is ErrFailed if any check failed, else nil.
func (r *Report) Err() error {
	if r.Failed > 0 {
		return fmt.Errorf("%w: %d of %d", ErrFailed, r.Failed, len(r.Results))
	}
	return nil
}

// Options configure Run.
type Options struct {
	Suite  string // the suite's name (for reports)
	Target string // what was tested, e.g. the endpoint URL
	// Missing maps each capability the target lacks to the reason; the
	// checks that need one are skipped with that reason.
	Missing map[Capability]string
	// Timeout bounds each check (DefaultTimeout if zero); cleanups get
	// CleanupTimeout more.
	Timeout  time.Duration
	Progress func(Result) // called after each check, if not nil
}

// Timeouts.
const (
	DefaultTimeout = 3 * time.Minute
	CleanupTimeout = time.Minute
)

// Run runs the checks one after another, in order.
func Run(ctx context.Context, checks []Check, opts Options) *Report {
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	rep := &Report{Suite: opts.Suite, Target: opts.Target, Started: time.Now().UTC(), Results: []Result{}}
	for i := range checks {
		r := runOne(ctx, &checks[i], opts)
		switch r.Status {
		case Pass:
			rep.Passed++
		case Fail:
			rep.Failed++
		case Skip:
			rep.Skipped++
		}
		rep.Results = append(rep.Results, r)
		if opts.Progress != nil {
			opts.Progress(r)
		}
	}
	rep.DurationMS = time.Since(rep.Started).Milliseconds()
	return rep
}

func runOne(ctx context.Context, c *Check, opts Options) Result {
	r := Result{ID: c.ID, Statement: c.Statement, Clause: c.Clause}
	for _, n := range c.Needs {
		r.Needs = append(r.Needs, string(n))
	}
	for _, n := range c.Needs {
		if why, ok := opts.Missing[n]; ok {
			r.Status, r.Reason = Skip, fmt.Sprintf("needs %s: %s", n, why)
			return r
		}
	}
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	t := &T{ctx: cctx, id: c.ID, status: Pass}
	func() {
		defer func() {
			if v := recover(); v != nil {
				if _, ok := v.(stop); !ok {
					t.status, t.reason = Fail, fmt.Sprintf("panic: %v", v)
					t.log = append(t.log, string(debug.Stack()))
				}
			}
		}()
		c.Run(t)
	}()
	cancel()
	// Cleanups, last first, on a fresh deadline: the check's may be spent.
	cl, ccancel := context.WithTimeout(context.WithoutCancel(ctx), CleanupTimeout)
	for _, f := range slices.Backward(t.cleanups) {
		if err := callCleanup(cl, f); err != nil {
			r.Cleanup = append(r.Cleanup, err.Error())
		}
	}
	ccancel()
	r.Status, r.Reason, r.Expected, r.Observed, r.Log = t.status, t.reason, t.expected, t.observed, t.log
	r.DurationMS = time.Since(start).Milliseconds()
	return r
}

func callCleanup(ctx context.Context, f func(context.Context) error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("conformance: cleanup panicked: %v", v)
		}
	}()
	return f(ctx)
}

// stop is what T panics with to end a check early.
type stop struct{}

// T is a running check's handle. Its methods that end the check (Skipf,
// Fatalf, Mismatch) must be called from the check's own goroutine.
type T struct {
	ctx      context.Context
	id       string
	status   Status
	reason   string
	expected string
	observed string
	log      []string
	cleanups []func(context.Context) error
}

// Context is the check's context, cancelled at its deadline.
func (t *T) Context() context.Context { return t.ctx }

// ID is the running check's ID.
func (t *T) ID() string { return t.id }

// Cleanup registers f to run after the check, whatever its outcome.
func (t *T) Cleanup(f func(ctx context.Context) error) { t.cleanups = append(t.cleanups, f) }

// Logf records a line in the result (shown with --json and for failures).
func (t *T) Logf(format string, a ...any) { t.log = append(t.log, fmt.Sprintf(format, a...)) }

// Skipf ends the check as skipped, with the reason.
func (t *T) Skipf(format string, a ...any) {
	t.status, t.reason = Skip, fmt.Sprintf(format, a...)
	panic(stop{})
}

// Fatalf ends the check as failed, with the reason.
func (t *T) Fatalf(format string, a ...any) {
	t.status, t.reason = Fail, fmt.Sprintf(format, a...)
	panic(stop{})
}

// Mismatch ends the check as failed: in what, expected was required and
// observed was seen.
func (t *T) Mismatch(what string, expected, observed any) {
	t.status, t.reason = Fail, what
	t.expected, t.observed = show(expected), show(observed)
	panic(stop{})
}

// show formats a value for a result, making an empty one visible.
func show(v any) string {
	s := fmt.Sprint(v)
	if s == "" {
		return `""`
	}
	return s
}

// Require ends the check as failed if err is not nil: what failed and the
// error are the reason.
func (t *T) Require(what string, err error) {
	if err != nil {
		t.Mismatch(what, "success", err.Error())
	}
}

// Equal ends the check as failed if expected and observed differ
// (compared with ==).
func Equal[V comparable](t *T, what string, expected, observed V) {
	if expected != observed {
		t.Mismatch(what, expected, observed)
	}
}
