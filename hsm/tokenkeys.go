package hsm

import (
	"github.com/miekg/pkcs11"
)

// What package p11store (a customer's PKCS#11 custom key store) needs
// besides the persistent keys of persistent.go: a token check without a
// login, and a key's protection attributes.

// CheckToken reports whether the module holds an initialised token
// labelled label, without logging in: nil, or an *Error wrapping
// ErrModuleNotFound, ErrModuleConflict, ErrTokenNotFound or
// ErrTokenAmbiguous.
func CheckToken(mod ModuleConfig, label string) error {
	m, err := acquireModule(mod)
	if err != nil {
		return err
	}
	defer m.release()
	_, err = findSlot(m.ctx, label)
	return err
}

// KeyAttributes are a key's protection attributes, as the token reports
// them.
type KeyAttributes struct {
	Token, Private, Sensitive, Extractable, AlwaysSensitive, NeverExtractable bool
	ValueLen                                                                  int
}

// Attributes reads the key's protection attributes (never its value).
func (k *SecretKey) Attributes() (KeyAttributes, error) {
	const op = "key attributes"
	var info KeyAttributes
	err := k.t.do(op, func(s pkcs11.SessionHandle) error {
		attrs, err := k.t.ctx.GetAttributeValue(s, k.h, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, nil), pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, nil),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, nil), pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, nil),
			pkcs11.NewAttribute(pkcs11.CKA_ALWAYS_SENSITIVE, nil), pkcs11.NewAttribute(pkcs11.CKA_NEVER_EXTRACTABLE, nil),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, nil),
		})
		if err != nil {
			return err
		}
		b := func(i int) bool { return len(attrs[i].Value) == 1 && attrs[i].Value[0] != 0 }
		info = KeyAttributes{Token: b(0), Private: b(1), Sensitive: b(2), Extractable: b(3), AlwaysSensitive: b(4), NeverExtractable: b(5)}
		if n, err := bytesToULong(attrs[6].Value); err == nil {
			info.ValueLen = int(n)
		}
		return nil
	})
	return info, err
}
