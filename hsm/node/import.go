package node

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"hash"
	"math/big"

	"github.com/trentkms/trent/hbk"
	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/internal/kwp"
	"github.com/trentkms/trent/session"
)

// Key import (BYOK). The wrapping key is an RSA key of a wrapping spec
// made by CreateKeyPair for the KMS key; its key token is kept by the
// hosts in the key store. ImportKeyMaterial and ImportKeyToken open it,
// unwrap the customer's material (in HSM-process memory, as every
// customer RSA key is used: docs/hsm-boundary.md) with RSAES-OAEP, or
// for RSA_AES_KEY_WRAP_SHA_* RSAES-OAEP of an ephemeral AES key followed
// by AES key wrap with padding (RFC 5649, package kwp), check that it is
// material of the key's spec, seal it at once into an HBK token or a key
// token as CreateHBK and CreateKeyPair seal drawn material, and clear
// it. The material itself is never in an answer.

var (
	// ErrUnwrap is wrapped when the wrapped material does not decrypt
	// under the wrapping key (the request's ciphertext is wrong).
	ErrUnwrap = errors.New("node: the key material does not unwrap")
	// ErrMaterial is wrapped when the material unwraps but is not key
	// material of the key's spec (a wrong length, not a PKCS#8 key of
	// the spec's size or curve, a secp256k1 public key not the scalar's).
	ErrMaterial = errors.New("node: the key material is not valid for the key spec")
	// ErrKeyNotHeld is wrapped (with ErrHBK) when a key token is under a
	// domain key this HSM does not hold: a state of the HSM (it lags a
	// domain change) or of the key store, not of the request.
	ErrKeyNotHeld = errors.New("node: domain key not held")
)

// hmacMaxKey is the longest HMAC key KMS imports for spec (HMAC_224 and
// HMAC_256: 64 bytes, HMAC_384 and HMAC_512: 128, the hash's block
// size); the shortest is the hash's output size.
func hmacMaxKey(spec uint8) int {
	if spec == hsmcmd.SpecHMAC384 || spec == hsmcmd.SpecHMAC512 {
		return 128
	}
	return 64
}

// unwrap opens the wrapping key token wrapToken, which must be of a
// wrapping spec and made for keyID, and unwraps wrapped with alg. The
// caller clears the material.
func (n *Node) unwrap(wrapToken []byte, alg uint8, wrapped []byte, keyID string) ([]byte, error) {
	switch {
	case !hbk.ValidKeyID(keyID):
		return nil, fmt.Errorf("%w: invalid key ID", ErrKeyUse)
	case alg != hsmcmd.AlgOAEPSHA1 && alg != hsmcmd.AlgOAEPSHA256 &&
		alg != hsmcmd.AlgRSAAESKeyWrapSHA1 && alg != hsmcmd.AlgRSAAESKeyWrapSHA256:
		return nil, fmt.Errorf("%w: wrapping algorithm %d", ErrKeyUse, alg)
	}
	k, err := n.openKey(wrapToken)
	if err != nil {
		return nil, err
	}
	priv, ok := k.priv.(*rsa.PrivateKey)
	if !ok || k.keyID != keyID || !hsmcmd.IsWrappingSpec(k.spec) {
		return nil, fmt.Errorf("%w: not a wrapping key of %s", ErrKeyUse, keyID)
	}
	if alg == hsmcmd.AlgOAEPSHA1 || alg == hsmcmd.AlgOAEPSHA256 {
		m, err := rsa.DecryptOAEP(oaepHash(alg), nil, priv, wrapped, nil)
		if err != nil {
			return nil, ErrUnwrap
		}
		return m, nil
	}
	// RSA_AES_KEY_WRAP: the RSA ciphertext of the AES key (as long as the
	// modulus), then the KWP ciphertext of the material.
	size := priv.Size()
	if len(wrapped) <= size {
		return nil, ErrUnwrap
	}
	oaep := hsmcmd.AlgOAEPSHA1
	if alg == hsmcmd.AlgRSAAESKeyWrapSHA256 {
		oaep = hsmcmd.AlgOAEPSHA256
	}
	aesKey, err := rsa.DecryptOAEP(oaepHash(oaep), nil, priv, wrapped[:size], nil)
	if err != nil {
		return nil, ErrUnwrap
	}
	defer clear(aesKey)
	if len(aesKey) != 16 && len(aesKey) != 24 && len(aesKey) != 32 {
		return nil, ErrUnwrap
	}
	m, err := kwp.Unwrap(aesKey, wrapped[size:])
	if err != nil {
		return nil, ErrUnwrap
	}
	return m, nil
}

