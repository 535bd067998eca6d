package hsm

import (
	"crypto/hmac"
	"io"
	"sync/atomic"

	"github.com/miekg/pkcs11"
)

// KeyType is the kind of a volatile symmetric key.
type KeyType int

const (
	// AES256 keys seal and open with AES-256-GCM.
	AES256 KeyType = iota + 1
	// HMACSHA256 keys (CKK_GENERIC_SECRET, 32 bytes) compute HMAC-SHA256.
	HMACSHA256
)

func (k KeyType) String() string {
	switch k {
	case AES256:
		return "AES-256"
	case HMACSHA256:
		return "HMAC-SHA256"
	}
	return "unknown"
}

const (
	symKeyLen = 32
	// GCMNonceSize is the AES-GCM nonce length this package accepts.
	GCMNonceSize = 12
	// GCMTagSize is the AES-GCM tag length appended to every ciphertext.
	GCMTagSize = 16
	// HMACSize is the HMAC-SHA256 output length.
	HMACSize = 32
)

// SecretKey is a volatile symmetric key: a session object in the token
// (CKA_TOKEN false, CKA_SENSITIVE true, CKA_EXTRACTABLE false; CKA_PRIVATE
// true but for HMAC keys, see secretTemplate). It is gone
// after Destroy, after the Token closes, and after the process exits; its
// value never leaves the token.
type SecretKey struct {
	t          *Token
	h          pkcs11.ObjectHandle
	typ        KeyType
	exportable bool
	destroyed  atomic.Bool
}

// Type is the key's type.
func (k *SecretKey) Type() KeyType { return k.typ }

// secretTemplate is the template of a volatile key. An HMAC key is not
// CKA_PRIVATE: a session object is visible only to the application that
// made it, which is logged in for its whole life, so the attribute guards
// nothing here; but SoftHSM keeps a private object's value encrypted under
// its token key and decrypts it (AES-256-CBC) at every C_SignInit, which
// cost 36 % of each HMAC, the one token call of every Encrypt and Decrypt
// (hsm's BenchmarkHMACKeyAttributes, docs/benchmarks.md). The key stays
// sensitive and not extractable; the HMAC is the same.
func secretTemplate(typ KeyType, exportable bool) ([]*pkcs11.Attribute, error) {
	t := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, typ != HMACSHA256),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, !exportable),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, exportable),
	}
	switch typ {
	case AES256:
		return append(t,
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
			pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
			pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
		), nil
	case HMACSHA256:
		return append(t,
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
			pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
		), nil
	}
	return nil, ErrInvalidInput
}

// GenerateSecretKey makes a volatile key of type typ from the token's RNG.
func (t *Token) GenerateSecretKey(typ KeyType) (*SecretKey, error) {
	const op = "generate key"
	tmpl, err := secretTemplate(typ, false)
	if err != nil {
		return nil, fail(op, ErrInvalidInput, "unknown key type")
	}
	tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, symKeyLen))
	mech := pkcs11.CKM_AES_KEY_GEN
	if typ == HMACSHA256 {
		mech = pkcs11.CKM_GENERIC_SECRET_KEY_GEN
	}
	var h pkcs11.ObjectHandle
	err = t.withOwner(op, func(s pkcs11.SessionHandle) error {
		var err error
		h, err = t.ctx.GenerateKey(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(uint(mech), nil)}, tmpl)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &SecretKey{t: t, h: h, typ: typ}, nil
}

// ImportSecretKey makes a volatile key of type typ holding the 32 bytes of
// raw. The token gets a copy; the caller clears raw when it no longer needs
// it. The key is sensitive and not extractable.
func (t *Token) ImportSecretKey(typ KeyType, raw []byte) (*SecretKey, error) {
	return t.importSecretKey(typ, raw, false)
}

