package vectors

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/trentkms/trent/internal/testvec"
)

// The protocol's primitives, from docs/protocol.md (Conventions) and the
// standard library alone: the generator builds every vector with these,
// never with the packages the checks then run.

// The fixed inputs of every vector: private scalars are SHA-384("trent
// vector key " ‖ name), "random" bytes SHAKE256("trent vector rng " ‖ name),
// as in the per-package vectors, so that shared names give shared values.
var scalar = testvec.Scalar

func rng(name string, n int) []byte { return testvec.ReadN(testvec.Reader(name), n) }

func signingKey(name string) *ecdsa.PrivateKey {
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P384(), scalar(name))
	if err != nil {
		panic(err)
	}
	return k
}

func ecdhKey(name string) *ecdh.PrivateKey {
	k, err := ecdh.P384().NewPrivateKey(scalar(name))
	if err != nil {
		panic(err)
	}
	return k
}

// point is the uncompressed SEC1 encoding of an ECDSA public key.
func point(k *ecdsa.PrivateKey) []byte {
	b, err := k.PublicKey.Bytes()
	if err != nil {
		panic(err)
	}
	return b
}

func spki(pub any) []byte {
	b, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return b
}

// hsmID is "hsm-" ‖ lowercase hex of SHA-256(SPKI)[0:8].
func hsmID(k *ecdsa.PrivateKey) string {
	s := sha256.Sum256(spki(&k.PublicKey))
	return "hsm-" + hex.EncodeToString(s[:8])
}

func h384(parts ...[]byte) []byte {
	h := sha512.New384()
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

// lab is label ‖ 0x00.
func lab(label string) []byte { return append([]byte(label), 0) }

// labelled is H(label ‖ 0x00 ‖ parts).
func labelled(label string, parts ...[]byte) []byte {
	return h384(append([][]byte{lab(label)}, parts...)...)
}

// sign is deterministic ECDSA (RFC 6979) over labelled(label, msg), DER.
func sign(k *ecdsa.PrivateKey, label string, msg ...[]byte) []byte {
	sig, err := testvec.Signer{K: k}.Sign(nil, labelled(label, msg...), crypto.SHA384)
	if err != nil {
		panic(err)
	}
	return sig
}

// kdf is the SP 800-56C one-step KDF with SHA-384, 256 bits.
func kdf(z, fixedInfo []byte) []byte { return h384([]byte{0, 0, 0, 1}, z, fixedInfo)[:32] }

func gcm(key []byte) cipher.AEAD {
	b, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		panic(err)
	}
	return a
}

func seal(key, nonce, pt, aad []byte) []byte { return gcm(key).Seal(nil, nonce, pt, aad) }

func ecdhZ(d *ecdh.PrivateKey, peer []byte) []byte {
	p, err := ecdh.P384().NewPublicKey(peer)
	if err != nil {
		panic(err)
	}
	z, err := d.ECDH(p)
	if err != nil {
		panic(err)
	}
	return z
}

// Encoding helpers: cat concatenates; v8, v16, v24 prefix a length
// (truncated to the prefix's width, so that the generator can write a
// length field that lies); u16, u64 are big-endian integers.
func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func v8(b []byte) []byte  { return append([]byte{byte(len(b))}, b...) }
func v16(b []byte) []byte { return append(u16(uint16(len(b))), b...) }
func v24(b []byte) []byte {
	n := len(b)
	return append([]byte{byte(n >> 16), byte(n >> 8), byte(n)}, b...)
}
func u16(n uint16) []byte { return binary.BigEndian.AppendUint16(nil, n) }
func u64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

func hdr(typ byte) []byte { return []byte{'T', 'R', 'N', 'T', 1, typ} }

func zeros(n int) []byte { return make([]byte, n) }

// fill is n bytes of a pattern, for large fields.
func fill(n int, c byte) []byte { return bytes.Repeat([]byte{c}, n) }

// Mutations of an encoded object.

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// flip returns b with byte i (counted from the end if negative) XORed with 0x01.
func flip(b []byte, i int) []byte {
	c := clone(b)
	if i < 0 {
		i += len(c)
	}
	c[i] ^= 0x01
	return c
}

func setByte(b []byte, i int, v byte) []byte {
	c := clone(b)
	c[i] = v
	return c
}

// headerCases adds the negative vectors every object shares: truncations,
// a trailing byte, and a wrong magic, version and type.
func headerCases(f *vfile, what string, good []byte, otherType byte, fill func(t *vtest) *vtest, out string) {
	headerCasesV(f, what, good, otherType, fill, out, 2)
}

// headerCasesV is headerCases with the unsupported version to try: 3 for
// the Hello, the Reply and the one-pass message, whose version 2 is their
// hybrid form.
func headerCasesV(f *vfile, what string, good []byte, otherType byte, fill func(t *vtest) *vtest, out string, badVersion byte) {
	fill(f.add(what+" cut to its 6-byte header", "truncated")).h(out, good[:6])
	fill(f.add(what+" cut by one byte at the end", "truncated")).h(out, good[:len(good)-1])
	fill(f.add(what+" cut to 5 bytes: the header's type byte missing", "truncated")).h(out, good[:5])
	fill(f.add(what+" followed by one zero byte", "trailing-bytes")).h(out, append(clone(good), 0))
	fill(f.add(what+" with magic \"TRNX\"", "bad-magic")).h(out, setByte(good, 3, 'X'))
	fill(f.add(fmt.Sprintf("%s with protocol version %d", what, badVersion), "bad-version")).h(out, setByte(good, 4, badVersion))
	fill(f.add(what+" with protocol version 0", "bad-version")).h(out, setByte(good, 4, 0))
	fill(f.add(what+" with another object's type byte", "bad-type")).h(out, setByte(good, 5, otherType))
}

func ephemeral(k *ecdh.PrivateKey) testvec.Ephemeral { return testvec.Ephemeral{K: k} }

func testvecSigner(k *ecdsa.PrivateKey) testvec.Signer { return testvec.Signer{K: k} }

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

func errorsIs(err, target error) bool { return errors.Is(err, target) }
