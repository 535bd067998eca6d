package hsm_test

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/hsm"
	"github.com/trentkms/trent/softhsm"
	"github.com/trentkms/trent/softhsm/softhsmtest"
	"github.com/trentkms/trent/tokenstore"
	"github.com/trentkms/trent/tokenstore/storetest"
)

func digest(msg string) []byte {
	d := sha512.Sum384([]byte(msg))
	return d[:]
}

func TestIdentityKeysSurviveRestart(t *testing.T) { storetest.Each(t, testIdentityKeysSurviveRestart) }

func testIdentityKeysSurviveRestart(t *testing.T, e *storetest.Env) {
	e.InitToken(t, "node")
	cfg := e.Config(t, "node", storetest.UserPIN)

	tok, err := hsm.Open(cfg)
	require.NoError(t, err)
	_, err = tok.Identity()
	require.ErrorIs(t, err, hsm.ErrKeyNotFound, "a new token has no identity")
	id, created, err := tok.EnsureIdentity()
	require.NoError(t, err)
	require.True(t, created)
	sig, err := id.Signing.Sign(nil, digest("before"), crypto.SHA384)
	require.NoError(t, err)
	require.True(t, ecdsa.VerifyASN1(id.Signing.PublicKey(), digest("before"), sig))
	// Closing the only Token finalises the module: a restart in all but the
	// process.
	require.NoError(t, tok.Close())

	tok2, err := hsm.Open(cfg)
	require.NoError(t, err)
	defer tok2.Close()
	id2, created, err := tok2.EnsureIdentity()
	require.NoError(t, err)
	assert.False(t, created, "the second EnsureIdentity must reuse the keys")
	assert.True(t, id.Signing.PublicKey().Equal(id2.Signing.PublicKey()))
	assert.True(t, id.Agreement.PublicKey().Equal(id2.Agreement.PublicKey()))
	assert.Equal(t, id.ID(), id2.ID())
	assert.True(t, strings.HasPrefix(id2.ID(), "hsm-") && len(id2.ID()) == 20, id2.ID())

	sig, err = id2.Signing.Sign(nil, digest("after"), crypto.SHA384)
	require.NoError(t, err)
	assert.True(t, ecdsa.VerifyASN1(id.Signing.PublicKey(), digest("after"), sig))

	// The private keys are sensitive and were never extractable.
	ctx, slot := tok2.Raw()
	s, err := ctx.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION)
	require.NoError(t, err)
	defer ctx.CloseSession(s)
	for _, h := range []pkcs11.ObjectHandle{id2.Signing.PrivateHandle(), id2.Agreement.PrivateHandle()} {
		attrs, err := ctx.GetAttributeValue(s, h, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, nil),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, nil),
			pkcs11.NewAttribute(pkcs11.CKA_NEVER_EXTRACTABLE, nil),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, nil),
		})
		require.NoError(t, err)
		assert.Equal(t, []byte{1}, attrs[0].Value, "CKA_SENSITIVE")
		assert.Equal(t, []byte{0}, attrs[1].Value, "CKA_EXTRACTABLE")
		assert.Equal(t, []byte{1}, attrs[2].Value, "CKA_NEVER_EXTRACTABLE")
		assert.Equal(t, []byte{1}, attrs[3].Value, "CKA_TOKEN")
		_, err = ctx.GetAttributeValue(s, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
		assert.Error(t, err, "the private value must not be readable")
	}
}

func TestSignaturesVerifyWithCryptoECDSA(t *testing.T) {
	storetest.Each(t, testSignaturesVerifyWithCryptoECDSA)
}

