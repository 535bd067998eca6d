package nitro_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"crypto/x509"
	"testing"
	"time"

	"github.com/trentkms/trent/nitro"
)

// BenchmarkVerify is one document's verification with and without the
// cabundle cache, beside one ES384 verification: with the cache a
// document costs two (its leaf certificate and its signature).
func BenchmarkVerify(b *testing.B) {
	now := time.Now()
	ca, err := nitro.NewSimCA(nil, now.Add(-time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	doc, err := ca.Attest(nitro.AttestRequest{PCRs: map[int][]byte{0: make([]byte, 48)}, Time: now})
	if err != nil {
		b.Fatal(err)
	}
	for _, cached := range []bool{false, true} {
		name := "cache=no"
		if cached {
			name = "cache=yes"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				v := &nitro.Verifier{Roots: []*x509.Certificate{ca.Root}}
				if cached {
					v.Cache = cacheFor(b, ca, doc)
				}
				if _, err := v.Verify(doc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("primitive=ES384-verify", func(b *testing.B) {
		k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		d := sha512.Sum384([]byte("x"))
		sig, _ := ecdsa.SignASN1(rand.Reader, k, d[:])
		for b.Loop() {
			if !ecdsa.VerifyASN1(&k.PublicKey, d[:], sig) {
				b.Fatal("no")
			}
		}
	})
}

var caches = map[*nitro.SimCA]*nitro.ChainCache{}

// cacheFor is a cache that already holds doc's bundle.
func cacheFor(b *testing.B, ca *nitro.SimCA, doc []byte) *nitro.ChainCache {
	if c := caches[ca]; c != nil {
		return c
	}
	c := &nitro.ChainCache{}
	if _, err := (&nitro.Verifier{Roots: []*x509.Certificate{ca.Root}, Cache: c}).Verify(doc); err != nil {
		b.Fatal(err)
	}
	caches[ca] = c
	return c
}
