package hsm

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"io"
	"math/big"
	"sync/atomic"

	"github.com/miekg/pkcs11"
	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"

	"github.com/trentkms/trent/internal/wire"
)

// Labels of the identity key objects in the token.
const (
	SigningKeyLabel   = "trent-hsm-signing"
	AgreementKeyLabel = "trent-hsm-agreement"
)

// p384Params is CKA_EC_PARAMS for P-384: the DER encoding of the named curve
// OID secp384r1 (1.3.132.0.34).
var p384Params = []byte{0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22}

const (
	p384PointLen  = 97 // 0x04 ‖ X ‖ Y, 48 bytes each
	p384ScalarLen = 48
	sha384Len     = 48
)

// Identity is an HSM node's long-lived key pairs, held in its token.
type Identity struct {
	Signing   *SigningKey
	Agreement *AgreementKey
}

// ID is the HSM's identifier: "hsm-" followed by the first 16 hex digits of
// SHA-256 over the DER SubjectPublicKeyInfo of its signing key (wire.HSMID,
// the one definition, which packages without cgo use too).
func (id *Identity) ID() string { return wire.HSMID(id.Signing.PublicKey()) }

// SigningKey is an ECDSA P-384 private key held in the token. It implements
// crypto.Signer for SHA-384 digests.
type SigningKey struct {
	t    *Token
	priv pkcs11.ObjectHandle
	pub  *ecdsa.PublicKey
}

// PublicKey returns the public half.
func (k *SigningKey) PublicKey() *ecdsa.PublicKey { return k.pub }

// Public implements crypto.Signer.
func (k *SigningKey) Public() crypto.PublicKey { return k.pub }

// Sign signs a SHA-384 digest with CKM_ECDSA inside the token and returns an
// ASN.1 DER signature that crypto/ecdsa verifies. rand is ignored: the token
// draws the nonce. opts must name crypto.SHA384.
func (k *SigningKey) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	const op = "sign"
	if opts == nil || opts.HashFunc() != crypto.SHA384 {
		return nil, fail(op, ErrInvalidInput, "digest must be SHA-384")
	}
	if len(digest) != sha384Len {
		return nil, fail(op, ErrInvalidInput, "digest must be 48 bytes")
	}
	var raw []byte
	err := k.t.do(op, func(s pkcs11.SessionHandle) error {
		if err := k.t.ctx.SignInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil)}, k.priv); err != nil {
			return err
		}
		var err error
		raw, err = k.t.ctx.Sign(s, digest)
		return err
	})
	if err != nil {
		return nil, err
	}
	der, err := rawToDER(raw)
	if err != nil {
		return nil, fail(op, ErrPKCS11, "module returned a malformed signature")
	}
	return der, nil
}

// rawToDER converts the PKCS#11 r ‖ s form to an ASN.1 ECDSA-Sig-Value.
func rawToDER(raw []byte) ([]byte, error) {
	if len(raw) != 2*p384ScalarLen {
		return nil, ErrInvalidInput
	}
	r := new(big.Int).SetBytes(raw[:p384ScalarLen])
	s := new(big.Int).SetBytes(raw[p384ScalarLen:])
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1BigInt(r)
		b.AddASN1BigInt(s)
	})
	return b.Bytes()
}

// AgreementKey is an ECDH P-384 private key held in the token: the HSM's
// long-lived agreement key, or an ephemeral one (a session object) made with
// GenerateEphemeralAgreementKey.
type AgreementKey struct {
	t         *Token
	priv      pkcs11.ObjectHandle
	pub       *ecdh.PublicKey
	ephemeral bool
	destroyed atomic.Bool
}

// PublicKey returns the public half.
func (k *AgreementKey) PublicKey() *ecdh.PublicKey { return k.pub }

