package kms

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/keystore"
)

// fakeStores is KeyStores over in-memory tokens: a module path it allows,
// tokens by label with their user PIN, and AES-256-GCM keys by label.
type fakeStores struct {
	mu      sync.Mutex
	module  string
	pins    map[string]string // token label → PIN
	keys    map[string]map[string]cipher.AEAD
	connect int    // Connect calls
	created func() // called by CreateKey after it made a key
}

func newFakeStores() *fakeStores {
	return &fakeStores{module: "/usr/lib/test-pkcs11.so", pins: map[string]string{}, keys: map[string]map[string]cipher.AEAD{}}
}

func (f *fakeStores) addToken(label, pin string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pins[label] = pin
	f.keys[label] = map[string]cipher.AEAD{}
}

func (f *fakeStores) Check(_ context.Context, module, label string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if module != f.module {
		return ErrStoreModule
	}
	if _, ok := f.pins[label]; !ok {
		return ErrStoreTokenNotFound
	}
	return nil
}

func (f *fakeStores) Connect(_ context.Context, cfg TokenConfig) (TokenStore, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.connect++
	if cfg.ModulePath != f.module {
		return nil, &StoreError{Code: CodeNetworkErrors, Err: ErrStoreModule}
	}
	pin, ok := f.pins[cfg.TokenLabel]
	if !ok {
		return nil, &StoreError{Code: CodeClusterNotFound, Err: ErrStoreTokenNotFound}
	}
	if pin != string(cfg.PIN) {
		return nil, &StoreError{Code: CodeInvalidCredentials, Err: errors.New("PIN incorrect")}
	}
	return &fakeToken{f: f, label: cfg.TokenLabel}, nil
}

type fakeToken struct {
	f      *fakeStores
	label  string
	closed bool
}

func (t *fakeToken) key(label string) (cipher.AEAD, error) {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	if t.closed {
		return nil, ErrStoreUnavailable
	}
	a, ok := t.f.keys[t.label][label]
	if !ok {
		return nil, ErrStoreKeyNotFound
	}
	return a, nil
}

func (t *fakeToken) CreateKey(_ context.Context, label string) error {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	if _, ok := t.f.keys[t.label][label]; ok {
		return ErrStoreKeyExists
	}
	k := make([]byte, 32)
	rand.Read(k)
	b, _ := aes.NewCipher(k)
	a, _ := cipher.NewGCM(b)
	t.f.keys[t.label][label] = a
	if h := t.f.created; h != nil {
		t.f.mu.Unlock()
		h()
		t.f.mu.Lock()
	}
	return nil
}

func (t *fakeToken) Encrypt(_ context.Context, label string, aad, pt []byte) ([]byte, []byte, error) {
	a, err := t.key(label)
	if err != nil {
		return nil, nil, err
	}
	iv := make([]byte, 12)
	rand.Read(iv)
	return iv, a.Seal(nil, iv, pt, aad), nil
}

func (t *fakeToken) Decrypt(_ context.Context, label string, iv, aad, ct []byte) ([]byte, error) {
	a, err := t.key(label)
	if err != nil {
		return nil, err
	}
	pt, err := a.Open(nil, iv, ct, aad)
	if err != nil {
		return nil, ErrRefused
	}
	return pt, nil
}

func (t *fakeToken) Random(_ context.Context, n int) ([]byte, error) {
	b := make([]byte, n)
	rand.Read(b)
	return b, nil
}

func (t *fakeToken) Close() error {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	t.closed = true
	return nil
}

const storePIN = "kmsuser-pin-1"

func newStoreFixture(t *testing.T) (*fixture, *fakeStores) {
	t.Helper()
	f := newFixture(t)
	ks := newFakeStores()
	ks.addToken("customer", storePIN)
	f.s = New(Config{Store: f.store, HSM: f.hsm, Region: "eu-west-1", Clock: func() time.Time { return f.now }, KeyStores: ks})
	return f, ks
}

