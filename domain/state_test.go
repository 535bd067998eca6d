package domain

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cloudflare/circl/sign/mldsa/mldsa87"

	"github.com/trentkms/trent/internal/testvec"
	"github.com/trentkms/trent/internal/wire"
	"github.com/trentkms/trent/quorum"
	"github.com/trentkms/trent/session"
)

var update = flag.Bool("update", false, "rewrite testdata/ vectors")

var (
	scalar    = testvec.Scalar
	detReader = testvec.Reader
	readN     = testvec.ReadN
)

type (
	detSigner = testvec.Signer
	softEph   = testvec.Ephemeral
)

type vecMember struct {
	sign  *ecdsa.PrivateKey
	agree *ecdh.PrivateKey
	m     session.Member
}

func newVecMember(t testing.TB, name string) vecMember {
	s, err := ecdsa.ParseRawPrivateKey(elliptic.P384(), scalar(name+" signing"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := ecdh.P384().NewPrivateKey(scalar(name + " agreement"))
	if err != nil {
		t.Fatal(err)
	}
	return vecMember{s, a, session.Member{ID: wire.HSMID(&s.PublicKey), Signing: &s.PublicKey, Agreement: a.PublicKey()}}
}

// vecState is a fixed domain: two members, alice (ECDSA), carol (ML-DSA-87)
// and a service host, default rules, one domain key.
func vecState(t testing.TB) (*State, []vecMember, *ecdsa.PrivateKey, *mldsa87.PrivateKey) {
	ms := []vecMember{newVecMember(t, "hsm-1"), newVecMember(t, "hsm-2")}
	slices.SortFunc(ms, func(a, b vecMember) int { return strings.Compare(a.m.ID, b.m.ID) })
	alice, _ := ecdsa.ParseRawPrivateKey(elliptic.P384(), scalar("alice"))
	var seed [mldsa87.SeedSize]byte
	copy(seed[:], "trent vector ML-DSA-87 seed carol")
	carolPub, carol := mldsa87.NewKeyFromSeed(&seed)
	host, _ := ecdsa.ParseRawPrivateKey(elliptic.P384(), scalar("host-1"))
	ak, _ := quorum.NewECDSAKey(&alice.PublicKey)
	ck, _ := quorum.NewMLDSAKey(carolPub)
	hk, _ := quorum.NewECDSAKey(&host.PublicKey)
	st := &State{
		Name: "example-domain", Version: 1, Rules: quorum.DefaultRules(), Retention: DefaultRetention,
		Operators: []quorum.Operator{{ID: "alice", Role: quorum.RoleKMSOperator, Key: ak},
			{ID: "carol", Role: quorum.RoleKMSOperator, Key: ck}, {ID: "host-1", Role: quorum.RoleServiceHost, Key: hk}},
	}
	for _, m := range ms {
		st.Members = append(st.Members, m.m)
	}
	var id [session.KeyIDSize]byte
	copy(id[:], "dk-1............")
	st.Keys = []KeyInfo{{ID: id, Created: 1767225600, Active: true}}
	return st, ms, alice, carol
}

func TestStateRoundTripAndInvariants(t *testing.T) {
	st, _, _, _ := vecState(t)
	raw, err := st.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseState(raw)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := back.Marshal()
	if !bytes.Equal(raw, again) {
		t.Fatal("state does not re-encode to the same bytes")
	}
	for i := range len(raw) {
		if _, err := ParseState(raw[:i]); err == nil {
			t.Fatalf("a %d-byte prefix parses", i)
		}
	}
	bad := map[string]func(s *State){
		"no members":            func(s *State) { s.Members = nil },
		"members out of order":  func(s *State) { s.Members[0], s.Members[1] = s.Members[1], s.Members[0] },
		"member ID not its key": func(s *State) { s.Members[0].ID = "hsm-0000000000000000" },
		"two active keys":       func(s *State) { s.Keys = append(s.Keys, KeyInfo{ID: [16]byte{1}, Created: 2e9, Active: true}) },
		"no active key":         func(s *State) { s.Keys[0].Active = false },
		"keys beyond retention": func(s *State) {
			s.Retention = 0
			s.Keys = append([]KeyInfo{{ID: [16]byte{1}}}, s.Keys...)
		},
		"a type without rule":    func(s *State) { delete(s.Rules, quorum.SetRule) },
		"ML-DSA service host":    func(s *State) { s.Operators[1].Role = quorum.RoleServiceHost },
		"operators out of order": func(s *State) { s.Operators[0], s.Operators[1] = s.Operators[1], s.Operators[0] },
		"bad attestation root":   func(s *State) { s.Roots = [][]byte{[]byte("not a certificate")} },
		"requirement of zero":    func(s *State) { s.Rules[quorum.AddMember] = []quorum.Rule{{{Role: "kms-operator", N: 0}}} },
	}
	for name, f := range bad {
		s := st.Clone()
		f(s)
		if _, err := s.Marshal(); err == nil {
			t.Errorf("%s: the state encodes", name)
		}
	}
}

// genTokenVector builds a domain token with fixed keys and randomness.
func genTokenVector(t testing.TB) *testvec.Vector {
	st, ms, alice, carol := vecState(t)
	c := &quorum.Command{Domain: st.Name, StateVersion: 0, Type: quorum.CreateDomain,
		IssuedAt: 1767225600, ExpiresAt: 1767225600 + 600}
	params, err := ParamsGenesis(st)
	if err != nil {
		t.Fatal(err)
	}
	c.Params = params
	copy(c.Nonce[:], "genesis nonce...")
	cmd, _ := c.Marshal()
	sa, _ := quorum.SignECDSA("alice", detSigner{K: alice}, cmd)
	sc, _ := quorum.SignMLDSA("carol", carol, cmd, true)
	signed := &quorum.SignedCommand{Command: cmd, Signatures: []quorum.Signature{sa, sc}}
	dk := readN(detReader("dk"), DKSize)
	eph, _ := ecdh.P384().NewPrivateKey(scalar("dE token"))
	tok, err := SealToken(st, signed, [][]byte{dk}, Exporter{
		ID: ms[0].m.ID, Signer: detSigner{K: ms[0].sign}, Rand: detReader("token"),
		NewEphemeral: func() (session.EphemeralKey, error) { return softEph{K: eph}, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	state, _ := st.Marshal()
	v := &testvec.Vector{Comment: []string{
		"A genesis domain token for example-domain (docs/protocol.md, Domain state and Exported domain token):",
		"two members (signing and agreement scalars SHA-384(\"trent vector key hsm-N signing|agreement\")),",
		"exported by the first member in ID order; DKEK and key nonce are the first 44 bytes of SHAKE256(\"trent vector rng token\").",
	}}
	v.Hex("member_a_signing_scalar", scalar("hsm-1 signing"))
	v.Hex("member_a_agreement_scalar", scalar("hsm-1 agreement"))
	v.Hex("member_b_signing_scalar", scalar("hsm-2 signing"))
	v.Hex("member_b_agreement_scalar", scalar("hsm-2 agreement"))
	v.Str("exporter", ms[0].m.ID)
	v.Hex("de_scalar", scalar("dE token"))
	v.Hex("token_random", readN(detReader("token"), DKSize+12))
	v.Hex("dk", dk)
	v.Hex("state", state)
	v.Hex("signed_command", mustMarshal(t, signed))
	v.Hex("token", tok)
	return v
}

func mustMarshal(t testing.TB, sc *quorum.SignedCommand) []byte {
	b, err := sc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTokenVector(t *testing.T) {
	path := filepath.Join("testdata", "token.txt")
	testvec.Check(t, path, genTokenVector(t), *update)
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The token opens for each member with its agreement key, and its
	// genesis command makes its state.
	f, _ := testvec.Parse(want)
	p, err := ParseToken(f["token"])
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Verify(p.State); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"hsm-1", "hsm-2"} {
		m := newVecMember(t, name)
		keys, err := p.OpenKeys(p.State, m.m.ID, softEph{K: m.agree})
		if err != nil {
			t.Fatal(name, err)
		}
		if !bytes.Equal(keys[0], f["dk"]) {
			t.Fatal(name, "wrong domain key")
		}
	}
	g, err := Genesis(p.Command, KeyInfo{ID: p.State.Keys[0].ID}, 1767225600)
	if err != nil {
		t.Fatal(err)
	}
	gb, _ := g.Marshal()
	if !bytes.Equal(gb, p.Token.State) {
		t.Fatal("genesis does not make the token's state")
	}
}

func FuzzParseState(f *testing.F) {
	st, _, _, _ := vecState(f)
	raw, _ := st.Marshal()
	f.Add(raw)
	f.Add(raw[:len(raw)/2])
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

func FuzzParseToken(f *testing.F) {
	data, err := os.ReadFile(filepath.Join("testdata", "token.txt"))
	if err != nil {
		f.Fatal(err)
	}
	v, _ := testvec.Parse(data)
	f.Add(v["token"])
	f.Add(v["token"][:100])
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := ParseToken(in)
		if err != nil {
			return
		}
		out, err := p.Token.Marshal()
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("re-encoding differs: %v", err)
		}
	})
}

func parseVectorFields(v *testvec.Vector) (map[string][]byte, error) {
	return testvec.Parse(v.Encode())
}

func mustECDH() *ecdh.PrivateKey {
	k, err := ecdh.P384().GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}
