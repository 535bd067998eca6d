package hbk

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"

	"github.com/trentkms/trent/internal/wire"
)

// Object types (the byte after Magic and Version).
const (
	TypeToken byte = 0x30
	TypeBlob  byte = 0x31
)

// Sizes and limits.
const (
	Size         = 32 // an HBK
	IDSize       = 16 // an HBK ID
	DKIDSize     = 16 // a domain key ID
	NonceSize    = 32 // N, the KDF nonce of a blob
	IVSize       = 12 // AES-GCM nonce
	TagSize      = 16
	MaxKeyID     = 64
	MaxPlaintext = 4096
	// MaxContext bounds an encoded encryption context (KMS allows 8192
	// characters of keys and values; the encoding adds 4 bytes a pair).
	MaxContext = 16384
	// MaxBlob is KMS's CiphertextBlob limit.
	MaxBlob = 6144
)

// Context labels of the hierarchy (docs/protocol.md).
const (
	labelToken = "trent/v1 hbk token"
	labelKDF   = "trent/v1 hbk kdf"
	labelBlob  = "trent/v1 ciphertext"
)

// Errors.
var (
	ErrMalformed = errors.New("hbk: malformed object")
	ErrVersion   = errors.New("hbk: unsupported protocol version")
	ErrOpen      = errors.New("hbk: authentication failed")
	ErrContext   = errors.New("hbk: invalid encryption context")
)

func malformed(what string) error { return fmt.Errorf("%w: %s", ErrMalformed, what) }

// Sealer seals with AES-256-GCM (a domain key in a token).
type Sealer interface {
	Seal(nonce, plaintext, aad []byte) ([]byte, error)
}

// Opener opens AES-256-GCM (a domain key in a token).
type Opener interface {
	Open(nonce, ciphertext, aad []byte) ([]byte, error)
}

// MAC computes HMAC-SHA256 with the HBK (an HMAC key in a token).
type MAC interface {
	MAC(data []byte) ([]byte, error)
}

// ValidKeyID reports whether id can name a KMS key here.
func ValidKeyID(id string) bool { return len(id) <= MaxKeyID && wire.ValidID(id) }

// Token is an HBK sealed under a domain key.
type Token struct {
	DomainKeyID [DKIDSize]byte
	KeyID       string
	HBKID       [IDSize]byte
	IV          [IVSize]byte
	Ciphertext  []byte // Size + TagSize bytes
}

func (t *Token) addFields(b *cryptobyte.Builder) {
	wire.AddHeader(b, TypeToken)
	b.AddBytes(t.DomainKeyID[:])
	if !ValidKeyID(t.KeyID) {
		b.SetError(errors.New("hbk: invalid key ID"))
		return
	}
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(t.KeyID)) })
	b.AddBytes(t.HBKID[:])
}

// aad is label ‖ 0x00 ‖ header ‖ DK ID ‖ v8 key ID ‖ HBK ID.
func (t *Token) aad() ([]byte, error) {
	b := cryptobyte.NewBuilder(append([]byte(labelToken), 0))
	t.addFields(b)
	return b.Bytes()
}

// Marshal encodes the token.
func (t *Token) Marshal() ([]byte, error) {
	var b cryptobyte.Builder
	t.addFields(&b)
	b.AddBytes(t.IV[:])
	if len(t.Ciphertext) != Size+TagSize {
		b.SetError(errors.New("hbk: token ciphertext length"))
	}
	b.AddBytes(t.Ciphertext)
	return b.Bytes()
}

// ParseToken decodes a token strictly.
func ParseToken(in []byte) (*Token, error) {
	s := cryptobyte.String(in)
	if err := wire.CheckHeader(&s, TypeToken, ErrMalformed, ErrVersion); err != nil {
		return nil, err
	}
	t := &Token{}
	var id cryptobyte.String
	if !s.CopyBytes(t.DomainKeyID[:]) || !s.ReadUint8LengthPrefixed(&id) || !ValidKeyID(string(id)) ||
		!s.CopyBytes(t.HBKID[:]) || !s.CopyBytes(t.IV[:]) {
		return nil, malformed("token")
	}
	t.KeyID = string(id)
	if len(s) != Size+TagSize {
		return nil, malformed("token ciphertext")
	}
	t.Ciphertext = append([]byte(nil), s...)
	return t, nil
}

