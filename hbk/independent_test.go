package hbk_test

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/internal/testvec"
)

// TestIndependent checks testdata/hierarchy.txt from docs/protocol.md
// alone: byte offsets and the standard library, none of this package's
// code.
func TestIndependent(t *testing.T) {
	data, err := os.ReadFile("testdata/hierarchy.txt")
	require.NoError(t, err)
	v, err := testvec.Parse(data)
	require.NoError(t, err)
	gcm := func(key []byte) cipher.AEAD {
		b, err := aes.NewCipher(key)
		require.NoError(t, err)
		a, err := cipher.NewGCM(b)
		require.NoError(t, err)
		return a
	}

	// Token: "TRNT" 01 30 ‖ DK ID[16] ‖ v8 key ID ‖ HBK ID[16] ‖ IV[12] ‖ ct[48].
	tok, kid := v["token"], v["key_id"]
	fields := 6 + 16 + 1 + len(kid) + 16
	require.Equal(t, "TRNT\x01\x30", string(tok[:6]))
	require.Equal(t, v["dk_id"], tok[6:22])
	require.Equal(t, kid, tok[23:23+len(kid)])
	require.Len(t, tok, fields+12+48)
	aad := append([]byte("trent/v1 hbk token\x00"), tok[:fields]...)
	hbkRaw, err := gcm(v["dk"]).Open(nil, tok[fields:fields+12], tok[fields+12:], aad)
	require.NoError(t, err)
	require.Equal(t, v["hbk"], hbkRaw)

	// Context: u16 n ‖ (v16 key ‖ v16 value) sorted by key.
	var ec []byte
	ec = binary.BigEndian.AppendUint16(ec, 2)
	for _, kv := range [][2][]byte{{[]byte("Department"), v["context_department"]}, {[]byte("purpose"), v["context_purpose"]}} {
		ec = binary.BigEndian.AppendUint16(ec, uint16(len(kv[0])))
		ec = append(ec, kv[0]...)
		ec = binary.BigEndian.AppendUint16(ec, uint16(len(kv[1])))
		ec = append(ec, kv[1]...)
	}
	require.Equal(t, v["context_encoding"], ec)

	// Blob: "TRNT" 01 31 ‖ v8 key ID ‖ HBK ID[16] ‖ N[32] ‖ IV[12] ‖ v16 ct‖tag.
	blob := v["blob"]
	hdr := 6 + 1 + len(kid) + 16 + 32 + 12
	require.Equal(t, "TRNT\x01\x31", string(blob[:6]))
	nonce, iv := blob[hdr-44:hdr-12], blob[hdr-12:hdr]
	require.Equal(t, v["nonce"], nonce)
	kdf := binary.BigEndian.AppendUint32(nil, 1)
	kdf = append(kdf, "trent/v1 hbk kdf\x00"...)
	kdf = append(kdf, byte(len(kid)))
	kdf = append(kdf, kid...)
	kdf = append(kdf, v["hbk_id"]...)
	kdf = append(kdf, nonce...)
	kdf = binary.BigEndian.AppendUint32(kdf, 256)
	m := hmac.New(sha256.New, hbkRaw)
	m.Write(kdf)
	k := m.Sum(nil)
	require.Equal(t, v["k"], k)
	require.Equal(t, len(blob)-hdr-2, int(binary.BigEndian.Uint16(blob[hdr:])))
	baad := append([]byte("trent/v1 ciphertext\x00"), blob[:hdr]...)
	baad = append(baad, ec...)
	pt, err := gcm(k).Open(nil, iv, blob[hdr+2:], baad)
	require.NoError(t, err)
	require.Equal(t, v["plaintext"], pt)
}
