package host_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/hbk"
)

// RotateKeyOnDemand on a multi-Region primary key in one cluster gives
// the other cluster's replica the new version, through the two regions'
// HSMs: a ciphertext made in either region under the new version
// decrypts in the other, and the old ones still do. The replica refuses
// the rotation calls. A rotation while the replica's region is
// unreachable stays pending (the primary keeps encrypting under the
// previous version) and completes on retry.
func TestMultiRegionKeyRotationAcrossTwoClusters(t *testing.T) {
	east, west := twoRegionClusters(t)
	ctx := context.Background()
	east.trust(t, west, "west")
	west.trust(t, east, "east")
	mk, err := east.alice.CreateKey(ctx, &kms.CreateKeyInput{MultiRegion: aws.Bool(true)})
	require.NoError(t, err)
	id := *mk.KeyMetadata.KeyId
	_, err = east.alice.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: &id, ReplicaRegion: aws.String("us-west-2")})
	require.NoError(t, err)

	ec := map[string]string{"app": "mrk-rotation"}
	enc := func(c *regionCluster, pt string) []byte {
		t.Helper()
		out, err := c.alice.Encrypt(ctx, &kms.EncryptInput{KeyId: &id, Plaintext: []byte(pt), EncryptionContext: ec})
		require.NoError(t, err)
		return out.CiphertextBlob
	}
	dec := func(c *regionCluster, ct []byte) string {
		t.Helper()
		out, err := c.alice.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: ct, EncryptionContext: ec})
		require.NoError(t, err, "in %s", c.region)
		return string(out.Plaintext)
	}
	version := func(ct []byte) [hbk.IDSize]byte {
		t.Helper()
		bl, err := hbk.ParseBlob(ct)
		require.NoError(t, err)
		return bl.HBKID
	}
	oldEast, oldWest := enc(east, "old east"), enc(west, "old west")
	v1 := version(oldEast)

	// The replica refuses the rotation calls.
	_, err = west.alice.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: &id})
	assert.Equal(t, "UnsupportedOperationException", apiCode(t, err))
	_, err = west.alice.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: &id})
	assert.Equal(t, "UnsupportedOperationException", apiCode(t, err))
	_, err = west.alice.DisableKeyRotation(ctx, &kms.DisableKeyRotationInput{KeyId: &id})
	assert.Equal(t, "UnsupportedOperationException", apiCode(t, err))

	// The primary enables rotation; the replica shows it.
	_, err = east.alice.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: &id, RotationPeriodInDays: aws.Int32(200)})
	require.NoError(t, err)
	st, err := west.alice.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: &id})
	require.NoError(t, err)
	assert.True(t, st.KeyRotationEnabled)
	assert.Equal(t, int32(200), aws.ToInt32(st.RotationPeriodInDays))

	start := time.Now()
	_, err = east.alice.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: &id})
	require.NoError(t, err)
	t.Logf("RotateKeyOnDemand of a multi-Region key (a new HBK, a transport, the other region's HSM, three commits): %v", time.Since(start))
	newEast, newWest := enc(east, "new east"), enc(west, "new west")
	v2 := version(newEast)
	assert.NotEqual(t, v1, v2)
	assert.Equal(t, v2, version(newWest), "the replica encrypts under the new version")
	assert.Equal(t, "new east", dec(west, newEast))
	assert.Equal(t, "new west", dec(east, newWest))
	for _, c := range []*regionCluster{east, west} {
		assert.Equal(t, "old east", dec(c, oldEast))
		assert.Equal(t, "old west", dec(c, oldWest))
		rots, err := c.alice.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: &id})
		require.NoError(t, err)
		require.Len(t, rots.Rotations, 1, c.region)
		assert.Contains(t, *rots.Rotations[0].KeyId, ":"+c.region+":")
	}

	// West unreachable from east: the rotation stays pending, with a
	// retryable answer, and nothing is encrypted under a version west
	// lacks.
	for _, h := range east.hosts {
		h.SetPeerRegion("us-west-2", []string{"https://127.0.0.1:1"})
	}
	_, err = east.alice.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: &id})
	require.Error(t, err)
	assert.Equal(t, "KMSInternalException", apiCode(t, err))
	during := enc(east, "during")
	assert.Equal(t, v2, version(during), "the primary encrypts under the last version every region holds")
	assert.Equal(t, "during", dec(west, during))
	assert.Equal(t, v2, version(enc(west, "west during")))

	for _, h := range east.hosts {
		h.SetPeerRegion("us-west-2", west.regionURLs)
	}
	_, err = east.alice.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: &id})
	require.NoError(t, err, "the retry completes the pending rotation")
	after, afterWest := enc(east, "after"), enc(west, "after west")
	v3 := version(after)
	assert.NotEqual(t, v2, v3)
	assert.Equal(t, v3, version(afterWest))
	assert.Equal(t, "after", dec(west, after))
	assert.Equal(t, "after west", dec(east, afterWest))
	assert.Equal(t, "during", dec(west, during))
	var counts []int
	for _, c := range []*regionCluster{east, west} {
		rots, err := c.alice.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: &id})
		require.NoError(t, err)
		counts = append(counts, len(rots.Rotations))
	}
	assert.Equal(t, counts[0], counts[1], "both regions list the same rotations")
	// Two, unless the leader's key maintenance (each minute) completed
	// the pending rotation before the retry, which then made another
	// (kms/mrkrotation_test.go checks that a retry makes none).
	assert.GreaterOrEqual(t, counts[0], 2)
}
