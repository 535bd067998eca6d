package xks

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/trentkms/trent/conformance"
)

// Suite is the suite's name in reports.
const Suite = "xks"

// Catalogue is the suite's checks, for listing: their run functions must
// not be called (they need an Env's).
func Catalogue() []conformance.Check { return (&Env{}).Checks() }

// The specification's sections.
const (
	spec          = "aws/aws-kms-xksproxy-api-spec xks_proxy_api_spec.md"
	clauseHealth  = spec + "#gethealthstatus"
	clauseMeta    = spec + "#getkeymetadata"
	clauseEncrypt = spec + "#encrypt"
	clauseDecrypt = spec + "#decrypt"
	clauseErrors  = spec + "#error-codes"
	clauseOps     = spec + "#api-operations"
	clauseSigV4   = spec + "#appendix-a-using-sigv4-to-sign-xks-proxy-requests"
	clauseMD      = spec + "#appendix-b-requestmetadata-fields"
	clauseCDIV    = spec + "#appendix-c-ciphertext-data-integrity-value-cdiv-implementation-guidelines"
)

// Checks is the suite's checks against e, in catalogue order.
func (e *Env) Checks() []conformance.Check {
	return []conformance.Check{
		{ID: "XKS-HLT-001", Statement: "GetHealthStatus answers 200 with a fleet size above zero, the vendor and model strings, and 1 to 10 ekmFleetDetails each with an id, a model and a healthStatus of ACTIVE, DEGRADED or UNAVAILABLE",
			Clause: clauseHealth, Run: e.checkHealth, Mutation: "xks.health-no-fleet"},
		{ID: "XKS-MET-001", Statement: "GetKeyMetadata of a key allowing encrypt and decrypt answers keySpec AES_256, a keyUsage of at most 10 values including ENCRYPT and DECRYPT, and keyStatus ENABLED",
			Clause: clauseMeta, Run: e.checkMetadata, Mutation: "xks.metadata-keyspec"},
		{ID: "XKS-MET-002", Statement: "GetKeyMetadata, Encrypt and Decrypt of an unknown external key answer 404 KeyNotFoundException",
			Clause: clauseErrors, Run: e.checkUnknownKey, Mutation: "xks.key-not-found-validation"},
		{ID: "XKS-CRY-001", Statement: "Encrypt answers a 12- or 16-byte IV, a 16-byte tag and a ciphertext as long as the plaintext, and Decrypt of them with the same AAD returns the plaintext",
			Clause: clauseEncrypt, Run: e.checkRoundTrip, Mutation: "xks.decrypt-plaintext-truncated"},
		{ID: "XKS-CRY-002", Statement: "Decrypt with additional authenticated data other than the Encrypt's, or without it, answers 400 InvalidCiphertextException",
			Clause: clauseDecrypt, Run: e.checkAADBound, Mutation: "xks.aad-ignored"},
		{ID: "XKS-CRY-003", Statement: "Decrypt with a ciphertextMetadata the Encrypt did not answer (the AAD's bytes moved there) answers 400 InvalidCiphertextException",
			Clause: clauseEncrypt, Run: e.checkMetadataBound, Mutation: "xks.aad-naive-concatenation"},
		{ID: "XKS-CRY-004", Statement: "Decrypt of a ciphertext, tag or IV changed in one bit answers 400 InvalidCiphertextException",
			Clause: clauseDecrypt, Run: e.checkTampered, Mutation: "xks.decrypt-cached-by-iv"},
		{ID: "XKS-CRY-005", Statement: "Encrypt with ciphertextDataIntegrityValueAlgorithm SHA_256 answers the SHA-256 of AAD ‖ ciphertextMetadata ‖ IV ‖ ciphertext ‖ tag as ciphertextDataIntegrityValue",
			Clause: clauseCDIV, Run: e.checkCDIV, Mutation: "xks.cdiv-without-aad"},
		{ID: "XKS-CRY-006", Statement: "Encrypt and Decrypt take 4300 bytes of plaintext with 8192 bytes of AAD",
			Clause: clauseEncrypt, Run: e.checkSizes, Mutation: "xks.plaintext-limit-4096"},
		{ID: "XKS-USE-001", Statement: "A key allowing only encrypt lists only ENCRYPT of the two, encrypts, and answers Decrypt with 400 InvalidKeyUsageException",
			Clause: clauseErrors, Needs: []conformance.Capability{CapEncryptOnly}, Run: e.checkEncryptOnly, Mutation: "xks.decrypt-usage-misnamed"},
		{ID: "XKS-USE-002", Statement: "A key allowing only decrypt lists only DECRYPT of the two, answers Encrypt with 400 InvalidKeyUsageException, and takes a Decrypt (a bad ciphertext is InvalidCiphertextException)",
			Clause: clauseErrors, Needs: []conformance.Capability{CapDecryptOnly}, Run: e.checkDecryptOnly, Mutation: "xks.encrypt-usage-misnamed"},
		{ID: "XKS-USE-003", Statement: "A key allowing neither lists neither ENCRYPT nor DECRYPT and answers both with 400 InvalidKeyUsageException",
			Clause: clauseErrors, Needs: []conformance.Capability{CapNoUsage}, Run: e.checkNoUsage, Mutation: "xks.no-usage-misnamed"},
		{ID: "XKS-SIG-001", Statement: "A request signed with another secret answers 401 AuthenticationFailedException",
			Clause: clauseSigV4, Run: e.checkWrongSecret, Mutation: "xks.sigv4-signature-unchecked"},
		{ID: "XKS-SIG-002", Statement: "A request signed with an access key ID the proxy does not know answers 401 AuthenticationFailedException",
			Clause: clauseSigV4, Run: e.checkUnknownAKID, Mutation: "xks.sigv4-unknown-key-denied"},
		{ID: "XKS-SIG-003", Statement: "A request whose X-Amz-Date is 6 minutes old (beyond the 5 minutes allowed) answers 401 AuthenticationFailedException",
			Clause: clauseSigV4, Run: e.checkStale, Mutation: "xks.sigv4-skew-15min"},
		{ID: "XKS-SIG-004", Statement: "A request signed for a service other than kms-xks-proxy answers 401 AuthenticationFailedException",
			Clause: clauseSigV4, Run: e.checkService, Mutation: "xks.sigv4-service-unchecked"},
		{ID: "XKS-SIG-005", Statement: "A body changed after signing (its X-Amz-Content-Sha256 header left as signed) answers 401 AuthenticationFailedException",
			Clause: clauseSigV4, Run: e.checkBodyTampered, Mutation: "xks.sigv4-payload-from-header"},
		{ID: "XKS-URI-001", Statement: "A request under another path prefix, or for an operation the API does not have, answers 404 InvalidUriPathException",
			Clause: clauseOps, Run: e.checkURIPath, Mutation: "xks.uri-prefix-ignored"},
		{ID: "XKS-URI-002", Statement: "A GET at an operation's URI answers 405 Method Not Allowed",
			Clause: clauseOps, Run: e.checkGET, Mutation: "xks.get-served"},
		{ID: "XKS-VAL-001", Statement: "Encrypt with an encryptionAlgorithm other than AES_GCM, a plaintext that is not base64 or no requestMetadata answers 400 ValidationException",
			Clause: clauseErrors, Run: e.checkValidation, Mutation: "xks.algorithm-unchecked"},
		{ID: "XKS-VAL-002", Statement: "A requestMetadata with members this version does not list and a kmsOperation it does not name is served",
			Clause: clauseMD, Run: e.checkFutureMetadata, Mutation: "xks.metadata-unknown-refused"},
	}
}

