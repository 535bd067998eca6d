package host_test

import (
	"context"
	"fmt"
	"github.com/trentkms/trent/internal/syncbuf"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/host"
)

// Read-after-write across hosts: a record the leader committed is in every
// follower's FSM once the follower's read barrier returns.
func TestReadBarrier(t *testing.T) {
	c := newTestCluster(t, 3, 1)
	ctx := context.Background()
	leader := c.hosts[0]
	require.True(t, leader.IsLeader())
	for i := range 40 {
		id := fmt.Sprintf("t/%d", i)
		entry, err := domain.ReplaceKeysEntry([]domain.Replacement{{ID: id, New: []byte("v")}})
		require.NoError(t, err)
		require.NoError(t, leader.ApplyForTest(entry))
		for _, h := range c.hosts {
			require.NoError(t, h.ReadBarrier(ctx))
			_, ok := h.FSM().Key(id)
			require.True(t, ok, "%s lacks %s after its read barrier", h.ID(), id)
		}
	}
}

// A host whose HSMs are all gone is not ready (503), and says why; a
// host with an HSM is.
func TestReady(t *testing.T) {
	c := newTestCluster(t, 2, 1)
	ctx := context.Background()
	for _, h := range c.hosts {
		require.Eventually(t, func() bool { return h.Ready(ctx).Ready }, 10*time.Second, 100*time.Millisecond, h.ID())
		r, err := host.GetReady(ctx, h.APIURL())
		require.NoError(t, err)
		assert.True(t, r.Ready && r.CaughtUp && r.HSM, "%+v", r)
		assert.NotZero(t, r.StateVersion)
	}
	st, err := host.GetStatus(ctx, c.hosts[1].APIURL())
	require.NoError(t, err)
	assert.True(t, st.Ready.Ready, "the status carries the readiness: %+v", st.Ready)
	c.hsms[0].stop(t)
	h := c.hosts[1]
	require.Eventually(t, func() bool { return !h.Ready(ctx).Ready }, 10*time.Second, 100*time.Millisecond)
	resp, err := http.Get(h.APIURL() + "/trent/v1/host/ready")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	r, err := host.GetReady(ctx, h.APIURL())
	require.NoError(t, err)
	assert.False(t, r.HSM)
	assert.Contains(t, r.Reason, "no HSM")
}

// Token delivery logs what is worth an operator's look, once: an HSM that
// holds the latest state ("not newer") is not logged; one that is down is,
// once, however many offers fail.
func TestDeliveryLog(t *testing.T) {
	var logs syncbuf.Buffer
	c := newTestClusterWith(t, 1, 2, func(cfg *host.Config) {
		cfg.Log = slog.New(slog.NewTextHandler(&logs, nil))
	})
	time.Sleep(time.Second) // ten offers to each HSM
	assert.Zero(t, strings.Count(logs.String(), "token delivery"), "the normal answer is not logged")
	c.hsms[1].stop(t)
	time.Sleep(time.Second)
	assert.Equal(t, 1, strings.Count(logs.String(), "level=WARN msg=\"token delivery\""), "a down HSM is logged once: %s", logs.String())
}

// Read-after-write through the KMS API from any host: a key created, an
// alias moved and a key disabled on one host are seen by the next request
// to every other host, never NotFound or a stale state (the hosts' read
// barriers; without them a follower answers from an FSM that may lag).
func TestKMSReadAfterWrite(t *testing.T) {
	k := newKMSCluster(t, 3, 1)
	ctx := context.Background()
	for i := range 15 {
		w := k.client(i%3, 0)
		md := k.createKey(t, w, nil)
		for h := range 3 {
			r := k.client(h, 0)
			_, err := r.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: md.KeyId})
			require.NoError(t, err, "host %d after a create on host %d", h, i%3)
		}
		alias := fmt.Sprintf("alias/raw-%d", i)
		_, err := w.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: md.KeyId})
		require.NoError(t, err)
		_, err = w.DisableKey(ctx, &kms.DisableKeyInput{KeyId: md.KeyId})
		require.NoError(t, err)
		for h := range 3 {
			r := k.client((i+h+1)%3, 0)
			out, err := r.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(alias)})
			require.NoError(t, err, "host %d after an alias on host %d", (i+h+1)%3, i%3)
			assert.False(t, out.KeyMetadata.Enabled, "host %d sees a disabled key enabled", (i+h+1)%3)
		}
	}
}

// A leader that is the only voter reads at its commit index without a
// round of confirmation; with a second voter, or while a configuration
// change of its own is in flight, it takes the full path. Reads after
// writes hold on either.
func TestSoleVoterReadPath(t *testing.T) {
	c := newTestCluster(t, 2, 1)
	ctx := context.Background()
	l := c.hosts[0]
	require.True(t, l.IsLeader())
	require.NoError(t, l.ReadBarrier(ctx))
	assert.False(t, l.SoleReadForTest(), "a leader of two voters must confirm its leadership")

	rm, err := host.SignAdmin(host.OpRemovePeer, c.alice.id, c.alice.k, []byte(c.hosts[1].ID()), time.Now())
	require.NoError(t, err)
	require.NoError(t, host.Admin(ctx, l.APIURL(), host.OpRemovePeer, rm))
	assert.False(t, l.SoleReadForTest(), "judged again only by a full read after the change")
	require.NoError(t, l.ReadBarrier(ctx))
	require.True(t, l.SoleReadForTest(), "the only voter")

	for i := range 20 {
		id := fmt.Sprintf("sole/%d", i)
		entry, err := domain.ReplaceKeysEntry([]domain.Replacement{{ID: id, New: []byte("v")}})
		require.NoError(t, err)
		require.NoError(t, l.ApplyForTest(entry))
		require.NoError(t, l.ReadBarrier(ctx))
		_, ok := l.FSM().Key(id)
		require.True(t, ok, "%s missing after the read barrier", id)
		require.True(t, l.SoleReadForTest())
	}

	l.BeginMembershipForTest()
	assert.False(t, l.SoleReadForTest(), "a configuration change in flight withdraws the sole-voter path")
	require.NoError(t, l.ReadBarrier(ctx))
	assert.False(t, l.SoleReadForTest(), "not judged again while the change is in flight")
	l.EndMembershipForTest()
	require.NoError(t, l.ReadBarrier(ctx))
	assert.True(t, l.SoleReadForTest())
}
