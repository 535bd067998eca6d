package kms

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"strings"

	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/trentkms/trent/conformance"
)

var contextClause = devRef + "encrypt_context.html; " + apiParam("Decrypt", "request", "EncryptionContext")

// decryptFails fails the check unless Decrypt of ct with ec is refused
// with InvalidCiphertextException.
func (e *Env) decryptFails(t *conformance.T, what string, ct []byte, ec map[string]string) {
	_, err := e.Client.Decrypt(t.Context(), &awskms.DecryptInput{CiphertextBlob: ct, EncryptionContext: ec})
	expectCode(t, what, err, "InvalidCiphertextException")
}

// decrypts fails the check unless Decrypt of ct with ec returns want.
func (e *Env) decrypts(t *conformance.T, what string, ct []byte, ec map[string]string, want string) {
	out, err := e.Client.Decrypt(t.Context(), &awskms.DecryptInput{CiphertextBlob: ct, EncryptionContext: ec})
	must(t, what, err)
	equal(t, what+": Plaintext", want, string(out.Plaintext))
}

func showContext(ec map[string]string) string {
	b, _ := json.Marshal(ec)
	return string(b)
}

func (e *Env) contextChecks() []conformance.Check {
	ec := map[string]string{"purpose": "conformance", "tenant": "t-1"}
	with := func(k, v string) map[string]string {
		m := maps.Clone(ec)
		m[k] = v
		return m
	}
	return []conformance.Check{{
		ID:        "KMS-EC-001",
		Statement: "Decrypt with an encryption context whose value for a key differs from Encrypt's fails with InvalidCiphertextException",
		Clause:    contextClause,
		Mutation:  "kms.ec-values-case-folded",
		Run: func(t *conformance.T) {
			k := e.newKey(t, nil)
			ct := e.encrypt(t, k.KeyId, []byte("bound"), ec)
			e.decrypts(t, "Decrypt with the same context", ct, ec, "bound")
			e.decryptFails(t, "Decrypt with tenant=t-2", ct, with("tenant", "t-2"))
			e.decryptFails(t, "Decrypt with tenant=T-1 (values are case-sensitive)", ct, with("tenant", "T-1"))
		},
	}, {
		ID:        "KMS-EC-002",
		Statement: "Decrypt with an encryption context missing a pair of Encrypt's, or with none, fails with InvalidCiphertextException",
		Clause:    contextClause,
		Mutation:  "kms.ec-missing-pair-accepted",
		Run: func(t *conformance.T) {
			k := e.newKey(t, nil)
			ct := e.encrypt(t, k.KeyId, []byte("bound"), ec)
			e.decrypts(t, "Decrypt with the same context", ct, ec, "bound")
			e.decryptFails(t, "Decrypt without the tenant pair", ct, map[string]string{"purpose": "conformance"})
			e.decryptFails(t, "Decrypt without a context", ct, nil)
		},
	}, {
		ID:        "KMS-EC-003",
		Statement: "Decrypt with an encryption context holding a pair Encrypt's did not fails with InvalidCiphertextException (also when Encrypt had none)",
		Clause:    contextClause,
		Mutation:  "kms.ec-extra-pair-accepted",
		Run: func(t *conformance.T) {
			k := e.newKey(t, nil)
			ct := e.encrypt(t, k.KeyId, []byte("bound"), ec)
			e.decrypts(t, "Decrypt with the same context", ct, ec, "bound")
			e.decryptFails(t, "Decrypt with an extra pair", ct, with("extra", "x"))
			bare := e.encrypt(t, k.KeyId, []byte("bare"), nil)
			e.decrypts(t, "Decrypt without a context of a ciphertext made without one", bare, nil, "bare")
			e.decryptFails(t, "Decrypt with a context of a ciphertext made without one", bare, map[string]string{"extra": "x"})
		},
	}, {
		ID:        "KMS-EC-004",
		Statement: "Encryption contexts whose naive concatenations collide ({\"a\":\"bc\"} and {\"ab\":\"c\"}, {\"a\":\"b=c\"} and {\"a=b\":\"c\"}, {\"a\":\"b\",\"c\":\"d\"} and {\"a\":\"b,c=d\"}) do not decrypt each other's ciphertexts",
		Clause:    contextClause,
		Mutation:  "kms.ec-naive-concatenation",
		Run: func(t *conformance.T) {
			k := e.newKey(t, nil)
			pairs := [][2]map[string]string{
				{{"a": "bc"}, {"ab": "c"}},
				{{"a": "b=c"}, {"a=b": "c"}},
				{{"a": "b", "c": "d"}, {"a": "b,c=d"}},
			}
			for _, p := range pairs {
				for i := range 2 {
					mine, theirs := p[i], p[1-i]
					ct := e.encrypt(t, k.KeyId, []byte("collide"), mine)
					e.decrypts(t, "Decrypt with "+showContext(mine), ct, mine, "collide")
					e.decryptFails(t, fmt.Sprintf("Decrypt of a ciphertext made with %s, with %s", showContext(mine), showContext(theirs)), ct, theirs)
				}
			}
		},
	}, {
		ID:        "KMS-EC-005",
		Statement: "An encryption context is a set of pairs: a raw Decrypt listing Encrypt's pairs in another JSON order decrypts",
		Clause:    contextClause,
		Mutation:  "kms.ec-order-bound",
		Run: func(t *conformance.T) {
			k := e.newKey(t, nil)
			ctx3 := map[string]string{"a": "1", "b": "2", "c": "3"}
			ct := e.encrypt(t, k.KeyId, []byte("unordered"), ctx3)
			for _, order := range [][]string{{"c", "a", "b"}, {"b", "c", "a"}} {
				var pairs []string
				for _, key := range order {
					pairs = append(pairs, strconv.Quote(key)+":"+strconv.Quote(ctx3[key]))
				}
				body := `{"CiphertextBlob":"` + base64.StdEncoding.EncodeToString(ct) + `","EncryptionContext":{` + strings.Join(pairs, ",") + `}}`
				a, err := e.raw(t.Context(), rawCall{Op: "Decrypt", Body: []byte(body)})
				must(t, "raw Decrypt", err)
				if a.Status != http.StatusOK {
					t.Mismatch("raw Decrypt with the context in the order "+strings.Join(order, ","), "HTTP 200", a.String())
				}
				var out struct{ Plaintext string }
				_ = json.Unmarshal(a.Body, &out)
				pt, _ := base64.StdEncoding.DecodeString(out.Plaintext)
				equal(t, "raw Decrypt's Plaintext", "unordered", string(pt))
			}
		},
	}, {
		ID:        "KMS-EC-006",
		Statement: "GenerateDataKey binds its encryption context: the data key's CiphertextBlob decrypts with that context only",
		Clause:    apiParam("GenerateDataKey", "request", "EncryptionContext") + "; " + devRef + "encrypt_context.html",
		Mutation:  "kms.data-key-context-not-bound",
		Run: func(t *conformance.T) {
			k := e.newKey(t, nil)
			out, err := e.Client.GenerateDataKey(t.Context(), &awskms.GenerateDataKeyInput{KeyId: k.KeyId, KeySpec: types.DataKeySpecAes256, EncryptionContext: ec})
			must(t, "GenerateDataKey with a context", err)
			e.decrypts(t, "Decrypt of the data key with its context", out.CiphertextBlob, ec, string(out.Plaintext))
			e.decryptFails(t, "Decrypt of the data key without its context", out.CiphertextBlob, nil)
			e.decryptFails(t, "Decrypt of the data key with another context", out.CiphertextBlob, with("tenant", "t-2"))
		},
	}}
}
