package hsm_test

import (
	"crypto"
	"crypto/ecdh"
	"crypto/rand"
	"testing"

	"github.com/trentkms/trent/hsm"
	"github.com/trentkms/trent/tokenstore"
	"github.com/trentkms/trent/tokenstore/storetest"
)

// BenchmarkModules runs the backend's operations on each module Trent
// provisions (docs/benchmarks.md, "Modules"): the same calls, SoftHSM2
// against NSS's softoken.
func BenchmarkModules(b *testing.B) {
	for _, kind := range tokenstore.Kinds {
		b.Run("module="+string(kind), func(b *testing.B) {
			tok := storetest.New(b, kind).NewToken(b)
			id, _, err := tok.EnsureIdentity()
			check(b, err)
			aes, err := tok.GenerateSecretKey(hsm.AES256)
			check(b, err)
			mac, err := tok.GenerateSecretKey(hsm.HMACSHA256)
			check(b, err)
			peer, _ := ecdh.P384().GenerateKey(rand.Reader)
			msg, nonce, d := make([]byte, 64), make([]byte, 12), digest("bench")
			b.Run("op=sign", func(b *testing.B) {
				for b.Loop() {
					_, err := id.Signing.Sign(nil, d, crypto.SHA384)
					check(b, err)
				}
			})
			b.Run("op=ecdh", func(b *testing.B) {
				for b.Loop() {
					z, err := id.Agreement.ECDH(peer.PublicKey().Bytes())
					check(b, err)
					clear(z)
				}
			})
			b.Run("op=gcm64", func(b *testing.B) {
				for b.Loop() {
					_, err := aes.Seal(nonce, msg, nil)
					check(b, err)
				}
			})
			b.Run("op=hmac64", func(b *testing.B) {
				for b.Loop() {
					_, err := mac.MAC(msg)
					check(b, err)
				}
			})
			b.Run("op=random32", func(b *testing.B) {
				for b.Loop() {
					_, err := tok.Random(32)
					check(b, err)
				}
			})
			b.Run("op=secp256k1-sign", func(b *testing.B) {
				k, _, err := tok.GenerateECRaw(hsm.Secp256k1Params)
				check(b, err)
				for b.Loop() {
					_, err := tok.SignECDSARaw(hsm.Secp256k1Params, k, d[:32])
					check(b, err)
				}
			})
		})
	}
}
