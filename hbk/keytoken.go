package hbk

import (
	"errors"

	"golang.org/x/crypto/cryptobyte"

	"github.com/trentkms/trent/internal/wire"
)

// TypeKeyToken is a customer private or secret key (an asymmetric key
// pair's private key, an HMAC key) sealed under a domain key.
const TypeKeyToken byte = 0x32

// MaxKeyMaterial bounds the sealed key material (a PKCS#8 RSA-4096 key is
// about 2.4 KB).
const MaxKeyMaterial = 8192

const labelKeyToken = "trent/v1 key token"

// KeyToken is a customer key's material (PKCS#8 DER for private keys, the
// raw key for HMAC keys) sealed under a domain key, bound to the KMS key
// ID, its version ID and its key spec.
type KeyToken struct {
	DomainKeyID [DKIDSize]byte
	KeyID       string
	VersionID   [IDSize]byte
	Spec        uint8 // the key spec's code (package hsm/node)
	IV          [IVSize]byte
	Ciphertext  []byte // AES-256-GCM(DK, material, AAD) ‖ tag
}

func (t *KeyToken) addFields(b *cryptobyte.Builder) {
	wire.AddHeader(b, TypeKeyToken)
	b.AddBytes(t.DomainKeyID[:])
	if !ValidKeyID(t.KeyID) {
		b.SetError(errors.New("hbk: invalid key ID"))
		return
	}
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(t.KeyID)) })
	b.AddBytes(t.VersionID[:])
	b.AddUint8(t.Spec)
}

// aad is label ‖ 0x00 ‖ every field before the IV.
func (t *KeyToken) aad() ([]byte, error) {
	b := cryptobyte.NewBuilder(append([]byte(labelKeyToken), 0))
	t.addFields(b)
	return b.Bytes()
}

// Marshal encodes the token: the fields, the IV, v16 ciphertext.
func (t *KeyToken) Marshal() ([]byte, error) {
	var b cryptobyte.Builder
	t.addFields(&b)
	b.AddBytes(t.IV[:])
	if len(t.Ciphertext) <= TagSize || len(t.Ciphertext) > MaxKeyMaterial+TagSize {
		b.SetError(errors.New("hbk: key token ciphertext length"))
	}
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(t.Ciphertext) })
	return b.Bytes()
}

// ParseKeyToken decodes a key token strictly.
func ParseKeyToken(in []byte) (*KeyToken, error) {
	s := cryptobyte.String(in)
	if err := wire.CheckHeader(&s, TypeKeyToken, ErrMalformed, ErrVersion); err != nil {
		return nil, err
	}
	t := &KeyToken{}
	var id, ct cryptobyte.String
	if !s.CopyBytes(t.DomainKeyID[:]) || !s.ReadUint8LengthPrefixed(&id) || !ValidKeyID(string(id)) ||
		!s.CopyBytes(t.VersionID[:]) || !s.ReadUint8(&t.Spec) || !s.CopyBytes(t.IV[:]) ||
		!s.ReadUint16LengthPrefixed(&ct) || len(ct) <= TagSize || len(ct) > MaxKeyMaterial+TagSize || !s.Empty() {
		return nil, malformed("key token")
	}
	t.KeyID = string(id)
	t.Ciphertext = append([]byte(nil), ct...)
	return t, nil
}

// SealKeyToken seals material for keyID (version versionID, spec) under
// the domain key dk (named dkID) with a fresh iv.
func SealKeyToken(dk Sealer, dkID [DKIDSize]byte, keyID string, versionID [IDSize]byte, spec uint8, iv [IVSize]byte, material []byte) (*KeyToken, error) {
	if len(material) == 0 || len(material) > MaxKeyMaterial {
		return nil, errors.New("hbk: key material size")
	}
	t := &KeyToken{DomainKeyID: dkID, KeyID: keyID, VersionID: versionID, Spec: spec, IV: iv}
	aad, err := t.aad()
	if err != nil {
		return nil, err
	}
	if t.Ciphertext, err = dk.Seal(iv[:], material, aad); err != nil {
		return nil, err
	}
	return t, nil
}

// Open returns the key material (the caller clears it) if dk
// authenticates the token, ErrOpen otherwise.
func (t *KeyToken) Open(dk Opener) ([]byte, error) {
	aad, err := t.aad()
	if err != nil {
		return nil, err
	}
	m, err := dk.Open(t.IV[:], t.Ciphertext, aad)
	if err != nil {
		return nil, ErrOpen
	}
	return m, nil
}

// TokenType returns the object type of a sealed token (TypeToken or
// TypeKeyToken), 0 if raw is neither.
func TokenType(raw []byte) byte {
	if len(raw) > 5 && string(raw[:4]) == wire.Magic && (raw[5] == TypeToken || raw[5] == TypeKeyToken) {
		return raw[5]
	}
	return 0
}

// TokenKeyID returns the KMS key ID and domain key ID a sealed token (HBK
// token or key token) names.
func TokenKeyID(raw []byte) (keyID string, dk [DKIDSize]byte, err error) {
	switch TokenType(raw) {
	case TypeToken:
		t, err := ParseToken(raw)
		if err != nil {
			return "", dk, err
		}
		return t.KeyID, t.DomainKeyID, nil
	case TypeKeyToken:
		t, err := ParseKeyToken(raw)
		if err != nil {
			return "", dk, err
		}
		return t.KeyID, t.DomainKeyID, nil
	}
	return "", dk, malformed("not a sealed key token")
}