func testSignaturesVerifyWithCryptoECDSA(t *testing.T, e *storetest.Env) {
	tok := e.NewToken(t)
	id, _, err := tok.EnsureIdentity()
	require.NoError(t, err)
	for i := range 20 {
		d := digest(strings.Repeat("m", i))
		sig, err := id.Signing.Sign(rand.Reader, d, crypto.SHA384)
		require.NoError(t, err)
		require.True(t, ecdsa.VerifyASN1(id.Signing.PublicKey(), d, sig))
		d[0] ^= 1
		require.False(t, ecdsa.VerifyASN1(id.Signing.PublicKey(), d, sig))
	}
	// Through the crypto.Signer interface, as crypto/x509 and TLS use it.
	var signer crypto.Signer = id.Signing
	sig, err := signer.Sign(nil, digest("x"), crypto.SHA384)
	require.NoError(t, err)
	assert.True(t, ecdsa.VerifyASN1(signer.Public().(*ecdsa.PublicKey), digest("x"), sig))
}

func TestECDHMatchesCryptoECDH(t *testing.T) { storetest.Each(t, testECDHMatchesCryptoECDH) }

func testECDHMatchesCryptoECDH(t *testing.T, e *storetest.Env) {
	tok := e.NewToken(t)
	id, _, err := tok.EnsureIdentity()
	require.NoError(t, err)
	eph, err := tok.GenerateEphemeralAgreementKey()
	require.NoError(t, err)
	defer eph.Destroy()

	for _, k := range []*hsm.AgreementKey{id.Agreement, eph} {
		peer, err := ecdh.P384().GenerateKey(rand.Reader)
		require.NoError(t, err)
		z, err := k.ECDH(peer.PublicKey().Bytes())
		require.NoError(t, err)
		want, err := peer.ECDH(k.PublicKey())
		require.NoError(t, err)
		assert.Equal(t, want, z)
		assert.Len(t, z, 48)
	}
}

func TestVolatileKeysGoneAfterRestart(t *testing.T) {
	storetest.Each(t, testVolatileKeysGoneAfterRestart)
}

func testVolatileKeysGoneAfterRestart(t *testing.T, e *storetest.Env) {
	e.InitToken(t, "node")
	cfg := e.Config(t, "node", storetest.UserPIN)
	volatile := []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false)}

	tok, err := hsm.Open(cfg)
	require.NoError(t, err)
	_, _, err = tok.EnsureIdentity()
	require.NoError(t, err)
	aes, err := tok.GenerateSecretKey(hsm.AES256)
	require.NoError(t, err)
	_, err = tok.ImportSecretKey(hsm.HMACSHA256, bytes.Repeat([]byte{7}, 32))
	require.NoError(t, err)
	_, err = tok.GenerateEphemeralAgreementKey()
	require.NoError(t, err)
	n, err := tok.CountObjects(volatile)
	require.NoError(t, err)
	require.Equal(t, 3, n, "three session objects while the token is open")
	handle := aes.Handle()
	require.NoError(t, tok.Close())

	tok2, err := hsm.Open(cfg)
	require.NoError(t, err)
	defer tok2.Close()
	_, err = hsm.SecretKeyWithHandle(tok2, handle, hsm.AES256).Seal(make([]byte, 12), []byte("x"), nil)
	require.ErrorIs(t, err, hsm.ErrInvalidHandle, "the old handle must not reach a key")
	n, err = tok2.CountObjects(volatile)
	require.NoError(t, err)
	assert.Zero(t, n, "no session object survives finalisation")
	n, err = tok2.CountObjects([]*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true)})
	require.NoError(t, err)
	assert.Equal(t, 4, n, "the identity key pairs survive")
}

func TestGCMRoundTripAndTamper(t *testing.T) { storetest.Each(t, testGCMRoundTripAndTamper) }

