package xks

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// memBackend is a Backend in memory (crypto/aes), for the handler's
// tests; xks/p11 is the real one.
type memBackend struct {
	mu   sync.Mutex
	keys map[string]memKey
	// block, if set, is received from before every Seal (to hold
	// requests in flight); sealing, if set, is sent to first.
	block   chan struct{}
	sealing chan struct{}
}

type memKey struct {
	aead  cipher.AEAD
	usage []string
}

func newMemBackend(t testing.TB) *memBackend {
	b := &memBackend{keys: map[string]memKey{}}
	for id, usage := range map[string][]string{
		"both": {UsageEncrypt, UsageDecrypt}, "enc-only": {UsageEncrypt}, "dec-only": {UsageDecrypt}, "neither": {},
	} {
		k := make([]byte, 32)
		rand.Read(k)
		blk, err := aes.NewCipher(k)
		require.NoError(t, err)
		aead, err := cipher.NewGCM(blk)
		require.NoError(t, err)
		b.keys[id] = memKey{aead, usage}
	}
	// dec-only and both share material, so that a ciphertext of one is
	// one of the other's.
	b.keys["dec-only"] = memKey{b.keys["both"].aead, []string{UsageDecrypt}}
	return b
}

func (b *memBackend) Health(context.Context) Health {
	return Health{Vendor: "test", Detail: EkmFleetDetail{ID: "mem", Model: "memory", HealthStatus: HealthActive}}
}

func (b *memBackend) Key(_ context.Context, id string) (KeyMetadata, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	k, ok := b.keys[id]
	if !ok {
		return KeyMetadata{}, ErrKeyNotFound
	}
	return KeyMetadata{KeySpec: KeySpecAES256, KeyUsage: k.usage, KeyStatus: StatusEnabled}, nil
}

func (b *memBackend) Seal(_ context.Context, id string, pt, aad []byte) (iv, ct, tag []byte, err error) {
	if b.sealing != nil {
		b.sealing <- struct{}{}
	}
	if b.block != nil {
		<-b.block
	}
	iv = make([]byte, 12)
	rand.Read(iv)
	out := b.keys[id].aead.Seal(nil, iv, pt, aad)
	return iv, out[:len(pt)], out[len(pt):], nil
}

func (b *memBackend) Open(_ context.Context, id string, iv, ct, tag, aad []byte) ([]byte, error) {
	pt, err := b.keys[id].aead.Open(nil, iv, append(append([]byte{}, ct...), tag...), aad)
	if err != nil {
		return nil, ErrInvalidCiphertext
	}
	return pt, nil
}

const (
	testAKID   = "AKIAXKSTESTEXAMPLE22"
	testSecret = "FYtE5EFA5FT0mCc3DrGUe2sti527BitkQ0Zr9MO9fvE"
	testPath   = "/tenant-1/kms/xks/v1"
)

type testProxy struct {
	srv *httptest.Server
	be  *memBackend
	c   *Client
}

func newTestProxy(t *testing.T, mod func(*ServerConfig)) *testProxy {
	be := newMemBackend(t)
	cfg := ServerConfig{URIPath: testPath, Credentials: []Credential{{testAKID, testSecret}}, Backend: be, Vendor: "Trent", Model: "test"}
	if mod != nil {
		mod(&cfg)
	}
	h, err := NewHandler(cfg)
	require.NoError(t, err)
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	c, err := New(Config{Endpoint: srv.URL, URIPath: testPath, AccessKeyID: testAKID, SecretAccessKey: testSecret, Region: "eu-west-1",
		TLS: srv.Client().Transport.(*http.Transport).TLSClientConfig, Timeout: 10 * time.Second})
	require.NoError(t, err)
	return &testProxy{srv, be, c}
}

var md = RequestMetadata{AWSPrincipalARN: "arn:aws:iam::111122223333:user/Alice", KMSKeyARN: "arn:aws:kms:eu-west-1:111122223333:key/k",
	KMSOperation: "Encrypt", KMSRequestID: "4112f4d6-db54-4af4-ae30-c55a22a8dfae"}

func TestHandlerRoundTrip(t *testing.T) {
	p := newTestProxy(t, nil)
	ctx := context.Background()
	h, err := p.c.Health(ctx, RequestMetadata{KMSOperation: "KmsHealthCheck", KMSRequestID: "1"})
	require.NoError(t, err)
	assert.Equal(t, HealthActive, h.EkmFleetDetails[0].HealthStatus)

	m, err := p.c.GetKeyMetadata(ctx, "both", md)
	require.NoError(t, err)
	assert.Equal(t, KeyMetadata{KeySpec: KeySpecAES256, KeyUsage: []string{UsageEncrypt, UsageDecrypt}, KeyStatus: StatusEnabled}, *m)

	aad := []byte("project=nile,department=marketing")
	enc, err := p.c.Encrypt(ctx, "both", EncryptRequest{RequestMetadata: md, Plaintext: []byte("Hello World!"), AdditionalAuthenticatedData: aad,
		CiphertextDataIntegrityValueAlgorithm: CDIVSHA256})
	require.NoError(t, err)
	assert.Len(t, enc.CiphertextDataIntegrityValue, 32)
	dreq := DecryptRequest{RequestMetadata: md, Ciphertext: enc.Ciphertext, AdditionalAuthenticatedData: aad,
		InitializationVector: enc.InitializationVector, AuthenticationTag: enc.AuthenticationTag}
	dec, err := p.c.Decrypt(ctx, "both", dreq)
	require.NoError(t, err)
	assert.Equal(t, "Hello World!", string(dec.Plaintext))

	// The AAD the token saw binds its length: the same bytes as metadata
	// instead of AAD do not decrypt.
	moved := dreq
	moved.AdditionalAuthenticatedData, moved.CiphertextMetadata = nil, aad[:20]
	_, err = p.c.Decrypt(ctx, "both", moved)
	assert.Equal(t, KindInvalidCiphertext, KindOf(err), "%v", err)

	tampered := dreq
	tampered.Ciphertext = append([]byte{}, enc.Ciphertext...)
	tampered.Ciphertext[0] ^= 1
	_, err = p.c.Decrypt(ctx, "both", tampered)
	assert.Equal(t, KindInvalidCiphertext, KindOf(err), "%v", err)

	_, err = p.c.GetKeyMetadata(ctx, "nope", md)
	assert.Equal(t, KindKeyNotFound, KindOf(err), "%v", err)

	// Usages.
	_, err = p.c.Encrypt(ctx, "dec-only", EncryptRequest{RequestMetadata: md, Plaintext: []byte("x")})
	assert.Equal(t, KindInvalidKeyUsage, KindOf(err), "%v", err)
	_, err = p.c.Decrypt(ctx, "enc-only", dreq)
	assert.Equal(t, KindInvalidKeyUsage, KindOf(err), "%v", err)
	dec, err = p.c.Decrypt(ctx, "dec-only", dreq)
	require.NoError(t, err)
	assert.Equal(t, "Hello World!", string(dec.Plaintext))
	_, err = p.c.Encrypt(ctx, "neither", EncryptRequest{RequestMetadata: md, Plaintext: []byte("x")})
	assert.Equal(t, KindInvalidKeyUsage, KindOf(err), "%v", err)
}

