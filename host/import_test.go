package host_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/hbk"
)

// opensslWrap wraps material with the DER public key pub exactly as
// AWS's documentation shows (openssl pkeyutl, RSAES-OAEP with SHA-256
// and MGF1 SHA-256).
func opensslWrap(t *testing.T, pub, material []byte) []byte {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("no openssl")
	}
	dir := t.TempDir()
	wrapDER, in, out := filepath.Join(dir, "wrap.der"), filepath.Join(dir, "material.bin"), filepath.Join(dir, "wrapped.bin")
	require.NoError(t, os.WriteFile(wrapDER, pub, 0o600))
	require.NoError(t, os.WriteFile(in, material, 0o600))
	cmd := exec.Command("openssl", "pkeyutl", "-encrypt", "-in", in, "-out", out, "-inkey", wrapDER, "-keyform", "DER", "-pubin",
		"-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256", "-pkeyopt", "rsa_mgf1_md:sha256")
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", b)
	wrapped, err := os.ReadFile(out)
	require.NoError(t, err)
	return wrapped
}

type hmacKey []byte

func (k hmacKey) MAC(data []byte) ([]byte, error) {
	m := hmac.New(sha256.New, k)
	m.Write(data)
	return m.Sum(nil), nil
}

// Key import end to end on SoftHSM: 32 random bytes wrapped by openssl
// with the wrapping key an HSM made, imported (unwrapped in the other
// HSM), used; re-imported after deletion (the same material only);
// the key store never holds the material in the clear.
func TestImportKeyMaterialWithOpenSSL(t *testing.T) {
	k := newKMSCluster(t, 1, 2)
	ctx := context.Background()
	cl := k.alice
	md := k.createKey(t, cl, &kms.CreateKeyInput{Origin: types.OriginTypeExternal})
	id := md.KeyId
	assert.Equal(t, types.OriginTypeExternal, md.Origin)
	assert.Equal(t, types.KeyStatePendingImport, md.KeyState)
	_, err := cl.Encrypt(ctx, &kms.EncryptInput{KeyId: id, Plaintext: []byte("x")})
	assert.Equal(t, "KMSInvalidStateException", apiCode(t, err))

	material := make([]byte, 32)
	rand.Read(material)
	imp := func(m []byte) error {
		p, err := cl.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: id,
			WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa3072})
		require.NoError(t, err)
		require.NotNil(t, p.ParametersValidTo)
		_, err = cl.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: id, ImportToken: p.ImportToken,
			EncryptedKeyMaterial: opensslWrap(t, p.PublicKey, m), ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire})
		return err
	}
	require.NoError(t, imp(material))
	d, err := cl.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: id})
	require.NoError(t, err)
	assert.Equal(t, types.KeyStateEnabled, d.KeyMetadata.KeyState)
	assert.Equal(t, types.ExpirationModelTypeKeyMaterialDoesNotExpire, d.KeyMetadata.ExpirationModel)

	enc, err := cl.Encrypt(ctx, &kms.EncryptInput{KeyId: id, Plaintext: []byte("hello"),
		EncryptionContext: map[string]string{"a": "b"}})
	require.NoError(t, err)
	dec, err := cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: map[string]string{"a": "b"}})
	require.NoError(t, err)
	assert.Equal(t, "hello", string(dec.Plaintext))

	// The material is the key's HBK: a Trent ciphertext is not the
	// material's own AES-GCM (nothing opens it with the material as the
	// key), but whoever holds the material (the importer) can derive
	// the one-time key as the HSM does (hbk) — Trent's ciphertext
	// format is documented, so an imported key's material is exactly as
	// powerful as its HBK. No answer and no key-store record holds it.
	bl, err := hbk.ParseBlob(enc.CiphertextBlob)
	require.NoError(t, err)
	assert.False(t, bytes.Contains(enc.CiphertextBlob, material))
	k.hosts[0].FSM().Records(func(rid string, rec []byte) bool {
		assert.False(t, bytes.Contains(rec, material), "record %s holds the material", rid)
		return true
	})
	_, err = bl.Open(hmacKey(make([]byte, 32)), nil)
	assert.Error(t, err, "another key does not open it")
	ec, err := hbk.EncodeContext(map[string]string{"a": "b"})
	require.NoError(t, err)
	pt, err := bl.Open(hmacKey(material), ec)
	require.NoError(t, err, "the importer's copy of the material opens Trent's ciphertexts offline")
	assert.Equal(t, "hello", string(pt))

	// Re-import: the same material only.
	require.NoError(t, imp(material))
	other := make([]byte, 32)
	rand.Read(other)
	assert.Equal(t, "IncorrectKeyMaterialException", apiCode(t, imp(other)))
	_, err = cl.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: id})
	require.NoError(t, err)
	_, err = cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: map[string]string{"a": "b"}})
	assert.Equal(t, "KMSInvalidStateException", apiCode(t, err))
	assert.Equal(t, "IncorrectKeyMaterialException", apiCode(t, imp(other)))
	require.NoError(t, imp(material))
	dec, err = cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: map[string]string{"a": "b"},
		KeyId: aws.String(*id)})
	require.NoError(t, err)
	assert.Equal(t, "hello", string(dec.Plaintext))
}

