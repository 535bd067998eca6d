package domain

import (
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/crypto/cryptobyte"

	"github.com/trentkms/trent/internal/wire"
	"github.com/trentkms/trent/quorum"
	"github.com/trentkms/trent/session"
)

// Object types (docs/protocol.md).
const (
	TypeState byte = 0x20
	TypeToken byte = 0x21
)

// Limits.
const (
	MaxMembers        = 255 // a u8 count; one-pass C(1,2) reaches as many
	MaxOperators      = 64
	MaxRoles          = 16
	MaxAlternatives   = 8
	MaxRequirements   = 8
	MaxDomainKeys     = 32
	MaxRoots          = 16
	MaxRootLen        = 8192
	DefaultRetention  = 7
	MaxRetention      = MaxDomainKeys - 1
	maxStateLen       = 1 << 20
	spkiP384Len       = 120 // DER SubjectPublicKeyInfo of a P-384 key
	maxOperatorKeyLen = 2592
)

// Errors.
var (
	ErrMalformed = errors.New("domain: malformed message")
	ErrVersion   = errors.New("domain: unsupported protocol version")
	ErrInvalid   = errors.New("domain: invalid domain state")
)

func malformed(what string) error { return fmt.Errorf("%w: %s", ErrMalformed, what) }

// KeyInfo is the public record of a domain key: its ID, when it was made
// (the Unix time of the command that made it) and whether it is active.
type KeyInfo struct {
	ID      [session.KeyIDSize]byte
	Created uint64
	Active  bool
}

// State is a domain's public state: everything but the domain keys'
// values, which exist only inside HSMs. Lists are kept sorted (members and
// operators by ID, keys oldest first) so that the encoding is canonical.
type State struct {
	Name      string
	Version   uint64
	Members   []session.Member
	Operators []quorum.Operator
	Rules     quorum.Rules
	Retention int // deactivated domain keys kept beyond the active one
	Keys      []KeyInfo
	Roots     [][]byte // trusted attestation roots, DER certificates
	// HybridRequired: sessions and domain-key transport must be hybrid
	// (ML-KEM-1024 + P-384); every member then has an ML-KEM key
	// (session.Member.KEM). Set by SetSessionPolicy.
	HybridRequired bool
	// PeerRegions are the other regions' domains trusted for multi-Region
	// key material (peers.go), sorted by region.
	PeerRegions []PeerRegion
}

// Quorum is the quorum package's view of the state.
func (s *State) Quorum() *quorum.State {
	return &quorum.State{Domain: s.Name, Version: s.Version, Operators: s.Operators, Rules: s.Rules}
}

// Directory is the session protocol's view of the state: service hosts
// are operators with the service-host role and an ECDSA key.
func (s *State) Directory() (*session.StaticDirectory, error) {
	var ops []session.Operator
	for _, o := range s.Operators {
		if k := o.Key.ECDSA(); k != nil {
			ops = append(ops, session.Operator{ID: o.ID, Key: k, Roles: []string{o.Role}})
		}
	}
	d, err := session.NewStaticDirectory(s.Name, s.Version, ops, s.Members)
	if err != nil {
		return nil, err
	}
	d.SetHybridRequired(s.HybridRequired)
	return d, nil
}

// Member returns the member with id.
func (s *State) Member(id string) (session.Member, bool) {
	i := slices.IndexFunc(s.Members, func(m session.Member) bool { return m.ID == id })
	if i < 0 {
		return session.Member{}, false
	}
	return s.Members[i], true
}

// ActiveKey returns the active domain key's record.
func (s *State) ActiveKey() (KeyInfo, bool) {
	for _, k := range s.Keys {
		if k.Active {
			return k, true
		}
	}
	return KeyInfo{}, false
}

// Clone returns a deep copy (keys are immutable values and are shared).
func (s *State) Clone() *State {
	c := *s
	c.Members = slices.Clone(s.Members)
	c.Operators = slices.Clone(s.Operators)
	c.Keys = slices.Clone(s.Keys)
	c.Roots = slices.Clone(s.Roots)
	c.PeerRegions = clonePeers(s.PeerRegions)
	c.Rules = quorum.Rules{}
	for t, alts := range s.Rules {
		var cp []quorum.Rule
		for _, r := range alts {
			cp = append(cp, slices.Clone(r))
		}
		c.Rules[t] = cp
	}
	return &c
}

