package kwp

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"crypto/aes"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func unhex(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// RFC 5649, section 6: "Wrap a 20 octet key with a 192-bit KEK" and
// "Wrap a 7 octet key with a 192-bit KEK".
func TestRFC5649Vectors(t *testing.T) {
	kek := unhex("5840df6e29b02af1 ab493b705bf16ea1 ae8338f4dcc176a8")
	for _, v := range []struct{ key, wrapped string }{
		{"c37b7e6492584340 bed1220780894115 5068f738", "138bdeaa9b8fa7fc 61f97742e72248ee 5ae6ae5360d1ae6a 5f54f373fa543b6a"},
		{"466f7250617369", "afbeb0f07dfbf541 9200f2ccb50bb24f"},
	} {
		w, err := Wrap(kek, unhex(v.key))
		require.NoError(t, err)
		assert.Equal(t, unhex(v.wrapped), w)
		k, err := Unwrap(kek, unhex(v.wrapped))
		require.NoError(t, err)
		assert.Equal(t, unhex(v.key), k)
	}
}

// Every length round-trips; a flipped bit, another key, a truncation or
// an extension does not unwrap.
func TestRoundTripAndTamper(t *testing.T) {
	kek := make([]byte, 32)
	rand.Read(kek)
	other := bytes.Clone(kek)
	other[0] ^= 1
	for n := 1; n <= 80; n++ {
		p := make([]byte, n)
		rand.Read(p)
		w, err := Wrap(kek, p)
		require.NoError(t, err)
		assert.Len(t, w, 8+8*((n+7)/8))
		got, err := Unwrap(kek, w)
		require.NoError(t, err)
		assert.Equal(t, p, got)
		for i := range w {
			bad := bytes.Clone(w)
			bad[i] ^= 0x80
			_, err := Unwrap(kek, bad)
			assert.ErrorIs(t, err, ErrUnwrap, "length %d, byte %d flipped", n, i)
		}
		_, err = Unwrap(other, w)
		assert.ErrorIs(t, err, ErrUnwrap)
		_, err = Unwrap(kek, w[:len(w)-8])
		assert.ErrorIs(t, err, ErrUnwrap)
		_, err = Unwrap(kek, append(bytes.Clone(w), make([]byte, 8)...))
		assert.ErrorIs(t, err, ErrUnwrap)
	}
	_, err := Wrap(kek, nil)
	assert.Error(t, err)
	_, err = Wrap(kek[:7], []byte("x"))
	assert.Error(t, err)
}

// A plaintext whose MLI or padding lies: the integrity check refuses it
// even though the AES layer is intact.
func TestUnwrapChecksLengthAndPadding(t *testing.T) {
	kek := make([]byte, 16)
	rand.Read(kek)
	forge := func(mli uint32, body []byte) []byte {
		b, _ := Wrap(kek, body) // a valid wrapping of body...
		buf := make([]byte, len(b))
		blk, _ := aes.NewCipher(kek)
		n := len(b)/8 - 1
		if n == 1 {
			blk.Decrypt(buf, b)
		} else {
			copy(buf, b)
			unwrap(blk, buf, n)
		}
		buf[4], buf[5], buf[6], buf[7] = byte(mli>>24), byte(mli>>16), byte(mli>>8), byte(mli) // ...with another MLI
		if n == 1 {
			blk.Encrypt(buf, buf)
		} else {
			wrap(blk, buf, n)
		}
		return buf
	}
	body := []byte("0123456789abcdef0123") // 20 bytes, 4 of padding
	for _, mli := range []uint32{0, 16, 19, 25, 1 << 31} {
		_, err := Unwrap(kek, forge(mli, body))
		assert.ErrorIs(t, err, ErrUnwrap, "MLI %d", mli)
	}
	got, err := Unwrap(kek, forge(20, body))
	require.NoError(t, err)
	assert.Equal(t, body, got)
	// MLI 17 claims three bytes of the body as padding, and they are not zero.
	_, err = Unwrap(kek, forge(17, body))
	assert.ErrorIs(t, err, ErrUnwrap)
}

// openssl enc -id-aes256-wrap-pad, as AWS's documentation uses it,
// unwraps here, and what Wrap makes is openssl's byte for byte.
func TestOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("no openssl")
	}
	kek := make([]byte, 32)
	rand.Read(kek)
	dir := t.TempDir()
	for _, n := range []int{7, 32, 121, 1217} {
		p := make([]byte, n)
		rand.Read(p)
		in := filepath.Join(dir, "in")
		require.NoError(t, os.WriteFile(in, p, 0o600))
		out, err := exec.Command("openssl", "enc", "-id-aes256-wrap-pad", "-K", hex.EncodeToString(kek), "-iv", "A65959A6", "-in", in).Output()
		require.NoError(t, err)
		got, err := Unwrap(kek, out)
		require.NoError(t, err)
		assert.Equal(t, p, got)
		mine, err := Wrap(kek, p)
		require.NoError(t, err)
		assert.Equal(t, out, mine)
	}
}

// Unwrap never panics and accepts only what Wrap gives back.
func FuzzUnwrap(f *testing.F) {
	kek := unhex("5840df6e29b02af1 ab493b705bf16ea1 ae8338f4dcc176a8")
	f.Add(unhex("138bdeaa9b8fa7fc 61f97742e72248ee 5ae6ae5360d1ae6a 5f54f373fa543b6a"))
	f.Add(unhex("afbeb0f07dfbf541 9200f2ccb50bb24f"))
	f.Fuzz(func(t *testing.T, c []byte) {
		p, err := Unwrap(kek, c)
		if err != nil {
			return
		}
		w, err := Wrap(kek, p)
		if err != nil || !bytes.Equal(w, c) {
			t.Fatalf("unwrapped %x does not wrap back to %x", p, c)
		}
	})
}