func testGCMRoundTripAndTamper(t *testing.T, e *storetest.Env) {
	tok := e.NewToken(t)
	k, err := tok.GenerateSecretKey(hsm.AES256)
	require.NoError(t, err)
	nonce, err := tok.Random(12)
	require.NoError(t, err)
	pt := []byte("domain key material would go here")
	aad := []byte("context")
	ct, err := k.Seal(nonce, pt, aad)
	require.NoError(t, err)
	require.Len(t, ct, len(pt)+hsm.GCMTagSize)
	got, err := k.Open(nonce, ct, aad)
	require.NoError(t, err)
	require.Equal(t, pt, got)

	// Empty plaintext and empty AAD are valid.
	ct0, err := k.Seal(nonce, nil, nil)
	require.NoError(t, err)
	got, err = k.Open(nonce, ct0, nil)
	require.NoError(t, err)
	require.Empty(t, got)

	flip := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		c[i] ^= 0x01
		return c
	}
	cases := map[string]func() ([]byte, error){
		"ciphertext": func() ([]byte, error) { return k.Open(nonce, flip(ct, 3), aad) },
		"tag":        func() ([]byte, error) { return k.Open(nonce, flip(ct, len(ct)-1), aad) },
		"nonce":      func() ([]byte, error) { return k.Open(flip(nonce, 11), ct, aad) },
		"aad":        func() ([]byte, error) { return k.Open(nonce, ct, flip(aad, 0)) },
		"no aad":     func() ([]byte, error) { return k.Open(nonce, ct, nil) },
		"truncated":  func() ([]byte, error) { return k.Open(nonce, ct[:len(ct)-1], aad) },
		"tag only":   func() ([]byte, error) { return k.Open(nonce, ct[:15], aad) },
	}
	for name, f := range cases {
		out, err := f()
		assert.ErrorIs(t, err, hsm.ErrAuthentication, name)
		assert.Nil(t, out, name)
		var e *hsm.Error
		require.ErrorAs(t, err, &e, name)
		assert.NotContains(t, err.Error(), string(pt), name)
	}
	// The pool is still healthy after failures.
	got, err = k.Open(nonce, ct, aad)
	require.NoError(t, err)
	require.Equal(t, pt, got)
}

// An imported key gives the same AES-GCM and HMAC results as Go's crypto.
func TestImportedKeysMatchGoCrypto(t *testing.T) { storetest.Each(t, testImportedKeysMatchGoCrypto) }

func testImportedKeysMatchGoCrypto(t *testing.T, e *storetest.Env) {
	tok := e.NewToken(t)
	raw := bytes.Repeat([]byte{0x42}, 32)
	k, err := tok.ImportSecretKey(hsm.AES256, raw)
	require.NoError(t, err)
	nonce := bytes.Repeat([]byte{1}, 12)
	ct, err := k.Seal(nonce, []byte("plaintext"), []byte("aad"))
	require.NoError(t, err)
	block, _ := aes.NewCipher(raw)
	gcm, _ := cipher.NewGCM(block)
	assert.Equal(t, gcm.Seal(nil, nonce, []byte("plaintext"), []byte("aad")), ct)

	m, err := tok.ImportSecretKey(hsm.HMACSHA256, raw)
	require.NoError(t, err)
	mac, err := m.MAC([]byte("message"))
	require.NoError(t, err)
	h := hmac.New(sha256.New, raw)
	h.Write([]byte("message"))
	assert.Equal(t, h.Sum(nil), mac)
	require.NoError(t, m.VerifyMAC([]byte("message"), mac))
	mac[0] ^= 1
	require.ErrorIs(t, m.VerifyMAC([]byte("message"), mac), hsm.ErrAuthentication)

	// Keys are typed: an AES key does not MAC and an HMAC key does not seal.
	_, err = k.MAC([]byte("x"))
	require.ErrorIs(t, err, hsm.ErrInvalidInput)
	_, err = m.Seal(nonce, []byte("x"), nil)
	require.ErrorIs(t, err, hsm.ErrInvalidInput)
}

func TestConcurrentUse(t *testing.T) { storetest.Each(t, testConcurrentUse) }

