package node_test

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"encoding/binary"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/hsm/node"
	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/quorum"
	"github.com/trentkms/trent/session"
	"github.com/trentkms/trent/tokenstore"
)

func serveNode(t *testing.T, n *node.Node) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Serve(ctx, l) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	return "http://" + l.Addr().String()
}

// The domain operations over the wire: a host drives the four-step change
// through sessions, and a restarted HSM gets the latest token outside any
// session, then serves.
func TestDomainOperationsOverTheWire(t *testing.T) { eachModule(t, testDomainOperationsOverTheWire) }

func testDomainOperationsOverTheWire(t *testing.T, kind tokenstore.Kind) {
	c := newCeremonyOn(t, kind)
	h1, h2, h3 := c.nodes[0], c.nodes[1], c.nodes[2]
	g := c.genesis(h1, h2, h3)
	u1, u2, u3 := serveNode(t, h1), serveNode(t, h2), serveNode(t, h3)
	ctx := context.Background()

	// hsm-2 and hsm-3 have no domain yet: the token path, no session.
	for i, u := range []string{u2, u3} {
		cl, err := session.NewClient(session.ClientConfig{Host: &session.Host{ID: "host-1", Signer: c.host.ec}, URLs: []string{u}})
		require.NoError(t, err)
		v, err := cl.Post(ctx, 0, hsmcmd.PathToken, g, hsmcmd.MaxTokenSize)
		require.NoError(t, err, i)
		assert.Equal(t, uint64(1), binary.BigEndian.Uint64(v))
	}

	host := &session.Host{ID: "host-1", Signer: c.host.ec, Dir: liveDir{h1}}
	cl, err := session.NewClient(session.ClientConfig{Host: host, URLs: []string{u1, u2, u3}})
	require.NoError(t, err)
	defer cl.Close()
	oldEKT := func() []byte {
		_, err := cl.DoOn(ctx, 0, uint16(hsmcmd.Ping), nil)
		require.NoError(t, err)
		return cl.Current().EKT()
	}()

	// Step 2: one member exports the next token without enacting it.
	rot := c.command(1, quorum.RotateDomainKeys, nil, c.host)
	cmd, err := rot.Marshal()
	require.NoError(t, err)
	tok, err := cl.DoOn(ctx, 0, uint16(hsmcmd.Export), cmd)
	require.NoError(t, err)
	raw, err := cl.DoOn(ctx, 0, uint16(hsmcmd.DomainStatus), nil)
	require.NoError(t, err)
	before, err := domain.ParseState(raw)
	require.NoError(t, err)
	assert.Equal(t, uint64(1), before.Version, "exporting does not enact")

	// Step 4: every member imports it.
	for i := range 3 {
		v, err := cl.DoOn(ctx, i, uint16(hsmcmd.Import), tok)
		require.NoError(t, err)
		assert.Equal(t, uint64(2), binary.BigEndian.Uint64(v))
	}
	// The session made at version 1 still works: envelopes are bound to
	// their EKT's domain key, which is retained, not to the state version.
	_, err = cl.DoOn(ctx, 2, uint16(hsmcmd.Ping), []byte("after"))
	require.NoError(t, err)

	// Re-encryption over the wire.
	batch, err := hsmcmd.ReencryptEKTsRequest{EKTs: [][]byte{oldEKT, []byte("not an EKT")}}.Marshal()
	require.NoError(t, err)
	res, err := cl.DoOn(ctx, 1, uint16(hsmcmd.ReencryptEKTs), batch)
	require.NoError(t, err)
	resp, err := hsmcmd.ParseReencryptEKTsResponse(res)
	require.NoError(t, err)
	out, errs := resp.EKTs(), resp.Errs()
	require.NoError(t, errs[0])
	e, err := session.ParseEKT(out[0])
	require.NoError(t, err)
	st, _ := h1.DomainState()
	active, _ := st.ActiveKey()
	assert.Equal(t, active.ID, e.KeyID)
	require.ErrorIs(t, errs[1], session.ErrMalformed)

	// Refusals carry their reason.
	pending := c.command(2, quorum.AddOperator, nil, c.alice)
	cmd, err = pending.Marshal()
	require.NoError(t, err)
	_, err = cl.DoOn(ctx, 0, uint16(hsmcmd.Export), cmd)
	require.ErrorIs(t, err, session.ErrRefused)
	assert.Contains(t, err.Error(), "need 1 more kms-operator")
	_, err = cl.DoOn(ctx, 0, uint16(hsmcmd.Import), tok)
	require.ErrorIs(t, err, session.ErrRefused)
	assert.Contains(t, err.Error(), "not newer")
}