// SealToken seals hbk (Size bytes) for keyID under the domain key dk
// (named dkID) with a fresh iv.
func SealToken(dk Sealer, dkID [DKIDSize]byte, keyID string, hbkID [IDSize]byte, iv [IVSize]byte, hbk []byte) (*Token, error) {
	if len(hbk) != Size {
		return nil, errors.New("hbk: HBK size")
	}
	t := &Token{DomainKeyID: dkID, KeyID: keyID, HBKID: hbkID, IV: iv}
	aad, err := t.aad()
	if err != nil {
		return nil, err
	}
	if t.Ciphertext, err = dk.Seal(iv[:], hbk, aad); err != nil {
		return nil, err
	}
	return t, nil
}

// Open returns the HBK (the caller clears it) if dk authenticates the
// token, ErrOpen otherwise.
func (t *Token) Open(dk Opener) ([]byte, error) {
	aad, err := t.aad()
	if err != nil {
		return nil, err
	}
	hbk, err := dk.Open(t.IV[:], t.Ciphertext, aad)
	if err != nil || len(hbk) != Size {
		clear(hbk)
		return nil, ErrOpen
	}
	return hbk, nil
}

// EncodeContext encodes an encryption context: u16 count ‖ count × (v16
// key ‖ v16 value), pairs sorted by key bytes. Keys are 1 or more bytes and
// keys and values valid UTF-8; the encoding is at most MaxContext bytes.
// A nil or empty context encodes as 0x0000.
func EncodeContext(ec map[string]string) ([]byte, error) {
	keys := make([]string, 0, len(ec))
	for k, v := range ec {
		if k == "" || !utf8.ValidString(k) || !utf8.ValidString(v) || len(k) > 0xffff || len(v) > 0xffff {
			return nil, fmt.Errorf("%w: key or value", ErrContext)
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := binary.BigEndian.AppendUint16(make([]byte, 0, 64), uint16(len(keys)))
	for _, k := range keys {
		out = binary.BigEndian.AppendUint16(out, uint16(len(k)))
		out = append(out, k...)
		out = binary.BigEndian.AppendUint16(out, uint16(len(ec[k])))
		out = append(out, ec[k]...)
		if len(out) > MaxContext {
			return nil, fmt.Errorf("%w: longer than %d bytes encoded", ErrContext, MaxContext)
		}
	}
	return out, nil
}

// ParseContext decodes EncodeContext's output strictly (sorted, unique
// keys, nothing after the last pair).
func ParseContext(in []byte) (map[string]string, error) {
	if len(in) > MaxContext {
		return nil, fmt.Errorf("%w: too long", ErrContext)
	}
	s := cryptobyte.String(in)
	var n uint16
	if !s.ReadUint16(&n) {
		return nil, fmt.Errorf("%w: count", ErrContext)
	}
	ec := make(map[string]string, n)
	prev := ""
	for i := range int(n) {
		var k, v cryptobyte.String
		if !s.ReadUint16LengthPrefixed(&k) || !s.ReadUint16LengthPrefixed(&v) || len(k) == 0 ||
			(i > 0 && string(k) <= prev) || !utf8.Valid(k) || !utf8.Valid(v) {
			return nil, fmt.Errorf("%w: pair %d", ErrContext, i)
		}
		prev = string(k)
		ec[prev] = string(v)
	}
	if !s.Empty() {
		return nil, fmt.Errorf("%w: trailing bytes", ErrContext)
	}
	return ec, nil
}

// Blob is a ciphertext of the hierarchy.
type Blob struct {
	KeyID      string
	HBKID      [IDSize]byte
	Nonce      [NonceSize]byte
	IV         [IVSize]byte
	Ciphertext []byte // ciphertext ‖ tag
}

// appendHeader appends the blob's header (through the IV) to out, by hand:
// a cryptobyte builder and a continuation per field cost the HSM a tenth
// of its hierarchy work per request. TestBlobHeaderMatchesCryptobyte
// holds it to the builder's encoding.
func (bl *Blob) appendHeader(out []byte) ([]byte, error) {
	if !ValidKeyID(bl.KeyID) {
		return nil, errors.New("hbk: invalid key ID")
	}
	out = wire.AppendHeader(out, TypeBlob)
	out = append(out, byte(len(bl.KeyID)))
	out = append(out, bl.KeyID...)
	out = append(out, bl.HBKID[:]...)
	out = append(out, bl.Nonce[:]...)
	return append(out, bl.IV[:]...), nil
}

// blobHeaderMax bounds a blob's header (appendHeader): the builders that
// write one start with room for it.
const blobHeaderMax = 8 + 1 + 255 + IDSize + NonceSize + IVSize

// Marshal encodes the blob.
func (bl *Blob) Marshal() ([]byte, error) {
	if len(bl.Ciphertext) < TagSize || len(bl.Ciphertext) > MaxPlaintext+TagSize {
		return nil, errors.New("hbk: blob ciphertext length")
	}
	out, err := bl.appendHeader(make([]byte, 0, blobHeaderMax+2+len(bl.Ciphertext)))
	if err != nil {
		return nil, err
	}
	out = binary.BigEndian.AppendUint16(out, uint16(len(bl.Ciphertext)))
	return append(out, bl.Ciphertext...), nil
}

// ParseBlob decodes a blob strictly.
func ParseBlob(in []byte) (*Blob, error) {
	if len(in) > MaxBlob {
		return nil, malformed("blob too long")
	}
	s := cryptobyte.String(in)
	if err := wire.CheckHeader(&s, TypeBlob, ErrMalformed, ErrVersion); err != nil {
		return nil, err
	}
	bl := &Blob{}
	var id, ct cryptobyte.String
	if !s.ReadUint8LengthPrefixed(&id) || !ValidKeyID(string(id)) || !s.CopyBytes(bl.HBKID[:]) ||
		!s.CopyBytes(bl.Nonce[:]) || !s.CopyBytes(bl.IV[:]) || !s.ReadUint16LengthPrefixed(&ct) ||
		len(ct) <= TagSize || len(ct) > MaxPlaintext+TagSize || !s.Empty() {
		return nil, malformed("blob")
	}
	bl.KeyID = string(id)
	bl.Ciphertext = append([]byte(nil), ct...)
	return bl, nil
}

// KDFInput is the HMAC input that derives K (SP 800-108 counter mode, one
// 256-bit block): [1]₃₂ ‖ label ‖ 0x00 ‖ v8 key ID ‖ HBK ID ‖ N ‖ [256]₃₂.
func KDFInput(keyID string, hbkID [IDSize]byte, nonce [NonceSize]byte) []byte {
	in := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(labelKDF)+2+len(keyID)+IDSize+NonceSize+4), 1)
	in = append(in, labelKDF...)
	in = append(in, 0, byte(len(keyID)))
	in = append(in, keyID...)
	in = append(in, hbkID[:]...)
	in = append(in, nonce[:]...)
	return binary.BigEndian.AppendUint32(in, 256)
}

