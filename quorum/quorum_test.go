package quorum_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/cloudflare/circl/sign/mldsa/mldsa87"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/quorum"
)

var now = time.Unix(1767225600, 0)

type signer struct {
	op   quorum.Operator
	ec   *ecdsa.PrivateKey
	ml   *mldsa87.PrivateKey
	sign func(cmd []byte) quorum.Signature
}

func newECDSAOperator(t testing.TB, id, role string) *signer {
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	pk, err := quorum.NewECDSAKey(&k.PublicKey)
	require.NoError(t, err)
	s := &signer{op: quorum.Operator{ID: id, Role: role, Key: pk}, ec: k}
	s.sign = func(cmd []byte) quorum.Signature {
		sig, err := quorum.SignECDSA(id, k, cmd)
		require.NoError(t, err)
		return sig
	}
	return s
}

func newMLDSAOperator(t testing.TB, id, role string) *signer {
	pub, priv, err := mldsa87.GenerateKey(rand.Reader)
	require.NoError(t, err)
	pk, err := quorum.NewMLDSAKey(pub)
	require.NoError(t, err)
	s := &signer{op: quorum.Operator{ID: id, Role: role, Key: pk}, ml: priv}
	s.sign = func(cmd []byte) quorum.Signature {
		sig, err := quorum.SignMLDSA(id, priv, cmd, false)
		require.NoError(t, err)
		return sig
	}
	return s
}

func newCommand(t testing.TB, domain string, version uint64, typ quorum.CommandType, issued time.Time) []byte {
	c, err := quorum.NewCommand(domain, version, typ, []byte("params"), issued, 0, func(b []byte) error { _, err := rand.Read(b); return err })
	require.NoError(t, err)
	b, err := c.Marshal()
	require.NoError(t, err)
	return b
}

func TestEvaluate(t *testing.T) {
	alice := newECDSAOperator(t, "alice", quorum.RoleKMSOperator)
	bob := newECDSAOperator(t, "bob", quorum.RoleKMSOperator)
	carol := newMLDSAOperator(t, "carol", quorum.RoleKMSOperator)
	host := newECDSAOperator(t, "host-1", quorum.RoleServiceHost)
	mallory := newECDSAOperator(t, "mallory", quorum.RoleKMSOperator) // not in the domain
	st := &quorum.State{Domain: "d", Version: 5, Rules: quorum.DefaultRules(),
		Operators: []quorum.Operator{alice.op, bob.op, carol.op, host.op}}
	require.NoError(t, st.Rules.Validate())

	add := newCommand(t, "d", 5, quorum.AddMember, now)
	rot := newCommand(t, "d", 5, quorum.RotateDomainKeys, now)
	sigs := func(cmd []byte, ss ...*signer) []quorum.Signature {
		var out []quorum.Signature
		for _, s := range ss {
			out = append(out, s.sign(cmd))
		}
		return out
	}
	badSig := alice.sign(add)
	badSig.Sig[len(badSig.Sig)-1] ^= 1
	mlAsEC := carol.sign(add)
	mlAsEC.Signer = "alice" // an ML-DSA signature under an ECDSA operator's name

	cases := []struct {
		name    string
		cmd     []byte
		sigs    []quorum.Signature
		at      time.Time
		outcome quorum.Outcome
		text    string
		reason  error
	}{
		{"two kms-operators", add, sigs(add, alice, bob), now, quorum.Satisfied, "satisfied by 2 kms-operator", nil},
		{"ECDSA and ML-DSA-87 operators", add, sigs(add, alice, carol), now, quorum.Satisfied, "satisfied by 2 kms-operator", nil},
		{"one operator alone", add, sigs(add, alice), now, quorum.Pending, "pending: need 1 more kms-operator", nil},
		{"no signature", add, nil, now, quorum.Pending, "pending: need 2 more kms-operator", nil},
		{"one operator's duplicate signatures", add, sigs(add, alice, alice, alice), now, quorum.Pending, "pending: need 1 more kms-operator", nil},
		{"a signer of the wrong role", add, sigs(add, alice, host), now, quorum.Pending, "pending: need 1 more kms-operator", nil},
		{"service host rotates", rot, sigs(rot, host), now, quorum.Satisfied, "satisfied by 1 service-host", nil},
		{"rotation: the closest rule is reported", rot, nil, now, quorum.Pending, "pending: need 1 more service-host", nil},
		{"a removed or unknown operator", add, sigs(add, alice, mallory), now, quorum.Rejected, "", quorum.ErrUnknownSigner},
		{"a bad signature", add, []quorum.Signature{badSig, bob.sign(add)}, now, quorum.Rejected, "", quorum.ErrBadSignature},
		{"an algorithm that is not the operator's", add, []quorum.Signature{mlAsEC, bob.sign(add)}, now, quorum.Rejected, "", quorum.ErrBadSignature},
		{"a signature over another command", add, sigs(rot, alice, bob), now, quorum.Rejected, "", quorum.ErrBadSignature},
		{"expired", add, sigs(add, alice, bob), now.Add(quorum.DefaultExpiry), quorum.Rejected, "rejected: command expired", quorum.ErrExpired},
		{"issued in the future", add, sigs(add, alice, bob), now.Add(-time.Hour), quorum.Rejected, "", quorum.ErrNotYetValid},
		{"another state version", newCommand(t, "d", 4, quorum.AddMember, now), nil, now, quorum.Rejected, "", quorum.ErrWrongVersion},
		{"another domain", newCommand(t, "e", 5, quorum.AddMember, now), nil, now, quorum.Rejected, "", quorum.ErrWrongDomain},
		{"no rule for the type", newCommand(t, "d", 5, quorum.CommandType(99), now), nil, now, quorum.Rejected, "", quorum.ErrNoRule},
		{"not a command", []byte("hello"), nil, now, quorum.Rejected, "", quorum.ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := quorum.Evaluate(st, c.cmd, c.sigs, c.at)
			assert.Equal(t, c.outcome, r.Outcome, r.String())
			if c.text != "" {
				assert.Equal(t, c.text, r.String())
			}
			if c.reason != nil {
				assert.ErrorIs(t, r.Err(), c.reason)
			}
			if c.outcome == quorum.Satisfied {
				assert.NoError(t, r.Err())
			}
			if c.outcome == quorum.Pending {
				assert.ErrorIs(t, r.Err(), quorum.ErrPending)
			}
		})
	}
}

