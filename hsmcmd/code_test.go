package hsmcmd_test

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cloudflare/circl/sign/mldsa/mldsa87"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/hbk"
	"github.com/trentkms/trent/hsmcmd"
)

// The command codes of docs/protocol.md, Commands, and which may be
// batched ("only types 6, 8–11, 14–18, 20 and 21") or wrapped in a
// Recipient ("6, 9, 10, 18 or 19").
func TestCodes(t *testing.T) {
	want := []string{1: "Ping", "Export", "Import", "ReencryptEKTs", "DomainStatus", "Random", "CreateHBK", "Encrypt",
		"GenerateDataKey", "Decrypt", "ReEncrypt", "Batch", "CreateKeyPair", "Sign", "AsymDecrypt", "GenerateMac",
		"VerifyMac", "DeriveSharedSecret", "GenerateDataKeyPair", "Verify", "Recipient", "ImportKeyMaterial", "ImportKeyToken",
		24: "ExportReplica", 25: "ImportReplica"}
	var names []string
	for i, n := range want {
		if n != "" {
			names = append(names, n)
			require.Equal(t, n, hsmcmd.Code(i).String())
		}
	}
	codes := hsmcmd.Codes()
	require.Len(t, codes, len(names))
	for i, c := range codes {
		require.Equal(t, names[i], c.String())
	}
	require.Equal(t, "Code(26)", hsmcmd.Code(26).String())
	require.Equal(t, "Code(0)", hsmcmd.Code(0).String())
	var batchable, inner []int
	for c := range hsmcmd.Code(100) {
		if c.Batchable() {
			batchable = append(batchable, int(c))
		}
		if c.RecipientInner() {
			inner = append(inner, int(c))
		}
	}
	require.Equal(t, []int{6, 8, 9, 10, 11, 14, 15, 16, 17, 18, 20, 21}, batchable)
	require.Equal(t, []int{6, 9, 10, 18, 19}, inner)
	for _, k := range kinds {
		if strings.HasSuffix(k.name, "Request") {
			req, ok := k.gen(rand.New(rand.NewPCG(5, 6))).(hsmcmd.Request)
			require.True(t, ok, k.name)
			require.Equal(t, strings.TrimSuffix(k.name, "Request"), req.Code().String())
		}
	}
}

