package tokenstore_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/tokenstore"
	"github.com/trentkms/trent/tokenstore/storetest"
)

func TestParseModule(t *testing.T) {
	for in, want := range map[string][2]string{
		"":                 {"", ""},
		"softhsm":          {"softhsm", ""},
		"nss":              {"nss", ""},
		"nss:/lib/x.so":    {"nss", "/lib/x.so"},
		"softhsm:/lib/y":   {"softhsm", "/lib/y"},
		"/usr/lib/z.so":    {"", "/usr/lib/z.so"},
		"nssx":             {"", "nssx"},
		"relative/path.so": {"", "relative/path.so"},
	} {
		k, p, err := tokenstore.ParseModule(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, [2]string{string(k), p}, in)
	}
	_, _, err := tokenstore.ParseModule("nss:")
	require.Error(t, err)
}

func TestDetectAndCreate(t *testing.T) {
	for _, kind := range tokenstore.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			storetest.RequireModule(t, kind)
			dir := t.TempDir()
			_, err := tokenstore.Detect(dir)
			require.ErrorIs(t, err, tokenstore.ErrNotProvisioned)
			_, err = tokenstore.Open("", dir, "")
			require.ErrorIs(t, err, tokenstore.ErrNotProvisioned)
			s, err := tokenstore.Create(kind, dir, "")
			require.NoError(t, err)
			assert.Equal(t, kind, s.Kind())
			got, err := tokenstore.Detect(dir)
			require.NoError(t, err)
			assert.Equal(t, kind, got)
			o, err := tokenstore.Open("", dir, "")
			require.NoError(t, err)
			assert.Equal(t, s, o)
			for _, other := range tokenstore.Kinds {
				if other != kind {
					_, err := tokenstore.Create(other, dir, "")
					require.ErrorContains(t, err, "holds "+string(kind)+" tokens")
				}
			}
		})
	}
	storetest.RequireModule(t, tokenstore.NSS)
	both := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(both, "softhsm2.conf"), nil, 0o600))
	require.NoError(t, os.Mkdir(filepath.Join(both, "nssdb"), 0o700))
	_, err := tokenstore.Detect(both)
	require.ErrorContains(t, err, "both")
	_, err = tokenstore.Create("pkcs15", t.TempDir(), "")
	require.ErrorContains(t, err, "unknown module kind")
}
