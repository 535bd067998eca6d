package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/ceremony"
	"github.com/trentkms/trent/quorum"
)

// write saves a command's stdout to a file in dir.
func write(t *testing.T, dir, name, data string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, []byte(data), 0o644))
	return path
}

// A whole ceremony through the CLI: three operators (a key file, a token,
// an ML-DSA-87 key file), genesis on one HSM, then changes against its
// token.
func TestCeremony(t *testing.T) {
	dir := t.TempDir()
	tokens := t.TempDir() // bob's smartcard
	hsmDir := t.TempDir()
	alicePEM, carolPEM := filepath.Join(dir, "alice.pem"), filepath.Join(dir, "carol.pem")
	bobKey := "pkcs11:" + tokens + ":bob"

	// 1. Operators make their keys and hand over their public entries.
	out, stderr, err := run(t, "operator", "keygen", "--id", "alice", "--out", alicePEM)
	require.NoError(t, err)
	assert.Contains(t, stderr, "public key sha256:")
	alice := write(t, dir, "alice.json", out)
	var entry map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &entry))
	assert.ElementsMatch(t, []string{"id", "alg", "public_key"}, keys(entry))
	assert.Equal(t, "ECDSA-P384-SHA384", entry["alg"])
	fi, err := os.Stat(alicePEM)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	_, _, err = run(t, "operator", "keygen", "--id", "alice", "--out", alicePEM)
	require.ErrorContains(t, err, "refusing to overwrite")

	out, stderr, err = run(t, "operator", "keygen", "--id", "bob", "--pkcs11-dir", tokens)
	require.NoError(t, err)
	assert.Contains(t, stderr, "sign with --key "+bobKey)
	bob := write(t, dir, "bob.json", out)
	again, _, err := run(t, "operator", "keygen", "--id", "bob", "--pkcs11-dir", tokens)
	require.NoError(t, err)
	assert.Equal(t, out, again, "a token keeps its key")
	shown, _, err := run(t, "operator", "show", "--key", bobKey, "--id", "bob")
	require.NoError(t, err)
	assert.Equal(t, out, shown)

	out, _, err = run(t, "operator", "keygen", "--id", "carol", "--out", carolPEM, "--ml-dsa")
	require.NoError(t, err)
	carol := write(t, dir, "carol.json", out)
	require.NoError(t, json.Unmarshal([]byte(out), &entry))
	assert.Equal(t, "ML-DSA-87", entry["alg"])
	data, err := os.ReadFile(carolPEM)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(data), "-----BEGIN ML-DSA-87 PRIVATE KEY-----\n"))

	_, _, err = run(t, "operator", "keygen", "--id", "x", "--out", filepath.Join(dir, "x.pem"), "--pkcs11-dir", tokens)
	require.ErrorContains(t, err, "one of --out and --pkcs11-dir")

	// 2. The first HSM.
	out, _, err = run(t, "hsm", "init", "--dir", hsmDir)
	require.NoError(t, err)
	member := write(t, dir, "hsm-1.json", out)

	// 3. Genesis: propose, sign twice, check, create.
	out, stderr, err = run(t, "quorum", "propose", "CreateDomain", "--domain", "prod", "--member", member,
		"--operator", alice+":kms-operator", "--operator", bob+":kms-operator", "--operator", carol+":kms-operator")
	require.NoError(t, err)
	assert.Contains(t, stderr, `CreateDomain on domain "prod" at state version 0`)
	assert.Contains(t, stderr, "it makes state version 1")
	create := write(t, dir, "create.json", out)
	var file map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &file))
	assert.ElementsMatch(t, []string{"signed_command", "summary"}, keys(file))

	out, _, err = run(t, "quorum", "status", create)
	require.ErrorIs(t, err, quorum.ErrPending)
	assert.Contains(t, out, "pending: need 2 more kms-operator")

	out, _, err = run(t, "quorum", "sign", "--key", alicePEM, "--id", "alice", create)
	require.NoError(t, err)
	assert.Contains(t, out, "alice signed CreateDomain")
	out, _, err = run(t, "quorum", "status", create)
	require.EqualError(t, err, "ceremony: pending: need 1 more kms-operator")
	assert.Contains(t, out, "alice (kms-operator): ok")
	assert.Contains(t, out, "pending: need 1 more kms-operator")

	// A key that is not the operator's is refused for CreateDomain.
	_, _, err = run(t, "quorum", "sign", "--key", alicePEM, "--id", "bob", create)
	require.ErrorContains(t, err, `not the one domain "prod" lists for operator "bob"`)

	_, _, err = run(t, "quorum", "sign", "--key", bobKey, "--id", "bob", create)
	require.NoError(t, err)
	out, _, err = run(t, "quorum", "status", create)
	require.NoError(t, err)
	assert.Contains(t, out, "satisfied by 2 kms-operator")
	out, _, err = run(t, "--json", "quorum", "status", create)
	require.NoError(t, err)
	var status struct {
		Outcome string   `json:"outcome"`
		Counted []string `json:"counted_signers"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &status))
	assert.Equal(t, "satisfied", status.Outcome)
	assert.Equal(t, []string{"alice", "bob"}, status.Counted)

	out, stderr, err = run(t, "domain", "create", "--hsm-dir", hsmDir, create)
	require.NoError(t, err)
	assert.Contains(t, stderr, `domain "prod" version 1`)
	token1 := write(t, dir, "token1.bin", out)

	// 4. The token, inspected.
	out, _, err = run(t, "domain", "inspect", token1)
	require.NoError(t, err)
	var info struct {
		HSMID string `json:"hsm_id"`
	}
	memberData, err := os.ReadFile(member)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(memberData, &info))
	for _, want := range []string{`domain "prod", state version 1`, "members (1):\n  " + info.HSMID, "operators (3):",
		"alice            kms-operator   ECDSA-P384-SHA384", "bob              kms-operator   ECDSA-P384-SHA384",
		"carol            kms-operator   ML-DSA-87", "RotateDomainKeys            2 kms-operator | 1 service-host",
		"retention: 7", "active   created", "signatures:  alice (ECDSA-P384-SHA384), bob (ECDSA-P384-SHA384)"} {
		assert.Contains(t, out, want)
	}
	out, _, err = run(t, "--json", "domain", "inspect", token1)
	require.NoError(t, err)
	var in ceremony.Inspection
	require.NoError(t, json.Unmarshal([]byte(out), &in))
	assert.Equal(t, []string{info.HSMID}, in.Members)
	assert.Len(t, in.Operators, 3)
	assert.Equal(t, "verified", in.ExporterSignature)

	// 5. AddOperator against the token: dave (ML-DSA-87) joins.
	out, _, err = run(t, "operator", "keygen", "--id", "dave", "--out", filepath.Join(dir, "dave.pem"), "--ml-dsa")
	require.NoError(t, err)
	dave := write(t, dir, "dave.json", out)
	out, stderr, err = run(t, "quorum", "propose", "AddOperator", "--operator", dave, "--role", "kms-operator", "--domain-status", token1)
	require.NoError(t, err)
	assert.Contains(t, stderr, "add operator dave as kms-operator (ML-DSA-87 sha256:")
	addOp := write(t, dir, "add-operator.json", out)

	_, _, err = run(t, "quorum", "status", addOp)
	require.ErrorContains(t, err, "needs the domain's current status")
	_, _, err = run(t, "quorum", "sign", "--key", carolPEM, "--id", "carol", "--domain-status", token1, addOp)
	require.NoError(t, err)
	out, _, err = run(t, "quorum", "status", addOp, "--domain-status", token1)
	require.ErrorIs(t, err, quorum.ErrPending)
	assert.Contains(t, out, "pending: need 1 more kms-operator")

	// dave is not an operator yet: his signature rejects the command
	// until it is removed.
	_, stderr, err = run(t, "quorum", "sign", "--key", filepath.Join(dir, "dave.pem"), "--id", "dave", addOp)
	require.NoError(t, err)
	assert.Contains(t, stderr, "not checked that dave is an operator")
	out, _, err = run(t, "quorum", "status", addOp, "--domain-status", token1)
	require.ErrorIs(t, err, quorum.ErrUnknownSigner)
	assert.Contains(t, out, "dave (-): not an operator of the domain")
	_, _, err = run(t, "quorum", "unsign", "--id", "dave", addOp)
	require.NoError(t, err)

	t.Setenv(envOperatorPIN, readPIN(t, tokens))
	_, _, err = run(t, "quorum", "sign", "--key", bobKey, "--id", "bob", "--domain-status", token1, addOp)
	require.NoError(t, err)
	out, _, err = run(t, "quorum", "status", addOp, "--domain-status", token1)
	require.NoError(t, err)
	assert.Contains(t, out, "satisfied by 2 kms-operator")

	// Rehearsed on the HSM: the next token.
	out, stderr, err = run(t, "domain", "apply", "--hsm-dir", hsmDir, "--token", token1, addOp)
	require.NoError(t, err)
	assert.Contains(t, stderr, `domain "prod" version 2`)
	token2 := write(t, dir, "token2.bin", out)
	out, _, err = run(t, "domain", "inspect", token2)
	require.NoError(t, err)
	assert.Contains(t, out, "dave             kms-operator   ML-DSA-87")

	// 6. SetRetention against the new token, signed by dave and alice.
	out, _, err = run(t, "quorum", "propose", "SetRetention", "--retention", "3", "--domain-status", token2, "--expires", "1h")
	require.NoError(t, err)
	setRet := write(t, dir, "retention.json", out)
	_, _, err = run(t, "quorum", "sign", "--key", filepath.Join(dir, "dave.pem"), "--id", "dave", "--domain-status", token2, setRet)
	require.NoError(t, err)
	out, _, err = run(t, "--json", "quorum", "sign", "--key", alicePEM, "--id", "alice", setRet)
	require.NoError(t, err)
	var sum ceremony.Summary
	require.NoError(t, json.Unmarshal([]byte(out), &sum))
	assert.Equal(t, "keep 3 deactivated domain keys", sum.Change)
	assert.Len(t, sum.Signers, 2)
	out, _, err = run(t, "quorum", "status", setRet, "--domain-status", token2)
	require.NoError(t, err)
	assert.Contains(t, out, "satisfied by 2 kms-operator")
	// Against the old token it names the wrong version.
	_, _, err = run(t, "quorum", "status", setRet, "--domain-status", token1)
	require.ErrorIs(t, err, quorum.ErrWrongVersion)
	outFile := filepath.Join(dir, "token3.bin")
	out, _, err = run(t, "domain", "apply", "--hsm-dir", hsmDir, "--token", token2, "--out", outFile, setRet)
	require.NoError(t, err)
	assert.Contains(t, out, "written to "+outFile)
	out, _, err = run(t, "domain", "inspect", outFile)
	require.NoError(t, err)
	assert.Contains(t, out, "retention: 3")

	// The file's summary is not trusted: an edit is flagged and undone.
	data, err = os.ReadFile(setRet)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(setRet, []byte(strings.Replace(string(data), "keep 3", "keep 7", 1)), 0o644))
	_, stderr, err = run(t, "quorum", "sign", "--key", carolPEM, "--id", "carol", setRet)
	require.NoError(t, err)
	assert.Contains(t, stderr, "summary does not match its signed command")
	data, err = os.ReadFile(setRet)
	require.NoError(t, err)
	assert.Contains(t, string(data), "keep 3 deactivated")

	// 7. The HSM's token is anchored to prod (version 2, the last token it
	// imported): a new genesis on it is refused until the anchor is
	// cleared.
	_, _, err = run(t, "domain", "create", "--hsm-dir", hsmDir, create)
	require.ErrorContains(t, err, "anchored to a domain")
	out, _, err = run(t, "--json", "hsm", "reset-anchor", "--dir", hsmDir)
	require.NoError(t, err)
	var reset struct {
		HSMID   string `json:"hsm_id"`
		Removed bool   `json:"removed"`
		Anchor  struct {
			Domain  string `json:"domain"`
			Version uint64 `json:"version"`
			Members []struct {
				ID string `json:"hsm_id"`
			} `json:"members"`
		} `json:"anchor"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &reset))
	assert.True(t, reset.Removed)
	assert.Equal(t, info.HSMID, reset.HSMID)
	assert.Equal(t, "prod", reset.Anchor.Domain)
	assert.Equal(t, uint64(2), reset.Anchor.Version)
	require.Len(t, reset.Anchor.Members, 1)
	assert.Equal(t, info.HSMID, reset.Anchor.Members[0].ID)
	out, _, err = run(t, "hsm", "reset-anchor", "--dir", hsmDir)
	require.NoError(t, err)
	assert.Contains(t, out, "no domain anchor in the token; nothing removed")
	_, _, err = run(t, "domain", "create", "--hsm-dir", hsmDir, create)
	require.NoError(t, err)
	out, _, err = run(t, "hsm", "reset-anchor", "--dir", hsmDir)
	require.NoError(t, err)
	assert.Contains(t, out, `removed the domain anchor: domain "prod", version 1, members `+info.HSMID)
}

