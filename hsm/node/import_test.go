package node_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/hbk"
	"github.com/trentkms/trent/hsm/node"
	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/internal/kwp"
	"github.com/trentkms/trent/session"
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
	require.ErrorIs(t, err, node.ErrMaterial, "16 bytes")
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

// rsaAESWrap wraps material as RSA_AES_KEY_WRAP_SHA_1/256 (AWS's
// documentation: RSAES-OAEP of a new AES-256 key, then the material
// wrapped under it with RFC 5649).
func rsaAESWrap(t *testing.T, pk *rsa.PublicKey, sha256Hash bool, kek, material []byte) []byte {
	t.Helper()
	h := sha1.New()
	if sha256Hash {
		h = sha256.New()
	}
	ct, err := rsa.EncryptOAEP(h, rand.Reader, pk, kek, nil)
	require.NoError(t, err)
	w, err := kwp.Wrap(kek, material)
	require.NoError(t, err)
	return append(ct, w...)
}

// importFixture is a domain of two HSMs and a wrapping key of h1 for id.
func importFixture(t *testing.T) (c *ceremony, h1, h2 *node.Node, wrap []byte, pk *rsa.PublicKey) {
	c = newCeremony(t)
	h1, h2 = c.nodes[0], c.nodes[1]
	require.NoError(t, h2.Import(c.genesis(h1, h2), c.now))
	wrap, pubDER, err := h1.CreateKeyPair(hsmcmd.SpecWrapRSA3072, importID)
	require.NoError(t, err)
	pub, err := x509.ParsePKIXPublicKey(pubDER)
	require.NoError(t, err)
	return c, h1, h2, wrap, pub.(*rsa.PublicKey)
}

const importID = "1234abcd-12ab-34cd-56ef-1234567890ab"

// RSA_AES_KEY_WRAP_SHA_1 and _256: the AES key under RSAES-OAEP, the
// material under KWP; a wrong AES key, hash or truncation does not
// unwrap.
func TestImportRSAAESKeyWrap(t *testing.T) {
	_, h1, h2, wrap, pk := importFixture(t)
	material, kek := make([]byte, 32), make([]byte, 32)
	rand.Read(material)
	rand.Read(kek)
	for _, c := range []struct {
		alg    uint8
		sha256 bool
	}{{hsmcmd.AlgRSAAESKeyWrapSHA1, false}, {hsmcmd.AlgRSAAESKeyWrapSHA256, true}} {
		w := rsaAESWrap(t, pk, c.sha256, kek, material)
		_, check, err := h2.ImportKeyMaterial(wrap, c.alg, w, importID, nil)
		require.NoError(t, err)
		require.Equal(t, hsmcmd.ImportCheckValue(material, importID), check)
		_, _, err = h1.ImportKeyMaterial(wrap, c.alg, w[:len(w)-8], importID, nil)
		require.ErrorIs(t, err, node.ErrUnwrap, "truncated")
		_, _, err = h1.ImportKeyMaterial(wrap, c.alg, w[:pk.Size()], importID, nil)
		require.ErrorIs(t, err, node.ErrUnwrap, "no KWP part")
		_, _, err = h1.ImportKeyMaterial(wrap, hsmcmd.AlgRSAAESKeyWrapSHA1+hsmcmd.AlgRSAAESKeyWrapSHA256-c.alg, w, importID, nil)
		require.ErrorIs(t, err, node.ErrUnwrap, "the other hash")
		bad := append([]byte(nil), w...)
		bad[len(bad)-1] ^= 1
		_, _, err = h1.ImportKeyMaterial(wrap, c.alg, bad, importID, nil)
		require.ErrorIs(t, err, node.ErrUnwrap, "KWP integrity")
	}
}

// secp256k1's generator: the public key of the scalar 1.
var secp256k1G = []byte{0x04,
	0x79, 0xbe, 0x66, 0x7e, 0xf9, 0xdc, 0xbb, 0xac, 0x55, 0xa0, 0x62, 0x95, 0xce, 0x87, 0x0b, 0x07,
	0x02, 0x9b, 0xfc, 0xdb, 0x2d, 0xce, 0x28, 0xd9, 0x59, 0xf2, 0x81, 0x5b, 0x16, 0xf8, 0x17, 0x98,
	0x48, 0x3a, 0xda, 0x77, 0x26, 0xa3, 0xc4, 0x65, 0x5d, 0xa4, 0xfb, 0xfc, 0x0e, 0x11, 0x08, 0xa8,
	0xfd, 0x17, 0xb4, 0x48, 0xa6, 0x85, 0x54, 0x19, 0x9c, 0x47, 0xd0, 0x8f, 0xfb, 0x10, 0xd4, 0xb8}

