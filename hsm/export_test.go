package hsm

import "github.com/miekg/pkcs11"

// Test hooks: compiled only with the tests of this package.

// Do runs f through the pool's retry machinery.
func (t *Token) Do(op string, f func() error) error {
	return t.do(op, func(pkcs11.SessionHandle) error { return f() })
}

// CloseIdleSessionsBehindPool closes the module's sessions that sit idle in
// the pool without telling the pool, as a token reset would.
func (t *Token) CloseIdleSessionsBehindPool() int {
	var held []pkcs11.SessionHandle
	for {
		select {
		case s := <-t.idle:
			_ = t.ctx.CloseSession(s)
			held = append(held, s)
			continue
		default:
		}
		break
	}
	for _, s := range held {
		t.idle <- s
	}
	return len(held)
}

// SecretKeyWithHandle forges a SecretKey around a raw handle, as a stale
// reference would be.
func SecretKeyWithHandle(t *Token, h uint, typ KeyType) *SecretKey {
	return &SecretKey{t: t, h: pkcs11.ObjectHandle(h), typ: typ}
}

// Handle exposes a key's object handle.
func (k *SecretKey) Handle() uint { return uint(k.h) }

// PrivateHandle exposes a private key's object handle.
func (k *SigningKey) PrivateHandle() pkcs11.ObjectHandle { return k.priv }

// PrivateHandle exposes a private key's object handle.
func (k *AgreementKey) PrivateHandle() pkcs11.ObjectHandle { return k.priv }

// Raw exposes the module context and slot, for the bare-PKCS#11 baselines
// of the benchmarks and for attribute checks.
func (t *Token) Raw() (*pkcs11.Ctx, uint) { return t.ctx, t.slot }

// CountObjects counts the objects matching template visible to the Token.
func (t *Token) CountObjects(template []*pkcs11.Attribute) (int, error) {
	n := 0
	err := t.do("count", func(s pkcs11.SessionHandle) error {
		if err := t.ctx.FindObjectsInit(s, template); err != nil {
			return err
		}
		defer t.ctx.FindObjectsFinal(s)
		for {
			hs, _, err := t.ctx.FindObjects(s, 64)
			if err != nil {
				return err
			}
			if len(hs) == 0 {
				return nil
			}
			n += len(hs)
		}
	})
	return n, err
}

// InitTokenWithoutUserPIN runs C_InitToken but not C_InitPIN.
func InitTokenWithoutUserPIN(mod ModuleConfig, label, soPIN string) error {
	m, err := acquireModule(mod)
	if err != nil {
		return err
	}
	defer m.release()
	slots, err := m.ctx.GetSlotList(true)
	if err != nil {
		return err
	}
	for _, s := range slots {
		ti, err := m.ctx.GetTokenInfo(s)
		if err == nil && ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 {
			return m.ctx.InitToken(s, soPIN, label)
		}
	}
	return ErrNoFreeSlot
}

// ParseECPointForTest exposes parseECPoint.
var ParseECPointForTest = parseECPoint

// The in-process secp256k1 (secp256k1.go), for cross-checks with tokens
// that have the curve.
var (
	K1Generate = k1Generate
	K1Sign     = k1Sign
	K1Verify   = k1Verify
)

// LogoutBehindPool logs the application out of the token (C_Logout on the
// owner session) without telling the Token, as a module that drops the
// login state (a token reset) would: every session of the application
// loses the user's state.
func (t *Token) LogoutBehindPool() error {
	t.ownerMu.Lock()
	defer t.ownerMu.Unlock()
	return t.ctx.Logout(t.owner)
}

// SetPIN replaces the PIN the Token logs in again with, so that a lost
// login cannot be restored.
func (t *Token) SetPIN(pin string) { t.pin = pin }
