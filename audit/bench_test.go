package audit

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"
)

// benchEvent is an Encrypt's event as kmsapi records it.
func benchEvent() *Event {
	return &Event{
		EventVersion: Version, EventTime: time.Date(2026, 12, 2, 9, 0, 0, 123456789, time.UTC), EventSource: Source, EventType: EventType,
		EventName: "Encrypt", AWSRegion: "eu-west-1", SourceIPAddress: "127.0.0.1",
		UserAgent:    "aws-sdk-go-v2/1.36.3 os/linux lang/go#1.26 md/GOOS#linux md/GOARCH#amd64 api/kms#1.38.1",
		UserIdentity: &UserIdentity{Type: "IAMUser", ARN: "arn:aws:iam::111122223333:user/alice", AccountID: "111122223333", AccessKeyID: "AKIATEST"},
		RequestParameters: Redact([]byte(`{"KeyId":"arn:aws:kms:eu-west-1:111122223333:key/00000000-0000-4000-8000-000000000001",` +
			`"Plaintext":"QUFB","EncryptionContext":{"app":"bench","tenant":"a"}}`)),
		KeyID:     "arn:aws:kms:eu-west-1:111122223333:key/00000000-0000-4000-8000-000000000001",
		RequestID: "4b2c1e4e-3b6a-4d0e-9d1c-4f1f7b3c2a10", EventID: "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", ReadOnly: true,
	}
}

// BenchmarkEvent measures an Encrypt's audit event: its encoding by
// AppendJSON beside json.Marshal, Redact of the request, and Log.Write
// (encoding and the write(2), one writer).
func BenchmarkEvent(b *testing.B) {
	e := benchEvent()
	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf, _ = e.AppendJSON(buf[:0])
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			json.Marshal(e)
		}
	})
	b.Run("Redact", func(b *testing.B) {
		body := []byte(`{"KeyId":"arn:aws:kms:eu-west-1:111122223333:key/00000000-0000-4000-8000-000000000001",` +
			`"Plaintext":"QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQQ==","EncryptionContext":{"app":"bench","tenant":"a"}}`)
		b.ReportAllocs()
		for b.Loop() {
			Redact(body)
		}
	})
	b.Run("Write", func(b *testing.B) {
		l, err := Open(filepath.Join(b.TempDir(), "audit.jsonl"))
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		b.ReportAllocs()
		for b.Loop() {
			if err := l.Write(e); err != nil {
				b.Fatal(err)
			}
		}
	})
}