func TestHandlerRefusals(t *testing.T) {
	p := newTestProxy(t, nil)
	ctx := context.Background()
	cfg := Config{Endpoint: p.srv.URL, URIPath: testPath, AccessKeyID: testAKID, SecretAccessKey: "wrong" + testSecret, Region: "eu-west-1",
		TLS: p.srv.Client().Transport.(*http.Transport).TLSClientConfig}
	c, err := New(cfg)
	require.NoError(t, err)
	_, err = c.Health(ctx, RequestMetadata{KMSOperation: "KmsHealthCheck", KMSRequestID: "1"})
	assert.Equal(t, KindAuthenticationFailed, KindOf(err), "%v", err)

	cfg.SecretAccessKey, cfg.URIPath = testSecret, "/tenant-2/kms/xks/v1"
	c, err = New(cfg)
	require.NoError(t, err)
	_, err = c.Health(ctx, RequestMetadata{KMSOperation: "KmsHealthCheck", KMSRequestID: "1"})
	assert.Equal(t, KindInvalidURIPath, KindOf(err), "%v", err)

	resp, err := p.srv.Client().Get(p.srv.URL + testPath + "/health")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)

	now := time.Now().UTC()
	for _, tc := range []struct {
		name   string
		path   string
		body   string
		at     time.Time
		status int
		err    string
	}{
		{"stale date", "/keys/both/metadata", `{"requestMetadata":{"awsPrincipalArn":"a","kmsOperation":"o","kmsRequestId":"r"}}`, now.Add(-6 * time.Minute), 401, ErrNameAuthenticationFail},
		{"unknown member", "/keys/both/metadata", `{"requestMetadata":{"awsPrincipalArn":"a","kmsOperation":"o","kmsRequestId":"r"},"x":1}`, now, 400, ErrNameValidation},
		{"case-folded member", "/keys/both/metadata", `{"RequestMetadata":{"awsPrincipalArn":"a","kmsOperation":"o","kmsRequestId":"r"}}`, now, 400, ErrNameValidation},
		{"duplicate member", "/keys/both/metadata", `{"requestMetadata":{"awsPrincipalArn":"a","kmsOperation":"o","kmsOperation":"p","kmsRequestId":"r"}}`, now, 400, ErrNameValidation},
		{"no principal", "/keys/both/metadata", `{"requestMetadata":{"kmsOperation":"o","kmsRequestId":"r"}}`, now, 400, ErrNameValidation},
		{"future metadata member", "/keys/both/metadata", `{"requestMetadata":{"awsPrincipalArn":"a","kmsOperation":"BulkDescribeKey","kmsRequestId":"r","sourceIdentity":"x"}}`, now, 200, ""},
		{"bad key ID", "/keys/a%20b/metadata", `{"requestMetadata":{"awsPrincipalArn":"a","kmsOperation":"o","kmsRequestId":"r"}}`, now, 400, ErrNameValidation},
		{"bad algorithm", "/keys/both/encrypt", `{"requestMetadata":{"awsPrincipalArn":"a","kmsKeyArn":"k","kmsOperation":"o","kmsRequestId":"r"},"plaintext":"AA==","encryptionAlgorithm":"AES_CBC"}`, now, 400, ErrNameValidation},
		{"bad base64", "/keys/both/encrypt", `{"requestMetadata":{"awsPrincipalArn":"a","kmsKeyArn":"k","kmsOperation":"o","kmsRequestId":"r"},"plaintext":"AA=\n=","encryptionAlgorithm":"AES_GCM"}`, now, 400, ErrNameValidation},
		{"short tag", "/keys/both/decrypt", `{"requestMetadata":{"awsPrincipalArn":"a","kmsKeyArn":"k","kmsOperation":"o","kmsRequestId":"r"},"ciphertext":"AA==","encryptionAlgorithm":"AES_GCM","initializationVector":"AAAAAAAAAAAAAAAA","authenticationTag":"AAAA"}`, now, 400, ErrNameValidation},
		{"plaintext above the limit", "/keys/both/encrypt", `{"requestMetadata":{"awsPrincipalArn":"a","kmsKeyArn":"k","kmsOperation":"o","kmsRequestId":"r"},"plaintext":"` + strings.Repeat("A", 4*(MaxDataSize/3+1)) + `","encryptionAlgorithm":"AES_GCM"}`, now, 501, ErrNameUnsupported},
		{"16-byte IV", "/keys/both/decrypt", `{"requestMetadata":{"awsPrincipalArn":"a","kmsKeyArn":"k","kmsOperation":"o","kmsRequestId":"r"},"ciphertext":"AA==","encryptionAlgorithm":"AES_GCM","initializationVector":"AAAAAAAAAAAAAAAAAAAAAA==","authenticationTag":"AAAAAAAAAAAAAAAAAAAAAA=="}`, now, 400, ErrNameInvalidCiphertext},
		{"bad path", "/keys/both/sign", `{}`, now, 404, ErrNameInvalidURIPath},
		{"escaped base64", "/keys/both/encrypt", `{"requestMetadata":{"awsPrincipalArn":"a","kmsKeyArn":"k","kmsOperation":"o","kmsRequestId":"r"},"plaintext":"\/w==","encryptionAlgorithm":"AES_GCM"}`, now, 200, ""},
		{"plaintext null", "/keys/both/encrypt", `{"requestMetadata":{"awsPrincipalArn":"a","kmsKeyArn":"k","kmsOperation":"o","kmsRequestId":"r"},"plaintext":null,"encryptionAlgorithm":"AES_GCM"}`, now, 400, ErrNameValidation},
		{"plaintext a number", "/keys/both/encrypt", `{"requestMetadata":{"awsPrincipalArn":"a","kmsKeyArn":"k","kmsOperation":"o","kmsRequestId":"r"},"plaintext":12,"encryptionAlgorithm":"AES_GCM"}`, now, 400, ErrNameValidation},
	} {
		status, name := rawCall(t, p.srv, testPath+tc.path, tc.body, testSecret, tc.at)
		assert.Equal(t, tc.status, status, tc.name)
		assert.Equal(t, tc.err, name, tc.name)
	}
}

// rawCall posts body to path signed at at, and returns the status and
// errorName.
func rawCall(t *testing.T, srv *httptest.Server, path, body, secret string, at time.Time) (int, string) {
	req, err := http.NewRequest(http.MethodPost, srv.URL+path, bytes.NewReader([]byte(body)))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256([]byte(body))
	require.NoError(t, v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: secret}, req,
		hex.EncodeToString(sum[:]), SigV4ServiceName, "us-east-1", at))
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var e ErrorBody
	_ = json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, e.ErrorName
}

