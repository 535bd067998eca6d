package host_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/quorum"
	"github.com/trentkms/trent/session"
)

// The done-when of hybrid sessions: operators set the domain's session
// policy to "hybrid required" with a quorum-signed SetSessionPolicy on a
// running cluster; the token that carries the change goes to the members
// in the hybrid one-pass, the hosts' sessions become hybrid, and a
// classical Hello is refused with Alert 26.
func TestClusterRequiresHybridSessions(t *testing.T) {
	c := newTestCluster(t, 2, 2)
	ctx := context.Background()
	lead := c.hosts[0]
	waitVersion := func(v uint64) {
		t.Helper()
		for _, h := range c.hosts {
			require.Eventually(t, func() bool {
				st, _ := h.FSM().State()
				return st != nil && st.Version == v
			}, 10*time.Second, 10*time.Millisecond)
		}
		require.Eventually(t, func() bool {
			for _, got := range lead.HSMVersions(ctx) {
				if got != v {
					return false
				}
			}
			return true
		}, 10*time.Second, 20*time.Millisecond)
	}
	waitVersion(1)
	require.False(t, lead.HSMSessionHybrid(), "a classical domain's host makes classical sessions")

	// Hybrid required without every member's ML-KEM key: refused.
	var keys []domain.MemberKEM
	for _, p := range c.hsms {
		keys = append(keys, domain.MemberKEM{ID: p.n.ID(), EK: p.n.KEMPublicKey()})
	}
	short, err := domain.ParamsSessionPolicy(true, keys[:1])
	require.NoError(t, err)
	_, err = lead.Submit(ctx, signed(t, "prod", 1, quorum.SetSessionPolicy, short, c.alice, c.bob))
	require.ErrorContains(t, err, "has no ML-KEM-1024 key")

	params, err := domain.ParamsSessionPolicy(true, keys)
	require.NoError(t, err)
	v, err := c.hosts[1].Submit(ctx, signed(t, "prod", 1, quorum.SetSessionPolicy, params, c.alice, c.bob))
	require.NoError(t, err)
	require.Equal(t, uint64(2), v)
	waitVersion(2)

	// The token of version 2 carried the domain keys in the hybrid form.
	_, raw := lead.FSM().State()
	tok, err := domain.ParseToken(raw)
	require.NoError(t, err)
	require.True(t, tok.State.HybridRequired)
	op, err := session.ParseOnePass(tok.Token.DKEK)
	require.NoError(t, err)
	assert.True(t, op.Hybrid, "the DKEK travels in the hybrid one-pass")

	// Every host's next commands run in hybrid sessions.
	for _, h := range c.hosts {
		require.NotEmpty(t, h.HSMVersions(ctx))
		assert.True(t, h.HSMSessionHybrid(), h.ID())
	}
	classicalBefore := make([]uint64, len(c.hsms))
	for i, p := range c.hsms {
		classicalBefore[i], _ = p.n.Handler().HSM.HandshakeCounts()
	}
	// A later change (a rotation) keeps the domain hybrid.
	v, err = lead.Submit(ctx, signed(t, "prod", 2, quorum.RotateDomainKeys, nil, c.hostKeys[0]))
	require.NoError(t, err)
	waitVersion(v)
	for _, h := range c.hosts {
		require.NotEmpty(t, h.HSMVersions(ctx))
		assert.True(t, h.HSMSessionHybrid(), h.ID())
	}

	// A classical Hello from a listed service host is refused: Alert 26.
	st, _ := lead.FSM().State()
	dir, err := st.Directory()
	require.NoError(t, err)
	classical := &session.Host{ID: c.hostKeys[0].id, Signer: c.hostKeys[0].k, Dir: dir}
	cl, err := session.NewClient(session.ClientConfig{Host: classical, URLs: []string{"http://" + c.hsms[1].addr}})
	require.NoError(t, err)
	defer cl.Close()
	_, err = hsmcmd.Call(ctx, cl.Do, hsmcmd.PingRequest{Payload: []byte("classical")}, hsmcmd.ParsePingResponse)
	require.ErrorIs(t, err, session.ErrHybridRequired)
	var re *session.RemoteError
	require.ErrorAs(t, err, &re)
	assert.Contains(t, re.Message, "requires hybrid")

	// The same host, hybrid: served.
	hybrid := &session.Host{ID: c.hostKeys[0].id, Signer: c.hostKeys[0].k, Dir: dir, Hybrid: func() bool { return true }}
	hc, err := session.NewClient(session.ClientConfig{Host: hybrid, URLs: []string{"http://" + c.hsms[1].addr}})
	require.NoError(t, err)
	defer hc.Close()
	_, err = hsmcmd.Call(ctx, hc.Do, hsmcmd.PingRequest{Payload: []byte("hybrid")}, hsmcmd.ParsePingResponse)
	require.NoError(t, err)
	assert.True(t, hc.Hybrid())

	// No HSM answered a classical handshake since the policy took effect,
	// and its metrics say so.
	for i, p := range c.hsms {
		cls, hyb := p.n.Handler().HSM.HandshakeCounts()
		assert.Equal(t, classicalBefore[i], cls, p.n.ID())
		assert.NotZero(t, hyb, p.n.ID())
	}
	resp, err := http.Get("http://" + c.hsms[1].addr + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.True(t, strings.Contains(string(body), `trent_hsm_handshakes_total{mode="hybrid"}`), "metrics name the hybrid handshakes")
}
