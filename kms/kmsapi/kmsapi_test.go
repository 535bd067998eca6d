package kmsapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/trentkms/trent/audit"
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

// TestAuthenticateTampering signs a request with the AWS SDK's own SigV4
// signer, then alters one part of it at a time: each alteration is
// refused with the exception KMS names for it.
func TestAuthenticateTampering(t *testing.T) {
	const secret = "0123456789abcdef0123"
	now := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	s := &Server{Creds: &Credentials{Region: "eu-west-1", Credentials: []Credential{{AccessKeyID: "AKIATEST", SecretAccessKey: secret, AccountID: "111122223333", ARN: "arn:aws:iam::111122223333:user/alice"}}},
		Now: func() time.Time { return now }}
	body := []byte(`{"NumberOfBytes":8}`)
	signed := func() *http.Request {
		r := httptest.NewRequest(http.MethodPost, "http://kms.local/", bytes.NewReader(body))
		r.Header.Set("X-Amz-Target", "TrentService.GenerateRandom")
		r.Header.Set("Content-Type", "application/x-amz-json-1.1")
		h := sha256.Sum256(body)
		err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKIATEST", SecretAccessKey: secret},
			r, hex.EncodeToString(h[:]), "kms", "eu-west-1", now)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	p, e := s.authenticate(signed(), body)
	if e != nil {
		t.Fatalf("a correctly signed request was refused: %v", e)
	}
	if p.AccountID != "111122223333" || p.ARN != "arn:aws:iam::111122223333:user/alice" {
		t.Fatalf("principal %+v", p)
	}

	for _, tc := range []struct {
		name string
		mod  func(r *http.Request) []byte
		want string
	}{
		{"altered body", func(r *http.Request) []byte { return []byte(`{"NumberOfBytes":9}`) }, InvalidSignature},
		{"altered signed header", func(r *http.Request) []byte {
			r.Header.Set("X-Amz-Target", "TrentService.ListKeys")
			return body
		}, InvalidSignature},
		{"signed header missing", func(r *http.Request) []byte { r.Header.Del("X-Amz-Target"); return body }, IncompleteSignature},
		{"date missing", func(r *http.Request) []byte { r.Header.Del("X-Amz-Date"); return body }, IncompleteSignature},
		{"other host", func(r *http.Request) []byte { r.Host = "evil.local"; return body }, InvalidSignature},
		{"no authorization", func(r *http.Request) []byte { r.Header.Del("Authorization"); return body }, MissingAuthenticationToken},
		{"signature truncated", func(r *http.Request) []byte {
			a := r.Header.Get("Authorization")
			r.Header.Set("Authorization", a[:len(a)-2])
			return body
		}, InvalidSignature},
	} {
		r := signed()
		b := tc.mod(r)
		_, e := s.authenticate(r, b)
		if e == nil || e.Type != tc.want {
			t.Errorf("%s: got %v, want %s", tc.name, e, tc.want)
		}
	}
}