// ECDH computes the shared secret Z (the 48-byte x-coordinate) with the
// peer's public key, given as an uncompressed SEC1 point, using
// CKM_ECDH1_DERIVE with the null KDF. The point is checked to lie on P-384
// before it reaches the token; anything else fails with ErrInvalidPublicKey.
// The caller must clear Z after running its KDF.
func (k *AgreementKey) ECDH(peer []byte) ([]byte, error) {
	const op = "ecdh"
	if _, err := ParseP384Point(peer); err != nil {
		return nil, err
	}
	if k.destroyed.Load() {
		return nil, fail(op, ErrInvalidHandle, "")
	}
	params := pkcs11.NewECDH1DeriveParams(pkcs11.CKD_NULL, nil, peer)
	template := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, false),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, p384ScalarLen),
	}
	var z []byte
	err := k.t.do(op, func(s pkcs11.SessionHandle) error {
		h, err := k.t.ctx.DeriveKey(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_ECDH1_DERIVE, params)}, k.priv, template)
		if err != nil {
			return err
		}
		// The derived object lives in this pool session only until it is
		// destroyed here (or the session closes).
		defer k.t.ctx.DestroyObject(s, h)
		attrs, err := k.t.ctx.GetAttributeValue(s, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
		if err != nil {
			return err
		}
		z = attrs[0].Value
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(z) != p384ScalarLen {
		clear(z)
		return nil, fail(op, ErrPKCS11, "module returned a shared secret of the wrong length")
	}
	return z, nil
}

// Destroy removes an ephemeral agreement key from the token. It is
// idempotent; the long-lived identity key cannot be destroyed this way.
func (k *AgreementKey) Destroy() error {
	const op = "destroy key"
	if !k.ephemeral {
		return fail(op, ErrInvalidInput, "identity keys are not destroyed through the backend")
	}
	if k.destroyed.Swap(true) {
		return nil
	}
	return k.t.withOwner(op, func(s pkcs11.SessionHandle) error {
		return k.t.ctx.DestroyObject(s, k.priv)
	})
}

// ParseP384Point parses an uncompressed SEC1 P-384 point (0x04 ‖ X ‖ Y),
// rejecting other lengths (other curves), compressed points, the identity
// and points not on the curve, with ErrInvalidPublicKey.
func ParseP384Point(b []byte) (*ecdh.PublicKey, error) {
	if len(b) != p384PointLen || b[0] != 0x04 {
		return nil, fail("parse point", ErrInvalidPublicKey, "not an uncompressed P-384 point")
	}
	pub, err := ecdh.P384().NewPublicKey(b)
	if err != nil {
		return nil, fail("parse point", ErrInvalidPublicKey, "point not on P-384")
	}
	return pub, nil
}

// parseECPoint reads CKA_EC_POINT, which PKCS#11 defines as a DER OCTET
// STRING around the point; some modules return the bare point.
func parseECPoint(v []byte) (*ecdh.PublicKey, error) {
	if len(v) == p384PointLen && v[0] == 0x04 {
		return ParseP384Point(v)
	}
	s := cryptobyte.String(v)
	var point cryptobyte.String
	if !s.ReadASN1(&point, asn1.OCTET_STRING) || !s.Empty() {
		return nil, fail("parse point", ErrInvalidPublicKey, "CKA_EC_POINT is not a DER OCTET STRING")
	}
	return ParseP384Point(point)
}

func ecdsaFromECDH(pub *ecdh.PublicKey) *ecdsa.PublicKey {
	k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P384(), pub.Bytes())
	if err != nil {
		panic("hsm: a validated P-384 point failed to parse: " + err.Error())
	}
	return k
}

func ecTemplates(label string, sign, token bool) (pub, priv []*pkcs11.Attribute) {
	pub = []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, token),
		pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, p384Params),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, sign),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, !sign),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	}
	priv = []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, token),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, sign),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, !sign),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	}
	return pub, priv
}

// generateEC makes a P-384 key pair. Token objects go through a pool
// session; session objects through the owner session so that they outlive
// the call.
func (t *Token) generateEC(op, label string, sign, token bool) (pkcs11.ObjectHandle, *ecdh.PublicKey, error) {
	pubT, privT := ecTemplates(label, sign, token)
	mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_EC_KEY_PAIR_GEN, nil)}
	var priv pkcs11.ObjectHandle
	var pub *ecdh.PublicKey
	f := func(s pkcs11.SessionHandle) error {
		pubH, privH, err := t.ctx.GenerateKeyPair(s, mech, pubT, privT)
		if err != nil {
			return err
		}
		p, err := t.readPublic(s, pubH)
		if err != nil {
			return err
		}
		if !token {
			// The private key alone is kept; the public half is in Go.
			_ = t.ctx.DestroyObject(s, pubH)
		}
		priv, pub = privH, p
		return nil
	}
	var err error
	if token {
		err = t.do(op, f)
	} else {
		err = t.withOwner(op, f)
	}
	return priv, pub, err
}

func (t *Token) readPublic(s pkcs11.SessionHandle, h pkcs11.ObjectHandle) (*ecdh.PublicKey, error) {
	attrs, err := t.ctx.GetAttributeValue(s, h, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, nil),
		pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, nil),
	})
	if err != nil {
		return nil, err
	}
	if string(attrs[0].Value) != string(p384Params) {
		return nil, fail("read public key", ErrInvalidPublicKey, "key is not on P-384")
	}
	return parseECPoint(attrs[1].Value)
}

