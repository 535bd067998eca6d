package hsm_test

import (
	"bytes"
	"testing"

	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/hsm"
	"github.com/trentkms/trent/softhsm/softhsmtest"
)

// Data objects are token objects: written, replaced in place, read back
// after a restart, destroyed; private (found only after login) and never
// two under one label.
func TestDataObjects(t *testing.T) {
	store := softhsmtest.NewStore(t)
	require.NoError(t, store.InitToken("node", softhsmtest.SOPIN, softhsmtest.UserPIN))
	cfg := store.TokenConfig("node", softhsmtest.UserPIN)
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
	assert.Equal(t, 1, n)

	_, err = tok.WriteData("anchor", "trent", nil)
	require.ErrorIs(t, err, hsm.ErrInvalidInput)
	_, err = tok.WriteData("anchor", "trent", make([]byte, hsm.MaxDataSize+1))
	require.ErrorIs(t, err, hsm.ErrInvalidInput)

	require.NoError(t, tok.Close())
	tok, err = hsm.Open(cfg)
	require.NoError(t, err)
	defer tok.Close()
	v, err := tok.ReadData("anchor")
	require.NoError(t, err)
	assert.Equal(t, []byte("two, longer"), v)

	// Two objects under one label (made behind the Token's back): reads
	// refuse to choose, DestroyData removes both.
	ctx, slot := tok.Raw()
	s, err := ctx.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	require.NoError(t, err)
	_, err = ctx.CreateObject(s, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_DATA),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, "anchor"),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, []byte("duplicate")),
	})
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