func (e *Env) checkHealth(t *conformance.T) {
	a := e.served(t, "GetHealthStatus", call{Path: "/health", Body: healthBody()})
	var w struct {
		FleetSize *int    `json:"xksProxyFleetSize"`
		Vendor    *string `json:"xksProxyVendor"`
		Model     *string `json:"xksProxyModel"`
		EkmVendor *string `json:"ekmVendor"`
		Details   []struct {
			ID, Model, HealthStatus *string
		} `json:"ekmFleetDetails"`
	}
	if err := json.Unmarshal(a.Body, &w); err != nil {
		t.Mismatch("GetHealthStatus answer", "a JSON object", truncate(string(a.Body), 300))
	}
	if w.FleetSize == nil || *w.FleetSize < 1 {
		t.Mismatch("xksProxyFleetSize", "an integer above zero", truncate(string(a.Body), 300))
	}
	if w.Vendor == nil || w.Model == nil || w.EkmVendor == nil {
		t.Mismatch("xksProxyVendor, xksProxyModel, ekmVendor", "all present", truncate(string(a.Body), 300))
	}
	if len(w.Details) < 1 || len(w.Details) > 10 {
		t.Mismatch("ekmFleetDetails", "1 to 10 entries", len(w.Details))
	}
	for i, d := range w.Details {
		if d.ID == nil || d.Model == nil || d.HealthStatus == nil {
			t.Mismatch(fmt.Sprintf("ekmFleetDetails[%d]", i), "id, model and healthStatus", truncate(string(a.Body), 300))
		}
		if !slices.Contains([]string{"ACTIVE", "DEGRADED", "UNAVAILABLE"}, *d.HealthStatus) {
			t.Mismatch(fmt.Sprintf("ekmFleetDetails[%d].healthStatus", i), "ACTIVE, DEGRADED or UNAVAILABLE", *d.HealthStatus)
		}
	}
}

