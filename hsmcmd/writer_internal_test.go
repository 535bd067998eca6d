package hsmcmd

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"golang.org/x/crypto/cryptobyte"
)

// The writer's encoding of each field is cryptobyte's, which the reader
// parses: the same random fields, through both, give the same bytes.
func TestWriterMatchesCryptobyte(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	field := func(max int) []byte {
		f := make([]byte, rng.IntN(max+1))
		for i := range f {
			f[i] = byte(rng.Uint32())
		}
		return f
	}
	for range 500 {
		w := newWriter(Encrypt)
		var b cryptobyte.Builder
		for range 1 + rng.IntN(6) {
			switch rng.IntN(6) {
			case 0:
				f := field(0xff)
				w.v8(f, 0, 0xff, "f")
				b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(f) })
			case 1:
				f := field(3000)
				w.v16(f, 0, 0xffff, "f")
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(f) })
			case 2:
				f := field(70000)
				w.v24(f, 0, 0xffffff, "f")
				b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(f) })
			case 3:
				v := uint8(rng.Uint32())
				w.u8(v)
				b.AddUint8(v)
			case 4:
				v := uint16(rng.Uint32())
				w.u16(v)
				b.AddUint16(v)
			case 5:
				v := rng.Uint64()
				w.u64(v)
				b.AddUint64(v)
			}
		}
		got, err := w.bytes()
		if err != nil {
			t.Fatal(err)
		}
		want := b.BytesOrPanic()
		if !bytes.Equal(got, want) {
			t.Fatalf("writer %x, cryptobyte %x", got, want)
		}
	}
	w := newWriter(Encrypt)
	w.v8(make([]byte, 256), 0, 1000, "too long")
	if _, err := w.bytes(); err == nil {
		t.Fatal("a v8 field of 256 bytes was written")
	}
}

// The commands a KMS request sends, and their batch, are written into one
// buffer of their size: one allocation, none to grow it.
func TestHotMessagesAllocateOnce(t *testing.T) {
	token, ec, pt, blob := make([]byte, MaxHBKToken), make([]byte, 40), make([]byte, 4096), make([]byte, 300)
	enc, err := EncryptRequest{Token: token, Context: ec, Plaintext: pt}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string]interface{ Marshal() ([]byte, error) }{
		"EncryptRequest":          EncryptRequest{Token: token, Context: ec, Plaintext: pt},
		"EncryptResponse":         EncryptResponse{Blob: blob},
		"DecryptRequest":          DecryptRequest{Token: token, Context: ec, Blob: blob},
		"DecryptResponse":         DecryptResponse{Plaintext: pt},
		"GenerateDataKeyRequest":  GenerateDataKeyRequest{Token: token, Context: ec, Size: 32, WithPlaintext: true},
		"GenerateDataKeyResponse": GenerateDataKeyResponse{Plaintext: pt[:32], Blob: blob},
		"ReEncryptResponse":       ReEncryptResponse{Blob: blob},
		"BatchRequest":            BatchRequest{Items: []BatchItem{{Code: Encrypt, Command: enc}, {Code: Encrypt, Command: enc}}},
		"BatchResponse":           BatchResponse{Results: []BatchResult{{Response: blob}, {Alert: 1}, {Response: blob}}},
	} {
		if _, err := m.Marshal(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if n := testing.AllocsPerRun(20, func() { _, _ = m.Marshal() }); n > 1 {
			t.Errorf("%s.Marshal: %.0f allocations, want 1", name, n)
		}
	}
}
