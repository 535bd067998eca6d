package ceremony_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/ceremony"
	"github.com/trentkms/trent/hsm/node"
	"github.com/trentkms/trent/quorum"
	"github.com/trentkms/trent/softhsm/softhsmtest"
)

// hsmNode provisions an HSM node in dir and writes its member file.
func hsmNode(t *testing.T, dir, label string) (ceremony.HSM, string) {
	t.Helper()
	res, err := node.Init(node.InitOptions{Dir: dir, Label: label})
	require.NoError(t, err)
	data, err := json.Marshal(res.Info)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), label+".json")
	require.NoError(t, os.WriteFile(path, data, 0o644))
	return ceremony.HSM{Dir: dir, Label: label}, path
}

func TestDomainOnHSMs(t *testing.T) {
	hsmDir := softhsmtest.NewStore(t).Dir
	h1, m1 := hsmNode(t, hsmDir, "hsm-1")
	h2, m2 := hsmNode(t, hsmDir, "hsm-2")
	dir := t.TempDir()
	alice, bob, carol := newOp(t, dir, "alice", quorum.ECDSAP384), newOp(t, dir, "bob", quorum.ECDSAP384), newOp(t, dir, "carol", quorum.MLDSA87)
	res, err := ceremony.Propose(&ceremony.Proposal{Type: quorum.CreateDomain, Domain: "prod", MemberFiles: []string{m1},
		OperatorFiles: []string{alice.entryFile + ":kms-operator", bob.entryFile + ":kms-operator", carol.entryFile + ":kms-operator"}}, now)
	require.NoError(t, err)
	create := res.File

	alice.sign(t, create, nil)
	_, _, err = ceremony.CreateDomain(h1, create, now)
	require.ErrorIs(t, err, quorum.ErrPending, "checked before the HSM is opened")
	carol.sign(t, create, nil)
	_, _, err = ceremony.CreateDomain(h2, create, now)
	require.ErrorContains(t, err, "is not a member of the domain the command creates")
	token, p, err := ceremony.CreateDomain(h1, create, now)
	require.NoError(t, err)
	assert.Equal(t, uint64(1), p.State.Version)

	in, err := ceremony.Inspect(token)
	require.NoError(t, err)
	assert.Equal(t, "prod", in.Name)
	assert.Equal(t, uint64(1), in.Version)
	require.Len(t, in.Members, 1)
	assert.Equal(t, in.Members[0], in.Exporter)
	assert.Equal(t, "verified", in.ExporterSignature)
	assert.Equal(t, []ceremony.OperatorRecord{
		{ID: "alice", Role: "kms-operator", Alg: "ECDSA-P384-SHA384", Fingerprint: ceremony.KeyFingerprint(alice.entry.Key)},
		{ID: "bob", Role: "kms-operator", Alg: "ECDSA-P384-SHA384", Fingerprint: ceremony.KeyFingerprint(bob.entry.Key)},
		{ID: "carol", Role: "kms-operator", Alg: "ML-DSA-87", Fingerprint: ceremony.KeyFingerprint(carol.entry.Key)},
	}, in.Operators)
	require.Len(t, in.Keys, 1)
	assert.True(t, in.Keys[0].Active)
	assert.Equal(t, "2026-01-01T00:00:00Z", in.Keys[0].Created)
	assert.Len(t, in.Rules, len(quorum.CommandTypes))
	assert.Equal(t, ceremony.RuleRecord{Type: "SetSessionPolicy", Rules: []string{"2 kms-operator"}}, in.Rules[9], "SetRule's, as the domain has none of its own")
	assert.Equal(t, ceremony.RuleRecord{Type: "RotateDomainKeys", Rules: []string{"2 kms-operator", "1 service-host"}}, in.Rules[6])
	assert.Equal(t, "CreateDomain", in.Command.Type)
	assert.Equal(t, []ceremony.SignerSummary{{ID: "alice", Alg: "ECDSA-P384-SHA384"}, {ID: "carol", Alg: "ML-DSA-87"}}, in.Command.Signers)
	text := in.Text()
	for _, want := range []string{`domain "prod", state version 1`, "alice", "ML-DSA-87", "active", "produced by:", "signature verified"} {
		assert.Contains(t, text, want)
	}

	// A change rehearsed on hsm-1 (a new process: it imports the token).
	res, err = ceremony.Propose(&ceremony.Proposal{Type: quorum.AddMember, Current: p.State, MemberFiles: []string{m2}}, now)
	require.NoError(t, err)
	add := res.File
	bob.sign(t, add, p.State)
	_, _, err = ceremony.Apply(h1, token, add, now)
	require.ErrorIs(t, err, quorum.ErrPending)
	carol.sign(t, add, p.State)
	_, _, err = ceremony.Apply(h1, token, create, now)
	require.ErrorContains(t, err, "use domain create")
	next, np, err := ceremony.Apply(h1, token, add, now)
	require.NoError(t, err)
	assert.Equal(t, uint64(2), np.State.Version)
	assert.Len(t, np.State.Members, 2)
	in, err = ceremony.Inspect(next)
	require.NoError(t, err)
	assert.Equal(t, "verified", in.ExporterSignature)
	assert.Equal(t, "AddMember", in.Command.Type)

	// hsm-1 exports the state that removes it: that token's signature
	// cannot be checked from its own state alone.
	res, err = ceremony.Propose(&ceremony.Proposal{Type: quorum.RemoveMember, Current: np.State, ID: in.Exporter}, now)
	require.NoError(t, err)
	alice.sign(t, res.File, np.State)
	bob.sign(t, res.File, np.State)
	last, _, err := ceremony.Apply(h1, next, res.File, now)
	require.NoError(t, err)
	in, err = ceremony.Inspect(last)
	require.NoError(t, err)
	assert.Equal(t, "unchecked", in.ExporterSignature)
	assert.Len(t, in.Members, 1)

	_, err = ceremony.Inspect(token[:len(token)-1])
	require.ErrorContains(t, err, "ceremony: domain token")
	bad := filepath.Join(t.TempDir(), "t.bin")
	require.NoError(t, os.WriteFile(bad, []byte("TRNT"), 0o644))
	_, _, err = ceremony.ReadToken(bad)
	require.ErrorContains(t, err, "ceremony: domain token")
}