// ImportKeyMaterial unwraps wrapped (with alg) with the wrapping key of
// wrapToken, which must be a wrapping key made for keyID, and returns the
// material's HBK token under the active domain key (with HBK ID hbkID
// when given, else a new one) and its check value
// (hsmcmd.ImportCheckValue). The material must be 32 bytes.
func (n *Node) ImportKeyMaterial(wrapToken []byte, alg uint8, wrapped []byte, keyID string, hbkID []byte) (token, check []byte, err error) {
	if len(hbkID) != 0 && len(hbkID) != hbk.IDSize {
		return nil, nil, fmt.Errorf("%w: invalid HBK ID", ErrKeyUse)
	}
	m, err := n.unwrap(wrapToken, alg, wrapped, keyID)
	if err != nil {
		return nil, nil, err
	}
	defer clear(m)
	if len(m) != hbk.Size {
		return nil, nil, fmt.Errorf("%w: SYMMETRIC_DEFAULT key material is 32 bytes", ErrMaterial)
	}
	r, err := n.tok.Random(hbk.IDSize + hbk.IVSize)
	if err != nil {
		return nil, nil, err
	}
	if token, err = n.sealHBK(keyID, hbkID, r, m); err != nil {
		return nil, nil, err
	}
	return token, hsmcmd.ImportCheckValue(m, keyID), nil
}

// ImportKeyToken unwraps wrapped (with alg) with the wrapping key of
// wrapToken, which must be a wrapping key made for keyID, checks that it
// is key material of spec (an RSA, ECC or secp256k1 private key as
// PKCS#8 DER, or an HMAC key of KMS's lengths), and returns it sealed as
// a key token of spec under the active domain key, its public key (DER
// SubjectPublicKeyInfo; empty for HMAC) and the check value of its
// canonical form (the token's content: the PKCS#8 DER Go marshals, the
// secp256k1 scalar, the HMAC key), so that a re-import of the same key
// in another encoding has the same check value.
func (n *Node) ImportKeyToken(wrapToken []byte, alg, spec uint8, wrapped []byte, keyID string) (token, public, check []byte, err error) {
	switch {
	case rsaBits(spec) > 0 && !hsmcmd.IsWrappingSpec(spec), curveOf(spec) != nil, spec == hsmcmd.SpecSECP256K1:
	default:
		if _, size := hmacHash(spec); size == 0 {
			return nil, nil, nil, fmt.Errorf("%w: import of key spec %d", ErrKeyUse, spec)
		}
	}
	m, err := n.unwrap(wrapToken, alg, wrapped, keyID)
	if err != nil {
		return nil, nil, nil, err
	}
	defer clear(m)
	material, public, err := n.canonical(spec, m)
	if err != nil {
		return nil, nil, nil, err
	}
	defer clear(material)
	if token, err = n.sealKeyToken(spec, keyID, material); err != nil {
		return nil, nil, nil, err
	}
	return token, public, hsmcmd.ImportCheckValue(material, keyID), nil
}

// secp256k1N is the order of secp256k1's group.
var secp256k1N, _ = new(big.Int).SetString("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141", 16)

// canonical checks that m is key material of spec and returns what a
// key token of spec holds and the public key.
func (n *Node) canonical(spec uint8, m []byte) (material, public []byte, err error) {
	if _, size := hmacHash(spec); size > 0 {
		if len(m) < size || len(m) > hmacMaxKey(spec) {
			return nil, nil, fmt.Errorf("%w: %s key material is %d to %d bytes", ErrMaterial, hsmcmd.SpecNames[spec], size, hmacMaxKey(spec))
		}
		return append([]byte(nil), m...), nil, nil
	}
	if spec == hsmcmd.SpecSECP256K1 {
		return n.canonicalSecp256k1(m)
	}
	key, err := x509.ParsePKCS8PrivateKey(m)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: not a PKCS#8 private key", ErrMaterial)
	}
	var pub any
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() != rsaBits(spec) || k.Validate() != nil {
			return nil, nil, fmt.Errorf("%w: not a valid %s key", ErrMaterial, hsmcmd.SpecNames[spec])
		}
		pub = &k.PublicKey
	case *ecdsa.PrivateKey:
		if k.Curve != curveOf(spec) {
			return nil, nil, fmt.Errorf("%w: not a %s key", ErrMaterial, hsmcmd.SpecNames[spec])
		}
		pub = &k.PublicKey
	default:
		return nil, nil, fmt.Errorf("%w: not a %s key", ErrMaterial, hsmcmd.SpecNames[spec])
	}
	if public, err = x509.MarshalPKIXPublicKey(pub); err != nil {
		return nil, nil, err
	}
	material, err = x509.MarshalPKCS8PrivateKey(key)
	return material, public, err
}

