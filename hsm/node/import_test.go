package node_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/hbk"
	"github.com/trentkms/trent/hsm/node"
	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/tokenstore"
)

// Key import: a wrapping key made by one HSM unwraps, in another,
// material wrapped with its public key; the HBK token encrypts and
// decrypts like a drawn HBK's; a re-import with the first HBK ID opens
// the first import's ciphertexts; the check value tells same material
// from other; a wrapping key does nothing else, and only for its key.
func TestImportKeyMaterial(t *testing.T) { eachModule(t, testImportKeyMaterial) }

func testImportKeyMaterial(t *testing.T, kind tokenstore.Kind) {
	c := newCeremonyOn(t, kind)
	h1, h2 := c.nodes[0], c.nodes[1]
	require.NoError(t, h2.Import(c.genesis(h1, h2), c.now))
	const id = "1234abcd-12ab-34cd-56ef-1234567890ab"

	wrap, pubDER, err := h1.CreateKeyPair(hsmcmd.SpecWrapRSA2048, id)
	require.NoError(t, err)
	pub, err := x509.ParsePKIXPublicKey(pubDER)
	require.NoError(t, err)
	pk := pub.(*rsa.PublicKey)
	material := make([]byte, 32)
	rand.Read(material)

	ct256, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pk, material, nil)
	require.NoError(t, err)
	tok, check, err := h2.ImportKeyMaterial(wrap, hsmcmd.AlgOAEPSHA256, ct256, id, nil)
	require.NoError(t, err)
	require.Equal(t, hsmcmd.ImportCheckValue(material, id), check)
	blob, err := h2.Encrypt(tok, nil, []byte("hello"))
	require.NoError(t, err)
	pt, err := h1.Decrypt(tok, nil, blob)
	require.NoError(t, err)
	require.Equal(t, "hello", string(pt))

	// Re-import (SHA-1 this time) under the first HBK ID.
	first, err := hbk.ParseToken(tok)
	require.NoError(t, err)
	ct1, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, pk, material, nil)
	require.NoError(t, err)
	tok2, check2, err := h1.ImportKeyMaterial(wrap, hsmcmd.AlgOAEPSHA1, ct1, id, first.HBKID[:])
	require.NoError(t, err)
	require.Equal(t, check, check2)
	pt, err = h1.Decrypt(tok2, nil, blob)
	require.NoError(t, err)
	require.Equal(t, "hello", string(pt))

	other := make([]byte, 32)
	rand.Read(other)
	cto, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pk, other, nil)
	require.NoError(t, err)
	_, check3, err := h1.ImportKeyMaterial(wrap, hsmcmd.AlgOAEPSHA256, cto, id, nil)
	require.NoError(t, err)
	require.NotEqual(t, check, check3)

	// Refusals.
	_, _, err = h1.ImportKeyMaterial(wrap, hsmcmd.AlgOAEPSHA1, ct256, id, nil)
	require.ErrorIs(t, err, node.ErrUnwrap, "the other OAEP hash")
	short, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pk, material[:16], nil)
	require.NoError(t, err)
	_, _, err = h1.ImportKeyMaterial(wrap, hsmcmd.AlgOAEPSHA256, short, id, nil)
	require.ErrorIs(t, err, node.ErrUnwrap, "16 bytes")
	_, _, err = h1.ImportKeyMaterial(wrap, hsmcmd.AlgRSAPSSSHA256, ct256, id, nil)
	require.ErrorIs(t, err, node.ErrKeyUse)
	_, _, err = h1.ImportKeyMaterial(wrap, hsmcmd.AlgOAEPSHA256, ct256, "1234abcd-12ab-34cd-56ef-1234567890ac", nil)
	require.ErrorIs(t, err, node.ErrKeyUse, "another key's wrapping key")
	_, err = h1.AsymDecrypt(wrap, hsmcmd.AlgOAEPSHA256, ct256)
	require.ErrorIs(t, err, node.ErrKeyUse, "a wrapping key never decrypts to the host")
	_, err = h1.Sign(wrap, hsmcmd.AlgRSAPSSSHA256, false, []byte("m"))
	require.ErrorIs(t, err, node.ErrKeyUse)
	rsaTok, _, err := h1.CreateKeyPair(hsmcmd.SpecRSA2048, id)
	require.NoError(t, err)
	_, _, err = h1.ImportKeyMaterial(rsaTok, hsmcmd.AlgOAEPSHA256, ct256, id, nil)
	require.ErrorIs(t, err, node.ErrKeyUse, "a customer RSA key is no wrapping key")
}
