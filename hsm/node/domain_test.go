package node_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare/circl/sign/mldsa/mldsa87"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/hsm/node"
	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/quorum"
	"github.com/trentkms/trent/session"
	"github.com/trentkms/trent/tokenstore"
	"github.com/trentkms/trent/tokenstore/storetest"
)

type op struct {
	id  string
	ec  *ecdsa.PrivateKey
	ml  *mldsa87.PrivateKey
	qop quorum.Operator
}

func (o *op) sign(t testing.TB, cmd []byte) quorum.Signature {
	var sig quorum.Signature
	var err error
	if o.ml != nil {
		sig, err = quorum.SignMLDSA(o.id, o.ml, cmd, false)
	} else {
		sig, err = quorum.SignECDSA(o.id, o.ec, cmd)
	}
	require.NoError(t, err)
	return sig
}

func ecOp(t testing.TB, id, role string) *op {
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	pk, err := quorum.NewECDSAKey(&k.PublicKey)
	require.NoError(t, err)
	return &op{id: id, ec: k, qop: quorum.Operator{ID: id, Role: role, Key: pk}}
}

func mlOp(t testing.TB, id, role string) *op {
	pub, priv, err := mldsa87.GenerateKey(rand.Reader)
	require.NoError(t, err)
	pk, err := quorum.NewMLDSAKey(pub)
	require.NoError(t, err)
	return &op{id: id, ml: priv, qop: quorum.Operator{ID: id, Role: role, Key: pk}}
}

// ceremony is a domain on real tokens: four HSM nodes in one data dir
// (SoftHSM2, or NSS's softoken with newCeremonyOn), operators alice and bob
// (ECDSA) and carol (ML-DSA-87), and host-1.
type ceremony struct {
	t                 testing.TB
	dir               string
	nodes             []*node.Node
	alice, bob, carol *op
	host              *op
	now               time.Time
	nonce             byte
}

func newCeremony(t testing.TB) *ceremony { return newCeremonyOn(t, tokenstore.SoftHSM) }

// newCeremonyOn is newCeremony on the module kind. Its tokens are all made
// before any is opened: NSS's softoken reads the list of a data dir's
// tokens when the module starts (package nss).
func newCeremonyOn(t testing.TB, kind tokenstore.Kind) *ceremony {
	e := storetest.New(t, kind)
	c := &ceremony{t: t, dir: e.Dir(), now: time.Now(),
		alice: ecOp(t, "alice", quorum.RoleKMSOperator), bob: ecOp(t, "bob", quorum.RoleKMSOperator),
		carol: mlOp(t, "carol", quorum.RoleKMSOperator), host: ecOp(t, "host-1", quorum.RoleServiceHost)}
	for i := 1; i <= 4; i++ {
		_, err := node.Init(node.InitOptions{Dir: c.dir, Label: fmt.Sprintf("hsm-%d", i), Module: string(kind)})
		require.NoError(t, err)
	}
	for i := 1; i <= 4; i++ {
		c.nodes = append(c.nodes, c.open(fmt.Sprintf("hsm-%d", i)))
	}
	return c
}

// eachModule runs f as a subtest per module kind (storetest.Each).
func eachModule(t *testing.T, f func(t *testing.T, kind tokenstore.Kind)) {
	for _, k := range tokenstore.Kinds {
		t.Run(string(k), func(t *testing.T) {
			storetest.RequireModule(t, k)
			f(t, k)
		})
	}
}

func (c *ceremony) open(label string) *node.Node {
	_, err := node.Init(node.InitOptions{Dir: c.dir, Label: label})
	require.NoError(c.t, err)
	n, err := node.Open(node.Options{Dir: c.dir, Label: label})
	require.NoError(c.t, err)
	c.t.Cleanup(func() { n.Close() })
	return n
}

func member(n *node.Node) session.Member {
	id := n.Identity()
	return session.Member{ID: n.ID(), Signing: id.Signing.PublicKey(), Agreement: id.Agreement.PublicKey()}
}

// command makes and signs a command for the domain at version.
func (c *ceremony) command(version uint64, typ quorum.CommandType, params []byte, signers ...*op) *quorum.SignedCommand {
	c.nonce++
	cmd := &quorum.Command{Domain: "test", StateVersion: version, Type: typ, Params: params,
		IssuedAt: uint64(c.now.Unix()), ExpiresAt: uint64(c.now.Add(10 * time.Minute).Unix())}
	cmd.Nonce[0] = c.nonce
	raw, err := cmd.Marshal()
	require.NoError(c.t, err)
	sc := &quorum.SignedCommand{Command: raw}
	for _, s := range signers {
		require.NoError(c.t, sc.Add(s.sign(c.t, raw)))
	}
	return sc
}

