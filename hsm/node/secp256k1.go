package node

import (
	"crypto/sha256"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	"github.com/trentkms/trent/hsm"
	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/session"
)

// secp256k1 keys (ECC_SECG_P256K1, SIGN_VERIFY with ECDSA_SHA_256). Go's
// standard library has no secp256k1 and no allowed library does it, so the
// token does the arithmetic: it makes the key pair (the scalar leaves it
// only to be sealed in the key token), signs from a transient session
// object, and verifies for the host, which cannot. On a module without the
// curve (NSS's softoken) package hsm does the same in the HSM process.

// generateSecp256k1 makes a secp256k1 key in the token: the scalar (the
// key material) and the public key.
func (n *Node) generateSecp256k1() (material, public []byte, err error) {
	d, point, err := n.tok.GenerateECRaw(hsm.Secp256k1Params)
	if err != nil {
		return nil, nil, err
	}
	public, err = hsmcmd.MarshalSecp256k1PublicKey(point)
	if err != nil {
		clear(d)
		return nil, nil, err
	}
	return d, public, nil
}

// signSecp256k1 signs with the scalar d in the token; the signature is DER,
// as KMS's ECDSA signatures.
func (n *Node) signSecp256k1(d []byte, alg uint8, digest bool, message []byte) ([]byte, error) {
	if alg != hsmcmd.AlgECDSASHA256 {
		return nil, fmt.Errorf("%w: ECC_SECG_P256K1 signs with ECDSA_SHA_256", ErrKeyUse)
	}
	h := message
	if !digest {
		s := sha256.Sum256(message)
		h = s[:]
	} else if len(message) != sha256.Size {
		return nil, fmt.Errorf("%w: a %d-byte digest for ECDSA_SHA_256", ErrKeyUse, len(message))
	}
	rs, err := n.tok.SignECDSARaw(hsm.Secp256k1Params, d, h)
	if err != nil {
		return nil, err
	}
	if len(rs) != 64 {
		return nil, errors.New("node: the token's secp256k1 signature is not 64 bytes")
	}
	return marshalECDSA(rs[:32], rs[32:])
}

func marshalECDSA(r, s []byte) ([]byte, error) {
	return asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(r), new(big.Int).SetBytes(s)})
}

// VerifySecp256k1 checks a DER ECDSA_SHA_256 signature of message (or its
// digest) by the SubjectPublicKeyInfo pubDER, in the token.
func (n *Node) VerifySecp256k1(pubDER []byte, digest bool, message, sig []byte) (bool, error) {
	point, err := hsmcmd.ParseSecp256k1PublicKey(pubDER)
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrKeyUse, err)
	}
	var rs struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(sig, &rs); err != nil || len(rest) != 0 || rs.R.Sign() <= 0 || rs.S.Sign() <= 0 ||
		rs.R.BitLen() > 256 || rs.S.BitLen() > 256 {
		return false, nil
	}
	h := message
	if !digest {
		s := sha256.Sum256(message)
		h = s[:]
	} else if len(message) != sha256.Size {
		return false, fmt.Errorf("%w: a %d-byte digest for ECDSA_SHA_256", ErrKeyUse, len(message))
	}
	raw := make([]byte, 64)
	rs.R.FillBytes(raw[:32])
	rs.S.FillBytes(raw[32:])
	return n.tok.VerifyECDSARaw(hsm.Secp256k1Params, point, h, raw)
}

func (n *Node) verifyCommand(m handlers) {
	m[hsmcmd.Verify] = func(r *session.Request) ([]byte, error) {
		req, err := hsmcmd.ParseVerifyRequest(r.Command)
		if err != nil {
			return nil, refused(err)
		}
		if req.Alg != hsmcmd.AlgECDSASHA256 {
			return nil, refused(fmt.Errorf("%w: ECDSA_SHA_256 only", ErrKeyUse))
		}
		ok, err := n.VerifySecp256k1(req.PublicKey, req.Digest, req.Message, req.Signature)
		if err != nil {
			return nil, refused(err)
		}
		return hsmcmd.VerifyResponse{Valid: ok}.Marshal()
	}
}