// The spec and algorithm codes of docs/protocol.md.
func TestSpecAndAlgCodes(t *testing.T) {
	specs := "1 RSA_2048, 2 RSA_3072, 3 RSA_4096, 4 ECC_NIST_P256, 5 ECC_NIST_P384, 6 ECC_NIST_P521, 8 HMAC_224, 9 HMAC_256, " +
		"10 HMAC_384, 11 HMAC_512, 7 ECC_SECG_P256K1, 12 ML_DSA_44, 13 ML_DSA_65, 14 ML_DSA_87"
	for _, s := range strings.Split(specs, ", ") {
		n, name, _ := strings.Cut(s, " ")
		require.Equal(t, n, itoa(hsmcmd.SpecCode(name)), name)
	}
	require.Len(t, hsmcmd.SpecNames, 14)
	algs := []string{"RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512", "RSASSA_PKCS1_V1_5_SHA_256",
		"RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512", "ECDSA_SHA_256", "ECDSA_SHA_384", "ECDSA_SHA_512",
		"RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "HMAC_SHA_224", "HMAC_SHA_256", "HMAC_SHA_384", "HMAC_SHA_512", "ML_DSA_SHAKE_256"}
	for i, name := range algs {
		require.Equal(t, uint8(i+1), hsmcmd.AlgCode(name), name)
	}
	require.Len(t, hsmcmd.AlgNames, len(algs))
	require.Zero(t, hsmcmd.SpecCode("SYMMETRIC_DEFAULT"))
	require.Zero(t, hsmcmd.AlgCode("SM2PKE"))
	require.Equal(t, crypto.SHA384, hsmcmd.AlgHash(hsmcmd.AlgECDSASHA384))
	require.Equal(t, crypto.SHA1, hsmcmd.AlgHash(hsmcmd.AlgOAEPSHA1))
	require.Equal(t, crypto.SHA224, hsmcmd.AlgHash(hsmcmd.AlgHMACSHA224))
	require.Zero(t, hsmcmd.AlgHash(hsmcmd.AlgMLDSA))
}

func itoa(c uint8) string {
	if c >= 10 {
		return string(rune('0'+c/10)) + string(rune('0'+c%10))
	}
	return string(rune('0' + c))
}

type gcm struct{ cipher.AEAD }

func (g gcm) Seal(nonce, plaintext, aad []byte) ([]byte, error) {
	return g.AEAD.Seal(nil, nonce, plaintext, aad), nil
}

// The token maxima hold the longest tokens package hbk makes, and
// MaxPublicKey the longest public key (ML-DSA-87's).
func TestSizes(t *testing.T) {
	block, err := aes.NewCipher(make([]byte, 32))
	require.NoError(t, err)
	aead, err := cipher.NewGCM(block)
	require.NoError(t, err)
	dk := gcm{aead}
	id := strings.Repeat("k", hbk.MaxKeyID)
	tok, err := hbk.SealToken(dk, [hbk.DKIDSize]byte{}, id, [hbk.IDSize]byte{}, [hbk.IVSize]byte{}, make([]byte, hbk.Size))
	require.NoError(t, err)
	raw, err := tok.Marshal()
	require.NoError(t, err)
	require.Len(t, raw, hsmcmd.MaxHBKToken)
	kt, err := hbk.SealKeyToken(dk, [hbk.DKIDSize]byte{}, id, [hbk.IDSize]byte{}, hsmcmd.SpecRSA4096, [hbk.IVSize]byte{}, make([]byte, hbk.MaxKeyMaterial))
	require.NoError(t, err)
	raw, err = kt.Marshal()
	require.NoError(t, err)
	require.Len(t, raw, hsmcmd.MaxKeyToken)

	pub, _, err := mldsa87.GenerateKey(nil)
	require.NoError(t, err)
	der, err := hsmcmd.MarshalMLDSAPublicKey(hsmcmd.SpecMLDSA87, pub)
	require.NoError(t, err)
	require.LessOrEqual(t, len(der), hsmcmd.MaxPublicKey)
	back, err := hsmcmd.ParseMLDSAPublicKey(hsmcmd.SpecMLDSA87, der)
	require.NoError(t, err)
	require.True(t, pub.Equal(back))
	_, err = hsmcmd.ParseMLDSAPublicKey(hsmcmd.SpecMLDSA65, der)
	require.Error(t, err, "another parameter set")
	require.Equal(t, mldsa87.SignatureSize, hsmcmd.MaxSignature)
}

// secp256k1 encodings round-trip and refuse what is not theirs.
func TestSecp256k1Encodings(t *testing.T) {
	point := append([]byte{4}, make([]byte, 64)...)
	point[1] = 7
	der, err := hsmcmd.MarshalSecp256k1PublicKey(point)
	require.NoError(t, err)
	back, err := hsmcmd.ParseSecp256k1PublicKey(der)
	require.NoError(t, err)
	require.Equal(t, point, back)
	_, err = hsmcmd.ParseSecp256k1PublicKey(append(der, 0))
	require.Error(t, err)
	d := make([]byte, 32)
	d[31] = 1
	p8, err := hsmcmd.MarshalSecp256k1PKCS8(d, point)
	require.NoError(t, err)
	gd, gp, err := hsmcmd.ParseSecp256k1PKCS8(p8)
	require.NoError(t, err)
	require.Equal(t, d, gd)
	require.Equal(t, point, gp)
	_, _, err = hsmcmd.ParseSecp256k1PKCS8(append(p8, 0))
	require.Error(t, err)
	// A scalar whose leading octet is zero, as a token may return it
	// without: encoded at RFC 5915's fixed 32 octets.
	p8, err = hsmcmd.MarshalSecp256k1PKCS8(d[1:], point)
	require.NoError(t, err)
	gd, _, err = hsmcmd.ParseSecp256k1PKCS8(p8)
	require.NoError(t, err)
	require.Equal(t, d, gd)
	_, err = hsmcmd.MarshalSecp256k1PKCS8(append([]byte{1}, d...), point)
	require.Error(t, err)
}

func FuzzParsePublicKeys(f *testing.F) {
	f.Add([]byte{0x30, 0x00})
	point := append([]byte{4}, make([]byte, 64)...)
	der, _ := hsmcmd.MarshalSecp256k1PublicKey(point)
	f.Add(der)
	f.Fuzz(func(t *testing.T, in []byte) {
		if p, err := hsmcmd.ParseSecp256k1PublicKey(in); err == nil {
			if len(p) != 65 {
				t.Fatal("a secp256k1 point of the wrong length")
			}
			if out, err := hsmcmd.MarshalSecp256k1PublicKey(p); err != nil || string(out) != string(in) {
				t.Fatal("parse→marshal changed the public key")
			}
		}
		for _, spec := range []uint8{hsmcmd.SpecMLDSA44, hsmcmd.SpecMLDSA65, hsmcmd.SpecMLDSA87} {
			hsmcmd.ParseMLDSAPublicKey(spec, in)
		}
		hsmcmd.ParseSecp256k1PKCS8(in)
	})
}
