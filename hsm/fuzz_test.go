package hsm_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"

	"github.com/trentkms/trent/hsm"
)

// FuzzParseECPoint feeds CKA_EC_POINT values (what a module returns) and
// peer points (what the wire carries) to the decoders: they never panic,
// and whatever they accept is a P-384 point that re-encodes to its input.
func FuzzParseECPoint(f *testing.F) {
	k, _ := ecdh.P384().GenerateKey(rand.Reader)
	point := k.PublicKey().Bytes()
	var b cryptobyte.Builder
	b.AddASN1OctetString(point)
	der := b.BytesOrPanic()
	p256, _ := ecdh.P256().GenerateKey(rand.Reader)
	for _, seed := range [][]byte{
		point, der, append(bytes.Clone(der), 0), der[:len(der)-1],
		p256.PublicKey().Bytes(), {}, {0x04}, {0x04, 0x61}, append([]byte{0x04}, make([]byte, 96)...),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if pub, err := hsm.ParseP384Point(in); err == nil {
			if !bytes.Equal(pub.Bytes(), in) {
				t.Fatalf("ParseP384Point accepted a non-canonical encoding")
			}
		}
		pub, err := hsm.ParseECPointForTest(in)
		if err != nil {
			return
		}
		if bytes.Equal(pub.Bytes(), in) {
			return
		}
		s := cryptobyte.String(in)
		var inner cryptobyte.String
		if !s.ReadASN1(&inner, asn1.OCTET_STRING) || !s.Empty() || !bytes.Equal(inner, pub.Bytes()) {
			t.Fatalf("parseECPoint accepted %x as %x", in, pub.Bytes())
		}
	})
}

// FuzzSecp256k1Verify feeds points and signatures (what a Verify request
// carries) to the in-process secp256k1 check: it never panics, refuses
// points off the curve, and never accepts a signature it did not make
// for another digest.
func FuzzSecp256k1Verify(f *testing.F) {
	// Fixed scalar and nonce: every fuzzing process makes the same pair.
	d, point, _ := hsm.K1Generate(bytes.NewReader(bytes.Repeat([]byte{0x11}, 32)))
	digest := make([]byte, 32)
	sig, _ := hsm.K1Sign(bytes.NewReader(bytes.Repeat([]byte{0x22}, 32)), d, digest)
	f.Add(point, sig)
	f.Add(point, make([]byte, 64))
	f.Add([]byte{0x04}, sig)
	f.Add(append([]byte{0x04}, make([]byte, 64)...), sig)
	f.Fuzz(func(t *testing.T, p, rs []byte) {
		ok, err := hsm.K1Verify(p, digest, rs)
		if err != nil && ok {
			t.Fatal("an error with a verdict")
		}
		if ok && !(bytes.Equal(p, point) && bytes.Equal(rs, sig)) {
			// Another valid signature of the zero digest by point is
			// possible only as (r, n-s); anything else is a forgery.
			if !bytes.Equal(p, point) || !bytes.Equal(rs[:32], sig[:32]) {
				t.Fatalf("accepted %x by %x", rs, p)
			}
		}
	})
}
