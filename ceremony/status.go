package ceremony

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/quorum"
)

// Status is a command's standing: quorum.Evaluate's verdict, with each
// signature's own check and the rules that apply.
type Status struct {
	Summary Summary
	// Against says what the command was checked against.
	Against string
	// Rules are the alternatives for the command's type.
	Rules      []quorum.Rule
	Signatures []SignatureStatus
	Result     quorum.Result
	// NotApplicable is set when the command is satisfied but would not
	// apply to the state (a dry run of domain.Apply failed): why.
	NotApplicable string
}

// SignatureStatus is one signature's check.
type SignatureStatus struct {
	ID      string `json:"id"`
	Alg     string `json:"alg"`
	Role    string `json:"role,omitempty"`    // the signer's role, if an operator
	Valid   bool   `json:"valid"`             // verifies under the operator's key
	Problem string `json:"problem,omitempty"` // why not
}

// Check evaluates f at time now: a CreateDomain command against the state
// it creates (its own operators and rules, state version 0; cur must be
// nil), any other against cur, the domain's current state. Check fails
// only when it cannot evaluate; a command that is not satisfied is
// reported in the Status (see Err).
func Check(f *File, cur *domain.State, now time.Time) (*Status, error) {
	st, err := f.quorumState(cur)
	if err != nil {
		return nil, err
	}
	c := f.Command
	s := &Status{Summary: f.Summary(), Rules: st.Rules.For(c.Type)}
	if c.Type == quorum.CreateDomain {
		s.Against = fmt.Sprintf("the domain %q it creates (its operators and rules, state version 0)", c.Domain)
	} else {
		s.Against = fmt.Sprintf("domain %q at state version %d", st.Domain, st.Version)
	}
	for _, sig := range f.Signed.Signatures {
		ss := SignatureStatus{ID: sig.Signer, Alg: sig.Alg.String()}
		i := slices.IndexFunc(st.Operators, func(o quorum.Operator) bool { return o.ID == sig.Signer })
		if i < 0 {
			ss.Problem = "not an operator of the domain"
		} else {
			o := st.Operators[i]
			ss.Role = o.Role
			// The signature alone, at the command's issue time, so that
			// an expired command still shows which signatures verify.
			one := &quorum.State{Domain: c.Domain, Version: c.StateVersion, Operators: []quorum.Operator{o},
				Rules: quorum.Rules{c.Type: {{{Role: o.Role, N: 1}}}}}
			switch res := quorum.Evaluate(one, f.Signed.Command, []quorum.Signature{sig}, time.Unix(int64(c.IssuedAt), 0)); res.Outcome {
			case quorum.Satisfied:
				ss.Valid = true
			default:
				ss.Problem = strings.TrimPrefix(res.String(), "rejected: ")
			}
		}
		s.Signatures = append(s.Signatures, ss)
	}
	s.Result = quorum.Evaluate(st, f.Signed.Command, f.Signed.Signatures, now)
	if s.Result.Outcome == quorum.Satisfied && c.Type != quorum.CreateDomain {
		if _, err := DryRun(cur, f.Signed.Command, now); err != nil {
			s.NotApplicable = strings.TrimPrefix(err.Error(), "ceremony: ")
		}
	}
	return s, nil
}

// NotSatisfiedError is Status.Err's error: the command is pending or
// rejected (wrapping quorum's error: quorum.ErrPending, quorum.ErrExpired
// and the like) or would not apply.
type NotSatisfiedError struct {
	Result        quorum.Result
	NotApplicable string
}

func (e *NotSatisfiedError) Error() string {
	if e.NotApplicable != "" {
		return "ceremony: satisfied, but " + e.NotApplicable
	}
	return "ceremony: " + e.Result.String()
}

func (e *NotSatisfiedError) Unwrap() error { return e.Result.Err() }

// Err is nil when the command is satisfied (and, unless it is
// CreateDomain, applies), else a *NotSatisfiedError.
func (s *Status) Err() error {
	if s.Result.Outcome == quorum.Satisfied && s.NotApplicable == "" {
		return nil
	}
	return &NotSatisfiedError{Result: s.Result, NotApplicable: s.NotApplicable}
}

// Verdict is the one-line outcome: "satisfied by 2 kms-operator",
// "pending: need 1 more kms-operator", "rejected: command expired".
func (s *Status) Verdict() string {
	if err := s.Err(); err != nil {
		return strings.TrimPrefix(err.Error(), "ceremony: ")
	}
	return s.Result.String()
}

// Text is the status for people.
func (s *Status) Text() string {
	var b strings.Builder
	b.WriteString(s.Summary.Text())
	fmt.Fprintf(&b, "checked against %s\n", s.Against)
	fmt.Fprintf(&b, "  rule:        %s\n", FormatRules(s.Rules))
	for i, sig := range s.Signatures {
		label := "             "
		if i == 0 {
			label = "  checked:   "
		}
		state := "ok"
		if !sig.Valid {
			state = sig.Problem
		}
		role := sig.Role
		if role == "" {
			role = "-"
		}
		fmt.Fprintf(&b, "%s%s (%s): %s\n", label, sig.ID, role, state)
	}
	b.WriteString(s.Verdict())
	b.WriteByte('\n')
	return b.String()
}

type requirementJSON struct {
	Role string `json:"role"`
	N    int    `json:"n"`
}

// MarshalJSON encodes the status for scripts.
func (s *Status) MarshalJSON() ([]byte, error) {
	var rules []string
	for _, r := range s.Rules {
		rules = append(rules, r.String())
	}
	var missing []requirementJSON
	for _, m := range s.Result.Missing {
		missing = append(missing, requirementJSON{Role: m.Role, N: m.N})
	}
	rule := ""
	if s.Result.Outcome != quorum.Rejected {
		rule = s.Result.Rule.String()
	}
	sigs := s.Signatures
	if sigs == nil {
		sigs = []SignatureStatus{}
	}
	counted := s.Result.Signers
	if counted == nil {
		counted = []string{}
	}
	return json.Marshal(struct {
		Outcome       string            `json:"outcome"`
		Verdict       string            `json:"verdict"`
		Command       Summary           `json:"command"`
		Against       string            `json:"checked_against"`
		Rules         []string          `json:"rules"`
		Rule          string            `json:"rule,omitempty"`
		Missing       []requirementJSON `json:"missing,omitempty"`
		Signatures    []SignatureStatus `json:"signatures"`
		Counted       []string          `json:"counted_signers"`
		NotApplicable string            `json:"not_applicable,omitempty"`
	}{s.Result.Outcome.String(), s.Verdict(), s.Summary, s.Against, rules, rule, missing, sigs, counted, s.NotApplicable})
}