// ImportExportableKey is ImportSecretKey for a key whose value must leave
// the token again under another key: a domain key, which an HSM exports in
// domain tokens. SoftHSM cannot wrap with AES-GCM, so the value is read
// back (ExportValue) and sealed in HSM-process memory; such a key is
// therefore not sensitive and is extractable (docs/hsm-boundary.md).
func (t *Token) ImportExportableKey(typ KeyType, raw []byte) (*SecretKey, error) {
	return t.importSecretKey(typ, raw, true)
}

func (t *Token) importSecretKey(typ KeyType, raw []byte, exportable bool) (*SecretKey, error) {
	const op = "import key"
	tmpl, err := secretTemplate(typ, exportable)
	if err != nil {
		return nil, fail(op, ErrInvalidInput, "unknown key type")
	}
	if len(raw) != symKeyLen {
		return nil, fail(op, ErrInvalidInput, "key must be 32 bytes")
	}
	tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_VALUE, raw))
	var h pkcs11.ObjectHandle
	err = t.withOwner(op, func(s pkcs11.SessionHandle) error {
		var err error
		h, err = t.ctx.CreateObject(s, tmpl)
		return err
	})
	// The template refers to raw itself (miekg/pkcs11 does not copy it):
	// clearing raw is the caller's business.
	if err != nil {
		return nil, err
	}
	return &SecretKey{t: t, h: h, typ: typ, exportable: exportable}, nil
}