// Validate checks the invariants every state holds.
func (s *State) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, a...)...)
	}
	if !wire.ValidID(s.Name) {
		return bad("name %q", s.Name)
	}
	if len(s.Members) == 0 || len(s.Members) > MaxMembers {
		return bad("%d members", len(s.Members))
	}
	for i, m := range s.Members {
		if i > 0 && s.Members[i-1].ID >= m.ID {
			return bad("members not sorted or duplicated")
		}
		if m.Signing == nil || m.Agreement == nil || wire.HSMID(m.Signing) != m.ID {
			return bad("member %q: keys missing or not matching its ID", m.ID)
		}
	}
	if len(s.Operators) > MaxOperators {
		return bad("%d operators", len(s.Operators))
	}
	for i, o := range s.Operators {
		if i > 0 && s.Operators[i-1].ID >= o.ID {
			return bad("operators not sorted or duplicated")
		}
		if !wire.ValidID(o.ID) || !wire.ValidID(o.Role) {
			return bad("operator %q role %q", o.ID, o.Role)
		}
		if o.Role == quorum.RoleServiceHost && o.Key.ECDSA() == nil {
			return bad("service host %q needs an ECDSA P-384 key (sessions are ECDSA)", o.ID)
		}
	}
	if err := s.Rules.Validate(); err != nil {
		return bad("%v", err)
	}
	for _, t := range quorum.CommandTypes {
		if len(s.Rules[t]) == 0 && !quorum.Optional(t) {
			return bad("no rule for %v", t)
		}
	}
	if s.Retention < 0 || s.Retention > MaxRetention {
		return bad("retention %d", s.Retention)
	}
	active := 0
	for i, k := range s.Keys {
		if i > 0 && s.Keys[i-1].Created > k.Created {
			return bad("domain keys out of order")
		}
		if k.Active {
			active++
		}
		for _, o := range s.Keys[:i] {
			if o.ID == k.ID {
				return bad("domain key ID twice")
			}
		}
	}
	if active != 1 || len(s.Keys) > s.Retention+1 {
		return bad("%d active domain keys, %d in all, retention %d", active, len(s.Keys), s.Retention)
	}
	if len(s.Roots) > MaxRoots {
		return bad("%d attestation roots", len(s.Roots))
	}
	for _, r := range s.Roots {
		if _, err := x509.ParseCertificate(r); err != nil {
			return bad("attestation root: %v", err)
		}
	}
	if err := s.validatePeers(); err != nil {
		return bad("%v", err)
	}
	return s.validatePolicy()
}

// Marshal encodes the state canonically (docs/protocol.md, Domain state).
func (s *State) Marshal() ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	wire.AddHeader(&b, TypeState)
	wire.AddID(&b, s.Name)
	b.AddUint64(s.Version)
	b.AddUint8(uint8(len(s.Members)))
	for _, m := range s.Members {
		addMember(&b, m)
	}
	b.AddUint8(uint8(len(s.Operators)))
	for _, o := range s.Operators {
		addOperator(&b, o)
	}
	addRules(&b, s.Rules)
	b.AddUint8(uint8(s.Retention))
	b.AddUint8(uint8(len(s.Keys)))
	for _, k := range s.Keys {
		b.AddBytes(k.ID[:])
		b.AddUint64(k.Created)
		b.AddUint8(boolByte(k.Active))
	}
	b.AddUint8(uint8(len(s.Roots)))
	for _, r := range s.Roots {
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(r) })
	}
	if hasPolicy(s.HybridRequired, s.Members) {
		b.AddUint8(sectionPolicy)
		addPolicy(&b, s.HybridRequired, memberKEMs(s.Members))
	}
	if len(s.PeerRegions) > 0 {
		b.AddUint8(sectionPeers)
		addPeerRegions(&b, s.PeerRegions)
	}
	out, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("domain: %w", err)
	}
	return out, nil
}

