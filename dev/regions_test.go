package dev_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/dev"
)

// trent dev --regions 2: two clusters of processes, each answering in its
// own region, whose domains trust each other; a multi-Region key made in
// one decrypts there after ReplicateKey, a rotation on the primary
// reaches the replica, and a restart resumes both
// without signing SetPeerRegion again.
func TestTwoRegions(t *testing.T) {
	bin := buildTrent(t)
	opts := dev.Options{Dir: t.TempDir(), HSMs: 1, Hosts: 1, Listen: "127.0.0.1:0", KMSListen: "127.0.0.1:0",
		RotationInterval: -1, Exec: bin}
	var steps []string
	cs, err := dev.StartRegions(opts, 2, func(s string) { steps = append(steps, s) })
	require.NoError(t, err)
	stopped := false
	defer func() {
		if !stopped {
			for _, c := range cs {
				c.Stop()
			}
		}
	}()
	require.Len(t, cs, 2)
	east, west := cs[0], cs[1]
	assert.Equal(t, "us-east-1", east.Region)
	assert.Equal(t, "dev-us-west-2", west.Domain)
	for _, c := range cs {
		st, _ := c.DomainState()
		require.Len(t, st.PeerRegions, 1, c.Region)
		_, err := c.Check(context.Background())
		require.NoError(t, err)
	}
	ctx := context.Background()
	ec, wc := kmsClient(t, east), kmsClient(t, west)
	mk, err := ec.CreateKey(ctx, &kms.CreateKeyInput{MultiRegion: aws.Bool(true)})
	require.NoError(t, err)
	_, err = ec.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: mk.KeyMetadata.KeyId, ReplicaRegion: aws.String("us-west-2")})
	require.NoError(t, err)
	ct, err := ec.Encrypt(ctx, &kms.EncryptInput{KeyId: mk.KeyMetadata.KeyId, Plaintext: []byte("east to west")})
	require.NoError(t, err)
	pt, err := wc.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: ct.CiphertextBlob})
	require.NoError(t, err)
	assert.Equal(t, "east to west", string(pt.Plaintext))
	d, err := wc.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: mk.KeyMetadata.KeyId})
	require.NoError(t, err)
	assert.Equal(t, types.MultiRegionKeyTypeReplica, d.KeyMetadata.MultiRegionConfiguration.MultiRegionKeyType)
	// A rotation on the primary reaches the replica: its new ciphertexts
	// decrypt in the primary's region.
	_, err = ec.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: mk.KeyMetadata.KeyId})
	require.NoError(t, err)
	rots, err := wc.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: mk.KeyMetadata.KeyId})
	require.NoError(t, err)
	assert.Len(t, rots.Rotations, 1)
	wct, err := wc.Encrypt(ctx, &kms.EncryptInput{KeyId: mk.KeyMetadata.KeyId, Plaintext: []byte("west to east")})
	require.NoError(t, err)
	pt, err = ec.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: wct.CiphertextBlob})
	require.NoError(t, err)
	assert.Equal(t, "west to east", string(pt.Plaintext))

	for _, c := range cs {
		require.NoError(t, c.Stop())
	}
	stopped = true
	steps = nil
	cs, err = dev.StartRegions(opts, 2, func(s string) { steps = append(steps, s) })
	require.NoError(t, err)
	stopped = false
	for _, s := range steps {
		assert.NotContains(t, s, "SetPeerRegion", "a restart signs no SetPeerRegion again")
	}
	pt, err = kmsClient(t, cs[1]).Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: ct.CiphertextBlob})
	require.NoError(t, err)
	assert.Equal(t, "east to west", string(pt.Plaintext))
}