// Every request is recorded once, before its answer; a request that
// cannot be recorded is not answered with its result.
func TestRecord(t *testing.T) {
	const secret = "0123456789abcdef0123"
	var events []*audit.Event
	var failRecord bool
	s := &Server{
		Creds: &Credentials{Region: "eu-west-1", Credentials: []Credential{{AccessKeyID: "AKIATEST", SecretAccessKey: secret, AccountID: "111122223333", ARN: "arn:aws:iam::111122223333:role/app"}}},
		Operations: map[string]Operation{"GenerateRandom": {Handler: func(context.Context, Principal, []byte) (any, error) {
			return map[string]any{"Plaintext": []byte("random")}, nil
		}, Cryptographic: true}},
		Record: func(e *audit.Event) error {
			events = append(events, e)
			if failRecord {
				return errors.New("disk full")
			}
			return nil
		},
	}
	body := []byte(`{"NumberOfBytes":6}`)
	call := func(sign bool) (int, string) {
		r := httptest.NewRequest(http.MethodPost, "http://kms.local/", bytes.NewReader(body))
		r.Header.Set("X-Amz-Target", "TrentService.GenerateRandom")
		r.Header.Set("Content-Type", "application/x-amz-json-1.1")
		if sign {
			h := sha256.Sum256(body)
			if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKIATEST", SecretAccessKey: secret},
				r, hex.EncodeToString(h[:]), "kms", "eu-west-1", time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		return w.Code, w.Body.String()
	}

	code, out := call(true)
	if code != http.StatusOK || !strings.Contains(out, base64.StdEncoding.EncodeToString([]byte("random"))) {
		t.Fatalf("%d %s", code, out)
	}
	if len(events) != 1 || events[0].EventName != "GenerateRandom" || events[0].UserIdentity.Type != "AssumedRole" ||
		events[0].RequestParameters["numberOfBytes"] != float64(6) || events[0].ErrorCode != "" {
		t.Fatalf("event %+v", events)
	}

	code, out = call(false)
	if code != http.StatusBadRequest || len(events) != 2 {
		t.Fatalf("%d %s, %d events", code, out, len(events))
	}
	if e := events[1]; e.EventName != "" || e.UserIdentity != nil || e.RequestParameters != nil || e.ErrorCode != MissingAuthenticationToken {
		t.Fatalf("an unauthenticated request recorded as %+v", e)
	}

	failRecord = true
	code, out = call(true)
	if code != http.StatusInternalServerError || !strings.Contains(out, KMSInternal) || strings.Contains(out, "cmFuZG9t") {
		t.Fatalf("unrecorded request answered %d %s", code, out)
	}
	if len(events) != 3 {
		t.Fatalf("%d events, want one per request", len(events))
	}
}

// answerKeyID finds what decoding the answer would find, or defers to it.
func TestAnswerKeyID(t *testing.T) {
	decoded := func(resp string) string {
		var named struct {
			KeyId       string
			KeyMetadata *struct{ Arn string }
		}
		if json.Unmarshal([]byte(resp), &named) != nil {
			return ""
		}
		if named.KeyId != "" {
			return named.KeyId
		}
		if named.KeyMetadata != nil {
			return named.KeyMetadata.Arn
		}
		return ""
	}
	for resp, fast := range map[string]bool{
		`{"CiphertextBlob":"AAAA","KeyId":"arn:k","EncryptionAlgorithm":"SYMMETRIC_DEFAULT"}`: true,
		`{"KeyId":"arn:k","KeyId":"arn:j"}`:                                                   false,
		`{"keyid":"arn:k"}`:                                                                   false,
		`{"KeyId":"arn:k","keyMetadata":{"Arn":"arn:m"}}`:                                     false,
		`{"KeyId":"","KeyMetadata":{"Arn":"arn:m"}}`:                                          false,
		`{"KeyId":"a\u0062"}`:                                                                 false,
		`{"KeyId":null}`:                                                                      false,
		`{"Plaintext":"AAAA"}`:                                                                false,
		`{"KeyId":"arn:k","Other":{"KeyMetadata":1}}`:                                         true,
	} {
		got, ok := answerKeyID([]byte(resp))
		if ok != fast {
			t.Errorf("%s: fast %v, want %v", resp, ok, fast)
		}
		if ok && got != decoded(resp) {
			t.Errorf("%s: %q, decoding finds %q", resp, got, decoded(resp))
		}
	}
}

// record takes the key a KeyNamer answer names, if valid UTF-8, without
// reading the answer; the answer is read for it otherwise.
func TestRecordNamedKey(t *testing.T) {
	var got *audit.Event
	s := &Server{Creds: &Credentials{Region: "eu-west-1"}, Operations: map[string]Operation{"Encrypt": {Cryptographic: true}},
		Record: func(e *audit.Event) error { got = e; return nil }}
	r := httptest.NewRequest(http.MethodPost, "http://kms.local/", nil)
	p := &Principal{AccessKeyID: "AKIATEST", AccountID: "111122223333", ARN: "arn:aws:iam::111122223333:user/alice"}
	body := []byte(`{"KeyId":"alias/a","Plaintext":"QUFB"}`)
	for _, tc := range []struct{ resp, named, want string }{
		{`{"CiphertextBlob":"AAAA"}`, "arn:named", "arn:named"},                  // not read: it names no key
		{`{"CiphertextBlob":"AAAA","KeyId":"arn:read"}`, "arn:\xff", "arn:read"}, // not UTF-8: read
		{`{"CiphertextBlob":"AAAA","KeyId":"arn:read"}`, "", "arn:read"},         // no KeyNamer: read
		{`{"CiphertextBlob":"AAAA"}`, "", "alias/a"},                             // neither: the request's
	} {
		if err := s.record(time.Now(), r, "127.0.0.1", "req", "event", "Encrypt", p, body, []byte(tc.resp), tc.named, nil, nil); err != nil {
			t.Fatal(err)
		}
		if got.KeyID != tc.want {
			t.Errorf("answer %s, named %q: keyId %q, want %q", tc.resp, tc.named, got.KeyID, tc.want)
		}
	}
}

// The SigV4 shortcuts agree with what they stand for: the canonical
// header names with http.CanonicalHeaderKey, isTrimmed with SigV4's
// trimming.
func TestSigV4Shortcuts(t *testing.T) {
	for n, c := range canonicalHeaders {
		if http.CanonicalHeaderKey(n) != c {
			t.Errorf("%s: %s, want %s", n, c, http.CanonicalHeaderKey(n))
		}
	}
	for _, v := range []string{"", "a", "a b", " a", "a ", "a  b", "a\tb", "a\u00a0b", "é", "application/x-amz-json-1.1", "attempt=1; max=3", "\x85"} {
		if isTrimmed(v) && strings.Join(strings.Fields(v), " ") != v {
			t.Errorf("%q taken as trimmed", v)
		}
	}
	for _, v := range []string{"", "a", "a b", "application/x-amz-json-1.1", "attempt=1; max=3"} {
		if !isTrimmed(v) {
			t.Errorf("%q taken as untrimmed", v)
		}
	}
}

// formatID writes what fmt wrote before it.
func TestFormatID(t *testing.T) {
	for i := range 100 {
		var b [16]byte
		for j := range b {
			b[j] = byte(i*31 + j*17)
		}
		if got, want := formatID(&b), fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]); got != want {
			t.Fatalf("%s, want %s", got, want)
		}
	}
}

