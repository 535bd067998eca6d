package node_test

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/hsm"
	"github.com/trentkms/trent/hsm/node"
	"github.com/trentkms/trent/internal/testvec"
	"github.com/trentkms/trent/internal/wire"
	"github.com/trentkms/trent/quorum"
	"github.com/trentkms/trent/session"
	"github.com/trentkms/trent/softhsm"
	"github.com/trentkms/trent/tokenstore"
)

// madeUp is an HSM of the test's own making: key pairs in memory.
type madeUp struct {
	m   session.Member
	sig *ecdsa.PrivateKey
}

func newMadeUp(t *testing.T) madeUp {
	sig, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	agr, err := ecdh.P384().GenerateKey(rand.Reader)
	require.NoError(t, err)
	return madeUp{m: session.Member{ID: wire.HSMID(&sig.PublicKey), Signing: &sig.PublicKey, Agreement: agr.PublicKey()}, sig: sig}
}

func (u madeUp) exporter() domain.Exporter {
	return domain.Exporter{ID: u.m.ID, Signer: testvec.Signer{K: u.sig}, Rand: rand.Reader,
		NewEphemeral: func() (session.EphemeralKey, error) {
			k, err := ecdh.P384().GenerateKey(rand.Reader)
			return testvec.Ephemeral{K: k}, err
		}}
}

// forged is cur's domain (or another, name) at version, listing members
// and a fresh domain key, exported by ex: what conformance/hsm's
// forgedToken makes.
func (c *ceremony) forged(cur *domain.State, name string, version uint64, members []session.Member, ex domain.Exporter) []byte {
	st := cur.Clone()
	st.Name, st.Version, st.Retention, st.Roots = name, version, 0, nil
	st.Members = slices.Clone(members)
	slices.SortFunc(st.Members, func(a, b session.Member) int { return strings.Compare(a.ID, b.ID) })
	var id [session.KeyIDSize]byte
	_, _ = rand.Read(id[:])
	st.Keys = []domain.KeyInfo{{ID: id, Created: uint64(c.now.Unix()), Active: true}}
	params, err := domain.ParamsRetention(0)
	require.NoError(c.t, err)
	cmd := c.command(version-1, quorum.SetRetention, params, c.alice, c.bob)
	dk := make([]byte, domain.DKSize)
	_, _ = rand.Read(dk)
	tok, err := domain.SealToken(st, cmd, [][]byte{dk}, ex)
	require.NoError(c.t, err)
	return tok
}

// restart closes n and opens its token again: no state, the anchor only.
func (c *ceremony) restart(n *node.Node, label string) *node.Node {
	require.NoError(c.t, n.Close())
	return c.open(label)
}

func anchorOf(t *testing.T, n *node.Node) *node.Anchor {
	a, err := n.Anchor()
	require.NoError(t, err)
	return a
}

func TestAnchorFollowsAdoptedStates(t *testing.T) { eachModule(t, testAnchorFollowsAdoptedStates) }

func testAnchorFollowsAdoptedStates(t *testing.T, kind tokenstore.Kind) {
	c := newCeremonyOn(t, kind)
	h1, h2 := c.nodes[0], c.nodes[1]
	assert.Nil(t, anchorOf(t, h1), "a fresh token has no anchor")
	g := c.genesis(h1, h2)
	require.NoError(t, h2.Import(g, c.now))
	for _, n := range []*node.Node{h1, h2} {
		a := anchorOf(t, n)
		require.NotNil(t, a, n.ID())
		st, _ := n.DomainState()
		want, err := node.AnchorOf(st)
		require.NoError(t, err)
		assert.True(t, want.Equal(a), n.ID())
		assert.Equal(t, uint64(1), a.Version)
		assert.Len(t, a.Members, 2)
	}
	tok, err := h1.Export(c.command(1, quorum.RotateDomainKeys, nil, c.host), c.now)
	require.NoError(t, err)
	require.NoError(t, h1.Import(tok, c.now))
	require.NoError(t, h2.Import(tok, c.now))
	assert.Equal(t, uint64(2), anchorOf(t, h2).Version)

	// The anchor is a token object: it survives Close and Open.
	h2 = c.restart(h2, "hsm-2")
	assert.Equal(t, uint64(0), version(h2))
	a := anchorOf(t, h2)
	require.NotNil(t, a)
	assert.Equal(t, "test", a.Name)
	assert.Equal(t, uint64(2), a.Version)
	_, ok := a.Member(h1.ID())
	assert.True(t, ok)
}

