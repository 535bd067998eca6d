package domain

import (
	"bytes"
	"crypto/ecdh"
	"errors"
	"testing"

	"github.com/cloudflare/circl/kem/mlkem/mlkem1024"
	"github.com/cloudflare/circl/sign/mldsa/mldsa87"

	"github.com/trentkms/trent/quorum"
	"github.com/trentkms/trent/session"
)

func kemKey(t testing.TB, name string) []byte {
	_, ek, err := session.KEMKeyFromSeed(readN(detReader("kem "+name), session.KEMSeedSize))
	if err != nil {
		t.Fatal(err)
	}
	return ek
}

// signPolicy makes SetSessionPolicy for st, signed by alice and carol.
func signPolicy(t testing.TB, st *State, alice detSigner, carol *mldsa87.PrivateKey, hybrid bool, keys []MemberKEM) *quorum.SignedCommand {
	params, err := ParamsSessionPolicy(hybrid, keys)
	if err != nil {
		t.Fatal(err)
	}
	c := &quorum.Command{Domain: st.Name, StateVersion: st.Version, Type: quorum.SetSessionPolicy,
		Params: params, IssuedAt: 1767225600, ExpiresAt: 1767225600 + 600}
	cmd, _ := c.Marshal()
	sa, err := quorum.SignECDSA("alice", alice, cmd)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := quorum.SignMLDSA("carol", carol, cmd, true)
	if err != nil {
		t.Fatal(err)
	}
	return &quorum.SignedCommand{Command: cmd, Signatures: []quorum.Signature{sa, sc}}
}

func TestSessionPolicy(t *testing.T) {
	st, ms, alice, carol := vecState(t)
	classical, err := st.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	keys := []MemberKEM{{ID: ms[0].m.ID, EK: kemKey(t, "1")}, {ID: ms[1].m.ID, EK: kemKey(t, "2")}}

	// Hybrid required without a key for every member does not apply.
	if _, err := Apply(st, signPolicy(t, st, detSigner{K: alice}, carol, true, keys[:1]), nil, 1767225600); !errors.Is(err, ErrCommand) {
		t.Fatalf("hybrid without every member's key: %v", err)
	}
	next, err := Apply(st, signPolicy(t, st, detSigner{K: alice}, carol, true, keys), nil, 1767225600)
	if err != nil {
		t.Fatal(err)
	}
	if !next.HybridRequired || !bytes.Equal(next.Members[1].KEM, keys[1].EK) || st.Members[0].KEM != nil {
		t.Fatal("policy not applied, or the old state changed")
	}
	raw, err := next.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseState(raw)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := back.Marshal()
	if !bytes.Equal(raw, again) || !back.HybridRequired {
		t.Fatal("hybrid state does not round-trip")
	}
	dir, err := back.Directory()
	if err != nil {
		t.Fatal(err)
	}
	if !session.RequiresHybrid(dir) {
		t.Fatal("the directory does not carry the policy")
	}
	// A member added to a hybrid domain must bring its ML-KEM key.
	nm := newVecMember(t, "hsm-3")
	add := func(m session.Member) error {
		p, err := ParamsMember(m)
		if err != nil {
			t.Fatal(err)
		}
		c := &quorum.Command{Domain: next.Name, StateVersion: next.Version, Type: quorum.AddMember,
			Params: p, IssuedAt: 1767225600, ExpiresAt: 1767225600 + 600}
		cmd, _ := c.Marshal()
		sa, _ := quorum.SignECDSA("alice", detSigner{K: alice}, cmd)
		sc, _ := quorum.SignMLDSA("carol", carol, cmd, true)
		_, err = Apply(next, &quorum.SignedCommand{Command: cmd, Signatures: []quorum.Signature{sa, sc}}, nil, 1767225600)
		return err
	}
	if err := add(nm.m); !errors.Is(err, ErrCommand) {
		t.Fatalf("member without ML-KEM key added to a hybrid domain: %v", err)
	}
	nm.m.KEM = kemKey(t, "3")
	if err := add(nm.m); err != nil {
		t.Fatal(err)
	}
	// Back to classical, keys dropped: the encoding is the classical one.
	again2, err := Apply(next, signPolicy(t, next, detSigner{K: alice}, carol, false, nil), nil, 1767225600)
	if err != nil {
		t.Fatal(err)
	}
	raw2, _ := again2.Marshal()
	if !bytes.Equal(raw2[len(raw2)-1:], classical[len(classical)-1:]) || len(raw2) != len(classical) {
		t.Fatal("classical state with the section")
	}
	// Non-canonical sections are refused: present but empty, a bad key.
	if _, err := ParseState(append(bytes.Clone(classical), 0, 0)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("empty section: %v", err)
	}
	bad := bytes.Clone(raw)
	bad[len(bad)-session.KEMKeySize] = 0xff
	bad[len(bad)-session.KEMKeySize+1] = 0xff
	if _, err := ParseState(bad); !errors.Is(err, ErrMalformed) {
		t.Fatalf("invalid ML-KEM key: %v", err)
	}
}

