package hsm_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/hsm"
	"github.com/trentkms/trent/softhsm/softhsmtest"
)

// The ML-KEM seed is made once, sealed under a token AES key, and comes
// back the same from a reopened token; its plaintext is in no file of the
// data dir; a damaged sealed seed is reported, not used.
func TestKEMSeedSealedInToken(t *testing.T) {
	store := softhsmtest.NewStore(t)
	tok := softhsmtest.OpenToken(t, store, "kem")
	_, err := tok.KEMSeed()
	require.ErrorIs(t, err, hsm.ErrObjectNotFound)
	seed, created, err := tok.EnsureKEMSeed()
	require.NoError(t, err)
	require.True(t, created)
	require.Len(t, seed, hsm.KEMSeedSize)
	again, created, err := tok.EnsureKEMSeed()
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, seed, again)

	reopened, err := hsm.Open(store.TokenConfig("kem", softhsmtest.UserPIN))
	require.NoError(t, err)
	got, err := reopened.KEMSeed()
	require.NoError(t, err)
	assert.Equal(t, seed, got, "the seed survives a restart")
	require.NoError(t, reopened.Close())

	require.NoError(t, filepath.WalkDir(store.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(data, seed[:16]) {
			t.Errorf("%s holds the ML-KEM seed in plaintext", path)
		}
		return nil
	}))

	sealed, err := tok.ReadData(hsm.KEMSeedLabel)
	require.NoError(t, err)
	sealed[len(sealed)-1] ^= 1
	_, err = tok.WriteData(hsm.KEMSeedLabel, "trent", sealed)
	require.NoError(t, err)
	_, err = tok.KEMSeed()
	assert.True(t, errors.Is(err, hsm.ErrKEMSeedDamaged), "%v", err)
	_, _, err = tok.EnsureKEMSeed()
	assert.True(t, errors.Is(err, hsm.ErrKEMSeedDamaged), "a damaged seed is not replaced silently: %v", err)
}
