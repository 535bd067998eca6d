package kms

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"hash"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/trentkms/trent/conformance"
	"github.com/trentkms/trent/internal/kwp"
)

// importParams calls GetParametersForImport and checks its answer: an
// RSA public key of the wrapping key spec's size and an import token.
func (e *Env) importParams(t *conformance.T, id *string, alg types.AlgorithmSpec, spec types.WrappingKeySpec) (*awskms.GetParametersForImportOutput, *rsa.PublicKey) {
	out, err := e.Client.GetParametersForImport(t.Context(), &awskms.GetParametersForImportInput{KeyId: id, WrappingAlgorithm: alg, WrappingKeySpec: spec})
	must(t, "GetParametersForImport", err)
	pub, err := x509.ParsePKIXPublicKey(out.PublicKey)
	pk, ok := pub.(*rsa.PublicKey)
	if err != nil || !ok {
		t.Mismatch("GetParametersForImport: PublicKey", "a DER RSA public key", fmt.Sprintf("%d bytes (%v)", len(out.PublicKey), err))
	}
	if len(out.ImportToken) == 0 {
		t.Mismatch("GetParametersForImport: ImportToken", "a token", "none")
	}
	return out, pk
}

// wrapMaterial wraps material with alg as AWS's documentation does:
// RSAES-OAEP (SHA-1 or SHA-256 for OAEP and MGF1, no label) of the
// material, or for RSA_AES_KEY_WRAP_SHA_* of a new AES-256 key followed
// by the material wrapped under it (RFC 5649).
func wrapMaterial(t *conformance.T, pub *rsa.PublicKey, alg types.AlgorithmSpec, material []byte) []byte {
	var h hash.Hash = sha256.New()
	if strings.HasSuffix(string(alg), "SHA_1") {
		h = sha1.New()
	}
	if !strings.HasPrefix(string(alg), "RSA_AES_KEY_WRAP_") {
		ct, err := rsa.EncryptOAEP(h, rand.Reader, pub, material, nil)
		t.Require("setup: RSAES-OAEP", err)
		return ct
	}
	kek := make([]byte, 32)
	_, _ = rand.Read(kek)
	ct, err := rsa.EncryptOAEP(h, rand.Reader, pub, kek, nil)
	t.Require("setup: RSAES-OAEP of the AES key", err)
	w, err := kwp.Wrap(kek, material)
	t.Require("setup: AES key wrap with padding", err)
	return append(ct, w...)
}

// importMaterial runs GetParametersForImport and ImportKeyMaterial
// (KEY_MATERIAL_DOES_NOT_EXPIRE) and returns ImportKeyMaterial's error.
func (e *Env) importMaterial(t *conformance.T, id *string, alg types.AlgorithmSpec, material []byte) error {
	p, pub := e.importParams(t, id, alg, types.WrappingKeySpecRsa2048)
	_, err := e.Client.ImportKeyMaterial(t.Context(), &awskms.ImportKeyMaterialInput{KeyId: id, ImportToken: p.ImportToken,
		EncryptedKeyMaterial: wrapMaterial(t, pub, alg, material), ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire})
	return err
}

func newMaterial() []byte {
	m := make([]byte, 32)
	_, _ = rand.Read(m)
	return m
}

