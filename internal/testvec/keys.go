package testvec

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/sha3"
	"crypto/sha512"
	"io"
)

// Scalar is the fixed P-384 private scalar of a vector key:
// SHA-384("trent vector key " ‖ name).
func Scalar(name string) []byte {
	d := sha512.Sum384([]byte("trent vector key " + name))
	return d[:]
}

// Reader is the fixed "randomness" of a vector: SHAKE256("trent vector rng "
// ‖ name).
func Reader(name string) io.Reader {
	h := sha3.NewSHAKE256()
	h.Write([]byte("trent vector rng " + name))
	return h
}

// ReadN reads n bytes of r.
func ReadN(r io.Reader, n int) []byte {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		panic("testvec: " + err.Error())
	}
	return b
}

// Signer signs with deterministic ECDSA (RFC 6979: crypto/ecdsa does so
// when given no random source), so that vectors are reproducible.
type Signer struct{ K *ecdsa.PrivateKey }

// Public implements crypto.Signer.
func (s Signer) Public() crypto.PublicKey { return s.K.Public() }

// Sign implements crypto.Signer.
func (s Signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return s.K.Sign(nil, digest, opts)
}

// Ephemeral is an ephemeral ECDH key in Go memory, for vectors (in an HSM
// such keys are token session objects). It has the methods of
// session.EphemeralKey.
type Ephemeral struct{ K *ecdh.PrivateKey }

// PublicKey returns the public key.
func (e Ephemeral) PublicKey() *ecdh.PublicKey { return e.K.PublicKey() }

// ECDH computes Z with an uncompressed peer point.
func (e Ephemeral) ECDH(peer []byte) ([]byte, error) {
	p, err := ecdh.P384().NewPublicKey(peer)
	if err != nil {
		return nil, err
	}
	return e.K.ECDH(p)
}

// Destroy does nothing.
func (e Ephemeral) Destroy() error { return nil }
