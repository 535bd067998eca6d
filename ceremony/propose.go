package ceremony

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/internal/wire"
	"github.com/trentkms/trent/quorum"
	"github.com/trentkms/trent/session"
)

// Proposal is what a proposer asks for: a command type and its parameters,
// given as the CLI's flags give them (file names are read here). Errors
// name the flags.
type Proposal struct {
	Type quorum.CommandType
	// Current is the domain's current state, from its latest token; nil
	// for CreateDomain, which starts a domain at state version 0.
	Current *domain.State

	Domain        string   // --domain: CreateDomain's domain name
	MemberFiles   []string // --member: AddMember one; CreateDomain one or more
	OperatorFiles []string // --operator: AddOperator one FILE; CreateDomain FILE:ROLE each
	Role          string   // --role: AddOperator
	ID            string   // --id: RemoveMember, RemoveOperator
	RuleFor       string   // --for: SetRule's command type
	Rules         []string // --rule: SetRule's alternatives (ParseRule)
	Retention     *int     // --retention: SetRetention; CreateDomain (default domain.DefaultRetention)
	RootFiles     []string // --root: SetTrustedAttestationRoots, CreateDomain
	ClearRoots    bool     // --clear-roots: SetTrustedAttestationRoots to none
	// HybridRequired (--hybrid-required): SetSessionPolicy's policy; its
	// ML-KEM keys are the current state's, replaced or completed by
	// those of the MemberFiles.
	HybridRequired bool
	Region         string // --region: SetPeerRegion's region (with --domain, its domain, and --member, its HSMs)

	Expires      time.Duration // validity; 0 is quorum.DefaultExpiry
	AllowLockout bool          // --allow-lockout: see Proposed.Lockouts
}

// Proposed is a new command file and what it would make of the domain.
type Proposed struct {
	File *File
	// Next is the state the command would produce (a dry run; for
	// CreateDomain, with a placeholder domain key record).
	Next *domain.State
	// Lockouts lists the command types that no set of Next's operators
	// could sign (CreateDomain aside). Propose refuses such a command
	// unless AllowLockout is set.
	Lockouts []quorum.CommandType
}

// ErrLockout means a proposed change would leave some command type
// impossible to sign.
var ErrLockout = errors.New("ceremony: the change would lock the domain")

// params a type takes, by flag name.
var allowed = map[quorum.CommandType][]string{
	quorum.CreateDomain:               {"--domain", "--member", "--operator", "--retention", "--root", "--hybrid-required"},
	quorum.AddMember:                  {"--member"},
	quorum.RemoveMember:               {"--id"},
	quorum.AddOperator:                {"--operator", "--role"},
	quorum.RemoveOperator:             {"--id"},
	quorum.SetRule:                    {"--for", "--rule"},
	quorum.RotateDomainKeys:           {},
	quorum.SetRetention:               {"--retention"},
	quorum.SetTrustedAttestationRoots: {"--root", "--clear-roots"},
	quorum.SetSessionPolicy:           {"--member", "--hybrid-required"},
	quorum.SetPeerRegion:              {"--region", "--domain", "--member"},
}

