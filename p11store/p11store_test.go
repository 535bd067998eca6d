package p11store_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/hsm"
	"github.com/trentkms/trent/kms"
	"github.com/trentkms/trent/p11store"
	"github.com/trentkms/trent/softhsm"
	"github.com/trentkms/trent/softhsm/softhsmtest"
)

const kid = "1234abcd-12ab-34cd-56ef-1234567890ab"

// A store on a real SoftHSM token: Check, Connect with the right and a
// wrong PIN, a key made in the token as a sensitive, non-extractable
// token object labelled with the key ID, found again after a reconnect.
func TestTokenStore(t *testing.T) {
	sh := softhsmtest.NewStore(t)
	require.NoError(t, sh.InitToken("customer", softhsmtest.SOPIN, "kmsuser-pin"))
	// Another token of the same module stays open meanwhile, so that the
	// module is not finalised between connections (as on a host with
	// HSMs in the same process).
	softhsmtest.OpenToken(t, sh, "other")
	ctx := context.Background()
	s := &p11store.Stores{Modules: map[string]hsm.ModuleConfig{"/allowed.so": sh.ModuleConfig()}}

	require.NoError(t, s.Check(ctx, "/allowed.so", "customer"))
	assert.ErrorIs(t, s.Check(ctx, "/other.so", "customer"), kms.ErrStoreModule)
	assert.ErrorIs(t, s.Check(ctx, "/allowed.so", "absent"), kms.ErrStoreTokenNotFound)

	code := func(cfg kms.TokenConfig) string {
		_, err := s.Connect(ctx, cfg)
		var se *kms.StoreError
		require.True(t, errors.As(err, &se), "%v", err)
		return se.Code
	}
	assert.Equal(t, kms.CodeInvalidCredentials, code(kms.TokenConfig{ModulePath: "/allowed.so", TokenLabel: "customer", PIN: []byte("wrong-pin")}))
	assert.Equal(t, kms.CodeClusterNotFound, code(kms.TokenConfig{ModulePath: "/allowed.so", TokenLabel: "absent", PIN: []byte("kmsuser-pin")}))
	assert.Equal(t, kms.CodeNetworkErrors, code(kms.TokenConfig{ModulePath: "/other.so", TokenLabel: "customer", PIN: []byte("kmsuser-pin")}))
	bad := &p11store.Stores{Modules: map[string]hsm.ModuleConfig{"/missing.so": {Path: "/nonexistent/libpkcs11.so"}}}
	_, err := bad.Connect(ctx, kms.TokenConfig{ModulePath: "/missing.so", TokenLabel: "customer", PIN: []byte("kmsuser-pin")})
	var se *kms.StoreError
	require.True(t, errors.As(err, &se))
	assert.Equal(t, kms.CodeNetworkErrors, se.Code)

	ts, err := s.Connect(ctx, kms.TokenConfig{ModulePath: "/allowed.so", TokenLabel: "customer", PIN: []byte("kmsuser-pin")})
	require.NoError(t, err)
	require.NoError(t, ts.CreateKey(ctx, kid))
	assert.ErrorIs(t, ts.CreateKey(ctx, kid), kms.ErrStoreKeyExists)
	aad := []byte("aad")
	iv, ct, err := ts.Encrypt(ctx, kid, aad, []byte("hello"))
	require.NoError(t, err)
	assert.Len(t, iv, 12)
	pt, err := ts.Decrypt(ctx, kid, iv, aad, ct)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(pt))
	_, err = ts.Decrypt(ctx, kid, iv, []byte("other"), ct)
	assert.ErrorIs(t, err, kms.ErrRefused)
	_, _, err = ts.Encrypt(ctx, "absent-key", aad, []byte("x"))
	assert.ErrorIs(t, err, kms.ErrStoreKeyNotFound)
	r, err := ts.Random(ctx, 40)
	require.NoError(t, err)
	assert.Len(t, r, 40)
	require.NoError(t, ts.Close())
	_, _, err = ts.Encrypt(ctx, kid, aad, []byte("x"))
	assert.ErrorIs(t, err, kms.ErrStoreUnavailable, "a closed connection is unavailable, not a refusal")

	// The key is a token object: a new connection finds it, and its value
	// cannot be read.
	ts, err = s.Connect(ctx, kms.TokenConfig{ModulePath: "/allowed.so", TokenLabel: "customer", PIN: []byte("kmsuser-pin")})
	require.NoError(t, err)
	defer ts.Close()
	pt, err = ts.Decrypt(ctx, kid, iv, aad, ct)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(pt))
	assertSensitive(t, sh, kid)
	assert.False(t, bytes.Contains(ct, []byte("hello")))
}

// assertSensitive opens the customer token a second time and checks the
// key's attributes: a token object, private, sensitive and never
// extractable, 32 bytes.
func assertSensitive(t *testing.T, sh *softhsm.Store, label string) {
	t.Helper()
	tok, err := hsm.Open(sh.TokenConfig("customer", "kmsuser-pin"))
	require.NoError(t, err)
	defer tok.Close()
	k, _, err := tok.PersistentAESKey(label)
	require.NoError(t, err)
	info, err := k.Attributes()
	require.NoError(t, err)
	assert.Equal(t, hsm.KeyAttributes{Token: true, Private: true, Sensitive: true, Extractable: false,
		AlwaysSensitive: true, NeverExtractable: true, ValueLen: 32}, info)
}