func (c *ceremony) genesis(members ...*node.Node) []byte {
	st := &domain.State{Name: "test", Rules: quorum.DefaultRules(), Retention: domain.DefaultRetention,
		Operators: []quorum.Operator{c.alice.qop, c.bob.qop, c.carol.qop, c.host.qop}}
	for _, n := range members {
		st.Members = append(st.Members, member(n))
	}
	slices.SortFunc(st.Members, func(a, b session.Member) int { return strings.Compare(a.ID, b.ID) })
	params, err := domain.ParamsGenesis(st)
	require.NoError(c.t, err)
	token, err := members[0].CreateDomain(c.command(0, quorum.CreateDomain, params, c.alice, c.carol), c.now)
	require.NoError(c.t, err)
	return token
}

func version(n *node.Node) uint64 {
	st, _ := n.DomainState()
	if st == nil {
		return 0
	}
	return st.Version
}

// session makes a session with one node and checks another serves it.
func (c *ceremony) session(t testing.TB, made, served *node.Node) *session.Session {
	st, _ := made.DomainState()
	dir, err := st.Directory()
	require.NoError(t, err)
	host := &session.Host{ID: "host-1", Signer: c.host.ec, Dir: dir}
	p, hello, err := host.Begin()
	require.NoError(t, err)
	reply, err := made.Handler().HSM.Handshake(hello)
	require.NoError(t, err)
	s, err := p.Finish(reply)
	require.NoError(t, err)
	env, _, err := s.Seal(uint16(hsmcmd.Ping), []byte("x"))
	require.NoError(t, err)
	_, err = served.Handler().HSM.Open(env)
	require.NoError(t, err)
	return s
}

func TestGenesisImportAndSessions(t *testing.T) { eachModule(t, testGenesisImportAndSessions) }

func testGenesisImportAndSessions(t *testing.T, kind tokenstore.Kind) {
	c := newCeremonyOn(t, kind)
	h1, h2, h3 := c.nodes[0], c.nodes[1], c.nodes[2]
	token := c.genesis(h1, h2, h3)
	assert.Equal(t, uint64(1), version(h1))

	// Restarted or new members hold no state until they import.
	assert.Equal(t, uint64(0), version(h2))
	require.NoError(t, h2.Import(token, c.now))
	require.NoError(t, h3.Import(token, c.now))
	assert.Equal(t, uint64(1), version(h3))
	c.session(t, h1, h3)
	c.session(t, h2, h1)

	// hsm-4 is not a member: it cannot import.
	require.ErrorIs(t, c.nodes[3].Import(token, c.now), node.ErrNotInDomain)
	// Genesis needs its quorum too.
	st, _ := h1.DomainState()
	params, err := domain.ParamsGenesis(st)
	require.NoError(t, err)
	_, err = c.nodes[3].CreateDomain(c.command(0, quorum.CreateDomain, params, c.alice), c.now)
	require.ErrorIs(t, err, quorum.ErrPending)
	_, err = h1.CreateDomain(c.command(0, quorum.CreateDomain, params, c.alice, c.bob), c.now)
	require.ErrorIs(t, err, node.ErrHasDomain)
}

