package hsm

import (
	"fmt"

	"github.com/miekg/pkcs11"
)

// Persistent secret keys: the keys of a customer's PKCS#11 custom key store
// (package p11store). Unlike the HSM node's volatile keys they are token
// objects (CKA_TOKEN true), found again by label after a restart, and
// still sensitive and never extractable.

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

func tokenKeyTemplate(label string) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	}
}

// GenerateTokenKey makes a persistent AES-256 key labelled label (CKA_LABEL
// and CKA_ID): private, sensitive, not extractable, for encryption and
// decryption only. It fails with ErrKeyExists if the token already has an
// AES key with that label.
func (t *Token) GenerateTokenKey(label string) (*SecretKey, error) {
	const op = "generate token key"
	if label == "" || len(label) > 255 {
		return nil, fail(op, ErrInvalidInput, "label must be 1 to 255 bytes")
	}
	if _, err := t.FindTokenKey(label); err == nil {
		return nil, fail(op, ErrKeyExists, fmt.Sprintf("%q", label))
	} else if !isKeyNotFound(err) {
		return nil, err
	}
	tmpl := append(tokenKeyTemplate(label),
		pkcs11.NewAttribute(pkcs11.CKA_ID, []byte(label)),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, symKeyLen),
	)
	var h pkcs11.ObjectHandle
	err := t.do(op, func(s pkcs11.SessionHandle) error {
		var err error
		h, err = t.ctx.GenerateKey(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, tmpl)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &SecretKey{t: t, h: h, typ: AES256}, nil
}

// FindTokenKey finds the persistent AES key labelled label: ErrKeyNotFound
// if there is none, ErrKeyExists if there are several.
func (t *Token) FindTokenKey(label string) (*SecretKey, error) {
	const op = "find token key"
	var h pkcs11.ObjectHandle
	err := t.do(op, func(s pkcs11.SessionHandle) error {
		var err error
		h, err = t.findOne(s, tokenKeyTemplate(label))
		return err
	})
	if err != nil {
		return nil, err
	}
	return &SecretKey{t: t, h: h, typ: AES256}, nil
}

// TokenKeyInfo is what the token says of a persistent key.
type TokenKeyInfo struct {
	Token, Private, Sensitive, Extractable, AlwaysSensitive, NeverExtractable bool
	ValueLen                                                                  int
}

// Info reads the key's attributes (never its value).
func (k *SecretKey) Info() (TokenKeyInfo, error) {
	const op = "key info"
	var info TokenKeyInfo
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
		info = TokenKeyInfo{Token: b(0), Private: b(1), Sensitive: b(2), Extractable: b(3), AlwaysSensitive: b(4), NeverExtractable: b(5)}
		for i := len(attrs[6].Value) - 1; i >= 0; i-- { // CK_ULONG, host byte order (little-endian here)
			info.ValueLen = info.ValueLen<<8 | int(attrs[6].Value[i])
		}
		return nil
	})
	return info, err
}
