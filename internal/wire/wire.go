// Package wire holds the building blocks shared by Trent's binary protocol
// objects (package session, package quorum, package domain): the header
// every object starts with, the identifier field, and the HSM ID derived
// from a signing key. Like cryptobyte, which it extends, it reports failure
// as a boolean (or a Builder error); the packages that own the objects turn
// that into their own typed errors. It needs no cgo: package hsm (PKCS#11)
// and the pure packages (domain, quorum, session) both import it.
package wire

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// Every object starts with Magic, the protocol Version and its object type.
const (
	Magic   = "TRNT"
	Version = 1

	// MaxIDLen bounds identifiers: host, HSM, operator and domain IDs.
	MaxIDLen = 64
)

// AppendHeader appends Magic ‖ Version ‖ typ to out, for encoders that
// write their fields by hand.
func AppendHeader(out []byte, typ byte) []byte {
	return append(append(out, Magic...), Version, typ)
}

// AddHeader adds Magic ‖ Version ‖ typ.
func AddHeader(b *cryptobyte.Builder, typ byte) {
	b.AddBytes([]byte(Magic))
	b.AddUint8(Version)
	b.AddUint8(typ)
}

// HeaderResult says what ReadHeader found.
type HeaderResult int

const (
	HeaderOK      HeaderResult = iota
	HeaderBad                  // wrong magic, truncated, or another type
	HeaderVersion              // a version this code does not speak
)

// ReadHeader consumes the header of an object of type typ.
func ReadHeader(s *cryptobyte.String, typ byte) (HeaderResult, uint8) {
	var magic []byte
	var v, t uint8
	if !s.ReadBytes(&magic, len(Magic)) || string(magic) != Magic || !s.ReadUint8(&v) {
		return HeaderBad, 0
	}
	if v != Version {
		return HeaderVersion, v
	}
	if !s.ReadUint8(&t) || t != typ {
		return HeaderBad, t
	}
	return HeaderOK, t
}

// ValidID reports whether id is 1 to MaxIDLen printable ASCII bytes with no
// space.
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > MaxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// AddID adds a u8-length-prefixed identifier, failing the Builder if id is
// not valid.
func AddID(b *cryptobyte.Builder, id string) {
	if !ValidID(id) {
		b.SetError(fmt.Errorf("invalid identifier %q", id))
		return
	}
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(id)) })
}

// ReadID reads a u8-length-prefixed identifier and checks it is valid.
func ReadID(s *cryptobyte.String, out *string) bool {
	var v cryptobyte.String
	if !s.ReadUint8LengthPrefixed(&v) || !ValidID(string(v)) {
		return false
	}
	*out = string(v)
	return true
}

// AddFixed adds v, failing the Builder unless it is n bytes.
func AddFixed(b *cryptobyte.Builder, v []byte, n int, what string) {
	if len(v) != n {
		b.SetError(fmt.Errorf("%s must be %d bytes", what, n))
		return
	}
	b.AddBytes(v)
}

// ReadFixed reads n bytes into a fresh slice.
func ReadFixed(s *cryptobyte.String, n int) ([]byte, bool) {
	var v []byte
	if !s.ReadBytes(&v, n) {
		return nil, false
	}
	return append([]byte(nil), v...), true
}

// CheckHeader is ReadHeader with the owning package's errors: errVersion
// (wrapped with the version) or errMalformed.
func CheckHeader(s *cryptobyte.String, typ byte, errMalformed, errVersion error) error {
	switch r, v := ReadHeader(s, typ); r {
	case HeaderVersion:
		return fmt.Errorf("%w: %d", errVersion, v)
	case HeaderBad:
		return fmt.Errorf("%w: bad header", errMalformed)
	}
	return nil
}

// LabelledHash is SHA-384(label ‖ 0x00 ‖ parts…): how every signature and
// KDF input of the protocol binds its context label.
func LabelledHash(label string, parts ...[]byte) []byte {
	h := sha512.New384()
	h.Write([]byte(label))
	h.Write([]byte{0})
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

// HSMID is the identifier of the HSM whose signing public key is pub:
// "hsm-" followed by the first 8 bytes, in lowercase hex, of SHA-256 over
// the DER SubjectPublicKeyInfo of pub (docs/protocol.md, Identifiers). It is
// derived from nothing secret, so an HSM's ID is stable across restarts and
// anyone holding its public key can check it. It panics if pub cannot be
// marshalled (not a key on a supported curve): a bug of the caller.
func HSMID(pub *ecdsa.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic("wire: cannot marshal an HSM signing key: " + err.Error())
	}
	sum := sha256.Sum256(der)
	return "hsm-" + hex.EncodeToString(sum[:8])
}
