package node

import (
	"crypto/sha256"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	"golang.org/x/crypto/cryptobyte"

	"github.com/trentkms/trent/hsm"
	"github.com/trentkms/trent/session"
)

// secp256k1 keys (ECC_SECG_P256K1, SIGN_VERIFY with ECDSA_SHA_256). Go's
// standard library has no secp256k1 and no allowed library does it, so the
// token does the arithmetic: it makes the key pair (the scalar leaves it
// only to be sealed in the key token), signs from a transient session
// object, and verifies for the host, which cannot.

// SpecSECP256K1 is ECC_SECG_P256K1's code.
const SpecSECP256K1 uint8 = 7

func init() { SpecNames[SpecSECP256K1] = "ECC_SECG_P256K1" }

var (
	oidECPublicKey = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidSecp256k1   = asn1.ObjectIdentifier{1, 3, 132, 0, 10}
)

// MarshalSecp256k1PublicKey encodes an uncompressed secp256k1 point as a
// SubjectPublicKeyInfo (id-ecPublicKey, namedCurve secp256k1).
func MarshalSecp256k1PublicKey(point []byte) ([]byte, error) {
	curve, err := asn1.Marshal(oidSecp256k1)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(spki{Algorithm: pkix.AlgorithmIdentifier{Algorithm: oidECPublicKey, Parameters: asn1.RawValue{FullBytes: curve}},
		PublicKey: asn1.BitString{Bytes: point, BitLength: 8 * len(point)}})
}

// ParseSecp256k1PublicKey decodes such a SubjectPublicKeyInfo strictly and
// returns the uncompressed point.
func ParseSecp256k1PublicKey(der []byte) ([]byte, error) {
	var k spki
	rest, err := asn1.Unmarshal(der, &k)
	if err != nil || len(rest) != 0 || !k.Algorithm.Algorithm.Equal(oidECPublicKey) {
		return nil, errors.New("node: not an EC SubjectPublicKeyInfo")
	}
	var curve asn1.ObjectIdentifier
	if rest, err := asn1.Unmarshal(k.Algorithm.Parameters.FullBytes, &curve); err != nil || len(rest) != 0 || !curve.Equal(oidSecp256k1) {
		return nil, errors.New("node: not a secp256k1 key")
	}
	p := k.PublicKey.Bytes
	if k.PublicKey.BitLength != 8*len(p) || len(p) != 65 || p[0] != 0x04 {
		return nil, errors.New("node: not an uncompressed secp256k1 point")
	}
	return p, nil
}

// generateSecp256k1 makes a secp256k1 key in the token: the scalar (the
// key material) and the public key.
func (n *Node) generateSecp256k1() (material, public []byte, err error) {
	d, point, err := n.tok.GenerateECRaw(hsm.Secp256k1Params)
	if err != nil {
		return nil, nil, err
	}
	public, err = MarshalSecp256k1PublicKey(point)
	if err != nil {
		clear(d)
		return nil, nil, err
	}
	return d, public, nil
}

// ecPrivateKey is RFC 5915's ECPrivateKey.
type ecPrivateKey struct {
	Version    int
	PrivateKey []byte
	Public     asn1.BitString `asn1:"optional,explicit,tag:1"`
}

// pkcs8 is RFC 5208's PrivateKeyInfo.
type pkcs8 struct {
	Version    int
	Algorithm  pkix.AlgorithmIdentifier
	PrivateKey []byte
}

// MarshalSecp256k1PKCS8 encodes a secp256k1 private key (scalar d, public
// point) as PKCS#8 DER (RFC 5208 with RFC 5915's ECPrivateKey), as KMS
// returns data key pairs' private keys; Go's x509 has no secp256k1.
func MarshalSecp256k1PKCS8(d, point []byte) ([]byte, error) {
	inner, err := asn1.Marshal(ecPrivateKey{Version: 1, PrivateKey: d, Public: asn1.BitString{Bytes: point, BitLength: 8 * len(point)}})
	if err != nil {
		return nil, err
	}
	defer clear(inner)
	curve, err := asn1.Marshal(oidSecp256k1)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(pkcs8{Algorithm: pkix.AlgorithmIdentifier{Algorithm: oidECPublicKey, Parameters: asn1.RawValue{FullBytes: curve}},
		PrivateKey: inner})
}

// ParseSecp256k1PKCS8 decodes MarshalSecp256k1PKCS8's output strictly and
// returns the scalar and the public point.
func ParseSecp256k1PKCS8(der []byte) (d, point []byte, err error) {
	var p pkcs8
	rest, err := asn1.Unmarshal(der, &p)
	if err != nil || len(rest) != 0 || p.Version != 0 || !p.Algorithm.Algorithm.Equal(oidECPublicKey) {
		return nil, nil, errors.New("node: not an EC PKCS#8 key")
	}
	var curve asn1.ObjectIdentifier
	if rest, err := asn1.Unmarshal(p.Algorithm.Parameters.FullBytes, &curve); err != nil || len(rest) != 0 || !curve.Equal(oidSecp256k1) {
		return nil, nil, errors.New("node: not a secp256k1 key")
	}
	var k ecPrivateKey
	if rest, err := asn1.Unmarshal(p.PrivateKey, &k); err != nil || len(rest) != 0 || k.Version != 1 || len(k.PrivateKey) != 32 {
		return nil, nil, errors.New("node: malformed ECPrivateKey")
	}
	return k.PrivateKey, k.Public.Bytes, nil
}

// signSecp256k1 signs with the scalar d in the token; the signature is DER,
// as KMS's ECDSA signatures.
func (n *Node) signSecp256k1(d []byte, alg uint8, digest bool, message []byte) ([]byte, error) {
	if alg != AlgECDSASHA256 {
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
	point, err := ParseSecp256k1PublicKey(pubDER)
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

// CmdVerify: v16 public key DER ‖ u8 alg ‖ u8 message type ‖ v16 message ‖
// v16 signature → u8 1 (valid) or 0; for the key specs the host cannot
// verify itself (ECC_SECG_P256K1).
const CmdVerify uint16 = 20

func (n *Node) verifyCommand(m map[uint16]session.CommandHandler, refused func(error) error) {
	m[CmdVerify] = func(r *session.Request) ([]byte, error) {
		var pub, msg, sig cryptobyte.String
		var alg, typ uint8
		s := cryptobyte.String(r.Command)
		if !s.ReadUint16LengthPrefixed(&pub) || !s.ReadUint8(&alg) || !s.ReadUint8(&typ) || typ > 1 ||
			!s.ReadUint16LengthPrefixed(&msg) || len(msg) > maxSignMsg || !s.ReadUint16LengthPrefixed(&sig) || !s.Empty() {
			return nil, refused(ErrKeyCommand)
		}
		if alg != AlgECDSASHA256 {
			return nil, refused(fmt.Errorf("%w: ECDSA_SHA_256 only", ErrKeyUse))
		}
		ok, err := n.VerifySecp256k1(pub, typ == 1, msg, sig)
		if err != nil {
			return nil, refused(err)
		}
		if ok {
			return []byte{1}, nil
		}
		return []byte{0}, nil
	}
}