func TestHandlerThrottles(t *testing.T) {
	p := newTestProxy(t, func(c *ServerConfig) { c.MaxInFlight = 1 })
	p.be.block, p.be.sealing = make(chan struct{}), make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		_, err := p.c.Encrypt(context.Background(), "both", EncryptRequest{RequestMetadata: md, Plaintext: []byte("x")})
		done <- err
	}()
	<-p.be.sealing // the Encrypt is in flight, held in the backend
	_, err := p.c.GetKeyMetadata(context.Background(), "both", md)
	assert.Equal(t, KindThrottled, KindOf(err), "%v", err)
	close(p.be.block)
	require.NoError(t, <-done)
}

func TestHandlerTwoCredentials(t *testing.T) {
	p := newTestProxy(t, func(c *ServerConfig) {
		c.Credentials = append(c.Credentials, Credential{"AKIAXKSTESTEXAMPLE33", "another-secret"})
		c.Region = "eu-west-1"
	})
	_, err := p.c.Health(context.Background(), RequestMetadata{KMSOperation: "KmsHealthCheck", KMSRequestID: "1"})
	require.NoError(t, err)
	c, err := New(Config{Endpoint: p.srv.URL, URIPath: testPath, AccessKeyID: "AKIAXKSTESTEXAMPLE33", SecretAccessKey: "another-secret", Region: "eu-west-1",
		TLS: p.srv.Client().Transport.(*http.Transport).TLSClientConfig})
	require.NoError(t, err)
	_, err = c.Health(context.Background(), RequestMetadata{KMSOperation: "KmsHealthCheck", KMSRequestID: "1"})
	require.NoError(t, err)
	// The region is enforced when configured.
	c, err = New(Config{Endpoint: p.srv.URL, URIPath: testPath, AccessKeyID: testAKID, SecretAccessKey: testSecret, Region: "us-west-2",
		TLS: p.srv.Client().Transport.(*http.Transport).TLSClientConfig})
	require.NoError(t, err)
	_, err = c.Health(context.Background(), RequestMetadata{KMSOperation: "KmsHealthCheck", KMSRequestID: "1"})
	assert.Equal(t, KindAuthenticationFailed, KindOf(err), "%v", err)
}

