// Package kwp is AES Key Wrap with Padding (RFC 5649, NIST SP 800-38F
// KWP), the second step of KMS's RSA_AES_KEY_WRAP_SHA_* wrapping
// algorithms (an ephemeral AES key wraps the key material; RSA-OAEP wraps
// the AES key), which `openssl enc -id-aes256-wrap-pad` makes.
//
// It is written here because neither the standard library nor
// golang.org/x/crypto has KWP (x/crypto has no key wrap at all), and the
// dependencies Trent may use are fixed; it is checked against RFC 5649's
// test vectors and against openssl. It is not constant-time beyond what
// crypto/aes is: the integrity check compares in constant time, and an
// unwrap failure says only that it failed.
package kwp

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
)

// MaxInput bounds the plaintext of Wrap (RFC 5649 allows 2^32 bytes;
// Trent wraps key material of at most a few KiB).
const MaxInput = 1 << 20

// ErrUnwrap is Unwrap's only error: the ciphertext is not a KWP
// wrapping under the key.
var ErrUnwrap = errors.New("kwp: the ciphertext does not unwrap")

// aiv is the first half of RFC 5649's Alternative Initial Value; the
// second half is the plaintext's length.
var aiv = [4]byte{0xa6, 0x59, 0x59, 0xa6}

// Wrap wraps plaintext (1 to MaxInput bytes) under kek, an AES key of 16,
// 24 or 32 bytes (RFC 5649, section 4.1).
func Wrap(kek, plaintext []byte) ([]byte, error) {
	if len(plaintext) < 1 || len(plaintext) > MaxInput {
		return nil, errors.New("kwp: plaintext length out of range")
	}
	b, err := aes.NewCipher(kek)
	if err != nil {
		return nil, errors.New("kwp: the key is not an AES key")
	}
	n := (len(plaintext) + 7) / 8
	out := make([]byte, 8+8*n)
	copy(out[:4], aiv[:])
	binary.BigEndian.PutUint32(out[4:8], uint32(len(plaintext)))
	copy(out[8:], plaintext) // zero padding: out is zeroed
	if n == 1 {
		// One block: the AIV and the padded plaintext are one AES block.
		b.Encrypt(out, out)
		return out, nil
	}
	wrap(b, out, n)
	return out, nil
}

// wrap is RFC 3394's W: buf is A ‖ R[1..n], wrapped in place.
func wrap(b cipher.Block, buf []byte, n int) {
	var blk [16]byte
	copy(blk[:8], buf[:8])
	for j := 0; j < 6; j++ {
		for i := 1; i <= n; i++ {
			copy(blk[8:], buf[8*i:8*i+8])
			b.Encrypt(blk[:], blk[:])
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(blk[:8], binary.BigEndian.Uint64(blk[:8])^t)
			copy(buf[8*i:8*i+8], blk[8:])
		}
	}
	copy(buf[:8], blk[:8])
	clear(blk[:])
}

// unwrap is RFC 3394's W⁻¹: buf is C[0] ‖ C[1..n], unwrapped in place.
func unwrap(b cipher.Block, buf []byte, n int) {
	var blk [16]byte
	copy(blk[:8], buf[:8])
	for j := 5; j >= 0; j-- {
		for i := n; i >= 1; i-- {
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(blk[:8], binary.BigEndian.Uint64(blk[:8])^t)
			copy(blk[8:], buf[8*i:8*i+8])
			b.Decrypt(blk[:], blk[:])
			copy(buf[8*i:8*i+8], blk[8:])
		}
	}
	copy(buf[:8], blk[:8])
	clear(blk[:])
}

// Unwrap unwraps ciphertext under kek (RFC 5649, section 4.2) and checks
// its integrity: the AIV's constant, the length in its bounds and zero
// padding. The plaintext is a new slice; the caller clears it.
func Unwrap(kek, ciphertext []byte) ([]byte, error) {
	if len(ciphertext) < 16 || len(ciphertext)%8 != 0 || len(ciphertext) > MaxInput+16 {
		return nil, ErrUnwrap
	}
	b, err := aes.NewCipher(kek)
	if err != nil {
		return nil, errors.New("kwp: the key is not an AES key")
	}
	buf := make([]byte, len(ciphertext))
	n := len(ciphertext)/8 - 1
	if n == 1 {
		b.Decrypt(buf, ciphertext)
	} else {
		copy(buf, ciphertext)
		unwrap(b, buf, n)
	}
	mli := int(binary.BigEndian.Uint32(buf[4:8]))
	ok := subtle.ConstantTimeCompare(buf[:4], aiv[:])
	// 8(n-1) < MLI ≤ 8n, and the padding is zeros.
	ok &= subtle.ConstantTimeLessOrEq(8*(n-1)+1, mli) & subtle.ConstantTimeLessOrEq(mli, 8*n)
	var pad byte
	for i := 8; i < len(buf); i++ {
		inPad := subtle.ConstantTimeLessOrEq(mli+8, i) // i-8 ≥ MLI
		pad |= byte(subtle.ConstantTimeSelect(inPad, int(buf[i]), 0))
	}
	ok &= subtle.ConstantTimeByteEq(pad, 0)
	if ok != 1 {
		clear(buf)
		return nil, ErrUnwrap
	}
	out := append([]byte(nil), buf[8:8+mli]...)
	clear(buf)
	return out, nil
}
