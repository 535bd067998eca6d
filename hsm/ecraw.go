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
// signature.

// Secp256k1Params is CKA_EC_PARAMS for secp256k1 (OID 1.3.132.0.10).
var Secp256k1Params = []byte{0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a}

// GenerateECRaw makes a key pair on the named curve params in the token
// and returns the private scalar d (the caller clears it) and the
// uncompressed public point; the objects are destroyed before it returns.
func (t *Token) GenerateECRaw(params []byte) (d, point []byte, err error) {
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
		d = va[0].Value
		return nil
	})
	return d, point, err
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
// inside the token (CKM_ECDSA on a transient session object), and returns
// r ‖ s.
func (t *Token) SignECDSARaw(params, d, digest []byte) ([]byte, error) {
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
	var sig []byte
	err := t.do("sign ECDSA", func(s pkcs11.SessionHandle) error {
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
// uncompressed point on the curve params, checked by the token.
func (t *Token) VerifyECDSARaw(params, point, digest, rs []byte) (bool, error) {
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
	valid := false
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