// canonicalSecp256k1 checks a secp256k1 PKCS#8 key (RFC 5915's
// ECPrivateKey with its public key, as openssl writes it): the scalar is
// in [1, n−1], and the public point is the scalar's, which the token
// proves by signing with the scalar a digest that the point verifies (Go
// has no secp256k1 arithmetic).
func (n *Node) canonicalSecp256k1(m []byte) (material, public []byte, err error) {
	d, point, err := hsmcmd.ParseSecp256k1PKCS8(m)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: not a secp256k1 PKCS#8 private key", ErrMaterial)
	}
	if v := new(big.Int).SetBytes(d); v.Sign() == 0 || v.Cmp(secp256k1N) >= 0 {
		return nil, nil, fmt.Errorf("%w: the secp256k1 scalar is out of range", ErrMaterial)
	}
	if public, err = hsmcmd.MarshalSecp256k1PublicKey(point); err != nil {
		return nil, nil, fmt.Errorf("%w: the secp256k1 key has no valid public key", ErrMaterial)
	}
	digest := sha256.Sum256([]byte("trent import secp256k1 pairing check v1"))
	sig, err := n.signSecp256k1(d, hsmcmd.AlgECDSASHA256, true, digest[:])
	if err != nil {
		return nil, nil, err
	}
	ok, err := n.VerifySecp256k1(public, true, digest[:], sig)
	if err != nil || !ok {
		return nil, nil, fmt.Errorf("%w: the secp256k1 public key is not the private key's", ErrMaterial)
	}
	return append([]byte(nil), d...), public, nil
}

// importRefusal is the Alert of an import command's error: what the
// request caused is refused (Alert 23: it does not unwrap) or invalid
// material (Alert 25); a token under a domain key this HSM does not hold
// is Alert 24 (the host resyncs and retries, and never reports it as the
// request's fault); anything else is the HSM's own failure (its RNG, its
// ring: Alert 21).
func importRefusal(err error) error {
	switch {
	case errors.Is(err, ErrKeyNotHeld):
		return fmt.Errorf("%w: %w", session.ErrTokenKeyNotHeld, err)
	case errors.Is(err, ErrMaterial):
		return fmt.Errorf("%w: %w", session.ErrKeyMaterial, err)
	case errors.Is(err, ErrUnwrap) || errors.Is(err, ErrKeyUse) || errors.Is(err, ErrHBK):
		return refused(err)
	}
	return err
}

func (n *Node) importCommand(m handlers) {
	m[hsmcmd.ImportKeyMaterial] = func(r *session.Request) ([]byte, error) {
		req, err := hsmcmd.ParseImportKeyMaterialRequest(r.Command)
		if err != nil {
			return nil, refused(err)
		}
		tok, check, err := n.ImportKeyMaterial(req.WrappingToken, req.Alg, req.Material, req.KeyID, req.HBKID)
		if err != nil {
			return nil, importRefusal(err)
		}
		return hsmcmd.ImportKeyMaterialResponse{Token: tok, Check: check}.Marshal()
	}
	m[hsmcmd.ImportKeyToken] = func(r *session.Request) ([]byte, error) {
		req, err := hsmcmd.ParseImportKeyTokenRequest(r.Command)
		if err != nil {
			return nil, refused(err)
		}
		tok, pub, check, err := n.ImportKeyToken(req.WrappingToken, req.Alg, req.Spec, req.Material, req.KeyID)
		if err != nil {
			return nil, importRefusal(err)
		}
		return hsmcmd.ImportKeyTokenResponse{Token: tok, PublicKey: pub, Check: check}.Marshal()
	}
}

// oaepHash is the hash of RSAES-OAEP algorithm alg (AlgOAEPSHA1 or
// AlgOAEPSHA256, which the callers check).
func oaepHash(alg uint8) hash.Hash {
	if alg == hsmcmd.AlgOAEPSHA1 {
		return sha1.New()
	}
	return sha256.New()
}
