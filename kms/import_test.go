package kms

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"hash"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/internal/kwp"
	"github.com/trentkms/trent/keystore"
	"github.com/trentkms/trent/kms/kmsapi"
)

// params calls GetParametersForImport and returns the import token and
// the wrapping public key.
func (f *fixture) params(t *testing.T, id, alg string) ([]byte, *rsa.PublicKey) {
	t.Helper()
	out := f.must(t, alice, "GetParametersForImport", map[string]any{"KeyId": id, "WrappingAlgorithm": alg, "WrappingKeySpec": "RSA_2048"})
	tok, err := base64.StdEncoding.DecodeString(out["ImportToken"].(string))
	require.NoError(t, err)
	der, err := base64.StdEncoding.DecodeString(out["PublicKey"].(string))
	require.NoError(t, err)
	pub, err := x509.ParsePKIXPublicKey(der)
	require.NoError(t, err)
	assert.Equal(t, float64(f.now.Add(24*time.Hour).Unix()), out["ParametersValidTo"])
	assert.Equal(t, "arn:aws:kms:eu-west-1:"+account+":key/"+id, out["KeyId"])
	return tok, pub.(*rsa.PublicKey)
}

// wrap wraps material for import with alg as AWS documents it:
// RSAES-OAEP of the material, or of an AES-256 key followed by the
// material wrapped under it (RFC 5649).
func wrap(t *testing.T, pub *rsa.PublicKey, alg string, material []byte) []byte {
	t.Helper()
	h := map[string]func() hash.Hash{"RSAES_OAEP_SHA_1": sha1.New, "RSAES_OAEP_SHA_256": sha256.New,
		"RSA_AES_KEY_WRAP_SHA_1": sha1.New, "RSA_AES_KEY_WRAP_SHA_256": sha256.New}[alg]
	if !strings.HasPrefix(alg, "RSA_AES") {
		ct, err := rsa.EncryptOAEP(h(), rand.Reader, pub, material, nil)
		require.NoError(t, err)
		return ct
	}
	kek := make([]byte, 32)
	rand.Read(kek)
	ct, err := rsa.EncryptOAEP(h(), rand.Reader, pub, kek, nil)
	require.NoError(t, err)
	w, err := kwp.Wrap(kek, material)
	require.NoError(t, err)
	return append(ct, w...)
}

func (f *fixture) state(t *testing.T, id string) map[string]any {
	t.Helper()
	return f.must(t, alice, "DescribeKey", map[string]any{"KeyId": id})["KeyMetadata"].(map[string]any)
}

