package xks

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The specification's Appendix C example: 33 bytes of AAD, 13 of
// ciphertext metadata, the IV, ciphertext and tag of the Encrypt response
// example, and its CDIV.
func TestCDIVSpecExample(t *testing.T) {
	b := func(s string) []byte {
		v, err := base64.StdEncoding.DecodeString(s)
		require.NoError(t, err)
		return v
	}
	got := CDIV([]byte("project=nile,department=marketing"), b("a2V5X3ZlcnNpb249MQ=="),
		b("HMrlRw85cAJUd5Ax"), b("ghxkK1txeDNn3q8Y"), b("vBxN2ncH1oEkR8WVXpmyYQ=="))
	assert.Equal(t, "qHA/ImC9h5HsLRXqCyPmWgYx7tzyoTplzILbP0fPXsc=", base64.StdEncoding.EncodeToString(got))
}

// The AAD the token sees: 2-byte big-endian length ‖ AAD ‖ 1-byte length ‖
// metadata, so that AAD "x" with no metadata differs from metadata "x".
func TestAAD(t *testing.T) {
	assert.Equal(t, []byte{0, 0, 0}, AAD(nil, nil))
	assert.Equal(t, []byte{0, 2, 'h', 'i', 3, 'v', '=', '1'}, AAD([]byte("hi"), []byte("v=1")))
	assert.NotEqual(t, AAD([]byte("x"), nil), AAD(nil, []byte("x")))
}

func TestValidators(t *testing.T) {
	for _, ok := range []string{"/kms/xks/v1", "/a/kms/xks/v1", "/a-b_c/D9/kms/xks/v1"} {
		assert.True(t, ValidURIPath(ok), ok)
	}
	for _, bad := range []string{"", "/kms/xks/v2", "kms/xks/v1", "//kms/xks/v1", "/a.b/kms/xks/v1", "/" + strings.Repeat("a", 120) + "/kms/xks/v1"} {
		assert.False(t, ValidURIPath(bad), bad)
	}
	assert.True(t, ValidKeyID("key-1.A_b"))
	for _, bad := range []string{"", "a/b", "a b", strings.Repeat("k", 129)} {
		assert.False(t, ValidKeyID(bad), bad)
	}
}

// fakeProxy answers every request with status and body.
func fakeProxy(t *testing.T, status int, body string) *Client {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Contains(t, r.Header.Get("Authorization"), "/us-east-1/kms-xks-proxy/aws4_request")
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	c, err := New(Config{Endpoint: srv.URL, URIPath: "/p/kms/xks/v1", AccessKeyID: "AKIDEXAMPLEEXAMPLE22", SecretAccessKey: "s", Region: "us-east-1",
		TLS: srv.Client().Transport.(*http.Transport).TLSClientConfig, Timeout: 5 * time.Second})
	require.NoError(t, err)
	return c
}

func TestClientClassifiesErrors(t *testing.T) {
	md := RequestMetadata{KMSOperation: "DescribeKey", KMSRequestID: "r", AWSPrincipalARN: "arn:aws:iam::1:root"}
	for _, tc := range []struct {
		status int
		body   string
		kind   Kind
		is     error
	}{
		{404, `{"errorName":"KeyNotFoundException"}`, KindKeyNotFound, ErrKeyNotFound},
		{401, `{"errorName":"AuthenticationFailedException","errorMessage":"bad"}`, KindAuthenticationFailed, ErrAuthenticationFailed},
		{404, `{"errorName":"InvalidUriPathException"}`, KindInvalidURIPath, ErrInvalidURIPath},
		{429, `{"errorName":"ThrottlingException"}`, KindThrottled, ErrThrottled},
		{503, `{"errorName":"DependencyTimeoutException"}`, KindTimeout, ErrTimeout},
		{400, `{"errorName":"KeyNotFoundException"}`, KindInvalidResponse, ErrInvalidResponse}, // wrong status for the name
		{500, `oops`, KindInvalidResponse, ErrInvalidResponse},
		{400, `{"errorName":"NoSuchException"}`, KindInvalidResponse, ErrInvalidResponse},
		{200, `{"keySpec":"AES_256","keyUsage":["ENCRYPT"],"keyStatus":"ON"}`, KindInvalidResponse, ErrInvalidResponse},
		{200, `{"keySpec":"AES_256","keyUsage":["ENCRYPT"],"keyStatus":"ENABLED","x":1}`, KindInvalidResponse, ErrInvalidResponse},
	} {
		c := fakeProxy(t, tc.status, tc.body)
		_, err := c.GetKeyMetadata(context.Background(), "k1", md)
		require.Error(t, err, tc.body)
		assert.Equal(t, tc.kind, KindOf(err), "%d %s: %v", tc.status, tc.body, err)
		assert.True(t, errors.Is(err, tc.is), "%v", err)
	}
	c := fakeProxy(t, 200, `{"keySpec":"AES_256","keyUsage":["ENCRYPT","DECRYPT"],"keyStatus":"ENABLED"}`)
	m, err := c.GetKeyMetadata(context.Background(), "k1", md)
	require.NoError(t, err)
	assert.True(t, m.Allows(UsageDecrypt))
}

func TestClientUnreachableAndTimeout(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(2 * time.Second)
	}))
	defer srv.Close()
	cfg := Config{Endpoint: srv.URL, URIPath: "/kms/xks/v1", AccessKeyID: "A", SecretAccessKey: "s", Region: "r",
		TLS: srv.Client().Transport.(*http.Transport).TLSClientConfig, Timeout: time.Second}
	c, err := New(cfg)
	require.NoError(t, err)
	_, err = c.Health(context.Background(), RequestMetadata{KMSOperation: "KmsHealthCheck", KMSRequestID: "1"})
	assert.Equal(t, KindTimeout, KindOf(err), "%v", err)
	assert.True(t, KindOf(err).Retryable())

	// An untrusted certificate: no TLS connection.
	cfg.TLS, cfg.Timeout = nil, 10*time.Second
	c, err = New(cfg)
	require.NoError(t, err)
	_, err = c.Health(context.Background(), RequestMetadata{KMSOperation: "KmsHealthCheck", KMSRequestID: "1"})
	assert.Equal(t, KindUnreachable, KindOf(err), "%v", err)

	cfg.Endpoint = "https://127.0.0.1:1"
	c, err = New(cfg)
	require.NoError(t, err)
	_, err = c.Health(context.Background(), RequestMetadata{KMSOperation: "KmsHealthCheck", KMSRequestID: "1"})
	assert.Equal(t, KindUnreachable, KindOf(err), "%v", err)
}