func (e *Env) importChecks() []conformance.Check {
	return []conformance.Check{{
		ID:        "KMS-IMPORT-001",
		Statement: "GetParametersForImport of an EXTERNAL key answers an RSA public key of the WrappingKeySpec's size, an import token and ParametersValidTo 24 hours on, and leaves the key PendingImport; of an AWS_KMS key it fails with UnsupportedOperationException",
		Clause:    apiRef + "API_GetParametersForImport.html; " + apiErr("GetParametersForImport", "UnsupportedOperationException"),
		Mutation:  "kms.import-params-valid-one-hour",
		Run: func(t *conformance.T) {
			k := e.newKey(t, &awskms.CreateKeyInput{Origin: types.OriginTypeExternal})
			equal(t, "CreateKey Origin EXTERNAL: KeyState", types.KeyStatePendingImport, k.KeyState)
			before := time.Now()
			out, pub := e.importParams(t, k.KeyId, types.AlgorithmSpecRsaesOaepSha256, types.WrappingKeySpecRsa3072)
			equal(t, "GetParametersForImport RSA_3072: modulus bits", 3072, pub.N.BitLen())
			equal(t, "GetParametersForImport: KeyId (the key ARN)", aws.ToString(k.Arn), aws.ToString(out.KeyId))
			day := 24 * time.Hour
			if v := out.ParametersValidTo; v == nil || v.Before(before.Add(day-time.Minute)) || v.After(time.Now().Add(day+time.Minute)) {
				t.Mismatch("GetParametersForImport: ParametersValidTo", "24 hours on: about "+before.Add(day).UTC().Format(time.RFC3339), v)
			}
			e.state(t, "after GetParametersForImport", k.KeyId, types.KeyStatePendingImport)
			own := e.newKey(t, nil)
			_, err := e.Client.GetParametersForImport(t.Context(), &awskms.GetParametersForImportInput{KeyId: own.KeyId,
				WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048})
			expectCode(t, "GetParametersForImport of an AWS_KMS key", err, "UnsupportedOperationException")
		},
	}, {
		ID:        "KMS-IMPORT-002",
		Statement: "ImportKeyMaterial of 32 bytes wrapped with RSAES_OAEP_SHA_256 makes an EXTERNAL key Enabled with its ExpirationModel, and it encrypts and decrypts; another material fails with IncorrectKeyMaterialException; the same material re-imports",
		Clause:    apiRef + "API_ImportKeyMaterial.html; " + apiErr("ImportKeyMaterial", "IncorrectKeyMaterialException"),
		Mutation:  "kms.import-other-material-accepted",
		Run: func(t *conformance.T) {
			k := e.newKey(t, &awskms.CreateKeyInput{Origin: types.OriginTypeExternal})
			m := newMaterial()
			must(t, "ImportKeyMaterial", e.importMaterial(t, k.KeyId, types.AlgorithmSpecRsaesOaepSha256, m))
			md := e.state(t, "after ImportKeyMaterial", k.KeyId, types.KeyStateEnabled)
			equal(t, "DescribeKey: ExpirationModel", types.ExpirationModelTypeKeyMaterialDoesNotExpire, md.ExpirationModel)
			ct := e.encrypt(t, k.KeyId, []byte("imported"), nil)
			e.decrypts(t, "Decrypt under the imported material", ct, nil, "imported")
			expectCode(t, "ImportKeyMaterial of another material", e.importMaterial(t, k.KeyId, types.AlgorithmSpecRsaesOaepSha256, newMaterial()),
				"IncorrectKeyMaterialException")
			must(t, "ImportKeyMaterial of the same material again", e.importMaterial(t, k.KeyId, types.AlgorithmSpecRsaesOaepSha1, m))
		},
	}, {
		ID:        "KMS-IMPORT-003",
		Statement: "ImportKeyMaterial with another key's import token fails with InvalidImportTokenException, and with material that does not decrypt under the wrapping key (the other OAEP hash) with InvalidCiphertextException; the key stays PendingImport",
		Clause:    apiErr("ImportKeyMaterial", "InvalidImportTokenException") + "; " + apiErr("ImportKeyMaterial", "InvalidCiphertextException"),
		Mutation:  "kms.import-unwrap-failure-as-incorrect-material",
		Run: func(t *conformance.T) {
			ctx := t.Context()
			k := e.newKey(t, &awskms.CreateKeyInput{Origin: types.OriginTypeExternal})
			other := e.newKey(t, &awskms.CreateKeyInput{Origin: types.OriginTypeExternal})
			p, pub := e.importParams(t, k.KeyId, types.AlgorithmSpecRsaesOaepSha256, types.WrappingKeySpecRsa2048)
			po, _ := e.importParams(t, other.KeyId, types.AlgorithmSpecRsaesOaepSha256, types.WrappingKeySpecRsa2048)
			m := newMaterial()
			_, err := e.Client.ImportKeyMaterial(ctx, &awskms.ImportKeyMaterialInput{KeyId: k.KeyId, ImportToken: po.ImportToken,
				EncryptedKeyMaterial: wrapMaterial(t, pub, types.AlgorithmSpecRsaesOaepSha256, m), ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire})
			expectCode(t, "ImportKeyMaterial with another key's import token", err, "InvalidImportTokenException")
			_, err = e.Client.ImportKeyMaterial(ctx, &awskms.ImportKeyMaterialInput{KeyId: k.KeyId, ImportToken: p.ImportToken,
				EncryptedKeyMaterial: wrapMaterial(t, pub, types.AlgorithmSpecRsaesOaepSha1, m), ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire})
			expectCode(t, "ImportKeyMaterial wrapped with RSAES_OAEP_SHA_1 for RSAES_OAEP_SHA_256", err, "InvalidCiphertextException")
			e.state(t, "after the refused imports", k.KeyId, types.KeyStatePendingImport)
		},
	}, {
		ID:        "KMS-IMPORT-004",
		Statement: "An ECC_NIST_P256 private key (PKCS#8 DER) wrapped with RSA_AES_KEY_WRAP_SHA_256 imports into an EXTERNAL SIGN_VERIFY key: GetPublicKey answers its public key, and Sign's signatures verify under it",
		Clause:    devRef + "importing-keys-encrypt-key-material.html; " + apiRef + "API_GetParametersForImport.html#KMS-GetParametersForImport-request-WrappingAlgorithm",
		Needs:     []conformance.Capability{CapAsymmetric},
		Mutation:  "kms.import-public-key-dropped",
		Run: func(t *conformance.T) {
			ctx := t.Context()
			k := e.newKey(t, &awskms.CreateKeyInput{Origin: types.OriginTypeExternal, KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeSignVerify})
			priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			t.Require("setup: a P-256 key", err)
			der, err := x509.MarshalPKCS8PrivateKey(priv)
			t.Require("setup: PKCS#8", err)
			must(t, "ImportKeyMaterial", e.importMaterial(t, k.KeyId, types.AlgorithmSpecRsaAesKeyWrapSha256, der))
			want, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
			gp, err := e.Client.GetPublicKey(ctx, &awskms.GetPublicKeyInput{KeyId: k.KeyId})
			must(t, "GetPublicKey", err)
			if !bytes.Equal(want, gp.PublicKey) {
				t.Mismatch("GetPublicKey: PublicKey", "the imported key's", fmt.Sprintf("%d other bytes", len(gp.PublicKey)))
			}
			s, err := e.Client.Sign(ctx, &awskms.SignInput{KeyId: k.KeyId, Message: []byte("imported"), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
			must(t, "Sign", err)
			d := sha256.Sum256([]byte("imported"))
			if !ecdsa.VerifyASN1(&priv.PublicKey, d[:], s.Signature) {
				t.Mismatch("Sign: Signature", "valid under the imported public key", "invalid")
			}
		},
	}, {
		ID:        "KMS-IMPORT-005",
		Statement: "DeleteImportedKeyMaterial makes the key PendingImport and its ciphertexts fail with KMSInvalidStateException until the same material is imported again",
		Clause:    apiRef + "API_DeleteImportedKeyMaterial.html; " + stateClause,
		Mutation:  "kms.delete-imported-material-noop",
		Run: func(t *conformance.T) {
			ctx := t.Context()
			k := e.newKey(t, &awskms.CreateKeyInput{Origin: types.OriginTypeExternal})
			m := newMaterial()
			must(t, "ImportKeyMaterial", e.importMaterial(t, k.KeyId, types.AlgorithmSpecRsaesOaepSha256, m))
			ct := e.encrypt(t, k.KeyId, []byte("kept"), nil)
			_, err := e.Client.DeleteImportedKeyMaterial(ctx, &awskms.DeleteImportedKeyMaterialInput{KeyId: k.KeyId})
			must(t, "DeleteImportedKeyMaterial", err)
			e.state(t, "after DeleteImportedKeyMaterial", k.KeyId, types.KeyStatePendingImport)
			_, err = e.Client.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: ct})
			expectCode(t, "Decrypt after DeleteImportedKeyMaterial", err, "KMSInvalidStateException")
			must(t, "ImportKeyMaterial of the same material", e.importMaterial(t, k.KeyId, types.AlgorithmSpecRsaesOaepSha256, m))
			e.decrypts(t, "Decrypt after the re-import", ct, nil, "kept")
		},
	}}
}

