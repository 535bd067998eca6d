package tokenstore_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/tokenstore"
)

func TestReadPINFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "pin")
	require.NoError(t, os.WriteFile(p, []byte("1234\n"), 0o600))
	pin, err := tokenstore.ReadPINFile(p)
	require.NoError(t, err)
	assert.Equal(t, "1234", pin)
	require.NoError(t, os.WriteFile(p, []byte("\n"), 0o600))
	_, err = tokenstore.ReadPINFile(p)
	require.Error(t, err)
}

// PINFor: the given PIN, else the file's, else a new one written to the
// file once (mode 0600) and read back the next time.
func TestPINFor(t *testing.T) {
	file := filepath.Join(t.TempDir(), "user.pin")
	pin, from, err := tokenstore.PINFor("given", file)
	require.NoError(t, err)
	assert.Equal(t, "given", pin)
	assert.Empty(t, from)
	assert.NoFileExists(t, file)

	made, from, err := tokenstore.PINFor("", file)
	require.NoError(t, err)
	assert.Equal(t, file, from)
	assert.Len(t, made, 32)
	fi, err := os.Stat(file)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	again, _, err := tokenstore.PINFor("", file)
	require.NoError(t, err)
	assert.Equal(t, made, again, "the file's PIN, not a new one")
}