// liveDir is a host's view that follows an HSM's state (a stand-in for
// the replicated state the raft issue brings).
type liveDir struct{ n *node.Node }

func (d liveDir) current() *session.StaticDirectory {
	st, _ := d.n.DomainState()
	dir, err := st.Directory()
	if err != nil {
		panic(err)
	}
	return dir
}
func (d liveDir) Domain() (string, uint64) { return d.current().Domain() }
func (d liveDir) HostKey(id string) (*ecdsa.PublicKey, error) {
	return d.current().HostKey(id)
}
func (d liveDir) Member(id string) (*ecdsa.PublicKey, *ecdh.PublicKey, error) {
	return d.current().Member(id)
}

// trent hsm serve --token: a node starts from a domain token of a
// multi-member domain and serves it.
func TestServeFromToken(t *testing.T) {
	c := newCeremony(t)
	h1, h2 := c.nodes[0], c.nodes[1]
	g := c.genesis(h1, h2)
	require.NoError(t, h2.Close()) // the process below opens hsm-2 itself

	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- node.Serve(ctx, node.Options{Dir: c.dir, Label: "hsm-2", Token: g}, "127.0.0.1:0", func(a string) { addr <- a })
	}()
	var u string
	select {
	case a := <-addr:
		u = "http://" + a
	case err := <-done:
		t.Fatal(err)
	}
	host := &session.Host{ID: "host-1", Signer: c.host.ec, Dir: liveDir{h1}}
	cl, err := session.NewClient(session.ClientConfig{Host: host, URLs: []string{u}})
	require.NoError(t, err)
	defer cl.Close()
	got, err := cl.Do(ctx, uint16(hsmcmd.Ping), []byte("from a token"))
	require.NoError(t, err)
	assert.Equal(t, []byte("from a token"), got)
	cancel()
	require.NoError(t, <-done)

	// Neither: the node serves its token endpoint and waits for a host to
	// deliver the domain's token (how a crashed node rejoins); it serves
	// sessions once it has taken one its anchor admits.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	done = make(chan error, 1)
	go func() {
		done <- node.Serve(ctx, node.Options{Dir: c.dir, Label: "hsm-2"}, "127.0.0.1:0", func(a string) { addr <- a })
	}()
	select {
	case a := <-addr:
		u = "http://" + a
	case err := <-done:
		t.Fatal(err)
	}
	cl2, err := session.NewClient(session.ClientConfig{Host: host, URLs: []string{u}})
	require.NoError(t, err)
	defer cl2.Close()
	_, err = cl2.Do(ctx, uint16(hsmcmd.Ping), []byte("before its token"))
	require.Error(t, err, "no session before the token")
	out, err := cl2.Post(ctx, 0, hsmcmd.PathToken, g, 16)
	require.NoError(t, err)
	v, err := hsmcmd.ParseImportResponse(out)
	require.NoError(t, err)
	assert.NotZero(t, v.Version)
	got, err = cl2.Do(ctx, uint16(hsmcmd.Ping), []byte("after its token"))
	require.NoError(t, err)
	assert.Equal(t, []byte("after its token"), got)
	cancel()
	require.NoError(t, <-done)
}
