package kms

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/hbk"
	"github.com/trentkms/trent/keystore"
	"github.com/trentkms/trent/kms/kmsapi"
)

// fakeXKS is XKSProxies over one in-memory proxy: its credential, its
// external keys, whether it is up, and what it was asked to encrypt.
type fakeXKS struct {
	mu       sync.Mutex
	endpoint string
	akid     string
	secret   string
	down     bool
	keys     map[string]*fakeExtKey
	seen     [][]byte // Encrypt's plaintexts
}

type fakeExtKey struct {
	aead    cipher.AEAD
	enabled bool
}

const (
	xksAKID   = "AKIA2345ABCDEFGHIJKL"
	xksSecret = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH"
	xksURL    = "https://xks.example.com"
	xksPath   = "/tenant/kms/xks/v1"
)

func newFakeXKS() *fakeXKS {
	x := &fakeXKS{endpoint: xksURL, akid: xksAKID, secret: xksSecret, keys: map[string]*fakeExtKey{}}
	x.addKey("ext-1", true)
	x.addKey("ext-2", true)
	x.addKey("ext-off", false)
	return x
}

func (x *fakeXKS) addKey(id string, enabled bool) {
	k := make([]byte, 32)
	rand.Read(k)
	b, _ := aes.NewCipher(k)
	a, _ := cipher.NewGCM(b)
	x.mu.Lock()
	x.keys[id] = &fakeExtKey{aead: a, enabled: enabled}
	x.mu.Unlock()
}

func (x *fakeXKS) setDown(down bool) {
	x.mu.Lock()
	x.down = down
	x.mu.Unlock()
}

func (x *fakeXKS) Proxy(cfg XKSConfig) (XKSProxy, error) {
	return &fakeProxy{x: x, cfg: cfg, secret: string(cfg.Secret)}, nil
}

type fakeProxy struct {
	x      *fakeXKS
	cfg    XKSConfig
	secret string
}

func (p *fakeProxy) check() error {
	p.x.mu.Lock()
	defer p.x.mu.Unlock()
	if p.x.down || p.cfg.URIEndpoint != p.x.endpoint {
		return ErrXKSUnreachable
	}
	if p.cfg.AccessKeyID != p.x.akid || p.secret != p.x.secret {
		return ErrXKSAuthentication
	}
	return nil
}

func (p *fakeProxy) Health(context.Context, XKSRequest) error { return p.check() }

func (p *fakeProxy) key(id string) (*fakeExtKey, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	p.x.mu.Lock()
	defer p.x.mu.Unlock()
	k, ok := p.x.keys[id]
	if !ok {
		return nil, ErrXKSKeyNotFound
	}
	return k, nil
}

func (p *fakeProxy) KeyMetadata(_ context.Context, _ XKSRequest, id string) (*XKSKeyMetadata, error) {
	k, err := p.key(id)
	if err != nil {
		return nil, err
	}
	st := "ENABLED"
	if !k.enabled {
		st = "DISABLED"
	}
	return &XKSKeyMetadata{KeySpec: "AES_256", KeyUsage: []string{"ENCRYPT", "DECRYPT"}, KeyStatus: st}, nil
}

func (p *fakeProxy) Encrypt(_ context.Context, _ XKSRequest, id string, aad, pt []byte) (*XKSCiphertext, error) {
	k, err := p.key(id)
	if err != nil {
		return nil, err
	}
	p.x.mu.Lock()
	p.x.seen = append(p.x.seen, bytes.Clone(pt))
	p.x.mu.Unlock()
	iv := make([]byte, 12)
	rand.Read(iv)
	out := k.aead.Seal(nil, iv, pt, aad)
	return &XKSCiphertext{Ciphertext: out[:len(pt)], Tag: out[len(pt):], IV: iv, Metadata: []byte("v=1")}, nil
}

func (p *fakeProxy) Decrypt(_ context.Context, _ XKSRequest, id string, aad []byte, c *XKSCiphertext) ([]byte, error) {
	k, err := p.key(id)
	if err != nil {
		return nil, err
	}
	pt, err := k.aead.Open(nil, c.IV, append(bytes.Clone(c.Ciphertext), c.Tag...), aad)
	if err != nil {
		return nil, ErrRefused
	}
	return pt, nil
}