func testConcurrentUse(t *testing.T, e *storetest.Env) {
	tok := e.OpenToken(t, "busy")
	id, _, err := tok.EnsureIdentity()
	require.NoError(t, err)
	aesKey, err := tok.GenerateSecretKey(hsm.AES256)
	require.NoError(t, err)
	macKey, err := tok.GenerateSecretKey(hsm.HMACSHA256)
	require.NoError(t, err)
	peer, err := ecdh.P384().GenerateKey(rand.Reader)
	require.NoError(t, err)
	wantZ, err := peer.ECDH(id.Agreement.PublicKey())
	require.NoError(t, err)

	const workers, rounds = 32, 8
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds*4)
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				msg := []byte{byte(w), byte(r)}
				sig, err := id.Signing.Sign(nil, digest(string(msg)), crypto.SHA384)
				if err != nil {
					errs <- err
				} else if !ecdsa.VerifyASN1(id.Signing.PublicKey(), digest(string(msg)), sig) {
					errs <- errors.New("bad signature")
				}
				z, err := id.Agreement.ECDH(peer.PublicKey().Bytes())
				if err != nil {
					errs <- err
				} else if !bytes.Equal(z, wantZ) {
					errs <- errors.New("wrong shared secret")
				}
				nonce := make([]byte, 12)
				nonce[0], nonce[1] = byte(w), byte(r)
				ct, err := aesKey.Seal(nonce, msg, msg)
				if err == nil {
					var pt []byte
					pt, err = aesKey.Open(nonce, ct, msg)
					if err == nil && !bytes.Equal(pt, msg) {
						err = errors.New("round trip changed the plaintext")
					}
				}
				if err != nil {
					errs <- err
				}
				if _, err := macKey.MAC(msg); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A small pool serves many goroutines: they wait for sessions, not fail.
func TestSmallPool(t *testing.T) { storetest.Each(t, testSmallPool) }

func testSmallPool(t *testing.T, e *storetest.Env) {
	e.InitToken(t, "small")
	cfg := e.Config(t, "small", storetest.UserPIN)
	cfg.MaxSessions = 1
	tok, err := hsm.Open(cfg)
	require.NoError(t, err)
	defer tok.Close()
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			_, err := tok.Random(32)
			assert.NoError(t, err)
		})
	}
	wg.Wait()
}

func TestSessionReopenedOnceThenReported(t *testing.T) {
	storetest.Each(t, testSessionReopenedOnceThenReported)
}

func testSessionReopenedOnceThenReported(t *testing.T, e *storetest.Env) {
	tok := e.NewToken(t)
	id, _, err := tok.EnsureIdentity()
	require.NoError(t, err)
	require.Positive(t, tok.CloseIdleSessionsBehindPool(), "the pool holds an idle session")
	// The stale session fails with CKR_SESSION_HANDLE_INVALID; the pool
	// reopens one and the signature goes through.
	sig, err := id.Signing.Sign(nil, digest("m"), crypto.SHA384)
	require.NoError(t, err)
	assert.True(t, ecdsa.VerifyASN1(id.Signing.PublicKey(), digest("m"), sig))

	for _, code := range []uint{pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_DEVICE_ERROR, pkcs11.CKR_TOKEN_NOT_PRESENT} {
		calls := 0
		err = tok.Do("probe", func() error { calls++; return pkcs11.Error(code) })
		assert.Equal(t, 2, calls, "retried exactly once")
		var c pkcs11.Error
		require.ErrorAs(t, err, &c)
		assert.Equal(t, pkcs11.Error(code), c)
	}
	calls := 0
	err = tok.Do("probe", func() error { calls++; return pkcs11.Error(pkcs11.CKR_PIN_INCORRECT) })
	assert.Equal(t, 1, calls, "other errors are not retried")
	assert.ErrorIs(t, err, hsm.ErrPINIncorrect)

	// After all that the token still works.
	_, err = tok.Random(8)
	require.NoError(t, err)
}

func TestOpenErrors(t *testing.T) { storetest.Each(t, testOpenErrors) }