// A key of Origin EXTERNAL has no material and is PendingImport until
// ImportKeyMaterial; the material, unwrapped by the HSM, encrypts and
// decrypts; a re-import takes the same material only, and opens the
// key's ciphertexts again after DeleteImportedKeyMaterial.
func TestImportKeyMaterial(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(t, map[string]any{"Origin": "EXTERNAL"})
	m := f.state(t, id)
	assert.Equal(t, "EXTERNAL", m["Origin"])
	assert.Equal(t, "PendingImport", m["KeyState"])
	assert.Equal(t, false, m["Enabled"])
	assert.Nil(t, m["ExpirationModel"])
	assert.Empty(t, f.hsm.cmds, "no material is made")
	_, err := f.call(alice, "Encrypt", map[string]any{"KeyId": id, "Plaintext": []byte("x")})
	assert.Equal(t, "KMSInvalidStateException", exception(err))
	_, err = f.call(alice, "GenerateDataKey", map[string]any{"KeyId": id, "NumberOfBytes": 32})
	assert.Equal(t, "KMSInvalidStateException", exception(err))
	_, err = f.call(alice, "EnableKey", map[string]any{"KeyId": id})
	assert.Equal(t, "KMSInvalidStateException", exception(err))
	_, err = f.call(alice, "EnableKeyRotation", map[string]any{"KeyId": id})
	assert.Equal(t, "UnsupportedOperationException", exception(err))

	material := make([]byte, 32)
	rand.Read(material)
	tok, pub := f.params(t, id, "RSAES_OAEP_SHA_256")
	f.must(t, alice, "ImportKeyMaterial", map[string]any{"KeyId": id, "ImportToken": tok,
		"EncryptedKeyMaterial": wrap(t, pub, "RSAES_OAEP_SHA_256", material), "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"})
	m = f.state(t, id)
	assert.Equal(t, "Enabled", m["KeyState"])
	assert.Equal(t, "KEY_MATERIAL_DOES_NOT_EXPIRE", m["ExpirationModel"])
	ct := f.must(t, alice, "Encrypt", map[string]any{"KeyId": id, "Plaintext": []byte("hello")})["CiphertextBlob"]
	pt := f.must(t, alice, "Decrypt", map[string]any{"CiphertextBlob": ct})["Plaintext"]
	assert.Equal(t, base64.StdEncoding.EncodeToString([]byte("hello")), pt)

	// Another material, with the same token (still valid): refused.
	other := make([]byte, 32)
	rand.Read(other)
	_, err = f.call(alice, "ImportKeyMaterial", map[string]any{"KeyId": id, "ImportToken": tok,
		"EncryptedKeyMaterial": wrap(t, pub, "RSAES_OAEP_SHA_256", other), "ExpirationModel": doesNotExpire})
	assert.Equal(t, "IncorrectKeyMaterialException", exception(err))

	// Deleted: PendingImport, ciphertexts refused until the same
	// material (wrapped with SHA-1 this time) is back.
	f.must(t, alice, "DeleteImportedKeyMaterial", map[string]any{"KeyId": id})
	m = f.state(t, id)
	assert.Equal(t, "PendingImport", m["KeyState"])
	assert.Nil(t, m["ExpirationModel"])
	_, err = f.call(alice, "Decrypt", map[string]any{"CiphertextBlob": ct})
	assert.Equal(t, "KMSInvalidStateException", exception(err))
	tok1, pub1 := f.params(t, id, "RSAES_OAEP_SHA_1")
	_, err = f.call(alice, "ImportKeyMaterial", map[string]any{"KeyId": id, "ImportToken": tok,
		"EncryptedKeyMaterial": wrap(t, pub1, "RSAES_OAEP_SHA_1", material), "ExpirationModel": doesNotExpire})
	assert.Equal(t, "InvalidCiphertextException", exception(err), "the earlier token unwraps with its own wrapping key, not the later one's")
	_, err = f.call(alice, "ImportKeyMaterial", map[string]any{"KeyId": id, "ImportToken": tok1,
		"EncryptedKeyMaterial": wrap(t, pub1, "RSAES_OAEP_SHA_1", other), "ExpirationModel": doesNotExpire})
	assert.Equal(t, "IncorrectKeyMaterialException", exception(err))
	f.must(t, alice, "ImportKeyMaterial", map[string]any{"KeyId": id, "ImportToken": tok1,
		"EncryptedKeyMaterial": wrap(t, pub1, "RSAES_OAEP_SHA_1", material), "ExpirationModel": doesNotExpire})
	pt = f.must(t, alice, "Decrypt", map[string]any{"CiphertextBlob": ct})["Plaintext"]
	assert.Equal(t, base64.StdEncoding.EncodeToString([]byte("hello")), pt)
	assert.Equal(t, "Enabled", f.state(t, id)["KeyState"])
}

