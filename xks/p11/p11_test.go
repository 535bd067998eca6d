package p11

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/hsm"
	"github.com/trentkms/trent/softhsm/softhsmtest"
	"github.com/trentkms/trent/tokenstore"
	"github.com/trentkms/trent/tokenstore/storetest"
	"github.com/trentkms/trent/xks"
)

func TestBackendOnSoftHSM(t *testing.T) {
	store := softhsmtest.NewStore(t)
	testBackend(t, softhsmtest.OpenToken(t, store, "xks"))
}

// The same backend on a token of NSS's softoken: nothing in it is
// module-specific.
func TestBackendOnNSS(t *testing.T) {
	e := storetest.New(t, tokenstore.NSS)
	testBackend(t, e.OpenToken(t, "xks"))
	// The proxy's --dir finds the NSS data dir's module.
	tok, err := OpenToken(TokenOptions{Dir: e.Dir(), Label: "xks", PIN: storetest.UserPIN})
	require.NoError(t, err)
	defer tok.Close()
	ks, err := Keys(tok)
	require.NoError(t, err)
	assert.Len(t, ks, 4)
}

func testBackend(t *testing.T, tok *hsm.Token) {
	ctx := context.Background()
	require.NoError(t, CreateKey(tok, "both", Usage{true, true}))
	require.NoError(t, CreateKey(tok, "enc", Usage{Encrypt: true}))
	require.NoError(t, CreateKey(tok, "dec", Usage{Decrypt: true}))
	require.NoError(t, CreateKey(tok, "none", Usage{}))
	assert.ErrorIs(t, CreateKey(tok, "both", Usage{}), hsm.ErrKeyExists)
	assert.ErrorIs(t, CreateKey(tok, "a/b", Usage{}), xks.ErrInvalidInput)

	b, err := New(tok)
	require.NoError(t, err)
	defer b.Close()
	assert.Equal(t, xks.HealthActive, b.Health(ctx).Detail.HealthStatus)

	for id, want := range map[string][]string{"both": {"ENCRYPT", "DECRYPT"}, "enc": {"ENCRYPT"}, "dec": {"DECRYPT"}, "none": {}} {
		md, err := b.Key(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, xks.KeyMetadata{KeySpec: "AES_256", KeyUsage: want, KeyStatus: "ENABLED"}, md, id)
	}
	_, err = b.Key(ctx, "missing")
	assert.ErrorIs(t, err, xks.ErrKeyNotFound)

	aad := xks.AAD([]byte("ctx"), nil)
	iv, ct, tag, err := b.Seal(ctx, "both", []byte("secret data"), aad)
	require.NoError(t, err)
	assert.Len(t, iv, 12)
	assert.Len(t, ct, 11)
	assert.Len(t, tag, 16)
	pt, err := b.Open(ctx, "both", iv, ct, tag, aad)
	require.NoError(t, err)
	assert.Equal(t, "secret data", string(pt))
	_, err = b.Open(ctx, "both", iv, ct, tag, xks.AAD([]byte("ctY"), nil))
	assert.ErrorIs(t, err, xks.ErrInvalidCiphertext)

	// The token itself refuses what the attributes forbid (the proxy
	// checks first; this is the second line).
	_, _, _, err = b.Seal(ctx, "dec", []byte("x"), aad)
	assert.True(t, errors.Is(err, xks.ErrInvalidKeyUsage), "%v", err)
	_, err = b.Open(ctx, "enc", iv, ct, tag, aad)
	assert.True(t, errors.Is(err, xks.ErrInvalidKeyUsage), "%v", err)

	ks, err := Keys(tok)
	require.NoError(t, err)
	assert.Len(t, ks, 4)
}

// The keys are token objects: a reopened token has them.
func TestKeysPersist(t *testing.T) {
	store := softhsmtest.NewStore(t)
	require.NoError(t, store.InitToken("xks", softhsmtest.SOPIN, softhsmtest.UserPIN))
	tok, err := hsm.Open(store.TokenConfig("xks", softhsmtest.UserPIN))
	require.NoError(t, err)
	require.NoError(t, CreateKey(tok, "k1", Usage{true, true}))
	b, err := New(tok)
	require.NoError(t, err)
	iv, ct, tag, err := b.Seal(context.Background(), "k1", []byte("kept"), nil)
	require.NoError(t, err)
	require.NoError(t, tok.Close())

	tok, err = hsm.Open(store.TokenConfig("xks", softhsmtest.UserPIN))
	require.NoError(t, err)
	defer tok.Close()
	b, err = New(tok)
	require.NoError(t, err)
	pt, err := b.Open(context.Background(), "k1", iv, ct, tag, nil)
	require.NoError(t, err)
	assert.Equal(t, "kept", string(pt))
}

