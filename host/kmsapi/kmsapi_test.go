package kmsapi

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzAuthenticate: no Authorization header or body makes the verifier
// panic or accept.
func FuzzAuthenticate(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKIA/20260101/eu-west-1/kms/aws4_request, SignedHeaders=host;x-amz-date, Signature=00", "20260101T000000Z", []byte("{}"))
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/d/e", "x", []byte{})
	f.Add("", "", []byte(nil))
	s := &Server{Creds: &Credentials{Region: "eu-west-1", Credentials: []Credential{{AccessKeyID: "AKIA", SecretAccessKey: "0123456789abcdef0123", AccountID: "1", ARN: "a"}}},
		Now: func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }}
	f.Fuzz(func(t *testing.T, auth, date string, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		r.Header.Set("Authorization", auth)
		r.Header.Set("X-Amz-Date", date)
		if _, err := s.authenticate(r, body); err == nil {
			t.Fatalf("accepted a forged signature: %q", auth)
		}
	})
}

func TestReadCredentials(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "c.json")
		os.WriteFile(p, []byte(s), 0o600)
		return p
	}
	if _, err := ReadCredentials(write(`{"region":"eu-west-1","credentials":[{"access_key_id":"A","secret_access_key":"0123456789abcdef","account_id":"1","arn":"arn"}]}`)); err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string]string{
		"duplicate key":   `{"region":"a","region":"b","credentials":[]}`,
		"no region":       `{"credentials":[]}`,
		"short secret":    `{"region":"a","credentials":[{"access_key_id":"A","secret_access_key":"x","account_id":"1","arn":"a"}]}`,
		"repeated key id": `{"region":"a","credentials":[{"access_key_id":"A","secret_access_key":"0123456789abcdef","account_id":"1","arn":"a"},{"access_key_id":"A","secret_access_key":"0123456789abcdef","account_id":"1","arn":"a"}]}`,
		"unknown field":   `{"region":"a","credentials":[],"extra":1}`,
	} {
		if _, err := ReadCredentials(write(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