func (e *Env) checkMetadata(t *conformance.T) {
	a := e.served(t, "GetKeyMetadata", call{Path: keyPath(e.cfg.KeyID, "metadata"), Body: metadataBody()})
	var w struct {
		KeySpec   *string  `json:"keySpec"`
		KeyUsage  []string `json:"keyUsage"`
		KeyStatus *string  `json:"keyStatus"`
	}
	if err := json.Unmarshal(a.Body, &w); err != nil || w.KeySpec == nil || w.KeyStatus == nil {
		t.Mismatch("GetKeyMetadata answer", "keySpec, keyUsage, keyStatus", truncate(string(a.Body), 300))
	}
	conformance.Equal(t, "keySpec", "AES_256", *w.KeySpec)
	if len(w.KeyUsage) > 10 || !slices.Contains(w.KeyUsage, "ENCRYPT") || !slices.Contains(w.KeyUsage, "DECRYPT") {
		t.Mismatch("keyUsage", "at most 10 values, ENCRYPT and DECRYPT among them", w.KeyUsage)
	}
	conformance.Equal(t, "keyStatus", "ENABLED", *w.KeyStatus)
}

func (e *Env) checkUnknownKey(t *conformance.T) {
	id := fmt.Sprintf("trent-conformance-absent-%x", random(8))
	e.refused(t, "GetKeyMetadata of an unknown key", call{Path: keyPath(id, "metadata"), Body: metadataBody()}, 404, "KeyNotFoundException")
	e.refused(t, "Encrypt with an unknown key", call{Path: keyPath(id, "encrypt"), Body: mustJSON(encryptBody([]byte("x"), nil, false))}, 404, "KeyNotFoundException")
	s := e.encrypt(t, e.cfg.KeyID, []byte("x"), nil, false)
	e.refused(t, "Decrypt with an unknown key", call{Path: keyPath(id, "decrypt"), Body: mustJSON(decryptBody(s, nil))}, 404, "KeyNotFoundException")
}

func (e *Env) checkRoundTrip(t *conformance.T) {
	pt := []byte("Hello World! (trent conformance)")
	aad := []byte("project=nile,department=marketing")
	s := e.encrypt(t, e.cfg.KeyID, pt, aad, false)
	if n := len(s.iv); n != 12 && n != 16 {
		t.Mismatch("initializationVector", "12 or 16 bytes", n)
	}
	conformance.Equal(t, "authenticationTag length", 16, len(s.tag))
	conformance.Equal(t, "ciphertext length", len(pt), len(s.ct))
	if s.hasMeta && len(s.meta) > 20 {
		t.Mismatch("ciphertextMetadata", "at most 20 bytes", len(s.meta))
	}
	a := e.decrypt(t, e.cfg.KeyID, decryptBody(s, aad))
	if a.Status != http.StatusOK {
		t.Mismatch("Decrypt", "HTTP 200", a.String())
	}
	if got := plaintextOf(t, a); !bytes.Equal(got, pt) {
		t.Mismatch("Decrypt's plaintext", fmt.Sprintf("%q", pt), fmt.Sprintf("%q", got))
	}
}

