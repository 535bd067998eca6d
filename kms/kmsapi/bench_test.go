package kmsapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/trentkms/trent/audit"
)

// BenchmarkServe measures the protocol layer's own cost for one Encrypt
// of 64 bytes as aws-sdk-go-v2 signs it (issue 17): SigV4 verification
// alone (authenticate), the audit event alone (record), then the whole ServeHTTP — body read,
// verification, the audit event (redaction, marshalling, the write to an
// audit file) and the answer — around a handler that returns a fixed
// Encrypt response. Run with -benchmem; figures are in
// docs/benchmarks.md.
func BenchmarkServe(b *testing.B) {
	const secret = "0123456789abcdef0123"
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	keyARN := "arn:aws:kms:eu-west-1:111122223333:key/00000000-0000-4000-8000-000000000001"
	body := []byte(`{"KeyId":"` + keyARN + `","Plaintext":"` + string(bytes.Repeat([]byte("QUFB"), 21)) + `QQ==","EncryptionContext":{"app":"bench","tenant":"a"}}`)
	log, err := audit.Open(filepath.Join(b.TempDir(), "audit.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	defer log.Close()
	resp := struct {
		CiphertextBlob      []byte
		KeyId               string
		EncryptionAlgorithm string
	}{bytes.Repeat([]byte{7}, 180), keyARN, "SYMMETRIC_DEFAULT"}
	s := &Server{
		Creds: &Credentials{Region: "eu-west-1", Credentials: []Credential{{AccessKeyID: "AKIATEST", SecretAccessKey: secret, AccountID: "111122223333", ARN: "arn:aws:iam::111122223333:user/alice"}}},
		Now:   func() time.Time { return now },
		Operations: map[string]Operation{"Encrypt": {Handler: func(context.Context, Principal, []byte) (any, error) {
			return resp, nil
		}, Cryptographic: true}},
		Record: log.Write,
	}
	signed := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:4000/", bytes.NewReader(body))
	signed.Header.Set("X-Amz-Target", "TrentService.Encrypt")
	signed.Header.Set("Content-Type", "application/x-amz-json-1.1")
	signed.Header.Set("User-Agent", "aws-sdk-go-v2/1.36.3 os/linux lang/go#1.26 md/GOOS#linux md/GOARCH#amd64 api/kms#1.38.1")
	signed.Header.Set("Amz-Sdk-Invocation-Id", "4b2c1e4e-3b6a-4d0e-9d1c-4f1f7b3c2a10")
	signed.Header.Set("Amz-Sdk-Request", "attempt=1; max=3")
	h := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKIATEST", SecretAccessKey: secret},
		signed, hex.EncodeToString(h[:]), "kms", "eu-west-1", now); err != nil {
		b.Fatal(err)
	}
	request := func() *http.Request {
		r := signed.Clone(context.Background())
		r.Body = http.NoBody
		return r
	}
	b.Run("authenticate", func(b *testing.B) {
		r := request()
		b.ReportAllocs()
		for b.Loop() {
			if _, e := s.authenticate(r, body); e != nil {
				b.Fatal(e)
			}
		}
	})
	b.Run("record", func(b *testing.B) {
		// The audit event alone (redaction of the request, the key the
		// answer names), handed to a Record that keeps nothing.
		r := request()
		p := &Principal{AccessKeyID: "AKIATEST", AccountID: "111122223333", ARN: "arn:aws:iam::111122223333:user/alice"}
		data, err := json.Marshal(resp)
		if err != nil {
			b.Fatal(err)
		}
		s := &Server{Creds: s.Creds, Operations: s.Operations, Record: func(*audit.Event) error { return nil }}
		for _, named := range []string{"", keyARN} { // the answer read for its key, or naming it (KeyNamer)
			b.Run("named="+strconv.FormatBool(named != ""), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := s.record(now, r, "127.0.0.1", "req", "event", "Encrypt", p, body, data, named, nil, nil); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	})
	b.Run("ServeHTTP", func(b *testing.B) {
		b.ReportAllocs()
		rd := bytes.NewReader(body)
		for b.Loop() {
			r := request()
			rd.Reset(body)
			r.Body = http.NoBody
			r.Body = readCloser{rd}
			w := httptest.NewRecorder()
			s.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				b.Fatal(w.Code, w.Body.String())
			}
		}
	})
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }
