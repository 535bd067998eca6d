package ceremony

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/hsm/node"
	"github.com/trentkms/trent/quorum"
)

// HSM names an HSM node provisioned on this machine (trent hsm init).
type HSM struct {
	Dir   string
	Label string // node.DefaultLabel if empty
	PIN   string // Dir/user.pin if empty
}

func (h HSM) open() (*node.Node, error) {
	n, err := node.Open(node.Options{Dir: h.Dir, Label: h.Label, PIN: h.PIN})
	if err != nil {
		return nil, fmt.Errorf("ceremony: HSM: %w", err)
	}
	return n, nil
}

// CreateDomain is genesis on h: f must be a satisfied CreateDomain command
// (checked here first, then by the HSM, which draws the first domain key
// in its token and exports the first domain token). It returns the token.
func CreateDomain(h HSM, f *File, now time.Time) ([]byte, *domain.Parsed, error) {
	if f.Command.Type != quorum.CreateDomain {
		return nil, nil, fmt.Errorf("ceremony: %v is not CreateDomain", f.Command.Type)
	}
	n, err := h.openFor(f, nil, now)
	if err != nil {
		return nil, nil, err
	}
	defer n.Close()
	if _, ok := f.Change.Genesis.Member(n.ID()); !ok {
		return nil, nil, fmt.Errorf("ceremony: HSM %s is not a member of the domain the command creates", n.ID())
	}
	token, err := n.CreateDomain(f.Signed, now)
	if err != nil {
		return nil, nil, fmt.Errorf("ceremony: genesis: %w", err)
	}
	return hsmToken(token)
}

// Apply rehearses a change on one HSM: h imports token (the domain's
// latest; an HSM holds its domain keys as session objects, so a new
// process starts with none) and exports the token of the state f makes of
// it. The HSM's own state is not moved on (the four-step change: every
// member imports the new token afterwards). f is checked first.
func Apply(h HSM, token []byte, f *File, now time.Time) ([]byte, *domain.Parsed, error) {
	cur, err := domain.ParseToken(token)
	if err != nil {
		return nil, nil, fmt.Errorf("ceremony: domain token: %w", err)
	}
	if f.Command.Type == quorum.CreateDomain {
		return nil, nil, errors.New("ceremony: CreateDomain makes a domain: use domain create")
	}
	n, err := h.openFor(f, cur.State, now)
	if err != nil {
		return nil, nil, err
	}
	defer n.Close()
	if err := n.Import(token, now); err != nil {
		return nil, nil, fmt.Errorf("ceremony: import: %w", err)
	}
	next, err := n.Export(f.Signed, now)
	if err != nil {
		return nil, nil, fmt.Errorf("ceremony: export: %w", err)
	}
	return hsmToken(next)
}

// openFor checks that f is satisfied against cur (nil for genesis), then
// opens the HSM to carry it out.
func (h HSM) openFor(f *File, cur *domain.State, now time.Time) (*node.Node, error) {
	st, err := Check(f, cur, now)
	if err != nil {
		return nil, err
	}
	if err := st.Err(); err != nil {
		return nil, err
	}
	return h.open()
}

// hsmToken parses a token the HSM made.
func hsmToken(token []byte) ([]byte, *domain.Parsed, error) {
	p, err := domain.ParseToken(token)
	if err != nil {
		return nil, nil, fmt.Errorf("ceremony: the HSM's token: %w", err)
	}
	return token, p, nil
}

// Inspection is the public content of a domain token. The token's domain
// keys are encrypted for its member HSMs and are not opened.
type Inspection struct {
	Name      string           `json:"name"`
	Version   uint64           `json:"version"`
	Members   []string         `json:"members"`
	Operators []OperatorRecord `json:"operators"`
	Rules     []RuleRecord     `json:"rules"`
	Retention int              `json:"retention"`
	Keys      []KeyRecord      `json:"domain_keys"`
	Roots     []string         `json:"attestation_roots"`
	// HybridRequired is the session policy; MemberKEMKeys the members'
	// ML-KEM-1024 keys, "hsm_id sha256:…" each.
	HybridRequired bool     `json:"hybrid_required"`
	MemberKEMKeys  []string `json:"member_kem_keys"`
	Exporter       string   `json:"exporter"`
	// ExporterSignature: "verified" (against this state's member),
	// "unchecked" (the exporter is not a member of this state: check the
	// token against the previous one, as an HSM does), or "invalid".
	ExporterSignature string  `json:"exporter_signature"`
	Command           Summary `json:"command"`
}

// OperatorRecord is an operator as Inspect shows it.
type OperatorRecord struct {
	ID          string `json:"id"`
	Role        string `json:"role"`
	Alg         string `json:"alg"`
	Fingerprint string `json:"fingerprint"`
}