func (f *fixture) createStore(t *testing.T, name, label, pin string) string {
	t.Helper()
	out := f.must(t, alice, "CreateCustomKeyStore", map[string]any{"CustomKeyStoreName": name, "CloudHsmClusterId": label,
		"TrustAnchorCertificate": "/usr/lib/test-pkcs11.so", "KeyStorePassword": pin})
	return out["CustomKeyStoreId"].(string)
}

func (f *fixture) describeStore(t *testing.T, id string) map[string]any {
	t.Helper()
	out := f.must(t, alice, "DescribeCustomKeyStores", map[string]any{"CustomKeyStoreId": id})
	l := out["CustomKeyStores"].([]any)
	require.Len(t, l, 1)
	return l[0].(map[string]any)
}

// settle runs the leader's store maintenance until store id's record is
// no longer CONNECTING (the leader recorded its outcome), and returns the
// entry.
func (f *fixture) settle(t *testing.T, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		f.s.KeyStoreMaintenance(context.Background(), true)
		c, _, err := f.s.loadStore(id)
		require.NoError(t, err)
		if c.State != keystore.ConnConnecting || time.Now().After(deadline) {
			return f.describeStore(t, id)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A PKCS#11 custom key store, through its life: created DISCONNECTED,
// connected by ConnectCustomKeyStore and the leader's maintenance, its
// keys made in the token labelled with their key IDs and used there,
// unusable once disconnected, and deletable only when it holds no keys
// and is disconnected.
func TestCustomKeyStoreLifecycle(t *testing.T) {
	f, ks := newStoreFixture(t)
	ctx := context.Background()
	id := f.createStore(t, "mine", "customer", storePIN)
	assert.True(t, keystore.ValidStoreID(id), id)
	e := f.describeStore(t, id)
	assert.Equal(t, "DISCONNECTED", e["ConnectionState"])
	assert.Equal(t, "AWS_CLOUDHSM", e["CustomKeyStoreType"])
	assert.Equal(t, "customer", e["CloudHsmClusterId"])
	assert.Equal(t, "/usr/lib/test-pkcs11.so", e["TrustAnchorCertificate"])
	assert.Nil(t, e["ConnectionErrorCode"])

	// The PIN is in no record in the clear.
	f.store.Records("", func(_ string, raw []byte) bool {
		assert.False(t, bytes.Contains(raw, []byte(storePIN)), "a record holds the PIN")
		return true
	})

	_, err := f.call(alice, "CreateKey", map[string]any{"Origin": "AWS_CLOUDHSM", "CustomKeyStoreId": id})
	assert.Equal(t, "CustomKeyStoreInvalidStateException", exception(err), "a disconnected store makes no key")
	_, err = f.call(alice, "DisconnectCustomKeyStore", map[string]any{"CustomKeyStoreId": id})
	assert.Equal(t, "CustomKeyStoreInvalidStateException", exception(err))

	f.must(t, alice, "ConnectCustomKeyStore", map[string]any{"CustomKeyStoreId": id})
	f.must(t, alice, "ConnectCustomKeyStore", map[string]any{"CustomKeyStoreId": id}) // valid while CONNECTING
	e = f.settle(t, id)
	require.Equal(t, "CONNECTED", e["ConnectionState"], e)
	f.must(t, alice, "ConnectCustomKeyStore", map[string]any{"CustomKeyStoreId": id}) // and CONNECTED

	kid := f.createKey(t, map[string]any{"Origin": "AWS_CLOUDHSM", "CustomKeyStoreId": id})
	ks.mu.Lock()
	_, inToken := ks.keys["customer"][kid]
	ks.mu.Unlock()
	assert.True(t, inToken, "the key is in the token, labelled with its key ID")
	m := f.state(t, kid)
	assert.Equal(t, "AWS_CLOUDHSM", m["Origin"])
	assert.Equal(t, id, m["CustomKeyStoreId"])
	assert.Equal(t, "customer", m["CloudHsmClusterId"])
	assert.Equal(t, "Enabled", m["KeyState"])

	ec := map[string]string{"app": "x"}
	out := f.must(t, alice, "Encrypt", map[string]any{"KeyId": kid, "Plaintext": []byte("hello"), "EncryptionContext": ec})
	blob := b64(t, out["CiphertextBlob"])
	out = f.must(t, alice, "Decrypt", map[string]any{"CiphertextBlob": blob, "EncryptionContext": ec})
	assert.Equal(t, "hello", string(b64(t, out["Plaintext"])))
	_, err = f.call(alice, "Decrypt", map[string]any{"CiphertextBlob": blob, "EncryptionContext": map[string]string{"app": "y"}})
	assert.Equal(t, "InvalidCiphertextException", exception(err))
	tampered := bytes.Clone(blob)
	tampered[len(tampered)-1] ^= 1
	_, err = f.call(alice, "Decrypt", map[string]any{"CiphertextBlob": tampered, "EncryptionContext": ec})
	assert.Equal(t, "InvalidCiphertextException", exception(err))

	out = f.must(t, alice, "GenerateDataKey", map[string]any{"KeyId": kid, "KeySpec": "AES_256"})
	dk := b64(t, out["Plaintext"])
	out = f.must(t, alice, "Decrypt", map[string]any{"CiphertextBlob": b64(t, out["CiphertextBlob"])})
	assert.Equal(t, dk, b64(t, out["Plaintext"]))
	out = f.must(t, alice, "GenerateDataKeyWithoutPlaintext", map[string]any{"KeyId": kid, "NumberOfBytes": 16})
	assert.Nil(t, out["Plaintext"])
	out = f.must(t, alice, "Decrypt", map[string]any{"CiphertextBlob": b64(t, out["CiphertextBlob"])})
	assert.Len(t, b64(t, out["Plaintext"]), 16)

	// ReEncrypt from the store to a KMS key and back.
	other := f.createKey(t, map[string]any{})
	out = f.must(t, alice, "ReEncrypt", map[string]any{"CiphertextBlob": blob, "SourceEncryptionContext": ec, "DestinationKeyId": other})
	toKMS := b64(t, out["CiphertextBlob"])
	out = f.must(t, alice, "ReEncrypt", map[string]any{"CiphertextBlob": toKMS, "DestinationKeyId": kid})
	out = f.must(t, alice, "Decrypt", map[string]any{"CiphertextBlob": b64(t, out["CiphertextBlob"])})
	assert.Equal(t, "hello", string(b64(t, out["Plaintext"])))

	out = f.must(t, alice, "GenerateRandom", map[string]any{"NumberOfBytes": 24, "CustomKeyStoreId": id})
	assert.Len(t, b64(t, out["Plaintext"]), 24)
	_, err = f.call(alice, "GenerateRandom", map[string]any{"NumberOfBytes": 24, "CustomKeyStoreId": "cks-0000000000000000a"})
	assert.Equal(t, "CustomKeyStoreNotFoundException", exception(err))

	_, err = f.call(alice, "EnableKeyRotation", map[string]any{"KeyId": kid})
	assert.Equal(t, "UnsupportedOperationException", exception(err))
	_, err = f.call(alice, "GenerateDataKeyPair", map[string]any{"KeyId": kid, "KeyPairSpec": "ECC_NIST_P256"})
	assert.Equal(t, "UnsupportedOperationException", exception(err))

	_, err = f.call(alice, "DeleteCustomKeyStore", map[string]any{"CustomKeyStoreId": id})
	assert.Equal(t, "CustomKeyStoreInvalidStateException", exception(err), "a connected store is not deleted")
	_, err = f.call(alice, "UpdateCustomKeyStore", map[string]any{"CustomKeyStoreId": id, "KeyStorePassword": "another-pin"})
	assert.Equal(t, "CustomKeyStoreInvalidStateException", exception(err), "a connected store changes its name only")
	f.must(t, alice, "UpdateCustomKeyStore", map[string]any{"CustomKeyStoreId": id, "NewCustomKeyStoreName": "renamed"})
	assert.Equal(t, "renamed", f.describeStore(t, id)["CustomKeyStoreName"])

	f.must(t, alice, "DisconnectCustomKeyStore", map[string]any{"CustomKeyStoreId": id})
	assert.Equal(t, "DISCONNECTED", f.describeStore(t, id)["ConnectionState"])
	_, err = f.call(alice, "Encrypt", map[string]any{"KeyId": kid, "Plaintext": []byte("x")})
	assert.Equal(t, "KMSInvalidStateException", exception(err))
	_, err = f.call(alice, "Decrypt", map[string]any{"CiphertextBlob": blob, "EncryptionContext": ec})
	assert.Equal(t, "KMSInvalidStateException", exception(err))
	_, err = f.call(alice, "GenerateRandom", map[string]any{"NumberOfBytes": 8, "CustomKeyStoreId": id})
	assert.Equal(t, "CustomKeyStoreInvalidStateException", exception(err))
	assert.Equal(t, "Unavailable", f.state(t, kid)["KeyState"])
	f.s.KeyStoreMaintenance(ctx, true)
	f.s.conns.mu.Lock()
	assert.Empty(t, f.s.conns.m, "the connection is closed")
	f.s.conns.mu.Unlock()

	_, err = f.call(alice, "DeleteCustomKeyStore", map[string]any{"CustomKeyStoreId": id})
	assert.Equal(t, "CustomKeyStoreHasCMKsException", exception(err))
	f.must(t, alice, "ScheduleKeyDeletion", map[string]any{"KeyId": kid, "PendingWindowInDays": 7})
	_, err = f.call(alice, "DeleteCustomKeyStore", map[string]any{"CustomKeyStoreId": id})
	assert.Equal(t, "CustomKeyStoreHasCMKsException", exception(err), "a key pending deletion is still in the store")
	f.now = f.now.Add(8 * 24 * time.Hour)
	_, _, err = f.s.KeyMaintenance(ctx)
	require.NoError(t, err)
	f.must(t, alice, "DeleteCustomKeyStore", map[string]any{"CustomKeyStoreId": id})
	_, err = f.call(alice, "DescribeCustomKeyStores", map[string]any{"CustomKeyStoreId": id})
	assert.Equal(t, "CustomKeyStoreNotFoundException", exception(err))
	// Its name is free again.
	f.createStore(t, "renamed", "customer", storePIN)
}

// A wrong PIN fails the connection with INVALID_CREDENTIALS; a FAILED
// store must be disconnected before it connects again, and connects once
// UpdateCustomKeyStore has the right PIN.
func TestCustomKeyStoreWrongPIN(t *testing.T) {
	f, _ := newStoreFixture(t)
	id := f.createStore(t, "s", "customer", "not-the-pin")
	f.must(t, alice, "ConnectCustomKeyStore", map[string]any{"CustomKeyStoreId": id})
	e := f.settle(t, id)
	assert.Equal(t, "FAILED", e["ConnectionState"])
	assert.Equal(t, "INVALID_CREDENTIALS", e["ConnectionErrorCode"])
	_, err := f.call(alice, "ConnectCustomKeyStore", map[string]any{"CustomKeyStoreId": id})
	assert.Equal(t, "CustomKeyStoreInvalidStateException", exception(err))
	_, err = f.call(alice, "UpdateCustomKeyStore", map[string]any{"CustomKeyStoreId": id, "KeyStorePassword": storePIN})
	assert.Equal(t, "CustomKeyStoreInvalidStateException", exception(err), "a FAILED store is disconnected first")
	f.must(t, alice, "DisconnectCustomKeyStore", map[string]any{"CustomKeyStoreId": id})
	f.must(t, alice, "UpdateCustomKeyStore", map[string]any{"CustomKeyStoreId": id, "KeyStorePassword": storePIN})
	f.must(t, alice, "ConnectCustomKeyStore", map[string]any{"CustomKeyStoreId": id})
	e = f.settle(t, id)
	assert.Equal(t, "CONNECTED", e["ConnectionState"], e)
	assert.Nil(t, e["ConnectionErrorCode"])
}

// A follower's answer: CONNECTING until the leader recorded its outcome,
// and FAILED with its own code when its own connection failed although
// the leader's succeeded.
func TestCustomKeyStoreHostState(t *testing.T) {
	f, _ := newStoreFixture(t)
	id := f.createStore(t, "s", "customer", storePIN)
	f.must(t, alice, "ConnectCustomKeyStore", map[string]any{"CustomKeyStoreId": id})
	// A follower (maintenance without leader) connects but records nothing.
	for range 100 {
		f.s.KeyStoreMaintenance(context.Background(), false)
		time.Sleep(2 * time.Millisecond)
	}
	assert.Equal(t, "CONNECTING", f.describeStore(t, id)["ConnectionState"])
	assert.Equal(t, "CONNECTED", f.settle(t, id)["ConnectionState"])

	// A second host, on the same records, whose module has another path.
	ks2 := newFakeStores()
	ks2.module = "/elsewhere.so"
	ks2.addToken("customer", storePIN)
	now := time.Unix(1_800_000_000, 0)
	s2 := New(Config{Store: f.store, HSM: f.hsm, Region: "eu-west-1", KeyStores: ks2, Clock: func() time.Time { return now }})
	c, _, err := s2.loadStore(id)
	require.NoError(t, err)
	s2.connectionState(c)
	<-s2.connFor(c).done
	st, code := s2.connectionState(c)
	assert.Equal(t, "FAILED", st)
	assert.Equal(t, "NETWORK_ERRORS", code)
	assert.True(t, s2.KeyStoreMaintenance(context.Background(), false), "a failure of its own to retry")
	// CreateKey there: its own failure is a retryable 500, not the
	// store's (CONNECTED) state.
	_, err = (&fixture{s: s2}).call(alice, "CreateKey", map[string]any{"Origin": "AWS_CLOUDHSM", "CustomKeyStoreId": id})
	assert.Equal(t, "KMSInternalException", exception(err))

	// Its module fixed, the host tries again after retryAfter, not before.
	ks2.mu.Lock()
	ks2.module = "/usr/lib/test-pkcs11.so"
	ks2.mu.Unlock()
	<-s2.connFor(c).done
	st, _ = s2.connectionState(c)
	assert.Equal(t, "FAILED", st, "not yet")
	now = now.Add(retryAfter)
	<-s2.connFor(c).done
	st, code = s2.connectionState(c)
	assert.Equal(t, "CONNECTED", st, code)
	assert.False(t, s2.KeyStoreMaintenance(context.Background(), false))
	s2.CloseKeyStores()
}

// CreateCustomKeyStore's checks, with KMS's exceptions.
func TestCreateCustomKeyStoreRefusals(t *testing.T) {
	f, _ := newStoreFixture(t)
	base := func() map[string]any {
		return map[string]any{"CustomKeyStoreName": "n", "CloudHsmClusterId": "customer",
			"TrustAnchorCertificate": "/usr/lib/test-pkcs11.so", "KeyStorePassword": storePIN}
	}
	with := func(k string, v any) map[string]any {
		m := base()
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	for _, c := range []struct {
		req  map[string]any
		want string
	}{
		{with("KeyStorePassword", "short"), "ValidationException"},
		{with("KeyStorePassword", nil), "ValidationException"},
		{with("CustomKeyStoreName", ""), "ValidationException"},
		{with("CloudHsmClusterId", "a-label-that-is-longer-than-32-bytes"), "ValidationException"},
		{with("CustomKeyStoreType", "OTHER"), "ValidationException"},
		{with("CustomKeyStoreType", "EXTERNAL_KEY_STORE"), "UnsupportedOperationException"},
		{with("XksProxyUriPath", "/kms/xks/v1"), "ValidationException"},
		{with("TrustAnchorCertificate", "/tmp/evil.so"), "IncorrectTrustAnchorException"},
		{with("CloudHsmClusterId", "nosuchtoken"), "CloudHsmClusterNotFoundException"},
	} {
		_, err := f.call(alice, "CreateCustomKeyStore", c.req)
		assert.Equal(t, c.want, exception(err), "%v", c.req)
	}
	f.createStore(t, "n", "customer", storePIN)
	_, err := f.call(alice, "CreateCustomKeyStore", base())
	assert.Equal(t, "CustomKeyStoreNameInUseException", exception(err))
	_, err = f.call(alice, "CreateCustomKeyStore", with("CustomKeyStoreName", "other"))
	assert.Equal(t, "CloudHsmClusterInUseException", exception(err))
	_, err = f.call(alice, "CreateKey", map[string]any{"Origin": "AWS_CLOUDHSM"})
	assert.Equal(t, "ValidationException", exception(err))
	_, err = f.call(alice, "CreateKey", map[string]any{"Origin": "AWS_CLOUDHSM", "CustomKeyStoreId": "cks-0000000000000000a"})
	assert.Equal(t, "CustomKeyStoreNotFoundException", exception(err))
	_, err = f.call(alice, "CreateKey", map[string]any{"Origin": "EXTERNAL_KEY_STORE", "CustomKeyStoreId": "cks-0000000000000000a", "XksKeyId": "k"})
	assert.Equal(t, "CustomKeyStoreNotFoundException", exception(err))
	for _, op := range []string{"ConnectCustomKeyStore", "DisconnectCustomKeyStore", "DeleteCustomKeyStore"} {
		_, err = f.call(alice, op, map[string]any{"CustomKeyStoreId": "cks-0000000000000000a"})
		assert.Equal(t, "CustomKeyStoreNotFoundException", exception(err), op)
	}
	_, err = f.call(alice, "DescribeCustomKeyStores", map[string]any{"CustomKeyStoreName": "absent"})
	assert.Equal(t, "CustomKeyStoreNotFoundException", exception(err))
}

func FuzzParseStoreBlob(f *testing.F) {
	b, err := (&storeBlob{KeyID: "1234abcd-12ab-34cd-56ef-1234567890ab", IV: make([]byte, 12), Ciphertext: make([]byte, 20)}).Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, in []byte) {
		bl, err := parseStoreBlob(in)
		if err != nil {
			return
		}
		out, err := bl.Marshal()
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("parse→marshal: %v", err)
		}
	})
}

