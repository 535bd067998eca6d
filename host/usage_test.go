package host_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/host"
)

// GetKeyLastUsage is truthful across hosts: a key used on one follower
// shows, with the CloudTrail event ID that follower recorded, on another
// follower within the documented bound (UsageEvery plus a gather and a
// raft commit), and on the serving host at once.
func TestKeyLastUsageAcrossHosts(t *testing.T) {
	const every = 300 * time.Millisecond
	skew := &atomic.Int64{}
	c := newTestClusterWith(t, 3, 1, func(hc *host.Config) {
		hc.Credentials, hc.KMSAddr = testCreds, "127.0.0.1:0"
		hc.Clock = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
		hc.KeyMaintenanceEvery = time.Hour
		hc.UsageEvery = every
	})
	k := &kmsCluster{testCluster: c, skew: skew}
	k.alice = k.client(0, 0)
	ctx := context.Background()
	md := k.createKey(t, k.alice, nil)
	onB, onC := k.client(2, 0), k.client(1, 0)

	u, err := onC.GetKeyLastUsage(ctx, &kms.GetKeyLastUsageInput{KeyId: md.KeyId})
	require.NoError(t, err)
	assert.Nil(t, u.KeyLastUsage.Timestamp, "not used yet")
	assert.Equal(t, md.CreationDate.Unix(), u.KeyCreationDate.Unix())
	assert.Equal(t, md.CreationDate.Unix(), u.TrackingStartDate.Unix())

	_, err = onB.Encrypt(ctx, &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("x")})
	require.NoError(t, err)
	used := time.Now()
	b, err := onB.GetKeyLastUsage(ctx, &kms.GetKeyLastUsageInput{KeyId: md.KeyId})
	require.NoError(t, err)
	require.NotNil(t, b.KeyLastUsage.Timestamp, "the serving host knows at once")
	assert.Equal(t, "Encrypt", string(b.KeyLastUsage.Operation))

	var seen time.Duration
	require.Eventually(t, func() bool {
		u, err := onC.GetKeyLastUsage(ctx, &kms.GetKeyLastUsageInput{KeyId: md.KeyId})
		require.NoError(t, err)
		if u.KeyLastUsage.Timestamp == nil {
			return false
		}
		seen = time.Since(used)
		assert.Equal(t, "Encrypt", string(u.KeyLastUsage.Operation))
		assert.Equal(t, *b.KeyLastUsage.CloudTrailEventId, *u.KeyLastUsage.CloudTrailEventId)
		assert.Equal(t, *b.KeyLastUsage.KmsRequestId, *u.KeyLastUsage.KmsRequestId)
		return true
	}, every+5*time.Second, 20*time.Millisecond)
	t.Logf("a use on one host showed on another after %v (UsageEvery %v)", seen, every)

	// The event ID is the one host B's audit trail recorded for the Encrypt.
	trail, err := os.ReadFile(k.hosts[2].AuditFile())
	require.NoError(t, err)
	found := false
	sc := bufio.NewScanner(bytes.NewReader(trail))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e struct{ EventName, EventID, RequestID string }
		require.NoError(t, json.Unmarshal(sc.Bytes(), &e))
		if e.EventName == "Encrypt" {
			found = true
			assert.Equal(t, *b.KeyLastUsage.CloudTrailEventId, e.EventID)
			assert.Equal(t, *b.KeyLastUsage.KmsRequestId, e.RequestID)
		}
	}
	assert.True(t, found)
}
