package node_test

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"hash"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/hsm/node"
	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/quorum"
	"github.com/trentkms/trent/tokenstore"
)

// Every key spec: made by one HSM, used by another; signatures verify and
// shared secrets match with Go's crypto outside the HSM.
func TestAsymmetricKeys(t *testing.T) { eachModule(t, testAsymmetricKeys) }

func testAsymmetricKeys(t *testing.T, kind tokenstore.Kind) {
	c := newCeremonyOn(t, kind)
	h1, h2 := c.nodes[0], c.nodes[1]
	require.NoError(t, h2.Import(c.genesis(h1, h2), c.now))
	msg := []byte("the message")

	for _, spec := range []uint8{hsmcmd.SpecRSA2048, hsmcmd.SpecECCP256, hsmcmd.SpecECCP384, hsmcmd.SpecECCP521} {
		tok, pubDER, err := h1.CreateKeyPair(spec, "key-"+hsmcmd.SpecNames[spec])
		require.NoError(t, err)
		pub, err := x509.ParsePKIXPublicKey(pubDER)
		require.NoError(t, err)
		switch pk := pub.(type) {
		case *rsa.PublicKey:
			require.Equal(t, 2048, pk.N.BitLen())
			for _, alg := range []uint8{hsmcmd.AlgRSAPSSSHA256, hsmcmd.AlgRSAPSSSHA384, hsmcmd.AlgRSAPSSSHA512,
				hsmcmd.AlgRSAPKCS1SHA256, hsmcmd.AlgRSAPKCS1SHA384, hsmcmd.AlgRSAPKCS1SHA512} {
				h := hsmcmd.AlgHash(alg)
				d := h.New()
				d.Write(msg)
				digest := d.Sum(nil)
				for _, raw := range []bool{true, false} {
					in := digest
					if raw {
						in = msg
					}
					sig, err := h2.Sign(tok, alg, !raw, in)
					require.NoError(t, err, hsmcmd.AlgNames[alg])
					if alg <= hsmcmd.AlgRSAPSSSHA512 {
						require.NoError(t, rsa.VerifyPSS(pk, h, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}))
					} else {
						require.NoError(t, rsa.VerifyPKCS1v15(pk, h, digest, sig))
					}
				}
			}
			for alg, h := range map[uint8]hash.Hash{hsmcmd.AlgOAEPSHA1: sha1.New(), hsmcmd.AlgOAEPSHA256: sha256.New()} {
				ct, err := rsa.EncryptOAEP(h, rand.Reader, pk, []byte("secret"), nil)
				require.NoError(t, err)
				pt, err := h2.AsymDecrypt(tok, alg, ct)
				require.NoError(t, err)
				require.Equal(t, "secret", string(pt))
				other := hsmcmd.AlgOAEPSHA1
				if alg == hsmcmd.AlgOAEPSHA1 {
					other = hsmcmd.AlgOAEPSHA256
				}
				_, err = h2.AsymDecrypt(tok, other, ct)
				require.Error(t, err, "the other OAEP hash")
			}
			_, err = h2.Sign(tok, hsmcmd.AlgECDSASHA256, false, msg)
			require.ErrorIs(t, err, node.ErrKeyUse)
		case *ecdsa.PublicKey:
			alg := map[uint8]uint8{hsmcmd.SpecECCP256: hsmcmd.AlgECDSASHA256, hsmcmd.SpecECCP384: hsmcmd.AlgECDSASHA384, hsmcmd.SpecECCP521: hsmcmd.AlgECDSASHA512}[spec]
			h := hsmcmd.AlgHash(alg)
			d := h.New()
			d.Write(msg)
			sig, err := h2.Sign(tok, alg, false, msg)
			require.NoError(t, err)
			require.True(t, ecdsa.VerifyASN1(pk, d.Sum(nil), sig))
			_, err = h2.Sign(tok, alg, true, msg)
			require.ErrorIs(t, err, node.ErrKeyUse, "a digest of the wrong length")
			_, err = h2.AsymDecrypt(tok, hsmcmd.AlgOAEPSHA256, make([]byte, 256))
			require.ErrorIs(t, err, node.ErrKeyUse)

			// ECDH: the HSM's shared secret is the peer's.
			peer, err := ecdh.P256().GenerateKey(rand.Reader)
			if spec == hsmcmd.SpecECCP384 {
				peer, err = ecdh.P384().GenerateKey(rand.Reader)
			} else if spec == hsmcmd.SpecECCP521 {
				peer, err = ecdh.P521().GenerateKey(rand.Reader)
			}
			require.NoError(t, err)
			peerDER, err := x509.MarshalPKIXPublicKey(peer.PublicKey())
			require.NoError(t, err)
			z, err := h2.DeriveSharedSecret(tok, peerDER)
			require.NoError(t, err)
			mine, err := pk.ECDH()
			require.NoError(t, err)
			want, err := peer.ECDH(mine)
			require.NoError(t, err)
			require.Equal(t, want, z)
			wrong, _ := ecdh.X25519().GenerateKey(rand.Reader)
			wrongDER, _ := x509.MarshalPKIXPublicKey(wrong.PublicKey())
			_, err = h2.DeriveSharedSecret(tok, wrongDER)
			require.ErrorIs(t, err, node.ErrKeyUse)
		}
	}

	for spec, f := range map[uint8]func() hash.Hash{hsmcmd.SpecHMAC224: sha256.New224, hsmcmd.SpecHMAC256: sha256.New,
		hsmcmd.SpecHMAC384: sha512.New384, hsmcmd.SpecHMAC512: sha512.New} {
		tok, pub, err := h1.CreateKeyPair(spec, "mac-key")
		require.NoError(t, err)
		require.Empty(t, pub)
		alg := hsmcmd.AlgCode("HMAC_SHA_" + hsmcmd.SpecNames[spec][5:])
		mac, err := h2.GenerateMac(tok, alg, msg)
		require.NoError(t, err)
		require.Len(t, mac, f().Size())
		ok, err := h1.VerifyMac(tok, alg, msg, mac)
		require.NoError(t, err)
		require.True(t, ok)
		mac[0] ^= 1
		ok, err = h1.VerifyMac(tok, alg, msg, mac)
		require.NoError(t, err)
		require.False(t, ok)
		_, err = h1.GenerateMac(tok, hsmcmd.AlgHMACSHA256+boolByte(spec == hsmcmd.SpecHMAC256), msg)
		require.ErrorIs(t, err, node.ErrKeyUse, "another HMAC algorithm")
	}

	// A domain key rotation re-seals key tokens; they keep working.
	tok, pubDER, err := h1.CreateKeyPair(hsmcmd.SpecECCP256, "rotated")
	require.NoError(t, err)
	ret, err := domain.ParamsRetention(1)
	require.NoError(t, err)
	apply := func(sc *quorum.SignedCommand) {
		next, err := h1.Export(sc, c.now)
		require.NoError(t, err)
		require.NoError(t, h1.Import(next, c.now))
		require.NoError(t, h2.Import(next, c.now))
	}
	apply(c.command(1, quorum.SetRetention, ret, c.alice, c.bob))
	apply(c.command(2, quorum.RotateDomainKeys, nil, c.host))
	out, errs, err := h2.ReencryptEKTs([][]byte{tok})
	require.NoError(t, err)
	require.NoError(t, errs[0])
	apply(c.command(3, quorum.RotateDomainKeys, nil, c.alice, c.bob))
	_, err = h1.Sign(tok, hsmcmd.AlgECDSASHA256, false, msg)
	require.ErrorIs(t, err, node.ErrHBK, "the token left under the dropped key")
	sig, err := h1.Sign(out[0], hsmcmd.AlgECDSASHA256, false, msg)
	require.NoError(t, err)
	pub, _ := x509.ParsePKIXPublicKey(pubDER)
	d := sha256.Sum256(msg)
	require.True(t, ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), d[:], sig))
}

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// ML-DSA keys: signatures verify with circl outside the HSM; the public
// key is a SubjectPublicKeyInfo with the parameter set's OID.
func TestMLDSAKeys(t *testing.T) {
	c := newCeremony(t)
	h1 := c.nodes[0]
	c.genesis(h1)
	msg := []byte("sign me with ML-DSA")
	for _, spec := range []uint8{hsmcmd.SpecMLDSA44, hsmcmd.SpecMLDSA65, hsmcmd.SpecMLDSA87} {
		tok, pubDER, err := h1.CreateKeyPair(spec, "mldsa")
		require.NoError(t, err)
		pub, err := hsmcmd.ParseMLDSAPublicKey(spec, pubDER)
		require.NoError(t, err)
		sig, err := h1.Sign(tok, hsmcmd.AlgMLDSA, false, msg)
		require.NoError(t, err)
		s := hsmcmd.MLDSAScheme(spec)
		require.True(t, s.Verify(pub, msg, sig, nil), hsmcmd.SpecNames[spec])
		require.False(t, s.Verify(pub, []byte("other"), sig, nil))
		again, err := h1.Sign(tok, hsmcmd.AlgMLDSA, false, msg)
		require.NoError(t, err)
		require.NotEqual(t, sig, again, "hedged signing")
		_, err = h1.Sign(tok, hsmcmd.AlgMLDSA, true, msg)
		require.ErrorIs(t, err, node.ErrKeyUse, "no DIGEST")
		_, err = h1.Sign(tok, hsmcmd.AlgECDSASHA256, false, msg)
		require.ErrorIs(t, err, node.ErrKeyUse)
		_, err = h1.GenerateMac(tok, hsmcmd.AlgHMACSHA256, msg)
		require.ErrorIs(t, err, node.ErrKeyUse)
		other := hsmcmd.SpecMLDSA65
		if spec == other {
			other = hsmcmd.SpecMLDSA87
		}
		_, err = hsmcmd.ParseMLDSAPublicKey(other, pubDER)
		require.Error(t, err, "another parameter set's OID")
	}
}