// FuzzSessionPolicyParams: SetSessionPolicy's and AddMember's parameters
// decode strictly; what decodes re-encodes to the same bytes.
func FuzzSessionPolicyParams(f *testing.F) {
	st, ms, _, _ := vecState(f)
	p, _ := ParamsSessionPolicy(true, []MemberKEM{{ID: ms[0].m.ID, EK: kemKey(f, "1")}})
	f.Add(uint16(quorum.SetSessionPolicy), p)
	f.Add(uint16(quorum.SetSessionPolicy), []byte{0, 0})
	m := st.Members[0]
	m.KEM = kemKey(f, "2")
	add, _ := ParamsMember(m)
	f.Add(uint16(quorum.AddMember), add)
	f.Fuzz(func(t *testing.T, typ uint16, in []byte) {
		if typ != uint16(quorum.SetSessionPolicy) && typ != uint16(quorum.AddMember) {
			return
		}
		ch, err := DecodeChange(&quorum.Command{Type: quorum.CommandType(typ), Params: in})
		if err != nil {
			return
		}
		out, err := ch.Params()
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("re-encoding differs: %v", err)
		}
	})
}

// FuzzParseHybridState seeds FuzzParseState's property with a state that
// has the policy section.
func FuzzParseHybridState(f *testing.F) {
	st, ms, _, _ := vecState(f)
	for i := range st.Members {
		st.Members[i].KEM = kemKey(f, ms[i].m.ID)
	}
	st.HybridRequired = true
	raw, err := st.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := ParseState(in)
		if err != nil {
			return
		}
		out, err := s.Marshal()
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("re-encoding differs: %v", err)
		}
	})
}

// A genesis token of a domain that requires hybrid key establishment
// carries its DKEK in the hybrid one-pass: each member opens it with both
// its agreement key and its ML-KEM key, not with one alone, and a token
// of that state re-made with a classical DKEK message is refused.
func TestHybridToken(t *testing.T) {
	st, ms, alice, carol := vecState(t)
	var dks []*mlkem1024.PrivateKey
	for i := range st.Members {
		dk, ek, err := session.KEMKeyFromSeed(readN(detReader("kem token "+ms[i].m.ID), session.KEMSeedSize))
		if err != nil {
			t.Fatal(err)
		}
		st.Members[i].KEM, dks = ek, append(dks, dk)
	}
	st.HybridRequired = true
	c := &quorum.Command{Domain: st.Name, Type: quorum.CreateDomain, IssuedAt: 1767225600, ExpiresAt: 1767225600 + 600}
	var err error
	if c.Params, err = ParamsGenesis(st); err != nil {
		t.Fatal(err)
	}
	cmd, _ := c.Marshal()
	sa, _ := quorum.SignECDSA("alice", detSigner{K: alice}, cmd)
	sc, _ := quorum.SignMLDSA("carol", carol, cmd, true)
	signed := &quorum.SignedCommand{Command: cmd, Signatures: []quorum.Signature{sa, sc}}
	g, err := Genesis(signed, st.Keys[0], 1767225600)
	if err != nil {
		t.Fatal(err)
	}
	if !g.HybridRequired || g.Members[1].KEM == nil {
		t.Fatal("genesis lost the policy section")
	}
	dk := readN(detReader("dk"), DKSize)
	eph, _ := ecdh.P384().NewPrivateKey(scalar("dE token"))
	ex := Exporter{ID: ms[0].m.ID, Signer: detSigner{K: ms[0].sign}, Rand: detReader("hybrid token"),
		NewEphemeral: func() (session.EphemeralKey, error) { return softEph{K: eph}, nil }}
	raw, err := SealToken(g, signed, [][]byte{dk}, ex)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParseToken(raw)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := session.ParseOnePass(p.Token.DKEK); !m.Hybrid {
		t.Fatal("the DKEK travels classically")
	}
	for i, m := range ms {
		keys, err := p.OpenKeysHybrid(p.State, m.m.ID, softEph{K: m.agree}, dks[i])
		if err != nil || !bytes.Equal(keys[0], dk) {
			t.Fatalf("%s: %v", m.m.ID, err)
		}
		if _, err := p.OpenKeys(p.State, m.m.ID, softEph{K: m.agree}); !errors.Is(err, session.ErrInvalidKEM) {
			t.Fatalf("%s opens a hybrid DKEK without its ML-KEM key: %v", m.m.ID, err)
		}
		if _, err := p.OpenKeysHybrid(p.State, m.m.ID, softEph{K: m.agree}, dks[1-i]); !errors.Is(err, session.ErrAuthentication) {
			t.Fatalf("%s opens with another member's ML-KEM key: %v", m.m.ID, err)
		}
	}

	// The same token with the DKEK (the first 32 bytes the exporter drew)
	// wrapped classically and re-signed by the exporter: refused.
	dkek := readN(detReader("hybrid token"), DKSize)
	var rs []session.Recipient
	for _, m := range g.Members {
		rs = append(rs, session.Recipient{ID: m.ID, Agreement: m.Agreement})
	}
	classical, err := session.SealOnePass(ms[0].m.ID, detSigner{K: ms[0].sign}, softEph{K: eph}, dkekContext(p.Token.State), dkek, rs)
	if err != nil {
		t.Fatal(err)
	}
	forged := *p.Token
	forged.DKEK = classical
	if err := forged.Sign(detSigner{K: ms[0].sign}); err != nil {
		t.Fatal(err)
	}
	fraw, _ := forged.Marshal()
	fp, err := ParseToken(fraw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fp.OpenKeysHybrid(fp.State, ms[0].m.ID, softEph{K: ms[0].agree}, dks[0]); !errors.Is(err, session.ErrHybridRequired) {
		t.Fatalf("a classical DKEK in a hybrid-required domain: %v", err)
	}
}