// openssl runs openssl with args in dir and fails the test on an error.
func openssl(t *testing.T, dir string, args ...string) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("no openssl")
	}
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "openssl %v: %s", args, b)
}

// opensslWrapAlg wraps the file material in dir with the DER wrapping
// public key pub and the wrapping algorithm alg, with the openssl
// commands of AWS's documentation ("Encrypt the key material"): for
// RSAES_OAEP_SHA_* pkeyutl on the material itself; for
// RSA_AES_KEY_WRAP_SHA_* a new 32-byte AES key from openssl rand wraps
// the material (enc -id-aes256-wrap-pad, IV A65959A6), pkeyutl wraps the
// AES key, and the two are concatenated, the wrapped AES key first.
func opensslWrapAlg(t *testing.T, dir string, pub []byte, alg types.AlgorithmSpec, material string) []byte {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "WrappingPublicKey.der"), pub, 0o600))
	md := "sha256"
	if strings.HasSuffix(string(alg), "SHA_1") {
		md = "sha1"
	}
	pkeyutl := func(in, out string) {
		openssl(t, dir, "pkeyutl", "-encrypt", "-in", in, "-out", out, "-inkey", "WrappingPublicKey.der", "-keyform", "DER", "-pubin",
			"-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:"+md, "-pkeyopt", "rsa_mgf1_md:"+md)
	}
	if !strings.HasPrefix(string(alg), "RSA_AES_KEY_WRAP") {
		pkeyutl(material, "EncryptedKeyMaterial.bin")
	} else {
		openssl(t, dir, "rand", "-out", "aes-key.bin", "32")
		kek, err := os.ReadFile(filepath.Join(dir, "aes-key.bin"))
		require.NoError(t, err)
		openssl(t, dir, "enc", "-id-aes256-wrap-pad", "-K", hex.EncodeToString(kek), "-iv", "A65959A6",
			"-in", material, "-out", "key-material-wrapped.bin")
		pkeyutl("aes-key.bin", "aes-key-wrapped.bin")
		a, err := os.ReadFile(filepath.Join(dir, "aes-key-wrapped.bin"))
		require.NoError(t, err)
		b, err := os.ReadFile(filepath.Join(dir, "key-material-wrapped.bin"))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "EncryptedKeyMaterial.bin"), append(a, b...), 0o600))
	}
	out, err := os.ReadFile(filepath.Join(dir, "EncryptedKeyMaterial.bin"))
	require.NoError(t, err)
	return out
}