// ParseState decodes a state strictly and validates it.
func ParseState(in []byte) (*State, error) {
	if len(in) > maxStateLen {
		return nil, malformed("state too long")
	}
	s := cryptobyte.String(in)
	st, err := readState(&s)
	if err != nil {
		return nil, err
	}
	if !s.Empty() {
		return nil, malformed("trailing bytes")
	}
	return st, nil
}

func readState(s *cryptobyte.String) (*State, error) {
	if err := wire.CheckHeader(s, TypeState, ErrMalformed, ErrVersion); err != nil {
		return nil, err
	}
	st := &State{}
	var n uint8
	if !wire.ReadID(s, &st.Name) || !s.ReadUint64(&st.Version) || !s.ReadUint8(&n) {
		return nil, malformed("state header")
	}
	for range n {
		m, err := readMember(s)
		if err != nil {
			return nil, err
		}
		st.Members = append(st.Members, m)
	}
	if !s.ReadUint8(&n) {
		return nil, malformed("operator count")
	}
	for range n {
		o, err := readOperator(s)
		if err != nil {
			return nil, err
		}
		st.Operators = append(st.Operators, o)
	}
	var err error
	if st.Rules, err = readRules(s); err != nil {
		return nil, err
	}
	var retention uint8
	if !s.ReadUint8(&retention) || !s.ReadUint8(&n) {
		return nil, malformed("retention or key count")
	}
	st.Retention = int(retention)
	for range n {
		var k KeyInfo
		var active uint8
		if !s.CopyBytes(k.ID[:]) || !s.ReadUint64(&k.Created) || !s.ReadUint8(&active) || active > 1 {
			return nil, malformed("domain key record")
		}
		k.Active = active == 1
		st.Keys = append(st.Keys, k)
	}
	if !s.ReadUint8(&n) {
		return nil, malformed("root count")
	}
	for range n {
		var r cryptobyte.String
		if !s.ReadUint16LengthPrefixed(&r) || len(r) == 0 || len(r) > MaxRootLen {
			return nil, malformed("attestation root")
		}
		st.Roots = append(st.Roots, append([]byte(nil), r...))
	}
	// The optional sections, each a tag and its body, in increasing tag
	// order; a domain without them encodes as before they existed.
	var last uint8
	for !s.Empty() {
		var tag uint8
		if !s.ReadUint8(&tag) || tag <= last || tag > sectionPeers {
			return nil, malformed("optional section tag")
		}
		last = tag
		switch tag {
		case sectionPolicy:
			var keys []MemberKEM
			var err error
			if st.HybridRequired, keys, err = readPolicy(s); err != nil {
				return nil, err
			}
			if !hasPolicy(st.HybridRequired, nil) && len(keys) == 0 {
				return nil, malformed("empty session policy section (a classical domain without ML-KEM keys has none)")
			}
			if err := setKEMs(st.Members, keys); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
			}
		case sectionPeers:
			ps, err := readPeerRegions(s)
			if err != nil {
				return nil, err
			}
			if len(ps) == 0 {
				return nil, malformed("empty peer regions section")
			}
			st.PeerRegions = ps
		}
	}
	if err := st.Validate(); err != nil {
		return nil, err
	}
	return st, nil
}

// The tags of the state's optional sections (docs/protocol.md, Domain
// state).
const (
	sectionPolicy uint8 = 1 // the session policy and members' ML-KEM keys (hybrid.go)
	sectionPeers  uint8 = 2 // peer regions (peers.go)
)

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// Members: ID ‖ v16 signing SPKI ‖ v16 agreement SPKI.
func addMember(b *cryptobyte.Builder, m session.Member) {
	wire.AddID(b, m.ID)
	for _, k := range []any{m.Signing, m.Agreement} {
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			b.SetError(err)
			return
		}
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(der) })
	}
}

