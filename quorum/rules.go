package quorum

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Roles.
const (
	RoleKMSOperator = "kms-operator"
	RoleServiceHost = "service-host"
)

// Operator is an operator of the domain: its ID, its one role and its key.
type Operator struct {
	ID   string
	Role string
	Key  PublicKey
}

// Requirement asks for N distinct signers holding Role.
type Requirement struct {
	Role string
	N    int
}

// Rule is a set of requirements, all of which must be met.
type Rule []Requirement

func (r Rule) String() string {
	var parts []string
	for _, q := range r {
		parts = append(parts, fmt.Sprintf("%d %s", q.N, q.Role))
	}
	return strings.Join(parts, " + ")
}

// Rules maps each command type to its alternative rules: a command is
// satisfied by any one of them.
type Rules map[CommandType][]Rule

// fallback names the command types a domain need not have a rule for, and
// the type whose rule applies instead: both came after domains were made
// with a rule for every other type. Changing the session policy is as
// grave as changing a rule; trusting another region's HSMs with key
// material, as adding a member.
var fallback = map[CommandType]CommandType{SetSessionPolicy: SetRule, SetPeerRegion: AddMember}

// Optional reports whether a domain may lack a rule for t (For then
// applies another type's).
func Optional(t CommandType) bool { _, ok := fallback[t]; return ok }

// For returns the alternatives that govern commands of type t: t's own,
// or, for a type a domain need not have a rule for (Optional) and has
// none, those of the type it falls back to.
func (r Rules) For(t CommandType) []Rule {
	if alts := r[t]; len(alts) > 0 {
		return alts
	}
	if f, ok := fallback[t]; ok {
		return r[f]
	}
	return nil
}

// DefaultRules lets no single operator change anything: every command type
// needs two kms-operators, and RotateDomainKeys may instead be signed by one
// service-host, so that hosts can rotate on a schedule. The optional types
// (SetPeerRegion) get no rule of their own: their fallback's applies.
func DefaultRules() Rules {
	r := Rules{}
	for _, t := range CommandTypes {
		if !Optional(t) {
			r[t] = []Rule{{{Role: RoleKMSOperator, N: 2}}}
		}
	}
	r[RotateDomainKeys] = append(r[RotateDomainKeys], Rule{{Role: RoleServiceHost, N: 1}})
	return r
}

// Outcome is the verdict of Evaluate.
type Outcome int

const (
	Rejected Outcome = iota
	Pending
	Satisfied
)

