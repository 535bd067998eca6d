package node

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"io"

	"github.com/cloudflare/circl/sign"
	"github.com/cloudflare/circl/sign/mldsa/mldsa44"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"github.com/cloudflare/circl/sign/mldsa/mldsa87"
)

// ML-DSA keys (FIPS 204) through github.com/cloudflare/circl: the key
// material is the 32-byte seed, the public key a SubjectPublicKeyInfo with
// the NIST OIDs (id-ml-dsa-44/65/87, no parameters), signatures are
// hedged (randomized) with an empty context, as KMS's ML_DSA_SHAKE_256
// with MessageType RAW. circl exposes no signing from an external μ, so
// MessageType EXTERNAL_MU is not served.

// ML-DSA key specs and the one signing algorithm.
const (
	SpecMLDSA44 uint8 = 12
	SpecMLDSA65 uint8 = 13
	SpecMLDSA87 uint8 = 14
	AlgMLDSA    uint8 = 16
)

func init() {
	SpecNames[SpecMLDSA44], SpecNames[SpecMLDSA65], SpecNames[SpecMLDSA87] = "ML_DSA_44", "ML_DSA_65", "ML_DSA_87"
	AlgNames[AlgMLDSA] = "ML_DSA_SHAKE_256"
}

// MLDSAScheme is circl's scheme of an ML-DSA spec (nil for another spec).
func MLDSAScheme(spec uint8) sign.Scheme {
	switch spec {
	case SpecMLDSA44:
		return mldsa44.Scheme()
	case SpecMLDSA65:
		return mldsa65.Scheme()
	case SpecMLDSA87:
		return mldsa87.Scheme()
	}
	return nil
}

type spki struct {
	Algorithm pkix.AlgorithmIdentifier
	PublicKey asn1.BitString
}

// MarshalMLDSAPublicKey encodes an ML-DSA public key as a
// SubjectPublicKeyInfo.
func MarshalMLDSAPublicKey(spec uint8, pub sign.PublicKey) ([]byte, error) {
	s := MLDSAScheme(spec)
	raw, err := pub.MarshalBinary()
	if err != nil || s == nil {
		return nil, errors.New("node: ML-DSA public key")
	}
	return asn1.Marshal(spki{Algorithm: pkix.AlgorithmIdentifier{Algorithm: oidOf(s)},
		PublicKey: asn1.BitString{Bytes: raw, BitLength: 8 * len(raw)}})
}

// ParseMLDSAPublicKey decodes a SubjectPublicKeyInfo of spec strictly.
func ParseMLDSAPublicKey(spec uint8, der []byte) (sign.PublicKey, error) {
	s := MLDSAScheme(spec)
	var k spki
	rest, err := asn1.Unmarshal(der, &k)
	if err != nil || len(rest) != 0 || s == nil || !k.Algorithm.Algorithm.Equal(oidOf(s)) ||
		len(k.Algorithm.Parameters.FullBytes) != 0 || k.PublicKey.BitLength != 8*len(k.PublicKey.Bytes) {
		return nil, errors.New("node: not an ML-DSA public key of that parameter set")
	}
	return s.UnmarshalBinaryPublicKey(k.PublicKey.Bytes)
}

// generateMLDSA makes an ML-DSA key from a seed read from rng.
func generateMLDSA(spec uint8, rng io.Reader) (seed, public []byte, err error) {
	s := MLDSAScheme(spec)
	seed = make([]byte, s.SeedSize())
	if _, err := io.ReadFull(rng, seed); err != nil {
		return nil, nil, err
	}
	pub, _ := s.DeriveKey(seed)
	public, err = MarshalMLDSAPublicKey(spec, pub)
	return seed, public, err
}

func oidOf(s sign.Scheme) asn1.ObjectIdentifier {
	return s.(interface{ Oid() asn1.ObjectIdentifier }).Oid()
}

// signMLDSA signs message with the key of seed: hedged (circl draws the
// 32 random bytes from crypto/rand), empty context.
func signMLDSA(spec uint8, seed, message []byte) ([]byte, error) {
	s := MLDSAScheme(spec)
	_, priv := s.DeriveKey(seed)
	sig := make([]byte, s.SignatureSize())
	var err error
	switch k := priv.(type) {
	case *mldsa44.PrivateKey:
		err = mldsa44.SignTo(k, message, nil, true, sig)
	case *mldsa65.PrivateKey:
		err = mldsa65.SignTo(k, message, nil, true, sig)
	case *mldsa87.PrivateKey:
		err = mldsa87.SignTo(k, message, nil, true, sig)
	default:
		err = errors.New("node: not an ML-DSA key")
	}
	return sig, err
}
