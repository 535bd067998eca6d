package kms

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/hbk"
	"github.com/trentkms/trent/keystore"
	"github.com/trentkms/trent/kms/kmsapi"
)

// blobHBKID is the HBK ID (key version) a ciphertext was made under.
func blobHBKID(t *testing.T, ct any) [hbk.IDSize]byte {
	t.Helper()
	bl, err := hbk.ParseBlob(decodeB64(t, ct))
	require.NoError(t, err)
	return bl.HBKID
}

// currentHBKID is the HBK ID of key id's current version in f's region.
func currentHBKID(t *testing.T, f *fixture, id string) [hbk.IDSize]byte {
	t.Helper()
	k, err := f.s.loadKey(id)
	require.NoError(t, err)
	tok, err := hbk.ParseToken(k.rec.Current())
	require.NoError(t, err)
	return tok.HBKID
}

// replicated makes a multi-Region key in east with a replica in west.
func replicated(t *testing.T) (east, west *region, id string) {
	east, west = twoRegions(t)
	id = east.createKey(t, map[string]any{"MultiRegion": true})
	east.must(t, alice, "ReplicateKey", map[string]any{"KeyId": id, "ReplicaRegion": "us-west-2"})
	return east, west, id
}

// RotateKeyOnDemand on a primary key gives every region the new version
// as current: each region's new ciphertexts decrypt in the other, the
// old ones still decrypt, and both regions list the same rotation.
func TestMultiRegionRotateOnDemand(t *testing.T) {
	east, west, id := replicated(t)
	ec := map[string]string{"app": "mrk"}
	enc := func(r *region, pt string) any {
		return r.must(t, alice, "Encrypt", map[string]any{"KeyId": id, "Plaintext": []byte(pt), "EncryptionContext": ec})["CiphertextBlob"]
	}
	dec := func(r *region, ct any) string {
		return string(decodeB64(t, r.must(t, alice, "Decrypt", map[string]any{"CiphertextBlob": ct, "EncryptionContext": ec})["Plaintext"]))
	}
	oldEast, oldWest := enc(east, "old east"), enc(west, "old west")
	v1 := blobHBKID(t, oldEast)
	assert.Equal(t, v1, blobHBKID(t, oldWest))

	out := east.must(t, alice, "RotateKeyOnDemand", map[string]any{"KeyId": id})
	assert.Equal(t, "arn:aws:kms:us-east-1:"+account+":key/"+id, out["KeyId"])
	v2 := currentHBKID(t, east.fixture, id)
	require.NotEqual(t, v1, v2)
	assert.Equal(t, v2, currentHBKID(t, west.fixture, id), "the replica takes the new version as current")

	newEast, newWest := enc(east, "new east"), enc(west, "new west")
	assert.Equal(t, v2, blobHBKID(t, newEast))
	assert.Equal(t, v2, blobHBKID(t, newWest))
	assert.Equal(t, "new east", dec(west, newEast))
	assert.Equal(t, "new west", dec(east, newWest))
	for _, r := range []*region{east, west} {
		assert.Equal(t, "old east", dec(r, oldEast))
		assert.Equal(t, "old west", dec(r, oldWest))
	}

	// Both regions list the one rotation, each with its own ARN.
	for _, r := range []*region{east, west} {
		rots := r.must(t, alice, "ListKeyRotations", map[string]any{"KeyId": id})["Rotations"].([]any)
		require.Len(t, rots, 1)
		e := rots[0].(map[string]any)
		assert.Equal(t, "ON_DEMAND", e["RotationType"])
		assert.Equal(t, "arn:aws:kms:"+r.s.Region()+":"+account+":key/"+id, e["KeyId"])
		st := r.must(t, alice, "GetKeyRotationStatus", map[string]any{"KeyId": id})
		assert.Equal(t, false, st["KeyRotationEnabled"])
		assert.Equal(t, float64(east.now.Unix()), st["OnDemandRotationStartDate"])
	}
}

