package hsm_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/hsm"
	"github.com/trentkms/trent/tokenstore"
	"github.com/trentkms/trent/tokenstore/storetest"
)

// The in-process secp256k1 against SoftHSM's (which has the curve): each
// verifies the other's signatures, and a scalar made by either signs in
// the other. A known point: the scalar 1 gives the generator.
func TestSecp256k1InProcessMatchesToken(t *testing.T) {
	one := make([]byte, 32)
	one[31] = 1
	d, point, err := hsm.K1Generate(bytes.NewReader(one))
	require.NoError(t, err)
	assert.Equal(t, one, d)
	assert.Equal(t, "0479be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8", hex.EncodeToString(point))

	tok := storetest.New(t, tokenstore.SoftHSM).NewToken(t)
	digest := sha256.Sum256([]byte("message"))
	other := sha256.Sum256([]byte("other"))
	for range 8 {
		// Made in the process, used in the token.
		d, point, err := hsm.K1Generate(rand.Reader)
		require.NoError(t, err)
		sig, err := hsm.K1Sign(rand.Reader, d, digest[:])
		require.NoError(t, err)
		ok, err := tok.VerifyECDSARaw(hsm.Secp256k1Params, point, digest[:], sig)
		require.NoError(t, err)
		require.True(t, ok, "SoftHSM verifies the in-process signature")
		ok, err = tok.VerifyECDSARaw(hsm.Secp256k1Params, point, other[:], sig)
		require.NoError(t, err)
		require.False(t, ok)
		tsig, err := tok.SignECDSARaw(hsm.Secp256k1Params, d, digest[:])
		require.NoError(t, err)
		ok, err = hsm.K1Verify(point, digest[:], tsig)
		require.NoError(t, err)
		require.True(t, ok, "the in-process check verifies SoftHSM's signature")

		// Made in the token, used in the process.
		d, point, err = tok.GenerateECRaw(hsm.Secp256k1Params)
		require.NoError(t, err)
		sig, err = hsm.K1Sign(rand.Reader, d, digest[:])
		require.NoError(t, err)
		ok, err = tok.VerifyECDSARaw(hsm.Secp256k1Params, point, digest[:], sig)
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = hsm.K1Verify(point, other[:], sig)
		require.NoError(t, err)
		require.False(t, ok)
		bad := bytes.Clone(sig)
		bad[40] ^= 1
		ok, err = hsm.K1Verify(point, digest[:], bad)
		require.NoError(t, err)
		require.False(t, ok)
	}
	offCurve := bytes.Clone(point)
	offCurve[64] ^= 1
	_, err = hsm.K1Verify(offCurve, digest[:], make([]byte, 64))
	require.ErrorIs(t, err, hsm.ErrInvalidPublicKey)
	_, err = hsm.K1Sign(rand.Reader, make([]byte, 32), digest[:])
	require.ErrorIs(t, err, hsm.ErrInvalidInput, "the zero scalar")
}

// On NSS, which does not know secp256k1, the Token's secp256k1 operations
// run in the process; SoftHSM's token checks what they make.
func TestSecp256k1OnNSS(t *testing.T) {
	nssTok := storetest.New(t, tokenstore.NSS).NewToken(t)
	soft := storetest.New(t, tokenstore.SoftHSM).NewToken(t)
	digest := sha256.Sum256([]byte("message"))
	d, point, err := nssTok.GenerateECRaw(hsm.Secp256k1Params)
	require.NoError(t, err)
	sig, err := nssTok.SignECDSARaw(hsm.Secp256k1Params, d, digest[:])
	require.NoError(t, err)
	ok, err := soft.VerifyECDSARaw(hsm.Secp256k1Params, point, digest[:], sig)
	require.NoError(t, err)
	require.True(t, ok, "SoftHSM verifies the signature made for the NSS token")
	tsig, err := soft.SignECDSARaw(hsm.Secp256k1Params, d, digest[:])
	require.NoError(t, err)
	ok, err = nssTok.VerifyECDSARaw(hsm.Secp256k1Params, point, digest[:], tsig)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = nssTok.VerifyECDSARaw(hsm.Secp256k1Params, point, make([]byte, 32), tsig)
	require.NoError(t, err)
	require.False(t, ok)
	// Other curves are the module's business alone.
	_, _, err = nssTok.GenerateECRaw([]byte{0x06, 0x03, 0x2b, 0x65, 0x70})
	require.Error(t, err)
}
