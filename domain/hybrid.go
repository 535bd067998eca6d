package domain

import (
	"fmt"
	"slices"

	"golang.org/x/crypto/cryptobyte"

	"github.com/trentkms/trent/internal/wire"
	"github.com/trentkms/trent/session"
)

// The session policy (docs/protocol.md, "Session policy"): whether the
// domain requires hybrid ML-KEM-1024 + P-384 key establishment, and the
// members' long-lived ML-KEM-1024 encapsulation keys (session.Member.KEM),
// which the hybrid one-pass C(1,2) of domain tokens encrypts to. Both are
// set by the quorum command SetSessionPolicy, and travel in an optional
// section at the end of the state, present only when something in it is
// set, so that the encoding of a classical domain is what it always was.

// MemberKEM is one member's ML-KEM-1024 encapsulation key in
// SetSessionPolicy's parameters.
type MemberKEM struct {
	ID string
	EK []byte // session.KEMKeySize bytes
}

// hasPolicy reports whether the state has the optional section.
func hasPolicy(hybrid bool, members []session.Member) bool {
	return hybrid || slices.ContainsFunc(members, func(m session.Member) bool { return m.KEM != nil })
}

func memberKEMs(members []session.Member) []MemberKEM {
	var out []MemberKEM
	for _, m := range members {
		if m.KEM != nil {
			out = append(out, MemberKEM{ID: m.ID, EK: m.KEM})
		}
	}
	return out
}

// addPolicy adds u8 policy ‖ u8 count ‖ count × (hsm_id ‖ v16 ML-KEM key).
func addPolicy(b *cryptobyte.Builder, hybrid bool, keys []MemberKEM) {
	b.AddUint8(boolByte(hybrid))
	b.AddUint8(uint8(len(keys)))
	for _, k := range keys {
		wire.AddID(b, k.ID)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(k.EK) })
	}
}

// readPolicy reads the section addPolicy writes: IDs in strictly
// increasing order, each key a valid ML-KEM-1024 encapsulation key.
func readPolicy(s *cryptobyte.String) (bool, []MemberKEM, error) {
	var p, n uint8
	if !s.ReadUint8(&p) || p > 1 || !s.ReadUint8(&n) || int(n) > MaxMembers {
		return false, nil, malformed("session policy")
	}
	var keys []MemberKEM
	for i := range int(n) {
		var k MemberKEM
		var ek cryptobyte.String
		if !wire.ReadID(s, &k.ID) || !s.ReadUint16LengthPrefixed(&ek) {
			return false, nil, malformed("member ML-KEM key")
		}
		if i > 0 && keys[i-1].ID >= k.ID {
			return false, nil, malformed("member ML-KEM keys not in strictly increasing order")
		}
		if _, err := session.ParseKEMKey(ek); err != nil {
			return false, nil, fmt.Errorf("%w: member %q: %v", ErrMalformed, k.ID, err)
		}
		k.EK = append([]byte(nil), ek...)
		keys = append(keys, k)
	}
	return p == 1, keys, nil
}

// setKEMs gives each member its key from keys (and none to the others);
// every key must name a member.
func setKEMs(members []session.Member, keys []MemberKEM) error {
	for i := range members {
		members[i].KEM = nil
	}
	for _, k := range keys {
		i := slices.IndexFunc(members, func(m session.Member) bool { return m.ID == k.ID })
		if i < 0 {
			return cannot("ML-KEM key for %q, not a member", k.ID)
		}
		members[i].KEM = k.EK
	}
	return nil
}

// validatePolicy is Validate's part for the section.
func (s *State) validatePolicy() error {
	for _, m := range s.Members {
		if m.KEM != nil {
			if _, err := session.ParseKEMKey(m.KEM); err != nil {
				return fmt.Errorf("%w: member %q: %v", ErrInvalid, m.ID, err)
			}
		} else if s.HybridRequired {
			return fmt.Errorf("%w: the domain requires hybrid key establishment and member %q has no ML-KEM-1024 key", ErrInvalid, m.ID)
		}
	}
	return nil
}

// ParamsSessionPolicy encodes SetSessionPolicy's parameters: the policy
// and every member's ML-KEM-1024 key (the list replaces the state's),
// sorted by ID.
func ParamsSessionPolicy(hybridRequired bool, keys []MemberKEM) ([]byte, error) {
	keys = slices.Clone(keys)
	slices.SortFunc(keys, func(a, b MemberKEM) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	for i, k := range keys {
		if i > 0 && keys[i-1].ID == k.ID {
			return nil, fmt.Errorf("domain: ML-KEM key for %q twice", k.ID)
		}
		if _, err := session.ParseKEMKey(k.EK); err != nil {
			return nil, fmt.Errorf("domain: member %q: %w", k.ID, err)
		}
	}
	var b cryptobyte.Builder
	addPolicy(&b, hybridRequired, keys)
	return b.Bytes()
}
