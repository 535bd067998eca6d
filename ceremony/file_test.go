package ceremony_test

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/ceremony"
	"github.com/trentkms/trent/quorum"
)

// proposal makes an AddOperator command file for a new operator dave
// against st.
func proposal(t *testing.T, st ceremonyState) *ceremony.File {
	t.Helper()
	dave := newOp(t, t.TempDir(), "dave", quorum.MLDSA87)
	res, err := ceremony.Propose(&ceremony.Proposal{Type: quorum.AddOperator, Current: st.st,
		OperatorFiles: []string{dave.entryFile}, Role: quorum.RoleKMSOperator}, now)
	require.NoError(t, err)
	return res.File
}

func TestFileRoundTrip(t *testing.T) {
	s := newCeremonyState(t)
	f := proposal(t, s)
	s.alice.sign(t, f, s.st)
	data, err := f.Marshal()
	require.NoError(t, err)

	back, err := ceremony.ParseFile(data)
	require.NoError(t, err)
	assert.False(t, back.Edited)
	assert.Equal(t, f.Signed, back.Signed)
	assert.Equal(t, f.Summary(), back.Summary())
	sum := back.Summary()
	assert.Equal(t, "AddOperator", sum.Type)
	assert.Equal(t, "test", sum.Domain)
	assert.Equal(t, uint64(3), sum.StateVersion)
	assert.Equal(t, "2026-01-01T00:00:00Z", sum.IssuedAt)
	assert.Equal(t, "2026-01-01T00:10:00Z", sum.ExpiresAt)
	assert.Equal(t, []ceremony.SignerSummary{{ID: "alice", Alg: "ECDSA-P384-SHA384"}}, sum.Signers)
	assert.Contains(t, sum.Change, "add operator dave as kms-operator (ML-DSA-87 sha256:")

	// Through a file, atomically replaced, its mode kept.
	path := filepath.Join(t.TempDir(), "cmd.json")
	require.NoError(t, ceremony.WriteFileAtomic(path, data, 0o640))
	require.NoError(t, ceremony.WriteFileAtomic(path, data, 0o600))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm())
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file left")
	_, err = ceremony.ReadFile(path)
	require.NoError(t, err)
}