// naiveSatisfied is a deliberately naive second implementation: for each
// alternative, for each requirement, scan the signature list and count the
// signers of that role not seen earlier in the list.
func naiveSatisfied(ops map[string]string, alts []quorum.Rule, sigs []quorum.Signature) (bool, int) {
	bestMissing := 1 << 30
	for _, rule := range alts {
		need := map[string]int{}
		for _, q := range rule {
			need[q.Role] += q.N
		}
		missing := 0
		for role, n := range need {
			have := 0
			for i, s := range sigs {
				dup := false
				for j := 0; j < i; j++ {
					if sigs[j].Signer == s.Signer {
						dup = true
					}
				}
				if !dup && ops[s.Signer] == role {
					have++
				}
			}
			if have < n {
				missing += n - have
			}
		}
		if missing == 0 {
			return true, 0
		}
		bestMissing = min(bestMissing, missing)
	}
	return false, bestMissing
}

func TestEvaluateAgainstNaive(t *testing.T) {
	roles := []string{"a", "b", "c"}
	rng := mrand.New(mrand.NewPCG(1, 2))
	cmd := newCommand(t, "d", 1, quorum.SetRule, now)
	var pool []*signer
	ops := map[string]string{}
	for i := range 8 {
		s := newECDSAOperator(t, fmt.Sprintf("op-%d", i), roles[rng.IntN(len(roles))])
		pool = append(pool, s)
		ops[s.op.ID] = s.op.Role
	}
	sigOf := map[string]quorum.Signature{}
	var operators []quorum.Operator
	for _, s := range pool {
		sigOf[s.op.ID] = s.sign(cmd)
		operators = append(operators, s.op)
	}
	for iter := range 400 {
		var alts []quorum.Rule
		for range 1 + rng.IntN(3) {
			var rule quorum.Rule
			for range 1 + rng.IntN(3) {
				rule = append(rule, quorum.Requirement{Role: roles[rng.IntN(len(roles))], N: 1 + rng.IntN(3)})
			}
			alts = append(alts, rule)
		}
		var sigs []quorum.Signature
		for range rng.IntN(10) {
			sigs = append(sigs, sigOf[pool[rng.IntN(len(pool))].op.ID])
		}
		st := &quorum.State{Domain: "d", Version: 1, Operators: operators, Rules: quorum.Rules{quorum.SetRule: alts}}
		r := quorum.Evaluate(st, cmd, sigs, now)
		ok, missing := naiveSatisfied(ops, alts, sigs)
		require.Equal(t, ok, r.Outcome == quorum.Satisfied, "iteration %d: %v, rules %v", iter, r, alts)
		if !ok {
			got := 0
			for _, m := range r.Missing {
				got += m.N
			}
			require.Equal(t, missing, got, "iteration %d: %v", iter, r)
		}
		var distinct []string
		for _, s := range sigs {
			if !slices.Contains(distinct, s.Signer) {
				distinct = append(distinct, s.Signer)
			}
		}
		slices.Sort(distinct)
		require.Equal(t, distinct, r.Signers)
	}
}