// ImportKeyToken: RSA, NIST ECC and secp256k1 private keys (PKCS#8) and
// HMAC keys become key tokens of the spec that sign or MAC as the
// importer's copy; the public key is derived from the private key; the
// check value is of the canonical material; material of another spec or
// size is ErrMaterial.
func TestImportKeyToken(t *testing.T) {
	_, h1, h2, wrap, pk := importFixture(t)
	kek := make([]byte, 32)
	rand.Read(kek)
	imp := func(spec uint8, material []byte) ([]byte, []byte, []byte, error) {
		return h2.ImportKeyToken(wrap, hsmcmd.AlgRSAAESKeyWrapSHA256, spec, rsaAESWrap(t, pk, true, kek, material), importID)
	}

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(rsaKey)
	require.NoError(t, err)
	tok, pub, check, err := imp(hsmcmd.SpecRSA2048, der)
	require.NoError(t, err)
	wantPub, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	require.Equal(t, wantPub, pub)
	require.Equal(t, hsmcmd.ImportCheckValue(der, importID), check)
	sig, err := h1.Sign(tok, hsmcmd.AlgRSAPKCS1SHA256, false, []byte("m"))
	require.NoError(t, err)
	d := sha256.Sum256([]byte("m"))
	require.NoError(t, rsa.VerifyPKCS1v15(&rsaKey.PublicKey, 5, d[:], sig)) // crypto.SHA256
	_, _, _, err = imp(hsmcmd.SpecRSA3072, der)
	require.ErrorIs(t, err, node.ErrMaterial, "a 2048-bit key for RSA_3072")

	for _, c := range []struct {
		spec  uint8
		curve elliptic.Curve
	}{{hsmcmd.SpecECCP256, elliptic.P256()}, {hsmcmd.SpecECCP521, elliptic.P521()}} {
		k, err := ecdsa.GenerateKey(c.curve, rand.Reader)
		require.NoError(t, err)
		der, _ := x509.MarshalPKCS8PrivateKey(k)
		tok, pub, _, err := imp(c.spec, der)
		require.NoError(t, err)
		wantPub, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
		require.Equal(t, wantPub, pub)
		sig, err := h1.Sign(tok, hsmcmd.AlgECDSASHA256, false, []byte("m"))
		require.NoError(t, err)
		require.True(t, ecdsa.VerifyASN1(&k.PublicKey, d[:], sig))
		_, _, _, err = imp(hsmcmd.SpecECCP384, der)
		require.ErrorIs(t, err, node.ErrMaterial, "another curve")
	}

	one := make([]byte, 32)
	one[31] = 1
	k1, err := hsmcmd.MarshalSecp256k1PKCS8(one, secp256k1G)
	require.NoError(t, err)
	tok, pub, check, err = imp(hsmcmd.SpecSECP256K1, k1)
	require.NoError(t, err)
	require.Equal(t, hsmcmd.ImportCheckValue(one, importID), check, "the scalar is the canonical material")
	wantPub, _ = hsmcmd.MarshalSecp256k1PublicKey(secp256k1G)
	require.Equal(t, wantPub, pub)
	sig, err = h1.Sign(tok, hsmcmd.AlgECDSASHA256, false, []byte("m"))
	require.NoError(t, err)
	ok, err := h1.VerifySecp256k1(pub, false, []byte("m"), sig)
	require.NoError(t, err)
	require.True(t, ok)
	two := make([]byte, 32)
	two[31] = 2
	k2, _ := hsmcmd.MarshalSecp256k1PKCS8(two, secp256k1G)
	_, _, _, err = imp(hsmcmd.SpecSECP256K1, k2)
	require.ErrorIs(t, err, node.ErrMaterial, "a public key not the scalar's")
	zero, _ := hsmcmd.MarshalSecp256k1PKCS8(make([]byte, 32), secp256k1G)
	_, _, _, err = imp(hsmcmd.SpecSECP256K1, zero)
	require.ErrorIs(t, err, node.ErrMaterial, "the scalar 0")

	for _, c := range []struct {
		spec     uint8
		min, max int
		alg      uint8
	}{{hsmcmd.SpecHMAC224, 28, 64, hsmcmd.AlgHMACSHA224}, {hsmcmd.SpecHMAC512, 64, 128, hsmcmd.AlgHMACSHA512}} {
		for _, n := range []int{c.min, c.max} {
			key := make([]byte, n)
			rand.Read(key)
			tok, pub, _, err := imp(c.spec, key)
			require.NoError(t, err)
			require.Empty(t, pub)
			mac, err := h1.GenerateMac(tok, c.alg, []byte("m"))
			require.NoError(t, err)
			hf := sha256.New224
			if c.spec == hsmcmd.SpecHMAC512 {
				hf = sha512.New
			}
			m := hmac.New(hf, key)
			m.Write([]byte("m"))
			require.Equal(t, m.Sum(nil), mac)
		}
		_, _, _, err := imp(c.spec, make([]byte, c.min-1))
		require.ErrorIs(t, err, node.ErrMaterial)
		_, _, _, err = imp(c.spec, make([]byte, c.max+1))
		require.ErrorIs(t, err, node.ErrMaterial)
	}
	_, _, _, err = imp(hsmcmd.SpecMLDSA44, make([]byte, 32))
	require.ErrorIs(t, err, node.ErrKeyUse, "ML-DSA is not imported")
	_, _, _, err = imp(hsmcmd.SpecWrapRSA2048, der)
	require.ErrorIs(t, err, node.ErrKeyUse, "nor a wrapping key")
}