// twin decrypts s with aad and requires 200 (the baseline of a refusal).
func (e *Env) twin(t *conformance.T, key string, s *sealed, aad []byte) {
	a := e.decrypt(t, key, decryptBody(s, aad))
	if a.Status != http.StatusOK {
		t.Mismatch("the untampered Decrypt (the check's baseline)", "HTTP 200", a.String())
	}
}

func (e *Env) checkAADBound(t *conformance.T) {
	aad := []byte("context=a")
	s := e.encrypt(t, e.cfg.KeyID, []byte("bound to its AAD"), aad, false)
	e.twin(t, e.cfg.KeyID, s, aad)
	for what, other := range map[string][]byte{"another AAD": []byte("context=b"), "no AAD": nil} {
		a := e.decrypt(t, e.cfg.KeyID, decryptBody(s, other))
		if a.Status != 400 || a.errorName() != "InvalidCiphertextException" {
			t.Mismatch("Decrypt with "+what, "HTTP 400 InvalidCiphertextException", a.String())
		}
	}
}

func (e *Env) checkMetadataBound(t *conformance.T) {
	aad := []byte("key_version=1")
	s := e.encrypt(t, e.cfg.KeyID, []byte("metadata is authenticated"), aad, false)
	e.twin(t, e.cfg.KeyID, s, aad)
	moved := *s
	moved.meta, moved.hasMeta = append(append([]byte{}, s.meta...), aad...), true
	a := e.decrypt(t, e.cfg.KeyID, decryptBody(&moved, nil))
	if a.Status != 400 || a.errorName() != "InvalidCiphertextException" {
		t.Mismatch("Decrypt with the AAD moved into ciphertextMetadata", "HTTP 400 InvalidCiphertextException", a.String())
	}
}

func (e *Env) checkTampered(t *conformance.T) {
	aad := []byte("tamper")
	s := e.encrypt(t, e.cfg.KeyID, []byte("sixteen bytes!!!"), aad, false)
	e.twin(t, e.cfg.KeyID, s, aad)
	for _, field := range []string{"ciphertext", "authenticationTag", "initializationVector"} {
		bad := *s
		flip := func(b []byte) []byte {
			b = append([]byte{}, b...)
			b[len(b)-1] ^= 1
			return b
		}
		switch field {
		case "ciphertext":
			bad.ct = flip(s.ct)
		case "authenticationTag":
			bad.tag = flip(s.tag)
		case "initializationVector":
			bad.iv = flip(s.iv)
		}
		a := e.decrypt(t, e.cfg.KeyID, decryptBody(&bad, aad))
		if a.Status != 400 || a.errorName() != "InvalidCiphertextException" {
			t.Mismatch("Decrypt with the "+field+" changed", "HTTP 400 InvalidCiphertextException", a.String())
		}
	}
}

func (e *Env) checkCDIV(t *conformance.T) {
	aad := []byte("cdiv context")
	s := e.encrypt(t, e.cfg.KeyID, []byte("integrity"), aad, true)
	if !s.hasCDIV {
		t.Mismatch("Encrypt answer", "a ciphertextDataIntegrityValue", "none")
	}
	h := sha256.New()
	for _, b := range [][]byte{aad, s.meta, s.iv, s.ct, s.tag} {
		h.Write(b)
	}
	if want := h.Sum(nil); !bytes.Equal(want, s.cdiv) {
		t.Mismatch("ciphertextDataIntegrityValue", b64.EncodeToString(want), b64.EncodeToString(s.cdiv))
	}
}

