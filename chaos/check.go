package chaos

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/anishathalye/porcupine"
)

// Linearizability verdicts.
const (
	Linearizable    = "yes"
	NotLinearizable = "no"
	Undecided       = "unknown" // the checker ran out of time
)

// Result is what Check finds in a history.
type Result struct {
	Operations   int            `json:"operations"`
	Acknowledged int            `json:"acknowledged"`
	Retryable    int            `json:"retryable"`
	ByOutcome    map[string]int `json:"by_outcome"`
	// Misleading are permanent errors the history proves false.
	Misleading []Misleading `json:"misleading,omitempty"`
	// Lost are acknowledged writes the verification after healing could
	// not find or open (its last try was a permanent error).
	Lost []Op `json:"lost,omitempty"`
	// Unverified are items whose verification only ever got retryable
	// errors.
	Unverified int `json:"unverified"`
	// Windows are the spans in which consecutive requests of one kind to
	// one host failed.
	WindowP50 time.Duration `json:"window_p50"`
	WindowMax time.Duration `json:"window_max"`
	Windows   int           `json:"windows"`
	// Linearizable is Linearizable, NotLinearizable or Undecided.
	Linearizable string `json:"linearizable"`
	// StaleReads is the verdict on the history without its misleading
	// answers: NotLinearizable if reads that succeeded were stale too (an
	// enabled state, a policy or an alias target older than an
	// acknowledged write).
	StaleReads string `json:"linearizable_without_misleading"`

	info porcupine.LinearizationInfo
}

// Misleading is a permanent error that the history proves false, and why.
type Misleading struct {
	Op  Op     `json:"op"`
	Why string `json:"why"`
}

// Check judges a history (ops as History.Ops returns them), giving the
// porcupine checker at most timeout.
func Check(ops []Op, timeout time.Duration) *Result {
	r := &Result{Operations: len(ops), ByOutcome: map[string]int{}}
	for i := range ops {
		r.ByOutcome[ops[i].Outcome]++
		switch ops[i].Outcome {
		case OK:
			r.Acknowledged++
		case Retryable:
			r.Retryable++
		}
	}
	r.Misleading = misleading(ops)
	r.Lost, r.Unverified = lost(ops)
	r.Windows, r.WindowP50, r.WindowMax = windows(ops)
	res, info := porcupine.CheckOperationsVerbose(Model.ToModel(), operations(ops), timeout)
	r.info = info
	r.Linearizable = verdict(res)
	r.StaleReads = r.Linearizable
	if len(r.Misleading) > 0 {
		lie := map[int]bool{}
		for _, m := range r.Misleading {
			lie[m.Op.ID] = true
		}
		var rest []Op
		for _, op := range ops {
			if !lie[op.ID] {
				rest = append(rest, op)
			}
		}
		r.StaleReads = verdict(porcupine.CheckOperationsTimeout(Model.ToModel(), operations(rest), timeout))
	}
	return r
}

func verdict(res porcupine.CheckResult) string {
	switch res {
	case porcupine.Ok:
		return Linearizable
	case porcupine.Illegal:
		return NotLinearizable
	}
	return Undecided
}

// Visualize writes porcupine's HTML view of the history's linearizations
// (and where they fail) to path.
func (r *Result) Visualize(path string) error {
	return porcupine.VisualizePath(Model.ToModel(), r.info, path)
}

// Passed reports whether the history shows no misleading answer, no lost
// write, and is linearizable.
func (r *Result) Passed() bool {
	return len(r.Misleading) == 0 && len(r.Lost) == 0 && r.Linearizable == Linearizable
}

const forever = time.Duration(math.MaxInt64)