func TestQuorumRefusalsLeaveStateUnchanged(t *testing.T) {
	c := newCeremony(t)
	h1, h2 := c.nodes[0], c.nodes[1]
	c.genesis(h1, h2)
	add, err := domain.ParamsMember(member(c.nodes[3]))
	require.NoError(t, err)
	eve := ecOp(t, "eve", quorum.RoleKMSOperator)
	expired := c.command(1, quorum.AddMember, add, c.alice, c.bob)
	cases := []struct {
		name string
		sc   *quorum.SignedCommand
		at   time.Time
		want error
	}{
		{"one operator alone", c.command(1, quorum.AddMember, add, c.alice), c.now, quorum.ErrPending},
		{"one operator's duplicate signatures", dup(t, c.command(1, quorum.AddMember, add, c.alice)), c.now, quorum.ErrPending},
		{"a signer of the wrong role", c.command(1, quorum.AddMember, add, c.alice, c.host), c.now, quorum.ErrPending},
		{"an unknown operator", c.command(1, quorum.AddMember, add, c.alice, eve), c.now, quorum.ErrUnknownSigner},
		{"another state version", c.command(2, quorum.AddMember, add, c.alice, c.bob), c.now, quorum.ErrWrongVersion},
		{"expired", expired, c.now.Add(time.Hour), quorum.ErrExpired},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h1.Export(tc.sc, tc.at)
			require.ErrorIs(t, err, tc.want)
			assert.Equal(t, uint64(1), version(h1))
		})
	}
	// A removed operator: remove bob, then bob's signature no longer counts.
	rm, err := domain.ParamsID("bob")
	require.NoError(t, err)
	tok, err := h1.Export(c.command(1, quorum.RemoveOperator, rm, c.alice, c.carol), c.now)
	require.NoError(t, err)
	assert.Equal(t, uint64(1), version(h1), "export does not enact")
	require.NoError(t, h1.Import(tok, c.now))
	require.NoError(t, h2.Import(tok, c.now))
	_, err = h1.Export(c.command(2, quorum.AddMember, add, c.alice, c.bob), c.now)
	require.ErrorIs(t, err, quorum.ErrUnknownSigner)
	// The replayed command, and the replayed token.
	_, err = h1.Export(c.command(1, quorum.RemoveOperator, rm, c.alice, c.carol), c.now)
	require.ErrorIs(t, err, quorum.ErrWrongVersion)
	require.ErrorIs(t, h1.Import(tok, c.now), node.ErrStaleToken)
}

func dup(t *testing.T, sc *quorum.SignedCommand) *quorum.SignedCommand {
	// Signatures are one per signer in a signed command; the evaluation
	// also counts a signer once when handed duplicates directly.
	require.Len(t, sc.Signatures, 1)
	res := quorum.Evaluate(&quorum.State{}, sc.Command, append(sc.Signatures, sc.Signatures[0]), time.Now())
	require.NotEqual(t, quorum.Satisfied, res.Outcome)
	return sc
}

func TestRotationRetentionAndReencryption(t *testing.T) {
	eachModule(t, testRotationRetentionAndReencryption)
}

func testRotationRetentionAndReencryption(t *testing.T, kind tokenstore.Kind) {
	c := newCeremonyOn(t, kind)
	h1, h2 := c.nodes[0], c.nodes[1]
	require.NoError(t, h2.Import(c.genesis(h1, h2), c.now))

	old := c.session(t, h1, h2) // under DK 1
	ret, err := domain.ParamsRetention(1)
	require.NoError(t, err)
	apply := func(sc *quorum.SignedCommand) {
		tok, err := h1.Export(sc, c.now)
		require.NoError(t, err)
		require.NoError(t, h1.Import(tok, c.now))
		require.NoError(t, h2.Import(tok, c.now))
	}
	apply(c.command(1, quorum.SetRetention, ret, c.alice, c.bob))
	apply(c.command(2, quorum.RotateDomainKeys, nil, c.host)) // a service host alone may rotate
	st, _ := h2.DomainState()
	require.Len(t, st.Keys, 2)

	// Still retained: the old session works, and its EKT can be moved to
	// the active key.
	env, _, err := old.Seal(uint16(hsmcmd.Ping), nil)
	require.NoError(t, err)
	_, err = h2.Handler().HSM.Open(env)
	require.NoError(t, err)
	moved, errs, err := h2.ReencryptEKTs([][]byte{old.EKT()})
	require.NoError(t, err)
	require.NoError(t, errs[0])
	e, err := session.ParseEKT(moved[0])
	require.NoError(t, err)
	active, _ := st.ActiveKey()
	assert.Equal(t, active.ID, e.KeyID)

	// Another rotation drops DK 1 (retention 1).
	apply(c.command(3, quorum.RotateDomainKeys, nil, c.alice, c.bob))
	st, _ = h2.DomainState()
	require.Len(t, st.Keys, 2)
	_, errs, err = h2.ReencryptEKTs([][]byte{old.EKT()})
	require.NoError(t, err)
	require.ErrorIs(t, errs[0], session.ErrKeyNotRetained, "an EKT not re-encrypted in time is refused")
	fresh := c.session(t, h1, h2)
	_ = fresh
	// The re-encrypted one (under DK 2, still retained) opens.
	out, errs, err := h1.ReencryptEKTs([][]byte{moved[0]})
	require.NoError(t, err)
	require.NoError(t, errs[0])
	assert.NotNil(t, out[0])
}