// RuleRecord is a command type's alternatives.
type RuleRecord struct {
	Type  string   `json:"type"`
	Rules []string `json:"rules"`
}

// KeyRecord is a domain key's public record.
type KeyRecord struct {
	ID      string `json:"id"`
	Active  bool   `json:"active"`
	Created string `json:"created"`
}

// Inspect decodes a token's public parts.
func Inspect(token []byte) (*Inspection, error) {
	p, err := domain.ParseToken(token)
	if err != nil {
		return nil, fmt.Errorf("ceremony: domain token: %w", err)
	}
	st := p.State
	in := &Inspection{Name: st.Name, Version: st.Version, Retention: st.Retention, Exporter: p.Token.Exporter,
		Members: []string{}, Operators: []OperatorRecord{}, Keys: []KeyRecord{}, Roots: []string{},
		HybridRequired: st.HybridRequired, MemberKEMKeys: []string{}}
	for _, m := range st.Members {
		in.Members = append(in.Members, m.ID)
		if m.KEM != nil {
			sum := sha256.Sum256(m.KEM)
			in.MemberKEMKeys = append(in.MemberKEMKeys, m.ID+" sha256:"+hex.EncodeToString(sum[:16]))
		}
	}
	for _, o := range st.Operators {
		in.Operators = append(in.Operators, OperatorRecord{ID: o.ID, Role: o.Role, Alg: o.Key.Alg().String(), Fingerprint: KeyFingerprint(o.Key)})
	}
	for _, t := range quorum.CommandTypes { // an optional type's own rule, or its fallback's

		rr := RuleRecord{Type: t.String()}
		for _, r := range st.Rules.For(t) {
			rr.Rules = append(rr.Rules, r.String())
		}
		in.Rules = append(in.Rules, rr)
	}
	for _, k := range st.Keys {
		in.Keys = append(in.Keys, KeyRecord{ID: hex.EncodeToString(k.ID[:]), Active: k.Active, Created: stamp(k.Created)})
	}
	for _, r := range st.Roots {
		in.Roots = append(in.Roots, describeRoot(r))
	}
	switch _, member := st.Member(p.Token.Exporter); {
	case !member:
		in.ExporterSignature = "unchecked"
	case p.Verify(st) != nil:
		in.ExporterSignature = "invalid"
	default:
		in.ExporterSignature = "verified"
	}
	f, err := NewFile(p.Command)
	if err != nil {
		return nil, fmt.Errorf("ceremony: the token's command: %w", err)
	}
	in.Command = f.Summary()
	return in, nil
}

// Text is the inspection for people.
func (in *Inspection) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "domain %q, state version %d\n", in.Name, in.Version)
	fmt.Fprintf(&b, "exported by %s (signature %s)\n", in.Exporter, in.ExporterSignature)
	fmt.Fprintf(&b, "\nmembers (%d):\n", len(in.Members))
	for _, m := range in.Members {
		fmt.Fprintf(&b, "  %s\n", m)
	}
	fmt.Fprintf(&b, "\noperators (%d):\n", len(in.Operators))
	for _, o := range in.Operators {
		fmt.Fprintf(&b, "  %-16s %-14s %-18s %s\n", o.ID, o.Role, o.Alg, o.Fingerprint)
	}
	b.WriteString("\nrules:\n")
	for _, r := range in.Rules {
		fmt.Fprintf(&b, "  %-27s %s\n", r.Type, strings.Join(r.Rules, " | "))
	}
	fmt.Fprintf(&b, "\nretention: %d deactivated domain keys\n", in.Retention)
	fmt.Fprintf(&b, "\ndomain keys (%d):\n", len(in.Keys))
	for _, k := range in.Keys {
		state := "retained"
		if k.Active {
			state = "active"
		}
		fmt.Fprintf(&b, "  %s  %-8s created %s\n", k.ID, state, k.Created)
	}
	fmt.Fprintf(&b, "\nattestation roots (%d):\n", len(in.Roots))
	for _, r := range in.Roots {
		fmt.Fprintf(&b, "  %s\n", r)
	}
	policy := "classical or hybrid sessions"
	if in.HybridRequired {
		policy = "hybrid ML-KEM-1024 + P-384 key establishment required"
	}
	fmt.Fprintf(&b, "\nsession policy: %s\nmember ML-KEM keys (%d):\n", policy, len(in.MemberKEMKeys))
	for _, k := range in.MemberKEMKeys {
		fmt.Fprintf(&b, "  %s\n", k)
	}
	b.WriteString("\nproduced by:\n")
	b.WriteString(indent(in.Command.Text(), "  "))
	return b.String()
}

func indent(s, prefix string) string {
	lines := strings.SplitAfter(s, "\n")
	var b strings.Builder
	for _, l := range lines {
		if l != "" {
			b.WriteString(prefix + l)
		}
	}
	return b.String()
}