// Propose makes the command file for p at time now, with a nonce from
// crypto/rand and no signature yet. It checks the proposal first: only the
// type's parameters are given, they are well formed, and the command
// applies to p.Current (a dry run of domain.Apply; for CreateDomain, the
// state it creates must be valid) without locking the domain.
func Propose(p *Proposal, now time.Time) (*Proposed, error) {
	ok, known := allowed[p.Type]
	if !known {
		return nil, fmt.Errorf("ceremony: unknown command type %v", p.Type)
	}
	given := map[string]bool{
		"--domain": p.Domain != "", "--member": len(p.MemberFiles) > 0, "--operator": len(p.OperatorFiles) > 0,
		"--role": p.Role != "", "--id": p.ID != "", "--for": p.RuleFor != "", "--rule": len(p.Rules) > 0,
		"--retention": p.Retention != nil, "--root": len(p.RootFiles) > 0, "--clear-roots": p.ClearRoots,
		"--hybrid-required": p.HybridRequired,
		"--region":          p.Region != "",
	}
	var extra []string
	for name, set := range given {
		if set && !slices.Contains(ok, name) {
			extra = append(extra, name)
		}
	}
	if len(extra) > 0 {
		slices.Sort(extra)
		verb := "is not a parameter"
		if len(extra) > 1 {
			verb = "are not parameters"
		}
		return nil, fmt.Errorf("ceremony: %s %s of %v", strings.Join(extra, ", "), verb, p.Type)
	}
	if (p.Type == quorum.CreateDomain) != (p.Current == nil) {
		if p.Current == nil {
			return nil, fmt.Errorf("ceremony: %v needs the domain's current status (--domain-status, its latest token)", p.Type)
		}
		return nil, errors.New("ceremony: CreateDomain starts a domain: give no domain status")
	}

	ch := &Change{Type: p.Type}
	name, version := "", uint64(0)
	if p.Current != nil {
		name, version = p.Current.Name, p.Current.Version
	}
	var err error
	switch p.Type {
	case quorum.CreateDomain:
		if ch.Genesis, err = p.genesis(); err != nil {
			return nil, err
		}
		name = p.Domain
	case quorum.AddMember:
		if len(p.MemberFiles) != 1 {
			return nil, errors.New("ceremony: AddMember takes one --member")
		}
		if ch.Member, err = ReadMember(p.MemberFiles[0]); err != nil {
			return nil, err
		}
	case quorum.RemoveMember, quorum.RemoveOperator:
		if !wire.ValidID(p.ID) {
			return nil, fmt.Errorf("ceremony: %v needs --id (a valid ID, not %q)", p.Type, p.ID)
		}
		ch.ID = p.ID
	case quorum.AddOperator:
		if len(p.OperatorFiles) != 1 || p.Role == "" {
			return nil, errors.New("ceremony: AddOperator takes one --operator and a --role")
		}
		e, err := ReadEntry(p.OperatorFiles[0])
		if err != nil {
			return nil, err
		}
		if ch.Operator, err = e.Operator(p.Role); err != nil {
			return nil, err
		}
	case quorum.SetRule:
		if p.RuleFor == "" || len(p.Rules) == 0 {
			return nil, errors.New("ceremony: SetRule takes --for TYPE and one or more --rule")
		}
		if ch.RuleFor, err = quorum.ParseCommandType(p.RuleFor); err != nil {
			return nil, fmt.Errorf("ceremony: --for: %w", err)
		}
		if len(p.Rules) > domain.MaxAlternatives {
			return nil, fmt.Errorf("ceremony: at most %d alternative rules", domain.MaxAlternatives)
		}
		for _, s := range p.Rules {
			r, err := ParseRule(s)
			if err != nil {
				return nil, err
			}
			ch.Rules = append(ch.Rules, r)
		}
	case quorum.RotateDomainKeys:
	case quorum.SetRetention:
		if p.Retention == nil {
			return nil, errors.New("ceremony: SetRetention takes --retention")
		}
		ch.Retention = *p.Retention
	case quorum.SetSessionPolicy:
		ch.HybridRequired = p.HybridRequired
		keys := map[string][]byte{}
		for _, m := range p.Current.Members {
			if m.KEM != nil {
				keys[m.ID] = m.KEM
			}
		}
		for _, f := range p.MemberFiles {
			m, err := ReadMember(f)
			if err != nil {
				return nil, err
			}
			if m.KEM == nil {
				return nil, fmt.Errorf("ceremony: %s has no kem_public_key (trent hsm init prints it)", f)
			}
			keys[m.ID] = m.KEM
		}
		for id, ek := range keys {
			ch.KEMs = append(ch.KEMs, domain.MemberKEM{ID: id, EK: ek})
		}
	case quorum.SetTrustedAttestationRoots:
		if len(p.RootFiles) == 0 && !p.ClearRoots {
			return nil, errors.New("ceremony: SetTrustedAttestationRoots takes one or more --root, or --clear-roots for none")
		}
		if len(p.RootFiles) > 0 && p.ClearRoots {
			return nil, errors.New("ceremony: --root and --clear-roots together")
		}
		if ch.Roots, err = readAllRoots(p.RootFiles); err != nil {
			return nil, err
		}
	case quorum.SetPeerRegion:
		if !wire.ValidID(p.Region) || !wire.ValidID(p.Domain) {
			return nil, errors.New("ceremony: SetPeerRegion takes --region NAME --domain PEER-DOMAIN and the peer's --member files (none: forget the region)")
		}
		ch.Peer = domain.PeerRegion{Region: p.Region, Domain: p.Domain}
		for _, f := range p.MemberFiles {
			m, err := ReadMember(f)
			if err != nil {
				return nil, err
			}
			ch.Peer.Members = append(ch.Peer.Members, m)
		}
		slices.SortFunc(ch.Peer.Members, func(a, b session.Member) int { return strings.Compare(a.ID, b.ID) })
	}
	params, err := ch.Params()
	if err != nil {
		return nil, fmt.Errorf("ceremony: %v parameters: %w", ch.Type, err)
	}
	c, err := quorum.NewCommand(name, version, p.Type, params, now, p.Expires, func(b []byte) error {
		_, err := rand.Read(b)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ceremony: %w", err)
	}
	raw, err := c.Marshal()
	if err != nil {
		return nil, fmt.Errorf("ceremony: %w", err)
	}
	f, err := NewFile(&quorum.SignedCommand{Command: raw})
	if err != nil {
		return nil, err
	}

	res := &Proposed{File: f}
	if p.Type == quorum.CreateDomain {
		res.Next, err = genesisPreview(f, now)
	} else {
		res.Next, err = DryRun(p.Current, raw, now)
	}
	if err != nil {
		return nil, err
	}
	if p.Type == quorum.CreateDomain && len(Lockouts(res.Next, quorum.CreateDomain)) > 0 {
		return nil, fmt.Errorf("%w: no set of the operators given can sign CreateDomain (%s)",
			ErrLockout, FormatRules(res.Next.Rules[quorum.CreateDomain]))
	}
	res.Lockouts = Lockouts(res.Next, ChangeTypes()...)
	if len(res.Lockouts) > 0 && !p.AllowLockout {
		return nil, fmt.Errorf("%w: no set of its operators could then sign %s (--allow-lockout proposes it anyway)",
			ErrLockout, joinTypes(res.Lockouts))
	}
	return res, nil
}

// genesis builds CreateDomain's initial state from the proposal's files.
func (p *Proposal) genesis() (*domain.State, error) {
	if !wire.ValidID(p.Domain) {
		return nil, fmt.Errorf("ceremony: CreateDomain needs --domain (a valid name, not %q)", p.Domain)
	}
	if len(p.MemberFiles) == 0 || len(p.OperatorFiles) == 0 {
		return nil, errors.New("ceremony: CreateDomain takes one or more --member and --operator FILE:ROLE")
	}
	g := &domain.State{Name: p.Domain, Rules: quorum.DefaultRules(), Retention: domain.DefaultRetention}
	if p.Retention != nil {
		g.Retention = *p.Retention
	}
	for _, path := range p.MemberFiles {
		m, err := ReadMember(path)
		if err != nil {
			return nil, err
		}
		if _, dup := g.Member(m.ID); dup {
			return nil, fmt.Errorf("ceremony: member %s given twice", m.ID)
		}
		g.Members = append(g.Members, m)
	}
	slices.SortFunc(g.Members, func(a, b session.Member) int { return strings.Compare(a.ID, b.ID) })
	for _, spec := range p.OperatorFiles {
		i := strings.LastIndexByte(spec, ':')
		if i <= 0 || i == len(spec)-1 {
			return nil, fmt.Errorf("ceremony: --operator %q: want FILE:ROLE", spec)
		}
		e, err := ReadEntry(spec[:i])
		if err != nil {
			return nil, err
		}
		o, err := e.Operator(spec[i+1:])
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(g.Operators, func(x quorum.Operator) bool { return x.ID == o.ID }) {
			return nil, fmt.Errorf("ceremony: operator %q given twice", o.ID)
		}
		g.Operators = append(g.Operators, o)
	}
	slices.SortFunc(g.Operators, func(a, b quorum.Operator) int { return strings.Compare(a.ID, b.ID) })
	var err error
	if g.Roots, err = readAllRoots(p.RootFiles); err != nil {
		return nil, err
	}
	g.HybridRequired = p.HybridRequired
	return g, nil
}

func readAllRoots(files []string) ([][]byte, error) {
	var roots [][]byte
	for _, path := range files {
		r, err := ReadRoots(path)
		if err != nil {
			return nil, err
		}
		roots = append(roots, r...)
	}
	if len(roots) > domain.MaxRoots {
		return nil, fmt.Errorf("ceremony: %d attestation roots, at most %d", len(roots), domain.MaxRoots)
	}
	return roots, nil
}

// genesisPreview is the state a CreateDomain command creates, with a
// placeholder record for the first domain key (an HSM draws the real one).
func genesisPreview(f *File, now time.Time) (*domain.State, error) {
	st := f.Change.Genesis.Clone()
	st.Name, st.Version = f.Command.Domain, 1
	st.Keys = []domain.KeyInfo{{Created: f.Command.IssuedAt, Active: true}}
	if err := st.Validate(); err != nil {
		return nil, fmt.Errorf("ceremony: the domain would not be valid: %w", err)
	}
	return st, nil
}

// dryRunID names the stand-in operator of DryRun: '~' sorts after every
// other printable character, so it is unlikely to meet a real ID.
const dryRunID = "~ceremony-dry-run~"

// DryRun returns what the command (its encoding) makes of cur at time now,
// without its signatures: it runs domain.Apply on a copy of cur in which a
// stand-in operator alone satisfies the command's type, then removes the
// stand-in. For RotateDomainKeys the new key's record is a placeholder.
// The error is Apply's (wrapped): the command would not apply.
func DryRun(cur *domain.State, command []byte, now time.Time) (*domain.State, error) {
	c, err := quorum.ParseCommand(command)
	if err != nil {
		return nil, fmt.Errorf("ceremony: %w", err)
	}
	if c.Type == quorum.CreateDomain {
		return nil, errors.New("ceremony: the domain exists: CreateDomain does not apply")
	}
	if slices.ContainsFunc(cur.Operators, func(o quorum.Operator) bool { return o.ID == dryRunID }) ||
		len(cur.Operators) >= domain.MaxOperators {
		return nil, errors.New("ceremony: cannot dry-run this command on this domain")
	}
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ceremony: %w", err)
	}
	pub, err := quorum.NewECDSAKey(&k.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("ceremony: %w", err)
	}
	sim := cur.Clone()
	sim.Operators = append(sim.Operators, quorum.Operator{ID: dryRunID, Role: dryRunID, Key: pub})
	slices.SortFunc(sim.Operators, func(a, b quorum.Operator) int { return strings.Compare(a.ID, b.ID) })
	stand := []quorum.Rule{{{Role: dryRunID, N: 1}}}
	sim.Rules[c.Type] = stand
	sig, err := quorum.SignECDSA(dryRunID, k, command)
	if err != nil {
		return nil, fmt.Errorf("ceremony: %w", err)
	}
	var newKey *domain.KeyInfo
	if c.Type == quorum.RotateDomainKeys {
		newKey = &domain.KeyInfo{}
		if _, err := rand.Read(newKey.ID[:]); err != nil {
			return nil, fmt.Errorf("ceremony: %w", err)
		}
	}
	next, err := domain.Apply(sim, &quorum.SignedCommand{Command: command, Signatures: []quorum.Signature{sig}}, newKey, now.Unix())
	if err != nil {
		return nil, fmt.Errorf("ceremony: the command would not apply: %w", err)
	}
	next.Operators = slices.DeleteFunc(next.Operators, func(o quorum.Operator) bool { return o.ID == dryRunID })
	if alts := next.Rules[c.Type]; len(alts) == 1 && slices.Equal(alts[0], stand[0]) {
		if own, ok := cur.Clone().Rules[c.Type]; ok {
			next.Rules[c.Type] = own
		} else {
			delete(next.Rules, c.Type) // an optional type without a rule of its own (quorum.Rules.For)
		}
	}
	if err := next.Validate(); err != nil {
		return nil, fmt.Errorf("ceremony: the command would not apply: %w", err)
	}
	return next, nil
}

