package kms

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/trentkms/trent/conformance"
)

// The SigV4 checks send GenerateRandom (no key, no side effect) as raw
// HTTP requests signed with the SDK's v4 signer. Each first sends the
// request untampered and requires it to succeed, so that a refusal of the
// tampered one is the tampering's doing. Where the tampering leaves the
// signing time alone, the untampered request is signed at the same time
// as the tampered one, so that it is its exact twin: a target that
// remembers what it verified cannot pass the tampered request by memory.

var sigv4Clause = sigvRef + "reference_sigv.html; " + apiRef + "CommonErrors.html; docs/conformance.md#the-protocol-package-hostkmsapi"

const randomBody = `{"NumberOfBytes":16}`

// baseline sends the untampered request, signed at at, and fails the
// check unless it returns 16 random bytes.
func (e *Env) baseline(t *conformance.T, at time.Time) {
	e.served(t, "the untampered signed GenerateRandom (the check's baseline)", rawCall{At: at})
}

// served sends c (GenerateRandom of 16 bytes unless it says otherwise)
// and fails the check unless it returns 16 random bytes.
func (e *Env) served(t *conformance.T, what string, c rawCall) {
	if c.Op == "" {
		c.Op, c.Body = "GenerateRandom", []byte(randomBody)
	}
	a, err := e.raw(t.Context(), c)
	must(t, what, err)
	if a.Status != http.StatusOK {
		t.Mismatch(what, "HTTP 200", a.String())
	}
	var out struct{ Plaintext string }
	if err := json.Unmarshal(a.Body, &out); err != nil {
		t.Mismatch(what+": body", "JSON with Plaintext", truncate(string(a.Body), 200))
	}
	pt, err := base64.StdEncoding.DecodeString(out.Plaintext)
	if err != nil || len(pt) != 16 {
		t.Mismatch(what+": Plaintext", "16 bytes, base64", out.Plaintext)
	}
}

// refused sends c and fails the check unless it is refused with HTTP 400
// and one of the exception types.
func (e *Env) refused(t *conformance.T, what string, c rawCall, types ...string) {
	if c.Op == "" {
		c.Op = "GenerateRandom"
	}
	if c.Body == nil {
		c.Body = []byte(randomBody)
	}
	a, err := e.raw(t.Context(), c)
	must(t, what, err)
	for _, typ := range types {
		if a.Type == typ && (a.Status == http.StatusBadRequest || a.Status == http.StatusForbidden) {
			return
		}
	}
	t.Mismatch(what, "HTTP 400 "+strings.Join(types, " or "), a.String())
}

func (e *Env) sigv4Checks() []conformance.Check {
	return []conformance.Check{{
		ID:        "KMS-SIG-001",
		Statement: "A raw HTTP request signed with SigV4 by the SDK's signer is served (HTTP 200, the JSON answer), also when a signed header's value holds runs of spaces",
		Clause:    sigv4Clause + "; " + sigvRef + "create-signed-request.html#create-canonical-request",
		Mutation:  "kms.sigv4-header-spaces-kept",
		Run: func(t *conformance.T) {
			e.baseline(t, time.Now())
			// The canonical form of a header value collapses runs of spaces.
			e.served(t, "GenerateRandom signing X-Trent-Conformance: \"a  b   c\"", rawCall{Header: map[string]string{"X-Trent-Conformance": "a  b   c"}})
		},
	}, {
		ID:        "KMS-SIG-002",
		Statement: "A request signed with the wrong secret key fails with InvalidSignatureException (or IncompleteSignatureException)",
		Clause:    sigv4Clause,
		Mutation:  "kms.sigv4-secret-unchecked",
		Run: func(t *conformance.T) {
			at := time.Now()
			e.baseline(t, at)
			creds := e.Creds
			creds.SecretAccessKey = "wrong" + randomHex(16)
			e.refused(t, "GenerateRandom signed with a wrong secret", rawCall{Creds: creds, At: at}, "InvalidSignatureException", "IncompleteSignatureException")
		},
	}, {
		ID:        "KMS-SIG-003",
		Statement: "A request signed with an access key ID the endpoint does not know fails with UnrecognizedClientException",
		Clause:    sigv4Clause,
		Mutation:  "kms.sigv4-unknown-key-invalid-signature",
		Run: func(t *conformance.T) {
			e.baseline(t, time.Now())
			creds := aws.Credentials{AccessKeyID: "AKIA" + strings.ToUpper(randomHex(8)), SecretAccessKey: randomHex(20)}
			e.refused(t, "GenerateRandom signed with an unknown access key", rawCall{Creds: creds}, "UnrecognizedClientException")
		},
	}, {
		ID:        "KMS-SIG-004",
		Statement: "A request without an Authorization header fails with MissingAuthenticationTokenException",
		Clause:    sigv4Clause,
		Mutation:  "kms.sigv4-anonymous-allowed",
		Run: func(t *conformance.T) {
			e.baseline(t, time.Now())
			e.refused(t, "GenerateRandom without Authorization", rawCall{Tamper: func(r *http.Request) { r.Header.Del("Authorization") }},
				"MissingAuthenticationTokenException")
		},
	}, {
		ID:        "KMS-SIG-005",
		Statement: "A request whose X-Amz-Date is more than 15 minutes from the endpoint's clock (20 minutes before or after) fails with InvalidSignatureException",
		Clause:    sigv4Clause,
		Mutation:  "kms.sigv4-clock-skew-unchecked",
		Run: func(t *conformance.T) {
			e.baseline(t, time.Now())
			for _, d := range []time.Duration{-20 * time.Minute, 20 * time.Minute} {
				e.refused(t, "GenerateRandom signed at now"+d.String(), rawCall{At: time.Now().Add(d)}, "InvalidSignatureException")
			}
		},
	}, {
		ID:        "KMS-SIG-006",
		Statement: "A request whose body was changed after signing fails with InvalidSignatureException",
		Clause:    sigv4Clause,
		Mutation:  "kms.sigv4-skip-body-hash",
		Run: func(t *conformance.T) {
			at := time.Now()
			e.baseline(t, at)
			e.refused(t, "GenerateRandom with its body changed after signing",
				rawCall{At: at, Tamper: func(r *http.Request) { setBody(r, []byte(`{"NumberOfBytes":17}`)) }}, "InvalidSignatureException")
		},
	}, {
		ID:        "KMS-SIG-007",
		Statement: "A request whose signed X-Amz-Date header was changed after signing (by one second) fails with InvalidSignatureException",
		Clause:    sigv4Clause,
		Mutation:  "kms.sigv4-date-unbound",
		Run: func(t *conformance.T) {
			at := time.Now().UTC()
			e.baseline(t, at)
			e.refused(t, "GenerateRandom with X-Amz-Date changed after signing", rawCall{At: at, Tamper: func(r *http.Request) {
				r.Header.Set("X-Amz-Date", at.Add(time.Second).Format("20060102T150405Z"))
			}}, "InvalidSignatureException")
		},
	}, {
		ID:        "KMS-SIG-008",
		Statement: "A request whose credential scope names another region than the endpoint's fails with InvalidSignatureException",
		Clause:    sigv4Clause,
		Mutation:  "kms.sigv4-region-unchecked",
		Run: func(t *conformance.T) {
			e.baseline(t, time.Now())
			other := "us-west-2"
			if e.Region == other {
				other = "eu-west-1"
			}
			e.refused(t, "GenerateRandom signed for "+other, rawCall{Region: other}, "InvalidSignatureException")
		},
	}}
}
