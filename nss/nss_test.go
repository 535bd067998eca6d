package nss_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/hsm"
	"github.com/trentkms/trent/nss"
	"github.com/trentkms/trent/tokenstore"
	"github.com/trentkms/trent/tokenstore/storetest"
)

func TestCreateOpenAndInitArgs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	_, err := nss.OpenWithModule(dir, "/x.so")
	require.ErrorIs(t, err, nss.ErrNotProvisioned)
	s, err := nss.CreateWithModule(dir, "/x.so")
	require.NoError(t, err)
	fi, err := os.Stat(s.DBDir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	again, err := nss.CreateWithModule(dir, "/x.so")
	require.NoError(t, err)
	assert.Equal(t, s, again)
	opened, err := nss.OpenWithModule(dir, "/x.so")
	require.NoError(t, err)
	assert.Equal(t, s, opened)
	assert.True(t, nss.IsDataDir(dir))

	args, err := s.InitArgs()
	require.NoError(t, err)
	assert.Equal(t, "configdir='' certPrefix='' keyPrefix='' secmod='' flags='noCertDB,noKeyDB,noModDB' tokens=<>", args)
	for _, l := range []string{"b", "a", ".hidden", "not a label"} {
		require.NoError(t, os.Mkdir(filepath.Join(s.DBDir, l), 0o700))
	}
	require.NoError(t, os.WriteFile(filepath.Join(s.DBDir, "file"), nil, 0o600))
	labels, err := s.Labels()
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, labels, "directories with token labels only, sorted")
	args, err = s.InitArgs()
	require.NoError(t, err)
	assert.Equal(t, "configdir='' certPrefix='' keyPrefix='' secmod='' flags='noCertDB,noKeyDB,noModDB' tokens=<"+
		"0x4=[configdir='sql:"+s.DBDir+"/a' certPrefix='' keyPrefix='' tokenDescription='a' slotDescription='trent a'] "+
		"0x5=[configdir='sql:"+s.DBDir+"/b' certPrefix='' keyPrefix='' tokenDescription='b' slotDescription='trent b']>", args)
	mod, err := s.ModuleConfig()
	require.NoError(t, err)
	assert.Equal(t, hsm.ModuleConfig{Path: "/x.so", InitArgs: args}, mod)

	for i := range nss.MaxTokens - 1 {
		require.NoError(t, os.Mkdir(filepath.Join(s.DBDir, "t"+strings.Repeat("x", i%30)+string(rune('a'+i/30))), 0o700))
	}
	_, err = s.InitArgs()
	require.ErrorContains(t, err, "more than the 96")
}

func TestRefusedPathsAndLabels(t *testing.T) {
	for _, p := range []string{"a'b", "a]b", "a<b", `a\b`, "a\nb"} {
		_, err := nss.CreateWithModule(filepath.Join(t.TempDir(), p), "/x.so")
		require.Error(t, err, "%q", p)
	}
	for _, l := range []string{"", ".x", "a b", "a'", strings.Repeat("a", 33), "é"} {
		require.Error(t, nss.CheckLabel(l), "%q", l)
	}
	for _, l := range []string{"a", "hsm-1", "A.b_c", strings.Repeat("a", 32)} {
		require.NoError(t, nss.CheckLabel(l), "%q", l)
	}
}

// A token made here is an NSS database with its user PIN set: the PIN
// opens it, another does not, and a second InitToken finds it.
func TestInitToken(t *testing.T) {
	e := storetest.New(t, tokenstore.NSS)
	e.InitToken(t, "tok")
	assert.FileExists(t, filepath.Join(e.Dir(), "nssdb", "tok", "key4.db"))
	created, err := e.EnsureToken("tok", "", "other")
	require.NoError(t, err)
	assert.False(t, created)
	_, err = hsm.Open(e.Config(t, "tok", "other"))
	require.ErrorIs(t, err, hsm.ErrPINIncorrect)
	tok, err := hsm.Open(e.Config(t, "tok", storetest.UserPIN))
	require.NoError(t, err)
	require.NoError(t, tok.Close())

	s, err := nss.Open(e.Dir())
	require.NoError(t, err)
	require.Error(t, s.InitToken("bad label", "pin"))
	require.Error(t, s.InitToken("ok", ""), "an empty PIN")
}

// The databases NSS writes hold neither the PIN nor a record's value in
// the clear: the domain anchor's stand-in key is encrypted under the PIN.
func TestDatabaseHoldsNoPlaintext(t *testing.T) {
	e := storetest.New(t, tokenstore.NSS)
	tok := e.NewToken(t)
	_, _, err := tok.EnsureIdentity()
	require.NoError(t, err)
	marker := []byte(strings.Repeat("A", 64))
	_, err = tok.WriteData("trent domain anchor", "trent", marker)
	require.NoError(t, err)
	got, err := tok.ReadData("trent domain anchor")
	require.NoError(t, err)
	require.Equal(t, marker, got)
	require.NoError(t, tok.Close())
	n := 0
	err = filepath.Walk(e.Dir(), func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		n++
		assert.NotContains(t, string(b), string(marker[:32]), p)
		assert.NotContains(t, string(b), storetest.UserPIN, p)
		return nil
	})
	require.NoError(t, err)
	assert.Positive(t, n)
}
