package session

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/trentkms/trent/internal/wire"
)

// Every protocol object starts with Magic, the protocol Version and its
// object type, then its fields in a fixed order. Integers are big-endian.
// Variable-length fields carry a length prefix and have a documented
// maximum; nothing may follow the last field. (The header and identifier
// encodings are shared with package quorum through internal/wire.)
const (
	Magic   = wire.Magic
	Version = wire.Version
)

// Object types.
const (
	TypeHello    byte = 0x01
	TypeReply    byte = 0x02
	TypeEKT      byte = 0x03
	TypeEnvelope byte = 0x04
	TypeResponse byte = 0x05
	TypeOnePass  byte = 0x06
)

// Field sizes and limits.
const (
	PointSize      = 97 // uncompressed SEC1 P-384 point
	NonceSize      = 32 // handshake nonces
	SessionIDSize  = 16
	KeyIDSize      = 16 // domain key IDs
	SKSize         = 32 // session key
	tagSize        = 16 // AES-GCM tag
	gcmNonceSize   = 12
	ESKSize        = SKSize + tagSize
	MaxIDLen       = wire.MaxIDLen // host, HSM and domain identifiers
	MaxSigLen      = 104           // DER ECDSA P-384 signature
	MinSigLen      = 8             // SEQUENCE of two one-byte INTEGERs
	MaxEKTLen      = 512           // an encoded EKT
	MaxCommandLen  = 1 << 20       // plaintext of one command or response
	MaxContextLen  = 1024          // one-pass context
	MaxPayloadLen  = 1 << 16       // one-pass payload
	MaxRecipients  = 255           // one-pass recipients (a u8 count)
	maxCiphertext  = MaxCommandLen + tagSize
	maxEKTCipher   = 256
	maxPayloadWrap = MaxPayloadLen + tagSize
)

// Errors for malformed input. Every decoder returns an error wrapping
// ErrMalformed or ErrVersion.
var (
	ErrMalformed = errors.New("session: malformed message")
	ErrVersion   = errors.New("session: unsupported protocol version")
)

func malformed(what string) error { return fmt.Errorf("%w: %s", ErrMalformed, what) }

func addHeader(b *cryptobyte.Builder, typ byte) { wire.AddHeader(b, typ) }

// readHeader consumes and checks the header of an object of type typ.
func readHeader(s *cryptobyte.String, typ byte) error {
	return wire.CheckHeader(s, typ, ErrMalformed, ErrVersion)
}

func validID(id string) bool { return wire.ValidID(id) }

func addID(b *cryptobyte.Builder, id string) { wire.AddID(b, id) }

func readID(s *cryptobyte.String, out *string, what string) error {
	if !wire.ReadID(s, out) {
		return malformed(what)
	}
	return nil
}

func addSig(b *cryptobyte.Builder, sig []byte) {
	if len(sig) < MinSigLen || len(sig) > MaxSigLen {
		b.SetError(errors.New("session: signature length out of range"))
		return
	}
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(sig) })
}

func readSig(s *cryptobyte.String, out *[]byte) error {
	var v cryptobyte.String
	if !s.ReadUint8LengthPrefixed(&v) || len(v) < MinSigLen || len(v) > MaxSigLen {
		return malformed("signature")
	}
	*out = append([]byte(nil), v...)
	return nil
}

func readFixed(s *cryptobyte.String, n int, what string) ([]byte, error) {
	v, ok := wire.ReadFixed(s, n)
	if !ok {
		return nil, malformed(what)
	}
	return v, nil
}

func done(s cryptobyte.String) error {
	if !s.Empty() {
		return malformed("trailing bytes")
	}
	return nil
}