func readMember(s *cryptobyte.String) (session.Member, error) {
	var id string
	var sk, ak cryptobyte.String
	if !wire.ReadID(s, &id) || !s.ReadUint16LengthPrefixed(&sk) || !s.ReadUint16LengthPrefixed(&ak) ||
		len(sk) > spkiP384Len || len(ak) > spkiP384Len {
		return session.Member{}, malformed("member")
	}
	m, err := ParseMember(id, sk, ak)
	if err != nil {
		return session.Member{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return m, nil
}

// Operators: ID ‖ v8 role ‖ u8 alg ‖ v16 key.
func addOperator(b *cryptobyte.Builder, o quorum.Operator) {
	wire.AddID(b, o.ID)
	wire.AddID(b, o.Role)
	b.AddUint8(uint8(o.Key.Alg()))
	k, err := o.Key.Marshal()
	if err != nil {
		b.SetError(err)
		return
	}
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(k) })
}

func readOperator(s *cryptobyte.String) (quorum.Operator, error) {
	var o quorum.Operator
	var alg uint8
	var k cryptobyte.String
	if !wire.ReadID(s, &o.ID) || !wire.ReadID(s, &o.Role) || !s.ReadUint8(&alg) ||
		!s.ReadUint16LengthPrefixed(&k) || len(k) > maxOperatorKeyLen {
		return o, malformed("operator")
	}
	key, err := quorum.ParsePublicKey(quorum.Alg(alg), k)
	if err != nil {
		return o, fmt.Errorf("%w: operator %q: %v", ErrMalformed, o.ID, err)
	}
	o.Key = key
	return o, nil
}

// Rules: u8 count of types, ascending; each u16 type ‖ u8 alternatives ‖
// each (u8 requirements ‖ each (v8 role ‖ u8 N)).
func addRules(b *cryptobyte.Builder, r quorum.Rules) {
	types := make([]quorum.CommandType, 0, len(r))
	for t := range r {
		types = append(types, t)
	}
	slices.Sort(types)
	b.AddUint8(uint8(len(types)))
	for _, t := range types {
		b.AddUint16(uint16(t))
		addAlternatives(b, r[t])
	}
}

func addAlternatives(b *cryptobyte.Builder, alts []quorum.Rule) {
	b.AddUint8(uint8(len(alts)))
	for _, rule := range alts {
		b.AddUint8(uint8(len(rule)))
		for _, q := range rule {
			wire.AddID(b, q.Role)
			b.AddUint8(uint8(q.N))
		}
	}
}

func readAlternatives(s *cryptobyte.String) ([]quorum.Rule, error) {
	var na uint8
	if !s.ReadUint8(&na) || na == 0 || na > MaxAlternatives {
		return nil, malformed("rule alternatives")
	}
	var alts []quorum.Rule
	for range na {
		var nq uint8
		if !s.ReadUint8(&nq) || nq == 0 || nq > MaxRequirements {
			return nil, malformed("rule requirements")
		}
		var rule quorum.Rule
		for range nq {
			var q quorum.Requirement
			var n uint8
			if !wire.ReadID(s, &q.Role) || !s.ReadUint8(&n) || n == 0 {
				return nil, malformed("requirement")
			}
			q.N = int(n)
			rule = append(rule, q)
		}
		alts = append(alts, rule)
	}
	return alts, nil
}

func readRules(s *cryptobyte.String) (quorum.Rules, error) {
	var nt uint8
	if !s.ReadUint8(&nt) {
		return nil, malformed("rule count")
	}
	r := quorum.Rules{}
	prev := -1
	for range nt {
		var t uint16
		if !s.ReadUint16(&t) || int(t) <= prev {
			return nil, malformed("rule types not in increasing order")
		}
		prev = int(t)
		alts, err := readAlternatives(s)
		if err != nil {
			return nil, err
		}
		r[quorum.CommandType(t)] = alts
	}
	return r, nil
}

// Summary is a one-line description, for logs and the CLI.
func (s *State) Summary() string {
	var ids []string
	for _, m := range s.Members {
		ids = append(ids, m.ID)
	}
	return fmt.Sprintf("domain %q version %d: %d members (%s), %d operators, %d domain keys%s",
		s.Name, s.Version, len(s.Members), strings.Join(ids, ", "), len(s.Operators), len(s.Keys), s.peerSummary())
}