func TestSignedCommandEncoding(t *testing.T) {
	alice := newECDSAOperator(t, "alice", quorum.RoleKMSOperator)
	carol := newMLDSAOperator(t, "carol", quorum.RoleKMSOperator)
	cmd := newCommand(t, "d", 1, quorum.AddOperator, now)
	sc := &quorum.SignedCommand{Command: cmd}
	require.NoError(t, sc.Add(carol.sign(cmd)))
	require.NoError(t, sc.Add(alice.sign(cmd)))
	require.NoError(t, sc.Add(alice.sign(cmd)), "re-signing replaces")
	require.Len(t, sc.Signatures, 2)
	assert.Equal(t, "alice", sc.Signatures[0].Signer)
	raw, err := sc.Marshal()
	require.NoError(t, err)
	back, c, err := quorum.ParseSignedCommand(raw)
	require.NoError(t, err)
	assert.Equal(t, sc, back)
	assert.Equal(t, quorum.AddOperator, c.Type)
	for i := range len(raw) {
		_, _, err := quorum.ParseSignedCommand(raw[:i])
		require.Error(t, err, "prefix of %d bytes", i)
	}
	_, _, err = quorum.ParseSignedCommand(append(raw, 0))
	require.ErrorIs(t, err, quorum.ErrMalformed)

	// Out of order, hence possibly duplicated, signers do not encode.
	sc.Signatures[0], sc.Signatures[1] = sc.Signatures[1], sc.Signatures[0]
	_, err = sc.Marshal()
	require.Error(t, err)

	pk, err := quorum.ParsePublicKey(quorum.MLDSA87, mustMarshal(t, carol.op.Key))
	require.NoError(t, err)
	assert.True(t, pk.Equal(carol.op.Key))
	pk, err = quorum.ParsePublicKey(quorum.ECDSAP384, mustMarshal(t, alice.op.Key))
	require.NoError(t, err)
	assert.True(t, pk.Equal(alice.op.Key))
	assert.False(t, pk.Equal(carol.op.Key))
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, err = quorum.NewECDSAKey(&p256.PublicKey)
	require.Error(t, err)
	_, err = quorum.SignECDSA("x", p256, cmd)
	require.Error(t, err)
}

func mustMarshal(t *testing.T, k quorum.PublicKey) []byte {
	b, err := k.Marshal()
	require.NoError(t, err)
	return b
}

func TestCommandLimits(t *testing.T) {
	r := func(b []byte) error { _, err := rand.Read(b); return err }
	_, err := quorum.NewCommand("d", 1, quorum.AddMember, nil, now, 25*time.Hour, r)
	require.Error(t, err)
	_, err = quorum.NewCommand("d", 1, quorum.AddMember, make([]byte, quorum.MaxParams+1), now, 0, r)
	require.Error(t, err)
	_, err = quorum.NewCommand("bad domain", 1, quorum.AddMember, nil, now, 0, r)
	require.Error(t, err)
	_, err = quorum.NewCommand("d", 1, quorum.AddMember, nil, now, 0, func([]byte) error { return errors.New("no entropy") })
	require.Error(t, err)
	typ, err := quorum.ParseCommandType("RotateDomainKeys")
	require.NoError(t, err)
	assert.Equal(t, quorum.RotateDomainKeys, typ)
	_, err = quorum.ParseCommandType("Launch")
	require.Error(t, err)
}
