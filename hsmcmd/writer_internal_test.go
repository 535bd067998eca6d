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
