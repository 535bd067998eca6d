package hsm_test

import (
	"bytes"
	"testing"

	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/hsm"
	"github.com/trentkms/trent/tokenstore"
	"github.com/trentkms/trent/tokenstore/storetest"
)

// Data objects are token objects: written, replaced in place, read back
// after a restart, destroyed; private (found only after login) and never
// two under one label. On NSS, which keeps no private token data objects,
// the record is a generic-secret token key read back by wrapping.
func TestDataObjects(t *testing.T) { storetest.Each(t, testDataObjects) }

func testDataObjects(t *testing.T, e *storetest.Env) {
	e.InitToken(t, "node")
	cfg := e.Config(t, "node", storetest.UserPIN)
	tok, err := hsm.Open(cfg)
	require.NoError(t, err)

	_, err = tok.ReadData("anchor")
	require.ErrorIs(t, err, hsm.ErrObjectNotFound)
	found, err := tok.DestroyData("anchor")
	require.NoError(t, err)
	assert.False(t, found)

	created, err := tok.WriteData("anchor", "trent", []byte("one"))
	require.NoError(t, err)
	assert.True(t, created)
	created, err = tok.WriteData("anchor", "trent", []byte("two, longer"))
	require.NoError(t, err)
	assert.False(t, created, "the second write replaces the object")
	_, err = tok.WriteData("other", "trent", []byte("x"))
	require.NoError(t, err)
	n, err := tok.CountObjects([]*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_DATA),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, "anchor"),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_APPLICATION, "trent"),
	})
	require.NoError(t, err)
	holders, err := tok.CountObjects([]*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, "anchor"),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
	})
	require.NoError(t, err)
	if e.Kind() == tokenstore.NSS {
		assert.Equal(t, [2]int{0, 1}, [2]int{n, holders}, "NSS: one key standing in for the data object")
	} else {
		assert.Equal(t, [2]int{1, 0}, [2]int{n, holders}, "one data object")
	}
	big := bytes.Repeat([]byte{0xa5}, hsm.MaxDataSize)
	_, err = tok.WriteData("big", "trent", big)
	require.NoError(t, err)
	v, err := tok.ReadData("big")
	require.NoError(t, err)
	assert.True(t, bytes.Equal(big, v), "a record of MaxDataSize bytes reads back whole")

	_, err = tok.WriteData("anchor", "trent", nil)
	require.ErrorIs(t, err, hsm.ErrInvalidInput)
	_, err = tok.WriteData("anchor", "trent", make([]byte, hsm.MaxDataSize+1))
	require.ErrorIs(t, err, hsm.ErrInvalidInput)

	require.NoError(t, tok.Close())
	tok, err = hsm.Open(cfg)
	require.NoError(t, err)
	defer tok.Close()
	v, err = tok.ReadData("anchor")
	require.NoError(t, err)
	assert.Equal(t, []byte("two, longer"), v)

	// Two objects under one label (made behind the Token's back): reads
	// refuse to choose, DestroyData removes both.
	ctx, slot := tok.Raw()
	s, err := ctx.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	require.NoError(t, err)
	duplicate := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_DATA),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, "anchor"),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, []byte("duplicate")),
	}
	if e.Kind() == tokenstore.NSS {
		duplicate[0] = pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY)
		duplicate = append(duplicate, pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET))
	}
	_, err = ctx.CreateObject(s, duplicate)
	require.NoError(t, err)
	require.NoError(t, ctx.CloseSession(s))
	_, err = tok.ReadData("anchor")
	require.ErrorIs(t, err, hsm.ErrObjectAmbiguous)
	_, err = tok.WriteData("anchor", "trent", []byte("three"))
	require.ErrorIs(t, err, hsm.ErrObjectAmbiguous)

	found, err = tok.DestroyData("anchor")
	require.NoError(t, err)
	assert.True(t, found)
	_, err = tok.ReadData("anchor")
	require.ErrorIs(t, err, hsm.ErrObjectNotFound)
	v, err = tok.ReadData("other")
	require.NoError(t, err)
	assert.True(t, bytes.Equal(v, []byte("x")))
	_, err = tok.ReadData("")
	require.Error(t, err)
}