// b64 decodes a base64 member of an answer.
func b64(t *testing.T, v any) []byte {
	t.Helper()
	s, ok := v.(string)
	require.True(t, ok, "%v is not a string", v)
	b, err := base64.StdEncoding.DecodeString(s)
	require.NoError(t, err)
	return b
}

// The custom key store rows of the operation table: all but
// DescribeCustomKeyStores write (and so reach the leader).
func TestCustomKeyStoreOperations(t *testing.T) {
	s := New(Config{Store: newMemStore()})
	for _, op := range []string{"CreateCustomKeyStore", "UpdateCustomKeyStore", "DeleteCustomKeyStore", "ConnectCustomKeyStore", "DisconnectCustomKeyStore"} {
		assert.True(t, s.IsWrite(op), op)
		assert.False(t, s.Operations()[op].Cryptographic, op)
	}
	assert.False(t, s.IsWrite("DescribeCustomKeyStores"))
	assert.Contains(t, s.Operations(), "DescribeCustomKeyStores")
}

// A DisconnectCustomKeyStore that commits while CreateKey makes its key in
// the token: the key record is not committed (its entry compares the
// store's record), so no key of a disconnected store was made usable.
func TestCreateKeyRacesDisconnect(t *testing.T) {
	f, ks := newStoreFixture(t)
	id := f.createStore(t, "s", "customer", storePIN)
	f.must(t, alice, "ConnectCustomKeyStore", map[string]any{"CustomKeyStoreId": id})
	require.Equal(t, "CONNECTED", f.settle(t, id)["ConnectionState"])
	ks.created = func() { f.must(t, alice, "DisconnectCustomKeyStore", map[string]any{"CustomKeyStoreId": id}) }
	_, err := f.call(alice, "CreateKey", map[string]any{"Origin": "AWS_CLOUDHSM", "CustomKeyStoreId": id})
	assert.Equal(t, "CustomKeyStoreInvalidStateException", exception(err))
	ks.created = nil
	assert.Zero(t, f.s.storeKeys(id), "no key record")
	f.must(t, alice, "DeleteCustomKeyStore", map[string]any{"CustomKeyStoreId": id})
}