// misleading finds the permanent errors the history proves false when the
// request began (see the package documentation).
func misleading(ops []Op) []Misleading {
	keyMade := map[string]time.Duration{}   // key → return of its acknowledged CreateKey
	aliasMade := map[string]time.Duration{} // alias → return of its first acknowledged CreateAlias
	aliasTried := map[string][]*Op{}        // alias → CreateAlias not refused
	toggles := map[string][]*Op{}           // key → Create/Enable/Disable that may have happened
	for i := range ops {
		op := &ops[i]
		switch {
		case op.Kind == CreateKey && op.Outcome == OK:
			keyMade[op.Key] = op.Return
			toggles[op.Key] = append(toggles[op.Key], op)
		case op.Kind == CreateAlias && (op.Outcome == OK || op.Outcome == Retryable):
			aliasTried[op.Alias] = append(aliasTried[op.Alias], op)
			if t, ok := aliasMade[op.Alias]; op.Outcome == OK && (!ok || op.Return < t) {
				aliasMade[op.Alias] = op.Return
			}
		case (op.Kind == EnableKey || op.Kind == DisableKey) && (op.Outcome == OK || op.Outcome == Retryable):
			toggles[op.Key] = append(toggles[op.Key], op)
		}
	}
	end := func(o *Op) time.Duration {
		if o.Outcome == Retryable {
			return forever
		}
		return o.Return
	}
	// certainlyEnabled: an acknowledged Create or Enable ended before op
	// began, and no Disable that may have happened can be ordered after
	// it and before op ended.
	certainlyEnabled := func(op *Op) bool {
		for _, e := range toggles[op.Key] {
			if e.Kind == DisableKey || e.Outcome != OK || e.Return >= op.Call {
				continue
			}
			ok := true
			for _, d := range toggles[op.Key] {
				if d.Kind == DisableKey && d.Call < op.Return && end(d) > e.Call {
					ok = false
					break
				}
			}
			if ok {
				return true
			}
		}
		return false
	}
	var out []Misleading
	for i := range ops {
		op := &ops[i]
		if op.Outcome == OK || op.Outcome == Retryable {
			continue
		}
		why := ""
		switch op.Outcome {
		case "NotFoundException":
			switch op.Kind {
			case CreateAlias:
				if t, ok := keyMade[op.Target]; ok && t < op.Call {
					why = "target key " + op.Target + " was created before"
				}
			case UpdateAlias, DescribeAlias:
				if t, ok := aliasMade[op.Alias]; ok && t < op.Call {
					why = "alias " + op.Alias + " was created before"
				}
			default:
				if t, ok := keyMade[op.Key]; ok && t < op.Call {
					why = "key " + op.Key + " was created before"
				}
			}
		case "InvalidCiphertextException":
			why = "the ciphertext was acknowledged by Encrypt or GenerateDataKey"
		case "DisabledException", "KMSInvalidStateException":
			if certainlyEnabled(op) {
				why = "key " + op.Key + " was enabled throughout"
			}
		case "AlreadyExistsException":
			created := false
			for _, c := range aliasTried[op.Alias] {
				if c.ID != op.ID && c.Call < op.Return {
					created = true
				}
			}
			if op.Kind != CreateAlias || !created {
				why = "alias " + op.Alias + " was never created before"
			}
		default:
			why = "a well-formed request should never get " + op.Outcome
		}
		if why != "" {
			out = append(out, Misleading{Op: *op, Why: why})
		}
	}
	return out
}

// lost finds the items whose verification's last try was a permanent
// error, and counts those whose tries were all retryable.
func lost(ops []Op) ([]Op, int) {
	last := map[string]*Op{}
	var order []string
	for i := range ops {
		op := &ops[i]
		if !op.Final || isWrite(op.Kind) {
			continue
		}
		id := fmt.Sprintf("%s %s %s %s %d", op.Kind, op.Host, op.Key, op.Alias, op.CT)
		if p, ok := last[id]; !ok || p.Call <= op.Call {
			if !ok {
				order = append(order, id)
			}
			last[id] = op
		}
	}
	var out []Op
	unverified := 0
	for _, id := range order {
		op := last[id]
		switch {
		case op.Outcome == Retryable:
			unverified++
		case op.Outcome != OK || op.Wrong:
			out = append(out, *op)
		}
	}
	return out, unverified
}

// windows returns the number of spans of consecutive failures of one kind
// on one host (workload only), their median and their maximum. A span runs
// from the first failure's invoke to the next success's invoke (to the
// last failure's return if none follows).
func windows(ops []Op) (int, time.Duration, time.Duration) {
	type stream struct {
		host string
		kind Kind
	}
	open := map[stream][2]time.Duration{} // first call, last return
	var spans []time.Duration
	for i := range ops { // by invoke time
		op := &ops[i]
		if op.Final {
			continue
		}
		s := stream{op.Host, op.Kind}
		bad := op.Outcome == Retryable || op.Outcome == "NotFoundException" || op.Outcome == "InvalidCiphertextException" ||
			op.Outcome == "KMSInvalidStateException"
		w, ok := open[s]
		switch {
		case bad && ok:
			open[s] = [2]time.Duration{w[0], max(w[1], op.Return)}
		case bad:
			open[s] = [2]time.Duration{op.Call, op.Return}
		case ok && op.Outcome == OK:
			spans = append(spans, max(w[1], op.Call)-w[0])
			delete(open, s)
		}
	}
	for _, w := range open {
		spans = append(spans, w[1]-w[0])
	}
	if len(spans) == 0 {
		return 0, 0, 0
	}
	slices.Sort(spans)
	return len(spans), spans[len(spans)/2], spans[len(spans)-1]
}