// usageClause is GetKeyLastUsage's reference.
var usageClause = apiRef + "API_GetKeyLastUsage.html"

func (e *Env) usageChecks() []conformance.Check {
	return []conformance.Check{{
		ID:        "KMS-USAGE-001",
		Statement: "GetKeyLastUsage of an unused key answers no usage, its KeyCreationDate and a TrackingStartDate not before it; after Encrypt the usage is Encrypt, timed within the call; after a ReEncrypt to a second key it is ReEncrypt for both keys",
		Clause:    usageClause + "; " + apiRef + "API_KeyLastUsageData.html",
		Mutation:  "kms.usage-reencrypt-source-not-noted",
		Run: func(t *conformance.T) {
			ctx := t.Context()
			k := e.newKey(t, nil)
			dst := e.newKey(t, nil)
			u, err := e.Client.GetKeyLastUsage(ctx, &awskms.GetKeyLastUsageInput{KeyId: k.KeyId})
			must(t, "GetKeyLastUsage of an unused key", err)
			if u.KeyLastUsage != nil && u.KeyLastUsage.Timestamp != nil {
				t.Mismatch("GetKeyLastUsage of an unused key: KeyLastUsage", "empty", u.KeyLastUsage.Operation)
			}
			if u.KeyCreationDate == nil || k.CreationDate == nil || !u.KeyCreationDate.Equal(*k.CreationDate) {
				t.Mismatch("GetKeyLastUsage: KeyCreationDate", k.CreationDate, u.KeyCreationDate)
			}
			if u.TrackingStartDate == nil || u.TrackingStartDate.Before(k.CreationDate.Add(-time.Second)) {
				t.Mismatch("GetKeyLastUsage: TrackingStartDate", "the creation date or later", u.TrackingStartDate)
			}
			before := time.Now().Add(-time.Second)
			ct := e.encrypt(t, k.KeyId, []byte("used"), nil)
			e.lastUsage(t, k.KeyId, types.KeyLastUsageTrackingOperationEncrypt, before)
			// The API's timestamps are milliseconds: two uses in one
			// millisecond have no order to check, so the ReEncrypt
			// comes in a later one.
			time.Sleep(2 * time.Millisecond)
			before = time.Now().Add(-time.Second)
			_, err = e.Client.ReEncrypt(ctx, &awskms.ReEncryptInput{CiphertextBlob: ct, DestinationKeyId: dst.KeyId})
			must(t, "ReEncrypt", err)
			e.lastUsage(t, dst.KeyId, types.KeyLastUsageTrackingOperationReEncrypt, before)
			e.lastUsage(t, k.KeyId, types.KeyLastUsageTrackingOperationReEncrypt, before)
		},
	}}
}