// Key material made and wrapped by openssl as AWS's documentation shows,
// with each wrapping algorithm, imported end to end on SoftHSM: RSA,
// NIST ECC and secp256k1 private keys (PKCS#8 DER) sign, and their
// public key is openssl's; an HMAC key MACs as the importer computes; a
// symmetric key (RSAES_OAEP_SHA_1 here; SHA_256 in
// TestImportKeyMaterialWithOpenSSL) encrypts; the same key re-imports
// with another algorithm, another key does not.
func TestImportEveryWrappingAlgorithmWithOpenSSL(t *testing.T) {
	k := newKMSCluster(t, 1, 2)
	ctx := context.Background()
	cl := k.alice
	dir := t.TempDir()
	openssl(t, dir, "version")

	imp := func(id *string, alg types.AlgorithmSpec, wrapSpec types.WrappingKeySpec, material string) error {
		p, err := cl.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: id, WrappingAlgorithm: alg, WrappingKeySpec: wrapSpec})
		require.NoError(t, err)
		_, err = cl.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: id, ImportToken: p.ImportToken,
			EncryptedKeyMaterial: opensslWrapAlg(t, dir, p.PublicKey, alg, material), ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire})
		return err
	}
	// genpkey writes name.pem, its PKCS#8 DER private key name.bin (the
	// key material) and its DER public key name.pub.
	genpkey := func(name string, opts ...string) []byte {
		openssl(t, dir, append([]string{"genpkey", "-out", name + ".pem"}, opts...)...)
		openssl(t, dir, "pkcs8", "-topk8", "-outform", "DER", "-nocrypt", "-in", name+".pem", "-out", name+".bin")
		openssl(t, dir, "pkey", "-in", name+".pem", "-pubout", "-outform", "DER", "-out", name+".pub")
		pub, err := os.ReadFile(filepath.Join(dir, name+".pub"))
		require.NoError(t, err)
		return pub
	}

	for _, c := range []struct {
		spec  types.KeySpec
		gen   []string
		alg   types.AlgorithmSpec
		again types.AlgorithmSpec
		sign  types.SigningAlgorithmSpec
	}{
		{types.KeySpecRsa2048, []string{"-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"}, types.AlgorithmSpecRsaAesKeyWrapSha256, types.AlgorithmSpecRsaAesKeyWrapSha1, types.SigningAlgorithmSpecRsassaPssSha256},
		{types.KeySpecEccNistP256, []string{"-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"}, types.AlgorithmSpecRsaesOaepSha256, types.AlgorithmSpecRsaAesKeyWrapSha1, types.SigningAlgorithmSpecEcdsaSha256},
		{types.KeySpecEccNistP521, []string{"-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"}, types.AlgorithmSpecRsaAesKeyWrapSha1, types.AlgorithmSpecRsaesOaepSha1, types.SigningAlgorithmSpecEcdsaSha512},
		{types.KeySpecEccSecgP256k1, []string{"-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:secp256k1"}, types.AlgorithmSpecRsaAesKeyWrapSha256, types.AlgorithmSpecRsaesOaepSha256, types.SigningAlgorithmSpecEcdsaSha256},
	} {
		name := string(c.spec)
		pub := genpkey(name, c.gen...)
		md := k.createKey(t, cl, &kms.CreateKeyInput{Origin: types.OriginTypeExternal, KeySpec: c.spec, KeyUsage: types.KeyUsageTypeSignVerify})
		assert.Equal(t, types.KeyStatePendingImport, md.KeyState)
		_, err := cl.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: md.KeyId})
		assert.Equal(t, "KMSInvalidStateException", apiCode(t, err), name)
		require.NoError(t, imp(md.KeyId, c.alg, types.WrappingKeySpecRsa3072, name+".bin"), name)
		gp, err := cl.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: md.KeyId})
		require.NoError(t, err)
		assert.Equal(t, pub, gp.PublicKey, "%s: the public key is openssl's", name)
		s, err := cl.Sign(ctx, &kms.SignInput{KeyId: md.KeyId, Message: []byte("hello"), SigningAlgorithm: c.sign})
		require.NoError(t, err, name)
		// openssl verifies the signature with its own public key.
		require.NoError(t, os.WriteFile(filepath.Join(dir, "msg"), []byte("hello"), 0o600))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "sig"), s.Signature, 0o600))
		dgst := "-sha256"
		if c.sign == types.SigningAlgorithmSpecEcdsaSha512 {
			dgst = "-sha512"
		}
		args := []string{"dgst", dgst, "-verify", name + ".pub", "-keyform", "DER", "-signature", "sig"}
		if c.sign == types.SigningAlgorithmSpecRsassaPssSha256 {
			args = append(args, "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest")
		}
		openssl(t, dir, append(args, "msg")...)
		require.NoError(t, imp(md.KeyId, c.again, types.WrappingKeySpecRsa4096, name+".bin"), "%s: the same key again", name)
		genpkey("other", c.gen...)
		assert.Equal(t, "IncorrectKeyMaterialException", apiCode(t, imp(md.KeyId, c.alg, types.WrappingKeySpecRsa3072, "other.bin")), name)
	}

	// HMAC_384: 48 random bytes from openssl rand.
	openssl(t, dir, "rand", "-out", "HMAC_384.bin", "48")
	key, err := os.ReadFile(filepath.Join(dir, "HMAC_384.bin"))
	require.NoError(t, err)
	md := k.createKey(t, cl, &kms.CreateKeyInput{Origin: types.OriginTypeExternal, KeySpec: types.KeySpecHmac384, KeyUsage: types.KeyUsageTypeGenerateVerifyMac})
	_, err = cl.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: md.KeyId,
		WrappingAlgorithm: types.AlgorithmSpecRsaAesKeyWrapSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048})
	assert.Equal(t, "UnsupportedOperationException", apiCode(t, err), "RSA_AES_KEY_WRAP wraps RSA and ECC key material")
	require.NoError(t, imp(md.KeyId, types.AlgorithmSpecRsaesOaepSha1, types.WrappingKeySpecRsa2048, "HMAC_384.bin"))
	mac, err := cl.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: md.KeyId, Message: []byte("hello"), MacAlgorithm: types.MacAlgorithmSpecHmacSha384})
	require.NoError(t, err)
	want := hmac.New(sha512.New384, key)
	want.Write([]byte("hello"))
	assert.Equal(t, want.Sum(nil), mac.Mac)

	// SYMMETRIC_DEFAULT with RSAES_OAEP_SHA_1; 16 bytes are no such material.
	openssl(t, dir, "rand", "-out", "PlaintextKeyMaterial.bin", "32")
	openssl(t, dir, "rand", "-out", "short.bin", "16")
	md = k.createKey(t, cl, &kms.CreateKeyInput{Origin: types.OriginTypeExternal})
	assert.Equal(t, "IncorrectKeyMaterialException", apiCode(t, imp(md.KeyId, types.AlgorithmSpecRsaesOaepSha1, types.WrappingKeySpecRsa2048, "short.bin")))
	require.NoError(t, imp(md.KeyId, types.AlgorithmSpecRsaesOaepSha1, types.WrappingKeySpecRsa2048, "PlaintextKeyMaterial.bin"))
	enc, err := cl.Encrypt(ctx, &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("x")})
	require.NoError(t, err)
	_, err = cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	require.NoError(t, err)
}

// An import token stays usable across domain key rotations that drop
// the domain key its wrapping key token was sealed under: the
// re-encryption job re-seals wrapping key tokens like the key's own, an
// earlier GetParametersForImport's too.
func TestImportTokenSurvivesDomainRotation(t *testing.T) {
	k := newKMSCluster(t, 1, 1)
	ctx := context.Background()
	h := k.hosts[0]
	md := k.createKey(t, k.alice, &kms.CreateKeyInput{Origin: types.OriginTypeExternal})
	p, err := k.alice.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: md.KeyId,
		WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048})
	require.NoError(t, err)
	_, err = k.alice.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: md.KeyId,
		WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048})
	require.NoError(t, err)
	outdated, total := h.EKTProgress()
	require.Equal(t, 2, total, "both wrapping key tokens are sealed items")
	require.Zero(t, outdated)
	rotatePastRetention(t, h, 2)
	material := make([]byte, 32)
	rand.Read(material)
	_, err = k.alice.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: md.KeyId, ImportToken: p.ImportToken,
		EncryptedKeyMaterial: opensslWrap(t, p.PublicKey, material), ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire})
	require.NoError(t, err)
}