func testOpenErrors(t *testing.T, e *storetest.Env) {
	e.InitToken(t, "node")

	_, err := hsm.Open(e.Config(t, "node", "wrong-pin"))
	require.ErrorIs(t, err, hsm.ErrPINIncorrect)
	var code pkcs11.Error
	require.ErrorAs(t, err, &code)
	assert.Equal(t, pkcs11.Error(pkcs11.CKR_PIN_INCORRECT), code)
	assert.NotContains(t, err.Error(), "wrong-pin", "a PIN never appears in an error")

	_, err = hsm.Open(e.Config(t, "absent", storetest.UserPIN))
	require.ErrorIs(t, err, hsm.ErrTokenNotFound)

	created, err := e.EnsureToken("node", storetest.SOPIN, storetest.UserPIN)
	require.NoError(t, err)
	require.False(t, created, "the token exists")

	// A token that was made but never given a user PIN.
	switch e.Kind() {
	case tokenstore.SoftHSM:
		require.NoError(t, hsm.InitTokenWithoutUserPIN(e.Module(t), "half", storetest.SOPIN))
		_, err = hsm.Open(e.Config(t, "half", storetest.UserPIN))
		require.ErrorIs(t, err, hsm.ErrPINNotInitialized)
	case tokenstore.NSS:
		// An NSS database without a password: the softoken does not call
		// it initialised, so it is no token to open.
		require.NoError(t, os.Mkdir(filepath.Join(e.Dir(), "nssdb", "half"), 0o700))
		_, err = hsm.Open(e.Config(t, "half", storetest.UserPIN))
		require.ErrorIs(t, err, hsm.ErrTokenNotFound)
		require.ErrorIs(t, hsm.InitUserPIN(e.Module(t), "node", "", "again"), hsm.ErrTokenExists)
	}

	// Missing module, and a file that is not a module.
	cfg := e.Config(t, "node", storetest.UserPIN)
	cfg.Module.Path = filepath.Join(t.TempDir(), "missing.so")
	_, err = hsm.Open(cfg)
	require.ErrorIs(t, err, hsm.ErrModuleNotFound)
	notLib := filepath.Join(t.TempDir(), "not-a-library.so")
	require.NoError(t, os.WriteFile(notLib, []byte("not ELF"), 0o600))
	cfg.Module.Path = notLib
	_, err = hsm.Open(cfg)
	require.ErrorIs(t, err, hsm.ErrModuleNotFound)

	_, err = hsm.Open(hsm.Config{Module: e.Module(t)})
	require.ErrorIs(t, err, hsm.ErrInvalidInput)
	bad := e.Config(t, "node", storetest.UserPIN)
	bad.Module.InitArgs = "a\x00b"
	_, err = hsm.Open(bad)
	require.ErrorIs(t, err, hsm.ErrInvalidInput, "an initialisation string with NUL")
}

func TestModuleConflict(t *testing.T) {
	a := softhsmtest.NewStore(t)
	softhsmtest.OpenToken(t, a, "a")
	b := softhsmtest.NewStore(t)
	require.NoError(t, os.WriteFile(filepath.Join(b.Dir, "marker"), nil, 0o600))
	err := b.InitToken("b", softhsmtest.SOPIN, softhsmtest.UserPIN)
	require.ErrorIs(t, err, hsm.ErrModuleConflict, "one module instance reads one configuration")
	// Another token in the same data dir is fine: many tokens, one module.
	softhsmtest.OpenToken(t, a, "a2")
}