// DescribeCustomKeyStores pages by store ID and finds a store by name;
// UpdateCustomKeyStore moves a store to another token only if it exists
// and no other store uses it.
func TestDescribeAndUpdateCustomKeyStores(t *testing.T) {
	f, ks := newStoreFixture(t)
	ks.addToken("second", storePIN)
	ks.addToken("third", storePIN)
	a := f.createStore(t, "a", "customer", storePIN)
	b := f.createStore(t, "b", "second", storePIN)
	out := f.must(t, alice, "DescribeCustomKeyStores", map[string]any{"Limit": 1})
	assert.Len(t, out["CustomKeyStores"], 1)
	assert.Equal(t, true, out["Truncated"])
	next := f.must(t, alice, "DescribeCustomKeyStores", map[string]any{"Limit": 1, "Marker": out["NextMarker"]})
	assert.Len(t, next["CustomKeyStores"], 1)
	assert.Equal(t, false, next["Truncated"])
	ids := []any{out["CustomKeyStores"].([]any)[0].(map[string]any)["CustomKeyStoreId"], next["CustomKeyStores"].([]any)[0].(map[string]any)["CustomKeyStoreId"]}
	assert.ElementsMatch(t, []any{a, b}, ids)
	byName := f.must(t, alice, "DescribeCustomKeyStores", map[string]any{"CustomKeyStoreName": "b"})
	assert.Equal(t, b, byName["CustomKeyStores"].([]any)[0].(map[string]any)["CustomKeyStoreId"])
	_, err := f.call(alice, "DescribeCustomKeyStores", map[string]any{"CustomKeyStoreName": "b", "CustomKeyStoreId": b})
	assert.Equal(t, "ValidationException", exception(err))
	_, err = f.call(bob, "DescribeCustomKeyStores", map[string]any{"CustomKeyStoreId": b})
	assert.NoError(t, err, "bob is of the same account")

	_, err = f.call(alice, "UpdateCustomKeyStore", map[string]any{"CustomKeyStoreId": a, "CloudHsmClusterId": "nosuch"})
	assert.Equal(t, "CloudHsmClusterNotFoundException", exception(err))
	_, err = f.call(alice, "UpdateCustomKeyStore", map[string]any{"CustomKeyStoreId": a, "CloudHsmClusterId": "second"})
	assert.Equal(t, "CloudHsmClusterInUseException", exception(err))
	_, err = f.call(alice, "UpdateCustomKeyStore", map[string]any{"CustomKeyStoreId": a, "NewCustomKeyStoreName": "b"})
	assert.Equal(t, "CustomKeyStoreNameInUseException", exception(err))
	_, err = f.call(alice, "UpdateCustomKeyStore", map[string]any{"CustomKeyStoreId": a})
	assert.Equal(t, "ValidationException", exception(err))
	f.must(t, alice, "UpdateCustomKeyStore", map[string]any{"CustomKeyStoreId": a, "CloudHsmClusterId": "third", "NewCustomKeyStoreName": "c"})
	e := f.describeStore(t, a)
	assert.Equal(t, "third", e["CloudHsmClusterId"])
	assert.Equal(t, "c", e["CustomKeyStoreName"])
	f.createStore(t, "a", "customer", storePIN) // the old name and token are free
}