// A replica refuses the rotation calls with AWS's exception; it answers
// GetKeyRotationStatus with the primary's status, which follows the
// primary's EnableKeyRotation and DisableKeyRotation.
func TestMultiRegionRotationStatus(t *testing.T) {
	east, west, id := replicated(t)
	for _, tc := range []struct {
		op  string
		req map[string]any
	}{
		{"EnableKeyRotation", map[string]any{"KeyId": id}},
		{"EnableKeyRotation", map[string]any{"KeyId": id, "RotationPeriodInDays": 100}},
		{"DisableKeyRotation", map[string]any{"KeyId": id}},
		{"RotateKeyOnDemand", map[string]any{"KeyId": id}},
	} {
		_, err := west.call(alice, tc.op, tc.req)
		assert.Equal(t, kmsapi.UnsupportedOperation, exception(err), tc.op)
	}

	east.must(t, alice, "EnableKeyRotation", map[string]any{"KeyId": id, "RotationPeriodInDays": 180})
	want := east.must(t, alice, "GetKeyRotationStatus", map[string]any{"KeyId": id})
	got := west.must(t, alice, "GetKeyRotationStatus", map[string]any{"KeyId": id})
	assert.Equal(t, true, got["KeyRotationEnabled"])
	assert.Equal(t, float64(180), got["RotationPeriodInDays"])
	assert.Equal(t, want["NextRotationDate"], got["NextRotationDate"])
	assert.Equal(t, "arn:aws:kms:us-west-2:"+account+":key/"+id, got["KeyId"])

	// The maintenance rotates the primary when due, and only the
	// primary; the replica takes the version.
	east.now = east.now.Add(181 * 24 * time.Hour)
	west.now = east.now
	_, n, err := west.s.KeyMaintenance(context.Background())
	require.NoError(t, err)
	assert.Zero(t, n, "a replica does not rotate on its own")
	_, n, err = east.s.KeyMaintenance(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Equal(t, currentHBKID(t, east.fixture, id), currentHBKID(t, west.fixture, id))
	rots := west.must(t, alice, "ListKeyRotations", map[string]any{"KeyId": id})["Rotations"].([]any)
	require.Len(t, rots, 1)
	assert.Equal(t, "AUTOMATIC", rots[0].(map[string]any)["RotationType"])
	assert.Equal(t, east.must(t, alice, "GetKeyRotationStatus", map[string]any{"KeyId": id})["NextRotationDate"],
		west.must(t, alice, "GetKeyRotationStatus", map[string]any{"KeyId": id})["NextRotationDate"])

	// Disabling reaches the replica; while west is unreachable the
	// primary's call succeeds and the maintenance brings it later.
	east.links.down = true
	east.must(t, alice, "DisableKeyRotation", map[string]any{"KeyId": id})
	assert.Equal(t, true, west.must(t, alice, "GetKeyRotationStatus", map[string]any{"KeyId": id})["KeyRotationEnabled"])
	east.links.down = false
	_, _, err = east.s.KeyMaintenance(context.Background())
	require.NoError(t, err)
	assert.Equal(t, false, west.must(t, alice, "GetKeyRotationStatus", map[string]any{"KeyId": id})["KeyRotationEnabled"])
	k, _ := east.s.loadKey(id)
	assert.False(t, k.rec.Key.MultiRegion.Unsynced)
}

// A rotation while the replica region is unreachable stays pending: the
// primary keeps encrypting under the previous version (which the replica
// decrypts), RotateKeyOnDemand answers a retryable error, and the
// rotation completes on retry or by the key maintenance.
func TestMultiRegionRotationRegionDown(t *testing.T) {
	for _, finish := range []string{"retry", "maintenance"} {
		t.Run(finish, func(t *testing.T) {
			east, west, id := replicated(t)
			v1 := currentHBKID(t, east.fixture, id)
			east.links.down = true
			_, err := east.call(alice, "RotateKeyOnDemand", map[string]any{"KeyId": id})
			var ke *kmsapi.Error
			require.ErrorAs(t, err, &ke)
			assert.Equal(t, kmsapi.KMSInternal, ke.Type)
			assert.GreaterOrEqual(t, ke.Status, 500, "retryable")
			k, _ := east.s.loadKey(id)
			require.NotNil(t, k.rec.Key.PendingRotation)
			assert.Len(t, k.rec.Tokens, 2)
			assert.Equal(t, v1, currentHBKID(t, east.fixture, id), "a pending version is not current")

			ct := east.must(t, alice, "Encrypt", map[string]any{"KeyId": id, "Plaintext": []byte("during")})["CiphertextBlob"]
			assert.Equal(t, v1, blobHBKID(t, ct))
			west.must(t, alice, "Decrypt", map[string]any{"CiphertextBlob": ct})
			assert.Empty(t, east.must(t, alice, "ListKeyRotations", map[string]any{"KeyId": id})["Rotations"], "a pending rotation is not listed")
			// Neither another rotation nor a move of the primary goes
			// ahead of the pending one.
			_, err = east.call(alice, "UpdatePrimaryRegion", map[string]any{"KeyId": id, "PrimaryRegion": "us-west-2"})
			assert.Equal(t, kmsapi.KMSInternal, exception(err))
			_, _, err = east.s.KeyMaintenance(context.Background())
			require.NoError(t, err, "an unreachable region does not fail the maintenance")

			east.links.down = false
			if finish == "retry" {
				east.must(t, alice, "RotateKeyOnDemand", map[string]any{"KeyId": id})
			} else {
				_, _, err = east.s.KeyMaintenance(context.Background())
				require.NoError(t, err)
			}
			k, _ = east.s.loadKey(id)
			assert.Nil(t, k.rec.Key.PendingRotation)
			assert.Len(t, k.rec.Tokens, 2, "the retry completes the rotation, it does not start another")
			v2 := currentHBKID(t, east.fixture, id)
			assert.NotEqual(t, v1, v2)
			assert.Equal(t, v2, currentHBKID(t, west.fixture, id))
			ct2 := west.must(t, alice, "Encrypt", map[string]any{"KeyId": id, "Plaintext": []byte("after")})["CiphertextBlob"]
			east.must(t, alice, "Decrypt", map[string]any{"CiphertextBlob": ct2})
			for _, r := range []*region{east, west} {
				assert.Len(t, r.must(t, alice, "ListKeyRotations", map[string]any{"KeyId": id})["Rotations"], 1)
			}
		})
	}
}

// A pending rotation at ReplicateKey: the new replica gets the committed
// versions, then the pending one with the rotation's completion.
func TestMultiRegionRotationPendingAtReplicate(t *testing.T) {
	east, west := twoRegions(t)
	id := east.createKey(t, map[string]any{"MultiRegion": true})
	// A primary without replicas rotates at once.
	east.must(t, alice, "RotateKeyOnDemand", map[string]any{"KeyId": id})
	k, _ := east.s.loadKey(id)
	require.Nil(t, k.rec.Key.PendingRotation)
	require.Len(t, k.rec.Key.Rotations, 1)

	// Make a pending rotation by hand (as a failed push leaves it).
	tok, err := east.s.createHBK(context.Background(), id)
	require.NoError(t, err)
	_, err = east.s.updateKey(context.Background(), id, func(r *keystore.Record) error {
		r.Tokens = append(r.Tokens, tok)
		r.Key.PendingRotation = &keystore.Rotation{Date: east.now.Unix(), Type: "ON_DEMAND"}
		r.Key.MultiRegion.Unsynced = true
		return nil
	})
	require.NoError(t, err)
	east.must(t, alice, "ReplicateKey", map[string]any{"KeyId": id, "ReplicaRegion": "us-west-2"})
	w, _ := west.s.loadKey(id)
	assert.Len(t, w.rec.Tokens, 2, "the replica gets the committed versions")
	_, _, err = east.s.KeyMaintenance(context.Background())
	require.NoError(t, err)
	w, _ = west.s.loadKey(id)
	assert.Len(t, w.rec.Tokens, 3)
	assert.Equal(t, currentHBKID(t, east.fixture, id), currentHBKID(t, west.fixture, id))
}

// A replica's region takes a rotation only from the primary's region,
// and never loses a version.
func TestAcceptRotationRefusals(t *testing.T) {
	east, west, id := replicated(t)
	east.must(t, alice, "RotateKeyOnDemand", map[string]any{"KeyId": id})
	k, _ := east.s.loadKey(id)
	sy := syncOf(k.rec)
	ctx := context.Background()

	// A push that names the wrong primary region.
	assert.Equal(t, kmsapi.UnsupportedOperation, exception(west.s.AcceptRotation(ctx, "eu-central-1", sy)))
	// An unknown key.
	other := *sy
	other.KeyID = "mrk-00000000000000000000000000000000"
	assert.Equal(t, "NotFoundException", exception(west.s.AcceptRotation(ctx, "us-east-1", &other)))
	// A transport that does not open (none).
	assert.Equal(t, kmsapi.KMSInternal, exception(west.s.AcceptRotation(ctx, "us-east-1", sy)))
	// A stale push with fewer versions than the replica holds.
	stale := &keystore.Record{Key: k.rec.Key, Tokens: k.rec.Tokens[:1]}
	stale.Key.Rotations = nil
	assert.Equal(t, kmsapi.ValidationException, exception(east.s.pushRotation(ctx, stale, "us-west-2", syncOf(stale))))
	w, _ := west.s.loadKey(id)
	assert.Len(t, w.rec.Tokens, 2, "the replica keeps its versions")
}

// A former primary that kept a pending version (a rotation started as
// UpdatePrimaryRegion moved the primary away) never pushes it, encrypts
// under its committed versions, and gives the pending version way to the
// new primary's next rotation.
func TestMultiRegionRotationPendingOnFormerPrimary(t *testing.T) {
	east, west, id := replicated(t)
	ctx := context.Background()
	east.must(t, alice, "UpdatePrimaryRegion", map[string]any{"KeyId": id, "PrimaryRegion": "us-west-2"})
	v1 := currentHBKID(t, east.fixture, id)
	tok, err := east.s.createHBK(ctx, id)
	require.NoError(t, err)
	_, err = east.s.updateKey(ctx, id, func(r *keystore.Record) error {
		r.Tokens = append(r.Tokens, tok)
		r.Key.PendingRotation = &keystore.Rotation{Date: east.now.Unix(), Type: "ON_DEMAND"}
		r.Key.MultiRegion.Unsynced = true
		return nil
	})
	require.NoError(t, err, "a replica's record may keep a pending version")
	_, _, err = east.s.KeyMaintenance(ctx)
	require.NoError(t, err)
	w, _ := west.s.loadKey(id)
	assert.Len(t, w.rec.Tokens, 1, "a replica pushes nothing")
	ct := east.must(t, alice, "Encrypt", map[string]any{"KeyId": id, "Plaintext": []byte("x")})["CiphertextBlob"]
	assert.Equal(t, v1, blobHBKID(t, ct))

	west.must(t, alice, "RotateKeyOnDemand", map[string]any{"KeyId": id})
	e, _ := east.s.loadKey(id)
	assert.Nil(t, e.rec.Key.PendingRotation)
	assert.Len(t, e.rec.Tokens, 2)
	assert.Equal(t, currentHBKID(t, west.fixture, id), currentHBKID(t, east.fixture, id))
	ct = east.must(t, alice, "Encrypt", map[string]any{"KeyId": id, "Plaintext": []byte("y")})["CiphertextBlob"]
	west.must(t, alice, "Decrypt", map[string]any{"CiphertextBlob": ct})
}