func TestMembershipAndTamperedTokens(t *testing.T) {
	c := newCeremony(t)
	h1, h2, h3, h4 := c.nodes[0], c.nodes[1], c.nodes[2], c.nodes[3]
	g := c.genesis(h1, h2, h3)
	require.NoError(t, h2.Import(g, c.now))
	require.NoError(t, h3.Import(g, c.now))

	// AddMember: the new member imports the next token and serves.
	add, err := domain.ParamsMember(member(h4))
	require.NoError(t, err)
	tok, err := h1.Export(c.command(1, quorum.AddMember, add, c.alice, c.bob), c.now)
	require.NoError(t, err)
	for _, n := range []*node.Node{h1, h2, h3, h4} {
		require.NoError(t, n.Import(tok, c.now))
	}
	c.session(t, h1, h4)

	// A member HSM that signs a state its command does not make: the
	// stateful importers refuse it, whatever part was altered.
	st, _ := h1.DomainState()
	p, err := domain.ParseToken(tok)
	require.NoError(t, err)
	values, err := p.OpenKeys(st, h1.ID(), h1.Identity().Agreement)
	require.NoError(t, err)
	ret, err := domain.ParamsRetention(3)
	require.NoError(t, err)
	cmd := c.command(2, quorum.SetRetention, ret, c.alice, c.bob)
	right, err := domain.Apply(st, cmd, nil, c.now.Unix())
	require.NoError(t, err)
	alterations := map[string]func(s *domain.State) [][]byte{
		"operators": func(s *domain.State) [][]byte { s.Operators = s.Operators[:1]; return values },
		"members": func(s *domain.State) [][]byte {
			s.Members = slices.DeleteFunc(s.Members, func(m session.Member) bool { return m.ID == h3.ID() })
			return values
		},
		"rules": func(s *domain.State) [][]byte {
			s.Rules[quorum.AddMember] = []quorum.Rule{{{Role: quorum.RoleKMSOperator, N: 1}}}
			return values
		},
		"domain keys": func(s *domain.State) [][]byte {
			s.Keys[0].ID[0] ^= 1
			return values
		},
	}
	for name, alter := range alterations {
		forged := right.Clone()
		vals := alter(forged)
		bad, err := domain.SealToken(forged, cmd, vals, h1.Exporter())
		require.NoError(t, err, name)
		require.ErrorIs(t, h2.Import(bad, c.now), node.ErrTokenMismatch, name)
		assert.Equal(t, uint64(2), version(h2), name)
	}
	// The right one goes through.
	good, err := domain.SealToken(right, cmd, values, h1.Exporter())
	require.NoError(t, err)
	for _, n := range []*node.Node{h1, h2, h3, h4} {
		require.NoError(t, n.Import(good, c.now))
	}

	// A DKEK share wrapped for another member: hsm-2's entry swapped with
	// hsm-3's.
	gp, err := domain.ParseToken(good)
	require.NoError(t, err)
	msg, err := session.ParseOnePass(gp.Token.DKEK)
	require.NoError(t, err)
	i2 := slices.IndexFunc(msg.Recipients, func(w session.Wrapped) bool { return w.ID == h2.ID() })
	i3 := slices.IndexFunc(msg.Recipients, func(w session.Wrapped) bool { return w.ID == h3.ID() })
	msg.Recipients[i2].Ciphertext, msg.Recipients[i3].Ciphertext = msg.Recipients[i3].Ciphertext, msg.Recipients[i2].Ciphertext
	gp.Token.DKEK, err = msg.Marshal()
	require.NoError(t, err)
	swapped, err := gp.Token.Marshal()
	require.NoError(t, err)
	require.NoError(t, h2.Close()) // restarted: stateless, so only the token's own checks stand
	h2 = c.open("hsm-2")
	require.ErrorIs(t, h2.Import(swapped, c.now), domain.ErrTokenSignature)
	// Even re-signed by the exporter, the one-pass signature holds.
	require.NoError(t, gp.Token.Sign(h1.Exporter().Signer))
	swapped, err = gp.Token.Marshal()
	require.NoError(t, err)
	require.ErrorIs(t, h2.Import(swapped, c.now), session.ErrBadSignature)
	assert.Equal(t, uint64(0), version(h2))
	require.NoError(t, h2.Import(good, c.now))

	// A token signed by an HSM that is not a member: hsm-4 is, by now; use a
	// fresh one.
	outsider := c.open("outsider")
	cur, _ := h1.DomainState()
	ret4, err := domain.ParamsRetention(4)
	require.NoError(t, err)
	cmd4 := c.command(cur.Version, quorum.SetRetention, ret4, c.alice, c.bob)
	next, err := domain.Apply(cur, cmd4, nil, c.now.Unix())
	require.NoError(t, err)
	fromOutsider, err := domain.SealToken(next, cmd4, values, outsider.Exporter())
	require.NoError(t, err)
	require.ErrorIs(t, h1.Import(fromOutsider, c.now), domain.ErrTokenExporter, "stateful")
	stateless := c.open("hsm-1-view")
	require.Error(t, stateless.Import(fromOutsider, c.now))

	// A command for another domain.
	other := c.command(3, quorum.RotateDomainKeys, nil, c.host)
	oc, err := quorum.ParseCommand(other.Command)
	require.NoError(t, err)
	oc.Domain = "other"
	other.Command, err = oc.Marshal()
	require.NoError(t, err)
	require.NoError(t, other.Add(c.host.sign(t, other.Command)))
	_, err = h1.Export(other, c.now)
	require.ErrorIs(t, err, quorum.ErrWrongDomain)

	// A token altered after signing.
	altered := append([]byte(nil), tok...)
	altered[len(altered)/2] ^= 1
	require.Error(t, h2.Import(altered, c.now))

	// RemoveMember: hsm-3 cannot import later tokens.
	rm, err := domain.ParamsID(h3.ID())
	require.NoError(t, err)
	tok3, err := h1.Export(c.command(3, quorum.RemoveMember, rm, c.alice, c.carol), c.now)
	require.NoError(t, err)
	require.NoError(t, h2.Import(tok3, c.now))
	require.ErrorIs(t, h3.Import(tok3, c.now), node.ErrNotInDomain)
	rotTok, err := h2.Export(c.command(4, quorum.RotateDomainKeys, nil, c.host), c.now)
	require.NoError(t, err)
	require.ErrorIs(t, h3.Import(rotTok, c.now), node.ErrNotInDomain)
}

