package domain

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/trentkms/trent/internal/wire"
	"github.com/trentkms/trent/quorum"
	"github.com/trentkms/trent/session"
)

// Parameters of each command type (docs/protocol.md, Command parameters).
// Each Params* function encodes; Apply decodes strictly.

// ParamsGenesis encodes CreateDomain's parameters: the initial members,
// operators, rules, retention and attestation roots (name, version and
// domain keys come from the command and the HSM).
func ParamsGenesis(st *State) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(uint8(len(st.Members)))
	for _, m := range st.Members {
		addMember(&b, m)
	}
	b.AddUint8(uint8(len(st.Operators)))
	for _, o := range st.Operators {
		addOperator(&b, o)
	}
	addRules(&b, st.Rules)
	b.AddUint8(uint8(st.Retention))
	addRoots(&b, st.Roots)
	if hasPolicy(st.HybridRequired, st.Members) {
		addPolicy(&b, st.HybridRequired, memberKEMs(st.Members))
	}
	return b.Bytes()
}

// ParamsMember encodes AddMember's parameters: the member, then its
// ML-KEM-1024 key (v16) if it has one.
func ParamsMember(m session.Member) ([]byte, error) {
	var b cryptobyte.Builder
	addMember(&b, m)
	if m.KEM != nil {
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(m.KEM) })
	}
	return b.Bytes()
}

// ParamsOperator encodes AddOperator's parameters.
func ParamsOperator(o quorum.Operator) ([]byte, error) {
	var b cryptobyte.Builder
	addOperator(&b, o)
	return b.Bytes()
}

// ParamsID encodes RemoveMember's and RemoveOperator's parameters.
func ParamsID(id string) ([]byte, error) {
	var b cryptobyte.Builder
	wire.AddID(&b, id)
	return b.Bytes()
}

// ParamsRule encodes SetRule's parameters: the command type and its new
// alternatives.
func ParamsRule(t quorum.CommandType, alts []quorum.Rule) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint16(uint16(t))
	addAlternatives(&b, alts)
	return b.Bytes()
}

// ParamsRetention encodes SetRetention's parameters.
func ParamsRetention(r int) ([]byte, error) {
	if r < 0 || r > MaxRetention {
		return nil, fmt.Errorf("domain: retention %d outside 0 to %d", r, MaxRetention)
	}
	return []byte{uint8(r)}, nil
}

// ParamsRoots encodes SetTrustedAttestationRoots' parameters.
func ParamsRoots(roots [][]byte) ([]byte, error) {
	var b cryptobyte.Builder
	addRoots(&b, roots)
	return b.Bytes()
}

func addRoots(b *cryptobyte.Builder, roots [][]byte) {
	b.AddUint8(uint8(len(roots)))
	for _, r := range roots {
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(r) })
	}
}

func readRoots(s *cryptobyte.String) ([][]byte, error) {
	var n uint8
	if !s.ReadUint8(&n) || n > MaxRoots {
		return nil, malformed("root count")
	}
	var out [][]byte
	for range n {
		var r cryptobyte.String
		if !s.ReadUint16LengthPrefixed(&r) || len(r) == 0 || len(r) > MaxRootLen {
			return nil, malformed("attestation root")
		}
		out = append(out, append([]byte(nil), r...))
	}
	return out, nil
}

// Change is a command's parameters, decoded: the fields of its type are
// set.
type Change struct {
	Type quorum.CommandType

	// CreateDomain: the initial Members, Operators, Rules, Retention and
	// Roots (the name is the command's domain; version and keys come from
	// genesis).
	Genesis *State
	// AddMember.
	Member session.Member
	// RemoveMember, RemoveOperator.
	ID string
	// AddOperator.
	Operator quorum.Operator
	// SetRule: the command type and its new alternatives.
	RuleFor quorum.CommandType
	Rules   []quorum.Rule
	// SetRetention.
	Retention int
	// SetTrustedAttestationRoots: DER certificates.
	Roots [][]byte
	// SetSessionPolicy: the policy and every member's ML-KEM key.
	HybridRequired bool
	KEMs           []MemberKEM
	// SetPeerRegion: the region, its domain and its members (none:
	// forget the region).
	Peer PeerRegion
}