// The request decoder never panics, and what it accepts is within the
// limits and re-encodes to a body it accepts again with the same values.
func FuzzDecodeRequest(f *testing.F) {
	f.Add(1, []byte(`{"requestMetadata":{"kmsOperation":"KmsHealthCheck","kmsRequestId":"1"}}`))
	f.Add(2, []byte(`{"requestMetadata":{"awsPrincipalArn":"a","kmsOperation":"o","kmsRequestId":"r","x":[1,{"y":2}]}}`))
	f.Add(3, []byte(`{"requestMetadata":{"awsPrincipalArn":"a","kmsKeyArn":"k","kmsOperation":"o","kmsRequestId":"r"},"plaintext":"SGVsbG8=","encryptionAlgorithm":"AES_GCM","additionalAuthenticatedData":"","ciphertextDataIntegrityValueAlgorithm":"SHA_256"}`))
	f.Add(4, []byte(`{"requestMetadata":{"awsPrincipalArn":"a","kmsKeyArn":"k","kmsOperation":"o","kmsRequestId":"r"},"ciphertext":"AA==","ciphertextMetadata":"AQ==","encryptionAlgorithm":"AES_GCM","initializationVector":"AAAAAAAAAAAAAAAA","authenticationTag":"AAAAAAAAAAAAAAAAAAAAAA=="}`))
	f.Fuzz(func(t *testing.T, opn int, body []byte) {
		op := operation(1 + (opn%4+4)%4)
		req, err := decodeRequest(op, body)
		if err != nil {
			return
		}
		if len(req.plaintext) > MaxDataSize || len(req.ciphertext) > MaxDataSize || len(req.aad) > MaxAADSize || len(req.meta) > MaxCiphertextMeta {
			t.Fatalf("accepted an input above the limits")
		}
		// Every metadata member, empty or not, so that the values
		// come back as they were (RequestMetadata's omitempty would drop
		// an empty required one).
		m := map[string]any{"requestMetadata": map[string]string{
			"awsPrincipalArn": req.md.AWSPrincipalARN, "awsSourceVpc": req.md.AWSSourceVPC, "awsSourceVpce": req.md.AWSSourceVPCE,
			"kmsKeyArn": req.md.KMSKeyARN, "kmsOperation": req.md.KMSOperation, "kmsRequestId": req.md.KMSRequestID, "kmsViaService": req.md.KMSViaService,
		}}
		b64 := base64.StdEncoding.EncodeToString
		switch op {
		case opEncrypt:
			m["plaintext"], m["encryptionAlgorithm"] = b64(req.plaintext), AlgorithmAESGCM
			if req.aad != nil {
				m["additionalAuthenticatedData"] = b64(req.aad)
			}
			if req.cdiv {
				m["ciphertextDataIntegrityValueAlgorithm"] = CDIVSHA256
			}
		case opDecrypt:
			m["ciphertext"], m["encryptionAlgorithm"] = b64(req.ciphertext), AlgorithmAESGCM
			m["initializationVector"], m["authenticationTag"] = b64(req.iv), b64(req.tag)
			if req.aad != nil {
				m["additionalAuthenticatedData"] = b64(req.aad)
			}
			if req.meta != nil {
				m["ciphertextMetadata"] = b64(req.meta)
			}
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		req2, err := decodeRequest(op, b)
		if err != nil {
			t.Fatalf("re-encoded request refused: %v: %s", err, b)
		}
		if req2.md != req.md || !bytes.Equal(req2.plaintext, req.plaintext) || !bytes.Equal(req2.ciphertext, req.ciphertext) ||
			!bytes.Equal(req2.aad, req.aad) || !bytes.Equal(req2.meta, req.meta) || (req2.aad == nil) != (req.aad == nil) || !bytes.Equal(req2.iv, req.iv) || !bytes.Equal(req2.tag, req.tag) || req2.cdiv != req.cdiv {
			t.Fatalf("round trip changed the request: %s", b)
		}
	})
}

func TestCredentials(t *testing.T) {
	c1, err := NewCredential()
	require.NoError(t, err)
	c2, err := NewCredential()
	require.NoError(t, err)
	assert.True(t, c1.Valid(), "%+v", c1)
	assert.NotEqual(t, c1, c2)
	got, err := ParseCredentials(MarshalCredentials([]Credential{c1, c2}))
	require.NoError(t, err)
	assert.Equal(t, []Credential{c1, c2}, got)
	for _, bad := range []string{`[]`, `{}`, `[{"AccessKeyId":"short","RawSecretAccessKey":"` + c1.SecretAccessKey + `"}]`,
		`[{"AccessKeyId":"` + c1.AccessKeyID + `","RawSecretAccessKey":"` + c1.SecretAccessKey + `","x":1}]`,
		string(MarshalCredentials([]Credential{c1, c1}))} {
		_, err := ParseCredentials([]byte(bad))
		assert.Error(t, err, bad)
	}
}

// A rotation: the new credential works at once, the old one stops.
func TestHandlerSetCredentials(t *testing.T) {
	be := newMemBackend(t)
	h, err := NewHandler(ServerConfig{URIPath: testPath, Credentials: []Credential{{testAKID, testSecret}}, Backend: be})
	require.NoError(t, err)
	srv := httptest.NewTLSServer(h)
	defer srv.Close()
	body := `{"requestMetadata":{"kmsOperation":"KmsHealthCheck","kmsRequestId":"r"}}`
	status, _ := rawCall(t, srv, testPath+"/health", body, testSecret, time.Now())
	assert.Equal(t, 200, status)
	require.NoError(t, h.SetCredentials([]Credential{{testAKID, "rotated"}}))
	status, _ = rawCall(t, srv, testPath+"/health", body, testSecret, time.Now())
	assert.Equal(t, 401, status)
	status, _ = rawCall(t, srv, testPath+"/health", body, "rotated", time.Now())
	assert.Equal(t, 200, status)
	assert.Error(t, h.SetCredentials(nil))
}

// verifySigV4 trims signed header values for the canonical request
// without rewriting the request's own headers.
func TestVerifySigV4LeavesHeaders(t *testing.T) {
	body := []byte(`{}`)
	r := httptest.NewRequest(http.MethodPost, "https://xks.example"+testPath+"/keys/k/metadata", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-Test", "  a   b  ")
	sum := sha256.Sum256(body)
	now := time.Now().UTC()
	require.NoError(t, v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret},
		r, hex.EncodeToString(sum[:]), SigV4ServiceName, "eu-west-1", now))
	require.Contains(t, r.Header.Get("Authorization"), "x-test")
	akid, err := verifySigV4(r, body, []Credential{{testAKID, testSecret}}, "eu-west-1", now)
	require.NoError(t, err)
	assert.Equal(t, testAKID, akid)
	assert.Equal(t, "  a   b  ", r.Header.Get("X-Test"))
}