// The refusals of the API reference.
func TestImportRefusals(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(t, map[string]any{"Origin": "EXTERNAL", "Policy": aliceOnly()})
	kmsKey := f.createKey(t, nil)
	material := make([]byte, 32)
	rand.Read(material)

	for _, c := range []struct {
		req  map[string]any
		want string
	}{
		{map[string]any{"KeyId": kmsKey, "WrappingAlgorithm": "RSAES_OAEP_SHA_256", "WrappingKeySpec": "RSA_2048"}, "UnsupportedOperationException"},
		{map[string]any{"KeyId": id, "WrappingAlgorithm": "RSAES_OAEP_SHA_512", "WrappingKeySpec": "RSA_2048"}, "ValidationException"},
		{map[string]any{"KeyId": id, "WrappingAlgorithm": "RSAES_OAEP_SHA_256", "WrappingKeySpec": "RSA_1024"}, "ValidationException"},
		{map[string]any{"KeyId": id, "WrappingAlgorithm": "RSA_AES_KEY_WRAP_SHA_256", "WrappingKeySpec": "RSA_4096"}, "UnsupportedOperationException"},
		{map[string]any{"KeyId": id, "WrappingAlgorithm": "RSAES_OAEP_SHA_256", "WrappingKeySpec": "SM2"}, "UnsupportedOperationException"},
		{map[string]any{"KeyId": "alias/x", "WrappingAlgorithm": "RSAES_OAEP_SHA_256", "WrappingKeySpec": "RSA_2048"}, "NotFoundException"},
	} {
		_, err := f.call(alice, "GetParametersForImport", c.req)
		assert.Equal(t, c.want, exception(err), "%v", c.req)
	}
	_, err := f.call(alice, "CreateKey", map[string]any{"Origin": "EXTERNAL", "KeySpec": "ML_DSA_44", "KeyUsage": "SIGN_VERIFY"})
	assert.Equal(t, "UnsupportedOperationException", exception(err))
	_, err = f.call(alice, "CreateKey", map[string]any{"Origin": "SOMEWHERE"})
	assert.Equal(t, "ValidationException", exception(err))
	_, err = f.call(bob, "GetParametersForImport", map[string]any{"KeyId": id, "WrappingAlgorithm": "RSAES_OAEP_SHA_256", "WrappingKeySpec": "RSA_2048"})
	assert.Equal(t, "AccessDeniedException", exception(err))

	tok, pub := f.params(t, id, "RSAES_OAEP_SHA_256")
	imp := func(req map[string]any) string {
		full := map[string]any{"KeyId": id, "ImportToken": tok, "EncryptedKeyMaterial": wrap(t, pub, "RSAES_OAEP_SHA_256", material), "ExpirationModel": doesNotExpire}
		for k, v := range req {
			if v == nil {
				delete(full, k)
			} else {
				full[k] = v
			}
		}
		_, err := f.call(alice, "ImportKeyMaterial", full)
		return exception(err)
	}
	bad := append([]byte(nil), tok...)
	bad[len(bad)-1] ^= 1
	assert.Equal(t, "InvalidImportTokenException", imp(map[string]any{"ImportToken": bad}))
	assert.Equal(t, "InvalidImportTokenException", imp(map[string]any{"ImportToken": []byte("short")}))
	assert.Equal(t, "UnsupportedOperationException", imp(map[string]any{"KeyId": kmsKey}))
	other := f.createKey(t, map[string]any{"Origin": "EXTERNAL"})
	assert.Equal(t, "InvalidImportTokenException", imp(map[string]any{"KeyId": other}), "another key's token")
	assert.Equal(t, "InvalidCiphertextException", imp(map[string]any{"EncryptedKeyMaterial": wrap(t, pub, "RSAES_OAEP_SHA_1", material)}), "the other OAEP hash")
	assert.Equal(t, "IncorrectKeyMaterialException", imp(map[string]any{"EncryptedKeyMaterial": wrap(t, pub, "RSAES_OAEP_SHA_256", material[:16])}), "16 bytes unwrap, but are no SYMMETRIC_DEFAULT material")
	assert.Equal(t, "InvalidCiphertextException", imp(map[string]any{"EncryptedKeyMaterial": make([]byte, 600)}))
	assert.Equal(t, "ValidationException", imp(map[string]any{"ExpirationModel": "KEY_MATERIAL_EXPIRES"}), "no ValidTo")
	assert.Equal(t, "ValidationException", imp(map[string]any{"ExpirationModel": nil}), "KEY_MATERIAL_EXPIRES by default, no ValidTo")
	assert.Equal(t, "ValidationException", imp(map[string]any{"ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE", "ValidTo": f.now.Unix() + 60}))
	assert.Equal(t, "ValidationException", imp(map[string]any{"ExpirationModel": nil, "ValidTo": f.now.Unix() - 1}))
	assert.Equal(t, "ValidationException", imp(map[string]any{"ExpirationModel": nil, "ValidTo": f.now.Add(366 * day).Unix()}))
	assert.Equal(t, "ValidationException", imp(map[string]any{"ImportToken": nil}))
	assert.Equal(t, "PendingImport", f.state(t, id)["KeyState"], "nothing was imported")

	f.now = f.now.Add(24 * time.Hour)
	assert.Equal(t, "ExpiredImportTokenException", imp(nil))
	f.now = f.now.Add(-time.Second)
	assert.Equal(t, "", imp(nil))

	f.must(t, alice, "ScheduleKeyDeletion", map[string]any{"KeyId": id, "PendingWindowInDays": 7})
	assert.Equal(t, "KMSInvalidStateException", imp(nil))
	_, err = f.call(alice, "DeleteImportedKeyMaterial", map[string]any{"KeyId": id})
	assert.Equal(t, "KMSInvalidStateException", exception(err))
	_, err = f.call(alice, "DeleteImportedKeyMaterial", map[string]any{"KeyId": kmsKey})
	assert.Equal(t, "UnsupportedOperationException", exception(err))
	f.must(t, alice, "CancelKeyDeletion", map[string]any{"KeyId": id})
	assert.Equal(t, "Disabled", f.state(t, id)["KeyState"], "it has material")
	f.must(t, alice, "ScheduleKeyDeletion", map[string]any{"KeyId": other, "PendingWindowInDays": 7})
	f.must(t, alice, "CancelKeyDeletion", map[string]any{"KeyId": other})
	assert.Equal(t, "PendingImport", f.state(t, other)["KeyState"], "it has none")
}