func (e *Env) checkSizes(t *conformance.T) {
	pt, aad := random(4300), random(8192)
	s := e.encrypt(t, e.cfg.KeyID, pt, aad, false)
	// Served is the statement; XKS-CRY-001 checks what comes back.
	a := e.decrypt(t, e.cfg.KeyID, decryptBody(s, aad))
	if a.Status != http.StatusOK {
		t.Mismatch("Decrypt of 4300 bytes with 8192 of AAD", "HTTP 200", truncate(a.String(), 100))
	}
}

// listsOnly fails the check unless key's usages include want and not
// without.
func (e *Env) listsOnly(t *conformance.T, key string, want []string, without []string) {
	u := e.usages(t, key)
	for _, w := range want {
		if !u[w] {
			t.Mismatch("keyUsage of "+key, "includes "+w, fmt.Sprint(u))
		}
	}
	for _, w := range without {
		if u[w] {
			t.Mismatch("keyUsage of "+key, "without "+w, fmt.Sprint(u))
		}
	}
}

func (e *Env) checkEncryptOnly(t *conformance.T) {
	key := e.cfg.EncryptOnlyKeyID
	e.listsOnly(t, key, []string{"ENCRYPT"}, []string{"DECRYPT"})
	s := e.encrypt(t, key, []byte("one way"), nil, false)
	e.refused(t, "Decrypt with an encrypt-only key", call{Path: keyPath(key, "decrypt"), Body: mustJSON(decryptBody(s, nil))}, 400, "InvalidKeyUsageException")
}

func (e *Env) checkDecryptOnly(t *conformance.T) {
	key := e.cfg.DecryptOnlyKeyID
	e.listsOnly(t, key, []string{"DECRYPT"}, []string{"ENCRYPT"})
	e.refused(t, "Encrypt with a decrypt-only key", call{Path: keyPath(key, "encrypt"), Body: mustJSON(encryptBody([]byte("x"), nil, false))}, 400, "InvalidKeyUsageException")
	// Its decrypt is allowed: a ciphertext of another key fails as a
	// ciphertext, not as a usage.
	s := e.encrypt(t, e.cfg.KeyID, []byte("not its ciphertext"), nil, false)
	e.refused(t, "Decrypt with a decrypt-only key", call{Path: keyPath(key, "decrypt"), Body: mustJSON(decryptBody(s, nil))}, 400, "InvalidCiphertextException")
}

func (e *Env) checkNoUsage(t *conformance.T) {
	key := e.cfg.NoUsageKeyID
	e.listsOnly(t, key, nil, []string{"ENCRYPT", "DECRYPT"})
	e.refused(t, "Encrypt with a key without usages", call{Path: keyPath(key, "encrypt"), Body: mustJSON(encryptBody([]byte("x"), nil, false))}, 400, "InvalidKeyUsageException")
	s := e.encrypt(t, e.cfg.KeyID, []byte("x"), nil, false)
	e.refused(t, "Decrypt with a key without usages", call{Path: keyPath(key, "decrypt"), Body: mustJSON(decryptBody(s, nil))}, 400, "InvalidKeyUsageException")
}

// sigBaseline sends the untampered metadata request signed at at.
func (e *Env) sigBaseline(t *conformance.T, at time.Time) call {
	c := call{Path: keyPath(e.cfg.KeyID, "metadata"), Body: metadataBody(), At: at}
	e.served(t, "the untampered signed GetKeyMetadata (the check's baseline)", c)
	return c
}

func (e *Env) checkWrongSecret(t *conformance.T) {
	c := e.sigBaseline(t, time.Now())
	c.Secret = "x" + e.cfg.SecretAccessKey[1:]
	if c.Secret == e.cfg.SecretAccessKey {
		c.Secret = "y" + e.cfg.SecretAccessKey[1:]
	}
	e.refused(t, "a request signed with another secret", c, 401, "AuthenticationFailedException")
}

func (e *Env) checkUnknownAKID(t *conformance.T) {
	c := e.sigBaseline(t, time.Now())
	c.AKID = "TRENTCONFORMANCEUNKNOWN2"
	e.refused(t, "a request signed with an unknown access key ID", c, 401, "AuthenticationFailedException")
}