func readPIN(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "user.pin"))
	require.NoError(t, err)
	return strings.TrimSpace(string(b))
}

func TestCeremonyRefusals(t *testing.T) {
	dir := t.TempDir()
	_, _, err := run(t, "quorum", "propose", "Nope")
	require.ErrorContains(t, err, `unknown command type "Nope"`)
	_, _, err = run(t, "quorum", "propose", "RotateDomainKeys")
	require.ErrorContains(t, err, "needs the domain's current status")
	_, _, err = run(t, "quorum", "propose", "SetRetention", "--retention", "3", "--role", "x", "--domain-status", filepath.Join(dir, "nope"))
	require.ErrorContains(t, err, "no such file")
	bad := write(t, dir, "cmd.json", `{"signed_command":"AAAA","signed_command":"AAAA"}`)
	_, _, err = run(t, "quorum", "status", bad)
	require.ErrorContains(t, err, "duplicate key")
	_, _, err = run(t, "quorum", "sign", "--key", filepath.Join(dir, "nope.pem"), "--id", "a", bad)
	require.ErrorContains(t, err, "duplicate key")
	_, _, err = run(t, "domain", "inspect", bad)
	require.ErrorContains(t, err, "ceremony: domain token")
	_, _, err = run(t, "domain", "create", bad)
	require.ErrorContains(t, err, `"hsm-dir" not set`)
	out, _, err := run(t, "--help")
	require.NoError(t, err)
	for _, sub := range []string{"operator", "quorum", "domain"} {
		assert.Contains(t, out, "\n  "+sub+" ")
	}
}
