package ceremony_test

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/ceremony"
	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/hsm/node"
	"github.com/trentkms/trent/quorum"
	"github.com/trentkms/trent/session"
)

// withKEM rewrites a member file with an ML-KEM key, as trent hsm init
// prints it now.
func withKEM(t *testing.T, path string) []byte {
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var info node.Info
	require.NoError(t, json.Unmarshal(data, &info))
	seed := make([]byte, session.KEMSeedSize)
	rand.Read(seed)
	_, ek, err := session.KEMKeyFromSeed(seed)
	require.NoError(t, err)
	info.KEMPublicKey = ek
	data, err = json.Marshal(info)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, data, 0o644))
	return ek
}

func TestProposeSessionPolicy(t *testing.T) {
	s := newCeremonyState(t)
	dir := t.TempDir()
	// The state's one member, with a member file that has its ML-KEM key.
	m := s.st.Members[0]
	mFile := filepath.Join(dir, "m.json")
	sk, ak := spkiOf(t, m)
	data, err := json.Marshal(node.Info{HSMID: m.ID, SigningPublicKey: sk, AgreementPublicKey: ak, TokenLabel: "x", Module: "/m.so"})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(mFile, data, 0o644))

	// Without the member's key, hybrid required does not apply.
	_, err = ceremony.Propose(&ceremony.Proposal{Type: quorum.SetSessionPolicy, HybridRequired: true, Current: s.st}, now)
	require.ErrorContains(t, err, "has no ML-KEM-1024 key")
	_, err = ceremony.Propose(&ceremony.Proposal{Type: quorum.SetSessionPolicy, HybridRequired: true, MemberFiles: []string{mFile}, Current: s.st}, now)
	require.ErrorContains(t, err, "no kem_public_key")
	ek := withKEM(t, mFile)
	res, err := ceremony.Propose(&ceremony.Proposal{Type: quorum.SetSessionPolicy, HybridRequired: true, MemberFiles: []string{mFile}, Current: s.st}, now)
	require.NoError(t, err)
	assert.Contains(t, res.File.Summary().Change, "require hybrid ML-KEM-1024 + P-384 key establishment; member ML-KEM keys "+m.ID)
	require.True(t, res.Next.HybridRequired)
	assert.Equal(t, ek, res.Next.Members[0].KEM)
	s.alice.sign(t, res.File, s.st)
	s.carol.sign(t, res.File, s.st)
	next, err := domain.Apply(s.st, res.File.Signed, nil, now.Unix())
	require.NoError(t, err, "governed by SetRule's rule: two kms-operators")
	assert.True(t, next.HybridRequired)

	// A parameter of another type is refused.
	_, err = ceremony.Propose(&ceremony.Proposal{Type: quorum.SetRetention, Retention: retention(3), HybridRequired: true, Current: s.st}, now)
	require.ErrorContains(t, err, "--hybrid-required is not a parameter of SetRetention")
}

func spkiOf(t *testing.T, m session.Member) (sk, ak []byte) {
	sk, err := x509.MarshalPKIXPublicKey(m.Signing)
	require.NoError(t, err)
	ak, err = x509.MarshalPKIXPublicKey(m.Agreement)
	require.NoError(t, err)
	return sk, ak
}
