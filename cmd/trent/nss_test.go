package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/nss"
	"github.com/trentkms/trent/tokenstore"
	"github.com/trentkms/trent/tokenstore/storetest"
)

// An HSM node on NSS's softoken, end to end through the command line:
// trent hsm init --module nss provisions it, trent domain create makes its
// domain in that token, trent hsm serve serves it as a process of its own,
// and the whole HSM conformance suite (trent conformance hsm, with operator
// keys and leave to change the domain, its host key in an NSS token beside
// the HSM's) passes against it, no check skipped.
func TestHSMNodeOnNSS(t *testing.T) {
	storetest.RequireModule(t, tokenstore.NSS)
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	must := func(args ...string) string {
		out, stderr, err := run(t, args...)
		require.NoError(t, err, "%v: %s", args, stderr)
		return out
	}
	write := func(name, content string) {
		require.NoError(t, os.WriteFile(p(name), []byte(content), 0o600))
	}
	hsmDir := p("hsm")
	info := must("hsm", "init", "--dir", hsmDir, "--module", "nss", "--label", "nss-a")
	var got struct {
		HSMID      string `json:"hsm_id"`
		ModuleKind string `json:"module_kind"`
		Module     string `json:"module"`
	}
	require.NoError(t, json.Unmarshal([]byte(info), &got))
	assert.Equal(t, "nss", got.ModuleKind)
	assert.Contains(t, got.Module, "libsoftokn3")
	assert.FileExists(t, filepath.Join(hsmDir, "nssdb", "nss-a", "key4.db"), "the token is an NSS database")
	assert.NoFileExists(t, filepath.Join(hsmDir, "so.pin"), "an NSS database has no SO PIN")
	again := must("hsm", "init", "--dir", hsmDir, "--label", "nss-a")
	assert.Contains(t, again, got.HSMID, "a second init finds the same token and keys (the module from the data dir)")
	write("a.json", info)

	write("alice.json", must("operator", "keygen", "--id", "alice", "--out", p("alice.pem")))
	write("bob.json", must("operator", "keygen", "--id", "bob", "--out", p("bob.pem")))
	// The service host's key in an NSS token too, beside the HSM's.
	write("host.json", must("operator", "keygen", "--id", "host-1", "--pkcs11-dir", hsmDir))
	hostKey := "pkcs11:" + hsmDir + ":host-1"
	write("genesis.json", must("quorum", "propose", "CreateDomain", "--domain", "nss",
		"--member", p("a.json"),
		"--operator", p("alice.json")+":kms-operator", "--operator", p("bob.json")+":kms-operator",
		"--operator", p("host.json")+":service-host"))
	must("quorum", "sign", "--key", p("alice.pem"), "--id", "alice", p("genesis.json"))
	must("quorum", "sign", "--key", p("bob.pem"), "--id", "bob", p("genesis.json"))
	must("domain", "create", "--hsm-dir", hsmDir, "--label", "nss-a", "--out", p("token.bin"), p("genesis.json"))

	// The node in a process of its own (this test binary standing in for
	// trent, see TestMain), with a short EKT validity for HSM-EKT-003.
	serve := exec.Command(os.Args[0], "hsm", "serve", "--dir", hsmDir, "--label", "nss-a", "--token", p("token.bin"),
		"--listen", "127.0.0.1:0", "--validity", "5s")
	stderr, err := serve.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, serve.Start())
	t.Cleanup(func() {
		if serve.ProcessState == nil {
			_ = serve.Process.Signal(os.Interrupt)
			_ = serve.Wait()
		}
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if _, a, ok := strings.Cut(sc.Text(), "serving on "); ok {
				addr <- a
			}
		}
	}()
	var url string
	select {
	case a := <-addr:
		url = "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatal("trent hsm serve on NSS did not start")
	}

	out, errOut, err := run(t, "--json", "conformance", "hsm", "--target", url, "--domain-token", p("token.bin"),
		"--host-key", hostKey, "--operator-key", p("alice.pem"), "--operator-key", p("bob.pem"),
		"--allow-domain-change", "--max-wait", "15s")
	require.NoError(t, err, "%s\n%s", out, errOut)
	var rep struct {
		Passed, Failed, Skipped int
		Results                 []struct {
			ID, Status, Reason string
		}
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	require.NotEmpty(t, rep.Results)
	for _, r := range rep.Results {
		assert.Equal(t, "pass", r.Status, "%s: %s", r.ID, r.Reason)
	}
	assert.Equal(t, len(rep.Results), rep.Passed)
	t.Logf("trent conformance hsm on NSS: %d checks passed", rep.Passed)

	// The same token as any module's: the library's path, its
	// initialisation string and a PIN file, no data dir. The node is
	// stopped first; reset-anchor finds the anchor the suite left.
	require.NoError(t, serve.Process.Signal(os.Interrupt))
	require.NoError(t, serve.Wait())
	store, err := nss.Open(hsmDir)
	require.NoError(t, err)
	initArgs, err := store.InitArgs()
	require.NoError(t, err)
	out = must("--json", "hsm", "reset-anchor", "--module", store.Module, "--module-init", initArgs,
		"--pin-file", filepath.Join(hsmDir, "user.pin"), "--label", "nss-a")
	assert.Contains(t, out, `"removed": true`)
	_, _, err = run(t, "hsm", "reset-anchor", "--module", store.Module, "--pin-file", filepath.Join(hsmDir, "user.pin"), "--label", "nss-a")
	require.ErrorContains(t, err, "CKR_ARGUMENTS_BAD", "the softoken does not start without its initialisation string")
	_, _, err = run(t, "hsm", "reset-anchor", "--module", "nss", "--label", "nss-a")
	require.ErrorContains(t, err, "needs --dir")
}

// trent dev --hsm-module nss: the dev cluster's HSM tokens are NSS
// databases in DIR/nss, and a DIR keeps its module.
func TestDevOnNSS(t *testing.T) {
	storetest.RequireModule(t, tokenstore.NSS)
	dir := t.TempDir()
	out, stderr, err := run(t, "dev", "--dir", dir, "--hsm-module", "nss", "--hsms", "1", "--hosts", "0",
		"--listen", "127.0.0.1:0", "--kms-listen", "127.0.0.1:0", "--once")
	require.NoError(t, err, stderr)
	assert.Contains(t, out, "HSM nodes (nss tokens in "+filepath.Join(dir, "nss"))
	assert.Equal(t, 1, strings.Count(out, "first ping "))
	assert.FileExists(t, filepath.Join(dir, "nss", "nssdb", "hsm-1", "key4.db"))
	_, _, err = run(t, "dev", "--dir", dir, "--hsms", "1", "--hosts", "0", "--listen", "127.0.0.1:0", "--once")
	require.ErrorContains(t, err, "holds HSM tokens in "+filepath.Join(dir, "nss"))
	_, _, err = run(t, "dev", "--dir", dir, "--hsm-module", "opencryptoki")
	require.ErrorContains(t, err, "want softhsm or nss")
}