// ExportValue returns the value of a key made with ImportExportableKey; the
// caller seals it at once and clears it. Other keys fail with
// ErrInvalidInput.
func (k *SecretKey) ExportValue() ([]byte, error) {
	const op = "export key"
	if !k.exportable {
		return nil, fail(op, ErrInvalidInput, "key is not exportable")
	}
	if k.destroyed.Load() {
		return nil, fail(op, ErrInvalidHandle, "")
	}
	var v []byte
	err := k.t.do(op, func(s pkcs11.SessionHandle) error {
		attrs, err := k.t.ctx.GetAttributeValue(s, k.h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
		if err != nil {
			return err
		}
		v = attrs[0].Value
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(v) != symKeyLen {
		clear(v)
		return nil, fail(op, ErrPKCS11, "key of the wrong length")
	}
	return v, nil
}

// Destroy removes the key from the token. It is idempotent; later uses fail
// with ErrInvalidHandle.
func (k *SecretKey) Destroy() error {
	if k.destroyed.Swap(true) {
		return nil
	}
	return k.t.withOwner("destroy key", func(s pkcs11.SessionHandle) error {
		return k.t.ctx.DestroyObject(s, k.h)
	})
}

func (k *SecretKey) check(op string, want KeyType, n int) error {
	if k.typ != want {
		return fail(op, ErrInvalidInput, "key is "+k.typ.String()+", not "+want.String())
	}
	if n > MaxMessageSize {
		return fail(op, ErrInputTooLarge, "")
	}
	if k.destroyed.Load() {
		return fail(op, ErrInvalidHandle, "")
	}
	return nil
}

// Seal encrypts plaintext with AES-256-GCM (CKM_AES_GCM) under the key with
// the 12-byte nonce and additional data aad, returning ciphertext ‖ 16-byte
// tag. The caller guarantees the nonce is never reused under the key.
func (k *SecretKey) Seal(nonce, plaintext, aad []byte) ([]byte, error) {
	const op = "gcm seal"
	if err := k.check(op, AES256, max(len(plaintext), len(aad))); err != nil {
		return nil, err
	}
	if len(nonce) != GCMNonceSize {
		return nil, fail(op, ErrInvalidInput, "nonce must be 12 bytes")
	}
	var out []byte
	err := k.t.do(op, func(s pkcs11.SessionHandle) error {
		p := pkcs11.NewGCMParams(nonce, aad, GCMTagSize*8)
		defer p.Free()
		if err := k.t.ctx.EncryptInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, p)}, k.h); err != nil {
			return err
		}
		// One C_Encrypt into a buffer of the known size (direct.go).
		var err error
		out, err = k.t.mod.encryptInto(s, plaintext, len(plaintext)+GCMTagSize)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Open decrypts and authenticates ciphertext ‖ tag from Seal. Any change to
// the nonce, ciphertext, tag or aad fails with ErrAuthentication and nothing
// else: no partial plaintext, no detail.
func (k *SecretKey) Open(nonce, ciphertext, aad []byte) ([]byte, error) {
	const op = "gcm open"
	if err := k.check(op, AES256, max(len(ciphertext), len(aad))); err != nil {
		return nil, err
	}
	if len(nonce) != GCMNonceSize {
		return nil, fail(op, ErrInvalidInput, "nonce must be 12 bytes")
	}
	if len(ciphertext) < GCMTagSize {
		return nil, fail(op, ErrAuthentication, "")
	}
	var out []byte
	err := k.t.do(op, func(s pkcs11.SessionHandle) error {
		p := pkcs11.NewGCMParams(nonce, aad, GCMTagSize*8)
		defer p.Free()
		if err := k.t.ctx.DecryptInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, p)}, k.h); err != nil {
			return err
		}
		var err error
		out, err = k.t.ctx.Decrypt(s, ciphertext)
		// SoftHSM 2.6 reports a failed tag check as CKR_GENERAL_ERROR,
		// NSS 3.87 as CKR_ENCRYPTED_DATA_INVALID; the inputs were checked
		// above, so here either can only mean that.
		if c, ok := err.(pkcs11.Error); ok && (c == pkcs11.CKR_GENERAL_ERROR || c == pkcs11.CKR_ENCRYPTED_DATA_INVALID) {
			return &Error{Op: op, Err: ErrAuthentication, Code: c}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// MAC computes HMAC-SHA256 (CKM_SHA256_HMAC) of data under the key.
func (k *SecretKey) MAC(data []byte) ([]byte, error) {
	const op = "hmac"
	if err := k.check(op, HMACSHA256, len(data)); err != nil {
		return nil, err
	}
	var out []byte
	err := k.t.do(op, func(s pkcs11.SessionHandle) error {
		if err := k.t.ctx.SignInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_SHA256_HMAC, nil)}, k.h); err != nil {
			return err
		}
		var err error
		out, err = k.t.ctx.Sign(s, data)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// VerifyMAC recomputes the HMAC of data and compares it with mac in constant
// time; a mismatch fails with ErrAuthentication.
func (k *SecretKey) VerifyMAC(data, mac []byte) error {
	want, err := k.MAC(data)
	if err != nil {
		return err
	}
	if !hmac.Equal(want, mac) {
		return fail("hmac verify", ErrAuthentication, "")
	}
	return nil
}

// Random returns n bytes from the token's RNG (C_GenerateRandom), the HSM's
// only source of randomness. n is 1 to MaxRandomSize.
func (t *Token) Random(n int) ([]byte, error) {
	const op = "random"
	if n < 1 || n > MaxRandomSize {
		return nil, fail(op, ErrInvalidInput, "length out of range")
	}
	var out []byte
	err := t.do(op, func(s pkcs11.SessionHandle) error {
		var err error
		out, err = t.ctx.GenerateRandom(s, n)
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(out) != n {
		return nil, fail(op, ErrPKCS11, "short read from the token RNG")
	}
	return out, nil
}

// Reader returns an io.Reader over the token's RNG, for code that takes one
// (each Read is one or more C_GenerateRandom calls).
func (t *Token) Reader() io.Reader { return tokenReader{t} }

type tokenReader struct{ t *Token }

func (r tokenReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		chunk := min(len(p)-n, MaxRandomSize)
		b, err := r.t.Random(chunk)
		if err != nil {
			return n, err
		}
		copy(p[n:], b)
		clear(b)
		n += chunk
	}
	return n, nil
}