// NSS's softoken reads its tokens from the initialisation string: a token
// added to the data dir while another is open in the process waits until
// the module is finalised.
func TestModuleConflictNSS(t *testing.T) {
	e := storetest.New(t, tokenstore.NSS)
	a := e.OpenToken(t, "a")
	created, err := e.EnsureToken("b", storetest.SOPIN, storetest.UserPIN)
	require.ErrorIs(t, err, hsm.ErrModuleConflict, "the open module names only token a")
	require.False(t, created)
	require.NoError(t, a.Close())
	e.InitToken(t, "b")
	ta, err := hsm.Open(e.Config(t, "a", storetest.UserPIN))
	require.NoError(t, err)
	defer ta.Close()
	tb, err := hsm.Open(e.Config(t, "b", storetest.UserPIN))
	require.NoError(t, err, "two tokens of one data dir in one module instance")
	defer tb.Close()
	ia, _, err := ta.EnsureIdentity()
	require.NoError(t, err)
	ib, _, err := tb.EnsureIdentity()
	require.NoError(t, err)
	assert.NotEqual(t, ia.ID(), ib.ID(), "each token has its own keys")
}

func TestKeyAndInputErrors(t *testing.T) { storetest.Each(t, testKeyAndInputErrors) }

func testKeyAndInputErrors(t *testing.T, e *storetest.Env) {
	tok := e.NewToken(t)
	id, _, err := tok.EnsureIdentity()
	require.NoError(t, err)

	// Destroyed handles.
	k, err := tok.GenerateSecretKey(hsm.AES256)
	require.NoError(t, err)
	stale := hsm.SecretKeyWithHandle(tok, k.Handle(), hsm.AES256)
	require.NoError(t, k.Destroy())
	require.NoError(t, k.Destroy(), "Destroy is idempotent")
	_, err = k.Seal(make([]byte, 12), []byte("x"), nil)
	require.ErrorIs(t, err, hsm.ErrInvalidHandle)
	_, err = stale.Seal(make([]byte, 12), []byte("x"), nil)
	require.ErrorIs(t, err, hsm.ErrInvalidHandle, "the token itself refuses the destroyed handle")
	var code pkcs11.Error
	require.ErrorAs(t, err, &code)

	eph, err := tok.GenerateEphemeralAgreementKey()
	require.NoError(t, err)
	require.NoError(t, eph.Destroy())
	peer, _ := ecdh.P384().GenerateKey(rand.Reader)
	_, err = eph.ECDH(peer.PublicKey().Bytes())
	require.ErrorIs(t, err, hsm.ErrInvalidHandle)
	require.ErrorIs(t, id.Agreement.Destroy(), hsm.ErrInvalidInput, "identity keys are not destroyed")

	// Peer points that are not on P-384.
	good := peer.PublicKey().Bytes()
	offCurve := bytes.Clone(good)
	offCurve[96] ^= 1
	p256, _ := ecdh.P256().GenerateKey(rand.Reader)
	x25519, _ := ecdh.X25519().GenerateKey(rand.Reader)
	compressed := append([]byte{0x02}, good[1:49]...)
	identity := append([]byte{0x04}, make([]byte, 96)...)
	for name, p := range map[string][]byte{
		"off curve":  offCurve,
		"P-256":      p256.PublicKey().Bytes(),
		"X25519":     x25519.PublicKey().Bytes(),
		"compressed": compressed,
		"zero":       identity,
		"empty":      nil,
		"long":       append(bytes.Clone(good), 0),
	} {
		_, err := id.Agreement.ECDH(p)
		assert.ErrorIs(t, err, hsm.ErrInvalidPublicKey, name)
	}

	// Sizes.
	aesKey, err := tok.GenerateSecretKey(hsm.AES256)
	require.NoError(t, err)
	big := make([]byte, hsm.MaxMessageSize+1)
	_, err = aesKey.Seal(make([]byte, 12), big, nil)
	require.ErrorIs(t, err, hsm.ErrInputTooLarge)
	_, err = aesKey.Seal(make([]byte, 12), nil, big)
	require.ErrorIs(t, err, hsm.ErrInputTooLarge)
	_, err = aesKey.Open(make([]byte, 12), big, nil)
	require.ErrorIs(t, err, hsm.ErrInputTooLarge)
	_, err = aesKey.Seal(make([]byte, 11), []byte("x"), nil)
	require.ErrorIs(t, err, hsm.ErrInvalidInput)
	_, err = tok.Random(0)
	require.ErrorIs(t, err, hsm.ErrInvalidInput)
	_, err = tok.Random(hsm.MaxRandomSize + 1)
	require.ErrorIs(t, err, hsm.ErrInvalidInput)
	_, err = id.Signing.Sign(nil, make([]byte, 32), crypto.SHA384)
	require.ErrorIs(t, err, hsm.ErrInvalidInput)
	_, err = id.Signing.Sign(nil, make([]byte, 48), crypto.SHA256)
	require.ErrorIs(t, err, hsm.ErrInvalidInput)
	_, err = tok.ImportSecretKey(hsm.AES256, make([]byte, 16))
	require.ErrorIs(t, err, hsm.ErrInvalidInput)
	_, err = tok.GenerateSecretKey(hsm.KeyType(99))
	require.ErrorIs(t, err, hsm.ErrInvalidInput)
}