// lastUsage waits (the API is eventually consistent: up to 30 s) until
// GetKeyLastUsage answers op for the key, timed from after, and fails
// the check otherwise.
func (e *Env) lastUsage(t *conformance.T, id *string, op types.KeyLastUsageTrackingOperation, after time.Time) {
	deadline := time.Now().Add(30 * time.Second)
	var last *types.KeyLastUsageData
	for {
		u, err := e.Client.GetKeyLastUsage(t.Context(), &awskms.GetKeyLastUsageInput{KeyId: id})
		must(t, "GetKeyLastUsage", err)
		last = u.KeyLastUsage
		if last != nil && last.Operation == op && last.Timestamp != nil && !last.Timestamp.Before(after) {
			if last.Timestamp.After(time.Now().Add(time.Second)) {
				t.Mismatch("GetKeyLastUsage: Timestamp", "not in the future", last.Timestamp)
			}
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	observed := "no usage"
	if last != nil && last.Timestamp != nil {
		observed = fmt.Sprintf("%s at %s", last.Operation, last.Timestamp.UTC().Format(time.RFC3339Nano))
	}
	t.Mismatch("GetKeyLastUsage of "+aws.ToString(id), fmt.Sprintf("%s after %s", op, after.UTC().Format(time.RFC3339Nano)), observed)
}
