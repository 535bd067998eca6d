package nitro

import (
	"bytes"
	"crypto/x509"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Well-signed documents whose payload breaks the strict decoding rules
// are refused as malformed: the signature does not make them acceptable.
func TestStrictPayload(t *testing.T) {
	now := time.Now()
	ca, err := NewSimCA(nil, now.Add(-time.Hour))
	require.NoError(t, err)
	v := &Verifier{Roots: []*x509.Certificate{ca.Root}}
	req := AttestRequest{PCRs: map[int][]byte{0: make([]byte, 48)}, Time: now}
	good, err := ca.attest(req, func(b []byte) []byte {
		require.Equal(t, byte(0xa9), b[0], "a map of the nine fields")
		return b
	})
	require.NoError(t, err)
	_, err = v.Verify(good)
	require.NoError(t, err)

	entry := func(key string) []byte { return append([]byte{0x60 + byte(len(key))}, append([]byte(key), 0xf6)...) }
	for name, edit := range map[string]func([]byte) []byte{
		"duplicate key":     func(b []byte) []byte { return append(append([]byte{0xaa}, b[1:]...), entry("nonce")...) },
		"unknown field":     func(b []byte) []byte { return append(append([]byte{0xaa}, b[1:]...), entry("extra")...) },
		"indefinite-length": func(b []byte) []byte { return append(append([]byte{0xbf}, b[1:]...), 0xff) },
		"trailing byte":     func(b []byte) []byte { return append(b, 0x00) },
		"truncated":         func(b []byte) []byte { return b[:len(b)-3] },
	} {
		doc, err := ca.attest(req, edit)
		require.NoError(t, err, name)
		_, err = v.Verify(doc)
		require.ErrorIs(t, err, ErrMalformed, name)
	}

	// The document itself: a byte after it, an indefinite-length array.
	_, err = v.Verify(append(bytes.Clone(good), 0))
	require.ErrorIs(t, err, ErrMalformed)
	indef := append(append([]byte{0x9f}, good[1:]...), 0xff)
	_, err = v.Verify(indef)
	require.ErrorIs(t, err, ErrMalformed)
}