// Material with a ValidTo is refused once that passes, and key
// maintenance makes the key PendingImport; the same material brings it
// back.
func TestImportedMaterialExpires(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(t, map[string]any{"Origin": "EXTERNAL"})
	material := make([]byte, 32)
	rand.Read(material)
	tok, pub := f.params(t, id, "RSAES_OAEP_SHA_256")
	validTo := f.now.Add(time.Hour).Unix()
	f.must(t, alice, "ImportKeyMaterial", map[string]any{"KeyId": id, "ImportToken": tok,
		"EncryptedKeyMaterial": wrap(t, pub, "RSAES_OAEP_SHA_256", material), "ExpirationModel": "KEY_MATERIAL_EXPIRES", "ValidTo": validTo})
	m := f.state(t, id)
	assert.Equal(t, "KEY_MATERIAL_EXPIRES", m["ExpirationModel"])
	assert.Equal(t, float64(validTo), m["ValidTo"])
	ct := f.must(t, alice, "Encrypt", map[string]any{"KeyId": id, "Plaintext": []byte("hello")})["CiphertextBlob"]

	f.now = f.now.Add(time.Hour)
	m = f.state(t, id)
	assert.Equal(t, "PendingImport", m["KeyState"], "expired before key maintenance")
	assert.Nil(t, m["ValidTo"])
	_, err := f.call(alice, "Decrypt", map[string]any{"CiphertextBlob": ct})
	assert.Equal(t, "KMSInvalidStateException", exception(err), "expired on use")
	_, err = f.call(alice, "Encrypt", map[string]any{"KeyId": id, "Plaintext": []byte("x")})
	assert.Equal(t, "KMSInvalidStateException", exception(err))
	_, _, err = f.s.KeyMaintenance(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "PendingImport", f.state(t, id)["KeyState"])
	raw, _ := f.store.Get(keystore.KeyRecordID(id))
	rec, err := keystore.ParseRecord(raw)
	require.NoError(t, err)
	assert.Empty(t, rec.Tokens, "the material is gone from the key store")

	tok, pub = f.params(t, id, "RSAES_OAEP_SHA_256")
	f.must(t, alice, "ImportKeyMaterial", map[string]any{"KeyId": id, "ImportToken": tok,
		"EncryptedKeyMaterial": wrap(t, pub, "RSAES_OAEP_SHA_256", material), "ValidTo": f.now.Add(time.Hour).Unix()})
	f.must(t, alice, "Decrypt", map[string]any{"CiphertextBlob": ct})
	assert.Equal(t, []hsmcmd.Code{hsmcmd.CreateKeyPair, hsmcmd.ImportKeyMaterial, hsmcmd.Encrypt, hsmcmd.CreateKeyPair,
		hsmcmd.ImportKeyMaterial, hsmcmd.Decrypt}, f.hsm.cmds)
}