// Params encodes the change (the Params* functions, by type).
func (ch *Change) Params() ([]byte, error) {
	switch ch.Type {
	case quorum.CreateDomain:
		if ch.Genesis == nil {
			return nil, errors.New("domain: CreateDomain without its initial state")
		}
		return ParamsGenesis(ch.Genesis)
	case quorum.AddMember:
		return ParamsMember(ch.Member)
	case quorum.RemoveMember, quorum.RemoveOperator:
		return ParamsID(ch.ID)
	case quorum.AddOperator:
		return ParamsOperator(ch.Operator)
	case quorum.SetRule:
		return ParamsRule(ch.RuleFor, ch.Rules)
	case quorum.RotateDomainKeys:
		return []byte{}, nil
	case quorum.SetRetention:
		return ParamsRetention(ch.Retention)
	case quorum.SetTrustedAttestationRoots:
		return ParamsRoots(ch.Roots)
	case quorum.SetSessionPolicy:
		return ParamsSessionPolicy(ch.HybridRequired, ch.KEMs)
	case quorum.SetPeerRegion:
		return ParamsPeerRegion(ch.Peer)
	}
	return nil, cannot("unknown command type %v", ch.Type)
}

// DecodeChange decodes a command's parameters strictly: the result must
// encode (Params) to exactly the command's parameter bytes, so that what a
// signer is shown is what the HSMs apply.
func DecodeChange(c *quorum.Command) (*Change, error) {
	ch := &Change{Type: c.Type}
	s := cryptobyte.String(c.Params)
	var err error
	switch c.Type {
	case quorum.CreateDomain:
		g := &State{Name: c.Domain}
		var n uint8
		if !s.ReadUint8(&n) {
			return nil, malformed("genesis members")
		}
		for range n {
			m, err := readMember(&s)
			if err != nil {
				return nil, err
			}
			g.Members = append(g.Members, m)
		}
		if !s.ReadUint8(&n) {
			return nil, malformed("genesis operators")
		}
		for range n {
			o, err := readOperator(&s)
			if err != nil {
				return nil, err
			}
			g.Operators = append(g.Operators, o)
		}
		if g.Rules, err = readRules(&s); err != nil {
			return nil, err
		}
		var r uint8
		if !s.ReadUint8(&r) {
			return nil, malformed("genesis retention")
		}
		g.Retention = int(r)
		if g.Roots, err = readRoots(&s); err != nil {
			return nil, err
		}
		if !s.Empty() {
			var keys []MemberKEM
			if g.HybridRequired, keys, err = readPolicy(&s); err != nil {
				return nil, err
			}
			if err := setKEMs(g.Members, keys); err != nil {
				return nil, err
			}
		}
		ch.Genesis = g
	case quorum.AddMember:
		if ch.Member, err = readMember(&s); err != nil {
			return nil, err
		}
		if !s.Empty() {
			var ek cryptobyte.String
			if !s.ReadUint16LengthPrefixed(&ek) {
				return nil, malformed("member ML-KEM key")
			}
			if _, err := session.ParseKEMKey(ek); err != nil {
				return nil, fmt.Errorf("%w: member ML-KEM key: %v", ErrMalformed, err)
			}
			ch.Member.KEM = append([]byte(nil), ek...)
		}
	case quorum.RemoveMember, quorum.RemoveOperator:
		if !wire.ReadID(&s, &ch.ID) {
			return nil, malformed("ID")
		}
	case quorum.AddOperator:
		if ch.Operator, err = readOperator(&s); err != nil {
			return nil, err
		}
	case quorum.SetRule:
		var t uint16
		if !s.ReadUint16(&t) {
			return nil, malformed("rule type")
		}
		ch.RuleFor = quorum.CommandType(t)
		if !slices.Contains(quorum.CommandTypes, ch.RuleFor) {
			return nil, cannot("SetRule for unknown command type %d", t)
		}
		if ch.Rules, err = readAlternatives(&s); err != nil {
			return nil, err
		}
	case quorum.RotateDomainKeys:
	case quorum.SetRetention:
		var r uint8
		if !s.ReadUint8(&r) || int(r) > MaxRetention {
			return nil, malformed("retention")
		}
		ch.Retention = int(r)
	case quorum.SetTrustedAttestationRoots:
		if ch.Roots, err = readRoots(&s); err != nil {
			return nil, err
		}
	case quorum.SetSessionPolicy:
		if ch.HybridRequired, ch.KEMs, err = readPolicy(&s); err != nil {
			return nil, err
		}
	case quorum.SetPeerRegion:
		if ch.Peer, err = readPeerRegion(&s); err != nil {
			return nil, err
		}
	default:
		return nil, cannot("unknown command type %v", c.Type)
	}
	if !s.Empty() {
		return nil, malformed("trailing bytes in parameters")
	}
	again, err := ch.Params()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(again, c.Params) {
		return nil, malformed(c.Type.String() + " parameters not in canonical encoding")
	}
	return ch, nil
}

// ErrCommand means a command cannot apply to the state.
var ErrCommand = errors.New("domain: command does not apply")

func cannot(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCommand}, a...)...)
}

