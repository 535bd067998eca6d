package ceremony_test

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/ceremony"
	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/hsm/node"
	"github.com/trentkms/trent/internal/wire"
	"github.com/trentkms/trent/quorum"
	"github.com/trentkms/trent/session"
)

var now = time.Unix(1767225600, 0)

// op is an operator with a key file and an entry file in a test dir.
type op struct {
	id, keyFile, entryFile string
	entry                  ceremony.Entry
}

func newOp(t testing.TB, dir, id string, alg quorum.Alg) *op {
	t.Helper()
	o := &op{id: id, keyFile: filepath.Join(dir, id+".pem"), entryFile: filepath.Join(dir, id+".json")}
	var err error
	o.entry, err = ceremony.GenerateKeyFile(o.keyFile, id, alg)
	require.NoError(t, err)
	data, err := json.Marshal(o.entry)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(o.entryFile, data, 0o644))
	return o
}

func (o *op) operator(role string) quorum.Operator {
	return quorum.Operator{ID: o.id, Role: role, Key: o.entry.Key}
}

func (o *op) sign(t testing.TB, f *ceremony.File, cur *domain.State) {
	t.Helper()
	k, err := ceremony.OpenKey(o.keyFile, "")
	require.NoError(t, err)
	defer k.Close()
	require.NoError(t, f.Sign(o.id, k, cur, now))
}

// newMember makes a member HSM's keys (in memory) and the file trent hsm
// init would print for it.
func newMember(t testing.TB, dir string) (session.Member, string) {
	t.Helper()
	sig, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	agr, err := ecdh.P384().GenerateKey(rand.Reader)
	require.NoError(t, err)
	m := session.Member{ID: wire.HSMID(&sig.PublicKey), Signing: &sig.PublicKey, Agreement: agr.PublicKey()}
	sk, err := x509.MarshalPKIXPublicKey(m.Signing)
	require.NoError(t, err)
	ak, err := x509.MarshalPKIXPublicKey(m.Agreement)
	require.NoError(t, err)
	data, err := json.Marshal(node.Info{HSMID: m.ID, SigningPublicKey: sk, AgreementPublicKey: ak, TokenLabel: "x", Module: "/m.so"})
	require.NoError(t, err)
	path := filepath.Join(dir, m.ID+".json")
	require.NoError(t, os.WriteFile(path, data, 0o644))
	return m, path
}

// testState is domain "test" at version 3 with one member and ops as
// kms-operators.
func testState(t testing.TB, ops ...*op) *domain.State {
	t.Helper()
	m, _ := newMember(t, t.TempDir())
	st := &domain.State{Name: "test", Version: 3, Members: []session.Member{m}, Rules: quorum.DefaultRules(),
		Retention: domain.DefaultRetention, Keys: []domain.KeyInfo{{ID: [16]byte{1}, Created: 1, Active: true}}}
	for _, o := range ops {
		st.Operators = append(st.Operators, o.operator(quorum.RoleKMSOperator))
	}
	slices.SortFunc(st.Operators, func(a, b quorum.Operator) int { return strings.Compare(a.ID, b.ID) })
	require.NoError(t, st.Validate())
	return st
}

func retention(n int) *int { return &n }

// ceremonyState is domain "test" at version 3 with kms-operators alice
// (ECDSA), bob (ECDSA) and carol (ML-DSA-87).
type ceremonyState struct {
	dir               string
	alice, bob, carol *op
	st                *domain.State
}

func newCeremonyState(t testing.TB) ceremonyState {
	t.Helper()
	dir := t.TempDir()
	s := ceremonyState{dir: dir, alice: newOp(t, dir, "alice", quorum.ECDSAP384),
		bob: newOp(t, dir, "bob", quorum.ECDSAP384), carol: newOp(t, dir, "carol", quorum.MLDSA87)}
	s.st = testState(t, s.alice, s.bob, s.carol)
	return s
}