// Which wrapping algorithm wraps which key material (the API reference,
// GetParametersForImport's WrappingAlgorithm).
func TestImportWrappingRules(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct {
		spec, usage, alg, wrapSpec string
		want                       string
	}{
		{"SYMMETRIC_DEFAULT", "", "RSAES_OAEP_SHA_1", "RSA_2048", ""},
		{"SYMMETRIC_DEFAULT", "", "RSA_AES_KEY_WRAP_SHA_256", "RSA_2048", "UnsupportedOperationException"},
		{"HMAC_256", "GENERATE_VERIFY_MAC", "RSAES_OAEP_SHA_256", "RSA_2048", ""},
		{"HMAC_512", "GENERATE_VERIFY_MAC", "RSA_AES_KEY_WRAP_SHA_1", "RSA_2048", "UnsupportedOperationException"},
		{"RSA_2048", "SIGN_VERIFY", "RSA_AES_KEY_WRAP_SHA_256", "RSA_2048", ""},
		{"RSA_3072", "ENCRYPT_DECRYPT", "RSAES_OAEP_SHA_256", "RSA_4096", "UnsupportedOperationException"},
		{"ECC_NIST_P256", "SIGN_VERIFY", "RSAES_OAEP_SHA_256", "RSA_2048", ""},
		{"ECC_NIST_P256", "KEY_AGREEMENT", "RSA_AES_KEY_WRAP_SHA_1", "RSA_2048", ""},
		{"ECC_NIST_P521", "SIGN_VERIFY", "RSAES_OAEP_SHA_256", "RSA_2048", "UnsupportedOperationException"},
		{"ECC_NIST_P521", "SIGN_VERIFY", "RSAES_OAEP_SHA_256", "RSA_3072", ""},
		{"ECC_NIST_P521", "SIGN_VERIFY", "RSA_AES_KEY_WRAP_SHA_256", "RSA_2048", ""},
		{"ECC_SECG_P256K1", "SIGN_VERIFY", "RSA_AES_KEY_WRAP_SHA_256", "RSA_2048", ""},
	} {
		req := map[string]any{"Origin": "EXTERNAL", "KeySpec": c.spec}
		if c.usage != "" {
			req["KeyUsage"] = c.usage
		}
		id := f.createKey(t, req)
		_, err := f.call(alice, "GetParametersForImport", map[string]any{"KeyId": id, "WrappingAlgorithm": c.alg, "WrappingKeySpec": c.wrapSpec})
		assert.Equal(t, c.want, exception(err), "%+v", c)
	}
}

// Asymmetric and HMAC key material: an ECC_NIST_P256 private key
// (PKCS#8) wrapped with RSA_AES_KEY_WRAP_SHA_256 signs and its public key
// is the imported one's; an HMAC_256 key MACs as the importer's copy
// does; material of another spec is IncorrectKeyMaterialException; a
// re-import takes the same key in another encoding.
func TestImportAsymmetricAndHMAC(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(t, map[string]any{"Origin": "EXTERNAL", "KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"})
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	require.NoError(t, err)
	imp := func(id, alg string, material []byte) error {
		tok, pub := f.params(t, id, alg)
		_, err := f.call(alice, "ImportKeyMaterial", map[string]any{"KeyId": id, "ImportToken": tok,
			"EncryptedKeyMaterial": wrap(t, pub, alg, material), "ExpirationModel": doesNotExpire})
		return err
	}
	other, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	otherDER, err := x509.MarshalPKCS8PrivateKey(other)
	require.NoError(t, err)
	assert.Equal(t, "IncorrectKeyMaterialException", exception(imp(id, "RSA_AES_KEY_WRAP_SHA_256", otherDER)), "a P-384 key")
	assert.Equal(t, "IncorrectKeyMaterialException", exception(imp(id, "RSA_AES_KEY_WRAP_SHA_256", []byte("not a key"))))
	require.NoError(t, imp(id, "RSA_AES_KEY_WRAP_SHA_256", der))
	m := f.state(t, id)
	assert.Equal(t, "Enabled", m["KeyState"])
	raw, _ := f.store.Get(keystore.KeyRecordID(id))
	rec, err := keystore.ParseRecord(raw)
	require.NoError(t, err)
	want, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	require.NoError(t, err)
	assert.Equal(t, want, rec.Key.PublicKey, "the public key is the imported private key's")
	require.Len(t, rec.Tokens, 1)
	// The same key with RSAES_OAEP_SHA_1, in SEC 1 form inside PKCS#8
	// (Go's encoding again, so the check value must not depend on it).
	require.NoError(t, imp(id, "RSAES_OAEP_SHA_1", der))
	p2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der2, _ := x509.MarshalPKCS8PrivateKey(p2)
	assert.Equal(t, "IncorrectKeyMaterialException", exception(imp(id, "RSA_AES_KEY_WRAP_SHA_1", der2)), "another P-256 key")

	mac := f.createKey(t, map[string]any{"Origin": "EXTERNAL", "KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"})
	assert.Equal(t, "IncorrectKeyMaterialException", exception(imp(mac, "RSAES_OAEP_SHA_256", make([]byte, 31))), "shorter than the hash")
	assert.Equal(t, "IncorrectKeyMaterialException", exception(imp(mac, "RSAES_OAEP_SHA_256", make([]byte, 65))), "longer than the block")
	key := make([]byte, 48)
	rand.Read(key)
	require.NoError(t, imp(mac, "RSAES_OAEP_SHA_256", key))
	assert.Equal(t, "Enabled", f.state(t, mac)["KeyState"])
	raw, _ = f.store.Get(keystore.KeyRecordID(mac))
	rec, err = keystore.ParseRecord(raw)
	require.NoError(t, err)
	assert.Nil(t, rec.Key.PublicKey)
	assert.Equal(t, []hsmcmd.Code{hsmcmd.CreateKeyPair, hsmcmd.ImportKeyToken}, f.hsm.cmds[len(f.hsm.cmds)-2:])
}