func TestParseFileRefusals(t *testing.T) {
	s := newCeremonyState(t)
	f := proposal(t, s)
	s.alice.sign(t, f, s.st)
	data, err := f.Marshal()
	require.NoError(t, err)
	var j struct {
		SignedCommand string          `json:"signed_command"`
		Summary       json.RawMessage `json:"summary"`
	}
	require.NoError(t, json.Unmarshal(data, &j))
	sc := j.SignedCommand
	sum := string(j.Summary)
	raw, err := base64.StdEncoding.DecodeString(sc)
	require.NoError(t, err)
	reencode := func(mut func([]byte) []byte) string {
		return base64.StdEncoding.EncodeToString(mut(append([]byte(nil), raw...)))
	}
	doc := func(sc string) string { return `{"signed_command":"` + sc + `","summary":` + sum + `}` }

	for _, tc := range []struct{ name, in, want string }{
		{"duplicate key", `{"signed_command":"` + sc + `","signed_command":"` + sc + `","summary":` + sum + `}`, "duplicate key"},
		{"duplicate key in summary", `{"signed_command":"` + sc + `","summary":{"type":"x","type":"y"}}`, "duplicate key"},
		{"unknown field", `{"signed_command":"` + sc + `","summary":` + sum + `,"note":"hi"}`, "unknown field"},
		{"unknown field in summary", `{"signed_command":"` + sc + `","summary":{"typo":1}}`, "unknown field"},
		{"trailing data", doc(sc) + "x", "strictjson"},
		{"not JSON", "signed_command=" + sc, "strictjson"},
		{"no signed command", `{"summary":` + sum + `}`, "no signed_command"},
		{"not base64", doc("!" + sc[1:]), "not base64"},
		{"truncated base64", doc(sc[:len(sc)-1]), "not base64"},
		{"base64 with a line break", doc(sc[:10] + `\n` + sc[10:]), "not base64"},
		{"truncated", doc(reencode(func(b []byte) []byte { return b[:len(b)-1] })), "malformed"},
		{"trailing bytes", doc(reencode(func(b []byte) []byte { return append(b, 0) })), "trailing bytes"},
		{"wrong header", doc(reencode(func(b []byte) []byte { b[0] = 'X'; return b })), "bad header"},
		{"wrong version", doc(reencode(func(b []byte) []byte { b[4] = 9; return b })), "unsupported protocol version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ceremony.ParseFile([]byte(tc.in))
			require.ErrorContains(t, err, tc.want)
			assert.True(t, strings.HasPrefix(err.Error(), "ceremony: "), err.Error())
		})
	}

	// A byte of the command changed: it still decodes, but alice's
	// signature no longer verifies, and status rejects the command.
	tampered := reencode(func(b []byte) []byte { b[len(b)-200] ^= 1; return b })
	tf, err := ceremony.ParseFile([]byte(doc(tampered)))
	require.NoError(t, err, "the flipped bit is in dave's ML-DSA-87 key")
	assert.True(t, tf.Edited, "the summary no longer matches")
	st, err := ceremony.Check(tf, s.st, now)
	require.NoError(t, err)
	assert.Equal(t, quorum.Rejected, st.Result.Outcome)
	require.ErrorIs(t, st.Err(), quorum.ErrBadSignature)
	assert.False(t, st.Signatures[0].Valid)

	// The summary is never trusted: an edited one is flagged and replaced.
	edited := strings.Replace(doc(sc), "add operator dave", "add operator eve", 1)
	ef, err := ceremony.ParseFile([]byte(edited))
	require.NoError(t, err)
	assert.True(t, ef.Edited)
	assert.Contains(t, ef.Summary().Change, "add operator dave")
	out, err := ef.Marshal()
	require.NoError(t, err)
	assert.NotContains(t, string(out), "add operator eve", "the edited summary is not written back")
	nf, err := ceremony.ParseFile([]byte(`{"signed_command":"` + sc + `"}`))
	require.NoError(t, err)
	assert.True(t, nf.Edited, "a missing summary counts as edited")
}

func TestSign(t *testing.T) {
	s := newCeremonyState(t)
	f := proposal(t, s)
	s.alice.sign(t, f, s.st)
	s.alice.sign(t, f, s.st)
	require.Len(t, f.Signed.Signatures, 1, "a second signature replaces the first")
	s.carol.sign(t, f, nil)
	assert.Equal(t, []ceremony.SignerSummary{{ID: "alice", Alg: "ECDSA-P384-SHA384"}, {ID: "carol", Alg: "ML-DSA-87"}}, f.Summary().Signers)

	k, err := ceremony.OpenKey(s.alice.keyFile, "")
	require.NoError(t, err)
	defer k.Close()
	require.ErrorContains(t, f.Sign("carol", k, s.st, now), `is not the one domain "test" lists for operator "carol"`)
	require.ErrorContains(t, f.Sign("eve", k, s.st, now), `"eve" is not an operator of domain "test"`)
	require.ErrorContains(t, f.Sign("alice", k, s.st, now.Add(time.Hour)), "expired")
	require.ErrorContains(t, f.Sign("a b", k, nil, now), "invalid signer ID")
	other := s.st.Clone()
	other.Version++
	require.ErrorContains(t, f.Sign("alice", k, other, now), "at version 4")
	require.NoError(t, f.Sign("eve", k, nil, now), "without a status, anyone may sign")
	st, err := ceremony.Check(f, s.st, now)
	require.NoError(t, err)
	require.ErrorIs(t, st.Err(), quorum.ErrUnknownSigner)
	require.NoError(t, f.Unsign("eve"))
	require.ErrorContains(t, f.Unsign("eve"), "no signature")
	st, err = ceremony.Check(f, s.st, now)
	require.NoError(t, err)
	require.NoError(t, st.Err())
}
