package node_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/hbk"
	"github.com/trentkms/trent/hsm/node"
	"github.com/trentkms/trent/quorum"
	"github.com/trentkms/trent/session"
)

// commandFor is ceremony.command for the domain named name.
func (c *ceremony) commandFor(name string, version uint64, typ quorum.CommandType, params []byte, signers ...*op) *quorum.SignedCommand {
	c.nonce++
	cmd := &quorum.Command{Domain: name, StateVersion: version, Type: typ, Params: params,
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

// region makes domain name on members (the first runs genesis, the others
// import its token).
func (c *ceremony) region(name string, members ...*node.Node) {
	st := &domain.State{Name: name, Rules: quorum.DefaultRules(), Retention: domain.DefaultRetention,
		Operators: []quorum.Operator{c.alice.qop, c.bob.qop, c.carol.qop, c.host.qop}}
	for _, n := range members {
		st.Members = append(st.Members, member(n))
	}
	slices.SortFunc(st.Members, func(a, b session.Member) int { return strings.Compare(a.ID, b.ID) })
	params, err := domain.ParamsGenesis(st)
	require.NoError(c.t, err)
	token, err := members[0].CreateDomain(c.commandFor(name, 0, quorum.CreateDomain, params, c.alice, c.carol), c.now)
	require.NoError(c.t, err)
	for _, n := range members[1:] {
		require.NoError(c.t, n.Import(token, c.now))
	}
}

// trust records the peer region peer (domain peerDomain, members peers) in
// the domain of members, by a SetPeerRegion command two operators sign.
func (c *ceremony) trust(members []*node.Node, peer, peerDomain string, peers ...*node.Node) {
	st, _ := members[0].DomainState()
	p := domain.PeerRegion{Region: peer, Domain: peerDomain}
	for _, n := range peers {
		p.Members = append(p.Members, member(n))
	}
	slices.SortFunc(p.Members, func(a, b session.Member) int { return strings.Compare(a.ID, b.ID) })
	params, err := domain.ParamsPeerRegion(p)
	require.NoError(c.t, err)
	token, err := members[0].Export(c.commandFor(st.Name, st.Version, quorum.SetPeerRegion, params, c.alice, c.bob), c.now)
	require.NoError(c.t, err)
	for _, n := range members {
		require.NoError(c.t, n.Import(token, c.now))
	}
}

// Key material moves between two domains' HSMs, and only as the peer
// region records allow.
func TestReplicaTransport(t *testing.T) {
	c := newCeremony(t)
	east, west := c.nodes[:2], c.nodes[2:]
	c.region("east", east...)
	c.region("west", west...)

	const id = "mrk-0123456789abcdef0123456789abcdef"
	tok1, err := east[0].CreateHBK(id)
	require.NoError(t, err)
	tok2, err := east[0].CreateHBK(id)
	require.NoError(t, err)

	// Without a peer region neither end moves anything.
	_, err = east[0].ExportReplica("us-west-2", id, [][]byte{tok1})
	require.ErrorIs(t, err, session.ErrUntrustedPeer)

	c.trust(east, "us-west-2", "west", west...)
	transport, err := east[1].ExportReplica("us-west-2", id, [][]byte{tok1, tok2})
	require.NoError(t, err)
	_, err = west[0].ImportReplica("us-east-1", id, transport)
	require.ErrorIs(t, err, session.ErrUntrustedPeer, "west has not recorded east yet")

	c.trust(west, "us-east-1", "east", east...)
	// Another key's ID, the wrong region name, a changed byte: refused.
	_, err = west[0].ImportReplica("us-east-1", "mrk-ffffffffffffffffffffffffffffffff", transport)
	require.ErrorIs(t, err, session.ErrPeerContext)
	_, err = west[0].ImportReplica("us-west-2", id, transport)
	require.ErrorIs(t, err, session.ErrUntrustedPeer)
	bad := slices.Clone(transport)
	bad[len(bad)-200] ^= 1
	_, err = west[0].ImportReplica("us-east-1", id, bad)
	require.Error(t, err)
	// A west HSM's own transport to east is not east's to west.
	back, err := west[0].ExportReplica("us-east-1", id, nil)
	require.Error(t, err, "no tokens")
	require.Nil(t, back)

	tokens, err := west[1].ImportReplica("us-east-1", id, transport)
	require.NoError(t, err)
	require.Len(t, tokens, 2)
	for i, raw := range [][]byte{tok1, tok2} {
		src, _ := hbk.ParseToken(raw)
		dst, err := hbk.ParseToken(tokens[i])
		require.NoError(t, err)
		require.Equal(t, src.HBKID, dst.HBKID, "version %d keeps its HBK ID", i)
		require.Equal(t, id, dst.KeyID)
		require.NotEqual(t, src.DomainKeyID, dst.DomainKeyID, "sealed under west's domain key")
		// A ciphertext of either region opens in the other, on any member.
		ec, _ := hbk.EncodeContext(map[string]string{"v": "1"})
		blob, err := east[0].Encrypt(raw, ec, []byte("from east"))
		require.NoError(t, err)
		pt, err := west[0].Decrypt(tokens[i], ec, blob)
		require.NoError(t, err)
		require.Equal(t, "from east", string(pt))
		blob, err = west[1].Encrypt(tokens[i], ec, []byte("from west"))
		require.NoError(t, err)
		pt, err = east[1].Decrypt(raw, ec, blob)
		require.NoError(t, err)
		require.Equal(t, "from west", string(pt))
		// East's token does not open in west: the material crossed only
		// by the transport.
		_, err = west[0].Decrypt(raw, ec, blob)
		require.Error(t, err)
	}
	// West, trusting east, sends back to it: the roles are symmetric.
	again, err := west[0].ExportReplica("us-east-1", id, tokens)
	require.NoError(t, err)
	home, err := east[0].ImportReplica("us-west-2", id, again)
	require.NoError(t, err)
	require.Len(t, home, 2)
	// A transport east made for west does not open in east: its sender is
	// no member of east's peer region us-west-2 (Alert 28).
	_, err = east[0].ImportReplica("us-west-2", id, transport)
	require.ErrorIs(t, err, session.ErrUntrustedPeer)
	require.Equal(t, uint16(28), session.AlertFor(err).Code)
	_, err = west[0].ImportReplica("us-east-1", "mrk-ffffffffffffffffffffffffffffffff", transport)
	require.Equal(t, uint16(29), session.AlertFor(err).Code)
}
