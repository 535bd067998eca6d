package kms

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/trentkms/trent/conformance"
)

func (e *Env) errorChecks() []conformance.Check {
	return []conformance.Check{{
		ID:        "KMS-ERR-001",
		Statement: "DescribeKey, Encrypt and GenerateDataKey naming a well-formed key ID that does not exist fail with NotFoundException",
		Clause:    apiErr("DescribeKey", "NotFoundException"),
		Mutation:  "kms.unknown-key-access-denied",
		Run: func(t *conformance.T) {
			ctx, id := t.Context(), aws.String(randomUUID())
			_, err := e.Client.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: id})
			expectCode(t, "DescribeKey of an unknown key ID", err, "NotFoundException")
			_, err = e.Client.Encrypt(ctx, &awskms.EncryptInput{KeyId: id, Plaintext: []byte("x")})
			expectCode(t, "Encrypt under an unknown key ID", err, "NotFoundException")
			_, err = e.Client.GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{KeyId: id, KeySpec: types.DataKeySpecAes256})
			expectCode(t, "GenerateDataKey under an unknown key ID", err, "NotFoundException")
		},
	}, {
		ID:        "KMS-ERR-002",
		Statement: "DescribeKey, Encrypt and GenerateDataKey naming an alias that does not exist fail with NotFoundException",
		Clause:    apiErr("Encrypt", "NotFoundException"),
		Mutation:  "kms.unknown-alias-validation-error",
		Run: func(t *conformance.T) {
			ctx, alias := t.Context(), aws.String("alias/trent-conformance-missing-"+randomHex(8))
			_, err := e.Client.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: alias})
			expectCode(t, "DescribeKey of an unknown alias", err, "NotFoundException")
			_, err = e.Client.Encrypt(ctx, &awskms.EncryptInput{KeyId: alias, Plaintext: []byte("x")})
			expectCode(t, "Encrypt under an unknown alias", err, "NotFoundException")
			_, err = e.Client.GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{KeyId: alias, KeySpec: types.DataKeySpecAes256})
			expectCode(t, "GenerateDataKey under an unknown alias", err, "NotFoundException")
		},
	}, {
		ID:        "KMS-ERR-003",
		Statement: "Parameters just outside their documented ranges fail with ValidationException (Plaintext of 4097 bytes, NumberOfBytes 0 and 1025, ListKeys Limit 0 and 1001, ListAliases Limit 101) and those at the bounds are served",
		Clause:    apiRef + "CommonErrors.html (ValidationError); " + apiParam("Encrypt", "request", "Plaintext"),
		Mutation:  "kms.list-aliases-limit-unchecked",
		Run: func(t *conformance.T) {
			ctx := t.Context()
			k := e.newKey(t, nil)
			e.encrypt(t, k.KeyId, make([]byte, 4096), nil)
			_, err := e.Client.GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{KeyId: k.KeyId, NumberOfBytes: aws.Int32(1024)})
			must(t, "GenerateDataKey NumberOfBytes 1024", err)
			_, err = e.Client.ListKeys(ctx, &awskms.ListKeysInput{Limit: aws.Int32(1000)})
			must(t, "ListKeys Limit 1000", err)
			_, err = e.Client.ListAliases(ctx, &awskms.ListAliasesInput{Limit: aws.Int32(100)})
			must(t, "ListAliases Limit 100", err)
			_, err = e.Client.Encrypt(ctx, &awskms.EncryptInput{KeyId: k.KeyId, Plaintext: make([]byte, 4097)})
			expectCode(t, "Encrypt of 4097 bytes", err, "ValidationException")
			for _, n := range []int32{0, 1025} {
				_, err = e.Client.GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{KeyId: k.KeyId, NumberOfBytes: aws.Int32(n)})
				expectCode(t, fmt.Sprintf("GenerateDataKey NumberOfBytes %d", n), err, "ValidationException")
			}
			for _, n := range []int32{0, 1001} {
				_, err = e.Client.ListKeys(ctx, &awskms.ListKeysInput{Limit: aws.Int32(n)})
				expectCode(t, fmt.Sprintf("ListKeys Limit %d", n), err, "ValidationException")
			}
			_, err = e.Client.ListAliases(ctx, &awskms.ListAliasesInput{Limit: aws.Int32(101)})
			expectCode(t, "ListAliases Limit 101", err, "ValidationException")
		},
	}, {
		ID:        "KMS-ERR-004",
		Statement: "Decrypt of a ciphertext with one byte flipped (in the middle, or the last) fails with InvalidCiphertextException",
		Clause:    apiErr("Decrypt", "InvalidCiphertextException"),
		Mutation:  "kms.ciphertext-tag-unchecked",
		Run: func(t *conformance.T) {
			k := e.newKey(t, nil)
			ct := e.encrypt(t, k.KeyId, []byte("conformance"), nil)
			e.decrypts(t, "Decrypt of the intact ciphertext", ct, nil, "conformance")
			for _, i := range []int{len(ct) / 2, len(ct) - 1} {
				bad := bytes.Clone(ct)
				bad[i] ^= 0x01
				_, err := e.Client.Decrypt(t.Context(), &awskms.DecryptInput{CiphertextBlob: bad})
				expectCode(t, fmt.Sprintf("Decrypt with byte %d of %d flipped", i, len(ct)), err, "InvalidCiphertextException")
			}
		},
	}, {
		ID:        "KMS-ERR-005",
		Statement: "Decrypt of a truncated ciphertext (one byte short, half) fails with InvalidCiphertextException",
		Clause:    apiErr("Decrypt", "InvalidCiphertextException"),
		Mutation:  "kms.malformed-ciphertext-validation-error",
		Run: func(t *conformance.T) {
			k := e.newKey(t, nil)
			ct := e.encrypt(t, k.KeyId, []byte("conformance"), nil)
			e.decrypts(t, "Decrypt of the whole ciphertext", ct, nil, "conformance")
			for _, n := range []int{len(ct) - 1, len(ct) / 2} {
				_, err := e.Client.Decrypt(t.Context(), &awskms.DecryptInput{CiphertextBlob: ct[:n]})
				expectCode(t, fmt.Sprintf("Decrypt of the first %d of %d bytes", n, len(ct)), err, "InvalidCiphertextException")
			}
		},
	}, {
		ID:        "KMS-ERR-006",
		Statement: "Decrypt with a KeyId, or ReEncrypt with a SourceKeyId, naming another existing key fails with IncorrectKeyException",
		Clause:    apiErr("Decrypt", "IncorrectKeyException"),
		Mutation:  "kms.decrypt-key-id-unchecked",
		Run: func(t *conformance.T) {
			ctx := t.Context()
			k, other := e.newKey(t, nil), e.newKey(t, nil)
			ct := e.encrypt(t, k.KeyId, []byte("conformance"), nil)
			_, err := e.Client.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: ct, KeyId: other.KeyId})
			expectCode(t, "Decrypt naming another key", err, "IncorrectKeyException")
			_, err = e.Client.ReEncrypt(ctx, &awskms.ReEncryptInput{CiphertextBlob: ct, SourceKeyId: other.KeyId, DestinationKeyId: other.KeyId})
			expectCode(t, "ReEncrypt naming another source key", err, "IncorrectKeyException")
			out, err := e.Client.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: ct, KeyId: k.KeyId})
			must(t, "Decrypt naming the right key", err)
			equal(t, "Decrypt naming the right key: Plaintext", "conformance", string(out.Plaintext))
		},
	}, {
		ID:        "KMS-ERR-007",
		Statement: "Encrypt, Decrypt, GenerateDataKey, GenerateDataKeyWithoutPlaintext and ReEncrypt with a disabled key fail with DisabledException",
		Clause:    apiErr("Encrypt", "DisabledException") + "; " + devRef + "key-state.html",
		Mutation:  "kms.disabled-key-usable",
		Run: func(t *conformance.T) {
			ctx := t.Context()
			k, dest := e.newKey(t, nil), e.newKey(t, nil)
			ct := e.encrypt(t, k.KeyId, []byte("conformance"), nil)
			_, err := e.Client.DisableKey(ctx, &awskms.DisableKeyInput{KeyId: k.KeyId})
			must(t, "DisableKey", err)
			_, err = e.Client.Encrypt(ctx, &awskms.EncryptInput{KeyId: k.KeyId, Plaintext: []byte("x")})
			expectCode(t, "Encrypt under a disabled key", err, "DisabledException")
			_, err = e.Client.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: ct})
			expectCode(t, "Decrypt under a disabled key", err, "DisabledException")
			_, err = e.Client.GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{KeyId: k.KeyId, KeySpec: types.DataKeySpecAes256})
			expectCode(t, "GenerateDataKey under a disabled key", err, "DisabledException")
			_, err = e.Client.GenerateDataKeyWithoutPlaintext(ctx, &awskms.GenerateDataKeyWithoutPlaintextInput{KeyId: k.KeyId, KeySpec: types.DataKeySpecAes256})
			expectCode(t, "GenerateDataKeyWithoutPlaintext under a disabled key", err, "DisabledException")
			_, err = e.Client.ReEncrypt(ctx, &awskms.ReEncryptInput{CiphertextBlob: ct, DestinationKeyId: dest.KeyId})
			expectCode(t, "ReEncrypt from a disabled key", err, "DisabledException")
		},
	}, {
		ID:        "KMS-ERR-008",
		Statement: "Encrypt, Decrypt and GenerateDataKey with a key pending deletion fail with KMSInvalidStateException",
		Clause:    apiErr("Decrypt", "KMSInvalidStateException") + "; " + devRef + "key-state.html",
		Mutation:  "kms.pending-deletion-key-usable",
		Run: func(t *conformance.T) {
			ctx := t.Context()
			k := e.newKey(t, nil)
			ct := e.encrypt(t, k.KeyId, []byte("conformance"), nil)
			_, err := e.Client.ScheduleKeyDeletion(ctx, &awskms.ScheduleKeyDeletionInput{KeyId: k.KeyId, PendingWindowInDays: aws.Int32(7)})
			must(t, "ScheduleKeyDeletion", err)
			_, err = e.Client.Encrypt(ctx, &awskms.EncryptInput{KeyId: k.KeyId, Plaintext: []byte("x")})
			expectCode(t, "Encrypt under a key pending deletion", err, "KMSInvalidStateException")
			_, err = e.Client.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: ct})
			expectCode(t, "Decrypt under a key pending deletion", err, "KMSInvalidStateException")
			_, err = e.Client.GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{KeyId: k.KeyId, KeySpec: types.DataKeySpecAes256})
			expectCode(t, "GenerateDataKey under a key pending deletion", err, "KMSInvalidStateException")
		},
	}, {
		ID:        "KMS-ERR-009",
		Statement: "Sign with an ENCRYPT_DECRYPT key, and Encrypt with a SIGN_VERIFY key, fail with InvalidKeyUsageException",
		Clause:    apiErr("Sign", "InvalidKeyUsageException") + "; " + apiErr("Encrypt", "InvalidKeyUsageException"),
		Mutation:  "kms.key-usage-unchecked",
		Needs:     []conformance.Capability{CapAsymmetric},
		Run: func(t *conformance.T) {
			ctx := t.Context()
			sym := e.newKey(t, nil)
			_, err := e.Client.Sign(ctx, &awskms.SignInput{KeyId: sym.KeyId, Message: []byte("conformance"),
				MessageType: types.MessageTypeRaw, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
			expectCode(t, "Sign with an ENCRYPT_DECRYPT key", err, "InvalidKeyUsageException")
			signer := e.newKey(t, &awskms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeSignVerify})
			_, err = e.Client.Encrypt(ctx, &awskms.EncryptInput{KeyId: signer.KeyId, Plaintext: []byte("x")})
			expectCode(t, "Encrypt with a SIGN_VERIFY key", err, "InvalidKeyUsageException")
		},
	}, {
		ID:        "KMS-ERR-010",
		Statement: "An error is HTTP 400 with Content-Type application/x-amz-json-1.1 and a JSON body whose __type names the exception and whose message is a non-empty string",
		Clause:    apiRef + "CommonErrors.html; " + apiRef + "CommonParameters.html; docs/conformance.md#the-protocol-package-hostkmsapi",
		Mutation:  "kms.error-message-missing",
		Run: func(t *conformance.T) {
			body, _ := json.Marshal(map[string]string{"KeyId": randomUUID()})
			a, err := e.raw(t.Context(), rawCall{Op: "DescribeKey", Body: body})
			must(t, "signed DescribeKey of an unknown key", err)
			equal(t, "status", http.StatusBadRequest, a.Status)
			equal(t, "Content-Type", "application/x-amz-json-1.1", strings.TrimSpace(strings.Split(a.ContentType, ";")[0]))
			var eb map[string]any
			if err := json.Unmarshal(a.Body, &eb); err != nil {
				t.Mismatch("error body", "a JSON object", truncate(string(a.Body), 200))
			}
			typ, _ := eb["__type"].(string)
			equal(t, "__type (without its namespace)", "NotFoundException", errorName(typ))
			msg, ok := eb["message"].(string)
			if !ok {
				msg, ok = eb["Message"].(string)
			}
			if !ok || msg == "" {
				t.Mismatch("the error's message", "a non-empty string (message)", truncate(string(a.Body), 200))
			}
		},
	}}
}

// equal ends the check as failed if the values differ.
func equal[V comparable](t *conformance.T, what string, expected, observed V) {
	conformance.Equal(t, what, expected, observed)
}
