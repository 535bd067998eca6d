package kms

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/trentkms/trent/conformance"
)

// The input checks send raw bodies the SDK would never write: member
// names in another case, a blob as a JSON array, and alias names at the
// documented length bounds.

var protocolClause = apiRef + "CommonErrors.html; docs/conformance.md#the-protocol-package-hostkmsapi"

// rawJSON is a JSON string literal.
func rawJSON(s string) string { return strconv.Quote(s) }

// rawRefused fails the check unless a was refused with HTTP 400 and one of
// the exception types.
func rawRefused(t *conformance.T, what string, a *rawAnswer, types ...string) {
	for _, typ := range types {
		if a.Type == typ && a.Status == http.StatusBadRequest {
			return
		}
	}
	t.Mismatch(what, "HTTP 400 "+strings.Join(types, " or "), a.String())
}

func (e *Env) inputChecks() []conformance.Check {
	return []conformance.Check{{
		ID: "KMS-IN-001",
		Statement: "Member names are case-sensitive: a raw Encrypt whose KeyId names a missing alias and whose keyid names an existing key fails " +
			"(NotFoundException, or SerializationException where unknown members are refused); one with EncryptionContext and encryptionContext " +
			"either fails with SerializationException or binds EncryptionContext alone",
		Clause:   protocolClause + "; " + apiRef + "API_Encrypt.html#API_Encrypt_RequestSyntax",
		Mutation: "kms.member-names-case-folded",
		Run: func(t *conformance.T) {
			k := e.newKey(t, nil)
			pt := rawJSON(base64.StdEncoding.EncodeToString([]byte("case")))
			missing := "alias/trent-conformance-missing-" + randomHex(8)
			body := `{"KeyId":` + rawJSON(missing) + `,"keyid":` + rawJSON(aws.ToString(k.KeyId)) + `,"Plaintext":` + pt + `}`
			a, err := e.raw(t.Context(), rawCall{Op: "Encrypt", Body: []byte(body)})
			must(t, "raw Encrypt with KeyId a missing alias and keyid an existing key", err)
			if a.Status == http.StatusOK {
				t.Mismatch("raw Encrypt with KeyId a missing alias and keyid an existing key", "NotFoundException or SerializationException",
					"HTTP 200: encrypted under the key that keyid names")
			}
			rawRefused(t, "raw Encrypt with KeyId a missing alias and keyid an existing key", a, "NotFoundException", "SerializationException")

			body = `{"KeyId":` + rawJSON(aws.ToString(k.KeyId)) + `,"Plaintext":` + pt + `,"EncryptionContext":{"a":"1"},"encryptionContext":{"b":"2"}}`
			a, err = e.raw(t.Context(), rawCall{Op: "Encrypt", Body: []byte(body)})
			must(t, "raw Encrypt with EncryptionContext and encryptionContext", err)
			if a.Status != http.StatusOK {
				rawRefused(t, "raw Encrypt with EncryptionContext and encryptionContext", a, "SerializationException")
				return
			}
			var out struct{ CiphertextBlob string }
			_ = json.Unmarshal(a.Body, &out)
			ct, err := base64.StdEncoding.DecodeString(out.CiphertextBlob)
			if err != nil || len(ct) == 0 {
				t.Mismatch("raw Encrypt's CiphertextBlob", "base64", truncate(string(a.Body), 200))
			}
			e.decrypts(t, "Decrypt with EncryptionContext {a:1} alone (encryptionContext is no member)", ct, map[string]string{"a": "1"}, "case")
		},
	}, {
		ID:        "KMS-IN-002",
		Statement: "A blob member is a base64 string: a raw Encrypt whose Plaintext, or a raw Decrypt whose CiphertextBlob, is a JSON array of numbers fails with SerializationException, while the same bytes as base64 are served",
		Clause:    protocolClause + "; " + apiParam("Encrypt", "request", "Plaintext") + "; " + apiParam("Decrypt", "request", "CiphertextBlob"),
		Mutation:  "kms.blob-array-accepted",
		Run: func(t *conformance.T) {
			k := e.newKey(t, nil)
			id := rawJSON(aws.ToString(k.KeyId))
			a, err := e.raw(t.Context(), rawCall{Op: "Encrypt", Body: []byte(`{"KeyId":` + id + `,"Plaintext":"AQI="}`)})
			must(t, "raw Encrypt with Plaintext \"AQI=\"", err)
			equal(t, "raw Encrypt with Plaintext \"AQI=\": status", http.StatusOK, a.Status)
			a, err = e.raw(t.Context(), rawCall{Op: "Encrypt", Body: []byte(`{"KeyId":` + id + `,"Plaintext":[1,2]}`)})
			must(t, "raw Encrypt with Plaintext [1,2]", err)
			rawRefused(t, "raw Encrypt with Plaintext [1,2]", a, "SerializationException")
			ct := e.encrypt(t, k.KeyId, []byte{1, 2}, nil)
			nums := make([]string, len(ct))
			for i, b := range ct {
				nums[i] = strconv.Itoa(int(b))
			}
			a, err = e.raw(t.Context(), rawCall{Op: "Decrypt", Body: []byte(`{"CiphertextBlob":[` + strings.Join(nums, ",") + `]}`)})
			must(t, "raw Decrypt with CiphertextBlob as an array", err)
			rawRefused(t, "raw Decrypt with CiphertextBlob as an array", a, "SerializationException")
		},
	}, {
		ID:        "KMS-IN-003",
		Statement: "CreateAlias takes alias names of up to 256 characters (241 and 256 here), which then name the key; a name of 257 characters fails with ValidationException",
		Clause:    apiParam("CreateAlias", "request", "AliasName"),
		Mutation:  "kms.alias-record-id-unbounded",
		Run: func(t *conformance.T) {
			ctx := t.Context()
			k := e.newKey(t, nil)
			name := func(n int) string {
				s := "alias/trent-conformance-in-003-" + randomHex(6) + "-"
				return s + strings.Repeat("x", n-len(s))
			}
			create := func(name string) error {
				_, err := e.Client.CreateAlias(ctx, &awskms.CreateAliasInput{AliasName: aws.String(name), TargetKeyId: k.KeyId})
				if err == nil {
					t.Cleanup(func(ctx context.Context) error {
						if _, err := e.Client.DeleteAlias(ctx, &awskms.DeleteAliasInput{AliasName: aws.String(name)}); err != nil {
							return fmt.Errorf("conformance: DeleteAlias %s: %s", name, describe(err))
						}
						return nil
					})
				}
				return err
			}
			for _, n := range []int{241, 256} {
				a := name(n)
				must(t, fmt.Sprintf("CreateAlias of %d characters", n), create(a))
				d, err := e.Client.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: aws.String(a)})
				must(t, fmt.Sprintf("DescribeKey by the alias of %d characters", n), err)
				equal(t, fmt.Sprintf("DescribeKey by the alias of %d characters: KeyId", n), aws.ToString(k.KeyId), aws.ToString(d.KeyMetadata.KeyId))
			}
			expectCode(t, "CreateAlias of 257 characters", create(name(257)), "ValidationException")
		},
	}}
}
