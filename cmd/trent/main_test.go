package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func run(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRoot(&out, &errb)
	root.SetArgs(args)
	err = root.Execute()
	return out.String(), errb.String(), err
}

func TestHelpListsSubcommands(t *testing.T) {
	out, _, err := run(t, "--help")
	require.NoError(t, err)
	for _, sub := range []string{"hsm", "dev", "version"} {
		assert.Contains(t, out, "\n  "+sub+" ")
	}
	out, _, err = run(t, "hsm", "--help")
	require.NoError(t, err)
	assert.Contains(t, out, "init")
}

func TestHSMInit(t *testing.T) {
	dir := t.TempDir()
	out1, stderr, err := run(t, "hsm", "init", "--dir", dir)
	require.NoError(t, err)
	assert.Contains(t, stderr, filepath.Join(dir, "user.pin"))
	var info map[string]any
	require.NoError(t, json.Unmarshal([]byte(out1), &info))
	assert.ElementsMatch(t, []string{"hsm_id", "signing_public_key", "agreement_public_key", "token_label", "module"}, keys(info))
	assert.Equal(t, "trent-hsm", info["token_label"])
	for _, f := range []string{"softhsm2.conf", "tokens", "user.pin", "so.pin"} {
		_, err := os.Stat(filepath.Join(dir, f))
		assert.NoError(t, err, f)
	}

	out2, _, err := run(t, "hsm", "init", "--dir", dir)
	require.NoError(t, err)
	assert.Equal(t, out1, out2, "a second run reuses the token and keys")

	// PINs from a file and the environment.
	dir2 := t.TempDir()
	pinFile := filepath.Join(t.TempDir(), "pin")
	require.NoError(t, os.WriteFile(pinFile, []byte("file-pin-1234\n"), 0o600))
	t.Setenv("TRENT_HSM_SO_PIN", "env-so-pin-1234")
	_, _, err = run(t, "hsm", "init", "--dir", dir2, "--label", "other", "--pin-file", pinFile)
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(dir2, "user.pin"))
	assert.ErrorIs(t, err, os.ErrNotExist)
	require.NoError(t, os.WriteFile(pinFile, []byte("wrong-pin-1234\n"), 0o600))
	_, _, err = run(t, "hsm", "init", "--dir", dir2, "--label", "other", "--pin-file", pinFile)
	require.ErrorContains(t, err, "PIN incorrect")

	_, _, err = run(t, "hsm", "init")
	require.ErrorContains(t, err, `"dir" not set`)
}

func TestDev(t *testing.T) {
	dir := t.TempDir()
	out, stderr, err := run(t, "dev", "--dir", dir, "--hsms", "2")
	require.NoError(t, err)
	assert.Contains(t, stderr, "[1/2] HSM node hsm-1")
	assert.Contains(t, stderr, "[2/2] HSM node hsm-2")
	assert.Contains(t, out, "Started:")
	assert.Contains(t, out, "Not yet in this build")
	assert.Equal(t, 2, strings.Count(out, "(created)"))

	out, _, err = run(t, "--json", "dev", "--dir", dir, "--hsms", "2")
	require.NoError(t, err)
	var c struct {
		HSMs []struct {
			HSMID        string `json:"hsm_id"`
			TokenCreated bool   `json:"token_created"`
		} `json:"hsms"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &c))
	require.Len(t, c.HSMs, 2)
	assert.False(t, c.HSMs[0].TokenCreated)
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}
