package hsm

import (
	"encoding/asn1"

	"github.com/miekg/pkcs11"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Customer EC keys on curves Go's standard library does not have
// (secp256k1): the token makes the key pair and does the ECDSA arithmetic;
// the private scalar leaves it only to be sealed into a key token by the
// HSM node, and comes back as a transient session object for each
// signature. A module that does not know secp256k1 (it answers
// CKR_DOMAIN_PARAMS_INVALID or CKR_CURVE_NOT_SUPPORTED, as NSS's softoken
// does) is marked so on the first such answer, and from then on the three
// operations run in the HSM process (secp256k1.go) with the token's RNG.

// Secp256k1Params is CKA_EC_PARAMS for secp256k1 (OID 1.3.132.0.10).
var Secp256k1Params = []byte{0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a}

// GenerateECRaw makes a key pair on the named curve params in the token
// and returns the private scalar d (the caller clears it) and the
// uncompressed public point; the objects are destroyed before it returns.
func (t *Token) GenerateECRaw(params []byte) (d, point []byte, err error) {
	if t.softK1(params, nil) {
		return k1Generate(t.Reader())
	}
	defer func() {
		if t.softK1(params, err) {
			d, point, err = k1Generate(t.Reader())
		}
	}()
	pubT := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
	}
	privT := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, false),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
	}
	mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_EC_KEY_PAIR_GEN, nil)}
	err = t.do("generate EC key", func(s pkcs11.SessionHandle) error {
		pubH, privH, err := t.ctx.GenerateKeyPair(s, mech, pubT, privT)
		if err != nil {
			return err
		}
		defer t.ctx.DestroyObject(s, pubH)
		defer t.ctx.DestroyObject(s, privH)
		pa, err := t.ctx.GetAttributeValue(s, pubH, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, nil)})
		if err != nil {
			return err
		}
		va, err := t.ctx.GetAttributeValue(s, privH, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
		if err != nil {
			return err
		}
		if point, err = unwrapPoint(pa[0].Value); err != nil {
			return err
		}
		d, err = fixedScalar(va[0].Value, (len(point)-1)/2)
		clear(va[0].Value)
		return err
	})
	return d, point, err
}

// fixedScalar gives the private scalar v at the curve's size. A module
// may give CKA_VALUE as the integer's shortest big-endian form (SoftHSM
// does: one key in 256 has a leading zero byte and comes back a byte
// short); the key token keeps the fixed size, as SEC 1 writes a scalar.
func fixedScalar(v []byte, size int) ([]byte, error) {
	if len(v) == 0 || len(v) > size {
		return nil, fail("EC key", ErrPKCS11, "CKA_VALUE is not a scalar of the curve's size")
	}
	d := make([]byte, size)
	copy(d[size-len(v):], v)
	return d, nil
}

// unwrapPoint takes a CKA_EC_POINT (a DER OCTET STRING, or the bare point
// as some modules give it) to the uncompressed point.
func unwrapPoint(v []byte) ([]byte, error) {
	// The DER OCTET STRING tag is 0x04, like the uncompressed point's
	// prefix: try the DER form first.
	s := cryptobyte.String(v)
	var p cryptobyte.String
	if s.ReadASN1(&p, cbasn1.OCTET_STRING) && s.Empty() && len(p) > 0 && p[0] == 0x04 {
		return append([]byte(nil), p...), nil
	}
	if len(v) > 0 && v[0] == 0x04 && len(v)%2 == 1 {
		return append([]byte(nil), v...), nil
	}
	return nil, fail("EC point", ErrInvalidPublicKey, "CKA_EC_POINT is not an uncompressed point")
}

// SignECDSARaw signs digest with the private scalar d on the curve params,
// inside the token (CKM_ECDSA on a transient session object; secp256k1 on a
// module without it: in the process, above), and returns r ‖ s.
func (t *Token) SignECDSARaw(params, d, digest []byte) (sig []byte, err error) {
	if t.softK1(params, nil) {
		return t.softSign(d, digest)
	}
	defer func() {
		if t.softK1(params, err) {
			sig, err = t.softSign(d, digest)
		}
	}()
	tmpl := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, d),
	}
	err = t.do("sign ECDSA", func(s pkcs11.SessionHandle) error {
		h, err := t.ctx.CreateObject(s, tmpl)
		if err != nil {
			return err
		}
		defer t.ctx.DestroyObject(s, h)
		if err := t.ctx.SignInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil)}, h); err != nil {
			return err
		}
		sig, err = t.ctx.Sign(s, digest)
		return err
	})
	return sig, err
}

// VerifyECDSARaw reports whether r ‖ s is a signature of digest by the
// uncompressed point on the curve params, checked by the token (secp256k1
// on a module without it: in the process, above).
func (t *Token) VerifyECDSARaw(params, point, digest, rs []byte) (valid bool, err error) {
	if t.softK1(params, nil) {
		return t.softVerify(point, digest, rs)
	}
	defer func() {
		if t.softK1(params, err) {
			valid, err = t.softVerify(point, digest, rs)
		}
	}()
	ecPoint, err := asn1.Marshal(point)
	if err != nil {
		return false, err
	}
	tmpl := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
		pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params),
		pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, ecPoint),
	}
	err = t.do("verify ECDSA", func(s pkcs11.SessionHandle) error {
		h, err := t.ctx.CreateObject(s, tmpl)
		if err != nil {
			return err
		}
		defer t.ctx.DestroyObject(s, h)
		if err := t.ctx.VerifyInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil)}, h); err != nil {
			return err
		}
		switch err := t.ctx.Verify(s, digest, rs); {
		case err == nil:
			valid = true
		case isCode(err, pkcs11.CKR_SIGNATURE_INVALID), isCode(err, pkcs11.CKR_SIGNATURE_LEN_RANGE):
		default:
			return err
		}
		return nil
	})
	return valid, err
}

func isCode(err error, code uint) bool {
	e, ok := err.(pkcs11.Error)
	return ok && uint(e) == code
}

// softK1 reports whether a secp256k1 operation runs in the HSM process:
// the module is known not to have the curve, or err (its answer to this
// operation) says so now, which marks it.
func (t *Token) softK1(params []byte, err error) bool {
	if string(params) != string(Secp256k1Params) {
		return false
	}
	if err == nil {
		return t.mod.noK1.Load()
	}
	if isCode(unwrapCode(err), pkcs11.CKR_DOMAIN_PARAMS_INVALID) || isCode(unwrapCode(err), pkcs11.CKR_CURVE_NOT_SUPPORTED) {
		t.mod.noK1.Store(true)
		return true
	}
	return false
}

// unwrapCode returns the module's code inside an *Error, or err itself.
func unwrapCode(err error) error {
	if e, ok := err.(*Error); ok && e.Code != 0 {
		return e.Code
	}
	return err
}

func (t *Token) softSign(d, digest []byte) ([]byte, error) {
	sig, err := k1Sign(t.Reader(), d, digest)
	if err == ErrInvalidInput {
		return nil, fail("sign ECDSA", ErrInvalidInput, "secp256k1 scalar out of range")
	}
	return sig, err
}

func (t *Token) softVerify(point, digest, rs []byte) (bool, error) {
	ok, err := k1Verify(point, digest, rs)
	if err != nil {
		return false, fail("verify ECDSA", ErrInvalidPublicKey, "not a secp256k1 point")
	}
	return ok, nil
}
