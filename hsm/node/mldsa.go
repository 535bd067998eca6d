package node

import (
	"errors"
	"io"

	"github.com/cloudflare/circl/sign/mldsa/mldsa44"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"github.com/cloudflare/circl/sign/mldsa/mldsa87"

	"github.com/trentkms/trent/hsmcmd"
)

// ML-DSA keys (FIPS 204) through github.com/cloudflare/circl: the key
// material is the 32-byte seed, the public key a SubjectPublicKeyInfo with
// the NIST OIDs (id-ml-dsa-44/65/87, no parameters), signatures are
// hedged (randomized) with an empty context, as KMS's ML_DSA_SHAKE_256
// with MessageType RAW. circl exposes no signing from an external μ, so
// MessageType EXTERNAL_MU is not served.

// generateMLDSA makes an ML-DSA key from a seed read from rng.
func generateMLDSA(spec uint8, rng io.Reader) (seed, public []byte, err error) {
	s := hsmcmd.MLDSAScheme(spec)
	seed = make([]byte, s.SeedSize())
	if _, err := io.ReadFull(rng, seed); err != nil {
		return nil, nil, err
	}
	pub, _ := s.DeriveKey(seed)
	public, err = hsmcmd.MarshalMLDSAPublicKey(spec, pub)
	return seed, public, err
}

// signMLDSA signs message with the key of seed: hedged (circl draws the
// 32 random bytes from crypto/rand), empty context.
func signMLDSA(spec uint8, seed, message []byte) ([]byte, error) {
	s := hsmcmd.MLDSAScheme(spec)
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
