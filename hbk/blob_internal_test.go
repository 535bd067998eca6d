package hbk

import (
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/cryptobyte"

	"github.com/trentkms/trent/internal/wire"
)

// The blob's hand-written encoders write what a cryptobyte builder writes
// for the same fields, and refuse what it refused.
func TestBlobHeaderMatchesCryptobyte(t *testing.T) {
	builderHeader := func(b *cryptobyte.Builder, bl *Blob) {
		wire.AddHeader(b, TypeBlob)
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(bl.KeyID)) })
		b.AddBytes(bl.HBKID[:])
		b.AddBytes(bl.Nonce[:])
		b.AddBytes(bl.IV[:])
	}
	for i, id := range []string{
		"1234abcd-12ab-34cd-56ef-1234567890ab",
		"mrk-1234abcd12ab34cd56ef1234567890ab",
		"00000000-0000-0000-0000-000000000000",
	} {
		for _, n := range []int{TagSize, TagSize + 1, 64 + TagSize, MaxPlaintext + TagSize} {
			t.Run(fmt.Sprintf("%d/%d", i, n), func(t *testing.T) {
				bl := &Blob{KeyID: id, Ciphertext: make([]byte, n)}
				rand.Read(bl.HBKID[:])
				rand.Read(bl.Nonce[:])
				rand.Read(bl.IV[:])
				rand.Read(bl.Ciphertext)
				require.True(t, ValidKeyID(id))

				b := cryptobyte.NewBuilder(nil)
				builderHeader(b, bl)
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(bl.Ciphertext) })
				want, err := b.Bytes()
				require.NoError(t, err)
				got, err := bl.Marshal()
				require.NoError(t, err)
				require.Equal(t, want, got)

				ec := make([]byte, 37)
				rand.Read(ec)
				b = cryptobyte.NewBuilder(append([]byte(labelBlob), 0))
				builderHeader(b, bl)
				b.AddBytes(ec)
				want, err = b.Bytes()
				require.NoError(t, err)
				got, err = bl.aad(ec)
				require.NoError(t, err)
				require.Equal(t, want, got)
			})
		}
	}
	for _, bl := range []*Blob{
		{KeyID: "not a key id", Ciphertext: make([]byte, 32)},
		{KeyID: "1234abcd-12ab-34cd-56ef-1234567890ab", Ciphertext: make([]byte, TagSize-1)},
		{KeyID: "1234abcd-12ab-34cd-56ef-1234567890ab", Ciphertext: make([]byte, MaxPlaintext+TagSize+1)},
	} {
		_, err := bl.Marshal()
		require.Error(t, err, "%q, %d bytes", bl.KeyID, len(bl.Ciphertext))
	}
	_, err := (&Blob{KeyID: "not a key id"}).aad(nil)
	require.Error(t, err)
}