// A restarted HSM takes back only its anchored domain, from a member it
// knew: the stranger who reaches it first gets nothing.
func TestRestartedHSMHoldsItsAnchor(t *testing.T) { eachModule(t, testRestartedHSMHoldsItsAnchor) }

func testRestartedHSMHoldsItsAnchor(t *testing.T, kind tokenstore.Kind) {
	c := newCeremonyOn(t, kind)
	h1, h2, h3 := c.nodes[0], c.nodes[1], c.nodes[2]
	g := c.genesis(h1, h2)
	require.NoError(t, h2.Import(g, c.now))
	latest, err := h1.Export(c.command(1, quorum.RotateDomainKeys, nil, c.host), c.now)
	require.NoError(t, err)
	require.NoError(t, h1.Import(latest, c.now))
	require.NoError(t, h2.Import(latest, c.now))
	cur, _ := h1.DomainState()

	h2 = c.restart(h2, "hsm-2")
	fake := newMadeUp(t)
	refused := map[string][]byte{
		// The hijack: the real HSM listed beside a made-up exporter.
		"own domain, made-up member":               c.forged(cur, "test", cur.Version+2, []session.Member{member(h2), fake.m}, fake.exporter()),
		"own domain, made-up member, same version": c.forged(cur, "test", cur.Version, []session.Member{member(h2), fake.m}, fake.exporter()),
		"another domain":                           c.forged(cur, "other", cur.Version+2, []session.Member{member(h2), fake.m}, fake.exporter()),
		"another domain, a known exporter":         c.forged(cur, "other", 1, []session.Member{member(h1), member(h2)}, h1.Exporter()),
		// A member it knew cannot fork the anchored version either.
		"anchored version, other members": c.forged(cur, "test", cur.Version, []session.Member{member(h1), member(h2), member(h3)}, h1.Exporter()),
		"older than the anchor":           g,
	}
	for name, tok := range refused {
		err := h2.Import(tok, c.now)
		require.ErrorIs(t, err, node.ErrAnchorRefused, name)
		assert.Equal(t, uint64(0), version(h2), name)
	}
	require.NoError(t, h2.Import(latest, c.now), "the real latest token, exported by a member it knew")
	assert.Equal(t, uint64(2), version(h2))
	c.session(t, h1, h2)

	// Ahead of its anchor, from a known member: the catch-up still works.
	h2 = c.restart(h2, "hsm-2")
	var next []byte
	for v := uint64(2); v <= 3; v++ {
		next, err = h1.Export(c.command(v, quorum.RotateDomainKeys, nil, c.host), c.now)
		require.NoError(t, err)
		require.NoError(t, h1.Import(next, c.now))
	}
	require.NoError(t, h2.Import(next, c.now))
	assert.Equal(t, uint64(4), version(h2))

	// Without the anchor, the first-use rule is all that is left: the
	// made-up member's token goes through. That is what reset-anchor
	// gives up.
	require.NoError(t, h2.Close())
	res, err := node.ResetAnchor(node.Options{Dir: c.dir, Label: "hsm-2"})
	require.NoError(t, err)
	assert.True(t, res.Removed)
	require.NotNil(t, res.Anchor)
	assert.Equal(t, uint64(4), res.Anchor.Version)
	h2 = c.open("hsm-2")
	require.NoError(t, h2.Import(refused["own domain, made-up member"], c.now))
}

