package softhsm_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/hsm"
	"github.com/trentkms/trent/softhsm"
	"github.com/trentkms/trent/softhsm/softhsmtest"
)

func TestFindModuleOverride(t *testing.T) {
	fake := filepath.Join(t.TempDir(), "libvendor.so")
	require.NoError(t, os.WriteFile(fake, nil, 0o600))
	t.Setenv(softhsm.EnvModule, fake)
	got, err := softhsm.FindModule()
	require.NoError(t, err)
	assert.Equal(t, fake, got)

	t.Setenv(softhsm.EnvModule, filepath.Join(t.TempDir(), "absent.so"))
	_, err = softhsm.FindModule()
	require.ErrorIs(t, err, hsm.ErrModuleNotFound)
}

func TestFindModuleDefault(t *testing.T) {
	t.Setenv(softhsm.EnvModule, "")
	got, err := softhsm.FindModule()
	require.NoError(t, err, "make deps installs SoftHSM2")
	assert.Contains(t, softhsm.ModulePaths, got)
}

func TestCreateWritesConf(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s, err := softhsm.Create(dir)
	require.NoError(t, err)
	conf, err := os.ReadFile(s.ConfPath)
	require.NoError(t, err)
	assert.Contains(t, string(conf), "directories.tokendir = "+filepath.Join(dir, "tokens")+"\n")
	assert.Contains(t, string(conf), "objectstore.backend = file\n")
	fi, err := os.Stat(s.TokenDir)
	require.NoError(t, err)
	assert.True(t, fi.IsDir())
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	fi, err = os.Stat(s.ConfPath)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	assert.Equal(t, []string{softhsm.EnvConf + "=" + s.ConfPath}, s.ModuleConfig().Env)

	for _, bad := range []string{"bad\ndir", "a=b", "a#b"} {
		_, err = softhsm.Create(filepath.Join(t.TempDir(), bad))
		require.ErrorContains(t, err, "SoftHSM cannot use", bad)
	}
}

// Several tokens in one data dir, used at once through one module instance:
// how one process runs several HSM nodes.
func TestManyTokensOneProcess(t *testing.T) {
	s := softhsmtest.NewStore(t)
	var ids []string
	for _, label := range []string{"hsm-1", "hsm-2", "hsm-3"} {
		tok := softhsmtest.OpenToken(t, s, label)
		id, created, err := tok.EnsureIdentity()
		require.NoError(t, err)
		require.True(t, created)
		ids = append(ids, id.ID())
	}
	assert.Len(t, ids, 3)
	assert.NotEqual(t, ids[0], ids[1])
	assert.NotEqual(t, ids[1], ids[2])
	entries, err := os.ReadDir(s.TokenDir)
	require.NoError(t, err)
	assert.Len(t, entries, 3, "one token directory per token")

	created, err := s.EnsureToken("hsm-1", softhsmtest.SOPIN, softhsmtest.UserPIN)
	require.NoError(t, err)
	assert.False(t, created, "EnsureToken reuses an existing token")
}

// The token files SoftHSM writes never hold a private value in the clear.
func TestTokenFilesHoldNoPlaintextKeys(t *testing.T) {
	s := softhsmtest.NewStore(t)
	tok := softhsmtest.OpenToken(t, s, "node")
	_, _, err := tok.EnsureIdentity()
	require.NoError(t, err)
	secret := []byte(strings.Repeat("K", 32))
	_, err = tok.ImportSecretKey(hsm.AES256, secret)
	require.NoError(t, err)
	err = filepath.Walk(s.Dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		assert.NotContains(t, string(b), string(secret), p)
		assert.NotContains(t, string(b), softhsmtest.UserPIN, p)
		return nil
	})
	require.NoError(t, err)
}

// Open reads a data dir Create made and writes nothing; a dir Create did not
// make is refused.
func TestOpenExisting(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	_, err := softhsm.Open(dir)
	require.ErrorIs(t, err, softhsm.ErrNotProvisioned)
	_, err = os.Stat(dir)
	require.ErrorIs(t, err, os.ErrNotExist, "Open made the data dir")

	made, err := softhsm.Create(dir)
	require.NoError(t, err)
	require.NoError(t, os.Chmod(made.ConfPath, 0o400))
	before, err := os.Stat(made.ConfPath)
	require.NoError(t, err)
	got, err := softhsm.Open(dir)
	require.NoError(t, err)
	assert.Equal(t, made, got)
	after, err := os.Stat(made.ConfPath)
	require.NoError(t, err)
	assert.Equal(t, before.ModTime(), after.ModTime(), "Open rewrote the configuration")

	other, err := softhsm.OpenWithModule(dir, "/opt/vendor/libsofthsm2.so")
	require.NoError(t, err)
	assert.Equal(t, "/opt/vendor/libsofthsm2.so", other.ModuleConfig().Path)
	assert.Equal(t, made.ModuleConfig().Env, other.ModuleConfig().Env)
}
