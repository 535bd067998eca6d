package main

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"github.com/trentkms/trent/internal/syncbuf"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/hsm/node"
	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/internal/wire"
	"github.com/trentkms/trent/session"
	"github.com/trentkms/trent/softhsm"
)

// TestMain lets this test binary stand in for trent when a test's `trent
// dev` starts its HSM nodes and service hosts as processes (os.Executable
// is the test binary): a child started with TRENT_TEST_AS_TRENT=1 in its
// environment runs trent's main on its arguments.
func TestMain(m *testing.M) {
	if os.Getenv("TRENT_TEST_AS_TRENT") == "1" {
		main()
		os.Exit(0)
	}
	os.Setenv("TRENT_TEST_AS_TRENT", "1") // for the children, not this process
	os.Exit(m.Run())
}

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
	assert.ElementsMatch(t, []string{"hsm_id", "signing_public_key", "agreement_public_key", "kem_public_key", "token_label", "module", "module_kind"}, keys(info))
	assert.Equal(t, "softhsm", info["module_kind"])
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
	out, stderr, err := run(t, "dev", "--dir", dir, "--hsms", "2", "--hosts", "0", "--listen", "127.0.0.1:0", "--kms-listen", "127.0.0.1:0", "--once")
	require.NoError(t, err)
	assert.Contains(t, stderr, "[1/2] HSM node hsm-1")
	assert.Contains(t, stderr, "[2/2] HSM node hsm-2")
	assert.Contains(t, stderr, "genesis: CreateDomain")
	assert.Contains(t, out, "Started:")
	assert.Contains(t, out, "The KMS API serves every operation of AWS KMS's API model")
	assert.Contains(t, out, "Processes (logs in")
	assert.Equal(t, 2, strings.Count(out, "created"))
	assert.Equal(t, 2, strings.Count(out, "first ping "))

	out, _, err = run(t, "--json", "dev", "--dir", dir, "--hsms", "2", "--hosts", "0", "--listen", "127.0.0.1:0", "--kms-listen", "127.0.0.1:0", "--once")
	require.NoError(t, err)
	var c struct {
		HSMs []struct {
			HSMID        string `json:"hsm_id"`
			TokenCreated bool   `json:"token_created"`
			URL          string `json:"url"`
		} `json:"hsms"`
		Checks []struct {
			HSM string `json:"hsm"`
		} `json:"checks"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &c))
	require.Len(t, c.HSMs, 2)
	assert.False(t, c.HSMs[0].TokenCreated)
	require.Len(t, c.Checks, 2)
	assert.Equal(t, c.HSMs[1].HSMID, c.Checks[1].HSM)
}

func TestHSMServe(t *testing.T) {
	dir := t.TempDir()
	out, _, err := run(t, "hsm", "init", "--dir", dir)
	require.NoError(t, err)
	var info struct {
		HSMID              string `json:"hsm_id"`
		SigningPublicKey   []byte `json:"signing_public_key"`
		AgreementPublicKey []byte `json:"agreement_public_key"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &info))
	member, err := domain.ParseMember(info.HSMID, info.SigningPublicKey, info.AgreementPublicKey)
	require.NoError(t, err)
	hostKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	view := &domain.View{Name: "solo", Version: 1,
		Operators: []session.Operator{{ID: "host-1", Key: &hostKey.PublicKey, Roles: []string{session.RoleServiceHost}}},
		Members:   []session.Member{member}}
	data, err := view.Marshal()
	require.NoError(t, err)
	viewFile := filepath.Join(t.TempDir(), "domain.json")
	require.NoError(t, os.WriteFile(viewFile, data, 0o600))

	dirView, err := view.Directory()
	require.NoError(t, err)
	serveAndPing := func(args ...string) {
		t.Helper()
		var stdout, stderr syncbuf.Buffer
		root := newRoot(&stdout, &stderr)
		root.SetArgs(append([]string{"hsm", "serve", "--domain", viewFile, "--listen", "127.0.0.1:0"}, args...))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- root.ExecuteContext(ctx) }()
		var addr string
		require.Eventually(t, func() bool {
			_, rest, ok := strings.Cut(stderr.String(), "serving on ")
			addr, _, _ = strings.Cut(rest, "\n")
			return ok && strings.Contains(rest, "\n")
		}, 10*time.Second, 10*time.Millisecond, "stderr: %s", &stderr)

		c, err := session.NewClient(session.ClientConfig{
			Host: &session.Host{ID: "host-1", Signer: hostKey, Dir: dirView},
			URLs: []string{"http://" + addr},
		})
		require.NoError(t, err)
		got, err := c.Do(ctx, uint16(hsmcmd.Ping), []byte("hello"))
		require.NoError(t, err)
		assert.Equal(t, []byte("hello"), got)
		c.Close()
		cancel()
		require.NoError(t, <-done)
	}
	serveAndPing("--dir", dir)

	// The same token opened as any PKCS#11 module's: by path, with the
	// environment the module reads and a PIN file, no data dir.
	module, err := softhsm.FindModule()
	require.NoError(t, err)
	serveAndPing("--module", module, "--module-env", softhsm.EnvConf+"="+filepath.Join(dir, "softhsm2.conf"),
		"--pin-file", filepath.Join(dir, node.UserPINFile), "--label", node.DefaultLabel)
	_, _, err = run(t, "hsm", "serve", "--domain", viewFile, "--listen", "127.0.0.1:0")
	require.ErrorContains(t, err, "at least one of the flags in the group [dir module] is required")
	_, _, err = run(t, "hsm", "serve", "--module", module, "--domain", viewFile, "--listen", "127.0.0.1:0")
	require.ErrorContains(t, err, "no user PIN")

	// A view of several members is refused: their domain keys come in a
	// domain token.
	two := *view
	two.Members = []session.Member{member, member2(t)}
	data, err = two.Marshal()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(viewFile, data, 0o600))
	_, _, err = run(t, "hsm", "serve", "--dir", dir, "--domain", viewFile, "--listen", "127.0.0.1:0")
	require.ErrorIs(t, err, node.ErrNeedsDomainToken)
}

func member2(t *testing.T) session.Member {
	sig, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	agr, _ := ecdh.P384().GenerateKey(rand.Reader)
	return session.Member{ID: wire.HSMID(&sig.PublicKey), Signing: &sig.PublicKey, Agreement: agr.PublicKey()}
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}
