package hsm_test

import (
	"crypto"
	"crypto/ecdsa"
	"testing"

	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/hsm"
	"github.com/trentkms/trent/session"
	"github.com/trentkms/trent/tokenstore"
	"github.com/trentkms/trent/tokenstore/storetest"
)

// A token whose login lapsed (the module logged the application out, as a
// token reset does) shows a session no private object: C_FindObjects
// answers nothing, not an error. Lookups must log in again and find the
// objects, never answer "not found" for them.
func TestLapsedLoginIsRestored(t *testing.T) { storetest.Each(t, testLapsedLoginIsRestored) }

func testLapsedLoginIsRestored(t *testing.T, e *storetest.Env) {
	tok := e.NewToken(t)
	id, _, err := tok.EnsureIdentity()
	require.NoError(t, err)
	_, err = tok.WriteData("anchor", "trent", []byte("the anchor"))
	require.NoError(t, err)
	require.NoError(t, tok.GeneratePersistentAESKey("store key", true, true))

	require.NoError(t, tok.LogoutBehindPool())
	id2, err := tok.Identity()
	require.NoError(t, err, "the identity keys of a lapsed login")
	assert.Equal(t, id.ID(), id2.ID())

	require.NoError(t, tok.LogoutBehindPool())
	v, err := tok.ReadData("anchor")
	require.NoError(t, err, "a data object of a lapsed login")
	assert.Equal(t, "the anchor", string(v))

	require.NoError(t, tok.LogoutBehindPool())
	_, info, err := tok.PersistentAESKey("store key")
	require.NoError(t, err, "a persistent key of a lapsed login")
	assert.Equal(t, "store key", info.Label)

	require.NoError(t, tok.LogoutBehindPool())
	list, err := tok.PersistentAESKeys()
	require.NoError(t, err)
	assert.Len(t, list, 1, "the list of a lapsed login")

	// An operation that fails because the login lapsed (modules answer
	// CKR_USER_NOT_LOGGED_IN) runs once more, logged in again.
	require.NoError(t, tok.LogoutBehindPool())
	calls := 0
	err = tok.Do("probe", func() error {
		calls++
		if calls == 1 {
			return pkcs11.Error(pkcs11.CKR_USER_NOT_LOGGED_IN)
		}
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, 2, calls, "retried once after the login was restored")
	if e.Kind() == tokenstore.NSS {
		// NSS keeps a private key's handle across a logout (and answers
		// an operation on it meanwhile with CKR_HOST_MEMORY); SoftHSM
		// drops the handles of private objects at C_Logout, so that a
		// key must be found again (Identity, above).
		require.NoError(t, tok.LogoutBehindPool())
		sig, err := id.Signing.Sign(nil, digest("m"), crypto.SHA384)
		require.NoError(t, err, "a signature with a lapsed login")
		assert.True(t, ecdsa.VerifyASN1(id.Signing.PublicKey(), digest("m"), sig))
	}

	// What is truly absent is still not found, once logged in.
	require.NoError(t, tok.LogoutBehindPool())
	_, err = tok.ReadData("no such record")
	require.ErrorIs(t, err, hsm.ErrObjectNotFound)
	found, err := tok.DestroyData("no such record")
	require.NoError(t, err)
	assert.False(t, found)
}

// A login that cannot be restored is the token's state, not the
// request's: ErrNotLoggedIn, which the HSM node answers as an internal
// (retryable) error, never "not found".
func TestUnrestorableLoginIsNotNotFound(t *testing.T) {
	storetest.Each(t, testUnrestorableLoginIsNotNotFound)
}

func testUnrestorableLoginIsNotNotFound(t *testing.T, e *storetest.Env) {
	tok := e.NewToken(t)
	_, _, err := tok.EnsureIdentity()
	require.NoError(t, err)
	_, err = tok.WriteData("anchor", "trent", []byte("the anchor"))
	require.NoError(t, err)
	require.NoError(t, tok.GeneratePersistentAESKey("store key", true, true))

	tok.SetPIN("not-the-user-pin")
	require.NoError(t, tok.LogoutBehindPool())
	notFound := []error{hsm.ErrKeyNotFound, hsm.ErrObjectNotFound}
	check := func(what string, err error) {
		t.Helper()
		require.ErrorIs(t, err, hsm.ErrNotLoggedIn, what)
		for _, nf := range notFound {
			assert.NotErrorIs(t, err, nf, what)
		}
		assert.Equal(t, session.AlertFor(session.ErrInternal).Code, session.AlertFor(err).Code,
			"%s: the node's answer is an internal error", what)
	}
	_, err = tok.Identity()
	check("Identity", err)
	_, _, err = tok.EnsureIdentity()
	check("EnsureIdentity", err)
	_, err = tok.ReadData("anchor")
	check("ReadData", err)
	_, err = tok.DestroyData("anchor")
	check("DestroyData", err)
	_, _, err = tok.PersistentAESKey("store key")
	check("PersistentAESKey", err)
	_, err = tok.PersistentAESKeys()
	check("PersistentAESKeys", err)
	assert.NotContains(t, err.Error(), "not-the-user-pin", "errors carry no PIN")

	// With the PIN back, the next lookup logs in again.
	tok.SetPIN(storetest.UserPIN)
	_, err = tok.Identity()
	require.NoError(t, err)
	v, err := tok.ReadData("anchor")
	require.NoError(t, err)
	assert.Equal(t, "the anchor", string(v))
}
