package session

import (
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// EKT is the encrypted key token: the session key and its binding (host,
// session, validity) under a domain key, so that any HSM of the domain can
// recover SK.
type EKT struct {
	KeyID      [KeyIDSize]byte
	Nonce      [gcmNonceSize]byte
	Ciphertext []byte // AES-256-GCM(DK, ektPlain, AAD) ‖ tag
}

// ektPlain is what an EKT protects.
type ektPlain struct {
	SK        []byte
	HostID    string
	SessionID [SessionIDSize]byte
	NotBefore uint64
	NotAfter  uint64
}

// Marshal encodes the EKT.
func (e *EKT) Marshal() ([]byte, error) {
	var b cryptobyte.Builder
	addHeader(&b, TypeEKT)
	b.AddBytes(e.KeyID[:])
	b.AddBytes(e.Nonce[:])
	if len(e.Ciphertext) < tagSize || len(e.Ciphertext) > maxEKTCipher {
		b.SetError(fmt.Errorf("session: EKT ciphertext length out of range"))
	}
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(e.Ciphertext) })
	return b.Bytes()
}

// ParseEKT decodes an EKT strictly.
func ParseEKT(in []byte) (*EKT, error) {
	s := cryptobyte.String(in)
	e := &EKT{}
	if err := readHeader(&s, TypeEKT); err != nil {
		return nil, err
	}
	var ct cryptobyte.String
	if !s.CopyBytes(e.KeyID[:]) || !s.CopyBytes(e.Nonce[:]) ||
		!s.ReadUint16LengthPrefixed(&ct) || len(ct) < tagSize || len(ct) > maxEKTCipher {
		return nil, malformed("EKT")
	}
	e.Ciphertext = append([]byte(nil), ct...)
	return e, done(s)
}

// ektAAD is label ‖ 0x00 ‖ the EKT header ‖ key ID: the domain key ID and
// the protocol version, bound to the ciphertext.
func ektAAD(keyID [KeyIDSize]byte) []byte {
	aad := append([]byte(labelEKT), 0)
	aad = append(aad, Magic...)
	aad = append(aad, Version, TypeEKT)
	return append(aad, keyID[:]...)
}

func (p *ektPlain) marshal() ([]byte, error) {
	var b cryptobyte.Builder
	addFixed(&b, p.SK, SKSize, "SK")
	addID(&b, p.HostID)
	b.AddBytes(p.SessionID[:])
	b.AddUint64(p.NotBefore)
	b.AddUint64(p.NotAfter)
	return b.Bytes()
}

func parseEKTPlain(in []byte) (*ektPlain, error) {
	s := cryptobyte.String(in)
	p := &ektPlain{}
	var err error
	if p.SK, err = readFixed(&s, SKSize, "EKT SK"); err != nil {
		return nil, err
	}
	if err := readID(&s, &p.HostID, "EKT host ID"); err != nil {
		return nil, err
	}
	if !s.CopyBytes(p.SessionID[:]) || !s.ReadUint64(&p.NotBefore) || !s.ReadUint64(&p.NotAfter) {
		return nil, malformed("EKT contents")
	}
	return p, done(s)
}

// sealEKT encrypts p under the domain key dk (ID keyID) with nonce.
func sealEKT(dk DomainKey, keyID [KeyIDSize]byte, nonce []byte, p *ektPlain) ([]byte, error) {
	pt, err := p.marshal()
	if err != nil {
		return nil, err
	}
	defer clear(pt)
	ct, err := dk.Seal(nonce, pt, ektAAD(keyID))
	if err != nil {
		return nil, fmt.Errorf("session: seal EKT: %w", err)
	}
	e := &EKT{KeyID: keyID, Ciphertext: ct}
	copy(e.Nonce[:], nonce)
	return e.Marshal()
}

// openEKT recovers an EKT's contents with the retained domain key it names.
func openEKT(keys KeyRing, raw []byte) (*ektPlain, [KeyIDSize]byte, error) {
	e, err := ParseEKT(raw)
	if err != nil {
		return nil, [KeyIDSize]byte{}, err
	}
	dk, err := keys.Key(e.KeyID)
	if err != nil {
		return nil, e.KeyID, err
	}
	pt, err := dk.Open(e.Nonce[:], e.Ciphertext, ektAAD(e.KeyID))
	if err != nil {
		return nil, e.KeyID, fmt.Errorf("%w: EKT", ErrAuthentication)
	}
	defer clear(pt)
	p, err := parseEKTPlain(pt)
	if err != nil {
		return nil, e.KeyID, err
	}
	return p, e.KeyID, nil
}

// ReencryptEKT opens an EKT with the retained domain key it names and seals
// the same contents under the active domain key with nonce (12 bytes, from
// the HSM's RNG). An EKT already under the active key is returned as it is.
// The contents are in HSM-process memory only between the two token calls
// and are cleared.
func ReencryptEKT(keys KeyRing, raw, nonce []byte) ([]byte, error) {
	e, err := ParseEKT(raw)
	if err != nil {
		return nil, err
	}
	activeID, active, err := keys.Active()
	if err != nil {
		return nil, err
	}
	if e.KeyID == activeID {
		return append([]byte(nil), raw...), nil
	}
	if len(nonce) != gcmNonceSize {
		return nil, fmt.Errorf("session: nonce must be %d bytes", gcmNonceSize)
	}
	dk, err := keys.Key(e.KeyID)
	if err != nil {
		return nil, err
	}
	pt, err := dk.Open(e.Nonce[:], e.Ciphertext, ektAAD(e.KeyID))
	if err != nil {
		return nil, fmt.Errorf("%w: EKT", ErrAuthentication)
	}
	defer clear(pt)
	ct, err := active.Seal(nonce, pt, ektAAD(activeID))
	if err != nil {
		return nil, fmt.Errorf("session: seal EKT: %w", err)
	}
	out := &EKT{KeyID: activeID, Ciphertext: ct}
	copy(out.Nonce[:], nonce)
	return out.Marshal()
}