func (e *Env) checkStale(t *conformance.T) {
	at := time.Now().Add(-6 * time.Minute)
	e.sigBaseline(t, time.Now().Add(-4*time.Minute))
	c := call{Path: keyPath(e.cfg.KeyID, "metadata"), Body: metadataBody(), At: at}
	e.refused(t, "a request signed 6 minutes ago", c, 401, "AuthenticationFailedException")
}

func (e *Env) checkService(t *conformance.T) {
	c := e.sigBaseline(t, time.Now())
	c.Service = "kms"
	e.refused(t, "a request signed for the service kms", c, 401, "AuthenticationFailedException")
}

func (e *Env) checkBodyTampered(t *conformance.T) {
	c := e.sigBaseline(t, time.Now())
	sum := sha256.Sum256(c.Body)
	hash := fmt.Sprintf("%x", sum)
	c.BeforeSign = func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", hash) }
	e.served(t, "the untampered request with its X-Amz-Content-Sha256", c)
	// Same length, so that a signed Content-Length still holds.
	other := bytes.Replace(c.Body, []byte("DescribeKey"), []byte("DescribeKeY"), 1)
	c.AfterSign = func(r *http.Request) {
		r.Body = nopCloser{bytes.NewReader(other)}
		r.ContentLength = int64(len(other))
	}
	e.refused(t, "a request whose body changed after signing", c, 401, "AuthenticationFailedException")
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

func (e *Env) checkURIPath(t *conformance.T) {
	e.served(t, "GetHealthStatus (the check's baseline)", call{Path: "/health", Body: healthBody()})
	e.refused(t, "GetHealthStatus under another prefix", call{FullPath: "/trent-conformance-other" + e.cfg.URIPath + "/health", Body: healthBody()}, 404, "InvalidUriPathException")
	e.refused(t, "an operation the API does not have", call{Path: keyPath(e.cfg.KeyID, "sign"), Body: metadataBody()}, 404, "InvalidUriPathException")
}

func (e *Env) checkGET(t *conformance.T) {
	for _, p := range []string{"/health", keyPath(e.cfg.KeyID, "metadata")} {
		a, err := e.do(t.Context(), call{Method: http.MethodGet, Path: p, Body: nil})
		t.Require("GET "+p, err)
		conformance.Equal(t, "GET "+p+": status", 405, a.Status)
	}
}

func (e *Env) checkValidation(t *conformance.T) {
	enc := keyPath(e.cfg.KeyID, "encrypt")
	e.served(t, "Encrypt (the check's baseline)", call{Path: enc, Body: mustJSON(encryptBody([]byte("x"), nil, false))})
	bad := map[string]func(m map[string]any){
		"encryptionAlgorithm AES_CBC": func(m map[string]any) { m["encryptionAlgorithm"] = "AES_CBC" },
		"plaintext not base64":        func(m map[string]any) { m["plaintext"] = "not base64!" },
		"no requestMetadata":          func(m map[string]any) { delete(m, "requestMetadata") },
	}
	// (An unknown member is not among them: the specification does not
	// say a proxy must refuse one. Trent's does.)
	for _, what := range []string{"encryptionAlgorithm AES_CBC", "plaintext not base64", "no requestMetadata"} {
		m := encryptBody([]byte("x"), nil, false)
		bad[what](m)
		e.refused(t, "Encrypt with "+what, call{Path: enc, Body: mustJSON(m)}, 400, "ValidationException")
	}
}

func (e *Env) checkFutureMetadata(t *conformance.T) {
	md := metadata("BulkDescribeKey")
	md["sourceIdentity"] = "trent-conformance"
	md["kmsRecipientAttestationImageSha384"] = strings.Repeat("0", 96)
	e.served(t, "GetKeyMetadata with future requestMetadata members", call{Path: keyPath(e.cfg.KeyID, "metadata"), Body: mustJSON(map[string]any{"requestMetadata": md})})
}
