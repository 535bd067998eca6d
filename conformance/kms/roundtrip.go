package kms

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/trentkms/trent/conformance"
)

// aliasARN is the ARN of alias name in the key's account and region.
func aliasARN(keyARN, name string) string {
	prefix, _, _ := strings.Cut(keyARN, ":key/")
	return prefix + ":" + name
}

func (e *Env) roundTripChecks() []conformance.Check {
	return []conformance.Check{{
		ID:        "KMS-RT-001",
		Statement: "Encrypt then Decrypt (without KeyId) returns the plaintext (1 and 4096 bytes), the key ARN as KeyId and SYMMETRIC_DEFAULT as EncryptionAlgorithm",
		Clause:    apiRef + "API_Encrypt.html#API_Encrypt_ResponseSyntax; " + apiRef + "API_Decrypt.html#API_Decrypt_ResponseSyntax",
		Mutation:  "kms.decrypt-algorithm-missing",
		Run: func(t *conformance.T) {
			ctx := t.Context()
			k := e.newKey(t, nil)
			for _, pt := range [][]byte{{0x42}, bytes.Repeat([]byte("0123456789abcdef"), 256)} {
				enc, err := e.Client.Encrypt(ctx, &awskms.EncryptInput{KeyId: k.KeyId, Plaintext: pt})
				must(t, fmt.Sprintf("Encrypt of %d bytes", len(pt)), err)
				equal(t, "Encrypt: KeyId", aws.ToString(k.Arn), aws.ToString(enc.KeyId))
				equal(t, "Encrypt: EncryptionAlgorithm", types.EncryptionAlgorithmSpecSymmetricDefault, enc.EncryptionAlgorithm)
				if bytes.Contains(enc.CiphertextBlob, pt) && len(pt) > 1 {
					t.Mismatch("Encrypt: CiphertextBlob", "no copy of the plaintext", "the plaintext inside")
				}
				dec, err := e.Client.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
				must(t, fmt.Sprintf("Decrypt of %d bytes", len(pt)), err)
				if !bytes.Equal(dec.Plaintext, pt) {
					t.Mismatch("Decrypt: Plaintext", fmt.Sprintf("the %d bytes encrypted", len(pt)), fmt.Sprintf("%d other bytes", len(dec.Plaintext)))
				}
				equal(t, "Decrypt: KeyId", aws.ToString(k.Arn), aws.ToString(dec.KeyId))
				equal(t, "Decrypt: EncryptionAlgorithm", types.EncryptionAlgorithmSpecSymmetricDefault, dec.EncryptionAlgorithm)
			}
		},
	}, {
		ID:        "KMS-RT-002",
		Statement: "Encrypt accepts the key as key ID, key ARN, alias name and alias ARN, and Decrypt with any of them as KeyId decrypts",
		Clause:    apiParam("Encrypt", "request", "KeyId") + "; " + apiParam("Decrypt", "request", "KeyId"),
		Mutation:  "kms.alias-arn-unresolved",
		Run: func(t *conformance.T) {
			ctx := t.Context()
			k := e.newKey(t, nil)
			alias := e.newAlias(t, k.KeyId)
			for _, id := range []string{aws.ToString(k.KeyId), aws.ToString(k.Arn), alias, aliasARN(aws.ToString(k.Arn), alias)} {
				enc, err := e.Client.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("named")})
				must(t, "Encrypt with KeyId "+id, err)
				equal(t, "Encrypt with KeyId "+id+": KeyId", aws.ToString(k.Arn), aws.ToString(enc.KeyId))
				dec, err := e.Client.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, KeyId: aws.String(id)})
				must(t, "Decrypt with KeyId "+id, err)
				equal(t, "Decrypt with KeyId "+id+": Plaintext", "named", string(dec.Plaintext))
			}
		},
	}, {
		ID:        "KMS-RT-003",
		Statement: "GenerateDataKey returns a data key of the size asked (AES_128, AES_256, NumberOfBytes 1, 64, 1024) whose CiphertextBlob decrypts to its Plaintext",
		Clause:    apiRef + "API_GenerateDataKey.html",
		Mutation:  "kms.data-key-aes128-as-256",
		Run: func(t *conformance.T) {
			ctx := t.Context()
			k := e.newKey(t, nil)
			type ask struct {
				spec types.DataKeySpec
				n    int32
				want int
			}
			for _, a := range []ask{{spec: types.DataKeySpecAes128, want: 16}, {spec: types.DataKeySpecAes256, want: 32}, {n: 1, want: 1}, {n: 64, want: 64}, {n: 1024, want: 1024}} {
				in := &awskms.GenerateDataKeyInput{KeyId: k.KeyId, KeySpec: a.spec}
				what := "GenerateDataKey " + string(a.spec)
				if a.n != 0 {
					in.NumberOfBytes, what = aws.Int32(a.n), fmt.Sprintf("GenerateDataKey NumberOfBytes %d", a.n)
				}
				out, err := e.Client.GenerateDataKey(ctx, in)
				must(t, what, err)
				equal(t, what+": length of Plaintext", a.want, len(out.Plaintext))
				equal(t, what+": KeyId", aws.ToString(k.Arn), aws.ToString(out.KeyId))
				e.decrypts(t, what+": Decrypt of CiphertextBlob", out.CiphertextBlob, nil, string(out.Plaintext))
			}
		},
	}, {
		ID:        "KMS-RT-004",
		Statement: "GenerateDataKeyWithoutPlaintext returns no Plaintext and a CiphertextBlob that decrypts to a data key of the size asked",
		Clause:    apiRef + "API_GenerateDataKeyWithoutPlaintext.html",
		Mutation:  "kms.data-key-without-plaintext-leaks",
		Run: func(t *conformance.T) {
			k := e.newKey(t, nil)
			// Raw, to see every member of the answer: the SDK's output
			// type has no Plaintext to show one.
			what := "GenerateDataKeyWithoutPlaintext AES_256"
			body, _ := json.Marshal(map[string]string{"KeyId": aws.ToString(k.KeyId), "KeySpec": "AES_256"})
			a, err := e.raw(t.Context(), rawCall{Op: "GenerateDataKeyWithoutPlaintext", Body: body})
			must(t, what, err)
			if a.Status != http.StatusOK {
				t.Mismatch(what, "HTTP 200", a.String())
			}
			var out struct {
				KeyId          string
				CiphertextBlob []byte
				Plaintext      json.RawMessage
			}
			if err := json.Unmarshal(a.Body, &out); err != nil {
				t.Mismatch(what+": body", "JSON with KeyId and CiphertextBlob", truncate(string(a.Body), 200))
			}
			if len(out.Plaintext) > 0 && string(out.Plaintext) != "null" {
				t.Mismatch(what+": Plaintext", "absent", truncate(string(out.Plaintext), 60))
			}
			equal(t, "KeyId", aws.ToString(k.Arn), out.KeyId)
			dec, err := e.Client.Decrypt(t.Context(), &awskms.DecryptInput{CiphertextBlob: out.CiphertextBlob})
			must(t, "Decrypt of the CiphertextBlob", err)
			equal(t, "length of the data key", 32, len(dec.Plaintext))
		},
	}, {
		ID:        "KMS-RT-005",
		Statement: "GenerateDataKey with both KeySpec and NumberOfBytes, or with neither, fails with ValidationException",
		Clause:    apiParam("GenerateDataKey", "request", "KeySpec") + "; " + apiParam("GenerateDataKey", "request", "NumberOfBytes"),
		Mutation:  "kms.data-key-size-both-accepted",
		Run: func(t *conformance.T) {
			k := e.newKey(t, nil)
			_, err := e.Client.GenerateDataKey(t.Context(), &awskms.GenerateDataKeyInput{KeyId: k.KeyId, KeySpec: types.DataKeySpecAes256})
			must(t, "GenerateDataKey with KeySpec only", err)
			_, err = e.Client.GenerateDataKey(t.Context(), &awskms.GenerateDataKeyInput{KeyId: k.KeyId, KeySpec: types.DataKeySpecAes256, NumberOfBytes: aws.Int32(32)})
			expectCode(t, "GenerateDataKey with KeySpec and NumberOfBytes", err, "ValidationException")
			_, err = e.Client.GenerateDataKey(t.Context(), &awskms.GenerateDataKeyInput{KeyId: k.KeyId})
			expectCode(t, "GenerateDataKey with neither KeySpec nor NumberOfBytes", err, "ValidationException")
		},
	}, {
		ID:        "KMS-RT-006",
		Statement: "ReEncrypt moves a ciphertext to another key and context: the result decrypts there to the same plaintext; SourceKeyId and KeyId are the keys' ARNs; the source context is required",
		Clause:    apiRef + "API_ReEncrypt.html",
		Mutation:  "kms.reencrypt-destination-context-dropped",
		Run: func(t *conformance.T) {
			ctx := t.Context()
			src, dst := e.newKey(t, nil), e.newKey(t, nil)
			srcEC, dstEC := map[string]string{"stage": "source"}, map[string]string{"stage": "destination"}
			ct := e.encrypt(t, src.KeyId, []byte("moved"), srcEC)
			_, err := e.Client.ReEncrypt(ctx, &awskms.ReEncryptInput{CiphertextBlob: ct, DestinationKeyId: dst.KeyId})
			expectCode(t, "ReEncrypt without the source context", err, "InvalidCiphertextException")
			out, err := e.Client.ReEncrypt(ctx, &awskms.ReEncryptInput{CiphertextBlob: ct, SourceEncryptionContext: srcEC,
				DestinationKeyId: dst.KeyId, DestinationEncryptionContext: dstEC})
			must(t, "ReEncrypt", err)
			equal(t, "ReEncrypt: SourceKeyId", aws.ToString(src.Arn), aws.ToString(out.SourceKeyId))
			equal(t, "ReEncrypt: KeyId", aws.ToString(dst.Arn), aws.ToString(out.KeyId))
			dec, err := e.Client.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionContext: dstEC})
			must(t, "Decrypt of the re-encrypted ciphertext", err)
			equal(t, "Decrypt: Plaintext", "moved", string(dec.Plaintext))
			equal(t, "Decrypt: KeyId", aws.ToString(dst.Arn), aws.ToString(dec.KeyId))
			e.decryptFails(t, "Decrypt of the re-encrypted ciphertext with the source context", out.CiphertextBlob, srcEC)
		},
	}, {
		ID:        "KMS-RT-007",
		Statement: "GenerateRandom returns exactly NumberOfBytes bytes for every NumberOfBytes from 1 to 1024, and two 32-byte answers differ",
		Clause:    apiParam("GenerateRandom", "request", "NumberOfBytes"),
		Mutation:  "kms.random-zeros",
		Run: func(t *conformance.T) {
			ctx := t.Context()
			var mu sync.Mutex
			var bad []string
			var wg sync.WaitGroup
			next := make(chan int32)
			for range 8 {
				wg.Go(func() {
					for n := range next {
						out, err := e.Client.GenerateRandom(ctx, &awskms.GenerateRandomInput{NumberOfBytes: aws.Int32(n)})
						var got string
						switch {
						case err != nil:
							got = describe(err)
						case len(out.Plaintext) != int(n):
							got = fmt.Sprintf("%d bytes", len(out.Plaintext))
						case n >= 32 && bytes.Count(out.Plaintext, []byte{0}) == int(n):
							got = "all zero"
						default:
							continue
						}
						mu.Lock()
						bad = append(bad, fmt.Sprintf("%d: %s", n, got))
						mu.Unlock()
					}
				})
			}
			for n := int32(1); n <= 1024; n++ {
				next <- n
			}
			close(next)
			wg.Wait()
			if len(bad) > 0 {
				t.Mismatch(fmt.Sprintf("GenerateRandom: %d lengths wrong", len(bad)), "NumberOfBytes random bytes", strings.Join(bad[:min(len(bad), 8)], "; "))
			}
			a, err := e.Client.GenerateRandom(ctx, &awskms.GenerateRandomInput{NumberOfBytes: aws.Int32(32)})
			must(t, "GenerateRandom 32", err)
			b, err := e.Client.GenerateRandom(ctx, &awskms.GenerateRandomInput{NumberOfBytes: aws.Int32(32)})
			must(t, "GenerateRandom 32", err)
			if bytes.Equal(a.Plaintext, b.Plaintext) {
				t.Mismatch("two GenerateRandom 32 answers", "different bytes", "the same bytes twice")
			}
		},
	}, {
		ID:        "KMS-RT-008",
		Statement: "GenerateRandom with NumberOfBytes 0, 1025 or -1 fails with ValidationException",
		Clause:    apiParam("GenerateRandom", "request", "NumberOfBytes"),
		Mutation:  "kms.random-zero-length-accepted",
		Run: func(t *conformance.T) {
			_, err := e.Client.GenerateRandom(t.Context(), &awskms.GenerateRandomInput{NumberOfBytes: aws.Int32(1024)})
			must(t, "GenerateRandom NumberOfBytes 1024", err)
			for _, n := range []int32{0, 1025, -1} {
				_, err := e.Client.GenerateRandom(t.Context(), &awskms.GenerateRandomInput{NumberOfBytes: aws.Int32(n)})
				expectCode(t, fmt.Sprintf("GenerateRandom NumberOfBytes %d", n), err, "ValidationException")
			}
		},
	}}
}
