package main

import (
	"context"
	"encoding/json"
	"github.com/trentkms/trent/internal/syncbuf"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// background runs a long-lived command (a server) until the test ends and
// returns the text it printed after marker on stderr (an address).
func background(t *testing.T, marker string, args ...string) string {
	var stdout, stderr syncbuf.Buffer
	root := newRoot(&stdout, &stderr)
	root.SetArgs(args)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: %v", args[0], err)
		}
	})
	var out string
	require.Eventually(t, func() bool {
		_, rest, ok := strings.Cut(stderr.String(), marker)
		if !ok {
			return false
		}
		out, _, ok = strings.Cut(rest, "\n")
		return ok
	}, 15*time.Second, 10*time.Millisecond, "%v printed %q: %s", args, marker, stderr.String())
	return out
}

func TestClusterFromTheCommandLine(t *testing.T) {
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
	write("alice.json", must("operator", "keygen", "--id", "alice", "--out", p("alice.pem")))
	write("bob.json", must("operator", "keygen", "--id", "bob", "--out", p("bob.pem")))
	write("host.json", must("operator", "keygen", "--id", "host-1", "--out", p("host.pem")))
	hsmDir := p("hsms")
	write("a.json", must("hsm", "init", "--dir", hsmDir, "--label", "a"))
	write("b.json", must("hsm", "init", "--dir", hsmDir, "--label", "b"))

	// Genesis: propose, two signatures, create on HSM a.
	write("genesis.json", must("quorum", "propose", "CreateDomain", "--domain", "prod",
		"--member", p("a.json"), "--member", p("b.json"),
		"--operator", p("alice.json")+":kms-operator", "--operator", p("bob.json")+":kms-operator",
		"--operator", p("host.json")+":service-host"))
	must("quorum", "sign", "--key", p("alice.pem"), "--id", "alice", p("genesis.json"))
	must("quorum", "sign", "--key", p("bob.pem"), "--id", "bob", p("genesis.json"))
	must("domain", "create", "--hsm-dir", hsmDir, "--label", "a", "--out", p("token.bin"), p("genesis.json"))

	// Two HSMs from the token, one host bootstrapped with it.
	hsmA := background(t, "serving on ", "hsm", "serve", "--dir", hsmDir, "--label", "a", "--token", p("token.bin"), "--listen", "127.0.0.1:0")
	hsmB := background(t, "serving on ", "hsm", "serve", "--dir", hsmDir, "--label", "b", "--token", p("token.bin"), "--listen", "127.0.0.1:0")
	api := background(t, "API on ", "host", "serve", "--id", "host-1", "--key", p("host.pem"), "--dir", p("raft"),
		"--raft", "127.0.0.1:0", "--api", "127.0.0.1:0", "--hsm", "http://"+hsmA, "--hsm", "http://"+hsmB,
		"--bootstrap", p("token.bin"))
	require.Eventually(t, func() bool {
		_, _, err := run(t, "domain", "status", "--host", api)
		return err == nil
	}, 10*time.Second, 50*time.Millisecond)

	// A rotation signed by the host's own service-host key, submitted.
	write("rotate.json", must("quorum", "propose", "RotateDomainKeys", "--domain-status", p("token.bin")))
	must("quorum", "sign", "--key", p("host.pem"), "--id", "host-1", p("rotate.json"))
	out := must("quorum", "submit", "--host", api, p("rotate.json"))
	assert.Contains(t, out, "state version 2")

	require.Eventually(t, func() bool {
		out, _, err := run(t, "--json", "domain", "status", "--host", api)
		if err != nil {
			return false
		}
		var s struct {
			StateVersion uint64 `json:"state_version"`
			HSMs         []struct {
				StateVersion uint64 `json:"state_version"`
			} `json:"hsms"`
			Keys []struct {
				Active bool `json:"active"`
			} `json:"domain_keys"`
		}
		require.NoError(t, json.Unmarshal([]byte(out), &s))
		return s.StateVersion == 2 && len(s.HSMs) == 2 && s.HSMs[0].StateVersion == 2 && s.HSMs[1].StateVersion == 2 && len(s.Keys) == 2
	}, 15*time.Second, 100*time.Millisecond, "hosts and HSMs at version 2")
	out = must("domain", "status", "--host", api)
	assert.Contains(t, out, "state version 2")

	// The re-encryption job (no EKT in the key store yet: done at once).
	_, stderr, err := run(t, "domain", "reencrypt", "--host", api)
	require.NoError(t, err)
	assert.Contains(t, stderr, "0/0 EKTs")

	// Raft operations.
	out = must("raft", "peers", "--host", api)
	assert.Contains(t, out, "host-1")
	assert.Contains(t, out, "leader")
	must("raft", "snapshot", "save", "--host", api, p("snap.bin"))
	must("raft", "snapshot", "restore", "--host", api, "--key", p("alice.pem"), "--id", "alice", p("snap.bin"))
	_, _, err = run(t, "raft", "snapshot", "restore", "--host", api, "--key", p("bob.pem"), "--id", "alice", p("snap.bin"))
	require.ErrorContains(t, err, "signature does not verify")
}