func (p *fakeProxy) Close() {}

func newXKSFixture(t *testing.T) (*fixture, *fakeXKS) {
	t.Helper()
	f, _ := newStoreFixture(t)
	x := newFakeXKS()
	f.s = New(Config{Store: f.store, HSM: f.hsm, Region: "eu-west-1", Clock: f.s.cfg.Clock, KeyStores: f.s.cfg.KeyStores, XKS: x})
	return f, x
}

func xksCreateReq(name, secret string) map[string]any {
	return map[string]any{"CustomKeyStoreName": name, "CustomKeyStoreType": "EXTERNAL_KEY_STORE",
		"XksProxyUriEndpoint": xksURL, "XksProxyUriPath": xksPath, "XksProxyConnectivity": "PUBLIC_ENDPOINT",
		"XksProxyAuthenticationCredential": map[string]string{"AccessKeyId": xksAKID, "RawSecretAccessKey": secret}}
}

// An external key store: created after a health check, connected, a key
// whose ciphertexts are the HSM layer's blob encrypted again by the
// external key (so they need both), and the proxy's failures answered
// with KMS's exceptions, never a 5xx.
func TestExternalKeyStore(t *testing.T) {
	f, x := newXKSFixture(t)
	with := func(k string, v any) map[string]any {
		m := xksCreateReq("n", xksSecret)
		m[k] = v
		return m
	}
	for _, c := range []struct {
		req  map[string]any
		want string
	}{
		{with("XksProxyUriPath", "/kms/xks"), "ValidationException"},
		{with("XksProxyUriEndpoint", "http://xks.example.com"), "ValidationException"},
		{with("XksProxyConnectivity", "VPC_ENDPOINT_SERVICE"), "UnsupportedOperationException"},
		{with("XksProxyAuthenticationCredential", map[string]string{"AccessKeyId": "short", "RawSecretAccessKey": xksSecret}), "ValidationException"},
		{with("KeyStorePassword", "kmsuser-pin"), "ValidationException"},
		{xksCreateReq("n", "wrongwrongwrongwrongwrongwrongwrongwrongwro"), "XksProxyIncorrectAuthenticationCredentialException"},
		{with("XksProxyUriEndpoint", "https://elsewhere.example.com"), "XksProxyUriUnreachableException"},
	} {
		_, err := f.call(alice, "CreateCustomKeyStore", c.req)
		assert.Equal(t, c.want, exception(err), "%v", c.req)
	}
	id := f.must(t, alice, "CreateCustomKeyStore", xksCreateReq("ext", xksSecret))["CustomKeyStoreId"].(string)
	_, err := f.call(alice, "CreateCustomKeyStore", xksCreateReq("ext2", xksSecret))
	assert.Equal(t, "XksProxyUriInUseException", exception(err))
	f.store.Records("", func(_ string, raw []byte) bool {
		assert.False(t, bytes.Contains(raw, []byte(xksSecret)), "a record holds the secret access key")
		return true
	})
	e := f.describeStore(t, id)
	assert.Equal(t, "EXTERNAL_KEY_STORE", e["CustomKeyStoreType"])
	assert.Equal(t, map[string]any{"AccessKeyId": xksAKID, "Connectivity": "PUBLIC_ENDPOINT", "UriEndpoint": xksURL, "UriPath": xksPath}, e["XksProxyConfiguration"])
	assert.Nil(t, e["CloudHsmClusterId"])

	f.must(t, alice, "ConnectCustomKeyStore", map[string]any{"CustomKeyStoreId": id})
	e = f.settle(t, id)
	require.Equal(t, "CONNECTED", e["ConnectionState"], e)

	create := func(ext string) (string, error) {
		out, err := f.call(alice, "CreateKey", map[string]any{"Origin": "EXTERNAL_KEY_STORE", "CustomKeyStoreId": id, "XksKeyId": ext})
		if err != nil {
			return "", err
		}
		return out["KeyMetadata"].(map[string]any)["KeyId"].(string), nil
	}
	_, err = create("absent")
	assert.Equal(t, "XksKeyNotFoundException", exception(err))
	_, err = create("ext-off")
	assert.Equal(t, "XksKeyInvalidConfigurationException", exception(err))
	_, err = create("bad id!")
	assert.Equal(t, "ValidationException", exception(err))
	kid, err := create("ext-1")
	require.NoError(t, err)
	_, err = create("ext-1")
	assert.Equal(t, "XksKeyAlreadyInUseException", exception(err))
	m := f.state(t, kid)
	assert.Equal(t, "EXTERNAL_KEY_STORE", m["Origin"])
	assert.Equal(t, map[string]any{"Id": "ext-1"}, m["XksKeyConfiguration"])
	assert.Equal(t, id, m["CustomKeyStoreId"])

	ec := map[string]string{"app": "x"}
	out := f.must(t, alice, "Encrypt", map[string]any{"KeyId": kid, "Plaintext": []byte("secret data"), "EncryptionContext": ec})
	blob := b64(t, out["CiphertextBlob"])
	// The proxy saw the HSM layer's blob of this key, never the plaintext.
	x.mu.Lock()
	inner := x.seen[len(x.seen)-1]
	x.mu.Unlock()
	ib, err := hbk.ParseBlob(inner)
	require.NoError(t, err, "the proxy encrypts an HSM ciphertext")
	assert.Equal(t, kid, ib.KeyID)
	assert.False(t, bytes.Contains(inner, []byte("secret data")))
	out = f.must(t, alice, "Decrypt", map[string]any{"CiphertextBlob": blob, "EncryptionContext": ec})
	assert.Equal(t, "secret data", string(b64(t, out["Plaintext"])))
	_, err = f.call(alice, "Decrypt", map[string]any{"CiphertextBlob": blob})
	assert.Equal(t, "InvalidCiphertextException", exception(err), "another context")
	bad := bytes.Clone(blob)
	bad[len(bad)-1] ^= 1
	_, err = f.call(alice, "Decrypt", map[string]any{"CiphertextBlob": bad, "EncryptionContext": ec})
	assert.Equal(t, "InvalidCiphertextException", exception(err))
	// The inner blob alone does not open: it needs the external key too.
	_, err = f.call(alice, "Decrypt", map[string]any{"CiphertextBlob": inner, "EncryptionContext": ec})
	assert.Equal(t, "InvalidCiphertextException", exception(err))

	out = f.must(t, alice, "GenerateDataKey", map[string]any{"KeyId": kid, "NumberOfBytes": 32})
	dk := b64(t, out["Plaintext"])
	out = f.must(t, alice, "Decrypt", map[string]any{"CiphertextBlob": b64(t, out["CiphertextBlob"])})
	assert.Equal(t, dk, b64(t, out["Plaintext"]))
	out = f.must(t, alice, "GenerateDataKeyWithoutPlaintext", map[string]any{"KeyId": kid, "KeySpec": "AES_128"})
	assert.Nil(t, out["Plaintext"])
	other := f.createKey(t, map[string]any{})
	out = f.must(t, alice, "ReEncrypt", map[string]any{"CiphertextBlob": blob, "SourceEncryptionContext": ec, "DestinationKeyId": other})
	out = f.must(t, alice, "ReEncrypt", map[string]any{"CiphertextBlob": b64(t, out["CiphertextBlob"]), "DestinationKeyId": kid})
	out = f.must(t, alice, "Decrypt", map[string]any{"CiphertextBlob": b64(t, out["CiphertextBlob"])})
	assert.Equal(t, "secret data", string(b64(t, out["Plaintext"])))
	_, err = f.call(alice, "GenerateRandom", map[string]any{"NumberOfBytes": 8, "CustomKeyStoreId": id})
	assert.Equal(t, "UnsupportedOperationException", exception(err))

	// A stopped proxy: KMSInvalidStateException (4xx), as AWS answers.
	x.setDown(true)
	for _, op := range []string{"Encrypt", "Decrypt"} {
		req := map[string]any{"KeyId": kid, "Plaintext": []byte("x")}
		if op == "Decrypt" {
			req = map[string]any{"CiphertextBlob": blob, "EncryptionContext": ec}
		}
		_, err = f.call(alice, op, req)
		assert.Equal(t, "KMSInvalidStateException", exception(err), op)
		var ke *kmsapi.Error
		require.ErrorAs(t, err, &ke)
		assert.Less(t, ke.Status, 500, "not a 5xx the client retries")
	}
	_, err = f.call(alice, "CreateKey", map[string]any{"Origin": "EXTERNAL_KEY_STORE", "CustomKeyStoreId": id, "XksKeyId": "ext-2"})
	assert.Equal(t, "KMSInvalidStateException", exception(err))
	x.setDown(false)

	f.must(t, alice, "DisconnectCustomKeyStore", map[string]any{"CustomKeyStoreId": id})
	_, err = f.call(alice, "Encrypt", map[string]any{"KeyId": kid, "Plaintext": []byte("x")})
	assert.Equal(t, "KMSInvalidStateException", exception(err))
	assert.Equal(t, "Unavailable", f.state(t, kid)["KeyState"])

	// A proxy that is down when connecting: FAILED, XKS_PROXY_NOT_REACHABLE.
	x.setDown(true)
	f.must(t, alice, "ConnectCustomKeyStore", map[string]any{"CustomKeyStoreId": id})
	e = f.settle(t, id)
	assert.Equal(t, "FAILED", e["ConnectionState"])
	assert.Equal(t, "XKS_PROXY_NOT_REACHABLE", e["ConnectionErrorCode"])
	x.setDown(false)
	f.must(t, alice, "DisconnectCustomKeyStore", map[string]any{"CustomKeyStoreId": id})

	// A rotated credential: UpdateCustomKeyStore checks it first.
	x.mu.Lock()
	x.secret = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210abcdefgh"
	x.mu.Unlock()
	f.must(t, alice, "ConnectCustomKeyStore", map[string]any{"CustomKeyStoreId": id})
	e = f.settle(t, id)
	assert.Equal(t, "XKS_PROXY_ACCESS_DENIED", e["ConnectionErrorCode"])
	f.must(t, alice, "DisconnectCustomKeyStore", map[string]any{"CustomKeyStoreId": id})
	_, err = f.call(alice, "UpdateCustomKeyStore", map[string]any{"CustomKeyStoreId": id,
		"XksProxyAuthenticationCredential": map[string]string{"AccessKeyId": xksAKID, "RawSecretAccessKey": xksSecret}})
	assert.Equal(t, "XksProxyIncorrectAuthenticationCredentialException", exception(err))
	f.must(t, alice, "UpdateCustomKeyStore", map[string]any{"CustomKeyStoreId": id,
		"XksProxyAuthenticationCredential": map[string]string{"AccessKeyId": xksAKID, "RawSecretAccessKey": "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210abcdefgh"}})
	f.must(t, alice, "ConnectCustomKeyStore", map[string]any{"CustomKeyStoreId": id})
	require.Equal(t, "CONNECTED", f.settle(t, id)["ConnectionState"])
	out = f.must(t, alice, "Decrypt", map[string]any{"CiphertextBlob": blob, "EncryptionContext": ec})
	assert.Equal(t, "secret data", string(b64(t, out["Plaintext"])))

	c, _, err := f.s.loadStore(id)
	require.NoError(t, err)
	assert.Equal(t, keystore.StoreTypeExternal, c.Type)
}

func FuzzParseXKSBlob(f *testing.F) {
	b, err := (&xksBlob{KeyID: "1234abcd-12ab-34cd-56ef-1234567890ab", IV: make([]byte, 12), Tag: make([]byte, 16),
		Metadata: []byte("m"), Ciphertext: make([]byte, 40)}).Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, in []byte) {
		bl, err := parseXKSBlob(in)
		if err != nil {
			return
		}
		out, err := bl.Marshal()
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("parse→marshal: %v", err)
		}
	})
}
