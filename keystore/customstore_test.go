package keystore_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/hbk"
	"github.com/trentkms/trent/keystore"
)

const storeID = "cks-0123456789abcdef0"

func storeRecord(t testing.TB) *keystore.CustomKeyStore {
	bl := &hbk.Blob{KeyID: storeID, Ciphertext: make([]byte, 20)}
	secret, err := bl.Marshal()
	require.NoError(t, err)
	return &keystore.CustomKeyStore{ID: storeID, Account: "111122223333", Region: "us-east-1", Name: "n",
		Type: keystore.StoreTypeCloudHSM, Created: 1, TokenLabel: "customer", ModulePath: "/usr/lib/m.so",
		Token: token(t, storeID), Secret: secret, State: keystore.ConnDisconnected}
}

func TestCustomKeyStoreRoundTrip(t *testing.T) {
	c := storeRecord(t)
	enc, err := c.Marshal()
	require.NoError(t, err)
	require.True(t, keystore.IsCustomKeyStoreRecord(enc))
	got, err := keystore.ParseCustomKeyStore(enc)
	require.NoError(t, err)
	require.Equal(t, c, got)
	for i := range len(enc) {
		_, err := keystore.ParseCustomKeyStore(enc[:i])
		require.Error(t, err, "prefix %d", i)
	}
	_, err = keystore.ParseCustomKeyStore(append(bytes.Clone(enc), 0))
	require.Error(t, err)

	// Records whose fields break the invariants do not marshal.
	for _, change := range []func(c *keystore.CustomKeyStore){
		func(c *keystore.CustomKeyStore) { c.ID = "cks-1" },
		func(c *keystore.CustomKeyStore) { c.Type = "OTHER" },
		func(c *keystore.CustomKeyStore) { c.State = "DISCONNECTING" },
		func(c *keystore.CustomKeyStore) { c.Token = token(t, kid) },             // another key's token
		func(c *keystore.CustomKeyStore) { c.Secret = []byte("the PIN itself") }, // not a sealed blob
	} {
		c := storeRecord(t)
		change(c)
		_, err := c.Marshal()
		require.Error(t, err)
	}

	idx, err := (&keystore.StoreNameIndex{StoreID: storeID}).Marshal()
	require.NoError(t, err)
	x, err := keystore.ParseStoreNameIndex(idx)
	require.NoError(t, err)
	require.Equal(t, storeID, x.StoreID)
	_, err = keystore.ParseStoreNameIndex(idx[:len(idx)-1])
	require.Error(t, err)
}

func FuzzParseCustomKeyStore(f *testing.F) {
	enc, err := storeRecord(f).Marshal()
	require.NoError(f, err)
	f.Add(enc)
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := keystore.ParseCustomKeyStore(in)
		if err != nil {
			return
		}
		again, err := c.Marshal()
		require.NoError(t, err)
		c2, err := keystore.ParseCustomKeyStore(again)
		require.NoError(t, err)
		require.Equal(t, c, c2)
	})
}

func FuzzParseStoreNameIndex(f *testing.F) {
	idx, err := (&keystore.StoreNameIndex{StoreID: storeID}).Marshal()
	require.NoError(f, err)
	f.Add(idx)
	f.Fuzz(func(t *testing.T, in []byte) {
		x, err := keystore.ParseStoreNameIndex(in)
		if err != nil {
			return
		}
		out, err := x.Marshal()
		require.NoError(t, err)
		require.Equal(t, in, out)
	})
}
