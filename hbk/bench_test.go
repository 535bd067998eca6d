package hbk_test

import (
	"testing"

	"github.com/trentkms/trent/hbk"
)

// BenchmarkSealMarshal is an HSM's Encrypt of 64 bytes after the token's
// HMAC (here in Go memory): the AAD, AES-GCM and the blob's encoding.
func BenchmarkSealMarshal(b *testing.B) {
	f := newFixture("bench")
	mac := softHBK(f.hbkRaw)
	ec, err := hbk.EncodeContext(map[string]string{"purpose": "bench"})
	if err != nil {
		b.Fatal(err)
	}
	pt := make([]byte, 64)
	b.ReportAllocs()
	for b.Loop() {
		bl, err := hbk.Seal(mac, keyID, f.hbkID, f.nonce, f.iv, ec, pt)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := bl.Marshal(); err != nil {
			b.Fatal(err)
		}
	}
}