// authFields behaves as the map it stands for, below and beyond its array.
func TestAuthFields(t *testing.T) {
	var f authFields
	m := map[string]string{}
	for i := range 40 {
		k := fmt.Sprint("k", i%13)
		v := fmt.Sprint(i % 3) // "0" too: a set of an empty-looking value
		if i%5 == 0 {
			v = ""
		}
		f.set(k, v)
		m[k] = v
		for j := range 14 {
			k := fmt.Sprint("k", j)
			if f.get(k) != m[k] {
				t.Fatalf("step %d: %s = %q, want %q", i, k, f.get(k), m[k])
			}
		}
	}
}

// The global condition keys a request carries, as a key policy sees them.
func TestPrincipalGlobalConditions(t *testing.T) {
	at := time.Date(2026, 12, 2, 13, 37, 5, 0, time.FixedZone("x", 3600))
	p := Principal{AccountID: "111122223333", ARN: "arn:aws:iam::111122223333:user/team/alice", SourceIP: "192.0.2.1",
		Time: at, Region: "eu-west-1"}
	m := p.Conditions()
	for k, want := range map[string]string{
		"aws:principaltype":   "User",
		"aws:username":        "alice",
		"aws:currenttime":     "2026-12-02T12:37:05Z",
		"aws:epochtime":       "1796215025",
		"aws:requestedregion": "eu-west-1",
		"aws:sourceip":        "192.0.2.1",
		"aws:securetransport": "false",
	} {
		if got := m[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s = %v, want %s", k, got, want)
		}
	}
	for arn, typ := range map[string]string{
		"arn:aws:iam::111122223333:root":                      "Account",
		"arn:aws:sts::111122223333:assumed-role/admin/sess-1": "AssumedRole",
		"arn:aws:iam::111122223333:role/admin":                "",
	} {
		m := Principal{ARN: arn}.Conditions()
		if got := m["aws:principaltype"]; typ == "" && got != nil || typ != "" && (len(got) != 1 || got[0] != typ) {
			t.Errorf("%s: aws:PrincipalType %v, want %q", arn, got, typ)
		}
		if _, ok := m["aws:username"]; ok {
			t.Errorf("%s: aws:username for a principal that is not a user", arn)
		}
		if _, ok := m["aws:currenttime"]; ok {
			t.Errorf("aws:CurrentTime without a time")
		}
	}
}

// TestHMACPadded: the verifier's HMAC-SHA256 is crypto/hmac's, for keys
// shorter than, as long as and longer than a block, and messages of any
// length.
func TestHMACPadded(t *testing.T) {
	for _, kl := range []int{0, 1, 32, 63, 64, 65, 200} {
		for _, ml := range []int{0, 1, 55, 56, 64, 150, 1000} {
			key := bytes.Repeat([]byte{byte(kl + 1)}, kl)
			data := bytes.Repeat([]byte{byte(ml + 7)}, ml)
			msg := append(make([]byte, hmacBlock), data...)
			got := hmacSHA256Padded(key, msg)
			if want := hmacSHA256(key, string(data)); !bytes.Equal(got[:], want) {
				t.Errorf("key %d, message %d bytes: %x, want %x", kl, ml, got, want)
			}
			if !bytes.Equal(msg[:hmacBlock], make([]byte, hmacBlock)) {
				t.Errorf("the pad is not cleared")
			}
		}
	}
	if equalHex([]byte("ab"), "AB") || equalHex([]byte("ab"), "a") || !equalHex([]byte("ab"), "ab") {
		t.Error("equalHex")
	}
}

