package host_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/session"
)

// Rotation over 10,000 EKTs, the job crashed half way and resumed: every
// EKT ends under the active key and still opens.
func TestReencryptionResumes(t *testing.T) {
	c := newTestCluster(t, 1, 1)
	h := c.hosts[0]
	ctx := context.Background()

	// One EKT, from a session with the HSM, stored under 10,000 IDs.
	st, _ := h.FSM().State()
	dir, err := st.Directory()
	require.NoError(t, err)
	p, hello, err := (&session.Host{ID: "host-1", Signer: c.hostKeys[0].k, Dir: dir}).Begin()
	require.NoError(t, err)
	reply, err := c.hsms[0].n.Handler().HSM.Handshake(hello)
	require.NoError(t, err)
	s, err := p.Finish(reply)
	require.NoError(t, err)
	const n = 10000
	var rs []domain.Replacement
	for i := range n {
		rs = append(rs, domain.Replacement{ID: fmt.Sprintf("key-%05d", i), New: s.EKT()})
		if len(rs) == domain.MaxReplaceBatch || i == n-1 {
			e, err := domain.ReplaceKeysEntry(rs)
			require.NoError(t, err)
			require.NoError(t, h.ApplyForTest(e))
			rs = nil
		}
	}
	outdated, total := h.EKTProgress()
	require.Equal(t, n, total)
	require.Zero(t, outdated, "under the active key so far")

	_, err = h.RotateNow(ctx, st)
	require.NoError(t, err)
	outdated, _ = h.EKTProgress()
	require.Equal(t, n, outdated)

	// The job "crashes" after five batches.
	jctx, cancel := context.WithCancel(ctx)
	batches := 0
	err = h.Reencrypt(jctx, func(done, total int) {
		if batches++; batches == 5 {
			cancel()
		}
	})
	require.ErrorIs(t, err, context.Canceled)
	outdated, _ = h.EKTProgress()
	assert.Less(t, outdated, n, "progress was kept")

	// Resumed: it finishes.
	require.NoError(t, h.Reencrypt(ctx, nil))
	outdated, _ = h.EKTProgress()
	require.Zero(t, outdated)

	// Every EKT still opens: after another rotation the HSM must open each
	// one (under the now retained key) to move it.
	st, _ = h.FSM().State()
	_, err = h.RotateNow(ctx, st)
	require.NoError(t, err)
	require.NoError(t, h.Reencrypt(ctx, nil), "every EKT opened")
	outdated, total = h.EKTProgress()
	assert.Zero(t, outdated)
	assert.Equal(t, n, total)
}
