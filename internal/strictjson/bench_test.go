package strictjson

import (
	"encoding/json"
	"reflect"
	"testing"
)

// benchRequest is shaped like a KMS Encrypt request (package kms's
// encryptRequest): an embedded struct, a map, a slice, a blob, pointers.
type benchRequest struct {
	benchShared
	KeyId               string  `json:"KeyId"`
	Plaintext           []byte  `json:"Plaintext"`
	EncryptionAlgorithm *string `json:"EncryptionAlgorithm"`
}

type benchShared struct {
	EncryptionContext map[string]string `json:"EncryptionContext"`
	GrantTokens       []string          `json:"GrantTokens"`
	DryRun            bool              `json:"DryRun"`
}

var benchBody = []byte(`{"KeyId":"arn:aws:kms:eu-west-1:111122223333:key/00000000-0000-4000-8000-000000000001",` +
	`"Plaintext":"QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQQ==",` +
	`"EncryptionContext":{"app":"bench","tenant":"a"}}`)

// benchFastRequest is benchRequest decoding its usual documents itself,
// as package kms's requests do.
type benchFastRequest benchRequest

func (r *benchFastRequest) DecodeFast(data []byte) bool {
	s := NewScanner(data)
	return s.Object([]string{"KeyId", "Plaintext", "EncryptionContext", "GrantTokens", "EncryptionAlgorithm", "DryRun"}, func(name string) (ok bool) {
		switch name {
		case "KeyId":
			r.KeyId, ok = s.String()
		case "Plaintext":
			r.Plaintext, ok = s.Bytes()
		case "EncryptionAlgorithm":
			r.EncryptionAlgorithm, ok = s.StringPtr()
		case "EncryptionContext":
			r.EncryptionContext, ok = s.StringMap()
		case "GrantTokens":
			r.GrantTokens, ok = s.Strings()
		case "DryRun":
			r.DryRun, ok = s.Bool()
		}
		return ok
	}) && s.End()
}

// BenchmarkUnmarshal measures the strict decoding of an Encrypt-shaped
// request: the key scan alone (checkKeys), and the whole Unmarshal beside
// encoding/json's own Unmarshal of the same body (which checks neither
// duplicates nor names' case), and Unmarshal of a FastDecoder that
// decodes it itself.
func BenchmarkUnmarshal(b *testing.B) {
	b.Run("checkKeys", func(b *testing.B) {
		b.ReportAllocs()
		var r benchRequest
		for b.Loop() {
			if err := checkKeys(benchBody, reflect.TypeOf(&r)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r benchRequest
			if err := Unmarshal(benchBody, 1<<20, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("FastDecoder", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r benchFastRequest
			if err := Unmarshal(benchBody, 1<<20, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r benchRequest
			if err := json.Unmarshal(benchBody, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
