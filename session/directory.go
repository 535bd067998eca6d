package session

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"slices"
)

// RoleServiceHost is the operator role a host must hold to open sessions.
const RoleServiceHost = "service-host"

// Errors from a domain view.
var (
	ErrUnknownHost     = errors.New("session: unknown host")
	ErrNotServiceHost  = errors.New("session: signer does not hold the service-host role")
	ErrNotMember       = errors.New("session: not a member HSM of the domain")
	ErrKeyNotRetained  = errors.New("session: domain key not retained")
	ErrNoActiveKey     = errors.New("session: no active domain key")
	ErrDomainMismatch  = errors.New("session: domain name or state version differs")
	ErrDuplicateMember = errors.New("session: duplicate identifier in the domain view")
)

// Directory is the public part of a domain view that the protocol needs:
// who the domain is, which hosts may open sessions, and the member HSMs'
// keys. The domain package implements it from the replicated domain state;
// StaticDirectory is a fixed one. Implementations are safe for concurrent
// use.
type Directory interface {
	// Domain returns the domain's name and state version.
	Domain() (name string, version uint64)
	// HostKey returns the signing key of the operator hostID, which must
	// hold RoleServiceHost: ErrUnknownHost or ErrNotServiceHost otherwise.
	HostKey(hostID string) (*ecdsa.PublicKey, error)
	// Member returns a member HSM's signing and agreement keys, or
	// ErrNotMember.
	Member(hsmID string) (*ecdsa.PublicKey, *ecdh.PublicKey, error)
}

// DomainKey is a domain key DK_r held by an HSM: in its token (an
// hsm.SecretKey), never in Go memory.
type DomainKey interface {
	Seal(nonce, plaintext, aad []byte) ([]byte, error)
	Open(nonce, ciphertext, aad []byte) ([]byte, error)
}

// KeyRing is an HSM's set of domain keys: one active, others retained.
type KeyRing interface {
	// Active returns the active domain key and its ID, or ErrNoActiveKey.
	Active() (id [KeyIDSize]byte, key DomainKey, err error)
	// Key returns a retained (active or deactivated) domain key, or
	// ErrKeyNotRetained.
	Key(id [KeyIDSize]byte) (DomainKey, error)
}

// Operator is an entry of a StaticDirectory: an operator's signing key and
// roles.
type Operator struct {
	ID    string
	Key   *ecdsa.PublicKey
	Roles []string
}

// Member is an entry of a StaticDirectory: a member HSM's keys.
type Member struct {
	ID        string
	Signing   *ecdsa.PublicKey
	Agreement *ecdh.PublicKey
	// KEM is the member's long-lived ML-KEM-1024 encapsulation key
	// (KEMKeySize bytes), nil if it has published none: with Agreement, the
	// hybrid one-pass C(1,2) encrypts to it.
	KEM []byte
}

// StaticDirectory is a Directory that does not change: tests, vectors, and
// tools that hold one domain state.
type StaticDirectory struct {
	name      string
	version   uint64
	operators map[string]Operator
	members   map[string]Member
	hybrid    bool
}

// NewStaticDirectory builds a Directory from a domain name, state version,
// operators and members.
func NewStaticDirectory(name string, version uint64, ops []Operator, members []Member) (*StaticDirectory, error) {
	if !validID(name) {
		return nil, fmt.Errorf("session: invalid domain name %q", name)
	}
	d := &StaticDirectory{name: name, version: version, operators: map[string]Operator{}, members: map[string]Member{}}
	for _, o := range ops {
		if _, dup := d.operators[o.ID]; dup || !validID(o.ID) || o.Key == nil {
			return nil, fmt.Errorf("%w: operator %q", ErrDuplicateMember, o.ID)
		}
		d.operators[o.ID] = o
	}
	for _, m := range members {
		if _, dup := d.members[m.ID]; dup || !validID(m.ID) || m.Signing == nil || m.Agreement == nil {
			return nil, fmt.Errorf("%w: member %q", ErrDuplicateMember, m.ID)
		}
		d.members[m.ID] = m
	}
	return d, nil
}

// SetHybridRequired sets the domain's policy (HybridPolicy): whether it
// requires hybrid key establishment. Call it before sharing d.
func (d *StaticDirectory) SetHybridRequired(required bool) { d.hybrid = required }

// HybridRequired implements HybridPolicy.
func (d *StaticDirectory) HybridRequired() bool { return d.hybrid }

// MemberKEM returns a member's ML-KEM-1024 encapsulation key (nil if it has
// none), or ErrNotMember.
func (d *StaticDirectory) MemberKEM(id string) ([]byte, error) {
	m, ok := d.members[id]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotMember, id)
	}
	return m.KEM, nil
}

// Domain implements Directory.
func (d *StaticDirectory) Domain() (string, uint64) { return d.name, d.version }

// HostKey implements Directory.
func (d *StaticDirectory) HostKey(id string) (*ecdsa.PublicKey, error) {
	o, ok := d.operators[id]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownHost, id)
	}
	if !slices.Contains(o.Roles, RoleServiceHost) {
		return nil, fmt.Errorf("%w: %q", ErrNotServiceHost, id)
	}
	return o.Key, nil
}

// Member implements Directory.
func (d *StaticDirectory) Member(id string) (*ecdsa.PublicKey, *ecdh.PublicKey, error) {
	m, ok := d.members[id]
	if !ok {
		return nil, nil, fmt.Errorf("%w: %q", ErrNotMember, id)
	}
	return m.Signing, m.Agreement, nil
}
