package keystore_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/keystore"
)

const mrk = "mrk-1234abcd12ab34cd56ef1234567890ab"

func mrkRecord(t *testing.T) *keystore.Record {
	r := record(t)
	r.Key.KeyID = mrk
	r.Key.MultiRegion = &keystore.MultiRegion{PrimaryRegion: "us-east-1", Regions: []string{"us-east-1", "us-west-2"}}
	r.Tokens = [][]byte{token(t, mrk), token(t, mrk)}
	return r
}

func TestMultiRegionRecord(t *testing.T) {
	require.True(t, keystore.ValidKeyID(mrk))
	require.True(t, keystore.IsMultiRegionKeyID(mrk))
	require.False(t, keystore.IsMultiRegionKeyID(kid))
	for _, bad := range []string{"mrk-1234", "MRK-1234abcd12ab34cd56ef1234567890ab", "mrk-1234ABCD12ab34cd56ef1234567890ab", mrk + "0"} {
		require.False(t, keystore.ValidKeyID(bad), bad)
	}
	r := mrkRecord(t)
	enc, err := r.Marshal()
	require.NoError(t, err)
	back, err := keystore.ParseRecord(enc)
	require.NoError(t, err)
	require.Equal(t, r, back)
	require.True(t, back.Key.IsPrimary())
	require.Equal(t, "arn:aws:kms:us-west-2:111122223333:key/"+mrk, back.Key.ARNIn("us-west-2"))
	c := back.Clone()
	c.Key.MultiRegion.Regions[0] = "x"
	require.Equal(t, r, back, "Clone copies the regions")

	for name, f := range map[string]func(r *keystore.Record){
		"mrk ID without configuration": func(r *keystore.Record) { r.Key.MultiRegion = nil },
		"configuration of a UUID key": func(r *keystore.Record) {
			r.Key.KeyID, r.Tokens = kid, [][]byte{token(t, kid), token(t, kid)}
		},
		"regions unsorted":       func(r *keystore.Record) { r.Key.MultiRegion.Regions = []string{"us-west-2", "us-east-1"} },
		"a region twice":         func(r *keystore.Record) { r.Key.MultiRegion.Regions = []string{"us-east-1", "us-east-1"} },
		"not its own region":     func(r *keystore.Record) { r.Key.Region = "eu-west-1" },
		"primary not among them": func(r *keystore.Record) { r.Key.MultiRegion.PrimaryRegion = "eu-west-1" },
		"no regions":             func(r *keystore.Record) { r.Key.MultiRegion.Regions = nil },
	} {
		r := mrkRecord(t)
		f(r)
		_, err := r.Marshal()
		require.ErrorIs(t, err, keystore.ErrMalformed, name)
	}
}

// A multi-Region key's pending rotation: one token more than the
// rotations plus one, the last; Current is the last committed version.
func TestPendingRotationRecord(t *testing.T) {
	r := mrkRecord(t)
	pending := token(t, mrk)
	pending[len(pending)-1] = 7 // tell it apart
	r.Tokens = append(r.Tokens, pending)
	r.Key.PendingRotation = &keystore.Rotation{Date: 9, Type: "AUTOMATIC"}
	r.Key.MultiRegion.Unsynced = true
	enc, err := r.Marshal()
	require.NoError(t, err)
	back, err := keystore.ParseRecord(enc)
	require.NoError(t, err)
	require.Equal(t, r, back)
	require.Equal(t, r.Tokens[1], back.Current(), "a pending version is not current")
	require.Len(t, back.Committed(), 2)
	c := back.Clone()
	c.Key.PendingRotation.Date = 10
	require.Equal(t, int64(9), back.Key.PendingRotation.Date, "Clone copies the pending rotation")

	// Without its token, or on a single-Region key, it does not encode.
	short := mrkRecord(t)
	short.Key.PendingRotation = &keystore.Rotation{Date: 9, Type: "AUTOMATIC"}
	_, err = short.Marshal()
	require.Error(t, err)
	single := record(t)
	single.Tokens = append(single.Tokens, token(t, kid))
	single.Key.PendingRotation = &keystore.Rotation{Date: 9, Type: "AUTOMATIC"}
	_, err = single.Marshal()
	require.Error(t, err)
	// Without a pending rotation, Current is the last token.
	require.Equal(t, mrkRecord(t).Tokens[1], mrkRecord(t).Current())
}
