package hsmcmd

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"

	"github.com/cloudflare/circl/sign"
	"github.com/cloudflare/circl/sign/mldsa/mldsa44"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"github.com/cloudflare/circl/sign/mldsa/mldsa87"
)

// Key encodings that Go's x509 does not know, which host and HSM share:
// ML-DSA public keys (FIPS 204, through github.com/cloudflare/circl, the
// NIST OIDs id-ml-dsa-44/65/87 with no parameters) and secp256k1 public
// and private keys.

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

func oidOf(s sign.Scheme) asn1.ObjectIdentifier {
	return s.(interface{ Oid() asn1.ObjectIdentifier }).Oid()
}

// MarshalMLDSAPublicKey encodes an ML-DSA public key as a
// SubjectPublicKeyInfo.
func MarshalMLDSAPublicKey(spec uint8, pub sign.PublicKey) ([]byte, error) {
	s := MLDSAScheme(spec)
	raw, err := pub.MarshalBinary()
	if err != nil || s == nil {
		return nil, errors.New("hsmcmd: ML-DSA public key")
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
		return nil, errors.New("hsmcmd: not an ML-DSA public key of that parameter set")
	}
	return s.UnmarshalBinaryPublicKey(k.PublicKey.Bytes)
}

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
// returns the uncompressed point (65 bytes). It does not check that the
// point is on the curve (the token does).
func ParseSecp256k1PublicKey(der []byte) ([]byte, error) {
	var k spki
	rest, err := asn1.Unmarshal(der, &k)
	if err != nil || len(rest) != 0 || !k.Algorithm.Algorithm.Equal(oidECPublicKey) {
		return nil, errors.New("hsmcmd: not an EC SubjectPublicKeyInfo")
	}
	var curve asn1.ObjectIdentifier
	if rest, err := asn1.Unmarshal(k.Algorithm.Parameters.FullBytes, &curve); err != nil || len(rest) != 0 || !curve.Equal(oidSecp256k1) {
		return nil, errors.New("hsmcmd: not a secp256k1 key")
	}
	p := k.PublicKey.Bytes
	if k.PublicKey.BitLength != 8*len(p) || len(p) != 65 || p[0] != 0x04 {
		return nil, errors.New("hsmcmd: not an uncompressed secp256k1 point")
	}
	return p, nil
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
//
// RFC 5915 fixes the scalar's length at 32 octets: a token may return
// CKA_VALUE without its leading zero octets (SoftHSM does, for about one
// key in 256), so d is left-padded here.
func MarshalSecp256k1PKCS8(d, point []byte) ([]byte, error) {
	if len(d) == 0 || len(d) > 32 {
		return nil, errors.New("hsmcmd: secp256k1 scalar length")
	}
	var fixed [32]byte
	defer clear(fixed[:])
	copy(fixed[32-len(d):], d)
	inner, err := asn1.Marshal(ecPrivateKey{Version: 1, PrivateKey: fixed[:], Public: asn1.BitString{Bytes: point, BitLength: 8 * len(point)}})
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
		return nil, nil, errors.New("hsmcmd: not an EC PKCS#8 key")
	}
	var curve asn1.ObjectIdentifier
	if rest, err := asn1.Unmarshal(p.Algorithm.Parameters.FullBytes, &curve); err != nil || len(rest) != 0 || !curve.Equal(oidSecp256k1) {
		return nil, nil, errors.New("hsmcmd: not a secp256k1 key")
	}
	var k ecPrivateKey
	if rest, err := asn1.Unmarshal(p.PrivateKey, &k); err != nil || len(rest) != 0 || k.Version != 1 || len(k.PrivateKey) != 32 {
		return nil, nil, errors.New("hsmcmd: malformed ECPrivateKey")
	}
	return k.PrivateKey, k.Public.Bytes, nil
}