// An HSM failure that is not the request's (here: no HSM answers; on a
// host, a wrapping key token under a domain key no HSM holds, Alert 24
// after the resync) is KMSInternalException, retryable, never a 4xx
// about the material or the token.
func TestImportHSMFailureIsInternal(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(t, map[string]any{"Origin": "EXTERNAL"})
	tok, pub := f.params(t, id, "RSAES_OAEP_SHA_256")
	f.hsm.fail = errors.New("session: peer refused: a key token is under a domain key this HSM does not hold")
	_, err := f.call(alice, "ImportKeyMaterial", map[string]any{"KeyId": id, "ImportToken": tok,
		"EncryptedKeyMaterial": wrap(t, pub, "RSAES_OAEP_SHA_256", make([]byte, 32)), "ExpirationModel": doesNotExpire})
	assert.Equal(t, "KMSInternalException", exception(err))
	var ke *kmsapi.Error
	require.ErrorAs(t, err, &ke)
	assert.Equal(t, 500, ke.Status)
	assert.Equal(t, "PendingImport", f.state(t, id)["KeyState"])
}

// Each GetParametersForImport's import token stays valid for its 24
// hours, with its own wrapping key, as in AWS, for the last 8 of them:
// the ninth drops the first. Past its 24 hours a token is
// ExpiredImportTokenException, and stays so after later
// GetParametersForImport calls until it is no longer among the last 8.
func TestImportTokensStayValid(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(t, map[string]any{"Origin": "EXTERNAL"})
	material := make([]byte, 32)
	rand.Read(material)
	var toks [][]byte
	var pubs []*rsa.PublicKey
	for range keystore.MaxEarlierImports + 2 {
		tok, pub := f.params(t, id, "RSAES_OAEP_SHA_256")
		toks, pubs = append(toks, tok), append(pubs, pub)
		f.now = f.now.Add(time.Minute)
	}
	imp := func(i int) error {
		_, err := f.call(alice, "ImportKeyMaterial", map[string]any{"KeyId": id, "ImportToken": toks[i],
			"EncryptedKeyMaterial": wrap(t, pubs[i], "RSAES_OAEP_SHA_256", material), "ExpirationModel": doesNotExpire})
		return err
	}
	assert.Equal(t, "InvalidImportTokenException", exception(imp(0)), "the ninth call dropped the first")
	require.NoError(t, imp(1), "an earlier token, with its own wrapping key")
	require.NoError(t, imp(len(toks)-1), "the last token")
	require.NoError(t, imp(4), "and one between (the same material again)")
	assert.Equal(t, "Enabled", f.state(t, id)["KeyState"])

	f.now = f.now.Add(24 * time.Hour)
	assert.Equal(t, "ExpiredImportTokenException", exception(imp(len(toks)-1)))
	assert.Equal(t, "ExpiredImportTokenException", exception(imp(2)))
	tok, pub := f.params(t, id, "RSAES_OAEP_SHA_1")
	assert.Equal(t, "ExpiredImportTokenException", exception(imp(2)), "still known, as expired, among the last 8")
	assert.Equal(t, "ExpiredImportTokenException", exception(imp(len(toks)-1)))
	assert.Equal(t, "InvalidImportTokenException", exception(imp(1)), "the tenth call dropped the second")
	f.must(t, alice, "ImportKeyMaterial", map[string]any{"KeyId": id, "ImportToken": tok,
		"EncryptedKeyMaterial": wrap(t, pub, "RSAES_OAEP_SHA_1", material), "ExpirationModel": doesNotExpire})
	for range keystore.MaxEarlierImports - 1 {
		f.params(t, id, "RSAES_OAEP_SHA_256")
	}
	assert.Equal(t, "ExpiredImportTokenException", exception(imp(len(toks)-1)), "seven calls later, still among the last 8")
	f.params(t, id, "RSAES_OAEP_SHA_256")
	assert.Equal(t, "InvalidImportTokenException", exception(imp(len(toks)-1)), "dropped by the eighth")
}