// The handler over the token, called by the client.
func TestHandlerOverToken(t *testing.T) {
	tok := softhsmtest.NewToken(t)
	require.NoError(t, CreateKey(tok, "k1", Usage{true, true}))
	b, err := New(tok)
	require.NoError(t, err)
	h, err := xks.NewHandler(xks.ServerConfig{URIPath: "/kms/xks/v1", Credentials: []xks.Credential{{AccessKeyID: "AKIAEXAMPLEEXAMPLE22", SecretAccessKey: "secret"}},
		Backend: b, Vendor: "Trent", Model: "test"})
	require.NoError(t, err)
	srv := httptest.NewTLSServer(h)
	defer srv.Close()
	c, err := xks.New(xks.Config{Endpoint: srv.URL, URIPath: "/kms/xks/v1", AccessKeyID: "AKIAEXAMPLEEXAMPLE22", SecretAccessKey: "secret", Region: "us-east-1",
		TLS: srv.Client().Transport.(*http.Transport).TLSClientConfig})
	require.NoError(t, err)
	md := xks.RequestMetadata{AWSPrincipalARN: "arn:aws:iam::1:root", KMSKeyARN: "arn:aws:kms:us-east-1:1:key/x", KMSOperation: "Encrypt", KMSRequestID: "r"}
	enc, err := c.Encrypt(context.Background(), "k1", xks.EncryptRequest{RequestMetadata: md, Plaintext: []byte("hello"), AdditionalAuthenticatedData: []byte("a"),
		CiphertextDataIntegrityValueAlgorithm: xks.CDIVSHA256})
	require.NoError(t, err)
	dec, err := c.Decrypt(context.Background(), "k1", xks.DecryptRequest{RequestMetadata: md, Ciphertext: enc.Ciphertext, AdditionalAuthenticatedData: []byte("a"),
		InitializationVector: enc.InitializationVector, AuthenticationTag: enc.AuthenticationTag})
	require.NoError(t, err)
	assert.Equal(t, "hello", string(dec.Plaintext))
}

// Encrypt and Decrypt through the whole proxy: client, TLS (kept-alive
// connections), SigV4, the handler, the token's AES-GCM.
func BenchmarkProxyRoundTrip(b *testing.B) {
	tok := softhsmtest.NewToken(b)
	require.NoError(b, CreateKey(tok, "k1", Usage{true, true}))
	be, err := New(tok)
	require.NoError(b, err)
	h, err := xks.NewHandler(xks.ServerConfig{URIPath: "/kms/xks/v1", Credentials: []xks.Credential{{AccessKeyID: "AKIAEXAMPLEEXAMPLE22", SecretAccessKey: "secret"}},
		Backend: be, Vendor: "Trent", Model: "bench"})
	require.NoError(b, err)
	srv := httptest.NewTLSServer(h)
	defer srv.Close()
	c, err := xks.New(xks.Config{Endpoint: srv.URL, URIPath: "/kms/xks/v1", AccessKeyID: "AKIAEXAMPLEEXAMPLE22", SecretAccessKey: "secret", Region: "us-east-1",
		TLS: srv.Client().Transport.(*http.Transport).TLSClientConfig})
	require.NoError(b, err)
	md := xks.RequestMetadata{AWSPrincipalARN: "arn:aws:iam::1:root", KMSKeyARN: "arn:aws:kms:us-east-1:1:key/x", KMSOperation: "Encrypt", KMSRequestID: "r"}
	pt := make([]byte, 32)
	b.ResetTimer()
	for b.Loop() {
		enc, err := c.Encrypt(context.Background(), "k1", xks.EncryptRequest{RequestMetadata: md, Plaintext: pt, AdditionalAuthenticatedData: []byte("a")})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Decrypt(context.Background(), "k1", xks.DecryptRequest{RequestMetadata: md, Ciphertext: enc.Ciphertext, AdditionalAuthenticatedData: []byte("a"),
			InitializationVector: enc.InitializationVector, AuthenticationTag: enc.AuthenticationTag}); err != nil {
			b.Fatal(err)
		}
	}
}