func (o Outcome) String() string {
	switch o {
	case Rejected:
		return "rejected"
	case Pending:
		return "pending"
	case Satisfied:
		return "satisfied"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Reasons a command is rejected.
var (
	ErrUnknownSigner = errors.New("quorum: signer is not an operator of the domain")
	ErrBadSignature  = errors.New("quorum: signature does not verify")
	ErrExpired       = errors.New("quorum: command expired")
	ErrNotYetValid   = errors.New("quorum: command issued in the future")
	ErrWrongDomain   = errors.New("quorum: command is for another domain")
	ErrWrongVersion  = errors.New("quorum: command is for another state version")
	ErrNoRule        = errors.New("quorum: no rule for the command type")
	ErrBadValidity   = errors.New("quorum: validity period empty or too long")
)

// Result is what Evaluate found.
type Result struct {
	Outcome Outcome
	Rule    Rule          // Satisfied: the rule met; Pending: the closest
	Missing []Requirement // Pending: what the closest rule still needs
	Signers []string      // valid, counted signers, sorted
	Reason  error         // Rejected: why
}

func (r Result) String() string {
	switch r.Outcome {
	case Satisfied:
		return "satisfied by " + r.Rule.String()
	case Pending:
		var parts []string
		for _, m := range r.Missing {
			parts = append(parts, fmt.Sprintf("%d more %s", m.N, m.Role))
		}
		return "pending: need " + strings.Join(parts, " and ")
	}
	return "rejected: " + strings.TrimPrefix(fmt.Sprint(r.Reason), "quorum: ")
}

// Err is nil when satisfied, else an error saying why not.
func (r Result) Err() error {
	switch r.Outcome {
	case Satisfied:
		return nil
	case Pending:
		return fmt.Errorf("%w: %s", ErrPending, r.String())
	}
	return r.Reason
}

// ErrPending means a command lacks signatures.
var ErrPending = errors.New("quorum: not enough signatures")

// State is what Evaluate checks a command against: the domain's name and
// current state version, its operators and its rules.
type State struct {
	Domain    string
	Version   uint64
	Operators []Operator
	Rules     Rules
}

// MaxClockSkew is how far in the future a command's issue time may be.
const MaxClockSkew = 5 * time.Minute

// Evaluate checks command (its encoding) and its signatures against st at
// time now. It is a pure function.
func Evaluate(st *State, command []byte, sigs []Signature, now time.Time) Result {
	c, err := ParseCommand(command)
	if err != nil {
		return Result{Reason: err}
	}
	if c.Domain != st.Domain {
		return Result{Reason: fmt.Errorf("%w: %q, not %q", ErrWrongDomain, c.Domain, st.Domain)}
	}
	if c.StateVersion != st.Version {
		return Result{Reason: fmt.Errorf("%w: %d, domain at %d", ErrWrongVersion, c.StateVersion, st.Version)}
	}
	if c.ExpiresAt <= c.IssuedAt || time.Duration(c.ExpiresAt-c.IssuedAt)*time.Second > MaxExpiry {
		return Result{Reason: ErrBadValidity}
	}
	t := now.Unix()
	if t >= int64(c.ExpiresAt) {
		return Result{Reason: ErrExpired}
	}
	if int64(c.IssuedAt) > t+int64(MaxClockSkew/time.Second) {
		return Result{Reason: ErrNotYetValid}
	}
	alts := st.Rules.For(c.Type)
	if len(alts) == 0 {
		return Result{Reason: fmt.Errorf("%w: %v", ErrNoRule, c.Type)}
	}

	// Every signature must verify; each signer counts once, in its role.
	roleOf := map[string]string{}
	for _, s := range sigs {
		i := slices.IndexFunc(st.Operators, func(o Operator) bool { return o.ID == s.Signer })
		if i < 0 {
			return Result{Reason: fmt.Errorf("%w: %q", ErrUnknownSigner, s.Signer)}
		}
		if !st.Operators[i].Key.verify(command, s) {
			return Result{Reason: fmt.Errorf("%w: %q", ErrBadSignature, s.Signer)}
		}
		roleOf[s.Signer] = st.Operators[i].Role
	}
	count := map[string]int{}
	var signers []string
	for id, role := range roleOf {
		count[role]++
		signers = append(signers, id)
	}
	slices.Sort(signers)

	best, bestMissing := -1, 0
	var bestNeeds []Requirement
	for i, rule := range alts {
		var needs []Requirement
		missing := 0
		for _, q := range merge(rule) {
			if d := q.N - count[q.Role]; d > 0 {
				needs = append(needs, Requirement{Role: q.Role, N: d})
				missing += d
			}
		}
		if missing == 0 {
			return Result{Outcome: Satisfied, Rule: rule, Signers: signers}
		}
		if best < 0 || missing < bestMissing {
			best, bestMissing, bestNeeds = i, missing, needs
		}
	}
	return Result{Outcome: Pending, Rule: alts[best], Missing: bestNeeds, Signers: signers}
}

// merge sums a rule's requirements per role, in first-seen order: a rule
// that names a role twice asks for the sum, never counting a signer twice.
func merge(r Rule) Rule {
	var out Rule
	for _, q := range r {
		if i := slices.IndexFunc(out, func(o Requirement) bool { return o.Role == q.Role }); i >= 0 {
			out[i].N += q.N
			continue
		}
		out = append(out, q)
	}
	return out
}

// Validate checks that every rule has at least one requirement, each for a
// known-shaped role and N from 1 to MaxSignatures.
func (r Rules) Validate() error {
	for t, alts := range r {
		if len(alts) == 0 {
			return fmt.Errorf("quorum: %v has no rule", t)
		}
		for _, rule := range alts {
			if len(rule) == 0 {
				return fmt.Errorf("quorum: %v has an empty rule", t)
			}
			for _, q := range rule {
				if q.Role == "" || q.N < 1 || q.N > MaxSignatures {
					return fmt.Errorf("quorum: %v: requirement %d %q out of range", t, q.N, q.Role)
				}
			}
		}
	}
	return nil
}
