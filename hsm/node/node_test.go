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
)

func TestInitIsIdempotent(t *testing.T) {
	dir := t.TempDir()
	first, err := node.Init(node.InitOptions{Dir: dir})
	require.NoError(t, err)
	assert.True(t, first.TokenCreated)
	assert.True(t, first.IdentityCreated)
	assert.Equal(t, node.DefaultLabel, first.TokenLabel)
	assert.Equal(t, filepath.Join(dir, node.UserPINFile), first.PINFile)

	for _, f := range []string{node.UserPINFile, node.SOPINFile} {
		fi, err := os.Stat(filepath.Join(dir, f))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), f)
	}

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
}

func TestInitWithGivenPINs(t *testing.T) {
	dir := t.TempDir()
	_, err := node.Init(node.InitOptions{Dir: dir, Label: "n1", PIN: "user-pin-1", SOPIN: "so-pin-12"})
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(dir, node.UserPINFile))
	assert.ErrorIs(t, err, os.ErrNotExist, "a given PIN is not written anywhere")

	_, err = node.Init(node.InitOptions{Dir: dir, Label: "n1", PIN: "another-pin", SOPIN: "so-pin-12"})
	require.ErrorIs(t, err, hsm.ErrPINIncorrect)
	assert.NotContains(t, err.Error(), "another-pin")
}

func TestReadPINFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "pin")
	require.NoError(t, os.WriteFile(p, []byte("1234\n"), 0o600))
	pin, err := node.ReadPINFile(p)
	require.NoError(t, err)
	assert.Equal(t, "1234", pin)
	require.NoError(t, os.WriteFile(p, []byte("\n"), 0o600))
	_, err = node.ReadPINFile(p)
	require.Error(t, err)
}