// aad is label ‖ 0x00 ‖ the blob's header fields (through the IV) ‖ the
// encoded encryption context.
func (bl *Blob) aad(ec []byte) ([]byte, error) {
	out := append(append(make([]byte, 0, len(labelBlob)+1+blobHeaderMax+len(ec)), labelBlob...), 0)
	out, err := bl.appendHeader(out)
	if err != nil {
		return nil, err
	}
	return append(out, ec...), nil
}

// cipher derives K for the blob and returns its AEAD and the blob's AAD
// with the encoded context ec.
func (bl *Blob) cipher(hbk MAC, ec []byte) (cipher.AEAD, []byte, error) {
	aad, err := bl.aad(ec)
	if err != nil {
		return nil, nil, err
	}
	k, err := hbk.MAC(KDFInput(bl.KeyID, bl.HBKID, bl.Nonce))
	if err != nil {
		return nil, nil, err
	}
	defer clear(k)
	c, err := aes.NewCipher(k)
	if err != nil {
		return nil, nil, err
	}
	a, err := cipher.NewGCM(c)
	return a, aad, err
}

// Seal encrypts plaintext (1 to MaxPlaintext bytes) under the HBK hbk
// (named keyID, hbkID) with the encoded encryption context ec (from
// EncodeContext) as associated data, using the fresh nonce and iv.
func Seal(hbk MAC, keyID string, hbkID [IDSize]byte, nonce [NonceSize]byte, iv [IVSize]byte, ec, plaintext []byte) (*Blob, error) {
	if len(plaintext) == 0 || len(plaintext) > MaxPlaintext {
		return nil, errors.New("hbk: plaintext must be 1 to 4096 bytes")
	}
	if len(ec) > MaxContext {
		return nil, ErrContext
	}
	bl := &Blob{KeyID: keyID, HBKID: hbkID, Nonce: nonce, IV: iv}
	a, aad, err := bl.cipher(hbk, ec)
	if err != nil {
		return nil, err
	}
	bl.Ciphertext = a.Seal(nil, iv[:], plaintext, aad)
	return bl, nil
}

// Open decrypts the blob with the HBK hbk and the encoded encryption
// context ec; any mismatch (key, version, context, a changed byte) is
// ErrOpen.
func (bl *Blob) Open(hbk MAC, ec []byte) ([]byte, error) {
	a, aad, err := bl.cipher(hbk, ec)
	if err != nil {
		return nil, err
	}
	pt, err := a.Open(nil, bl.IV[:], bl.Ciphertext, aad)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}