// TestAuthenticateHeaders: headers the SDK signs in their canonical form
// (values trimmed, inner spaces collapsed, repeated values joined by
// commas, the length from the request's field) verify; SignedHeaders out
// of order, without host or x-amz-date, or with an empty name are
// refused.
func TestAuthenticateHeaders(t *testing.T) {
	const secret = "0123456789abcdef0123"
	now := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	s := &Server{Creds: &Credentials{Region: "eu-west-1", Credentials: []Credential{{AccessKeyID: "AKIATEST", SecretAccessKey: secret, AccountID: "1", ARN: "arn:aws:iam::1:user/a"}}},
		Now: func() time.Time { return now }}
	body := []byte(`{"NumberOfBytes":8}`)
	signed := func() *http.Request {
		r := httptest.NewRequest(http.MethodPost, "http://kms.local/?a=1", bytes.NewReader(body))
		r.Header.Set("X-Amz-Target", "TrentService.GenerateRandom")
		r.Header.Set("X-Custom", "  a   b  c  ")
		r.Header.Add("X-Multi", "one")
		r.Header.Add("X-Multi", " two  three ")
		r.Header.Set("Content-Length", strconv.Itoa(len(body)))
		h := sha256.Sum256(body)
		if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKIATEST", SecretAccessKey: secret},
			r, hex.EncodeToString(h[:]), "kms", "eu-west-1", now); err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := signed()
	if !strings.Contains(r.Header.Get("Authorization"), "x-custom;x-multi") {
		t.Fatalf("the SDK did not sign the headers: %s", r.Header.Get("Authorization"))
	}
	if _, e := s.authenticate(r, body); e != nil {
		t.Fatalf("refused: %v", e)
	}
	r = signed()
	r.Header.Del("Content-Length") // net/http keeps it in ContentLength only
	if _, e := s.authenticate(r, body); e != nil {
		t.Fatalf("refused without the Content-Length header: %v", e)
	}
	r = signed()
	r.Header["X-Multi"] = []string{"one", "two three", "four"}
	if _, e := s.authenticate(r, body); e == nil || e.Type != InvalidSignature {
		t.Fatalf("a third value: %v", e)
	}
	for _, sh := range []string{"x-amz-date;host", "x-amz-date", "host", "host;;x-amz-date", ";host;x-amz-date"} {
		r = signed()
		a := r.Header.Get("Authorization")
		i := strings.Index(a, "SignedHeaders=")
		j := strings.Index(a[i:], ",")
		r.Header.Set("Authorization", a[:i]+"SignedHeaders="+sh+a[i+j:])
		if _, e := s.authenticate(r, body); e == nil || e.Type != IncompleteSignature {
			t.Errorf("SignedHeaders=%s: %v", sh, e)
		}
	}
}

// TestConditionTimes: the kept strings of a second are that second's.
func TestConditionTimes(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 12, 37, 5, 900, time.FixedZone("x", 3600))
	for _, at := range []time.Time{t0, t0.Add(time.Millisecond), t0.Add(time.Second), t0, t0.Add(-time.Hour)} {
		c, e := conditionTimes(at)
		if c != at.UTC().Format("2006-01-02T15:04:05Z") || e != strconv.FormatInt(at.Unix(), 10) {
			t.Errorf("%v: %s %s", at, c, e)
		}
	}
}

// FuzzParseAmzDate: parseAmzDate accepts what time.Parse accepts, as the
// same instant, and nothing else.
func FuzzParseAmzDate(f *testing.F) {
	for _, s := range []string{"20261202T093000Z", "20240229T000000Z", "20230229T000000Z", "20261231T235959Z", "20261232T000000Z",
		"20261302T000000Z", "20260002T000000Z", "20261202T240000Z", "20261202T236000Z", "20261202T235960Z", "2026120ZT093000Z",
		"20261202 093000Z", "20261202T093000", "+0261202T093000Z", "00000101T000000Z", "20261202T093000Zx", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := time.Parse(amzDateLayout, s)
		got, ok := parseAmzDate(s)
		if ok != (err == nil) || ok && !got.Equal(want) {
			t.Fatalf("%q: %v %v, time.Parse: %v %v", s, got, ok, want, err)
		}
	})
}
