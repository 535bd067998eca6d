package domain

import (
	"fmt"
	"slices"
	"strings"

	"golang.org/x/crypto/cryptobyte"

	"github.com/trentkms/trent/internal/wire"
	"github.com/trentkms/trent/session"
)

// Peer regions (docs/protocol.md, Multi-Region keys). A domain records,
// by SetPeerRegion commands its quorum signs, the other regions' domains
// whose member HSMs may send it multi-Region key material: each region's
// name, its domain's name and its members' public keys. An HSM accepts a
// replica transport only from a member of a peer region of its own
// domain state, and its own HSMs wrap material only to the members such a
// record names.

// MaxPeerRegions bounds the peer regions of a domain.
const MaxPeerRegions = 16

// PeerRegion is another region's domain that this one trusts for
// multi-Region key material.
type PeerRegion struct {
	Region  string           // the region's name, e.g. "us-west-2"
	Domain  string           // its domain's name (never this domain's)
	Members []session.Member // its member HSMs, sorted by ID
}

// PeerRegion returns the peer region named region.
func (s *State) PeerRegion(region string) (PeerRegion, bool) {
	i := slices.IndexFunc(s.PeerRegions, func(p PeerRegion) bool { return p.Region == region })
	if i < 0 {
		return PeerRegion{}, false
	}
	return s.PeerRegions[i], true
}

// Directory is the session protocol's view of the peer region's members
// (for session.OpenOnePass): no operators.
func (p PeerRegion) Directory() (*session.StaticDirectory, error) {
	return session.NewStaticDirectory(p.Domain, 0, nil, p.Members)
}

// validatePeers checks the peer regions of st: sorted by region, distinct,
// another domain's, members valid and sorted.
func (s *State) validatePeers() error {
	if len(s.PeerRegions) > MaxPeerRegions {
		return fmt.Errorf("%d peer regions", len(s.PeerRegions))
	}
	for i, p := range s.PeerRegions {
		if i > 0 && s.PeerRegions[i-1].Region >= p.Region {
			return fmt.Errorf("peer regions not sorted or duplicated")
		}
		if err := p.validate(s.Name); err != nil {
			return err
		}
	}
	return nil
}

func (p PeerRegion) validate(own string) error {
	if !wire.ValidID(p.Region) || !wire.ValidID(p.Domain) || p.Domain == own {
		return fmt.Errorf("peer region %q of domain %q", p.Region, p.Domain)
	}
	if len(p.Members) == 0 || len(p.Members) > MaxMembers {
		return fmt.Errorf("peer region %q: %d members", p.Region, len(p.Members))
	}
	for i, m := range p.Members {
		if i > 0 && p.Members[i-1].ID >= m.ID {
			return fmt.Errorf("peer region %q: members not sorted or duplicated", p.Region)
		}
		if m.Signing == nil || m.Agreement == nil || wire.HSMID(m.Signing) != m.ID {
			return fmt.Errorf("peer region %q: member %q keys missing or not matching its ID", p.Region, m.ID)
		}
	}
	return nil
}

// A peer region: ID region ‖ ID domain ‖ u8 n ‖ n × member (n may be 0
// only in SetPeerRegion's parameters, where it forgets the region).
func addPeerRegion(b *cryptobyte.Builder, p PeerRegion) {
	wire.AddID(b, p.Region)
	wire.AddID(b, p.Domain)
	if len(p.Members) > MaxMembers {
		b.SetError(fmt.Errorf("domain: peer region %q: %d members", p.Region, len(p.Members)))
		return
	}
	b.AddUint8(uint8(len(p.Members)))
	for _, m := range p.Members {
		addMember(b, m)
	}
}

func readPeerRegion(s *cryptobyte.String) (PeerRegion, error) {
	var p PeerRegion
	var n uint8
	if !wire.ReadID(s, &p.Region) || !wire.ReadID(s, &p.Domain) || !s.ReadUint8(&n) {
		return p, malformed("peer region")
	}
	for range n {
		m, err := readMember(s)
		if err != nil {
			return p, err
		}
		p.Members = append(p.Members, m)
	}
	return p, nil
}

// addPeerRegions encodes the state's peer regions after its roots, only
// when it has some: u8 n (1 or more) ‖ n × peer region. A state without
// peer regions encodes as it did before they existed.
func addPeerRegions(b *cryptobyte.Builder, ps []PeerRegion) {
	if len(ps) == 0 {
		return
	}
	b.AddUint8(uint8(len(ps)))
	for _, p := range ps {
		addPeerRegion(b, p)
	}
}

func readPeerRegions(s *cryptobyte.String) ([]PeerRegion, error) {
	if s.Empty() {
		return nil, nil
	}
	var n uint8
	if !s.ReadUint8(&n) || n == 0 || n > MaxPeerRegions {
		return nil, malformed("peer region count")
	}
	var out []PeerRegion
	for range n {
		p, err := readPeerRegion(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// ParamsPeerRegion encodes SetPeerRegion's parameters: the region, its
// domain and its members; no members forget the region.
func ParamsPeerRegion(p PeerRegion) ([]byte, error) {
	var b cryptobyte.Builder
	addPeerRegion(&b, p)
	return b.Bytes()
}

// applyPeerRegion sets (or, with no members, removes) the peer region p in
// next.
func applyPeerRegion(next *State, p PeerRegion) error {
	i := slices.IndexFunc(next.PeerRegions, func(q PeerRegion) bool { return q.Region == p.Region })
	if len(p.Members) == 0 {
		if i < 0 {
			return cannot("no peer region %q", p.Region)
		}
		next.PeerRegions = slices.Delete(next.PeerRegions, i, i+1)
		return nil
	}
	if err := p.validate(next.Name); err != nil {
		return cannot("%v", err)
	}
	if i >= 0 {
		next.PeerRegions[i] = p
		return nil
	}
	next.PeerRegions = insertSorted(next.PeerRegions, p, func(q PeerRegion) string { return q.Region })
	return nil
}

func clonePeers(ps []PeerRegion) []PeerRegion {
	out := slices.Clone(ps)
	for i := range out {
		out[i].Members = slices.Clone(out[i].Members)
	}
	return out
}

// peerSummary lists the peer regions for Summary.
func (s *State) peerSummary() string {
	if len(s.PeerRegions) == 0 {
		return ""
	}
	var names []string
	for _, p := range s.PeerRegions {
		names = append(names, p.Region+"="+p.Domain)
	}
	return ", peer regions " + strings.Join(names, " ")
}