func TestParseMember(t *testing.T) {
	dir := t.TempDir()
	m, path := newMember(t, dir)
	got, err := ceremony.ReadMember(path)
	require.NoError(t, err)
	assert.Equal(t, m.ID, got.ID)
	good, err := os.ReadFile(path)
	require.NoError(t, err)
	_, other := newMember(t, dir)
	otherData, err := os.ReadFile(other)
	require.NoError(t, err)
	var o map[string]any
	require.NoError(t, json.Unmarshal(otherData, &o))
	body := strings.TrimPrefix(string(good), "{")
	for _, tc := range []struct{ name, in, want string }{
		{"duplicate key", `{"hsm_id":"hsm-0000000000000000",` + body, "duplicate key"},
		{"unknown field", `{"role":"x",` + body, "unknown field"},
		{"missing keys", `{"hsm_id":"` + m.ID + `"}`, "are required"},
		{"ID of another key", strings.Replace(string(good), m.ID, o["hsm_id"].(string), 1), "gives the ID"},
		{"agreement key swapped for garbage", strings.Replace(string(good), `"agreement_public_key":"`, `"agreement_public_key":"AAAA`, 1), "member"},
		{"trailing data", string(good) + "[]", "after the value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ceremony.ParseMember([]byte(tc.in))
			require.ErrorContains(t, err, tc.want)
			assert.True(t, strings.HasPrefix(err.Error(), "ceremony: "), err.Error())
		})
	}
}

func TestParseRoots(t *testing.T) {
	dir := t.TempDir()
	a, err := os.ReadFile(rootFile(t, dir, "a"))
	require.NoError(t, err)
	b, err := os.ReadFile(rootFile(t, dir, "b"))
	require.NoError(t, err)
	roots, err := ceremony.ParseRoots(append(append([]byte(nil), a...), b...))
	require.NoError(t, err)
	assert.Len(t, roots, 2)
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "no certificate"},
		{"text around", "hello\n" + string(a), "outside PEM blocks"},
		{"text after", string(a) + "bye", "outside PEM blocks"},
		{"a key", strings.ReplaceAll(string(a), "CERTIFICATE", "PRIVATE KEY"), `PEM type "PRIVATE KEY"`},
		{"not a certificate", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "root certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ceremony.ParseRoots([]byte(tc.in))
			require.ErrorContains(t, err, tc.want)
		})
	}
}
