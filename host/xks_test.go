package host_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/host"
	"github.com/trentkms/trent/hsm"
	"github.com/trentkms/trent/softhsm"
	"github.com/trentkms/trent/softhsm/softhsmtest"
	"github.com/trentkms/trent/xks"
	"github.com/trentkms/trent/xks/p11"
	"github.com/trentkms/trent/xksstore"
)

// lateHandler serves what is stored in it once the proxy's token exists.
type lateHandler struct{ h atomic.Pointer[http.Handler] }

func (l *lateHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*l.h.Load()).ServeHTTP(w, r)
}

// An external key store end to end: Trent's KMS (two hosts, the AWS SDK)
// using a real XKS proxy (package xks's handler over a SoftHSM token, over
// TLS): created after a health check, connected on both hosts, a key
// checked with GetKeyMetadata, ciphertexts that need the HSMs and the
// external key, and a stopped proxy answered KMSInvalidStateException,
// not a 5xx.
func TestExternalKeyStoreXKS(t *testing.T) {
	lh := &lateHandler{}
	srv := httptest.NewTLSServer(lh)
	defer srv.Close()
	tlsc := srv.Client().Transport.(*http.Transport).TLSClientConfig
	k := newKMSClusterWith(t, 2, 1, func(hc *host.Config) {
		hc.XKS = &xksstore.Proxies{Region: "eu-west-1", TLS: tlsc}
	})
	sh, err := softhsm.Open(k.hsmDir)
	require.NoError(t, err)
	require.NoError(t, sh.InitToken("xks-proxy", softhsmtest.SOPIN, softhsmtest.UserPIN))
	tok, err := hsm.Open(sh.TokenConfig("xks-proxy", softhsmtest.UserPIN))
	require.NoError(t, err)
	defer tok.Close()
	require.NoError(t, p11.CreateKey(tok, "ext-key-1", p11.Usage{Encrypt: true, Decrypt: true}))
	require.NoError(t, p11.CreateKey(tok, "encrypt-only", p11.Usage{Encrypt: true}))
	b, err := p11.New(tok)
	require.NoError(t, err)
	defer b.Close()
	cred, err := xks.NewCredential()
	require.NoError(t, err)
	const path = "/example/kms/xks/v1"
	h, err := xks.NewHandler(xks.ServerConfig{URIPath: path, Credentials: []xks.Credential{cred}, Backend: b, Vendor: "Trent", Model: "test"})
	require.NoError(t, err)
	var hh http.Handler = h
	lh.h.Store(&hh)

	ctx := context.Background()
	leader, follower := k.client(0, 0), k.client(1, 0)
	in := func(secret string) *kms.CreateCustomKeyStoreInput {
		return &kms.CreateCustomKeyStoreInput{CustomKeyStoreName: aws.String("ext"), CustomKeyStoreType: types.CustomKeyStoreTypeExternalKeyStore,
			XksProxyUriEndpoint: aws.String(srv.URL), XksProxyUriPath: aws.String(path), XksProxyConnectivity: types.XksProxyConnectivityTypePublicEndpoint,
			XksProxyAuthenticationCredential: &types.XksProxyAuthenticationCredentialType{AccessKeyId: aws.String(cred.AccessKeyID), RawSecretAccessKey: aws.String(secret)}}
	}
	_, err = follower.CreateCustomKeyStore(ctx, in("wrongwrongwrongwrongwrongwrongwrongwrongwro"))
	assert.Equal(t, "XksProxyIncorrectAuthenticationCredentialException", apiCode(t, err))
	out, err := follower.CreateCustomKeyStore(ctx, in(cred.SecretAccessKey))
	require.NoError(t, err)
	id := *out.CustomKeyStoreId
	_, err = leader.ConnectCustomKeyStore(ctx, &kms.ConnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)})
	require.NoError(t, err)
	for _, cl := range []*kms.Client{leader, follower} {
		e := waitState(t, cl, id)
		require.Equal(t, types.ConnectionStateTypeConnected, e.ConnectionState, "%+v", e)
		assert.Equal(t, srv.URL, *e.XksProxyConfiguration.UriEndpoint)
	}

	_, err = leader.CreateKey(ctx, &kms.CreateKeyInput{Origin: types.OriginTypeExternalKeyStore, CustomKeyStoreId: aws.String(id), XksKeyId: aws.String("missing")})
	assert.Equal(t, "XksKeyNotFoundException", apiCode(t, err))
	_, err = leader.CreateKey(ctx, &kms.CreateKeyInput{Origin: types.OriginTypeExternalKeyStore, CustomKeyStoreId: aws.String(id), XksKeyId: aws.String("encrypt-only")})
	assert.Equal(t, "XksKeyInvalidConfigurationException", apiCode(t, err))
	md := k.createKey(t, follower, &kms.CreateKeyInput{Origin: types.OriginTypeExternalKeyStore, CustomKeyStoreId: aws.String(id), XksKeyId: aws.String("ext-key-1")})
	assert.Equal(t, "ext-key-1", *md.XksKeyConfiguration.Id)

	ec := map[string]string{"tenant": "a"}
	enc, err := follower.Encrypt(ctx, &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("held outside"), EncryptionContext: ec})
	require.NoError(t, err)
	dec, err := leader.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
	require.NoError(t, err)
	assert.Equal(t, "held outside", string(dec.Plaintext))
	_, err = leader.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: map[string]string{"tenant": "b"}})
	assert.Equal(t, "InvalidCiphertextException", apiCode(t, err))
	gdk, err := leader.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: md.KeyId, KeySpec: types.DataKeySpecAes256})
	require.NoError(t, err)
	dec, err = follower.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: gdk.CiphertextBlob})
	require.NoError(t, err)
	assert.Equal(t, gdk.Plaintext, dec.Plaintext)

	// A stopped proxy: KMSInvalidStateException, not a 5xx (the SDK
	// would retry a 5xx), on both hosts; connecting again fails with
	// XKS_PROXY_NOT_REACHABLE.
	srv.Close()
	for _, cl := range []*kms.Client{leader, follower} {
		_, err = cl.Encrypt(ctx, &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("x")})
		assert.Equal(t, "KMSInvalidStateException", apiCode(t, err))
		_, err = cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
		assert.Equal(t, "KMSInvalidStateException", apiCode(t, err))
	}
	_, err = leader.DisconnectCustomKeyStore(ctx, &kms.DisconnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)})
	require.NoError(t, err)
	_, err = leader.ConnectCustomKeyStore(ctx, &kms.ConnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)})
	require.NoError(t, err)
	e := waitState(t, follower, id)
	assert.Equal(t, types.ConnectionStateTypeFailed, e.ConnectionState)
	assert.Equal(t, types.ConnectionErrorCodeTypeXksProxyNotReachable, e.ConnectionErrorCode)
}
