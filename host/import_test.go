package host_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
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