// ChangeTypes lists the command types that change an existing domain:
// every type but CreateDomain.
func ChangeTypes() []quorum.CommandType {
	return slices.DeleteFunc(slices.Clone(quorum.CommandTypes), func(t quorum.CommandType) bool { return t == quorum.CreateDomain })
}

// Lockouts lists those of types for which no alternative of st's rules can
// be met by st's operators: nobody could ever sign such a command, and no
// other command can fix it unless it is signable.
func Lockouts(st *domain.State, types ...quorum.CommandType) []quorum.CommandType {
	have := map[string]int{}
	for _, o := range st.Operators {
		have[o.Role]++
	}
	var out []quorum.CommandType
	for _, t := range types {
		if !slices.ContainsFunc(st.Rules.For(t), func(r quorum.Rule) bool { return satisfiable(r, have) }) {
			out = append(out, t)
		}
	}
	return out
}

func satisfiable(r quorum.Rule, have map[string]int) bool {
	need := map[string]int{}
	for _, q := range r {
		need[q.Role] += q.N
	}
	for role, n := range need {
		if have[role] < n {
			return false
		}
	}
	return true
}

func joinTypes(ts []quorum.CommandType) string {
	var s []string
	for _, t := range ts {
		s = append(s, t.String())
	}
	return strings.Join(s, ", ")
}