func TestRestartedMemberImportsLatest(t *testing.T) { eachModule(t, testRestartedMemberImportsLatest) }

func testRestartedMemberImportsLatest(t *testing.T, kind tokenstore.Kind) {
	c := newCeremonyOn(t, kind)
	h1, h2 := c.nodes[0], c.nodes[1]
	require.NoError(t, h2.Import(c.genesis(h1, h2), c.now))
	tok, err := h1.Export(c.command(1, quorum.RotateDomainKeys, nil, c.host), c.now)
	require.NoError(t, err)
	require.NoError(t, h1.Import(tok, c.now))

	// hsm-2 restarts: its domain keys were session objects.
	require.NoError(t, h2.Close())
	h2 = c.open("hsm-2")
	assert.Equal(t, uint64(0), version(h2))
	require.NoError(t, h2.Import(tok, c.now))
	assert.Equal(t, uint64(2), version(h2))
	c.session(t, h1, h2)
}

// An HSM that missed changes takes the latest token (hosts hold only that).
func TestBehindMemberCatchesUp(t *testing.T) {
	c := newCeremony(t)
	h1, h2 := c.nodes[0], c.nodes[1]
	require.NoError(t, h2.Import(c.genesis(h1, h2), c.now))
	var last []byte
	for v := uint64(1); v <= 3; v++ {
		tok, err := h1.Export(c.command(v, quorum.RotateDomainKeys, nil, c.host), c.now)
		require.NoError(t, err)
		require.NoError(t, h1.Import(tok, c.now))
		last = tok
	}
	assert.Equal(t, uint64(1), version(h2))
	require.NoError(t, h2.Import(last, c.now), "three versions ahead")
	assert.Equal(t, uint64(4), version(h2))
	c.session(t, h1, h2)
}

// The token an HSM holds, offered again (as hosts do every ResyncEvery),
// is stale without its members' keys being parsed anew; a copy that
// differs in one byte is parsed and refused as before, and changes
// nothing.
func TestImportHeldTokenAgain(t *testing.T) {
	c := newCeremony(t)
	h1, h2 := c.nodes[0], c.nodes[1]
	token := c.genesis(h1, h2)
	require.NoError(t, h2.Import(token, c.now))
	require.ErrorIs(t, h2.Import(token, c.now), node.ErrStaleToken)
	require.ErrorIs(t, h1.Import(slices.Clone(token), c.now), node.ErrStaleToken)
	allocs := testing.AllocsPerRun(10, func() { _ = h2.Import(token, c.now) })
	assert.LessOrEqual(t, allocs, 32.0, "the held token, offered again, is parsed")
	changed := slices.Clone(token)
	changed[len(changed)-1] ^= 1
	require.Error(t, h2.Import(changed, c.now))
	st, held := h2.DomainState()
	assert.Equal(t, uint64(1), st.Version)
	assert.Equal(t, token, held)
}