func TestClosedToken(t *testing.T) { storetest.Each(t, testClosedToken) }

func testClosedToken(t *testing.T, e *storetest.Env) {
	e.InitToken(t, "node")
	tok, err := hsm.Open(e.Config(t, "node", storetest.UserPIN))
	require.NoError(t, err)
	k, err := tok.GenerateSecretKey(hsm.AES256)
	require.NoError(t, err)
	require.NoError(t, tok.Close())
	require.NoError(t, tok.Close(), "Close is idempotent")
	_, err = tok.Random(8)
	require.ErrorIs(t, err, hsm.ErrClosed)
	_, err = k.Seal(make([]byte, 12), nil, nil)
	require.ErrorIs(t, err, hsm.ErrClosed)
	_, err = tok.GenerateSecretKey(hsm.AES256)
	require.ErrorIs(t, err, hsm.ErrClosed)
}

func TestErrorStrings(t *testing.T) {
	e := &hsm.Error{Op: "login", Err: hsm.ErrPINIncorrect, Code: pkcs11.CKR_PIN_INCORRECT}
	assert.Equal(t, "hsm: login: PIN incorrect (CKR_PIN_INCORRECT)", e.Error())
	e = &hsm.Error{Op: "find token", Err: hsm.ErrTokenNotFound, Msg: `"x"`}
	assert.Equal(t, `hsm: find token: no initialised token with that label: "x"`, e.Error())
}

func TestStoreIsIdempotent(t *testing.T) {
	s := softhsmtest.NewStore(t)
	again, err := softhsm.CreateWithModule(s.Dir, s.Module)
	require.NoError(t, err)
	assert.Equal(t, s, again)
}

func TestExportableKeys(t *testing.T) { storetest.Each(t, testExportableKeys) }

func testExportableKeys(t *testing.T, e *storetest.Env) {
	tok := e.NewToken(t)
	raw := bytes.Repeat([]byte{9}, 32)
	k, err := tok.ImportExportableKey(hsm.AES256, raw)
	require.NoError(t, err)
	v, err := k.ExportValue()
	require.NoError(t, err)
	assert.Equal(t, raw, v)
	ct, err := k.Seal(make([]byte, 12), []byte("x"), nil)
	require.NoError(t, err)
	pt, err := k.Open(make([]byte, 12), ct, nil)
	require.NoError(t, err)
	assert.Equal(t, []byte("x"), pt)

	// Ordinary keys never give their value.
	plain, err := tok.ImportSecretKey(hsm.AES256, raw)
	require.NoError(t, err)
	_, err = plain.ExportValue()
	require.ErrorIs(t, err, hsm.ErrInvalidInput)
	gen, err := tok.GenerateSecretKey(hsm.AES256)
	require.NoError(t, err)
	_, err = gen.ExportValue()
	require.ErrorIs(t, err, hsm.ErrInvalidInput)
	require.NoError(t, k.Destroy())
	_, err = k.ExportValue()
	require.ErrorIs(t, err, hsm.ErrInvalidHandle)
}
