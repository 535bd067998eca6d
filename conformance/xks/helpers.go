package xks

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/trentkms/trent/conformance"
)

const (
	principal = "arn:aws:iam::111122223333:user/trent-conformance"
	keyARN    = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
)

var b64 = base64.StdEncoding

// metadata is a requestMetadata for a key operation.
func metadata(op string) map[string]any {
	return map[string]any{
		"awsPrincipalArn": principal,
		"kmsKeyArn":       keyARN,
		"kmsOperation":    op,
		"kmsRequestId":    fmt.Sprintf("trent-conformance-%x", random(8)),
	}
}

func random(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func healthBody() []byte {
	return mustJSON(map[string]any{"requestMetadata": map[string]any{"kmsRequestId": fmt.Sprintf("trent-conformance-%x", random(8)), "kmsOperation": "KmsHealthCheck"}})
}

func metadataBody() []byte {
	md := metadata("DescribeKey")
	return mustJSON(map[string]any{"requestMetadata": md})
}

// encryptBody is an Encrypt body; aad nil leaves it out, cdiv asks for
// the CDIV.
func encryptBody(pt, aad []byte, cdiv bool) map[string]any {
	m := map[string]any{"requestMetadata": metadata("Encrypt"), "plaintext": b64.EncodeToString(pt), "encryptionAlgorithm": "AES_GCM"}
	if aad != nil {
		m["additionalAuthenticatedData"] = b64.EncodeToString(aad)
	}
	if cdiv {
		m["ciphertextDataIntegrityValueAlgorithm"] = "SHA_256"
	}
	return m
}

// sealed is an Encrypt answer, decoded.
type sealed struct {
	ct, meta, iv, tag, cdiv []byte
	hasMeta, hasCDIV        bool
}

// decryptBody is a Decrypt body for s with aad (nil: absent).
func decryptBody(s *sealed, aad []byte) map[string]any {
	m := map[string]any{"requestMetadata": metadata("Decrypt"), "ciphertext": b64.EncodeToString(s.ct), "encryptionAlgorithm": "AES_GCM",
		"initializationVector": b64.EncodeToString(s.iv), "authenticationTag": b64.EncodeToString(s.tag)}
	if aad != nil {
		m["additionalAuthenticatedData"] = b64.EncodeToString(aad)
	}
	if s.hasMeta {
		m["ciphertextMetadata"] = b64.EncodeToString(s.meta)
	}
	return m
}

func keyPath(id, op string) string { return "/keys/" + id + "/" + op }

// served sends c and fails the check unless the answer is 200.
func (e *Env) served(t *conformance.T, what string, c call) *answer {
	a, err := e.do(t.Context(), c)
	t.Require(what, err)
	if a.Status != http.StatusOK {
		t.Mismatch(what, "HTTP 200", a.String())
	}
	return a
}

// refused sends c and fails the check unless the answer has the status
// and errorName.
func (e *Env) refused(t *conformance.T, what string, c call, status int, name string) {
	a, err := e.do(t.Context(), c)
	t.Require(what, err)
	if a.Status != status || a.errorName() != name {
		t.Mismatch(what, fmt.Sprintf("HTTP %d %s", status, name), a.String())
	}
}

// encrypt encrypts pt under key with aad and returns the decoded answer,
// failing the check unless it is 200 with the fields base64-encoded.
func (e *Env) encrypt(t *conformance.T, key string, pt, aad []byte, cdiv bool) *sealed {
	a := e.served(t, "Encrypt", call{Path: keyPath(key, "encrypt"), Body: mustJSON(encryptBody(pt, aad, cdiv))})
	var w map[string]*string
	if err := json.Unmarshal(a.Body, &w); err != nil {
		t.Mismatch("Encrypt answer", "a JSON object of base64 strings", truncate(string(a.Body), 300))
	}
	s := &sealed{}
	for name, dst := range map[string]*[]byte{"ciphertext": &s.ct, "initializationVector": &s.iv, "authenticationTag": &s.tag,
		"ciphertextMetadata": &s.meta, "ciphertextDataIntegrityValue": &s.cdiv} {
		v, ok := w[name]
		if !ok || v == nil {
			continue
		}
		b, err := b64.DecodeString(*v)
		if err != nil {
			t.Mismatch("Encrypt answer: "+name, "base64", *v)
		}
		*dst = b
		switch name {
		case "ciphertextMetadata":
			s.hasMeta = true
		case "ciphertextDataIntegrityValue":
			s.hasCDIV = true
		}
	}
	for name, v := range map[string][]byte{"ciphertext": s.ct, "initializationVector": s.iv, "authenticationTag": s.tag} {
		if v == nil {
			t.Mismatch("Encrypt answer", "a member "+name, truncate(string(a.Body), 300))
		}
	}
	return s
}

// decrypt sends a Decrypt of s and returns the answer.
func (e *Env) decrypt(t *conformance.T, key string, body map[string]any) *answer {
	a, err := e.do(t.Context(), call{Path: keyPath(key, "decrypt"), Body: mustJSON(body)})
	t.Require("Decrypt", err)
	return a
}

// plaintextOf is the plaintext of a 200 Decrypt answer.
func plaintextOf(t *conformance.T, a *answer) []byte {
	var w struct {
		Plaintext *string `json:"plaintext"`
	}
	if err := json.Unmarshal(a.Body, &w); err != nil || w.Plaintext == nil {
		t.Mismatch("Decrypt answer", "a JSON object with plaintext", truncate(string(a.Body), 300))
	}
	pt, err := b64.DecodeString(*w.Plaintext)
	if err != nil {
		t.Mismatch("Decrypt answer: plaintext", "base64", *w.Plaintext)
	}
	return pt
}

// usages reads a GetKeyMetadata answer's keyUsage.
func (e *Env) usages(t *conformance.T, key string) map[string]bool {
	a := e.served(t, "GetKeyMetadata of "+key, call{Path: keyPath(key, "metadata"), Body: metadataBody()})
	var w struct {
		KeyUsage []string `json:"keyUsage"`
	}
	if err := json.Unmarshal(a.Body, &w); err != nil || w.KeyUsage == nil {
		t.Mismatch("GetKeyMetadata answer", "a keyUsage array", truncate(string(a.Body), 300))
	}
	out := map[string]bool{}
	for _, u := range w.KeyUsage {
		out[u] = true
	}
	return out
}
