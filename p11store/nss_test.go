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
	"github.com/trentkms/trent/tokenstore"
	"github.com/trentkms/trent/tokenstore/storetest"
)

// The key store on a customer token in NSS's softoken, configured as any
// module is (its path and its C_Initialize string): the same checks as on
// SoftHSM. The store's code knows nothing of NSS.
func TestTokenStoreOnNSS(t *testing.T) {
	e := storetest.New(t, tokenstore.NSS)
	// NSS reads the list of its tokens when the module starts: both are
	// made before either is opened.
	_, err := e.EnsureToken("customer", "", "kmsuser-pin")
	require.NoError(t, err)
	e.InitToken(t, "other")
	mod := e.Module(t)
	require.NotEmpty(t, mod.InitArgs)
	// Another token of the same module stays open meanwhile, as on a host
	// whose HSM shares the module.
	other, err := hsm.Open(e.Config(t, "other", storetest.UserPIN))
	require.NoError(t, err)
	defer other.Close()

	ctx := context.Background()
	s := &p11store.Stores{Modules: map[string]hsm.ModuleConfig{mod.Path: mod}}
	require.NoError(t, s.Check(ctx, mod.Path, "customer"))
	assert.ErrorIs(t, s.Check(ctx, mod.Path, "absent"), kms.ErrStoreTokenNotFound)
	code := func(cfg kms.TokenConfig) string {
		_, err := s.Connect(ctx, cfg)
		var se *kms.StoreError
		require.True(t, errors.As(err, &se), "%v", err)
		return se.Code
	}
	assert.Equal(t, kms.CodeInvalidCredentials, code(kms.TokenConfig{ModulePath: mod.Path, TokenLabel: "customer", PIN: []byte("wrong-pin")}))
	assert.Equal(t, kms.CodeClusterNotFound, code(kms.TokenConfig{ModulePath: mod.Path, TokenLabel: "absent", PIN: []byte("kmsuser-pin")}))

	ts, err := s.Connect(ctx, kms.TokenConfig{ModulePath: mod.Path, TokenLabel: "customer", PIN: []byte("kmsuser-pin")})
	require.NoError(t, err)
	require.NoError(t, ts.CreateKey(ctx, kid))
	assert.ErrorIs(t, ts.CreateKey(ctx, kid), kms.ErrStoreKeyExists)
	const kid2 = "22222222-12ab-34cd-56ef-1234567890ab"
	require.NoError(t, ts.CreateKey(ctx, kid2))
	aad := []byte("aad")
	iv, ct, err := ts.Encrypt(ctx, kid, aad, []byte("hello"))
	require.NoError(t, err)
	assert.Len(t, iv, 12)
	pt, err := ts.Decrypt(ctx, kid, iv, aad, ct)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(pt))
	_, err = ts.Decrypt(ctx, kid, iv, []byte("other"), ct)
	assert.ErrorIs(t, err, kms.ErrRefused)
	_, err = ts.Decrypt(ctx, kid2, iv, aad, ct)
	assert.ErrorIs(t, err, kms.ErrRefused, "another key of the store does not open it")
	_, _, err = ts.Encrypt(ctx, "absent-key", aad, []byte("x"))
	assert.ErrorIs(t, err, kms.ErrStoreKeyNotFound)
	r, err := ts.Random(ctx, 40)
	require.NoError(t, err)
	assert.Len(t, r, 40)
	require.NoError(t, ts.Close())

	// The keys are token objects in the NSS database: a new connection
	// finds them, and their values cannot be read.
	ts, err = s.Connect(ctx, kms.TokenConfig{ModulePath: mod.Path, TokenLabel: "customer", PIN: []byte("kmsuser-pin")})
	require.NoError(t, err)
	defer ts.Close()
	pt, err = ts.Decrypt(ctx, kid, iv, aad, ct)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(pt))
	assert.False(t, bytes.Contains(ct, []byte("hello")))
	tok, err := hsm.Open(e.Config(t, "customer", "kmsuser-pin"))
	require.NoError(t, err)
	defer tok.Close()
	k, _, err := tok.PersistentAESKey(kid)
	require.NoError(t, err)
	info, err := k.Attributes()
	require.NoError(t, err)
	assert.Equal(t, hsm.KeyAttributes{Token: true, Private: true, Sensitive: true, Extractable: false,
		AlwaysSensitive: true, NeverExtractable: true, ValueLen: 32}, info)
}