// The handlers' refusals: material that does not unwrap is Alert 23,
// material of the wrong spec Alert 25, a wrapping token under a domain
// key this HSM does not hold Alert 24 (never the request's fault).
func TestImportRefusalAlerts(t *testing.T) {
	c, h1, _, wrap, pk := importFixture(t)
	kek := make([]byte, 32)
	rand.Read(kek)
	serve := func(n *node.Node, req hsmcmd.Request) error {
		in, err := req.Marshal()
		require.NoError(t, err)
		_, err = n.ServeCommand(req.Code(), in)
		return session.AlertFor(err).Err()
	}
	good := rsaAESWrap(t, pk, true, kek, make([]byte, 32))
	require.NoError(t, func() error {
		in, _ := hsmcmd.ImportKeyMaterialRequest{WrappingToken: wrap, Alg: hsmcmd.AlgRSAAESKeyWrapSHA256, Material: good, KeyID: importID}.Marshal()
		_, err := h1.ServeCommand(hsmcmd.ImportKeyMaterial, in)
		return err
	}())
	err := serve(h1, hsmcmd.ImportKeyMaterialRequest{WrappingToken: wrap, Alg: hsmcmd.AlgRSAAESKeyWrapSHA1, Material: good, KeyID: importID})
	require.ErrorIs(t, err, session.ErrRefused)
	err = serve(h1, hsmcmd.ImportKeyMaterialRequest{WrappingToken: wrap, Alg: hsmcmd.AlgRSAAESKeyWrapSHA256,
		Material: rsaAESWrap(t, pk, true, kek, make([]byte, 31)), KeyID: importID})
	require.ErrorIs(t, err, session.ErrKeyMaterial)
	err = serve(h1, hsmcmd.ImportKeyTokenRequest{WrappingToken: wrap, Alg: hsmcmd.AlgRSAAESKeyWrapSHA256, Spec: hsmcmd.SpecECCP256,
		Material: rsaAESWrap(t, pk, true, kek, []byte("not PKCS#8")), KeyID: importID})
	require.ErrorIs(t, err, session.ErrKeyMaterial)
	outsider := c.nodes[2] // holds no domain key
	err = serve(outsider, hsmcmd.ImportKeyMaterialRequest{WrappingToken: wrap, Alg: hsmcmd.AlgRSAAESKeyWrapSHA256, Material: good, KeyID: importID})
	require.ErrorIs(t, err, session.ErrTokenKeyNotHeld)
	err = serve(outsider, hsmcmd.ImportKeyTokenRequest{WrappingToken: wrap, Alg: hsmcmd.AlgRSAAESKeyWrapSHA256, Spec: hsmcmd.SpecHMAC256, Material: good, KeyID: importID})
	require.ErrorIs(t, err, session.ErrTokenKeyNotHeld)
}