// findOne returns the one object matching template, ErrKeyNotFound if none
// and ErrKeyExists if several do.
func (t *Token) findOne(s pkcs11.SessionHandle, template []*pkcs11.Attribute) (pkcs11.ObjectHandle, error) {
	return t.findUnique(s, template, "find key", ErrKeyNotFound, ErrKeyExists)
}

// findUnique returns the one object matching template: none fails with
// notFound, several with ambiguous (both under the operation name op).
func (t *Token) findUnique(s pkcs11.SessionHandle, template []*pkcs11.Attribute, op string, notFound, ambiguous error) (pkcs11.ObjectHandle, error) {
	hs, err := t.findAll(s, template, 2)
	if err != nil {
		return 0, err
	}
	switch len(hs) {
	case 0:
		return 0, fail(op, notFound, "")
	case 1:
		return hs[0], nil
	}
	return 0, fail(op, ambiguous, "more than one object with the label")
}

// findKeyPair finds a token key pair by label and returns the private handle
// and the public key.
func (t *Token) findKeyPair(op, label string) (pkcs11.ObjectHandle, *ecdh.PublicKey, error) {
	var priv pkcs11.ObjectHandle
	var pub *ecdh.PublicKey
	err := t.do(op, func(s pkcs11.SessionHandle) error {
		var err error
		priv, err = t.findOne(s, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		})
		if err != nil {
			return err
		}
		pubH, err := t.findOne(s, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		})
		if err != nil {
			return err
		}
		pub, err = t.readPublic(s, pubH)
		return err
	})
	return priv, pub, err
}

// Identity finds the identity key pairs in the token. It fails with
// ErrKeyNotFound if the token has none.
func (t *Token) Identity() (*Identity, error) {
	const op = "load identity"
	sh, sp, err := t.findKeyPair(op, SigningKeyLabel)
	if err != nil {
		return nil, err
	}
	ah, ap, err := t.findKeyPair(op, AgreementKeyLabel)
	if err != nil {
		return nil, err
	}
	return &Identity{
		Signing:   &SigningKey{t: t, priv: sh, pub: ecdsaFromECDH(sp)},
		Agreement: &AgreementKey{t: t, priv: ah, pub: ap},
	}, nil
}

// EnsureIdentity returns the token's identity keys, generating them first
// if the token has none; created reports whether it did. Both private keys
// are token objects with CKA_SENSITIVE true and CKA_EXTRACTABLE false; the
// signing key can only sign and the agreement key can only derive.
func (t *Token) EnsureIdentity() (id *Identity, created bool, err error) {
	id, err = t.Identity()
	if err == nil {
		return id, false, nil
	}
	if !isKeyNotFound(err) {
		return nil, false, err
	}
	// A half-made identity (a crash between the two generations) is
	// completed rather than duplicated.
	const op = "generate identity"
	sh, sp, err := t.findKeyPair(op, SigningKeyLabel)
	if isKeyNotFound(err) {
		sh, sp, err = t.generateEC(op, SigningKeyLabel, true, true)
	}
	if err != nil {
		return nil, false, err
	}
	ah, ap, err := t.findKeyPair(op, AgreementKeyLabel)
	if isKeyNotFound(err) {
		ah, ap, err = t.generateEC(op, AgreementKeyLabel, false, true)
	}
	if err != nil {
		return nil, false, err
	}
	return &Identity{
		Signing:   &SigningKey{t: t, priv: sh, pub: ecdsaFromECDH(sp)},
		Agreement: &AgreementKey{t: t, priv: ah, pub: ap},
	}, true, nil
}

func isKeyNotFound(err error) bool {
	e, ok := err.(*Error)
	return ok && e.Err == ErrKeyNotFound
}

// GenerateEphemeralAgreementKey makes a P-384 agreement key pair whose
// private half is a session object (CKA_TOKEN false, sensitive, not
// extractable): gone when destroyed, when the Token closes or when the
// process exits.
func (t *Token) GenerateEphemeralAgreementKey() (*AgreementKey, error) {
	h, pub, err := t.generateEC("generate ephemeral key", "trent-ephemeral", false, false)
	if err != nil {
		return nil, err
	}
	return &AgreementKey{t: t, priv: h, pub: pub, ephemeral: true}, nil
}
