package kms

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/trentkms/trent/kms/kmsapi"
)

// BenchmarkHandlers measures the service's own cost per request (issue
// 17), over the in-memory fakes (memStore, softHSM: no raft, no SoftHSM,
// no HTTP): Encrypt of 64 bytes, Decrypt of its ciphertext and
// GenerateDataKey (AES_256), each with an encryption context, from the
// request body to the response marshalled as JSON, as the protocol layer
// does (AppendJSON for the answers that have it). The fake HSM's own work (AES-GCM under a derived key) is included.
// Run with -benchmem; figures are in docs/benchmarks.md.
func BenchmarkHandlers(b *testing.B) {
	store := newMemStore()
	s := New(Config{Store: store, HSM: newSoftHSM(), Region: "eu-west-1", Clock: func() time.Time { return time.Unix(1_800_000_000, 0) }})
	call := func(op string, body []byte) []byte {
		out, err := s.Operations()[op].Handler(context.Background(), alice, body)
		if err != nil {
			b.Fatal(op, err)
		}
		if a, ok := out.(kmsapi.JSONAppender); ok { // as kmsapi.Server writes it
			return a.AppendJSON(nil)
		}
		data, err := json.Marshal(out)
		if err != nil {
			b.Fatal(err)
		}
		return data
	}
	var created struct{ KeyMetadata struct{ Arn string } }
	if err := json.Unmarshal(call("CreateKey", []byte(`{"Description":"bench"}`)), &created); err != nil {
		b.Fatal(err)
	}
	arn := created.KeyMetadata.Arn
	ec := `"EncryptionContext":{"app":"bench","tenant":"a"}`
	encrypt := []byte(`{"KeyId":"` + arn + `","Plaintext":"` + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQQ==" + `",` + ec + `}`)
	var enc struct{ CiphertextBlob []byte }
	if err := json.Unmarshal(call("Encrypt", encrypt), &enc); err != nil {
		b.Fatal(err)
	}
	blob, _ := json.Marshal(enc.CiphertextBlob)
	decrypt := []byte(`{"CiphertextBlob":` + string(blob) + `,` + ec + `}`)
	gdk := []byte(`{"KeyId":"` + arn + `","KeySpec":"AES_256",` + ec + `}`)
	for _, tc := range []struct {
		op   string
		body []byte
	}{{"Encrypt", encrypt}, {"Decrypt", decrypt}, {"GenerateDataKey", gdk}} {
		b.Run(tc.op, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				call(tc.op, tc.body)
			}
		})
	}
}