// A member added while an HSM was away exported the latest token: the
// anchor does not know it, so the restarted HSM refuses it until the
// operator clears the anchor. An HSM that was running followed the
// membership change and takes it.
func TestAnchorAndMembershipChanges(t *testing.T) {
	c := newCeremony(t)
	h1, h2, h3, h4 := c.nodes[0], c.nodes[1], c.nodes[2], c.nodes[3]
	g := c.genesis(h1, h2, h3)
	require.NoError(t, h2.Import(g, c.now))
	require.NoError(t, h3.Import(g, c.now))
	add, err := domain.ParamsMember(member(h4))
	require.NoError(t, err)
	tok, err := h1.Export(c.command(1, quorum.AddMember, add, c.alice, c.bob), c.now)
	require.NoError(t, err)
	for _, n := range []*node.Node{h1, h2, h4} { // hsm-3 is away
		require.NoError(t, n.Import(tok, c.now))
	}
	rot, err := h4.Export(c.command(2, quorum.RotateDomainKeys, nil, c.host), c.now)
	require.NoError(t, err)
	for _, n := range []*node.Node{h1, h2, h4} {
		require.NoError(t, n.Import(rot, c.now))
	}
	h2 = c.restart(h2, "hsm-2")
	require.NoError(t, h2.Import(rot, c.now), "hsm-2 anchored the state that added hsm-4")

	h3 = c.restart(h3, "hsm-3")
	require.ErrorIs(t, h3.Import(rot, c.now), node.ErrAnchorRefused, "hsm-3 never knew hsm-4")
	require.NoError(t, h3.Close())
	_, err = node.ResetAnchor(node.Options{Dir: c.dir, Label: "hsm-3"})
	require.NoError(t, err)
	h3 = c.open("hsm-3")
	require.NoError(t, h3.Import(rot, c.now))
	assert.Equal(t, uint64(3), version(h3))
}

func TestCreateDomainOnAnchoredToken(t *testing.T) {
	c := newCeremony(t)
	h1, h2 := c.nodes[0], c.nodes[1]
	c.genesis(h1, h2)
	h1 = c.restart(h1, "hsm-1")
	st := &domain.State{Name: "test", Rules: quorum.DefaultRules(), Retention: domain.DefaultRetention,
		Operators: []quorum.Operator{c.alice.qop, c.bob.qop, c.carol.qop, c.host.qop}, Members: []session.Member{member(h1)}}
	params, err := domain.ParamsGenesis(st)
	require.NoError(t, err)
	_, err = h1.CreateDomain(c.command(0, quorum.CreateDomain, params, c.alice, c.carol), c.now)
	require.ErrorIs(t, err, node.ErrAnchored)
	assert.Nil(t, func() *domain.State { s, _ := h1.DomainState(); return s }())

	require.NoError(t, h1.Close())
	res, err := node.ResetAnchor(node.Options{Dir: c.dir, Label: "hsm-1"})
	require.NoError(t, err)
	assert.True(t, res.Removed)
	assert.Contains(t, res.Text(), `domain "test", version 1`)
	res, err = node.ResetAnchor(node.Options{Dir: c.dir, Label: "hsm-1"})
	require.NoError(t, err)
	assert.False(t, res.Removed, "nothing left to remove")

	h1 = c.open("hsm-1")
	_, err = h1.CreateDomain(c.command(0, quorum.CreateDomain, params, c.alice, c.carol), c.now)
	require.NoError(t, err)
	assert.Equal(t, uint64(1), anchorOf(t, h1).Version)
}

// A damaged anchor: Open refuses the node; reset-anchor clears it.
func TestMalformedAnchorRefusesOpen(t *testing.T) {
	c := newCeremony(t)
	h1 := c.nodes[0]
	require.NoError(t, h1.Close())
	store, err := softhsm.Create(c.dir)
	require.NoError(t, err)
	pin, err := tokenstore.ReadPINFile(filepath.Join(c.dir, node.UserPINFile))
	require.NoError(t, err)
	tok, err := hsm.Open(store.TokenConfig("hsm-1", pin))
	require.NoError(t, err)
	_, err = tok.WriteData(node.AnchorLabel, node.AnchorApplication, []byte("TRNT\x01\x23garbage"))
	require.NoError(t, err)
	require.NoError(t, tok.Close())

	_, err = node.Open(node.Options{Dir: c.dir, Label: "hsm-1"})
	require.ErrorIs(t, err, node.ErrMalformedAnchor)
	assert.Contains(t, err.Error(), "reset-anchor")

	res, err := node.ResetAnchor(node.Options{Dir: c.dir, Label: "hsm-1"})
	require.NoError(t, err)
	assert.True(t, res.Removed)
	assert.Nil(t, res.Anchor)
	assert.NotEmpty(t, res.Malformed)
	assert.Len(t, res.SHA256, 64)
	assert.Contains(t, res.Text(), "malformed")
	c.open("hsm-1")
}
