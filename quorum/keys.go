package quorum

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/cloudflare/circl/sign/mldsa/mldsa87"

	"github.com/trentkms/trent/internal/wire"
)

// Alg is an operator signature algorithm.
type Alg uint8

const (
	// ECDSAP384 is ECDSA P-384 over SHA-384(label ‖ 0x00 ‖ command), DER.
	ECDSAP384 Alg = 1
	// MLDSA87 is ML-DSA-87 (FIPS 204, pure) over the command with the
	// label as its context string.
	MLDSA87 Alg = 2
)

func (a Alg) String() string {
	switch a {
	case ECDSAP384:
		return "ECDSA-P384-SHA384"
	case MLDSA87:
		return "ML-DSA-87"
	}
	return fmt.Sprintf("Alg(%d)", uint8(a))
}

func (a Alg) validLen(n int) bool {
	switch a {
	case ECDSAP384:
		return n >= 8 && n <= 104
	case MLDSA87:
		return n == mldsa87.SignatureSize
	}
	return false
}

// labelCommand is the context label of operator signatures.
const labelCommand = "trent/v1 quorum command"

// Signature is one operator's signature over an encoded command.
type Signature struct {
	Signer string
	Alg    Alg
	Sig    []byte
}

// PublicKey is an operator's verification key: ECDSA P-384 or ML-DSA-87.
type PublicKey struct {
	ec *ecdsa.PublicKey
	ml *mldsa87.PublicKey
}

// NewECDSAKey wraps an ECDSA P-384 public key.
func NewECDSAKey(k *ecdsa.PublicKey) (PublicKey, error) {
	if k == nil || k.Curve != elliptic.P384() {
		return PublicKey{}, errors.New("quorum: operator ECDSA keys are P-384")
	}
	return PublicKey{ec: k}, nil
}

// NewMLDSAKey wraps an ML-DSA-87 public key.
func NewMLDSAKey(k *mldsa87.PublicKey) (PublicKey, error) {
	if k == nil {
		return PublicKey{}, errors.New("quorum: nil ML-DSA-87 key")
	}
	return PublicKey{ml: k}, nil
}

// Alg is the key's algorithm.
func (k PublicKey) Alg() Alg {
	if k.ml != nil {
		return MLDSA87
	}
	return ECDSAP384
}

// ECDSA returns the ECDSA key, or nil for an ML-DSA-87 key.
func (k PublicKey) ECDSA() *ecdsa.PublicKey { return k.ec }

// Marshal encodes the key: DER SubjectPublicKeyInfo for ECDSA, the 2592-byte
// FIPS 204 encoding for ML-DSA-87.
func (k PublicKey) Marshal() ([]byte, error) {
	if k.ml != nil {
		return k.ml.MarshalBinary()
	}
	if k.ec == nil {
		return nil, errors.New("quorum: empty public key")
	}
	return x509.MarshalPKIXPublicKey(k.ec)
}

// ParsePublicKey decodes a key of algorithm alg (see Marshal).
func ParsePublicKey(alg Alg, b []byte) (PublicKey, error) {
	switch alg {
	case ECDSAP384:
		pub, err := x509.ParsePKIXPublicKey(b)
		if err != nil {
			return PublicKey{}, fmt.Errorf("quorum: %w", err)
		}
		ek, ok := pub.(*ecdsa.PublicKey)
		if !ok {
			return PublicKey{}, errors.New("quorum: not an ECDSA key")
		}
		return NewECDSAKey(ek)
	case MLDSA87:
		var k mldsa87.PublicKey
		if len(b) != mldsa87.PublicKeySize {
			return PublicKey{}, errors.New("quorum: ML-DSA-87 public key of the wrong size")
		}
		if err := k.UnmarshalBinary(b); err != nil {
			return PublicKey{}, fmt.Errorf("quorum: %w", err)
		}
		return NewMLDSAKey(&k)
	}
	return PublicKey{}, fmt.Errorf("quorum: unknown algorithm %d", alg)
}

// Equal reports whether k and o are the same key.
func (k PublicKey) Equal(o PublicKey) bool {
	switch {
	case k.ec != nil && o.ec != nil:
		return k.ec.Equal(o.ec)
	case k.ml != nil && o.ml != nil:
		return k.ml.Equal(o.ml)
	}
	return false
}

// verify checks sig over the encoded command.
func (k PublicKey) verify(command []byte, sig Signature) bool {
	switch {
	case sig.Alg == ECDSAP384 && k.ec != nil:
		return ecdsa.VerifyASN1(k.ec, commandDigest(command), sig.Sig)
	case sig.Alg == MLDSA87 && k.ml != nil:
		return mldsa87.Verify(k.ml, command, []byte(labelCommand), sig.Sig)
	}
	return false
}

func commandDigest(command []byte) []byte { return wire.LabelledHash(labelCommand, command) }

// SignECDSA signs an encoded command with an ECDSA P-384 key: a file key
// (*ecdsa.PrivateKey) or one in a token (an hsm.SigningKey).
func SignECDSA(signer string, key crypto.Signer, command []byte) (Signature, error) {
	if pub, ok := key.Public().(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P384() {
		return Signature{}, errors.New("quorum: operator ECDSA keys are P-384")
	}
	sig, err := key.Sign(nil, commandDigest(command), crypto.SHA384)
	if err != nil {
		return Signature{}, fmt.Errorf("quorum: sign: %w", err)
	}
	return Signature{Signer: signer, Alg: ECDSAP384, Sig: sig}, nil
}

// SignMLDSA signs an encoded command with an ML-DSA-87 key (hedged,
// randomized signing unless deterministic is set).
func SignMLDSA(signer string, key *mldsa87.PrivateKey, command []byte, deterministic bool) (Signature, error) {
	sig := make([]byte, mldsa87.SignatureSize)
	if err := mldsa87.SignTo(key, command, []byte(labelCommand), !deterministic, sig); err != nil {
		return Signature{}, fmt.Errorf("quorum: sign: %w", err)
	}
	return Signature{Signer: signer, Alg: MLDSA87, Sig: sig}, nil
}
