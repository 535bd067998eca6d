package node_test

import (
	"crypto/ecdsa"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/hsm"
	"github.com/trentkms/trent/hsm/node"
	"github.com/trentkms/trent/internal/wire"
	"github.com/trentkms/trent/tokenstore"
)

func TestInitIsIdempotent(t *testing.T) { eachModule(t, testInitIsIdempotent) }

func testInitIsIdempotent(t *testing.T, kind tokenstore.Kind) {
	dir := t.TempDir()
	first, err := node.Init(node.InitOptions{Dir: dir, Module: string(kind)})
	require.NoError(t, err)
	assert.True(t, first.TokenCreated)
	assert.True(t, first.IdentityCreated)
	assert.Equal(t, node.DefaultLabel, first.TokenLabel)
	assert.Equal(t, string(kind), first.ModuleKind)
	assert.Equal(t, filepath.Join(dir, node.UserPINFile), first.PINFile)

	files := []string{node.UserPINFile}
	if kind == tokenstore.SoftHSM {
		files = append(files, node.SOPINFile)
	} else {
		_, err := os.Stat(filepath.Join(dir, node.SOPINFile))
		assert.ErrorIs(t, err, os.ErrNotExist, "an NSS database has no SO PIN")
	}
	for _, f := range files {
		fi, err := os.Stat(filepath.Join(dir, f))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), f)
	}

	// The second Init finds the module from the data dir.
	second, err := node.Init(node.InitOptions{Dir: dir})
	require.NoError(t, err)
	assert.False(t, second.TokenCreated)
	assert.False(t, second.IdentityCreated)
	assert.Equal(t, first.Info, second.Info)

	pub, err := x509.ParsePKIXPublicKey(first.SigningPublicKey)
	require.NoError(t, err)
	assert.Equal(t, first.HSMID, wire.HSMID(pub.(*ecdsa.PublicKey)))
	_, err = x509.ParsePKIXPublicKey(first.AgreementPublicKey)
	require.NoError(t, err)

	// A data dir keeps its module.
	other := tokenstore.NSS
	if kind == tokenstore.NSS {
		other = tokenstore.SoftHSM
	}
	_, err = node.Init(node.InitOptions{Dir: dir, Module: string(other)})
	require.ErrorContains(t, err, "holds "+string(kind)+" tokens")
}

func TestInitWithGivenPINs(t *testing.T) { eachModule(t, testInitWithGivenPINs) }

func testInitWithGivenPINs(t *testing.T, kind tokenstore.Kind) {
	dir := t.TempDir()
	_, err := node.Init(node.InitOptions{Dir: dir, Label: "n1", PIN: "user-pin-1", SOPIN: "so-pin-12", Module: string(kind)})
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(dir, node.UserPINFile))
	assert.ErrorIs(t, err, os.ErrNotExist, "a given PIN is not written anywhere")

	_, err = node.Init(node.InitOptions{Dir: dir, Label: "n1", PIN: "another-pin", SOPIN: "so-pin-12"})
	require.ErrorIs(t, err, hsm.ErrPINIncorrect)
	assert.NotContains(t, err.Error(), "another-pin")
}

// A node opens on any PKCS#11 module given by path, its environment or
// initialisation string, a label and a PIN: here SoftHSM's and NSS's,
// configured by hand, without the data dir shorthand. The shorthand reads
// a provisioned data dir and writes nothing.
func TestOpenOnModuleConfig(t *testing.T) { eachModule(t, testOpenOnModuleConfig) }

func testOpenOnModuleConfig(t *testing.T, kind tokenstore.Kind) {
	dir := t.TempDir()
	res, err := node.Init(node.InitOptions{Dir: dir, Label: "mod", PIN: "user-pin-1", SOPIN: "so-pin-12", Module: string(kind)})
	require.NoError(t, err)
	store, err := tokenstore.Open("", dir, "")
	require.NoError(t, err)
	require.Equal(t, kind, store.Kind())
	mod, err := store.ModuleConfig()
	require.NoError(t, err)
	if kind == tokenstore.NSS {
		require.Contains(t, mod.InitArgs, "tokenDescription='mod'")
		require.Empty(t, mod.Env)
	} else {
		require.Empty(t, mod.InitArgs)
	}

	pinFile := filepath.Join(t.TempDir(), "pin")
	require.NoError(t, os.WriteFile(pinFile, []byte("user-pin-1\n"), 0o600))
	for name, opts := range map[string]node.Options{
		"module and PIN":      {Module: mod, Label: "mod", PIN: "user-pin-1"},
		"module and PIN file": {Module: hsm.ModuleConfig{Path: res.Module, Env: mod.Env, InitArgs: mod.InitArgs}, Label: "mod", PINFile: pinFile},
		"data dir":            {Dir: dir, Label: "mod", PIN: "user-pin-1"},
		"data dir and kind":   {Dir: dir, Kind: kind, Label: "mod", PIN: "user-pin-1"},
		"data dir and module": {Dir: dir, Module: hsm.ModuleConfig{Path: res.Module}, Label: "mod", PINFile: pinFile},
	} {
		n, err := node.Open(opts)
		require.NoError(t, err, name)
		assert.Equal(t, res.HSMID, n.ID(), name)
		require.NoError(t, n.Close(), name)
	}

	_, err = node.Open(node.Options{Label: "mod", PIN: "user-pin-1"})
	require.ErrorIs(t, err, node.ErrNoModule)
	_, err = node.Open(node.Options{Module: mod, Label: "mod"})
	require.ErrorContains(t, err, "no user PIN")

	fresh := filepath.Join(t.TempDir(), "not-provisioned")
	_, err = node.Open(node.Options{Dir: fresh})
	require.ErrorIs(t, err, tokenstore.ErrNotProvisioned)
	_, err = node.Open(node.Options{Dir: fresh, Kind: kind})
	require.Error(t, err)
	_, err = os.Stat(fresh)
	require.ErrorIs(t, err, os.ErrNotExist, "opening wrote to the data dir")
}