// Genesis builds version 1 of a domain from a CreateDomain command (for
// state version 0) and the first domain key's record, checking that the
// command's signatures satisfy the CreateDomain rule of the state it
// creates, at time now (Unix seconds).
func Genesis(sc *quorum.SignedCommand, key KeyInfo, now int64) (*State, error) {
	c, err := quorum.ParseCommand(sc.Command)
	if err != nil {
		return nil, err
	}
	if c.Type != quorum.CreateDomain || c.StateVersion != 0 {
		return nil, cannot("genesis needs CreateDomain for state version 0")
	}
	ch, err := DecodeChange(c)
	if err != nil {
		return nil, err
	}
	st := ch.Genesis
	if res := quorum.Evaluate(st.Quorum(), sc.Command, sc.Signatures, unix(now)); res.Outcome != quorum.Satisfied {
		return nil, res.Err()
	}
	key.Active = true
	key.Created = c.IssuedAt
	st.Version = 1
	st.Keys = []KeyInfo{key}
	if err := st.Validate(); err != nil {
		return nil, err
	}
	return st, nil
}

// Apply returns the state after command sc, which must be satisfied under
// st at time now; st is not changed. newKey is the record of the domain key
// an HSM drew for RotateDomainKeys (ignored for other types). Apply is
// deterministic: the same inputs give the same state, on every HSM and
// every host.
func Apply(st *State, sc *quorum.SignedCommand, newKey *KeyInfo, now int64) (*State, error) {
	res := quorum.Evaluate(st.Quorum(), sc.Command, sc.Signatures, unix(now))
	if res.Outcome != quorum.Satisfied {
		return nil, res.Err()
	}
	c, err := quorum.ParseCommand(sc.Command)
	if err != nil {
		return nil, err
	}
	ch, err := DecodeChange(c)
	if err != nil {
		return nil, err
	}
	next := st.Clone()
	next.Version = st.Version + 1
	switch c.Type {
	case quorum.CreateDomain:
		return nil, cannot("the domain exists")
	case quorum.AddMember:
		if _, ok := st.Member(ch.Member.ID); ok {
			return nil, cannot("member %q exists", ch.Member.ID)
		}
		next.Members = insertSorted(next.Members, ch.Member, func(m session.Member) string { return m.ID })
	case quorum.RemoveMember:
		i := slices.IndexFunc(next.Members, func(m session.Member) bool { return m.ID == ch.ID })
		if i < 0 {
			return nil, cannot("no member %q", ch.ID)
		}
		if len(next.Members) == 1 {
			return nil, cannot("cannot remove the last member")
		}
		next.Members = slices.Delete(next.Members, i, i+1)
	case quorum.AddOperator:
		if slices.ContainsFunc(st.Operators, func(x quorum.Operator) bool { return x.ID == ch.Operator.ID }) {
			return nil, cannot("operator %q exists", ch.Operator.ID)
		}
		next.Operators = insertSorted(next.Operators, ch.Operator, func(o quorum.Operator) string { return o.ID })
	case quorum.RemoveOperator:
		i := slices.IndexFunc(next.Operators, func(o quorum.Operator) bool { return o.ID == ch.ID })
		if i < 0 {
			return nil, cannot("no operator %q", ch.ID)
		}
		next.Operators = slices.Delete(next.Operators, i, i+1)
	case quorum.SetRule:
		next.Rules[ch.RuleFor] = ch.Rules
	case quorum.RotateDomainKeys:
		if newKey == nil {
			return nil, cannot("rotation needs the new domain key's record")
		}
		for i := range next.Keys {
			next.Keys[i].Active = false
		}
		k := *newKey
		k.Active, k.Created = true, c.IssuedAt
		next.Keys = append(next.Keys, k)
	case quorum.SetRetention:
		next.Retention = ch.Retention
	case quorum.SetTrustedAttestationRoots:
		next.Roots = ch.Roots
	case quorum.SetSessionPolicy:
		if err := setKEMs(next.Members, ch.KEMs); err != nil {
			return nil, err
		}
		next.HybridRequired = ch.HybridRequired
	case quorum.SetPeerRegion:
		if err := applyPeerRegion(next, ch.Peer); err != nil {
			return nil, err
		}
	}
	// Keep the active key and the newest Retention deactivated ones.
	if extra := len(next.Keys) - (next.Retention + 1); extra > 0 {
		next.Keys = slices.Delete(next.Keys, 0, extra)
	}
	if err := next.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCommand, err)
	}
	return next, nil
}

func insertSorted[T any](list []T, v T, id func(T) string) []T {
	i, _ := slices.BinarySearchFunc(list, id(v), func(e T, target string) int { return strings.Compare(id(e), target) })
	return slices.Insert(list, i, v)
}

func unix(t int64) time.Time { return time.Unix(t, 0) }
